//! Relay probes of one listener reachable beyond loopback: does it carry a client to this host's
//! loopback as an HTTP proxy (`CONNECT`, absolute-URI request) or a SOCKS4/4a/5 proxy (no
//! authentication)? Proven only against the [`Canary`]: the only destination ever requested is
//! the canary. (A transparent forwarder on the listener still hands the probe's own bytes to its
//! target, as it would any client's.)
//!
//! The finding names the proxy's listener as its service: that is what to close or restrict, and
//! it exposes every loopback service at once (listed in the evidence).

use crate::canary::Canary;
use crate::http::Request;
use crate::targets::Target;
use crate::wire::{Answer, Conn, Scheme, Wire};
use loopwarden_core::checks::CheckId;
use loopwarden_core::report::{Attacker, Confidence, Finding, Severity, Status};

/// Probes one listener for both relay kinds. `from_network` says whether the probe reached it at
/// a non-loopback address (as a remote client would); `exposed` names the loopback services such a
/// relay hands to its clients.
pub async fn probe(
    wire: &Wire,
    target: &Target,
    from_network: bool,
    canary: &Canary,
    exposed: &[String],
) -> Vec<Finding> {
    let (http, spoke_http, first) = http_proxy(wire, target, canary).await;
    // A server that speaks first with 220 is (probably) FTP: asked for a bounce, not for SOCKS.
    if let Answer::Other(bytes) = &first {
        if crate::ftp::greets_like_ftp(bytes) {
            return crate::ftp::probe(wire, target, from_network)
                .await
                .into_iter()
                .collect();
        }
    }
    let socks = match spoke_http {
        true => None,
        false => socks_proxy(wire, target, canary).await,
    };
    let mut out = Vec::new();
    let kinds = [
        (CheckId::RelayHttpProxy, "HTTP proxy", http),
        (CheckId::RelaySocksProxy, "SOCKS proxy", socks),
    ];
    for (check, kind, proof) in kinds {
        let Some(proof) = proof else { continue };
        let (severity, status, reach) = if from_network {
            (
                Severity::Critical,
                Status::Open,
                format!("probed at {}, a non-loopback address of this host", target.connect),
            )
        } else {
            (
                Severity::High,
                Status::Unknown,
                format!(
                    "probed at {} (no non-loopback address was known): whether it relays for remote \
                     clients depends on its client ACL, which was not tested",
                    target.connect
                ),
            )
        };
        let mut evidence = vec![
            proof,
            reach,
            format!(
                "the destination was a canary loopwarden opened itself on {}, answering with a random \
                 token; nothing was sent to the host's own services",
                canary.addr
            ),
        ];
        if !exposed.is_empty() {
            let shown: Vec<&str> = exposed.iter().take(8).map(String::as_str).collect();
            let more = exposed.len().saturating_sub(shown.len());
            let tail = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            evidence.push(format!(
                "loopback services its clients reach: {}{tail}",
                shown.join(", ")
            ));
        }
        out.push(Finding {
            check,
            service: Some(target.service.clone()),
            attacker: Attacker::Remote,
            severity,
            status,
            confidence: Confidence::Probed,
            title: format!("open {kind}: relays clients to this host's loopback services").into(),
            evidence,
            fix: "make the proxy refuse loopback and local destinations (squid: http_access deny \
                  to_localhost; tinyproxy: a Filter with FilterDefaultDeny or filter entries for 127. \
                  and localhost), demand authentication, restrict its clients, or bind it to loopback"
                .into(),
            subject: None,
            reaches: Vec::new(),
        });
    }
    out
}

/// Tries `CONNECT` and an absolute-URI `GET` to the canary, under every spelling of loopback it
/// listens on (address, name, decimal, 127.0.0.2, `[::1]`). Returns
/// the evidence line of the first one that carried the token back, whether the listener
/// answered in HTTP at all (then it is no SOCKS server), and its first answer (a banner tells
/// other protocols).
async fn http_proxy(wire: &Wire, target: &Target, canary: &Canary) -> (Option<String>, bool, Answer) {
    let port = canary.addr.port();
    let mut spoke_http = false;
    let mut first = None;
    for dest in canary.hosts.iter().map(|host| format!("{host}:{port}")) {
        let (answer, proven) = via_connect(wire, target, &dest, canary).await;
        spoke_http |= answer.response().is_some();
        let first = first.get_or_insert_with(|| answer.clone()).clone();
        if proven {
            let line = format!(
                "CONNECT {dest}: {}; the canary's token came back through the tunnel",
                answer.describe()
            );
            return (Some(line), true, first);
        }
        let absolute = Request::new("GET", format!("http://{dest}/"), dest.clone())
            .header("User-Agent", "loopwarden-probe")
            .header("Connection", "close");
        let answer = wire.exchange(target.connect, Scheme::Http, &absolute).await;
        spoke_http |= answer.response().is_some();
        if answer.response().is_some_and(|r| canary.seen_in(&r.body)) {
            return (
                Some(format!(
                    "GET http://{dest}/: {} carrying the canary's token",
                    answer.describe()
                )),
                true,
                first,
            );
        }
        if !spoke_http {
            return (None, false, first);
        }
    }
    (None, spoke_http, first.unwrap_or(Answer::Silent))
}

/// `CONNECT dest`, and when accepted, a `GET /` through the tunnel. Returns the proxy's answer
/// and whether the token came back.
async fn via_connect(wire: &Wire, target: &Target, dest: &str, canary: &Canary) -> (Answer, bool) {
    let request = Request::new("CONNECT", dest, dest);
    let mut conn = match wire.connect(target.connect, Scheme::Http).await {
        Ok(conn) => conn,
        Err(e) => return (Answer::Failed(e.to_string()), false),
    };
    let (answer, rest) = wire.send_and_read(&mut conn, &request.to_bytes(), "CONNECT").await;
    let mut proven = false;
    let mut outcome = answer.describe();
    if answer.response().is_some_and(|r| r.is_success()) {
        let inner = tunnel_get(wire, &mut conn, dest).await;
        proven = canary.seen_in(&rest) || inner.response().is_some_and(|r| canary.seen_in(&r.body));
        outcome = format!("{outcome}; through the tunnel: {}", inner.describe());
    }
    wire.log(target.connect, "http-proxy", &request.summary(), &outcome);
    (answer, proven)
}

/// `GET /` sent through an established tunnel.
async fn tunnel_get(wire: &Wire, conn: &mut Conn, dest: &str) -> Answer {
    let get = Request::new("GET", "/", dest).header("Connection", "close");
    wire.send_and_read(conn, &get.to_bytes(), "GET").await.0
}

/// How one SOCKS attempt ended.
enum Socks {
    /// The listener does not speak this SOCKS version.
    OtherProtocol,
    /// It speaks it but did not relay to the canary.
    Refused,
    /// The canary's token came back; the evidence line.
    Proven(String),
}

/// Tries SOCKS5 (by address, then by name) and, at the same time, SOCKS4 then SOCKS4a, offering
/// no authentication. (A SOCKS4-only server waits silently on a SOCKS5 greeting, so one cannot
/// rule out the other.)
async fn socks_proxy(wire: &Wire, target: &Target, canary: &Canary) -> Option<String> {
    let (v5, v4) = tokio::join!(socks5_chain(wire, target, canary), socks4_chain(wire, target, canary));
    v5.or(v4)
}

async fn socks5_chain(wire: &Wire, target: &Target, canary: &Canary) -> Option<String> {
    let port = canary.addr.port().to_be_bytes();
    let mut by_name = vec![3u8, 9];
    by_name.extend_from_slice(b"localhost");
    for (label, address) in [("127.0.0.1", vec![1u8, 127, 0, 0, 1]), ("localhost", by_name)] {
        let mut request = vec![5u8, 1, 0];
        request.extend_from_slice(&address);
        request.extend_from_slice(&port);
        match socks5(wire, target, canary, label, &request).await {
            Socks::OtherProtocol => break,
            Socks::Refused => continue,
            Socks::Proven(line) => return Some(line),
        }
    }
    None
}

async fn socks4_chain(wire: &Wire, target: &Target, canary: &Canary) -> Option<String> {
    let port = canary.addr.port().to_be_bytes();
    let mut v4 = vec![4u8, 1, port[0], port[1], 127, 0, 0, 1];
    v4.extend_from_slice(b"loopwarden\0");
    let mut v4a = vec![4u8, 1, port[0], port[1], 0, 0, 0, 1];
    v4a.extend_from_slice(b"loopwarden\0localhost\0");
    for (label, request) in [("SOCKS4 CONNECT 127.0.0.1", v4), ("SOCKS4a CONNECT localhost", v4a)] {
        match socks4(wire, target, canary, label, &request).await {
            Socks::OtherProtocol => break,
            Socks::Refused => continue,
            Socks::Proven(line) => return Some(line),
        }
    }
    None
}

/// One SOCKS5 attempt: greeting offering only "no authentication", then CONNECT.
async fn socks5(wire: &Wire, target: &Target, canary: &Canary, label: &str, request: &[u8]) -> Socks {
    let what = format!("SOCKS5 CONNECT {label}:{}", canary.addr.port());
    let (outcome, result) = match socks5_exchange(wire, target, canary, request).await {
        Ok((outcome, result)) => (outcome, result),
        Err(e) => (format!("failed: {e}"), Socks::OtherProtocol),
    };
    wire.log(target.connect, "socks5", &what, &outcome);
    match result {
        Socks::Proven(_) => Socks::Proven(format!("{what}: {outcome}")),
        other => other,
    }
}

async fn socks5_exchange(
    wire: &Wire,
    target: &Target,
    canary: &Canary,
    request: &[u8],
) -> std::io::Result<(String, Socks)> {
    let mut conn = wire.connect(target.connect, Scheme::Http).await?;
    let choice = wire.send_and_read_exact(&mut conn, &[5, 1, 0], 2).await?;
    if choice[0] != 5 {
        return Ok((format!("not SOCKS5 (answered {:?})", choice), Socks::OtherProtocol));
    }
    if choice[1] != 0 {
        return Ok((
            "SOCKS5 server refuses unauthenticated clients".to_string(),
            Socks::Refused,
        ));
    }
    let head = wire.send_and_read_exact(&mut conn, request, 4).await?;
    if head[1] != 0 {
        return Ok((format!("SOCKS5 reply code {} (refused)", head[1]), Socks::Refused));
    }
    let rest = match head[3] {
        1 => 6,
        4 => 18,
        3 => wire.send_and_read_exact(&mut conn, &[], 1).await?[0] as usize + 2,
        other => return Ok((format!("SOCKS5 reply with address type {other}"), Socks::Refused)),
    };
    wire.send_and_read_exact(&mut conn, &[], rest).await?;
    Ok(tunnel_verdict(wire, &mut conn, canary, "SOCKS5 reply 0 (succeeded)").await)
}

/// One SOCKS4/4a attempt.
async fn socks4(wire: &Wire, target: &Target, canary: &Canary, label: &str, request: &[u8]) -> Socks {
    let what = format!("{label}:{}", canary.addr.port());
    let exchange = async {
        let mut conn = wire.connect(target.connect, Scheme::Http).await?;
        let reply = wire.send_and_read_exact(&mut conn, request, 8).await?;
        if reply[0] != 0 {
            return Ok::<_, std::io::Error>((format!("not SOCKS4 (answered {:?})", &reply[..2]), Socks::OtherProtocol));
        }
        if reply[1] != 0x5a {
            return Ok((format!("SOCKS4 reply {:#x} (refused)", reply[1]), Socks::Refused));
        }
        Ok(tunnel_verdict(wire, &mut conn, canary, "SOCKS4 reply 0x5a (granted)").await)
    };
    let (outcome, result) = exchange
        .await
        .unwrap_or_else(|e| (format!("failed: {e}"), Socks::OtherProtocol));
    wire.log(target.connect, "socks4", &what, &outcome);
    match result {
        Socks::Proven(_) => Socks::Proven(format!("{what}: {outcome}")),
        other => other,
    }
}

/// After a granted SOCKS CONNECT: asks the canary for its token through the tunnel.
async fn tunnel_verdict(wire: &Wire, conn: &mut Conn, canary: &Canary, granted: &str) -> (String, Socks) {
    let inner = tunnel_get(wire, conn, &canary.addr.to_string()).await;
    if inner.response().is_some_and(|r| canary.seen_in(&r.body)) {
        let line = format!("{granted}; the canary's token came back through the tunnel");
        (line.clone(), Socks::Proven(line))
    } else {
        (
            format!("{granted}; through the tunnel: {}", inner.describe()),
            Socks::Refused,
        )
    }
}
