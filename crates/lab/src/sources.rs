//! Which IPv4 sources a neighbour writes into an attack: its own address, and one address in
//! every source range the host's firewall trusts for that very target. Pure (asks core's
//! packet-path evaluator).
//!
//! A firewall that trusts sources by range — `ip saddr { 10.0.0.0/8, 192.168.0.0/16 } accept`,
//! `ufw allow from …`, firewalld zones bound to sources, a verdict map keyed by source — lets
//! some senders in and not others, each range to its own ports. Every neighbour can write any
//! of those sources into a datagram (and answer ARP for an on-link one), so the lab attacks each
//! target from its own address *and* from an address in each range the evaluator says gets
//! through, and reports each source's outcome: the own address shows what the firewall stops,
//! the trusted ones what it lets in. Whether the kernel takes a trusted off-link source (rp_filter,
//! `fib saddr . iif oif missing`) is decided in the lab by the routes it mirrored, not here. When
//! the evaluator names more trusted ranges than the lab tries, a drop is not a refutation: the
//! probes carry a doubt, which makes a dropped result uncertain.

use crate::plan::LinkPlan;
use loopwarden_core::facts::{HostFacts, Protocol};
use loopwarden_core::firewall::eval::{Packets, Reach};
use loopwarden_core::firewall::questions::Firewall;
use loopwarden_core::firewall::ranges::{addr_value, prefix_range, value_addr, RangeSet};
use loopwarden_core::firewall::verdict::Leaf;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;

/// At most this many trusted sources are tried against one target (besides the own address).
pub const MAX_TRUSTED: usize = 4;

/// One source to attack a target from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The address written into the packets.
    pub address: Ipv4Addr,
    /// Whether the firewall lets this source in to the target (as the evaluator reads it).
    pub trusted: bool,
    /// Why this source, in words (for the result's evidence); `None` for the neighbour's own
    /// address when the firewall does not tell sources apart for this target.
    pub why: Option<String>,
}

/// The sources to attack one target from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sources {
    /// Each gets its own probe; the neighbour's own address first.
    pub list: Vec<Source>,
    /// Trusted sources the lab does not try: a drop from the tried ones proves nothing about
    /// them.
    pub untried: Option<String>,
}

/// Picks sources per (link, protocol, destination), asking the evaluator once for each.
pub struct SourcePicker {
    firewall: Option<Firewall>,
    /// Addresses the attacker must not write: the host's own (the kernel drops them as martians
    /// before any rule) and, per link name, the NAT stand-ins behind it.
    own: RangeSet,
    taken: HashMap<String, Vec<Ipv4Addr>>,
    cache: Mutex<HashMap<(String, u8, SocketAddr), Sources>>,
}

impl SourcePicker {
    /// A picker over `facts`' firewall; `taken` lists, per link name, addresses the attacker must
    /// not write as its source (NAT stand-ins behind that link).
    pub fn new(facts: &HostFacts, taken: HashMap<String, Vec<Ipv4Addr>>) -> SourcePicker {
        // The firewall's trust, not the kernel's reverse path: what rp_filter does with a trusted
        // range is for the attacks to find out, so the routes are left out of this question.
        let firewall = Firewall::new(&HostFacts {
            routes: None,
            ..facts.clone()
        });
        let own = RangeSet::from_ranges(
            facts
                .interfaces
                .iter()
                .flat_map(|i| i.addresses.iter())
                .filter(|a| a.address.is_ipv4())
                .map(|a| (addr_value(a.address), addr_value(a.address)))
                .collect(),
        );
        SourcePicker {
            firewall: firewall.captured.then_some(firewall),
            own,
            taken,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A picker that always answers the link's own peer address (no firewall to ask).
    pub fn plain() -> SourcePicker {
        SourcePicker {
            firewall: None,
            own: RangeSet::empty(),
            taken: HashMap::new(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The sources for an attack from `link`'s segment to `dst` over `protocol`.
    pub fn pick(&self, link: &LinkPlan, protocol: Protocol, dst: SocketAddr) -> Sources {
        let key = (link.name.clone(), protocol_number(protocol), dst);
        if let Some(known) = self.cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return known;
        }
        let answer = self.ask(link, protocol, dst);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(key, answer.clone());
        }
        answer
    }

    /// Asks the evaluator which IPv4 sources on `link` get through to `dst` and builds the list.
    fn ask(&self, link: &LinkPlan, protocol: Protocol, dst: SocketAddr) -> Sources {
        let own_only = Sources {
            list: link
                .peer_v4
                .map(|address| Source {
                    address,
                    trusted: true,
                    why: None,
                })
                .into_iter()
                .collect(),
            untried: None,
        };
        let (Some(firewall), Some(peer), IpAddr::V4(_)) = (&self.firewall, link.peer_v4, dst.ip()) else {
            return own_only;
        };
        let spoofable = self.spoofable(link);
        // Addresses left out of the question: a range the firewall trusts stays one range where
        // they cut it (10.0.0.0/8 around this host's own 10.0.0.5).
        let holes = RangeSet::range(0, u128::from(u32::MAX)).subtract(&spoofable);
        let mut start = Packets::arriving(false, &link.name, spoofable, RangeSet::single(addr_value(dst.ip())));
        start.proto = RangeSet::single(u128::from(protocol_number(protocol)));
        start.dport = RangeSet::single(u128::from(dst.port()));
        let answer = firewall.analysis.query(start, Reach::Full);
        let through: Vec<&Leaf> = answer.leaves.iter().filter(|l| !l.certainly_dropped()).collect();
        let dropped: Vec<&Leaf> = answer.leaves.iter().filter(|l| l.certainly_dropped()).collect();
        // The firewall does not tell sources apart for this target: the own address says it all.
        if through.is_empty() || dropped.is_empty() {
            return own_only;
        }
        let peer_value = addr_value(IpAddr::V4(peer));
        let peer_trusted = through.iter().any(|l| l.packets.src.contains(peer_value));
        let mut list = vec![Source {
            address: peer,
            trusted: peer_trusted,
            why: Some(
                match (
                    peer_trusted,
                    dropped.iter().find(|l| l.packets.src.contains(peer_value)),
                ) {
                    (true, _) => format!("the neighbour's own address {peer}, which the firewall lets in to {dst}"),
                    (false, Some(l)) => format!(
                        "the neighbour's own address {peer}, which the firewall does not let in to {dst} ({})",
                        l.decided_by().unwrap_or("policy")
                    ),
                    (false, None) => format!("the neighbour's own address {peer}"),
                },
            ),
        }];
        let mut left: Vec<String> = Vec::new();
        for leaf in sorted(through) {
            for &(lo, hi) in leaf.packets.src.union(&holes).ranges() {
                let piece = leaf.packets.src.intersect(&RangeSet::range(lo, hi));
                let (Some(&(lo, _)), Some(&(_, hi))) = (piece.ranges().first(), piece.ranges().last()) else {
                    continue;
                };
                if list.iter().any(|s| piece.contains(addr_value(IpAddr::V4(s.address)))) {
                    continue;
                }
                let range = range_text(lo, hi);
                if list.iter().filter(|s| s.trusted && s.address != peer).count() >= MAX_TRUSTED {
                    left.push(range);
                    continue;
                }
                let address = choose(&piece, link);
                list.push(Source {
                    address,
                    trusted: true,
                    why: Some(format!(
                        "source {address} written by the neighbour: the firewall lets {range} in to {dst} ({}); any \
                         neighbour can write such a source",
                        leaf.decided_by().unwrap_or("no rule stops it")
                    )),
                });
            }
        }
        // The own address is trusted too: add one the firewall stops, to show what it stops.
        if let (true, Some(leaf)) = (peer_trusted, dropped.first()) {
            let address = choose(&leaf.packets.src, link);
            list.push(Source {
                address,
                trusted: false,
                why: Some(format!(
                    "source {address}, which the firewall does not let in to {dst} ({}): the untrusted comparison",
                    leaf.decided_by().unwrap_or("policy")
                )),
            });
        }
        Sources {
            list,
            untried: (!left.is_empty()).then(|| {
                format!(
                    "the firewall also lets {} to {dst} in from {}, which the lab did not try",
                    protocol.as_str().to_uppercase(),
                    left.join(", ")
                )
            }),
        }
    }

    /// The IPv4 sources a neighbour on `link` can write and the kernel does not drop for their
    /// own sake: unicast, not loopback (the loopback attacks have their own probes), not the
    /// host's own addresses, not a stand-in behind this link.
    fn spoofable(&self, link: &LinkPlan) -> RangeSet {
        let prefix = |a: [u8; 4], len: u8| prefix_range(IpAddr::from(a), len);
        let excluded = RangeSet::from_ranges(vec![
            prefix([0, 0, 0, 0], 8),
            prefix([127, 0, 0, 0], 8),
            prefix([224, 0, 0, 0], 3),
        ]);
        let mut out = RangeSet::range(0, u128::from(u32::MAX))
            .subtract(&excluded)
            .subtract(&self.own);
        let taken = self.taken.get(&link.name).into_iter().flatten();
        for t in link.v4.iter().map(|(a, _)| a).chain(taken) {
            out = out.subtract(&RangeSet::single(addr_value(IpAddr::V4(*t))));
        }
        for &(a, len) in link.v4.iter().filter(|(_, len)| *len <= 30) {
            // The subnet's network and broadcast addresses are no sender's.
            let (network, broadcast) = prefix_range(IpAddr::V4(a), len);
            out = out
                .subtract(&RangeSet::single(network))
                .subtract(&RangeSet::single(broadcast));
        }
        out
    }
}

/// Paths that certainly get through first (they are what a refutation must have tried), then
/// by source address, so that a run is repeatable.
fn sorted(mut leaves: Vec<&Leaf>) -> Vec<&Leaf> {
    leaves.sort_by_key(|l| (!l.certainly_through(), l.packets.src.first()));
    leaves
}

/// An address of `range`: on `link`'s subnet when the range meets it (replies then go straight
/// back to the neighbour), otherwise the range's first address after a network address.
fn choose(range: &RangeSet, link: &LinkPlan) -> Ipv4Addr {
    let on_link = link.v4.iter().filter(|(_, len)| *len <= 30).find_map(|&(a, len)| {
        let (n, b) = prefix_range(IpAddr::V4(a), len);
        range.intersect(&RangeSet::range(n + 1, b - 1)).first()
    });
    let first = range
        .ranges()
        .first()
        .map_or(0, |&(lo, hi)| if hi > lo && lo & 0xff == 0 { lo + 1 } else { lo });
    match value_addr(on_link.unwrap_or(first), false) {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

/// `10.0.0.0–10.255.255.255`, or one address.
fn range_text(lo: u128, hi: u128) -> String {
    let a = value_addr(lo, false);
    if lo == hi {
        a.to_string()
    } else {
        format!("{a}–{}", value_addr(hi, false))
    }
}

fn protocol_number(protocol: Protocol) -> u8 {
    match protocol {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopwarden_core::facts::FirewallFacts;

    /// Facts with an input chain (policy drop) made of `rules` (nft JSON expression lists) and
    /// route_localnet on.
    fn facts_with(rules: &[&str]) -> HostFacts {
        let mut facts = crate::scenario::base_facts("t");
        let mut items = vec![
            r#"{"table": {"family": "inet", "name": "f", "handle": 1}}"#.to_string(),
            r#"{"chain": {"family": "inet", "table": "f", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}"#.to_string(),
        ];
        for (i, expr) in rules.iter().enumerate() {
            items.push(format!(
                r#"{{"rule": {{"family": "inet", "table": "f", "chain": "input", "handle": {}, "expr": {expr}}}}}"#,
                i + 2
            ));
        }
        let ruleset = format!(r#"{{"nftables": [{}]}}"#, items.join(","));
        facts.firewall = FirewallFacts {
            nft_json: Some(serde_json::from_str(&ruleset).expect("ruleset JSON")),
            ..FirewallFacts::default()
        };
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.all.route_localnet".into(), "1".into());
        facts
    }

    const SADDR_26_UDP_9125: &str = r#"[
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "192.0.2.0", "len": 26}}}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 9125}},
        {"accept": null}]"#;
    const SADDR_26_TCP_8080: &str = r#"[
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "192.0.2.64", "len": 26}}}},
        {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}},
        {"accept": null}]"#;
    /// `ip saddr { 10.0.0.0/8, 198.18.0.0/15 } accept`.
    const SADDR_SET: &str = r#"[
        {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"set": [
            {"prefix": {"addr": "10.0.0.0", "len": 8}}, {"prefix": {"addr": "198.18.0.0", "len": 15}}]}}},
        {"accept": null}]"#;

    /// A verdict map by source range: 192.0.2.0/26 may send UDP 9125, 192.0.2.64/26 TCP 8080;
    /// the lab attacks each target from its own (untrusted) address and from the range that
    /// opens it, on the link's subnet.
    #[test]
    fn each_target_is_attacked_from_its_own_address_and_the_range_that_opens_it() {
        let facts = facts_with(&[SADDR_26_UDP_9125, SADDR_26_TCP_8080]);
        let plan = crate::plan::plan(&facts);
        let eth0 = plan.links.iter().find(|l| l.name == "eth0").expect("eth0");
        let picker = SourcePicker::new(&facts, HashMap::new());
        let udp = picker.pick(eth0, Protocol::Udp, "127.0.0.1:9125".parse().unwrap());
        let tcp = picker.pick(eth0, Protocol::Tcp, "127.0.0.1:8080".parse().unwrap());
        for (sources, base) in [(&udp, 0u8), (&tcp, 64)] {
            assert_eq!(sources.list.len(), 2, "{sources:?}");
            assert_eq!(Some(sources.list[0].address), eth0.peer_v4);
            assert!(!sources.list[0].trusted, "{sources:?}");
            let trusted = &sources.list[1];
            let last = trusted.address.octets()[3];
            assert!(trusted.trusted && (base..base + 64).contains(&last), "{sources:?}");
            assert_eq!(&trusted.address.octets()[..3], &[192, 0, 2], "{sources:?}");
            assert!(sources.untried.is_none(), "{sources:?}");
        }
        // A port no range opens: the neighbour's own address alone.
        let closed = picker.pick(eth0, Protocol::Udp, "127.0.0.1:7".parse().unwrap());
        assert_eq!(closed.list.len(), 1, "{closed:?}");
        assert_eq!(Some(closed.list[0].address), eth0.peer_v4);
    }

    /// `ip saddr { 10.0.0.0/8, 198.18.0.0/15 } accept`: one source in each range (off the link's
    /// subnet), besides the neighbour's own.
    #[test]
    fn a_set_of_trusted_ranges_gets_one_source_in_each() {
        let facts = facts_with(&[SADDR_SET]);
        let plan = crate::plan::plan(&facts);
        let eth0 = plan.links.iter().find(|l| l.name == "eth0").expect("eth0");
        let picker = SourcePicker::new(&facts, HashMap::new());
        let sources = picker.pick(eth0, Protocol::Udp, "127.0.0.1:8125".parse().unwrap());
        let addresses: Vec<String> = sources.list.iter().map(|s| s.address.to_string()).collect();
        assert_eq!(
            addresses,
            [
                eth0.peer_v4.map(|p| p.to_string()).unwrap_or_default(),
                "10.0.0.1".into(),
                "198.18.0.1".into()
            ],
            "{sources:?}"
        );
        assert!(sources.list[1]
            .why
            .as_deref()
            .unwrap_or("")
            .contains("10.0.0.0–10.255.255.255"));
    }

    /// More trusted ranges than the lab tries: the rest are named, so a drop refutes nothing.
    #[test]
    fn ranges_over_the_limit_are_named_as_untried() {
        let rules: Vec<String> = (0..(MAX_TRUSTED + 2))
            .map(|i| {
                format!(
                    r#"[{{"match": {{"op": "==", "left": {{"payload": {{"protocol": "ip", "field": "saddr"}}}}, "right": {{"prefix": {{"addr": "10.{i}.0.0", "len": 24}}}}}}}}, {{"accept": null}}]"#,
                )
            })
            .collect();
        let facts = facts_with(&rules.iter().map(String::as_str).collect::<Vec<_>>());
        let plan = crate::plan::plan(&facts);
        let eth0 = plan.links.iter().find(|l| l.name == "eth0").expect("eth0");
        let sources =
            SourcePicker::new(&facts, HashMap::new()).pick(eth0, Protocol::Udp, "127.0.0.1:1".parse().unwrap());
        assert_eq!(sources.list.len(), 1 + MAX_TRUSTED, "{sources:?}");
        let untried = sources.untried.unwrap_or_default();
        assert!(
            untried.contains("10.4.0.0–10.4.0.255") && untried.contains("10.5.0.0"),
            "{untried}"
        );
    }
}
