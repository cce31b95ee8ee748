//! What the relay checks share: whether a relay's destination is this host's loopback, which
//! service sits there, and which of a process's listeners reach beyond loopback.

use crate::addr::is_loopback;
use crate::facts::{HostFacts, Protocol, SocketState};
use crate::inventory::{inet_scope, inet_service_id, is_inet_service};
use crate::report::Scope;
use std::net::IpAddr;

/// Names that resolve to loopback on any sane host.
const LOOPBACK_NAMES: &[&str] = &["localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"];

/// Whether a destination host (name or literal, brackets allowed) is this host's loopback.
pub fn is_loopback_host(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    LOOPBACK_NAMES.iter().any(|n| n.eq_ignore_ascii_case(bare))
        || bare.to_ascii_lowercase().ends_with(".localhost")
        || bare.parse::<IpAddr>().is_ok_and(is_loopback)
}

/// The service a loopback TCP destination lands on: the listener bound to that loopback address
/// (or to a wildcard) on that port, as its service id, and whether one listens now. Without one,
/// the id the service would have.
pub fn loopback_tcp_target(facts: &HostFacts, host: &str, port: u16) -> (String, bool) {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = bare.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
    let listening = facts
        .inet_sockets
        .iter()
        .filter(|s| s.protocol == Protocol::Tcp && s.state == SocketState::Listen && s.port == port);
    let exact = listening.clone().find(|s| s.address == ip);
    let covering = listening
        .clone()
        .find(|s| s.address.is_unspecified() && (s.address.is_ipv4() == ip.is_ipv4() || s.v6only == Some(false)));
    let any_loopback = listening
        .clone()
        .find(|s| is_loopback(s.address) && bare.parse::<IpAddr>().is_err());
    match exact.or(any_loopback).or(covering) {
        Some(socket) => (inet_service_id(socket), true),
        None => (format!("tcp:{}", crate::addr::socket_label(ip, port)), false),
    }
}

/// Service ids of the listeners process `pid` holds that reach beyond loopback.
pub fn outward_listeners(facts: &HostFacts, pid: u32) -> Vec<String> {
    let mut out: Vec<String> = facts
        .inet_sockets
        .iter()
        .filter(|s| s.protocol == Protocol::Tcp && is_inet_service(s) && s.owners.contains(&pid))
        .filter(|s| inet_scope(s) != Scope::Loopback)
        .map(inet_service_id)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Splits `host:port`, `[v6]:port`; `None` when there is no numeric port.
pub fn split_host_port(spec: &str) -> Option<(String, u16)> {
    let (host, port) = spec.rsplit_once(':')?;
    let port = port.parse().ok()?;
    Some((host.trim_start_matches('[').trim_end_matches(']').to_string(), port))
}

/// Loopback TCP service ids of the snapshot (what a relay into loopback hands out).
pub fn loopback_services(facts: &HostFacts) -> Vec<String> {
    let mut out: Vec<String> = facts
        .inet_sockets
        .iter()
        .filter(|s| s.protocol == Protocol::Tcp && s.state == SocketState::Listen && is_loopback(s.address))
        .map(inet_service_id)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised() {
        for h in [
            "localhost",
            "127.0.0.1",
            "[::1]",
            "127.1.2.3",
            "LOCALHOST",
            "app.localhost",
        ] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["192.0.2.1", "example.com", "[2001:db8::1]", "10.0.2.2"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }

    #[test]
    fn host_port_splits_brackets() {
        assert_eq!(split_host_port("[::1]:80"), Some(("::1".into(), 80)));
        assert_eq!(split_host_port("localhost:5432"), Some(("localhost".into(), 5432)));
        assert_eq!(split_host_port("localhost"), None);
    }
}
