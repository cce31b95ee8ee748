//! A TCP front: the port on both `127.0.0.1` and `[::1]`, else any user could take the other
//! family's port and receive the clients that resolve `localhost` to it. Where this namespace
//! has no IPv6 loopback address (`net.ipv6.conf.lo.disable_ipv6=1`, or IPv6 off altogether),
//! nobody can bind `[::1]` either: the front then listens on `127.0.0.1` alone and says so.

use super::{systemd, Bound, BoundFront, BACKLOG};
use crate::endpoint::Listen;
use socket2::{Domain, Socket, Type};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;

/// Binds (or takes from systemd) both sockets of a TCP front on `port`.
pub fn bind(port: u16, inherited: &mut Vec<OwnedFd>) -> Result<BoundFront, String> {
    if let Some(other) = inherited
        .iter()
        .filter_map(systemd::tcp_address)
        .find(|a| a.port() == port && !Listen::tcp_addresses(port).contains(a))
    {
        return Err(format!(
            "systemd passed a socket on {other} for this front: a guard front listens on 127.0.0.1:{port} and \
             [::1]:{port} only ({other} also takes connections {}) — in the .socket unit write \
             ListenStream=127.0.0.1:{port}, ListenStream=[::1]:{port} and BindIPv6Only=ipv6-only",
            if other.ip().is_unspecified() {
                "from every address of the host"
            } else {
                "on another address"
            }
        ));
    }
    let mut sockets = Vec::new();
    let mut notes = Vec::new();
    for addr in Listen::tcp_addresses(port) {
        if let Some(l) = systemd::take_tcp(inherited, addr) {
            sockets.push(Bound::Tcp(l));
            continue;
        }
        match listen(addr) {
            Ok(l) => sockets.push(Bound::Tcp(l)),
            Err(e) if addr.is_ipv6() && no_ipv6_loopback(&e) => notes.push(format!(
                "info: IPv6 loopback (::1) is not configured in this network namespace ({}): nobody can \
                 take [::1]:{port}, so the front listens on 127.0.0.1:{port} alone — restart the guard if \
                 ::1 is configured later",
                ipv6_state()
            )),
            Err(e) => return Err(message(addr, &e)),
        }
    }
    Ok(BoundFront { sockets, notes })
}

/// Whether a bind on `[::1]` failed because there is no `::1` here at all (not because someone
/// holds it): `EADDRNOTAVAIL` (the address is not configured) or `EAFNOSUPPORT` (no IPv6).
fn no_ipv6_loopback(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EADDRNOTAVAIL) | Some(libc::EAFNOSUPPORT))
}

/// Why `::1` is missing, for the note.
fn ipv6_state() -> String {
    match std::fs::read_to_string("/proc/sys/net/ipv6/conf/lo/disable_ipv6") {
        Ok(v) if v.trim() == "1" => "net.ipv6.conf.lo.disable_ipv6=1".into(),
        Ok(_) => "::1 was removed from lo".into(),
        Err(_) => "IPv6 is off in this kernel".into(),
    }
}

fn message(addr: SocketAddr, e: &std::io::Error) -> String {
    let hint = match e.raw_os_error() {
        Some(libc::EADDRINUSE) => format!(
            ": another process holds it — a guard front needs both 127.0.0.1:{p} and [::1]:{p} (else anyone can squat the other family)",
            p = addr.port()
        ),
        Some(libc::EACCES) => ": ports below net.ipv4.ip_unprivileged_port_start need privilege".into(),
        _ => String::new(),
    };
    format!("cannot bind {addr}: {e}{hint}")
}

fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let domain = if addr.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::STREAM.cloexec(), None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_families_are_taken_and_a_taken_one_fails_loudly() {
        let squatter = std::net::TcpListener::bind("[::1]:0").unwrap();
        let port = squatter.local_addr().unwrap().port();
        let err = bind(port, &mut Vec::new()).unwrap_err();
        assert!(err.contains(&format!("cannot bind [::1]:{port}")), "{err}");
        assert!(err.contains("needs both"), "{err}");
        drop(squatter);
        let bound = bind(port, &mut Vec::new()).unwrap();
        let names: Vec<String> = bound.sockets.iter().map(Bound::describe).collect();
        assert_eq!(names, vec![format!("127.0.0.1:{port}"), format!("[::1]:{port}")]);
        assert!(bound.notes.is_empty(), "{:?}", bound.notes);
    }

    #[test]
    fn a_passed_dual_stack_socket_is_named_not_mistaken_for_a_squatter() {
        let wildcard = Socket::new(Domain::IPV6, Type::STREAM, None).unwrap();
        wildcard.set_only_v6(false).unwrap();
        wildcard.bind(&"[::]:0".parse::<SocketAddr>().unwrap().into()).unwrap();
        wildcard.listen(1).unwrap();
        let port = wildcard.local_addr().unwrap().as_socket().unwrap().port();
        let mut inherited = vec![OwnedFd::from(wildcard)];
        let err = bind(port, &mut inherited).unwrap_err();
        assert!(
            err.contains(&format!("systemd passed a socket on [::]:{port}")),
            "{err}"
        );
        assert!(err.contains("BindIPv6Only=ipv6-only"), "{err}");
        assert!(!err.contains("another process holds it"), "{err}");
    }
}
