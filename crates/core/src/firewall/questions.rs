//! The questions the checks ask of a ruleset, answered with the evaluator.

use super::eval::NAT_NOT_UNDERSTOOD;
use super::eval::{Analysis, Host, Packets, Reach};
use super::model::{Cond, Dir, Item, Nat};
use super::port_index::PortIndex;
use super::ranges::{addr_value, all_addrs, prefix_range, RangeSet};
use super::verdict::{Answer, Decision, Leaf, Outcome, Paths, Rewrite};
use crate::facts::HostFacts;
use crate::report::shown;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// IP protocol number of UDP.
const UDP: u8 = 17;

/// Paths grouped by the interface (class) they arrived on.
type PerInterface<'a> = Vec<(String, Vec<&'a Leaf>)>;

/// The stand-in for "an interface other than lo" when the snapshot lists none: evidence names
/// it as it is, rules match it as any name that is not `lo` would, and the kernel settings it
/// gets are the `default` template a new interface would inherit (see `eval::Host`).
pub const ANY_OUTSIDE_IFACE: &str = "an interface other than lo";

/// Loopback destinations or sources of a family: `127.0.0.0/8`; `::1` and `::ffff:127.0.0.0/104`.
pub fn loopback(v6: bool) -> RangeSet {
    if v6 {
        RangeSet::from_ranges(vec![
            (1, 1),
            prefix_range(IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0x7f00, 0]), 104),
        ])
    } else {
        RangeSet::from_ranges(vec![prefix_range(IpAddr::from([127, 0, 0, 0]), 8)])
    }
}

/// A ruleset read from a snapshot, ready for questions.
#[derive(Debug)]
pub struct Firewall {
    /// The evaluator over the rules.
    pub analysis: Analysis,
    /// Whether the snapshot had any firewall capture.
    pub captured: bool,
    /// Interfaces a neighbour's packet can arrive on (every non-loopback interface), one per
    /// class of interfaces the ruleset and sysctls treat alike: questions are asked once per
    /// class (a Docker host's many veths are one class).
    pub outside: Vec<String>,
    /// The members of each class, in the order of `outside`.
    pub classes: Vec<Vec<String>>,
    /// Answers of [`Firewall::loopback_destination_inbound`], which several checks ask.
    inbound_cache: Mutex<HashMap<(bool, Senders, String), Arc<Answer>>>,
    /// Answers of [`Firewall::inbound`], by family, sources and destinations.
    any_port_cache: Mutex<HashMap<(bool, RangeSet, RangeSet), Arc<Inbound>>>,
    /// Local clients' paths to a loopback destination over a protocol, every port at once
    /// ([`Firewall::uids_allowed`]).
    local_client_cache: Mutex<HashMap<(bool, RangeSet, u8), Arc<LocalClients>>>,
}

/// Whose sources a question about loopback destinations asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Senders {
    /// A neighbour's own, non-loopback sources.
    Neighbour,
    /// Spoofed loopback sources (`127.0.0.0/8`, `::1`).
    SpoofedLoopback,
}

/// Where a neighbour's packets from some sources to some destinations go, for every protocol and
/// port at once, per class of outside interfaces: one query per class (the rules split the ports
/// as they need), read per service with [`Inbound::for_port`]. This is how a check asks about
/// the service's own protocol and port without one query per service.
#[derive(Debug)]
pub struct Inbound {
    /// Each class's representative interface, its members joined (`eth0, eth1`), and the answer.
    pub per_class: Vec<(String, String, Answer)>,
    /// Each class's answer indexed by port, in the order of `per_class`.
    ports: Vec<PortIndex>,
    /// The packets each class's query started from, for a port asked on its own.
    starts: Vec<Packets>,
    /// Answers for one protocol and port, asked on their own because the class's answer for
    /// every port was cut short, by class, protocol and port (at most [`MAX_ONE_PORT`]).
    one_port: Mutex<HashMap<(usize, u8, u16), Arc<Answer>>>,
}

/// How many ports one [`Inbound`] asks on their own when its every-port answer was cut short:
/// each is a query of its own, so a host with thousands of services on such a ruleset keeps
/// "unknown" beyond this many rather than taking minutes.
const MAX_ONE_PORT: usize = 2_000;

/// What happens to one service's packets arriving on one class of interfaces.
#[derive(Debug, Clone)]
pub struct PortAnswer {
    /// The interface that stands for the class ([`Firewall::in_class`] tells its members).
    pub representative: String,
    /// The interfaces of the class as a report names them (`eth0, eth1`, at most
    /// [`shown::MAX_LIST`] of them).
    pub interfaces: String,
    /// Open, blocked or unknown.
    pub decision: Decision,
    /// The rules and kernel decisions that show it.
    pub lines: Vec<String>,
    /// Every path was dropped by the kernel itself (martian checks), none by a rule.
    pub dropped_by_kernel: bool,
}

impl Inbound {
    /// The answer for packets of protocol `proto` to port `port` (as sent, before any rewrite),
    /// among the paths `keep` selects, per class. Where a class's answer for every port was cut
    /// short (too many distinct paths), the port is asked on its own: the evaluator then splits
    /// only on what this port's packets meet.
    pub fn for_port(&self, analysis: &Analysis, proto: u8, port: u16, keep: impl Fn(&Leaf) -> bool) -> Vec<PortAnswer> {
        let (proto_v, port_v) = (u128::from(proto), u128::from(port));
        self.per_class
            .iter()
            .zip(&self.ports)
            .enumerate()
            .map(|(class, ((representative, interfaces, answer), index))| {
                let own = answer
                    .truncated
                    .then(|| self.one_port(analysis, class, proto, port))
                    .flatten();
                // The paths themselves, not narrowed copies: only the example a line shows is
                // narrowed to the port (at 100,000 services, copying every path was most of it).
                let (refs, truncated): (Vec<&Leaf>, bool) = match &own {
                    Some(own) => (own.leaves.iter().filter(|l| keep(l)).collect(), own.truncated),
                    None => (
                        index
                            .candidates(port)
                            .iter()
                            .filter_map(|&i| answer.leaves.get(i as usize))
                            .filter(|l| keep(l) && carries(l, proto_v, port_v))
                            .collect(),
                        answer.truncated,
                    ),
                };
                let (decision, lines) = summarize_sent(&refs, truncated, Some((proto_v, port_v)));
                let dropped_by_kernel = decision == Decision::Blocked
                    && refs
                        .iter()
                        .all(|l| l.decided_by().is_some_and(|d| d.starts_with("kernel:")));
                PortAnswer {
                    representative: representative.clone(),
                    interfaces: interfaces.clone(),
                    decision,
                    lines,
                    dropped_by_kernel,
                }
            })
            .collect()
    }

    /// Class `class`'s packets of `proto` to `port` alone (cached); `None` past [`MAX_ONE_PORT`].
    fn one_port(&self, analysis: &Analysis, class: usize, proto: u8, port: u16) -> Option<Arc<Answer>> {
        let key = (class, proto, port);
        let mut cache = self.one_port.lock().ok()?;
        if let Some(hit) = cache.get(&key) {
            return Some(hit.clone());
        }
        if cache.len() >= MAX_ONE_PORT {
            return None;
        }
        let mut start = self.starts.get(class)?.clone();
        start.proto = RangeSet::single(proto.into());
        start.dport = RangeSet::single(port.into());
        let answer = Arc::new(analysis.query(start, Reach::Full));
        cache.insert(key, answer.clone());
        Some(answer)
    }
}

/// A path narrowed to one protocol and original destination port, or `None` when it does not
/// carry that port (decided before anything is copied).
fn narrow_to_port(l: &Leaf, proto: u128, port: u128) -> Option<Leaf> {
    if !carries(l, proto, port) {
        return None;
    }
    let mut l = l.clone();
    l.packets.proto = RangeSet::single(proto);
    match &mut l.rewrite {
        Some(rw) => {
            rw.original_dport = RangeSet::single(port);
            if !l.packets.dport.is_empty() && rw.port.is_none() {
                l.packets.dport = RangeSet::single(port);
            }
        }
        None => l.packets.dport = RangeSet::single(port),
    }
    Some(l)
}

/// Whether a path carries packets of protocol `proto` sent to port `port` (before any rewrite).
fn carries(l: &Leaf, proto: u128, port: u128) -> bool {
    l.packets.proto.contains(proto)
        && match &l.rewrite {
            Some(rw) => rw.original_dport.contains(port),
            None => l.packets.dport.contains(port),
        }
}

/// Local clients' paths to one loopback destination over one protocol, every port at once.
#[derive(Debug)]
struct LocalClients {
    /// The paths.
    answer: Answer,
    /// The paths by destination port.
    index: PortIndex,
    /// The answer for any port, when no rule on the way looked at the port.
    same_for_every_port: Option<UidAccess>,
}

/// Whether the evaluator left these paths to be settled: none certainly gets through, and some
/// hinge on a condition it could not decide (a query of their own tries those both ways).
fn unsettled(leaves: &[&Leaf]) -> bool {
    !leaves.iter().any(|l| l.certainly_through()) && leaves.iter().any(|l| !l.assumed.is_empty())
}

/// Which uids the paths `leaves` of local clients of every uid let through (`truncated`: the
/// query they come from was cut short).
fn uid_access(leaves: &[&Leaf], truncated: bool) -> UidAccess {
    let answer = Paths { leaves, truncated };
    let mut access = UidAccess {
        allowed: RangeSet::empty(),
        maybe: RangeSet::empty(),
        restricting: answer.drops(),
        allowing: Vec::new(),
        unknowns: answer.unknowns(),
        cgroups: Vec::new(),
    };
    for l in leaves {
        let uids = l.packets.uid.clone().unwrap_or_default();
        let member_of: Vec<&String> = l.packets.cgroups.iter().filter(|(_, m)| *m).map(|(c, _)| c).collect();
        if !member_of.is_empty() && !l.certainly_dropped() {
            for c in member_of {
                if !access.cgroups.contains(c) {
                    access.cgroups.push(c.clone());
                }
            }
            if let Some(rule) = l.decided_by().filter(|r| !access.allowing.iter().any(|a| a == r)) {
                access.allowing.push(rule.to_string());
            }
        } else if l.certainly_through() {
            access.allowed = access.allowed.union(&uids);
            if let Some(rule) = l.decided_by().filter(|r| !access.allowing.iter().any(|a| a == r)) {
                access.allowing.push(rule.to_string());
            }
        } else if !l.certainly_dropped() {
            access.maybe = access.maybe.union(&uids);
        }
    }
    if truncated {
        access.maybe = RangeSet::range(0, u32::MAX as u128).subtract(&access.allowed);
    }
    access
}

/// One DNAT rule that turns outside traffic into loopback traffic, and what happens to it.
#[derive(Debug, Clone)]
pub struct LoopbackNat {
    /// The rule, as evidence shows it.
    pub rule: String,
    /// The family of the packets it translates.
    pub v6: bool,
    /// `true`: the rule matches traffic addressed to a loopback address (Docker style);
    /// `false`: the rule translates to a loopback address (kube-proxy/ECS style).
    pub from_loopback: bool,
    /// The translation target.
    pub to: (Option<IpAddr>, Option<u16>),
    /// The destination and port the rule matches, when single.
    pub matched: (Option<IpAddr>, Option<u16>),
    /// The protocol the rule matches, when single (6 TCP, 17 UDP).
    pub proto: Option<u8>,
    /// Open (reached and passed), blocked (every such packet dropped) or unknown.
    pub decision: Decision,
    /// The path: interface, example packet, rules and kernel decisions.
    pub evidence: Vec<String>,
}

/// Which uids may open a connection to a loopback port, after the output-path rules.
#[derive(Debug, Clone)]
pub struct UidAccess {
    /// Uids whose connections certainly pass.
    pub allowed: RangeSet,
    /// Uids whose connections may pass (an unevaluable rule on the way).
    pub maybe: RangeSet,
    /// Rules that drop some uids' connections.
    pub restricting: Vec<String>,
    /// The last rule on each path that lets some uids through (empty when no rule decided).
    pub allowing: Vec<String>,
    /// Why some answers are unknown.
    pub unknowns: Vec<String>,
    /// Cgroups whose processes (of any uid) are let through by a `socket cgroupv2` /
    /// `-m cgroup` rule: who can run processes there is not in the snapshot.
    pub cgroups: Vec<String>,
}

impl UidAccess {
    /// Whether every uid certainly gets through (no restriction at all).
    pub fn unrestricted(&self) -> bool {
        self.allowed == RangeSet::range(0, u32::MAX as u128)
    }
}

impl Firewall {
    /// Reads the snapshot's firewall and prepares it for questions.
    pub fn new(facts: &HostFacts) -> Firewall {
        let ruleset = super::read(&facts.firewall);
        let outside: Vec<String> = facts
            .interfaces
            .iter()
            .filter(|i| i.receives_ip(&facts.interfaces) && i.name != "lo")
            .map(|i| i.name.clone())
            .collect();
        let outside = if outside.is_empty() {
            vec![ANY_OUTSIDE_IFACE.to_string()]
        } else {
            outside
        };
        let analysis = Analysis::new(ruleset, Host::new(facts));
        let mut classes: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        for name in outside {
            let key = analysis.interface_key(&name);
            match classes.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(name),
                None => classes.push((key, vec![name])),
            }
        }
        Firewall {
            analysis,
            captured: super::captured(&facts.firewall),
            outside: classes.iter().map(|(_, m)| m[0].clone()).collect(),
            classes: classes.into_iter().map(|(_, m)| m).collect(),
            inbound_cache: Mutex::new(HashMap::new()),
            any_port_cache: Mutex::new(HashMap::new()),
            local_client_cache: Mutex::new(HashMap::new()),
        }
    }

    /// A decision drawn from this snapshot's rules, corrected for a snapshot without any firewall
    /// capture: what the rules would let through is then unknown (a ruleset may exist that was
    /// not seen), while what the kernel itself drops stays dropped.
    pub fn qualify(&self, (decision, mut lines): (Decision, Vec<String>)) -> (Decision, Vec<String>) {
        if self.captured || decision != Decision::Open {
            return (decision, lines);
        }
        lines.push("the firewall was not captured: whether a rule drops it is unknown".into());
        (Decision::Unknown, lines)
    }

    /// Where a neighbour's packets from `src` to `dst` go on every class of outside interfaces,
    /// every protocol and port, through prerouting (NAT included), routing and input or forward.
    pub fn inbound(&self, v6: bool, src: RangeSet, dst: RangeSet) -> Arc<Inbound> {
        let key = (v6, src.clone(), dst.clone());

        if let Some(hit) = self.any_port_cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return hit;
        }
        let starts: Vec<Packets> = self
            .outside
            .iter()
            .map(|iif| Packets::arriving(v6, iif, src.clone(), dst.clone()))
            .collect();
        let per_class: Vec<(String, String, Answer)> = self
            .outside
            .iter()
            .zip(&starts)
            .map(|(iif, start)| {
                (
                    iif.clone(),
                    self.class_of(iif),
                    self.analysis.query(start.clone(), Reach::Full),
                )
            })
            .collect();
        let ports = per_class
            .iter()
            .map(|(_, _, answer)| PortIndex::new(&answer.leaves))
            .collect();
        let inbound = Arc::new(Inbound {
            per_class,
            ports,
            starts,
            one_port: Mutex::new(HashMap::new()),
        });
        if let Ok(mut cache) = self.any_port_cache.lock() {
            cache.insert(key, inbound.clone());
        }
        inbound
    }

    /// Where a neighbour's packets from `src` to this host's own (non-loopback) addresses of the
    /// family go; `None` when the snapshot lists no such address (the kernel's routing decision
    /// needs one: what such packets do is then not known from the snapshot).
    pub fn to_host(&self, v6: bool, src: RangeSet) -> Option<Arc<Inbound>> {
        let own = self.analysis.host.local(v6).subtract(&loopback(v6));
        (!own.is_empty()).then(|| self.inbound(v6, src, own))
    }

    /// Packets from a neighbour (`senders`: its own non-loopback sources, or spoofed loopback
    /// ones) to a loopback destination, arriving on `iif`, through prerouting, routing and
    /// input/forward.
    pub fn loopback_destination_inbound(&self, v6: bool, senders: Senders, iif: &str) -> Arc<Answer> {
        let iif = self.representative(iif);
        let key = (v6, senders, iif.to_string());
        if let Some(hit) = self.inbound_cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return hit;
        }
        let src = match senders {
            Senders::Neighbour => all_addrs(v6).subtract(&loopback(v6)),
            Senders::SpoofedLoopback => loopback(v6),
        };
        let answer = Arc::new(
            self.analysis
                .query(Packets::arriving(v6, iif, src, loopback(v6)), Reach::Full),
        );
        if let Ok(mut cache) = self.inbound_cache.lock() {
            cache.insert(key, answer.clone());
        }
        answer
    }

    /// Whether the ruleset drops traffic to a loopback destination that a neighbour sends on
    /// `iif` (what `route_localnet` lets through), leaving aside packets a nat rule rewrote
    /// (those are [`Firewall::loopback_nat`]'s). Evidence: the dropping rules, or an example of
    /// what passes.
    pub fn localnet_drop(&self, iif: &str) -> (Decision, Vec<String>) {
        let answer = self.loopback_destination_inbound(false, Senders::Neighbour, iif);
        let leaves: Vec<&Leaf> = answer.leaves.iter().filter(|l| l.rewrite.is_none()).collect();
        summarize(&leaves, answer.truncated)
    }

    /// The same for datagrams with a spoofed `127/8` source: the kernel's source checks
    /// (route_localnet, rp_filter, accept_local) decide whether it takes them, and a rule that
    /// drops only non-loopback sources (kube-proxy's KUBE-FIREWALL) lets them through. UDP
    /// only: the reply to a TCP SYN goes to `lo`, so such a sender gets no more than a blind SYN.
    pub fn localnet_drop_spoofed_loopback(&self, iif: &str) -> (Decision, Vec<String>) {
        let answer = self.loopback_destination_inbound(false, Senders::SpoofedLoopback, iif);
        let udp = u128::from(UDP);
        let narrowed: Vec<Leaf> = answer
            .leaves
            .iter()
            .filter(|l| l.rewrite.is_none() && l.packets.proto.contains(udp))
            .map(|l| {
                let mut l = l.clone();
                l.packets.proto = RangeSet::single(udp);
                l
            })
            .collect();
        summarize(&narrowed.iter().collect::<Vec<_>>(), answer.truncated)
    }

    /// Which uids may connect to `addr:port` (`proto` 6 or 17) from this host over loopback.
    /// A wildcard address is asked as `127.0.0.1` or `::1`.
    ///
    /// One query per address and protocol answers every port (cached); each port reads its
    /// paths from it, and when no rule on the way looks at the port the answer is the same for
    /// every port and is worked out once. Only when the query cannot settle a port — it was cut
    /// short, or the port's paths all hinge on conditions the evaluator could not decide — is
    /// the port asked on its own, as the evaluator then tries those conditions both ways for it.
    pub fn uids_allowed(&self, addr: IpAddr, proto: u8, port: u16) -> UidAccess {
        let v6 = addr.is_ipv6();
        let dst = if addr.is_unspecified() {
            if v6 {
                RangeSet::single(1)
            } else {
                RangeSet::single(addr_value(IpAddr::from([127, 0, 0, 1])))
            }
        } else {
            RangeSet::single(addr_value(addr))
        };
        let every_port = self.local_clients(v6, &dst, proto);
        if let Some(access) = &every_port.same_for_every_port {
            return access.clone();
        }
        let (proto_v, port_v) = (u128::from(proto), u128::from(port));
        // Who gets through does not depend on the port a path was narrowed to: no copies.
        let leaves: Vec<&Leaf> = every_port
            .index
            .candidates(port)
            .iter()
            .filter_map(|&i| every_port.answer.leaves.get(i as usize))
            .filter(|l| carries(l, proto_v, port_v))
            .collect();
        if every_port.answer.truncated || unsettled(&leaves) {
            let mut start = Packets::local_client(v6, dst.clone(), dst, RangeSet::range(0, u32::MAX as u128));
            start.proto = RangeSet::single(proto_v);
            start.dport = RangeSet::single(port_v);
            let answer = self.analysis.query(start, Reach::LocalClient);
            return uid_access(&answer.leaves.iter().collect::<Vec<_>>(), answer.truncated);
        }
        uid_access(&leaves, false)
    }

    /// Where connections from local clients of any uid to `dst` over `proto` go, for every port
    /// at once (cached by destination and protocol).
    fn local_clients(&self, v6: bool, dst: &RangeSet, proto: u8) -> Arc<LocalClients> {
        let key = (v6, dst.clone(), proto);
        if let Some(hit) = self.local_client_cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return hit;
        }
        let mut start = Packets::local_client(v6, dst.clone(), dst.clone(), RangeSet::range(0, u32::MAX as u128));
        start.proto = RangeSet::single(proto.into());
        let answer = self.analysis.query(start, Reach::LocalClient);
        let index = PortIndex::new(&answer.leaves);
        let every = RangeSet::range(0, 65_535);
        let port_blind = answer.leaves.iter().all(|l| {
            let sent = l.rewrite.as_ref().map_or(&l.packets.dport, |rw| &rw.original_dport);
            every.is_subset(sent)
        });
        let all: Vec<&Leaf> = answer.leaves.iter().collect();
        let same_for_every_port =
            (port_blind && !answer.truncated && !unsettled(&all)).then(|| uid_access(&all, false));
        let found = Arc::new(LocalClients {
            answer,
            index,
            same_for_every_port,
        });
        if let Ok(mut cache) = self.local_client_cache.lock() {
            cache.insert(key, found.clone());
        }
        found
    }

    /// Every DNAT/redirect rule that translates outside traffic addressed to a loopback address,
    /// or translates outside traffic to one, with what happens to such packets.
    pub fn loopback_nat(&self) -> Vec<LoopbackNat> {
        let mut out = self.rewrites_of_loopback_destinations();
        let found: Vec<(String, bool)> = out.iter().map(|n| (n.rule.clone(), n.v6)).collect();
        let reported: std::collections::HashSet<(&str, bool)> = found.iter().map(|(r, v6)| (r.as_str(), *v6)).collect();
        for table in &self.analysis.ruleset.tables {
            for chain in &table.chains {
                for rule in &chain.rules {
                    let Some(nat) = rule.items.iter().find_map(|i| match i {
                        Item::Nat(n @ (Nat::Dnat { .. } | Nat::Redirect { .. })) => Some(n),
                        _ => None,
                    }) else {
                        continue;
                    };
                    let text = format!("{} {}: {}", table.label(), chain.name, rule.text);
                    for v6 in [false, true] {
                        // The walk found every rewrite of a loopback destination; a rule to a
                        // loopback target is still asked about this host's other addresses.
                        let to_loopback =
                            matches!(nat, Nat::Dnat { addr: Some(a), .. } if crate::addr::is_loopback(*a));
                        if !table.family.sees(v6) || (reported.contains(&(text.as_str(), v6)) && !to_loopback) {
                            continue;
                        }
                        if let Some(found) = self.judge_nat(&rule.items, nat, &text, v6) {
                            out.push(found);
                        }
                    }
                }
            }
        }
        out
    }

    /// Every nat rule that rewrites loopback-addressed packets from outside, found by one walk
    /// per family and interface (however many nat rules the ruleset has).
    fn rewrites_of_loopback_destinations(&self) -> Vec<LoopbackNat> {
        let mut out = Vec::new();
        for v6 in [false, true] {
            let answers: Vec<(&String, Arc<Answer>)> = self
                .outside
                .iter()
                .map(|iif| (iif, self.loopback_destination_inbound(v6, Senders::Neighbour, iif)))
                .collect();
            let mut groups: Vec<(Rewrite, PerInterface)> = Vec::new();
            for (iif, answer) in &answers {
                for leaf in &answer.leaves {
                    let Some(rw) = leaf.rewrite.clone() else { continue };
                    // Rule texts are shared: the same rule is the same allocation.
                    let group = match groups.iter_mut().position(|(r, _)| Arc::ptr_eq(&r.rule, &rw.rule)) {
                        Some(i) => &mut groups[i],
                        None => {
                            groups.push((rw, Vec::new()));
                            let last = groups.len() - 1;
                            &mut groups[last]
                        }
                    };
                    match group.1.iter_mut().find(|(name, _)| name == *iif) {
                        Some((_, leaves)) => leaves.push(leaf),
                        None => group.1.push(((*iif).clone(), vec![leaf])),
                    }
                }
            }
            out.extend(self.unreadable_nat(v6, &answers));
            for (rw, per_iif) in groups {
                let mut matched_dst = RangeSet::empty();
                let mut matched_port = RangeSet::empty();
                let mut proto = RangeSet::empty();
                let results = per_iif
                    .iter()
                    .map(|(iif, leaves)| {
                        for l in leaves {
                            let original = l.rewrite.as_ref().unwrap_or(&rw);
                            matched_dst = matched_dst.union(&original.original_dst);
                            matched_port = matched_port.union(&original.original_dport);
                            proto = proto.union(&l.packets.proto);
                        }
                        let (d, lines) = summarize(leaves, false);
                        (self.class_of(iif), d, lines)
                    })
                    .collect();
                let (decision, lines) = per_interface(results);
                let mut evidence = vec![format!("NAT rule: {}", rw.rule)];
                evidence.extend(lines);
                out.push(LoopbackNat {
                    rule: rw.rule.to_string(),
                    v6,
                    from_loopback: true,
                    to: (rw.addr, rw.port),
                    matched: (
                        matched_dst.single_value().map(|v| super::ranges::value_addr(v, v6)),
                        matched_port.single_value().and_then(|p| u16::try_from(p).ok()),
                    ),
                    proto: proto.single_value().and_then(|p| u8::try_from(p).ok()),
                    decision,
                    evidence,
                });
            }
        }
        out
    }

    /// Nat statements the reader could not model (an `xt` DNAT target of a table read from nft's
    /// JSON alone) on the paths of loopback-addressed packets: each may publish a loopback
    /// address, so each is an unknown.
    fn unreadable_nat(&self, v6: bool, answers: &[(&String, Arc<Answer>)]) -> Vec<LoopbackNat> {
        let mut out: Vec<LoopbackNat> = Vec::new();
        for (iif, answer) in answers {
            for leaf in &answer.leaves {
                let Outcome::Unknown(why) = &leaf.outcome else { continue };
                let (Some(rule), true) = (leaf.decided_by(), why.starts_with(NAT_NOT_UNDERSTOOD)) else {
                    continue;
                };
                if out.iter().any(|n| n.rule == rule) {
                    continue;
                }
                out.push(LoopbackNat {
                    rule: rule.to_string(),
                    v6,
                    from_loopback: true,
                    to: (None, None),
                    matched: (None, None),
                    proto: None,
                    decision: Decision::Unknown,
                    evidence: vec![
                        format!("NAT rule not understood: {rule}"),
                        format!("on {}: reached by {}", self.class_of(iif), leaf.example()),
                        why.clone(),
                    ],
                });
            }
        }
        out
    }

    fn judge_nat(&self, items: &[Item], nat: &Nat, text: &str, v6: bool) -> Option<LoopbackNat> {
        let to = match nat {
            Nat::Dnat { addr, port } => (*addr, *port),
            Nat::Redirect { port } => (None, *port),
            Nat::Source => return None,
        };
        if to.0.is_some_and(|a| a.is_ipv6() != v6) {
            return None;
        }
        let to_loopback = to.0.is_some_and(crate::addr::is_loopback);
        let mut src = all_addrs(v6).subtract(&loopback(v6));
        // Loopback destinations rewritten to loopback are the walk's (`rewrites_of_loopback_destinations`).
        let mut dst = if to_loopback {
            all_addrs(v6).subtract(&loopback(v6))
        } else {
            loopback(v6)
        };
        let (mut proto, mut dport) = (RangeSet::range(0, 255), RangeSet::range(0, 65535));
        let mut explicit_loopback_dst = false;
        for item in items {
            match item {
                Item::Cond(Cond::Addr {
                    dir,
                    v6: cv6,
                    set,
                    negate,
                }) if *cv6 == v6 => {
                    let field = if *dir == Dir::Src { &mut src } else { &mut dst };
                    *field = if *negate {
                        field.subtract(set)
                    } else {
                        field.intersect(set)
                    };
                    if *dir == Dir::Dst && !negate && !set.intersect(&loopback(v6)).is_empty() {
                        explicit_loopback_dst = true;
                    }
                }
                Item::Cond(Cond::Addr { v6: other, .. }) | Item::Cond(Cond::Nfproto { v6: other }) if *other != v6 => {
                    return None;
                }
                Item::Cond(Cond::Proto { set, negate: false }) => proto = proto.intersect(set),
                Item::Cond(Cond::Port {
                    dir: Dir::Dst,
                    proto: p,
                    set,
                    negate: false,
                }) => {
                    if let Some(p) = p {
                        proto = proto.intersect(&RangeSet::single((*p).into()));
                    }
                    dport = dport.intersect(set);
                }
                _ => {}
            }
        }
        if src.is_empty()
            || dst.is_empty()
            || proto.is_empty()
            || dport.is_empty()
            || !(to_loopback || explicit_loopback_dst)
        {
            return None;
        }
        let mut evidence = vec![format!("NAT rule: {text}")];
        let mut results = Vec::new();
        let mut all_dropped = true;
        for iif in &self.outside {
            let mut start = Packets::arriving(v6, iif, src.clone(), dst.clone());
            start.proto = proto.clone();
            start.dport = dport.clone();
            let answer = self.analysis.query(start, Reach::Full);
            let by_rule: Vec<&Leaf> = answer
                .leaves
                .iter()
                .filter(|l| l.rewrite.as_ref().is_some_and(|r| &*r.rule == text))
                .collect();
            let relevant: Vec<&Leaf> = if to_loopback {
                by_rule
                    .iter()
                    .copied()
                    .filter(|l| l.packets.dst.intersect(&loopback(v6)) == l.packets.dst)
                    .collect()
            } else {
                by_rule
                    .iter()
                    .copied()
                    .filter(|l| {
                        l.rewrite
                            .as_ref()
                            .is_some_and(|r| !r.original_dst.intersect(&loopback(v6)).is_empty())
                    })
                    .collect()
            };
            all_dropped &= !answer.truncated && answer.leaves.iter().all(Leaf::certainly_dropped);
            if relevant.is_empty() {
                continue;
            }
            let (decision, lines) = summarize(&relevant, answer.truncated);
            results.push((self.class_of(iif), decision, lines));
        }
        let worst = if results.is_empty() {
            None
        } else {
            let (d, lines) = per_interface(results);
            evidence.extend(lines);
            Some(d)
        };
        let decision = match worst {
            Some(d) => d,
            None if all_dropped => {
                let mut drops = Vec::new();
                for iif in &self.outside {
                    let mut start = Packets::arriving(v6, iif, src.clone(), dst.clone());
                    start.proto = proto.clone();
                    start.dport = dport.clone();
                    for d in self.analysis.query(start, Reach::Full).drops() {
                        if !drops.contains(&d) {
                            drops.push(d);
                        }
                    }
                }
                evidence.extend(drops.into_iter().map(|d| format!("dropped before it applies: {d}")));
                Decision::Blocked
            }
            None => return None,
        };
        let matched = (
            dst.single_value().map(|v| super::ranges::value_addr(v, v6)),
            dport.single_value().and_then(|p| u16::try_from(p).ok()),
        );
        let proto = proto.single_value().and_then(|p| u8::try_from(p).ok());
        Some(LoopbackNat {
            rule: text.to_string(),
            v6,
            from_loopback: !to_loopback,
            to,
            matched,
            proto,
            decision,
            evidence,
        })
    }
}

impl Firewall {
    /// The interface names of the class `rep` stands for, as a report names them: joined with
    /// `, `, at most [`shown::MAX_LIST`] of them (a host with a thousand veths in one class
    /// would otherwise repeat a thousand names on every line).
    pub fn class_of(&self, rep: &str) -> String {
        match self.class(rep) {
            Some(members) => shown::list(members),
            None => rep.to_string(),
        }
    }

    /// Whether interface `name` is in the class `rep` stands for.
    pub fn in_class(&self, rep: &str, name: &str) -> bool {
        match self.class(rep) {
            Some(members) => members.iter().any(|n| n == name),
            None => rep == name,
        }
    }

    fn class(&self, rep: &str) -> Option<&[String]> {
        self.classes
            .iter()
            .find(|m| m.iter().any(|n| n == rep))
            .map(Vec::as_slice)
    }

    /// The interface that stands for `iif`'s class (itself when it is in none).
    pub fn representative<'a>(&'a self, iif: &'a str) -> &'a str {
        self.classes
            .iter()
            .position(|m| m.iter().any(|n| n == iif))
            .and_then(|i| self.outside.get(i))
            .map_or(iif, String::as_str)
    }
}

/// Folds per-class answers for one service's port into one decision and evidence.
pub fn fold(answers: Vec<PortAnswer>) -> (Decision, Vec<String>) {
    per_interface(
        answers
            .into_iter()
            .map(|a| (a.interfaces, a.decision, a.lines))
            .collect(),
    )
}

/// Folds per-interface results into one decision and evidence, naming interfaces with the same
/// evidence together (`on eth0, eth1: …`).
pub fn per_interface(results: Vec<(String, Decision, Vec<String>)>) -> (Decision, Vec<String>) {
    let mut decision: Option<Decision> = None;
    let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for (iif, d, lines) in results {
        decision = Some(worse(decision, d));
        match groups.iter_mut().find(|(l, _)| *l == lines) {
            Some((_, names)) => names.push(iif),
            None => groups.push((lines, vec![iif])),
        }
    }
    let mut out = Vec::new();
    for (lines, names) in groups {
        let on = shown::list(&names);
        out.extend(lines.into_iter().map(|l| format!("on {on}: {l}")));
    }
    (decision.unwrap_or(Decision::Unknown), out)
}

/// The worse of two decisions: open beats unknown beats blocked.
pub fn worse(a: Option<Decision>, b: Decision) -> Decision {
    match (a, b) {
        (Some(Decision::Open), _) | (_, Decision::Open) => Decision::Open,
        (Some(Decision::Unknown), _) | (_, Decision::Unknown) => Decision::Unknown,
        _ => Decision::Blocked,
    }
}

/// Decision and evidence lines over some paths: an example of what passes, else the drops,
/// plus what could not be evaluated.
pub fn summarize(leaves: &[&Leaf], truncated: bool) -> (Decision, Vec<String>) {
    summarize_sent(leaves, truncated, None)
}

/// [`summarize`]; with `sent` (protocol, port), the example packet shown is narrowed to what
/// was sent to that port.
fn summarize_sent(leaves: &[&Leaf], truncated: bool, sent: Option<(u128, u128)>) -> (Decision, Vec<String>) {
    let answer = Paths { leaves, truncated };
    let decision = if leaves.is_empty() {
        Decision::Unknown
    } else {
        answer.decision()
    };
    let mut lines = Vec::new();
    match decision {
        Decision::Open => {
            if let Some(l) = answer.open_path() {
                let what = match l.outcome {
                    super::verdict::Outcome::Forwarded => "forwarded",
                    super::verdict::Outcome::Passed => "not dropped",
                    _ => "delivered",
                };
                let example = sent
                    .and_then(|(proto, port)| narrow_to_port(l, proto, port))
                    .map_or_else(|| l.example(), |narrowed| narrowed.example());
                lines.push(format!("{what}: {example}"));
                if let Some(r) = &l.rewrite {
                    let to = match (r.addr, r.port) {
                        (Some(a), Some(p)) => crate::addr::socket_label(a, p),
                        (Some(a), None) => a.to_string(),
                        (None, Some(p)) => format!("port {p}"),
                        (None, None) => "itself".into(),
                    };
                    lines.push(format!("rewritten to {to} by {}", r.rule));
                }
                lines.extend(
                    l.evidence
                        .iter()
                        .filter(|e| Some(*e) != l.rewrite.as_ref().map(|r| &r.rule))
                        .map(|e| format!("via {e}")),
                );
            }
            // Rules that drop part of the packets (a port, a mark) tell what narrows the path; the
            // kernel's own martian drops of some sources do not.
            let drops: Vec<String> = answer
                .drops()
                .into_iter()
                .filter(|d| !d.starts_with("kernel:"))
                .collect();
            if !drops.is_empty() {
                lines.push(format!("dropped only for some packets by: {}", drops.join(" | ")));
            }
        }
        Decision::Blocked => lines.extend(answer.drops().into_iter().map(|d| format!("dropped by {d}"))),
        Decision::Unknown => {
            lines.extend(
                answer
                    .drops()
                    .into_iter()
                    .map(|d| format!("dropped for some packets by {d}")),
            );
            lines.extend(answer.unknowns());
            if leaves.is_empty() {
                lines.push("no path reached a conclusion".into());
            }
        }
    }
    (decision, lines)
}
