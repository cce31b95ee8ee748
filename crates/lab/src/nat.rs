//! Destination-NAT rules that publish a port to the network, read from the captured ruleset.
//!
//! The lab needs to know which ports a neighbour should aim at `127.0.0.1` to exercise a NAT
//! path (kube-proxy `route_localnet` NodePorts, Docker `-p 127.0.0.1:P:Q`), and where the
//! translated traffic ends up (a local port, or another address that needs a stand-in). Only the
//! shape the lab needs is extracted; the rules themselves are loaded into the victim unchanged.

use loopwarden_core::facts::{FirewallFacts, IptablesFamily, Protocol};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};

/// A DNAT rule a neighbour can try to trigger with a loopback destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedPort {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The destination address the rule matches, when it names one (`-d 127.0.0.1/32`).
    pub match_address: Option<IpAddr>,
    /// The destination port the rule matches.
    pub port: u16,
    /// Where the rule sends the traffic.
    pub target: SocketAddr,
    /// The rule as captured, for evidence.
    pub rule: String,
}

impl PublishedPort {
    /// The address a neighbour aims at: the rule's own address when it is a loopback one,
    /// `127.0.0.1` when the rule matches any (or only "local") destination.
    pub fn attack_address(&self) -> IpAddr {
        match self.match_address {
            Some(a) if a.is_loopback() => a,
            _ => IpAddr::from([127, 0, 0, 1]),
        }
    }
}

/// Every IPv4 DNAT rule of the captured ruleset that translates a destination port and whose
/// destination match (if any) is a loopback address. Rules without a port match or aimed at a
/// specific non-loopback address are not loopback-publishing and are skipped.
pub fn published_ports(firewall: &FirewallFacts) -> Vec<PublishedPort> {
    let mut out: Vec<PublishedPort> = Vec::new();
    for dump in firewall.iptables.iter().filter(|d| d.family == IptablesFamily::Ipv4) {
        out.extend(dump.text.lines().filter_map(from_iptables_line));
    }
    if let Some(text) = &firewall.nft_text {
        for line in text.lines().filter_map(from_nft_line) {
            if !out
                .iter()
                .any(|p| p.port == line.port && p.target == line.target && p.protocol == line.protocol)
            {
                out.push(line);
            }
        }
    }
    out.retain(|p| p.match_address.is_none_or(|a| a.is_loopback()));
    out
}

fn from_iptables_line(line: &str) -> Option<PublishedPort> {
    let words: Vec<&str> = line.split_whitespace().collect();
    if !words.windows(2).any(|w| w == ["-j", "DNAT"]) {
        return None;
    }
    // iptables-save writes a negation before its flag (`! -d X`), so a flag's value follows it.
    let value = |flag: &str| words.windows(2).find(|w| w[0] == flag).map(|w| w[1]);
    let negated = |flag: &str| words.windows(2).any(|w| w[0] == "!" && w[1] == flag);
    let protocol = match value("-p")? {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    let port = value("--dport")?.parse().ok()?;
    let match_address = if negated("-d") {
        None
    } else {
        value("-d").and_then(parse_prefix_address)
    };
    let target = parse_target(value("--to-destination")?, port)?;
    Some(PublishedPort {
        protocol,
        match_address,
        port,
        target,
        rule: line.trim().to_string(),
    })
}

fn from_nft_line(line: &str) -> Option<PublishedPort> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "dnat")?;
    let mut rest = &words[at + 1..];
    if rest.first() == Some(&"ip") {
        rest = &rest[1..];
    }
    if rest.first() != Some(&"to") {
        return None;
    }
    let (protocol, port) = words.windows(3).find_map(|w| {
        let protocol = match w[0] {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => return None,
        };
        (w[1] == "dport")
            .then(|| w[2].parse().ok().map(|p| (protocol, p)))
            .flatten()
    })?;
    let match_address = words
        .windows(3)
        .find(|w| w[0] == "ip" && w[1] == "daddr")
        .and_then(|w| parse_prefix_address(w[2]));
    let target = parse_target(rest.get(1)?, port)?;
    Some(PublishedPort {
        protocol,
        match_address,
        port,
        target,
        rule: line.trim().to_string(),
    })
}

/// `127.0.0.1/32` or `127.0.0.1` → the address (a prefix wider than one address is not one).
fn parse_prefix_address(text: &str) -> Option<IpAddr> {
    match text.split_once('/') {
        Some((a, "32")) => a.parse().ok(),
        Some(_) => None,
        None => text.parse().ok(),
    }
}

/// `172.17.0.2:80`, `172.17.0.2` (same port) or `172.17.0.2:80-80`.
fn parse_target(text: &str, port: u16) -> Option<SocketAddr> {
    match text.split_once(':') {
        Some((a, p)) => {
            let p = p.split('-').next()?.parse().ok()?;
            Some(SocketAddr::new(a.parse().ok()?, p))
        }
        None => Some(SocketAddr::new(text.parse().ok()?, port)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopwarden_core::facts::IptablesDump;

    fn facts(iptables: &str, nft: &str) -> FirewallFacts {
        FirewallFacts {
            nft_json: None,
            nft_text: Some(nft.to_string()),
            iptables: vec![IptablesDump {
                family: IptablesFamily::Ipv4,
                backend: "nft".into(),
                text: iptables.into(),
            }],
        }
    }

    #[test]
    fn reads_docker_and_kube_style_iptables_rules() {
        let dump = "*nat\n:DOCKER - [0:0]\n\
            -A DOCKER -d 127.0.0.1/32 ! -i docker0 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.17.0.2:80\n\
            -A PREROUTING -d 127.0.0.1/32 -p udp -m udp --dport 9000 -j DNAT --to-destination 127.0.0.1:7001\n\
            -A PREROUTING -d 192.0.2.1/32 -p tcp --dport 80 -j DNAT --to-destination 10.0.0.2:80\n\
            -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\nCOMMIT\n";
        let ports = published_ports(&facts(dump, ""));
        assert_eq!(ports.len(), 2, "{ports:?}");
        assert_eq!(ports[0].target, "172.17.0.2:80".parse().unwrap());
        assert_eq!(ports[0].port, 8081);
        assert_eq!(ports[1].protocol, Protocol::Udp);
        assert_eq!(ports[1].attack_address(), IpAddr::from([127, 0, 0, 1]));
    }

    #[test]
    fn reads_native_nft_dnat_and_skips_duplicates_of_iptables_rules() {
        let nft = "table ip nat {\n chain PREROUTING {\n  type nat hook prerouting priority dstnat; policy accept;\n  \
            ip daddr 127.0.0.1 tcp dport 8080 counter packets 0 bytes 0 dnat to 127.0.0.1:7001\n  \
            tcp dport 30080 dnat ip to 127.0.0.1:7002\n }\n}\n";
        let ports = published_ports(&facts("", nft));
        assert_eq!(ports.len(), 2);
        assert_eq!(ports[0].match_address, Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(ports[1].match_address, None);
        assert_eq!(ports[1].target, "127.0.0.1:7002".parse().unwrap());
        let dump = "-A PREROUTING -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 127.0.0.1:7001";
        assert_eq!(published_ports(&facts(dump, nft)).len(), 2);
    }
}
