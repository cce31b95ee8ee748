//! The socket inventory from `sock_diag` netlink: TCP listeners, bound UDP sockets (IPv4 and
//! IPv6) and named Unix sockets.
//!
//! Each family/protocol is one dump. Where the kernel lacks the diag module for one of them
//! (`tcp_diag`, `udp_diag`, `unix_diag` or `sock_diag` itself), that part is read from
//! `/proc/net/*` instead and the snapshot says so; any other failure is a limit, never an abort.

pub mod inet;
pub mod unix;

use super::netlink::{self, DumpError, DumpSummary};
use super::procfs_fallback;
use crate::facts::{InetSocket, Limit};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use unix::DiagUnix;

/// Everything the socket dumps found, before owners and file metadata are added.
#[derive(Debug, Default)]
pub struct Sockets {
    /// TCP listeners and bound UDP sockets.
    pub inet: Vec<InetSocket>,
    /// Named, reachable Unix sockets.
    pub unix: Vec<DiagUnix>,
}

/// Dumps every socket family. `device_name` names the interface of a bound socket.
pub fn collect(device_name: &dyn Fn(u32) -> String, limits: &mut Vec<Limit>) -> Sockets {
    let mut sockets = Sockets::default();
    for dump in inet::DUMPS {
        let mut found = Vec::new();
        let result = netlink::dump(NETLINK_SOCK_DIAG, dump.request(), |message| {
            if let SockDiagMessage::InetResponse(response) = message {
                found.extend(dump.socket(&response, device_name));
            }
        });
        let name = dump.proc_name();
        match result {
            Ok(summary) => note_summary(&summary, "sockets.inet", name, limits),
            Err(e) if module_missing(&e) => match procfs_fallback::inet(dump.protocol, name) {
                Ok(sockets) => {
                    found = sockets;
                    limits.push(fallback_limit("sockets.inet", name, &e));
                }
                Err(proc_error) => limits.push(Limit {
                    scope: "sockets.inet".into(),
                    detail: format!(
                        "{name} sockets unknown: sock_diag failed ({e}) and /proc/net/{name} \
                             is unreadable ({proc_error})"
                    ),
                }),
            },
            Err(e) => limits.push(Limit {
                scope: "sockets.inet".into(),
                detail: format!("{name} sockets may be incomplete ({} seen): {e}", found.len()),
            }),
        }
        sockets.inet.append(&mut found);
    }

    let mut found = Vec::new();
    let result = netlink::dump(NETLINK_SOCK_DIAG, unix::request(), |message| {
        if let SockDiagMessage::UnixResponse(response) = message {
            found.extend(unix::socket(&response));
        }
    });
    match result {
        Ok(summary) => note_summary(&summary, "sockets.unix", "unix", limits),
        Err(e) if module_missing(&e) => match procfs_fallback::unix() {
            Ok(sockets) => {
                found = sockets;
                limits.push(fallback_limit("sockets.unix", "unix", &e));
            }
            Err(proc_error) => limits.push(Limit {
                scope: "sockets.unix".into(),
                detail: format!(
                    "unix sockets unknown: sock_diag failed ({e}) and /proc/net/unix is \
                     unreadable ({proc_error})"
                ),
            }),
        },
        Err(e) => limits.push(Limit {
            scope: "sockets.unix".into(),
            detail: format!("unix sockets may be incomplete ({} seen): {e}", found.len()),
        }),
    }
    sockets.unix = found;

    sockets.inet.sort_by(|a, b| {
        (a.protocol, a.address, a.port, a.state, a.inode).cmp(&(b.protocol, b.address, b.port, b.state, b.inode))
    });
    sockets
        .unix
        .sort_by(|a, b| (&a.socket.name, a.socket.inode).cmp(&(&b.socket.name, b.socket.inode)));
    sockets
}

/// Whether a dump failed because this kernel has no diag module for it (not built, not
/// loadable), the one case where `/proc/net` is read instead.
fn module_missing(error: &DumpError) -> bool {
    matches!(
        error.errno(),
        Some(libc::ENOENT | libc::EPROTONOSUPPORT | libc::EOPNOTSUPP | libc::EAFNOSUPPORT)
    )
}

fn fallback_limit(scope: &str, name: &str, error: &DumpError) -> Limit {
    let lost = if name == "unix" {
        "socket uids and bound inodes are unknown, abstract names show every NUL as '@'"
    } else {
        "IPV6_V6ONLY and bound interfaces are unknown"
    };
    Limit {
        scope: scope.into(),
        detail: format!("no sock_diag support for {name} sockets ({error}); read /proc/net/{name} instead: {lost}"),
    }
}

/// Turns the soft problems of a successful dump into limits.
fn note_summary(summary: &DumpSummary, scope: &str, name: &str, limits: &mut Vec<Limit>) {
    if summary.undecodable > 0 {
        limits.push(Limit {
            scope: scope.into(),
            detail: format!(
                "{} {name} socket record(s) could not be decoded and are missing: {}",
                summary.undecodable,
                summary.first_decode_error.as_deref().unwrap_or("unknown error")
            ),
        });
    }
    if summary.interrupted {
        limits.push(Limit {
            scope: scope.into(),
            detail: format!(
                "the {name} socket table changed while it was read: a socket opened or closed \
                 meanwhile may be missing"
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::netlink::{walk_datagram, DumpSummary};
    use super::*;
    use crate::facts::{Protocol, SocketState, UnixName, UnixType};
    use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6};

    /// The messages of a captured reply (see `tests/fixtures/netlink/README.md`).
    fn replies(name: &str) -> Vec<SockDiagMessage> {
        let path = format!("{}/tests/fixtures/netlink/{name}", env!("CARGO_MANIFEST_DIR"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut messages = Vec::new();
        let mut summary = DumpSummary::default();
        let done = walk_datagram(&bytes, &mut summary, &mut |m| messages.push(m)).unwrap();
        assert!(done, "the capture ends with NLMSG_DONE");
        assert_eq!(summary.undecodable, 0, "{:?}", summary.first_decode_error);
        messages
    }

    fn ip(s: &str) -> std::net::IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn tcp6_listeners_with_v6only_and_bound_device() {
        let dump = inet::InetDump {
            family: AF_INET6,
            protocol: Protocol::Tcp,
        };
        let name = |index: u32| {
            if index == 1 {
                "lo".to_string()
            } else {
                format!("ifindex:{index}")
            }
        };
        let sockets: Vec<InetSocket> = replies("inet_tcp6_listeners.bin")
            .iter()
            .filter_map(|m| match m {
                SockDiagMessage::InetResponse(r) => dump.socket(r, name),
                _ => None,
            })
            .collect();
        let got: Vec<_> = sockets
            .iter()
            .map(|s| {
                (
                    s.address,
                    s.port,
                    s.v6only,
                    s.state,
                    s.bound_device.as_deref(),
                    s.uid,
                    s.inode,
                )
            })
            .collect();
        let mut expected = vec![
            (ip("::"), 7002, Some(false), SocketState::Listen, None, 0, 112919),
            (ip("::1"), 7003, Some(true), SocketState::Listen, None, 0, 112920),
            (ip("::1"), 7006, Some(true), SocketState::Listen, Some("lo"), 0, 112921),
        ];
        let mut got = got;
        got.sort_by_key(|g| g.1);
        expected.sort_by_key(|e| e.1);
        assert_eq!(got, expected);
    }

    #[test]
    fn udp4_unconnected_and_connected() {
        let dump = inet::InetDump {
            family: AF_INET,
            protocol: Protocol::Udp,
        };
        let mut sockets: Vec<InetSocket> = replies("inet_udp4_sockets.bin")
            .iter()
            .filter_map(|m| match m {
                SockDiagMessage::InetResponse(r) => dump.socket(r, |i| i.to_string()),
                _ => None,
            })
            .collect();
        sockets.sort_by_key(|s| s.port);
        assert_eq!(sockets.len(), 2);
        assert_eq!(
            (sockets[0].port, sockets[0].state, sockets[0].peer),
            (5353, SocketState::Unconnected, None)
        );
        assert_eq!(sockets[0].v6only, None);
        assert_eq!(
            (sockets[1].address, sockets[1].state, sockets[1].peer),
            (ip("127.0.0.1"), SocketState::Connected, Some((ip("127.0.0.53"), 53)))
        );
    }

    #[test]
    fn unix_named_sockets_with_uid_and_bound_inode() {
        let mut sockets: Vec<unix::DiagUnix> = replies("unix_named_sockets.bin")
            .iter()
            .filter_map(|m| match m {
                SockDiagMessage::UnixResponse(r) => unix::socket(r),
                _ => None,
            })
            .collect();
        sockets.sort_by_key(|d| d.socket.inode);
        let dir = "/tmp/lw-capture-n56yi6jx";
        let got: Vec<_> = sockets
            .iter()
            .map(|d| {
                (
                    d.socket.kind,
                    d.socket.name.clone(),
                    d.socket.listening,
                    d.socket.uid,
                    d.socket.inode,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    UnixType::Stream,
                    UnixName::Path(format!("{dir}/stream.sock")),
                    true,
                    Some(0),
                    112924
                ),
                (
                    UnixType::Dgram,
                    UnixName::Path(format!("{dir}/dgram.sock")),
                    false,
                    Some(0),
                    112926
                ),
                (
                    UnixType::Seqpacket,
                    UnixName::Abstract("lw-abstract\\0x".into()),
                    true,
                    Some(0),
                    112928
                ),
                (
                    UnixType::Stream,
                    UnixName::Abstract("lw-nobody".into()),
                    true,
                    Some(65534),
                    112929
                ),
            ],
            "bound-but-not-listening and connected datagram sockets are left out"
        );
        assert_eq!(
            sockets[0].vfs,
            Some(unix::VfsId {
                inode: 10010914,
                major: 254,
                minor: 0
            })
        );
        assert_eq!(sockets[1].vfs.map(|v| v.inode), Some(10010916));
        assert_eq!(
            sockets[0].path.as_deref(),
            Some(std::path::Path::new(&format!("{dir}/stream.sock")))
        );
        assert!(sockets[2].vfs.is_none() && sockets[2].path.is_none());
    }

    #[test]
    fn live_dump_and_proc_fallback_agree_on_our_own_listeners() {
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut limits = Vec::new();
        let live = collect(&|i| i.to_string(), &mut limits);
        for (protocol, port, name) in [
            (Protocol::Tcp, tcp.local_addr().unwrap().port(), "tcp"),
            (Protocol::Udp, udp.local_addr().unwrap().port(), "udp"),
        ] {
            let from_diag = live
                .inet
                .iter()
                .find(|s| s.protocol == protocol && s.port == port)
                .unwrap();
            let from_proc = procfs_fallback::inet(protocol, name).unwrap();
            let from_proc = from_proc.iter().find(|s| s.port == port).unwrap();
            assert_eq!(
                (from_proc.address, from_proc.state, from_proc.uid, from_proc.inode),
                (from_diag.address, from_diag.state, from_diag.uid, from_diag.inode)
            );
        }
    }
}
