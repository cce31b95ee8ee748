//! Built-in demonstrations: snapshots of typical hosts, built in code, that `prove --scenario`
//! replays without reading the host it runs on.
//!
//! Each is a host with documentation addresses (`192.0.2.1/24`, `2001:db8::1/64` on `eth0`)
//! and the listeners, sysctls and rules of the case it shows.

use loopwarden_core::facts::{
    FirewallFacts, HostFacts, HostInfo, InetSocket, Interface, InterfaceAddress, IptablesDump, IptablesFamily,
    Protocol, SocketState, Sysctls, FACTS_SCHEMA,
};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A built-in scenario: its name, what it shows, and how to build its facts.
pub struct Scenario {
    /// The name given to `--scenario`.
    pub name: &'static str,
    /// What it demonstrates.
    pub about: &'static str,
    build: fn() -> HostFacts,
}

impl Scenario {
    /// The scenario's host snapshot.
    pub fn facts(&self) -> HostFacts {
        (self.build)()
    }
}

/// Every built-in scenario.
pub static SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "kube-route-localnet",
        about: "CVE-2020-8558: kube-proxy sets route_localnet=1; kubelet and kube-proxy ports on \
                127.0.0.1 and a NodePort DNAT to 127.0.0.1 answer a LAN neighbour",
        build: kube_route_localnet,
    },
    Scenario {
        name: "docker-published-loopback",
        about: "moby #41872: `docker run -p 127.0.0.1:8081:80` before Docker 28 — the DNAT to the \
                container address is reachable from the LAN with default sysctls",
        build: docker_published_loopback,
    },
    Scenario {
        name: "ntpd-ipv6-loopback",
        about: "CVE-2014-9298: ntpd trusted ::1 sources; today's kernels drop ::1 from outside, but \
                UDP from ::ffff:127.0.0.1 still reaches its [::] socket",
        build: ntpd_ipv6_loopback,
    },
    Scenario {
        name: "mapped-loopback-udp",
        about: "UDP from ::ffff:127.0.0.1 reaches [::] UDP sockets, dual-stack and IPV6_V6ONLY, \
                with default sysctls; the application sees a loopback peer",
        build: mapped_loopback_udp,
    },
    Scenario {
        name: "hardened",
        about: "the guard table (raw prerouting drops of loopback sources and destinations on \
                non-lo interfaces) with route_localnet=0 and strict rp_filter: everything blocked",
        build: hardened,
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// The names of every scenario, for error messages.
pub fn names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|s| s.name).collect()
}

/// A fresh-namespace host: `lo` and `eth0` with documentation addresses, default sysctls, no
/// listeners, no rules.
pub fn base_facts(name: &str) -> HostFacts {
    let mut sysctls = BTreeMap::new();
    for scope in ["all", "default", "eth0", "lo"] {
        for (key, value) in [("route_localnet", "0"), ("rp_filter", "0"), ("accept_local", "0")] {
            sysctls.insert(format!("net.ipv4.conf.{scope}.{key}"), value.to_string());
        }
    }
    sysctls.insert("net.ipv4.ip_forward".into(), "0".into());
    HostFacts {
        schema: FACTS_SCHEMA.to_string(),
        host: HostInfo {
            hostname: format!("scenario-{name}"),
            kernel: String::new(),
            netns: format!("scenario:{name}"),
            privileged: true,
            collected_at: 0,
            limits: vec![],
        },
        inet_sockets: vec![],
        unix_sockets: vec![],
        processes: vec![],
        interfaces: vec![
            interface("lo", 1, true, &[("127.0.0.1", 8), ("::1", 128)]),
            interface("eth0", 2, false, &[("192.0.2.1", 24), ("2001:db8::1", 64)]),
        ],
        // Only the connected routes, which the kernel makes from the addresses.
        routes: Some(Vec::new()),
        sysctls: Sysctls(sysctls),
        names: Default::default(),
        accounts: Default::default(),
        firewall: FirewallFacts::default(),
        relays: Default::default(),
        guards: Vec::new(),
    }
}

/// An interface with the given addresses.
pub fn interface(name: &str, index: u32, loopback: bool, addresses: &[(&str, u8)]) -> Interface {
    Interface {
        name: name.to_string(),
        index,
        up: true,
        loopback,
        kind: None,
        mac: None,
        master: None,
        addresses: addresses
            .iter()
            .filter_map(|(a, len)| {
                a.parse::<IpAddr>().ok().map(|address| InterfaceAddress {
                    address,
                    prefix_len: *len,
                })
            })
            .collect(),
    }
}

/// A listening TCP or unconnected UDP socket (`v6only` matters for `::` only).
pub fn listener(protocol: Protocol, address: &str, port: u16, v6only: Option<bool>) -> InetSocket {
    InetSocket {
        protocol,
        address: address.parse().unwrap_or(IpAddr::from([127, 0, 0, 1])),
        port,
        v6only,
        state: if protocol == Protocol::Tcp {
            SocketState::Listen
        } else {
            SocketState::Unconnected
        },
        peer: None,
        bound_device: None,
        uid: 0,
        inode: 0,
        owners: vec![],
    }
}

/// A UDP socket bound to `address:port` and connected to `peer:peer_port` (a resolver stub's
/// upstream socket).
pub fn connected_udp(address: &str, port: u16, peer: &str, peer_port: u16) -> InetSocket {
    let mut s = listener(Protocol::Udp, address, port, None);
    s.state = SocketState::Connected;
    s.peer = peer.parse().ok().map(|p| (p, peer_port));
    s
}

fn set(facts: &mut HostFacts, key: &str, value: &str) {
    facts.sysctls.0.insert(key.to_string(), value.to_string());
}

fn iptables(text: &str) -> IptablesDump {
    IptablesDump {
        family: IptablesFamily::Ipv4,
        backend: "nft".into(),
        text: text.to_string(),
    }
}

fn kube_route_localnet() -> HostFacts {
    let mut f = base_facts("kube-route-localnet");
    set(&mut f, "net.ipv4.conf.all.route_localnet", "1");
    set(&mut f, "net.ipv4.ip_forward", "1");
    f.inet_sockets = vec![
        listener(Protocol::Tcp, "127.0.0.1", 10248, None),
        listener(Protocol::Tcp, "127.0.0.1", 10249, None),
        listener(Protocol::Udp, "127.0.0.1", 8125, None),
        listener(Protocol::Tcp, "0.0.0.0", 10250, None),
    ];
    f.firewall.iptables.push(iptables(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
         -A PREROUTING -d 127.0.0.1/32 -p tcp -m tcp --dport 30080 -j DNAT --to-destination 127.0.0.1:10249\n\
         COMMIT\n",
    ));
    f
}

fn docker_published_loopback() -> HostFacts {
    let mut f = base_facts("docker-published-loopback");
    f.interfaces.push(interface("docker0", 3, false, &[("172.17.0.1", 16)]));
    set(&mut f, "net.ipv4.ip_forward", "1");
    f.inet_sockets = vec![
        listener(Protocol::Tcp, "127.0.0.1", 8081, None),
        listener(Protocol::Tcp, "0.0.0.0", 22, None),
    ];
    f.firewall.iptables.push(iptables(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
         :DOCKER - [0:0]\n\
         -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
         -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n\
         -A DOCKER -i docker0 -j RETURN\n\
         -A DOCKER -d 127.0.0.1/32 ! -i docker0 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.17.0.2:80\n\
         COMMIT\n\
         *filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         -A FORWARD -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT\n\
         -A FORWARD -i docker0 ! -o docker0 -j ACCEPT\n\
         COMMIT\n",
    ));
    f
}

fn ntpd_ipv6_loopback() -> HostFacts {
    let mut f = base_facts("ntpd-ipv6-loopback");
    f.inet_sockets = vec![
        listener(Protocol::Udp, "0.0.0.0", 123, None),
        listener(Protocol::Udp, "::", 123, Some(true)),
        listener(Protocol::Udp, "127.0.0.1", 123, None),
        listener(Protocol::Udp, "::1", 123, Some(true)),
    ];
    f
}

fn mapped_loopback_udp() -> HostFacts {
    let mut f = base_facts("mapped-loopback-udp");
    f.inet_sockets = vec![
        listener(Protocol::Udp, "::", 5353, Some(false)),
        listener(Protocol::Udp, "::", 5354, Some(true)),
        listener(Protocol::Tcp, "::", 8443, Some(false)),
    ];
    f
}

/// The guard table of notes §2, in `nft list ruleset` form.
pub const GUARD_TABLE: &str = "table inet loopback_guard {\n\
\tchain prerouting {\n\
\t\ttype filter hook prerouting priority raw; policy accept;\n\
\t\tiifname != \"lo\" ip saddr 127.0.0.0/8 counter drop\n\
\t\tiifname != \"lo\" ip daddr 127.0.0.0/8 counter drop\n\
\t\tiifname != \"lo\" ip6 saddr ::1 counter drop\n\
\t\tiifname != \"lo\" ip6 daddr ::1 counter drop\n\
\t\tiifname != \"lo\" ip6 saddr ::ffff:127.0.0.0/104 counter drop\n\
\t\tiifname != \"lo\" ip6 daddr ::ffff:127.0.0.0/104 counter drop\n\
\t}\n\
}\n";

fn hardened() -> HostFacts {
    let mut f = base_facts("hardened");
    for scope in ["all", "default", "eth0"] {
        set(&mut f, &format!("net.ipv4.conf.{scope}.rp_filter"), "1");
    }
    f.inet_sockets = vec![
        listener(Protocol::Tcp, "127.0.0.1", 5432, None),
        listener(Protocol::Tcp, "0.0.0.0", 22, None),
        listener(Protocol::Udp, "::", 123, Some(false)),
        listener(Protocol::Udp, "::", 5354, Some(true)),
        connected_udp("127.0.0.1", 41000, "127.0.0.53", 53),
    ];
    f.firewall.nft_text = Some(GUARD_TABLE.to_string());
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scenario_builds_a_valid_snapshot() {
        for s in SCENARIOS {
            let facts = s.facts();
            let json = facts.to_json().expect("a scenario serialises");
            assert!(HostFacts::from_json(&json).is_ok(), "{} does not round-trip", s.name);
            assert!(!facts.inet_sockets.is_empty(), "{} has no listeners", s.name);
        }
        assert!(find("hardened").is_some());
        assert!(find("nope").is_none());
    }
}
