//! Which listeners to probe, and at which address.

use loopwarden_core::addr::{is_loopback, is_wildcard, unmapped};
use loopwarden_core::facts::{HostFacts, InetSocket, Protocol, SocketState};
use loopwarden_core::inventory::inet_service_id;
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// One TCP listener of the snapshot, with the address a probe connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The service id the findings name (`tcp:127.0.0.1:8080`).
    pub service: String,
    /// The listener's bound address.
    pub bound: IpAddr,
    /// The listener's port.
    pub port: u16,
    /// Where to connect: the listener's own address, or loopback for a wildcard.
    pub connect: SocketAddr,
    /// Whether the listener takes IPv4 connections to `0.0.0.0` (an IPv4 wildcard, or a
    /// dual-stack `[::]`): what browsers reach as `http://0.0.0.0:PORT`.
    pub zero_address: bool,
}

/// TCP listeners a web page in a local browser can reach: loopback- and wildcard-bound ones,
/// one per service id.
pub fn browser_targets(facts: &HostFacts) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    let mut seen = HashSet::new();
    for socket in tcp_listeners(facts) {
        if !(is_loopback(socket.address) || is_wildcard(socket.address)) {
            continue;
        }
        let service = inet_service_id(socket);
        if !seen.insert(service.clone()) {
            continue;
        }
        let connect_ip = match socket.address {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            other => unmapped(other),
        };
        out.push(Target {
            service,
            bound: socket.address,
            port: socket.port,
            connect: SocketAddr::new(connect_ip, socket.port),
            zero_address: takes_zero_address(socket),
        });
    }
    out
}

/// TCP listeners reachable beyond loopback (wildcard or a non-loopback address), with the address
/// a remote client would use: the listener's own address, or for a wildcard the first address of
/// an interface that is up and not loopback (so a proxy's client ACL judges the probe as it would
/// judge a client from the network). The flag says whether such an address was found; without
/// one the probe falls back to loopback. A listener bound to an address the host does not have
/// (`ip_nonlocal_bind`) is not probed at all: traffic must never leave the host.
pub fn relay_targets(facts: &HostFacts) -> Vec<(Target, bool)> {
    let mut out: Vec<(Target, bool)> = Vec::new();
    let mut seen = HashSet::new();
    for socket in tcp_listeners(facts) {
        if is_loopback(socket.address) {
            continue;
        }
        let service = inet_service_id(socket);
        if !seen.insert(service.clone()) {
            continue;
        }
        let (connect_ip, from_network) = if is_wildcard(socket.address) {
            match network_address(facts, socket) {
                Some(ip) => (ip, true),
                None if socket.address.is_ipv4() => (IpAddr::V4(Ipv4Addr::LOCALHOST), false),
                None => (IpAddr::V6(Ipv6Addr::LOCALHOST), false),
            }
        } else if host_has_address(facts, socket.address) {
            (socket.address, true)
        } else {
            // Bound to an address this host does not have (ip_nonlocal_bind, a keepalived
            // backup): connecting there would send the probe to another machine. Not probed.
            continue;
        };
        out.push((
            Target {
                service,
                bound: socket.address,
                port: socket.port,
                connect: SocketAddr::new(connect_ip, socket.port),
                zero_address: takes_zero_address(socket),
            },
            from_network,
        ));
    }
    out
}

/// Service ids of the TCP listeners bound to an address this host does not have: never probed,
/// since connecting there would send the probe to another machine.
pub fn foreign_address_listeners(facts: &HostFacts) -> Vec<String> {
    let mut out: Vec<String> = tcp_listeners(facts)
        .filter(|s| !is_loopback(s.address) && !is_wildcard(s.address) && !host_has_address(facts, s.address))
        .map(inet_service_id)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Whether `ip` is configured on one of this host's interfaces: the only non-loopback addresses
/// a probe may connect to.
fn host_has_address(facts: &HostFacts, ip: IpAddr) -> bool {
    facts
        .interfaces
        .iter()
        .any(|i| i.addresses.iter().any(|a| a.address == ip))
}

fn tcp_listeners(facts: &HostFacts) -> impl Iterator<Item = &InetSocket> {
    facts
        .inet_sockets
        .iter()
        .filter(|s| s.protocol == Protocol::Tcp && s.state == SocketState::Listen)
}

fn takes_zero_address(socket: &InetSocket) -> bool {
    match socket.address {
        IpAddr::V4(v4) => v4.is_unspecified(),
        IpAddr::V6(v6) => v6.is_unspecified() && socket.v6only == Some(false),
    }
}

/// A usable non-loopback address of an up interface for a wildcard listener of this family
/// (a dual-stack `[::]` also takes IPv4). IPv6 link-local addresses are skipped (they need a
/// scope).
fn network_address(facts: &HostFacts, socket: &InetSocket) -> Option<IpAddr> {
    let candidates = facts
        .interfaces
        .iter()
        .filter(|i| i.up && !i.loopback)
        .flat_map(|i| i.addresses.iter().map(|a| a.address));
    let usable: Vec<IpAddr> = candidates
        .filter(|ip| !is_loopback(*ip))
        .filter(|ip| match ip {
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
            IpAddr::V4(_) => true,
        })
        .collect();
    let same_family = usable
        .iter()
        .copied()
        .find(|ip| ip.is_ipv4() == socket.address.is_ipv4());
    let dual_stack_v4 = (socket.address.is_ipv6() && socket.v6only == Some(false))
        .then(|| usable.iter().copied().find(IpAddr::is_ipv4))
        .flatten();
    same_family.or(dual_stack_v4)
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopwarden_core::facts::{Interface, InterfaceAddress};

    fn listener(addr: &str, port: u16, v6only: Option<bool>) -> InetSocket {
        InetSocket {
            protocol: Protocol::Tcp,
            address: addr.parse().unwrap(),
            port,
            v6only,
            state: SocketState::Listen,
            peer: None,
            bound_device: None,
            uid: 0,
            inode: 1,
            owners: vec![],
        }
    }

    fn facts(sockets: Vec<InetSocket>, interfaces: Vec<Interface>) -> HostFacts {
        let mut facts: HostFacts = serde_json::from_value(serde_json::json!({
            "schema": "loopwarden.facts/v1",
            "host": {"hostname": "h", "kernel": "k", "netns": "n", "privileged": true, "collected_at": 0, "limits": []},
            "inet_sockets": [], "unix_sockets": [], "processes": [], "interfaces": [],
            "sysctls": {}, "names": {"hosts_file": null, "nsswitch_hosts": null},
            "accounts": {"users": [], "groups": []}
        }))
        .unwrap();
        facts.inet_sockets = sockets;
        facts.interfaces = interfaces;
        facts
    }

    fn eth0(addrs: &[&str]) -> Interface {
        Interface {
            name: "eth0".into(),
            index: 2,
            up: true,
            loopback: false,
            kind: None,
            mac: None,
            master: None,
            addresses: addrs
                .iter()
                .map(|a| InterfaceAddress {
                    address: a.parse().unwrap(),
                    prefix_len: 24,
                })
                .collect(),
        }
    }

    #[test]
    fn browser_targets_are_loopback_and_wildcard_listeners_at_loopback() {
        let f = facts(
            vec![
                listener("127.0.0.1", 80, None),
                listener("::", 81, Some(false)),
                listener("::", 82, Some(true)),
                listener("192.0.2.1", 83, None),
            ],
            vec![],
        );
        let t = browser_targets(&f);
        let got: Vec<(&str, String, bool)> = t
            .iter()
            .map(|t| (t.service.as_str(), t.connect.to_string(), t.zero_address))
            .collect();
        assert_eq!(
            got,
            vec![
                ("tcp:127.0.0.1:80", "127.0.0.1:80".to_string(), false),
                ("tcp:[::]:81", "[::1]:81".to_string(), true),
                ("tcp:[::]:82", "[::1]:82".to_string(), false),
            ]
        );
    }

    #[test]
    fn relay_targets_use_a_network_address_when_there_is_one() {
        let sockets = vec![
            listener("0.0.0.0", 8080, None),
            listener("127.0.0.1", 9, None),
            listener("::", 1080, Some(false)),
        ];
        let with = relay_targets(&facts(sockets.clone(), vec![eth0(&["fe80::1", "192.0.2.1"])]));
        let got: Vec<(String, bool)> = with.iter().map(|(t, n)| (t.connect.to_string(), *n)).collect();
        assert_eq!(
            got,
            vec![
                ("192.0.2.1:8080".to_string(), true),
                ("192.0.2.1:1080".to_string(), true)
            ]
        );
        let without = relay_targets(&facts(sockets, vec![]));
        assert_eq!(without[0].0.connect.to_string(), "127.0.0.1:8080");
        assert!(!without[0].1);
    }

    #[test]
    fn listeners_on_addresses_the_host_does_not_have_are_never_probed() {
        let sockets = vec![listener("198.51.100.7", 3128, None), listener("192.0.2.1", 3129, None)];
        let got = relay_targets(&facts(sockets, vec![eth0(&["192.0.2.1"])]));
        let connect: Vec<String> = got.iter().map(|(t, _)| t.connect.to_string()).collect();
        assert_eq!(connect, vec!["192.0.2.1:3129"]);
    }
}
