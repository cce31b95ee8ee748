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
        (a.protocol, a.address, a.port, a.state, a.inode)
            .cmp(&(b.protocol, b.address, b.port, b.state, b.inode))
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
        detail: format!(
            "no sock_diag support for {name} sockets ({error}); read /proc/net/{name} instead: {lost}"
        ),
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
