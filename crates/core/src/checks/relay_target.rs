//! What the relay checks share: which service sits at a relay's loopback destination, which
//! loopback services a relay hands out, and which of a process's listeners reach beyond loopback.

use crate::addr::is_loopback;
use crate::facts::{HostFacts, Protocol, SocketState};
use crate::inventory::{inet_scope, inet_service_id, is_inet_service};
use crate::report::Scope;
use std::net::IpAddr;

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
