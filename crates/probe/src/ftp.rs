//! `relay.ftp-bounce`: an FTP server beyond loopback that opens a data connection to any address
//! a client names with `PORT`/`EPRT` carries a remote client to this host's loopback (the FTP
//! bounce attack, RFC 2577).
//!
//! Proven only against a listener of our own: the probe logs in anonymously (the convention any
//! FTP client uses; no password is ever guessed), asks for a data connection to a fresh loopback
//! port it listens on, and asks for a file listing. The server connecting there is the proof;
//! nothing is sent to the host's own services. A server that refuses the address, or that
//! anonymous users cannot log into, is reported as such.

use crate::targets::Target;
use crate::wire::{Conn, Scheme, Wire};
use loopwarden_core::checks::CheckId;
use loopwarden_core::report::{Attacker, Confidence, Finding, Severity, Status};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::{timeout, timeout_at, Instant};

/// The most bytes read for one reply (a multi-line greeting included).
const MAX_REPLY: usize = 8 * 1024;
/// How long the server has to open the data connection once asked.
const DATA_WAIT: Duration = Duration::from_secs(2);
/// The anonymous password, by convention an address; this one can reach nobody (RFC 2606).
const ANONYMOUS_PASSWORD: &str = "loopwarden@example.invalid";

/// Whether bytes a service sent first look like an FTP greeting (`220`, possibly multi-line).
pub fn greets_like_ftp(first: &[u8]) -> bool {
    first.starts_with(b"220 ") || first.starts_with(b"220-")
}

/// One FTP reply: its code and its text (the last line of a multi-line reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit code.
    pub code: u16,
    /// The final line's text after its code, shortened and made printable for evidence.
    pub text: String,
}

/// The most characters of a reply's text kept as evidence.
const MAX_SHOWN: usize = 80;

/// Parses the first complete reply at the start of `buf`: the first line's code, and the final
/// line `CODE text` (RFC 959 §4.2), with how many bytes it took — a server may send the next
/// reply in the same segment (`150 …` then `226 …`), which stays for the next read. `None`
/// until the final line has arrived.
fn parse_reply(buf: &[u8]) -> Option<(Reply, usize)> {
    let first_end = find_crlf(buf, 0)?;
    let first = std::str::from_utf8(&buf[..first_end]).ok()?;
    let code: u16 = first.get(..3)?.parse().ok()?;
    let (last_start, end) = if first.as_bytes().get(3) == Some(&b'-') {
        let prefix = format!("{code} ");
        let mut start = first_end + 2;
        loop {
            let line_end = find_crlf(buf, start)?;
            if buf[start..line_end].starts_with(prefix.as_bytes()) {
                break (start, line_end);
            }
            start = line_end + 2;
        }
    } else {
        (0, first_end)
    };
    let line = &buf[last_start..end];
    let text = line.get(4..).unwrap_or_default();
    let shown = printable(&text[..text.len().min(MAX_SHOWN)]);
    Some((Reply { code, text: shown }, end + 2))
}

/// Where the next `\r\n` at or after `from` starts.
fn find_crlf(buf: &[u8], from: usize) -> Option<usize> {
    buf.get(from..)?.windows(2).position(|w| w == b"\r\n").map(|i| from + i)
}

/// Bytes made printable: ASCII as it is, anything else as `\xNN` (a server's words are hostile).
fn printable(bytes: &[u8]) -> String {
    let mut out = String::from("\"");
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out.push('"');
    out
}

/// A control connection with its deadline.
struct Control {
    conn: Conn,
    deadline: Instant,
    /// Bytes received and not yet taken as a reply.
    pending: Vec<u8>,
    transcript: Vec<String>,
}

impl Control {
    /// Reads one reply (what follows it in the same read stays for the next).
    async fn reply(&mut self) -> Option<Reply> {
        let mut chunk = [0u8; 1024];
        loop {
            if let Some((reply, used)) = parse_reply(&self.pending) {
                self.pending.drain(..used);
                return Some(reply);
            }
            if self.pending.len() > MAX_REPLY {
                return None;
            }
            match timeout_at(self.deadline, self.conn.io.read(&mut chunk)).await {
                Ok(Ok(n)) if n > 0 => self.pending.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }

    /// Sends one command and reads its reply; the exchange is kept for evidence.
    async fn command(&mut self, line: &str) -> Option<Reply> {
        let sent = timeout_at(self.deadline, self.conn.io.write_all(format!("{line}\r\n").as_bytes())).await;
        if !matches!(sent, Ok(Ok(()))) {
            return None;
        }
        let reply = self.reply().await;
        self.note(line, reply.as_ref());
        reply
    }

    /// Keeps `line → CODE "text"` (or that no reply came) for evidence.
    fn note(&mut self, line: &str, reply: Option<&Reply>) {
        self.transcript.push(match reply {
            Some(r) => format!("{line} → {} {}", r.code, r.text),
            None => format!("{line} → no reply"),
        });
    }
}

/// How the bounce attempt ended.
enum Outcome {
    /// The server connected to our loopback listener: the exchange that did it.
    Bounced,
    /// The server refused every address it was given, or never connected.
    Refused,
    /// Anonymous users cannot log in: what logged-in users may do was not tested.
    NoLogin,
}

/// Probes one listener that greeted like an FTP server. `from_network` says whether it was
/// reached at a non-loopback address; `None` when it turns out not to speak FTP.
pub async fn probe(wire: &Wire, target: &Target, from_network: bool) -> Option<Finding> {
    let source = control_source(target.connect.ip());
    let conn = wire.connect_from(target.connect, source, Scheme::Http).await.ok()?;
    let mut control = Control {
        conn,
        deadline: Instant::now() + wire.io_timeout * 4,
        pending: Vec::new(),
        transcript: Vec::new(),
    };
    let greeting = control.reply().await.filter(|r| r.code == 220)?;
    control.transcript.push(format!("greeting: 220 {}", greeting.text));
    // The client's own address, as the server sees it: a canary there proves nothing.
    let client = source.unwrap_or(target.connect.ip());
    control
        .transcript
        .push(format!("the control connection comes from {client}"));
    let outcome = match login(&mut control).await? {
        false => Outcome::NoLogin,
        true => bounce(&mut control, client).await,
    };
    let _ = control.command("QUIT").await;
    wire.log(
        target.connect,
        "ftp-bounce",
        "PORT/EPRT to a loopback canary",
        &control.transcript.join("; "),
    );
    Some(finding(target, from_network, outcome, control.transcript))
}

/// Where the control connection comes from: for a server reached on IPv4 loopback, 127.0.0.2 —
/// a server that takes `PORT` only to its client's own address (vsftpd's default) must not look
/// like a bouncer because the probe's client and canary shared 127.0.0.1. Elsewhere the kernel's
/// choice (for an address of this host, that address itself).
fn control_source(target: IpAddr) -> Option<IpAddr> {
    match target {
        IpAddr::V4(ip) if ip.is_loopback() => Some(IpAddr::V4(if ip == Ipv4Addr::new(127, 0, 0, 2) {
            Ipv4Addr::new(127, 0, 0, 3)
        } else {
            Ipv4Addr::new(127, 0, 0, 2)
        })),
        _ => None,
    }
}

/// Logs in as `anonymous`. `Some(false)` when the server refuses anonymous users, `None` when it
/// does not answer like an FTP server (an SMTP server greets with 220 too).
async fn login(control: &mut Control) -> Option<bool> {
    let user = control.command("USER anonymous").await?;
    match user.code {
        230 => Some(true),
        331 => Some(control.command(&format!("PASS {ANONYMOUS_PASSWORD}")).await?.code == 230),
        530 | 421 | 332 => Some(false),
        _ => None,
    }
}

/// Asks for a data connection to a listener of our own on 127.0.0.1 (`PORT`, then `EPRT`), and on
/// `[::1]` (`EPRT |2|`) — never at `client`, the address the server takes for the client's own —
/// and waits for the server to connect after `NLST`.
async fn bounce(control: &mut Control, client: IpAddr) -> Outcome {
    let attempts: [(IpAddr, DataCommand); 3] = [
        (IpAddr::V4(Ipv4Addr::LOCALHOST), port_command),
        (IpAddr::V4(Ipv4Addr::LOCALHOST), eprt_command),
        (IpAddr::V6(Ipv6Addr::LOCALHOST), eprt_command),
    ];
    for (ip, command) in attempts {
        if ip == client {
            continue;
        }
        let Ok(listener) = TcpListener::bind((ip, 0)).await else {
            continue;
        };
        let Ok(canary) = listener.local_addr() else { continue };
        match control.command(&command(canary)).await {
            Some(r) if r.code == 200 => {}
            Some(_) => continue,
            None => return Outcome::Refused,
        }
        let listing = control.command("NLST").await;
        let accepted = timeout(DATA_WAIT, listener.accept()).await;
        let bounced = matches!(accepted, Ok(Ok(_)));
        if let Ok(Ok((data, peer))) = accepted {
            control.transcript.push(format!(
                "the server opened a data connection from {peer} to our listener {canary}"
            ));
            drop(data);
        }
        // A preliminary reply (1xx) is followed by the transfer's own (226, 425 …).
        if listing.as_ref().is_some_and(|r| r.code < 200) {
            let done = control.reply().await;
            control.note("(NLST, end of transfer)", done.as_ref());
        }
        if bounced {
            return Outcome::Bounced;
        }
        if listing.is_none() {
            return Outcome::Refused;
        }
    }
    Outcome::Refused
}

/// Spells a data-connection request (`PORT`, `EPRT`) for an address.
type DataCommand = fn(SocketAddr) -> String;

/// `PORT h1,h2,h3,h4,p1,p2` (IPv4 only).
fn port_command(addr: SocketAddr) -> String {
    let IpAddr::V4(ip) = addr.ip() else {
        return eprt_command(addr);
    };
    let [a, b, c, d] = ip.octets();
    let [hi, lo] = addr.port().to_be_bytes();
    format!("PORT {a},{b},{c},{d},{hi},{lo}")
}

/// `EPRT |1|127.0.0.1|PORT|` or `EPRT |2|::1|PORT|` (RFC 2428).
fn eprt_command(addr: SocketAddr) -> String {
    let family = if addr.is_ipv4() { 1 } else { 2 };
    format!("EPRT |{family}|{}|{}|", addr.ip(), addr.port())
}

fn finding(target: &Target, from_network: bool, outcome: Outcome, transcript: Vec<String>) -> Finding {
    let (status, severity, title) = match outcome {
        Outcome::Bounced => (
            Status::Open,
            if from_network {
                Severity::Critical
            } else {
                Severity::High
            },
            "FTP bounce: the server opens data connections to this host's loopback for its clients",
        ),
        Outcome::Refused => (
            Status::Blocked,
            Severity::Low,
            "FTP server refuses data connections to loopback (no bounce)",
        ),
        Outcome::NoLogin => (
            Status::Unknown,
            Severity::Medium,
            "FTP server: anonymous login refused, so whether logged-in users can bounce to loopback was not tested",
        ),
    };
    let mut evidence = transcript;
    evidence.push(format!(
        "probed at {}{}; the only data connection asked for was to a listener loopwarden opened itself \
         on loopback — nothing was sent to the host's own services, and no password was guessed",
        target.connect,
        if from_network {
            ", a non-loopback address of this host"
        } else {
            ""
        }
    ));
    Finding {
        check: CheckId::RelayFtpBounce,
        service: Some(target.service.clone()),
        attacker: Attacker::Remote,
        severity,
        status,
        confidence: Confidence::Probed,
        title: title.into(),
        evidence,
        fix: "refuse PORT/EPRT to any address but the client's own (vsftpd: port_promiscuous=NO, the default; \
              ProFTPD: AllowForeignAddress off; pure-ftpd without -W), or disable active mode and anonymous \
              login, or bind the server to loopback"
            .into(),
        subject: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_complete_only_at_their_final_line() {
        assert_eq!(parse_reply(b"220 (vsFTPd 3.0.3)\r\n").map(|r| r.0.code), Some(220));
        assert_eq!(parse_reply(b"220 (vsFTPd 3.0.3)"), None);
        assert_eq!(parse_reply(b"230-Welcome\r\n line two\r\n"), None);
        let (multi, _) = parse_reply(b"230-Welcome\r\n line two\r\n230 Login successful.\r\n").expect("complete");
        assert_eq!(
            multi,
            Reply {
                code: 230,
                text: "\"Login successful.\"".into()
            }
        );
        assert_eq!(parse_reply(b"hello\r\n"), None);
    }

    /// Two replies in one segment (vsftpd's `150` and `226` after a short listing) are two.
    #[test]
    fn a_second_reply_in_the_same_read_is_kept_for_the_next() {
        let both = b"150 Here comes the directory listing.\r\n226 Directory send OK.\r\n";
        let (first, used) = parse_reply(both).expect("first");
        assert_eq!(
            first,
            Reply {
                code: 150,
                text: "\"Here comes the directory listing.\"".into()
            }
        );
        let (second, rest) = parse_reply(&both[used..]).expect("second");
        assert_eq!(
            second,
            Reply {
                code: 226,
                text: "\"Directory send OK.\"".into()
            }
        );
        assert_eq!(used + rest, both.len());
    }

    #[test]
    fn a_loopback_server_is_asked_from_another_loopback_address() {
        let v4 = |t: &str| t.parse::<IpAddr>().expect("ip");
        assert_eq!(control_source(v4("127.0.0.1")), Some(v4("127.0.0.2")));
        assert_eq!(control_source(v4("127.0.0.2")), Some(v4("127.0.0.3")));
        assert_eq!(control_source(v4("192.0.2.130")), None);
        assert_eq!(control_source(v4("::1")), None);
    }

    #[test]
    fn data_addresses_are_spelled_as_rfc_959_and_2428_say() {
        let v4: SocketAddr = "127.0.0.1:50123".parse().unwrap();
        assert_eq!(port_command(v4), "PORT 127,0,0,1,195,203");
        assert_eq!(eprt_command(v4), "EPRT |1|127.0.0.1|50123|");
        assert_eq!(eprt_command("[::1]:21".parse().unwrap()), "EPRT |2|::1|21|");
    }

    #[test]
    fn only_a_220_greeting_is_taken_for_ftp() {
        assert!(greets_like_ftp(b"220 (vsFTPd 3.0.3)\r\n"));
        assert!(greets_like_ftp(b"220-multi\r\n"));
        assert!(!greets_like_ftp(b"SSH-2.0-OpenSSH_9.2\r\n"));
        assert!(!greets_like_ftp(b"HTTP/1.1 400 Bad Request\r\n"));
    }
}
