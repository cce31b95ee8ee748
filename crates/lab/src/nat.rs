//! Destination-NAT rules that publish a port to the network, from the firewall analysis.
//!
//! The lab needs to know which ports a neighbour should aim at `127.0.0.1` to exercise a NAT
//! path (kube-proxy `route_localnet` NodePorts, Docker `-p 127.0.0.1:P:Q`), and where the
//! translated traffic ends up (a local port, or another address that needs a stand-in). The rules
//! are those core's firewall analysis finds rewriting loopback-addressed IPv4 traffic from
//! outside (`Firewall::loopback_nat`), with the port and address the packet walk matched — so a
//! DNAT reached through jump chains is found too. The rules themselves are loaded into the victim
//! unchanged.

use loopwarden_core::facts::Protocol;
use loopwarden_core::firewall::questions::{Firewall, LoopbackNat};
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// A DNAT rule a neighbour can try to trigger with a loopback destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedPort {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The destination address the rule matches, when it matches a single one (`127.0.0.1`).
    pub match_address: Option<IpAddr>,
    /// The destination port the rule matches.
    pub port: u16,
    /// Where the rule sends the traffic.
    pub target: SocketAddr,
    /// The rule as the analysis names it, for evidence.
    pub rule: String,
    /// The rule translates traffic from outside *to* a loopback address (kube-proxy style,
    /// the ECS agent; reached only with route_localnet), rather than publishing a loopback
    /// address (Docker `-p 127.0.0.1:` style).
    pub to_loopback: bool,
}

impl PublishedPort {
    /// The address a neighbour aims at. Publishing rules: the rule's own loopback address, else
    /// `127.0.0.1`. Rules to loopback: the rule's own address (ECS's 169.254.170.2), else this
    /// host's address on the attacked link (`host`).
    pub fn attack_address(&self, host: Option<Ipv4Addr>) -> Option<IpAddr> {
        match (self.to_loopback, self.match_address) {
            (false, Some(a)) if a.is_loopback() => Some(a),
            (false, _) => Some(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            (true, Some(a)) if !a.is_loopback() => Some(a),
            (true, _) => host.map(IpAddr::V4),
        }
    }
}

/// Every IPv4 DNAT/redirect rule that rewrites loopback-addressed traffic from outside for a
/// single TCP or UDP port. Rules for any port, or that the analysis could not read, cannot be
/// aimed at and are left out.
pub fn published_ports(firewall: &Firewall) -> Vec<PublishedPort> {
    let mut out: Vec<PublishedPort> = Vec::new();
    for port in firewall.loopback_nat().into_iter().filter_map(published) {
        if !out.iter().any(|p| {
            p.protocol == port.protocol
                && p.port == port.port
                && p.target == port.target
                && p.to_loopback == port.to_loopback
        }) {
            out.push(port);
        }
    }
    out
}

fn published(nat: LoopbackNat) -> Option<PublishedPort> {
    if nat.v6 {
        return None;
    }
    let protocol = match nat.proto? {
        6 => Protocol::Tcp,
        17 => Protocol::Udp,
        _ => return None,
    };
    let port = nat.matched.1?;
    // A redirect (no address) delivers to the address the packet was sent to: loopback here.
    let address = nat.to.0.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    Some(PublishedPort {
        protocol,
        match_address: nat.matched.0,
        port,
        target: SocketAddr::new(address, nat.to.1.unwrap_or(port)),
        rule: nat.rule,
        to_loopback: !nat.from_loopback,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopwarden_core::facts::{HostFacts, IptablesDump, IptablesFamily};

    fn facts(iptables: &str) -> HostFacts {
        let mut facts = crate::scenario::find("hardened").expect("scenario").facts();
        facts.firewall = Default::default();
        facts.firewall.iptables.push(IptablesDump {
            family: IptablesFamily::Ipv4,
            backend: "nft".into(),
            text: iptables.into(),
        });
        facts
    }

    #[test]
    fn finds_docker_and_kube_style_rules_and_leaves_the_others() {
        let dump = "*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n\
            -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
            -A PREROUTING -d 127.0.0.1/32 -p udp -m udp --dport 9000 -j DNAT --to-destination 127.0.0.1:7001\n\
            -A PREROUTING -d 192.0.2.1/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.2:80\n\
            -A DOCKER -d 127.0.0.1/32 ! -i docker0 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.17.0.2:80\n\
            -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\nCOMMIT\n";
        let mut ports = published_ports(&Firewall::new(&facts(dump)));
        ports.sort_by_key(|p| p.port);
        let got: Vec<(Protocol, u16, String)> = ports
            .iter()
            .map(|p| (p.protocol, p.port, p.target.to_string()))
            .collect();
        assert_eq!(
            got,
            vec![
                (Protocol::Tcp, 8081, "172.17.0.2:80".to_string()),
                (Protocol::Udp, 9000, "127.0.0.1:7001".to_string())
            ],
            "{ports:#?}"
        );
        assert!(ports
            .iter()
            .all(|p| p.attack_address(None) == Some(IpAddr::from([127, 0, 0, 1]))));
    }

    #[test]
    fn a_dnat_reached_through_a_jump_chain_keeps_the_port_matched_before_the_jump() {
        let dump = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-SEP-A - [0:0]\n\
            -A PREROUTING -j KUBE-NODEPORTS\n\
            -A KUBE-NODEPORTS -p tcp -m tcp --dport 30080 -j KUBE-SEP-A\n\
            -A KUBE-SEP-A -p tcp -j DNAT --to-destination 127.0.0.1:10249\nCOMMIT\n";
        let ports = published_ports(&Firewall::new(&facts(dump)));
        assert_eq!(ports.len(), 1, "{ports:#?}");
        assert_eq!(
            (ports[0].port, ports[0].target.to_string()),
            (30080, "127.0.0.1:10249".to_string())
        );
    }

    #[test]
    fn a_rule_to_loopback_for_any_destination_is_aimed_at_this_host_too() {
        // The nftables wiki's layout: `tcp dport 8080 dnat to 127.0.0.1:7001` in a native table.
        let dump = "*nat\n:PREROUTING ACCEPT [0:0]\n\
            -A PREROUTING -p tcp -m tcp --dport 8080 -j DNAT --to-destination 127.0.0.1:7001\nCOMMIT\n";
        let ports = published_ports(&Firewall::new(&facts(dump)));
        let to: Vec<&PublishedPort> = ports.iter().filter(|p| p.to_loopback).collect();
        assert_eq!(to.len(), 1, "{ports:#?}");
        let host = std::net::Ipv4Addr::new(192, 0, 2, 1);
        assert_eq!(to[0].attack_address(Some(host)), Some(IpAddr::V4(host)));
        assert!(
            ports.iter().any(|p| !p.to_loopback),
            "127.0.0.1:8080 is published too: {ports:#?}"
        );
    }
}
