//! What the relay checks share: which service sits at a relay's loopback destination, which
//! loopback services a relay hands out, and which of a process's listeners reach beyond loopback.

use crate::addr::is_loopback;
use crate::facts::{HostFacts, InetSocket, Protocol, SocketState};
use crate::inventory::{inet_scope, inet_service_id, is_inet_service};
use crate::report::Scope;
use std::collections::HashMap;
use std::net::IpAddr;

/// The snapshot's TCP listeners, indexed once for the relay checks' questions.
pub struct Listeners<'a> {
    /// Listening TCP sockets by port.
    by_port: HashMap<u16, Vec<&'a InetSocket>>,
    /// Service ids of the TCP services each pid holds beyond loopback, sorted, deduplicated.
    outward: HashMap<u32, Vec<String>>,
    /// Loopback TCP service ids (what a relay into loopback hands out), sorted, deduplicated.
    loopback: Vec<String>,
}

impl<'a> Listeners<'a> {
    /// Indexes the snapshot's TCP listeners.
    pub fn new(facts: &'a HostFacts) -> Listeners<'a> {
        let mut by_port: HashMap<u16, Vec<&InetSocket>> = HashMap::new();
        let mut outward: HashMap<u32, Vec<String>> = HashMap::new();
        let mut loopback = Vec::new();
        for s in facts.inet_sockets.iter().filter(|s| s.protocol == Protocol::Tcp) {
            if s.state == SocketState::Listen {
                by_port.entry(s.port).or_default().push(s);
                if is_loopback(s.address) {
                    loopback.push(inet_service_id(s));
                }
            }
            if is_inet_service(s) && inet_scope(s) != Scope::Loopback {
                for pid in &s.owners {
                    outward.entry(*pid).or_default().push(inet_service_id(s));
                }
            }
        }
        for ids in outward.values_mut().chain(std::iter::once(&mut loopback)) {
            ids.sort();
            ids.dedup();
        }
        Listeners {
            by_port,
            outward,
            loopback,
        }
    }

    /// The service a loopback TCP destination lands on: the listener bound to that loopback
    /// address (or to a wildcard) on that port, as its service id, and whether one listens now.
    /// Without one, the id the service would have.
    pub fn loopback_tcp_target(&self, host: &str, port: u16) -> (String, bool) {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = bare.parse().unwrap_or(IpAddr::from([127, 0, 0, 1]));
        let listening = self.by_port.get(&port).map(Vec::as_slice).unwrap_or_default();
        let exact = listening.iter().find(|s| s.address == ip);
        let covering = listening
            .iter()
            .find(|s| s.address.is_unspecified() && (s.address.is_ipv4() == ip.is_ipv4() || s.v6only == Some(false)));
        let any_loopback = listening
            .iter()
            .find(|s| is_loopback(s.address) && bare.parse::<IpAddr>().is_err());
        match exact.or(any_loopback).or(covering) {
            Some(socket) => (inet_service_id(socket), true),
            None => (format!("tcp:{}", crate::addr::socket_label(ip, port)), false),
        }
    }

    /// Service ids of the listeners process `pid` holds that reach beyond loopback.
    pub fn outward(&self, pid: u32) -> &[String] {
        self.outward.get(&pid).map(Vec::as_slice).unwrap_or_default()
    }

    /// Loopback TCP service ids of the snapshot (what a relay into loopback hands out).
    pub fn loopback_services(&self) -> &[String] {
        &self.loopback
    }
}
