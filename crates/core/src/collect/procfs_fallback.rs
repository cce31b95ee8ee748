//! `/proc/net/{tcp,tcp6,udp,udp6,unix}`: the socket tables read as text, used only where the
//! kernel has no `sock_diag` module for a family (the caller records a limit saying so).
//!
//! These files show less than `sock_diag`: no `IPV6_V6ONLY` state, no bound interface, no Unix
//! socket uid or bound inode, no Unix peer, and abstract names with every NUL printed as `@`.

use super::sock_diag::unix::{printable_abstract, DiagUnix};
use crate::facts::{InetSocket, Protocol, SocketState, UnixName, UnixSocket, UnixType};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

/// `TCP_ESTABLISHED`, `TCP_CLOSE`, `TCP_LISTEN` as the `st` column prints them.
const ST_ESTABLISHED: u8 = 0x01;
const ST_CLOSE: u8 = 0x07;
const ST_LISTEN: u8 = 0x0A;

/// Reads `/proc/net/<name>` (`tcp`, `tcp6`, `udp`, `udp6`) of the calling thread's namespace
/// (`/proc/net` is the thread group leader's, which may be elsewhere).
pub fn inet(protocol: Protocol, name: &str) -> io::Result<Vec<InetSocket>> {
    let text = std::fs::read_to_string(format!("/proc/thread-self/net/{name}"))?;
    Ok(parse_inet(&text, protocol))
}

/// Parses a `/proc/net/{tcp,tcp6,udp,udp6}` table: TCP listeners, UDP unconnected and connected
/// sockets. Lines that do not parse are skipped.
pub fn parse_inet(text: &str, protocol: Protocol) -> Vec<InetSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| parse_inet_line(line, protocol))
        .collect()
}

fn parse_inet_line(line: &str, protocol: Protocol) -> Option<InetSocket> {
    let mut fields = line.split_whitespace();
    let _slot = fields.next()?;
    let (address, port) = parse_endpoint(fields.next()?)?;
    let (peer_address, peer_port) = parse_endpoint(fields.next()?)?;
    let st = u8::from_str_radix(fields.next()?, 16).ok()?;
    let state = match (protocol, st) {
        (Protocol::Tcp, ST_LISTEN) => SocketState::Listen,
        (Protocol::Udp, ST_CLOSE) => SocketState::Unconnected,
        (Protocol::Udp, ST_ESTABLISHED) => SocketState::Connected,
        _ => return None,
    };
    let mut rest = fields.skip(3); // tx_queue:rx_queue, tr:tm->when, retrnsmt
    let uid = rest.next()?.parse().ok()?;
    let _timeout = rest.next()?;
    let inode = rest.next()?.parse().ok()?;
    Some(InetSocket {
        protocol,
        address,
        port,
        v6only: None,
        state,
        peer: (state == SocketState::Connected).then_some((peer_address, peer_port)),
        bound_device: None,
        uid,
        inode,
        owners: Vec::new(),
    })
}

/// `0100007F:1B59` → `127.0.0.1:7001`. The address is printed as 32-bit words in host byte
/// order (one word for IPv4, four for IPv6); the port in hex.
fn parse_endpoint(field: &str) -> Option<(IpAddr, u16)> {
    let (hex, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    let address = match hex.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut octets = [0u8; 16];
            for i in 0..4 {
                octets[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some((address, port))
}

/// Reads `/proc/net/unix` of the calling thread's namespace.
pub fn unix() -> io::Result<Vec<DiagUnix>> {
    Ok(parse_unix(&std::fs::read_to_string("/proc/thread-self/net/unix")?))
}

/// `__SO_ACCEPTCON` in the `Flags` column: the socket listens.
const SO_ACCEPTCON: u32 = 0x1_0000;

/// Parses `/proc/net/unix`: named listening stream/seqpacket sockets and named datagram sockets.
/// Without a peer column, every named datagram socket is kept: one connected to a peer (reachable
/// only by it) cannot be told from one that others merely connected to.
pub fn parse_unix(text: &str) -> Vec<DiagUnix> {
    text.lines().skip(1).filter_map(parse_unix_line).collect()
}

fn parse_unix_line(line: &str) -> Option<DiagUnix> {
    // Num RefCount Protocol Flags Type St Inode Path — the path, after one space, is the rest of
    // the line (it may itself hold spaces).
    let mut rest = line;
    let mut field = || {
        let trimmed = rest.trim_start_matches(' ');
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (value, tail) = trimmed.split_at(end);
        rest = tail;
        (!value.is_empty()).then_some(value)
    };
    let _num = field()?;
    let _refcount = field()?;
    let _protocol = field()?;
    let flags = u32::from_str_radix(field()?, 16).ok()?;
    let kind = match u16::from_str_radix(field()?, 16).ok()? {
        1 => UnixType::Stream,
        2 => UnixType::Dgram,
        5 => UnixType::Seqpacket,
        _ => return None,
    };
    let _st = field()?;
    let inode = field()?.parse().ok()?;
    let path = rest.strip_prefix(' ')?;
    let listening = flags & SO_ACCEPTCON != 0;
    if kind != UnixType::Dgram && !listening {
        return None;
    }
    let (name, fs_path) = match path.strip_prefix('@') {
        Some(abstract_name) => (UnixName::Abstract(printable_abstract(abstract_name.as_bytes())), None),
        None if !path.is_empty() => (UnixName::Path(path.to_string()), Some(PathBuf::from(path))),
        None => return None,
    };
    Some(DiagUnix {
        socket: UnixSocket {
            kind,
            name,
            listening,
            inode,
            uid: None,
            owners: Vec::new(),
            file: None,
            parents: Vec::new(),
        },
        path: fs_path,
        vfs: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/proc/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn tcp_listener_on_loopback() {
        let sockets = parse_inet(&fixture("tcp_loopback_listener"), Protocol::Tcp);
        assert_eq!(sockets.len(), 1);
        let s = &sockets[0];
        assert_eq!(
            (s.address, s.port, s.state, s.inode, s.uid),
            (ip("127.0.0.1"), 7001, SocketState::Listen, 17772, 0)
        );
        assert_eq!(s.v6only, None);
    }

    #[test]
    fn tcp6_wildcard_and_loopback_listeners() {
        let sockets = parse_inet(&fixture("tcp6_dualstack_and_v6only_listeners"), Protocol::Tcp);
        let got: Vec<_> = sockets.iter().map(|s| (s.address, s.port, s.inode)).collect();
        assert_eq!(got, vec![(ip("::"), 7002, 17773), (ip("::1"), 7003, 17774)]);
    }

    #[test]
    fn udp_unconnected_and_connected_with_peer() {
        let sockets = parse_inet(&fixture("udp_unconnected_and_connected"), Protocol::Udp);
        assert_eq!(sockets.len(), 2);
        assert_eq!(
            (sockets[0].address, sockets[0].port, sockets[0].state),
            (ip("0.0.0.0"), 5353, SocketState::Unconnected)
        );
        assert_eq!(sockets[0].peer, None);
        assert_eq!(
            (sockets[1].address, sockets[1].port, sockets[1].state),
            (ip("127.0.0.1"), 5354, SocketState::Connected)
        );
        assert_eq!(sockets[1].peer, Some((ip("127.0.0.53"), 53)));
    }

    #[test]
    fn udp6_sockets() {
        let sockets = parse_inet(&fixture("udp6_v6only_and_dualstack"), Protocol::Udp);
        let got: Vec<_> = sockets.iter().map(|s| (s.address, s.port, s.state, s.inode)).collect();
        assert_eq!(
            got,
            vec![
                (ip("::1"), 5355, SocketState::Unconnected, 17777),
                (ip("::"), 5356, SocketState::Unconnected, 17778)
            ]
        );
    }

    #[test]
    fn tcp_table_read_as_udp_yields_nothing() {
        // A LISTEN row is not a UDP state: nothing is invented.
        assert!(parse_inet(&fixture("tcp_loopback_listener"), Protocol::Udp).is_empty());
    }

    #[test]
    fn unix_listeners_and_datagram_sockets() {
        let sockets = parse_unix(&fixture("unix_stream_dgram_seqpacket_abstract"));
        let got: Vec<_> = sockets
            .iter()
            .map(|d| (d.socket.kind, d.socket.name.clone(), d.socket.listening, d.socket.inode))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    UnixType::Stream,
                    UnixName::Path("/tmp/lwcap/stream.sock".into()),
                    true,
                    17779
                ),
                (
                    UnixType::Dgram,
                    UnixName::Path("/tmp/lwcap/dgram.sock".into()),
                    false,
                    17781
                ),
                (
                    UnixType::Dgram,
                    UnixName::Path("/tmp/lwcap/connected-dgram.sock".into()),
                    false,
                    17783
                ),
                (
                    UnixType::Seqpacket,
                    UnixName::Abstract("lw-abstract@x".into()),
                    true,
                    17782
                ),
            ]
        );
        assert_eq!(
            sockets[0].path.as_deref(),
            Some(std::path::Path::new("/tmp/lwcap/stream.sock"))
        );
        assert!(sockets.iter().all(|d| d.socket.uid.is_none() && d.vfs.is_none()));
    }

    #[test]
    fn garbage_lines_are_skipped() {
        assert!(parse_inet("header\nnot a socket line\n   0: zz:1 00:0 0A\n", Protocol::Tcp).is_empty());
        assert!(parse_unix("header\n0000: 1 2\n").is_empty());
    }
}
