//! The packet-path evaluator.
//!
//! A query describes a *set* of packets (each field a range set: "any port", "any address in
//! 127.0.0.0/8", "any uid"). The evaluator walks the hooks in kernel order — prerouting (raw
//! −300, conntrack −200, mangle −150, dstnat −100, …), the routing decision with the martian
//! rules and `route_localnet`, then input or forward; or output, postrouting and the loopback
//! re-entry for local clients — running every base chain of every table in priority order.
//! Where a rule's condition holds for some packets of the set and not for others, the set is
//! split and both parts go on: every resulting path ends in a [`Leaf`] with the packets it
//! stands for, the rules that decided it, and the assumptions made for conditions that could not
//! be evaluated. A path through an opaque condition is followed both ways and carries the
//! assumption; an opaque statement ends the path as unknown. Nothing unevaluable is ever taken
//! as a drop.

use super::model::{ct, ChainKind, Cond, Dir, Hook, Item, Nat, Ruleset, Verdict};
use super::ranges::{addr_value, all_addrs, prefix_range, value_addr, RangeSet};
use super::verdict::{Answer, Assumption, AssumptionKey, Leaf, Outcome, Rewrite};
use crate::facts::{HostFacts, Interface, Sysctls};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// Most paths one query may produce before the answer is cut short (and becomes unknown).
pub const MAX_PATHS: usize = 20_000;
/// Most rule parts one query may evaluate before the answer is cut short.
pub const MAX_STEPS: usize = 5_000_000;
/// How an unknown outcome starts when the statement was in a nat chain (it may rewrite).
pub const NAT_NOT_UNDERSTOOD: &str = "nat statement not understood";
/// Paths with assumptions [`Analysis::settle`] tries per query.
const MAX_SETTLE_CANDIDATES: usize = 4;
/// Queries [`Analysis::settle`] may run per candidate (each undecidable condition doubles them).
const MAX_SETTLE_QUERIES: usize = 64;
/// Most chains one path may enter from its base chain through `jump` or `goto` without
/// returning. The kernel refuses, when a ruleset is loaded, any chain graph deeper than 16
/// (`NFT_JUMP_STACK_SIZE`, counting gotos as jumps) and any cycle, so a real ruleset never comes
/// near; a snapshot's may loop (`goto` to itself), which this bound ends.
const MAX_DEPTH: usize = 32;
/// Most pieces of evidence kept for one path; a path through more rules (only a crafted ruleset
/// makes one) keeps the first ones and says the rest were not listed.
const MAX_EVIDENCE: usize = 512;

/// A network device as a packet sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dev {
    /// No such device on this path (`iif` of a locally generated packet).
    Absent,
    /// A known device.
    Named(Arc<str>),
    /// A device the snapshot cannot tell (the output device of a forwarded packet whose route
    /// is not known).
    Unknown,
}

/// The set of packets a path stands for, plus the state the rules change along it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packets {
    /// IPv6 or IPv4.
    pub v6: bool,
    /// Input device.
    pub iif: Dev,
    /// Output device.
    pub oif: Dev,
    /// Source addresses.
    pub src: RangeSet,
    /// Destination addresses.
    pub dst: RangeSet,
    /// Layer-4 protocols.
    pub proto: RangeSet,
    /// Source ports.
    pub sport: RangeSet,
    /// Destination ports.
    pub dport: RangeSet,
    /// Whether the packets carry their sending socket (locally generated, before the loopback
    /// re-entry): owner matches need one.
    pub socket: bool,
    /// Socket owner uids (locally generated packets only).
    pub uid: Option<RangeSet>,
    /// Socket owner gids (locally generated packets only).
    pub gid: Option<RangeSet>,
    /// Packet mark.
    pub mark: u32,
    /// Conntrack state bit ([`ct`]).
    pub ct_state: u32,
    /// Conntrack status bits ([`ct`]).
    pub ct_status: u32,
    /// What is known of the sending socket's cgroup: `(path, is_member)`.
    pub cgroups: Vec<(String, bool)>,
    /// Destination NAT already set up for this connection (later nat chains are skipped).
    pub nat_done: bool,
    /// In a chain that runs before conntrack (raw priority in prerouting or output).
    pub before_conntrack: bool,
    /// Locally generated packets back on `lo` (they carry the connection output created).
    pub reentered: bool,
    /// Where routing sent the packets: `Some(true)` to this host, `Some(false)` forward.
    pub local: Option<bool>,
}

impl Packets {
    /// Packets arriving on `iif` from outside: every protocol and port, new connections, mark 0.
    pub fn arriving(v6: bool, iif: &str, src: RangeSet, dst: RangeSet) -> Packets {
        Packets {
            v6,
            iif: Dev::Named(iif.into()),
            oif: Dev::Absent,
            src,
            dst,
            proto: RangeSet::range(0, 255),
            sport: RangeSet::range(0, 65535),
            dport: RangeSet::range(0, 65535),
            socket: false,
            uid: None,
            gid: None,
            mark: 0,
            ct_state: ct::NEW,
            ct_status: 0,
            cgroups: Vec::new(),
            nat_done: false,
            before_conntrack: false,
            reentered: false,
            local: None,
        }
    }

    /// Packets a local process of any of `uids` sends to `dst` over loopback.
    pub fn local_client(v6: bool, src: RangeSet, dst: RangeSet, uids: RangeSet) -> Packets {
        Packets {
            iif: Dev::Absent,
            oif: Dev::Named("lo".into()),
            socket: true,
            uid: Some(uids),
            gid: Some(RangeSet::range(0, u32::MAX as u128)),
            ..Packets::arriving(v6, "lo", src, dst)
        }
    }
}

/// How far a query walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Arriving packets, prerouting chains with priority below dstnat (−100) only: "dropped
    /// before NAT?".
    BeforeNat,
    /// Arriving packets through prerouting, routing and input or forward.
    Full,
    /// Arriving packets through prerouting and input, every one treated as addressed to this
    /// host, without the kernel's routing checks: "does the firewall drop it?".
    FirewallInput,
    /// Locally generated packets to a loopback address: output, postrouting, then prerouting
    /// and input on `lo`.
    LocalClient,
}

/// What the evaluator needs to know about the host besides the rules.
#[derive(Debug, Clone, Default)]
pub struct Host {
    /// Local IPv4 addresses (127.0.0.0/8 and every configured one).
    pub local_v4: RangeSet,
    /// Local IPv6 addresses (`::1` and every configured one).
    pub local_v6: RangeSet,
    /// Configured addresses per interface, with prefix lengths.
    pub interfaces: Vec<(String, Vec<(IpAddr, u8)>)>,
    /// The sysctls.
    pub sysctls: Sysctls,
    /// The routes, when the snapshot holds them: what `rp_filter` looks a source up in.
    pub routes: Option<Vec<crate::facts::Route>>,
}

impl Host {
    /// Derives what the evaluator needs from a snapshot.
    pub fn new(facts: &HostFacts) -> Host {
        Host {
            routes: facts.routes.clone(),
            ..Host::from_parts(&facts.interfaces, &facts.sysctls)
        }
    }

    /// Builds the host view from interfaces and sysctls.
    pub fn from_parts(ifaces: &[Interface], sysctls: &Sysctls) -> Host {
        let mut v4 = vec![prefix_range(IpAddr::from([127, 0, 0, 0]), 8)];
        let mut v6 = vec![(1u128, 1u128)];
        let mut interfaces = Vec::new();
        for i in ifaces {
            let mut addrs = Vec::new();
            for a in &i.addresses {
                let v = addr_value(a.address);
                if a.address.is_ipv4() {
                    v4.push((v, v))
                } else {
                    v6.push((v, v))
                }
                addrs.push((a.address, a.prefix_len));
            }
            interfaces.push((i.name.clone(), addrs));
        }
        Host {
            local_v4: RangeSet::from_ranges(v4),
            local_v6: RangeSet::from_ranges(v6),
            interfaces,
            sysctls: sysctls.clone(),
            routes: None,
        }
    }

    /// Local addresses of a family.
    pub fn local(&self, v6: bool) -> &RangeSet {
        if v6 {
            &self.local_v6
        } else {
            &self.local_v4
        }
    }

    fn iface_addrs(&self, name: &str, v6: bool) -> Option<Vec<(IpAddr, u8)>> {
        if name == "lo" {
            let lo: (IpAddr, u8) = if v6 {
                (IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]), 128)
            } else {
                (IpAddr::from([127, 0, 0, 1]), 8)
            };
            return Some(vec![lo]);
        }
        self.interfaces
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| a.iter().copied().filter(|(ip, _)| ip.is_ipv6() == v6).collect())
    }

    /// An IPv4 per-device sysctl for `dev`; `None` when the snapshot has no value (never the
    /// `default` template, which only new interfaces inherit — except for the stand-in for an
    /// interface the snapshot does not have).
    fn conf(&self, dev: &str, name: &str) -> Option<i64> {
        self.sysctls.ipv4_conf(sysctl_dev(dev), name)
    }

    /// `route_localnet` as the kernel reads it: `all` OR the device (`None`: not in the snapshot).
    pub fn route_localnet(&self, dev: &str) -> Option<bool> {
        crate::kernel::route_localnet(&self.sysctls, sysctl_dev(dev)).ok()
    }

    /// The effective IPv4 input settings of `dev` (see [`crate::kernel::Ipv4Input`]).
    fn ipv4_input(&self, dev: &str) -> Result<crate::kernel::Ipv4Input, crate::kernel::MissingSysctl> {
        crate::kernel::Ipv4Input::of(&self.sysctls, sysctl_dev(dev))
    }
}

/// The device whose per-interface sysctls apply to `dev`: the `default` template for the stand-in
/// for an interface the snapshot does not list, which would inherit it.
fn sysctl_dev(dev: &str) -> &str {
    if dev == super::questions::ANY_OUTSIDE_IFACE {
        "default"
    } else {
        dev
    }
}

/// A base chain in hook order.
#[derive(Debug, Clone, Copy)]
struct BaseRef {
    table: usize,
    chain: usize,
    priority: i32,
    nat: bool,
}

/// A ruleset prepared for queries: base chains sorted per hook and family, chains by name.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// The rules.
    pub ruleset: Ruleset,
    /// The host facts the routing decision needs.
    pub host: Host,
    hooks: HashMap<(HookKey, bool), Vec<BaseRef>>,
    by_name: Vec<HashMap<String, usize>>,
    /// Evidence text of every rule (`table chain: rule`), by table, chain and rule index.
    labels: Vec<Vec<Vec<Arc<str>>>>,
    /// Every interface name or pattern a rule matches on, sorted.
    iface_patterns: Vec<String>,
    /// Whether some rule looks at the input device's addresses (rpfilter, `fib … . iif`,
    /// redirect).
    address_sensitive: bool,
}

/// The interface patterns the rules match on, and whether some rule depends on the input
/// device's addresses: what makes two interfaces differ for the rules.
fn interface_sensitivity(ruleset: &Ruleset) -> (Vec<String>, bool) {
    let mut patterns = Vec::new();
    let mut address_sensitive = false;
    let items = ruleset
        .tables
        .iter()
        .flat_map(|t| &t.chains)
        .flat_map(|c| &c.rules)
        .flat_map(|r| &r.items);
    for item in items {
        let conds: Vec<&Cond> = match item {
            Item::Cond(c) => vec![c],
            Item::VMap(entries) => entries.iter().map(|(c, _)| c).collect(),
            Item::Nat(Nat::Redirect { .. }) => {
                address_sensitive = true;
                vec![]
            }
            _ => vec![],
        };
        let mut conds = conds;
        while let Some(c) = conds.pop() {
            match c {
                Cond::Iface { names, .. } => patterns.extend(names.iter().cloned()),
                Cond::RpfMissing { .. } | Cond::AddrType { iface_only: true, .. } => address_sensitive = true,
                Cond::All(inner) | Cond::Any(inner) => conds.extend(inner.iter()),
                _ => {}
            }
        }
    }
    patterns.sort();
    patterns.dedup();
    (patterns, address_sensitive)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum HookKey {
    Pre,
    In,
    Fwd,
    Out,
    Post,
}

fn key(h: Hook) -> HookKey {
    match h {
        Hook::Prerouting => HookKey::Pre,
        Hook::Input => HookKey::In,
        Hook::Forward => HookKey::Fwd,
        Hook::Output => HookKey::Out,
        Hook::Postrouting => HookKey::Post,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    V6Sanity,
    Hook(Hook),
    Route,
    Routed,
    Reenter,
}

#[derive(Debug, Clone, Copy)]
struct Frame {
    table: usize,
    chain: usize,
    rule: usize,
    item: usize,
    /// How many `jump`s and `goto`s led from the base chain to this chain.
    level: usize,
}

impl Frame {
    /// The first rule of a chain, `level` jumps or gotos away from its base chain.
    fn start(table: usize, chain: usize, level: usize) -> Frame {
        Frame {
            table,
            chain,
            rule: 0,
            item: 0,
            level,
        }
    }
}

/// The evidence of a path so far, as a shared list (forks share their common prefix).
#[derive(Debug, Clone, Default)]
struct Trail(Option<Arc<TrailNode>>);

#[derive(Debug)]
struct TrailNode {
    text: Arc<str>,
    /// Pieces of evidence up to and including this one.
    len: usize,
    prev: Trail,
}

impl Trail {
    fn len(&self) -> usize {
        self.0.as_ref().map_or(0, |n| n.len)
    }

    /// Adds a piece of evidence; past [`MAX_EVIDENCE`] a last one says the rest is not listed.
    fn push(&mut self, text: impl Into<Arc<str>>) {
        let len = self.len() + 1;
        let text = match len.cmp(&MAX_EVIDENCE) {
            std::cmp::Ordering::Less => text.into(),
            std::cmp::Ordering::Equal => Arc::from(format!(
                "… (more than {MAX_EVIDENCE} rules on this path: the rest is not listed)"
            )),
            std::cmp::Ordering::Greater => return,
        };
        let prev = std::mem::take(self);
        *self = Trail(Some(Arc::new(TrailNode { text, len, prev })));
    }

    fn to_vec(&self) -> Vec<Arc<str>> {
        let mut out = Vec::with_capacity(self.len());
        let mut node = &self.0;
        while let Some(n) = node {
            out.push(n.text.clone());
            node = &n.prev.0;
        }
        out.reverse();
        out
    }
}

impl Drop for Trail {
    /// Unlinks the list one node at a time: the default drop recurses once per node.
    fn drop(&mut self) {
        let mut next = self.0.take();
        while let Some(node) = next {
            next = Arc::into_inner(node).and_then(|mut n| n.prev.0.take());
        }
    }
}

#[derive(Debug, Clone)]
struct Run {
    p: Packets,
    stage: usize,
    base: usize,
    base_chain: Option<BaseRef>,
    stack: Vec<Frame>,
    evidence: Trail,
    assumed: Vec<Assumption>,
    rewrite: Option<Rewrite>,
}

impl Run {
    /// Records that this path assumed `key` goes the way `holds` says.
    fn assume(&mut self, key: AssumptionKey, holds: bool, text: impl Into<Arc<str>>) {
        self.assumed.push(Assumption {
            key,
            holds,
            text: text.into(),
        });
    }

    /// Starts evaluating base chain `b`.
    fn enter(&mut self, b: BaseRef) {
        self.base_chain = Some(b);
        self.stack.push(Frame::start(b.table, b.chain, 0));
    }

    /// Every base chain of the current stage has run: on to the next stage.
    fn next_stage(&mut self) {
        self.stage += 1;
        self.base = 0;
    }
}

/// What one query walks: the stages in order, how far, and the undecidable conditions fixed one
/// way for it.
struct Walk<'a> {
    stages: Vec<Stage>,
    reach: Reach,
    fixed: &'a [(AssumptionKey, bool)],
}

/// The verdict-map entries a piece of packets assumed (entry index, held or not).
type Entries = Vec<(usize, bool)>;

enum Test {
    Known(bool),
    Unknown,
    Split {
        yes: Vec<Packets>,
        no: Vec<Packets>,
        unknown: Vec<Packets>,
    },
}

impl Analysis {
    /// Prepares `ruleset` for queries on a host described by `host`.
    pub fn new(ruleset: Ruleset, host: Host) -> Analysis {
        let mut hooks: HashMap<(HookKey, bool), Vec<BaseRef>> = HashMap::new();
        let mut by_name: Vec<HashMap<String, usize>> = vec![HashMap::new(); ruleset.tables.len()];
        for (ti, table) in ruleset.tables.iter().enumerate() {
            for (ci, chain) in table.chains.iter().enumerate() {
                by_name[ti].entry(chain.name.clone()).or_insert(ci);
                let Some(base) = &chain.base else { continue };
                for v6 in [false, true] {
                    if table.family.sees(v6) {
                        hooks.entry((key(base.hook), v6)).or_default().push(BaseRef {
                            table: ti,
                            chain: ci,
                            priority: base.priority,
                            nat: base.kind == ChainKind::Nat,
                        });
                    }
                }
            }
        }
        for list in hooks.values_mut() {
            list.sort_by_key(|b| b.priority);
        }
        let (iface_patterns, address_sensitive) = interface_sensitivity(&ruleset);
        let labels = ruleset
            .tables
            .iter()
            .map(|t| {
                let label = t.label();
                t.chains
                    .iter()
                    .map(|c| {
                        c.rules
                            .iter()
                            .map(|r| Arc::from(format!("{label} {}: {}", c.name, r.text)))
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Analysis {
            ruleset,
            host,
            hooks,
            by_name,
            labels,
            iface_patterns,
            address_sensitive,
        }
    }

    /// Whether some rule asks the routing table about a packet's source (`fib saddr … oif`,
    /// `-m rpfilter`): its answer depends on routes, which the rules do not show.
    pub fn uses_reverse_path(&self) -> bool {
        fn rpf(c: &Cond) -> bool {
            match c {
                Cond::RpfMissing { .. } => true,
                Cond::All(inner) | Cond::Any(inner) => inner.iter().any(rpf),
                _ => false,
            }
        }
        let mut items = self
            .ruleset
            .tables
            .iter()
            .flat_map(|t| &t.chains)
            .flat_map(|c| &c.rules)
            .flat_map(|r| &r.items);
        items.any(|item| match item {
            Item::Cond(c) => rpf(c),
            Item::VMap(entries) => entries.iter().any(|(c, _)| rpf(c)),
            _ => false,
        })
    }

    /// What decides how the rules and the kernel treat packets arriving on `iif`: which interface
    /// patterns of the ruleset it matches, its routing sysctls, and (when a rule looks at the
    /// input device's addresses) its addresses. Interfaces with equal keys get equal answers.
    pub fn interface_key(&self, iif: &str) -> Vec<String> {
        let mut key: Vec<String> = self
            .iface_patterns
            .iter()
            .filter(|pat| match pat.strip_suffix('*') {
                Some(prefix) => iif.starts_with(prefix),
                None => *pat == iif,
            })
            .cloned()
            .collect();
        for name in ["route_localnet", "rp_filter", "accept_local"] {
            key.push(format!("{name}={:?}", self.host.conf(iif, name)));
        }
        if self.address_sensitive || iif == "lo" {
            key.push(format!("{iif}:{:?}", self.host.iface_addrs(iif, false)));
            key.push(format!("{:?}", self.host.iface_addrs(iif, true)));
        }
        key
    }

    /// Every path the packets of `start` can take, as far as `reach`. Where a path goes through
    /// conditions the evaluator cannot decide and no path certainly gets through, the answer is
    /// settled where possible: a packet that gets through whichever way those conditions go is
    /// added as a path without assumptions (see [`Analysis::settle`]).
    pub fn query(&self, start: Packets, reach: Reach) -> Answer {
        let mut answer = self.query_fixed(start.clone(), reach, &[]);
        self.settle(&start, reach, &mut answer);
        answer
    }

    /// [`Analysis::query`] with some undecidable conditions fixed one way (`fixed`), and no
    /// settling.
    fn query_fixed(&self, start: Packets, reach: Reach, fixed: &[(AssumptionKey, bool)]) -> Answer {
        let stages: Vec<Stage> = match reach {
            Reach::BeforeNat => vec![Stage::Hook(Hook::Prerouting)],
            Reach::Full => {
                let mut s = vec![Stage::Hook(Hook::Prerouting), Stage::Route, Stage::Routed];
                if start.v6 {
                    s.insert(0, Stage::V6Sanity);
                }
                s
            }
            Reach::FirewallInput => vec![Stage::Hook(Hook::Prerouting), Stage::Hook(Hook::Input)],
            Reach::LocalClient => vec![
                Stage::Hook(Hook::Output),
                Stage::Hook(Hook::Postrouting),
                Stage::Reenter,
                Stage::Hook(Hook::Prerouting),
                Stage::Hook(Hook::Input),
            ],
        };
        let walk = Walk { stages, reach, fixed };
        let mut work = vec![Run {
            p: start,
            stage: 0,
            base: 0,
            base_chain: None,
            stack: Vec::new(),
            evidence: Trail::default(),
            assumed: Vec::new(),
            rewrite: None,
        }];
        let mut answer = Answer::default();
        let mut steps = 0usize;
        while let Some(run) = work.pop() {
            if answer.leaves.len() + work.len() > MAX_PATHS || steps > MAX_STEPS {
                answer.truncated = true;
                break;
            }
            self.advance(run, &walk, &mut work, &mut answer.leaves, &mut steps);
        }
        answer
    }

    /// When no path certainly gets through but some got through under assumptions, looks for one
    /// packet of such a path that gets through whichever way every undecidable condition on its
    /// way goes (each is tried both ways, within a budget), and adds it as a path without
    /// assumptions: a match the evaluator cannot read does not make the answer unknown when it
    /// cannot change the verdict for that packet.
    fn settle(&self, start: &Packets, reach: Reach, answer: &mut Answer) {
        if answer.truncated || answer.leaves.iter().any(Leaf::certainly_through) {
            return;
        }
        let candidates: Vec<&Leaf> = answer
            .leaves
            .iter()
            .filter(|l| through(&l.outcome) && !l.assumed.is_empty())
            .take(MAX_SETTLE_CANDIDATES)
            .collect();
        for candidate in candidates {
            let packet = concrete(start, candidate);
            let mut budget = MAX_SETTLE_QUERIES;
            if self.holds_for_all(&packet, reach, Vec::new(), &mut budget) {
                let mut settled = candidate.clone();
                narrow_to(&mut settled.packets, &packet, candidate.rewrite.is_some());
                let undecided: Vec<&str> = candidate.assumed.iter().map(|a| &*a.text).collect();
                settled.assumed.clear();
                settled.evidence.push(
                    format!(
                        "gets through whichever way these go (each tried both ways): {}",
                        undecided.join(" | ")
                    )
                    .into(),
                );
                answer.leaves.push(settled);
                return;
            }
        }
    }

    /// Whether one concrete packet gets through (every path of it, under every way the
    /// undecidable conditions on those paths can go, given `fixed`).
    fn holds_for_all(
        &self,
        packet: &Packets,
        reach: Reach,
        fixed: Vec<(AssumptionKey, bool)>,
        budget: &mut usize,
    ) -> bool {
        if *budget == 0 {
            return false;
        }
        *budget -= 1;
        let answer = self.query_fixed(packet.clone(), reach, &fixed);
        if answer.truncated || answer.leaves.is_empty() {
            return false;
        }
        if let Some(open) = answer.leaves.iter().find_map(|l| l.assumed.first()) {
            let mut when_true = fixed.clone();
            when_true.push((open.key.clone(), true));
            let mut when_false = fixed;
            when_false.push((open.key.clone(), false));
            return self.holds_for_all(packet, reach, when_true, budget)
                && self.holds_for_all(packet, reach, when_false, budget);
        }
        answer.leaves.iter().all(|l| through(&l.outcome))
    }

    fn advance(&self, mut run: Run, walk: &Walk, work: &mut Vec<Run>, leaves: &mut Vec<Leaf>, steps: &mut usize) {
        let (stages, reach, fixed) = (walk.stages.as_slice(), walk.reach, walk.fixed);
        loop {
            *steps += 1;
            if *steps > MAX_STEPS {
                leaves.push(leaf(run, Outcome::Unknown("evaluation budget exhausted".into())));
                return;
            }
            if run.stack.is_empty() {
                let Some(stage) = stages.get(run.stage).copied() else {
                    let outcome = match reach {
                        Reach::BeforeNat => Outcome::Passed,
                        Reach::Full if run.p.local == Some(false) => Outcome::Forwarded,
                        _ => Outcome::Delivered,
                    };
                    leaves.push(leaf(run, outcome));
                    return;
                };
                match stage {
                    Stage::V6Sanity => {
                        if run.p.iif != Dev::Named("lo".into()) {
                            let one = RangeSet::single(1);
                            for field in [Dir::Src, Dir::Dst] {
                                let (hit, rest) = split(&run.p, field, &one);
                                if let Some(mut hit) = hit {
                                    let mut dropped = run.clone();
                                    hit.local = None;
                                    dropped.p = hit;
                                    dropped.evidence.push("kernel: ip6_rcv_core() drops ::1 as source or destination on a non-loopback device, before any hook");
                                    leaves.push(leaf(dropped, Outcome::Dropped));
                                }
                                match rest {
                                    Some(r) => run.p = r,
                                    None => return,
                                }
                            }
                        }
                        run.stage += 1;
                    }
                    Stage::Hook(h) => {
                        let list = self.hooks.get(&(key(h), run.p.v6)).map(Vec::as_slice).unwrap_or(&[]);
                        let next = list
                            .get(run.base)
                            .copied()
                            .filter(|b| reach != Reach::BeforeNat || b.priority < -100);
                        match next {
                            Some(b) => {
                                run.base += 1;
                                let skip_nat = b.nat && (run.p.ct_state == ct::UNTRACKED || run.p.nat_done);
                                // Conntrack runs at -200 in prerouting and output; chains before it
                                // (raw) see no connection yet, except on the loopback re-entry,
                                // which carries the one output made.
                                run.p.before_conntrack = b.priority < -200
                                    && matches!(h, Hook::Prerouting | Hook::Output)
                                    && !run.p.reentered;
                                if !skip_nat {
                                    run.enter(b);
                                }
                            }
                            None => run.next_stage(),
                        }
                    }
                    Stage::Route => {
                        if reach == Reach::Full {
                            for r in self.route(run, fixed, leaves) {
                                work.push(r);
                            }
                            return;
                        }
                        run.stage += 1;
                    }
                    Stage::Routed => {
                        let hook = if run.p.local == Some(false) {
                            Hook::Forward
                        } else {
                            Hook::Input
                        };
                        let list = self.hooks.get(&(key(hook), run.p.v6)).map(Vec::as_slice).unwrap_or(&[]);
                        match list.get(run.base).copied() {
                            Some(b) => {
                                run.base += 1;
                                // Input and forward run after conntrack, whatever ran before.
                                run.p.before_conntrack = false;
                                run.enter(b);
                            }
                            None => run.next_stage(),
                        }
                    }
                    Stage::Reenter => {
                        run.p.iif = Dev::Named("lo".into());
                        run.p.oif = Dev::Absent;
                        run.p.socket = false;
                        run.p.nat_done = true;
                        run.p.reentered = true;
                        run.stage += 1;
                    }
                }
                continue;
            }
            let Some(frame) = run.stack.last().copied() else {
                continue;
            };
            if frame.level > MAX_DEPTH {
                leaves.push(leaf(
                    run,
                    Outcome::Unknown(format!(
                        "jumps and gotos nested deeper than {MAX_DEPTH} chains (a loop? the kernel refuses one)"
                    )),
                ));
                return;
            }
            let table = &self.ruleset.tables[frame.table];
            let chain = &table.chains[frame.chain];
            let Some(rule) = chain.rules.get(frame.rule) else {
                run.stack.pop();
                if run.stack.is_empty() && self.policy(&mut run, leaves) {
                    return;
                }
                continue;
            };
            let Some(item) = rule.items.get(frame.item) else {
                next_rule(&mut run);
                continue;
            };
            let here = || self.labels[frame.table][frame.chain][frame.rule].clone();
            let key = |entry: usize| AssumptionKey::Item {
                table: frame.table,
                chain: frame.chain,
                rule: frame.rule,
                item: frame.item,
                entry,
            };
            let fixed_as = |entry: usize| fixed.iter().find(|(k, _)| *k == key(entry)).map(|(_, v)| *v);
            match item {
                Item::Cond(c) => match self.test(c, &run.p) {
                    Test::Known(true) => next_item(&mut run),
                    Test::Known(false) => next_rule(&mut run),
                    Test::Unknown => match fixed_as(0) {
                        Some(true) => next_item(&mut run),
                        Some(false) => next_rule(&mut run),
                        None => {
                            let mut other = run.clone();
                            other.assume(key(0), false, here());
                            next_rule(&mut other);
                            work.push(other);
                            run.assume(key(0), true, here());
                            next_item(&mut run);
                        }
                    },
                    Test::Split { yes, no, unknown } => {
                        let mut pieces: Vec<(Packets, bool, bool)> = Vec::new();
                        pieces.extend(yes.into_iter().map(|p| (p, true, false)));
                        pieces.extend(no.into_iter().map(|p| (p, false, false)));
                        for p in unknown {
                            match fixed_as(0) {
                                Some(v) => pieces.push((p, v, false)),
                                None => {
                                    pieces.push((p.clone(), true, true));
                                    pieces.push((p, false, true));
                                }
                            }
                        }
                        let Some((first, matched, assumed)) = pieces.pop() else {
                            return;
                        };
                        // Each piece goes on past this condition (matched) or to the next rule.
                        let go_on = |run: &mut Run, p: Packets, matched: bool, assumed: bool| {
                            run.p = p;
                            if assumed {
                                run.assume(key(0), matched, here());
                            }
                            if matched {
                                next_item(run)
                            } else {
                                next_rule(run)
                            }
                        };
                        for (p, m, a) in pieces {
                            let mut other = run.clone();
                            go_on(&mut other, p, m, a);
                            work.push(other);
                        }
                        go_on(&mut run, first, matched, assumed);
                    }
                },
                Item::SetMark { mask, value } => {
                    run.p.mark = (run.p.mark & !mask) ^ value;
                    run.evidence.push(here());
                    next_item(&mut run);
                }
                Item::NoTrack => {
                    run.p.ct_state = ct::UNTRACKED;
                    run.evidence.push(here());
                    next_item(&mut run);
                }
                Item::Nat(nat) => {
                    let in_nat_chain = run.base_chain.is_some_and(|b| b.nat);
                    if !in_nat_chain {
                        next_item(&mut run);
                        continue;
                    }
                    run.evidence.push(here());
                    match self.apply_nat(&mut run, nat, here()) {
                        Ok(()) => {
                            self.verdict(&mut run, &Verdict::Accept, leaves);
                        }
                        Err(why) => {
                            leaves.push(leaf(run, Outcome::Unknown(why)));
                            return;
                        }
                    }
                }
                Item::VMap(entries) => {
                    // Each piece of the packets carries the entries it assumed (held or not).
                    let mut pending: Vec<(Packets, Entries)> = vec![(run.p.clone(), Vec::new())];
                    let mut results: Vec<(Packets, Entries, Option<&Verdict>)> = Vec::new();
                    for (entry, (cond, v)) in entries.iter().enumerate() {
                        let mut next = Vec::new();
                        let with = |a: &Vec<(usize, bool)>, holds: bool| {
                            let mut a = a.clone();
                            a.push((entry, holds));
                            a
                        };
                        for (p, assumed) in pending {
                            let (yes, no, unknown) = match self.test(cond, &p) {
                                Test::Known(true) => (vec![p], vec![], vec![]),
                                Test::Known(false) => (vec![], vec![p], vec![]),
                                Test::Unknown => (vec![], vec![], vec![p]),
                                Test::Split { yes, no, unknown } => (yes, no, unknown),
                            };
                            results.extend(yes.into_iter().map(|y| (y, assumed.clone(), Some(v))));
                            next.extend(no.into_iter().map(|n| (n, assumed.clone())));
                            for u in unknown {
                                match fixed_as(entry) {
                                    Some(true) => results.push((u, assumed.clone(), Some(v))),
                                    Some(false) => next.push((u, assumed.clone())),
                                    None => {
                                        results.push((u.clone(), with(&assumed, true), Some(v)));
                                        next.push((u, with(&assumed, false)));
                                    }
                                }
                            }
                        }
                        pending = next;
                    }
                    results.extend(pending.into_iter().map(|(p, a)| (p, a, None)));
                    let text = here();
                    let mut runs: Vec<Run> = results
                        .into_iter()
                        .map(|(p, assumed, v)| {
                            let mut r = run.clone();
                            r.p = p;
                            for (entry, holds) in assumed {
                                r.assume(key(entry), holds, text.clone());
                            }
                            match v {
                                None => next_rule(&mut r),
                                Some(v) => {
                                    r.evidence.push(format!("{text} (→ {})", verdict_name(v)));
                                    if self.verdict(&mut r, v, leaves) {
                                        r.stage = usize::MAX;
                                    }
                                }
                            }
                            r
                        })
                        .filter(|r| r.stage != usize::MAX)
                        .collect();
                    let Some(first) = runs.pop() else { return };
                    work.extend(runs);
                    run = first;
                }
                Item::Verdict(v) => {
                    if !matches!(v, Verdict::Continue) {
                        run.evidence.push(here());
                    }
                    if self.verdict(&mut run, v, leaves) {
                        return;
                    }
                }
                Item::Opaque(what) => {
                    run.evidence.push(here());
                    let why = if run.base_chain.is_some_and(|b| b.nat) {
                        format!("{NAT_NOT_UNDERSTOOD}: {what}")
                    } else {
                        format!("statement not understood: {what}")
                    };
                    leaves.push(leaf(run, Outcome::Unknown(why)));
                    return;
                }
            }
        }
    }

    /// Applies a verdict; true when the path ended (a drop, a drop policy, an unknown jump
    /// target), which is then a leaf.
    fn verdict(&self, run: &mut Run, v: &Verdict, leaves: &mut Vec<Leaf>) -> bool {
        match v {
            Verdict::Accept => {
                run.stack.clear();
                run.base_chain = None;
                false
            }
            Verdict::Drop => {
                let done = std::mem::replace(run, empty_run());
                leaves.push(leaf(done, Outcome::Dropped));
                true
            }
            Verdict::Continue => {
                next_rule(run);
                false
            }
            Verdict::Return => {
                run.stack.pop();
                run.stack.is_empty() && self.policy(run, leaves)
            }
            Verdict::Jump(target) | Verdict::Goto(target) => {
                let Some(top) = run.stack.last_mut() else { return false };
                let table = top.table;
                let Some(&chain) = self.by_name.get(table).and_then(|m| m.get(target.as_str())) else {
                    let done = std::mem::replace(run, empty_run());
                    leaves.push(leaf(
                        done,
                        Outcome::Unknown(format!("jump to a chain not in the capture: {target}")),
                    ));
                    return true;
                };
                let level = top.level + 1;
                if matches!(v, Verdict::Goto(_)) {
                    *top = Frame::start(table, chain, level);
                } else {
                    top.rule += 1;
                    top.item = 0;
                    run.stack.push(Frame::start(table, chain, level));
                }
                false
            }
        }
    }

    /// The base chain's policy, once its rules (and any goto chain) ran out; true when it drops.
    fn policy(&self, run: &mut Run, leaves: &mut Vec<Leaf>) -> bool {
        let Some(b) = run.base_chain.take() else { return false };
        let table = &self.ruleset.tables[b.table];
        let chain = &table.chains[b.chain];
        if chain.base.as_ref().is_none_or(|c| c.policy_accept) {
            return false;
        }
        let mut done = std::mem::replace(run, empty_run());
        done.evidence
            .push(format!("{} {}: policy drop", table.label(), chain.name));
        leaves.push(leaf(done, Outcome::Dropped));
        true
    }

    fn apply_nat(&self, run: &mut Run, nat: &Nat, rule: Arc<str>) -> Result<(), String> {
        let (addr, port) = match nat {
            Nat::Source => return Ok(()),
            Nat::Dnat { addr, port } => (*addr, *port),
            Nat::Redirect { port } => {
                let iif: String = match &run.p.iif {
                    Dev::Named(n) => n.to_string(),
                    _ => "lo".to_string(),
                };
                let addr = self
                    .host
                    .iface_addrs(&iif, run.p.v6)
                    .and_then(|a| a.first().map(|x| x.0))
                    .ok_or_else(|| {
                        format!("redirect to the primary address of {iif}, which the snapshot does not list")
                    })?;
                (Some(addr), *port)
            }
        };
        run.rewrite = Some(Rewrite {
            original_dst: run.p.dst.clone(),
            original_dport: run.p.dport.clone(),
            addr,
            port,
            rule,
        });
        if let Some(a) = addr {
            run.p.dst = RangeSet::single(addr_value(a));
        }
        if let Some(p) = port {
            run.p.dport = RangeSet::single(p.into());
        }
        run.p.ct_status |= ct::STATUS_DNAT;
        run.p.nat_done = true;
        Ok(())
    }

    /// The routing decision for arriving packets: martian checks, then local or forward.
    fn route(&self, mut run: Run, fixed: &[(AssumptionKey, bool)], leaves: &mut Vec<Leaf>) -> Vec<Run> {
        let fixed_as = |key: &AssumptionKey| fixed.iter().find(|(k, _)| k == key).map(|(_, v)| *v);
        let iif: String = match &run.p.iif {
            Dev::Named(n) => n.to_string(),
            _ => "lo".into(),
        };
        let mut out = Vec::new();
        let mut pending = vec![run.clone()];
        if !run.p.v6 && iif != "lo" {
            let loopback = RangeSet::from_ranges(vec![prefix_range(IpAddr::from([127, 0, 0, 0]), 8)]);
            let rl_key = AssumptionKey::Host(format!("route_localnet of {iif}"));
            let rl = self.host.route_localnet(&iif).or_else(|| fixed_as(&rl_key));
            let mut next = Vec::new();
            next.append(&mut pending);
            for r in next {
                let (hit, rest) = split(&r.p, Dir::Dst, &loopback);
                if let Some(hit) = hit {
                    let mut m = r.clone();
                    m.p = hit;
                    match rl {
                        Some(true) => {
                            m.evidence.push(format!(
                                "kernel: route_localnet=1 on {iif} (all or device): 127.0.0.0/8 destination is routed"
                            ));
                            pending.push(m);
                        }
                        Some(false) => {
                            m.evidence.push(format!("kernel: martian destination 127.0.0.0/8 on {iif} dropped by ip_route_input_slow() (route_localnet=0)"));
                            leaves.push(leaf(m, Outcome::Dropped));
                        }
                        None => {
                            let text = format!("route_localnet of {iif} not in the snapshot");
                            let mut dropped = m.clone();
                            dropped.assume(rl_key.clone(), false, text.as_str());
                            leaves.push(leaf(dropped, Outcome::Dropped));
                            m.assume(rl_key.clone(), true, text);
                            pending.push(m);
                        }
                    }
                }
                if let Some(rest) = rest {
                    let mut m = r.clone();
                    m.p = rest;
                    pending.push(m);
                }
            }
            let mut next = Vec::new();
            for r in pending {
                let (hit, rest) = split(&r.p, Dir::Src, &loopback);
                if let Some(rest) = rest {
                    let mut m = r.clone();
                    m.p = rest;
                    next.push(m);
                }
                let Some(hit) = hit else { continue };
                let mut m = r.clone();
                m.p = hit;
                let input = self.host.ipv4_input(&iif);
                let input_key = AssumptionKey::Host(format!("IPv4 input settings of {iif}"));
                let input = match (input, fixed_as(&input_key)) {
                    (Err(_), Some(accepts)) => Ok(Err(accepts)),
                    (Ok(i), _) => Ok(Ok(i)),
                    (Err(missing), None) => Err(missing),
                };
                match (rl, input) {
                    (Some(false), _) => {
                        m.evidence.push(format!(
                            "kernel: martian source 127.0.0.0/8 on {iif} dropped (route_localnet=0)"
                        ));
                        leaves.push(leaf(m, Outcome::Dropped));
                    }
                    (_, Err(missing)) => {
                        let text = missing.describe(&self.host.sysctls);
                        let mut dropped = m.clone();
                        dropped.assume(input_key.clone(), false, text.as_str());
                        leaves.push(leaf(dropped, Outcome::Dropped));
                        m.assume(input_key.clone(), true, text);
                        next.push(m);
                    }
                    (_, Ok(Err(accepts))) => {
                        if accepts {
                            next.push(m);
                        } else {
                            leaves.push(leaf(m, Outcome::Dropped));
                        }
                    }
                    (_, Ok(Ok(input))) => {
                        let configured = self
                            .host
                            .local_v4
                            .intersect(&RangeSet::single(addr_value(IpAddr::from([127, 0, 0, 1]))));
                        let (own, other) = split(&m.p, Dir::Src, &configured);
                        for (part, is_configured) in [(other, false), (own, true)] {
                            let Some(part) = part else { continue };
                            let mut o = m.clone();
                            o.p = part;
                            if input.accepts_loopback_source(is_configured) {
                                next.push(o);
                            } else {
                                o.evidence.push(format!(
                                    "kernel: fib_validate_source() rejects {} on {iif} \
                                     (rp_filter={}, accept_local={})",
                                    if is_configured {
                                        "the source 127.0.0.1, a configured address,"
                                    } else {
                                        "a spoofed 127.0.0.0/8 source"
                                    },
                                    input.rp_filter,
                                    u8::from(input.accept_local)
                                ));
                                leaves.push(leaf(o, Outcome::Dropped));
                            }
                        }
                    }
                }
            }
            pending = next;
            pending = self.own_sources(pending, &iif, fixed, leaves);
            pending = self.reverse_path(pending, &iif, leaves);
        }
        for r in pending {
            let local = self.host.local(r.p.v6).clone();
            let (mine, other) = split(&r.p, Dir::Dst, &local);
            if let Some(mut p) = mine {
                let mut m = r.clone();
                p.local = Some(true);
                m.p = p;
                m.stage += 1;
                m.base = 0;
                out.push(m);
            }
            let Some(mut p) = other else { continue };
            let forwarding = if r.p.v6 {
                self.host.sysctls.get_int("net.ipv6.conf.all.forwarding")
            } else {
                self.host
                    .sysctls
                    .get_int("net.ipv4.ip_forward")
                    .or_else(|| self.host.sysctls.ipv4_conf("all", "forwarding"))
            };
            let mut m = r.clone();
            p.local = Some(false);
            p.oif = self.oif_for(&p);
            m.p = p;
            let fwd_key = AssumptionKey::Host("forwarding".into());
            let forwarding = forwarding.or_else(|| fixed_as(&fwd_key).map(i64::from));
            match forwarding {
                Some(0) => {
                    m.evidence
                        .push("kernel: not addressed to this host and forwarding is off");
                    leaves.push(leaf(m, Outcome::Dropped));
                }
                f => {
                    if f.is_none() {
                        let text = "forwarding sysctl not in the snapshot";
                        let mut dropped = m.clone();
                        dropped.assume(fwd_key.clone(), false, text);
                        dropped
                            .evidence
                            .push("kernel: not addressed to this host and forwarding is off");
                        leaves.push(leaf(dropped, Outcome::Dropped));
                        m.assume(fwd_key.clone(), true, text);
                    }
                    m.stage += 1;
                    m.base = 0;
                    out.push(m);
                }
            }
        }
        run.stack.clear();
        out
    }

    /// The reverse-path filter for IPv4 sources from outside, when the snapshot holds the
    /// routes: strict `rp_filter` drops a source whose route back leaves by another interface,
    /// both modes one with no route back. Loopback and this host's own sources were decided
    /// before; without routes (or with policy routing) nothing is decided here.
    fn reverse_path(&self, pending: Vec<Run>, iif: &str, leaves: &mut Vec<Leaf>) -> Vec<Run> {
        let mode = match self.host.ipv4_input(iif) {
            Ok(input) if input.rp_filter > 0 && iif != super::questions::ANY_OUTSIDE_IFACE => input.rp_filter,
            _ => return pending,
        };
        let Some(accepted) = self
            .host
            .routes
            .as_deref()
            .and_then(|routes| super::reverse_path::accepted_sources(routes, iif, mode))
        else {
            return pending;
        };
        // Decided earlier: 127.0.0.0/8 (route_localnet, the measured table) and own addresses.
        let accepted = accepted.union(&self.host.local_v4);
        let mut next = Vec::new();
        for r in pending {
            if r.p.v6 {
                next.push(r);
                continue;
            }
            let (taken, dropped) = split(&r.p, Dir::Src, &accepted);
            if let Some(p) = taken {
                let mut m = r.clone();
                m.p = p;
                next.push(m);
            }
            if let Some(p) = dropped {
                let mut m = r.clone();
                m.p = p;
                m.evidence.push(format!(
                    "kernel: rp_filter={mode} on {iif} drops a source whose route back {} (the host's routes)",
                    if mode == 1 {
                        "does not leave by this interface"
                    } else {
                        "does not exist"
                    }
                ));
                leaves.push(leaf(m, Outcome::Dropped));
            }
        }
        next
    }

    /// IPv4 from outside whose source is one of this host's own (non-loopback) addresses: a martian
    /// source for `fib_validate_source()` unless `accept_local` (with rp_filter 0 it looks the
    /// source up among the interface addresses; otherwise the route to it is local). With
    /// accept_local and a reverse-path filter the answer depends on which interface holds the
    /// address: both ways are followed.
    fn own_sources(
        &self,
        pending: Vec<Run>,
        iif: &str,
        fixed: &[(AssumptionKey, bool)],
        leaves: &mut Vec<Leaf>,
    ) -> Vec<Run> {
        let loopback = RangeSet::from_ranges(vec![prefix_range(IpAddr::from([127, 0, 0, 0]), 8)]);
        let own = self.host.local_v4.subtract(&loopback);
        let key = AssumptionKey::Host(format!("accepting this host's own addresses as sources on {iif}"));
        let decided = fixed.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let mut next = Vec::new();
        for r in pending {
            let (hit, rest) = split(&r.p, Dir::Src, &own);
            if let Some(rest) = rest {
                let mut m = r.clone();
                m.p = rest;
                next.push(m);
            }
            let Some(hit) = hit else { continue };
            let mut m = r.clone();
            m.p = hit;
            let verdict = match self.host.ipv4_input(iif) {
                Ok(input) if !input.accept_local => Some(false),
                Ok(input) if input.rp_filter == 0 => Some(true),
                _ => decided,
            };
            match verdict {
                Some(true) => next.push(m),
                Some(false) => {
                    m.evidence.push(format!(
                        "kernel: fib_validate_source() rejects a source that is one of this host's own addresses on {iif} (accept_local=0)"
                    ));
                    leaves.push(leaf(m, Outcome::Dropped));
                }
                None => {
                    let text =
                        format!("whether {iif} accepts this host's own addresses as sources (accept_local, rp_filter)");
                    let mut dropped = m.clone();
                    dropped.assume(key.clone(), false, text.as_str());
                    leaves.push(leaf(dropped, Outcome::Dropped));
                    m.assume(key.clone(), true, text);
                    next.push(m);
                }
            }
        }
        next
    }

    /// The output device of forwarded packets: the interface with a connected prefix holding
    /// every destination, else unknown (routes are not in the snapshot).
    fn oif_for(&self, p: &Packets) -> Dev {
        for (name, addrs) in &self.host.interfaces {
            for (ip, len) in addrs {
                if ip.is_ipv6() != p.v6 {
                    continue;
                }
                let (lo, hi) = prefix_range(*ip, *len);
                if p.dst.subtract(&RangeSet::range(lo, hi)).is_empty() {
                    return Dev::Named(name.as_str().into());
                }
            }
        }
        Dev::Unknown
    }

    /// A condition's value for packets it does not split (`None` when it splits or is unknown).
    #[cfg(test)]
    pub(crate) fn test_cond(&self, c: &Cond, p: &Packets) -> Option<bool> {
        match self.test(c, p) {
            Test::Known(v) => Some(v),
            _ => None,
        }
    }

    fn test(&self, c: &Cond, p: &Packets) -> Test {
        match c {
            Cond::Iface {
                dir,
                by_index,
                names,
                negate,
            } => {
                let dev = if *dir == Dir::Src { &p.iif } else { &p.oif };
                let name = match dev {
                    Dev::Absent if *by_index => return Test::Known(false),
                    Dev::Absent => "",
                    Dev::Named(n) => &**n,
                    Dev::Unknown => return Test::Unknown,
                };
                let hit = names.iter().any(|pat| match pat.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => pat == name,
                });
                Test::Known(hit != *negate)
            }
            Cond::Addr { dir, v6, set, negate } => {
                if *v6 != p.v6 {
                    return Test::Known(false);
                }
                cut_test(cut(p, *dir, set), *negate)
            }
            Cond::Nfproto { v6 } => Test::Known(*v6 == p.v6),
            Cond::Proto { set, negate } => cut_test(cut_by(p, &p.proto, set, |p, s| p.proto = s), *negate),
            Cond::Port {
                dir,
                proto,
                set,
                negate,
            } => {
                // `tcp dport` needs TCP whatever the operator: other protocols never match.
                let mut no = Vec::new();
                let narrowed;
                let base = match proto {
                    Some(n) => match cut_by(p, &p.proto, &RangeSet::single(u128::from(*n)), |p, s| p.proto = s) {
                        Cut::Outside => return Test::Known(false),
                        Cut::Inside => p,
                        Cut::Both(pair) => {
                            let (tcp, other) = *pair;
                            no.push(other);
                            narrowed = tcp;
                            &narrowed
                        }
                    },
                    None => p,
                };
                let field = if *dir == Dir::Src { &base.sport } else { &base.dport };
                let put: fn(&mut Packets, RangeSet) = if *dir == Dir::Src {
                    |p, s| p.sport = s
                } else {
                    |p, s| p.dport = s
                };
                let yes = match (cut_by(base, field, set, put), *negate) {
                    (Cut::Inside, false) | (Cut::Outside, true) => Some(base.clone()),
                    (Cut::Inside, true) | (Cut::Outside, false) => {
                        no.push(base.clone());
                        None
                    }
                    (Cut::Both(pair), negate) => {
                        let (hit, miss) = *pair;
                        let (yes, other) = if negate { (miss, hit) } else { (hit, miss) };
                        no.push(other);
                        Some(yes)
                    }
                };
                match yes {
                    None => Test::Known(false),
                    Some(_) if no.is_empty() => Test::Known(true),
                    Some(y) => Test::Split {
                        yes: vec![y],
                        no,
                        unknown: Vec::new(),
                    },
                }
            }
            Cond::Ct { states, status, negate } => {
                // Before conntrack a packet has no entry: `ct state` reads invalid (untracked
                // once notrack ran), and a status match fails whatever its operator.
                if p.before_conntrack && *states == 0 {
                    return Test::Known(false);
                }
                let (state, st) = match (p.before_conntrack, p.ct_state) {
                    (true, ct::UNTRACKED) => (ct::UNTRACKED, 0),
                    (true, _) => (ct::INVALID, 0),
                    (false, state) => (state, p.ct_status),
                };
                let hit = (states & state) != 0 || (status & st) != 0;
                Test::Known(hit != *negate)
            }
            Cond::Mark { mask, value, negate } => Test::Known(((p.mark & mask) == *value) != *negate),
            Cond::Owner { gid, set, negate } => {
                let ids = if *gid { &p.gid } else { &p.uid };
                let Some(ids) = ids.as_ref().filter(|_| p.socket) else {
                    return Test::Known(false);
                };
                let c = if *gid {
                    cut_by(p, ids, set, |p, s| p.gid = Some(s))
                } else {
                    cut_by(p, ids, set, |p, s| p.uid = Some(s))
                };
                cut_test(c, *negate)
            }
            Cond::Cgroup { path, negate } => {
                if !p.socket {
                    return Test::Known(false);
                }
                if let Some((_, member)) = p.cgroups.iter().find(|(c, _)| c == path) {
                    return Test::Known(*member != *negate);
                }
                if p.cgroups
                    .iter()
                    .any(|(c, m)| *m && c != path && !c.starts_with(&format!("{path}/")))
                {
                    return Test::Known(*negate);
                }
                let mut yes = p.clone();
                yes.cgroups.push((path.clone(), true));
                let mut no = p.clone();
                no.cgroups.push((path.clone(), false));
                split_test(Some(yes), Some(no), *negate)
            }
            Cond::AddrType {
                dir,
                types,
                iface_only,
                negate,
            } => {
                let mut set = RangeSet::empty();
                let local = if *iface_only {
                    let Dev::Named(iif) = &p.iif else { return Test::Unknown };
                    let Some(addrs) = self.host.iface_addrs(iif, p.v6) else {
                        return Test::Unknown;
                    };
                    let mut r: Vec<(u128, u128)> =
                        addrs.iter().map(|(a, _)| (addr_value(*a), addr_value(*a))).collect();
                    if &**iif == "lo" && !p.v6 {
                        r.push(prefix_range(IpAddr::from([127, 0, 0, 0]), 8));
                    }
                    RangeSet::from_ranges(r)
                } else {
                    self.host.local(p.v6).clone()
                };
                let multicast = if p.v6 {
                    RangeSet::from_ranges(vec![prefix_range(IpAddr::from([0xff00u16, 0, 0, 0, 0, 0, 0, 0]), 8)])
                } else {
                    RangeSet::from_ranges(vec![prefix_range(IpAddr::from([224, 0, 0, 0]), 4)])
                };
                let broadcast = if p.v6 { RangeSet::empty() } else { self.broadcast_v4() };
                for t in types {
                    let add = match t.as_str() {
                        "local" => local.clone(),
                        "multicast" => multicast.clone(),
                        "broadcast" => broadcast.clone(),
                        "unicast" => {
                            all_addrs(p.v6).subtract(&self.host.local(p.v6).union(&multicast).union(&broadcast))
                        }
                        _ => return Test::Unknown,
                    };
                    set = set.union(&add);
                }
                cut_test(cut(p, *dir, &set), *negate)
            }
            Cond::RpfMissing { negate } => {
                let Dev::Named(iif) = &p.iif else { return Test::Unknown };
                if &**iif == "lo" {
                    return Test::Known(*negate);
                }
                let loopback = if p.v6 {
                    RangeSet::single(1)
                } else {
                    RangeSet::from_ranges(vec![prefix_range(IpAddr::from([127, 0, 0, 0]), 8)])
                };
                let connected = self
                    .host
                    .iface_addrs(iif, p.v6)
                    .map(|a| RangeSet::from_ranges(a.iter().map(|(ip, len)| prefix_range(*ip, *len)).collect()))
                    .unwrap_or_default();
                let (missing, rest) = split(p, Dir::Src, &loopback);
                let (present, unknown) = match rest {
                    Some(r) => split(&r, Dir::Src, &connected),
                    None => (None, None),
                };
                let (yes, no) = if *negate {
                    (present, missing)
                } else {
                    (missing, present)
                };
                match (yes, no, unknown) {
                    (y, n, None) => split_test(y, n, false),
                    (y, n, Some(u)) => {
                        if y.is_none() && n.is_none() {
                            return Test::Unknown;
                        }
                        Test::Split {
                            yes: y.into_iter().collect(),
                            no: n.into_iter().collect(),
                            unknown: vec![u],
                        }
                    }
                }
            }
            Cond::Chance(_) => Test::Split {
                yes: vec![p.clone()],
                no: vec![p.clone()],
                unknown: vec![],
            },
            Cond::All(conds) => {
                let (mut yes, mut no, mut unknown) = (vec![p.clone()], Vec::new(), Vec::new());
                for c in conds {
                    let mut next = Vec::new();
                    for q in yes {
                        let (y, n, u) = self.pieces(c, &q);
                        next.extend(y);
                        no.extend(n);
                        unknown.extend(u);
                    }
                    yes = next;
                }
                combine(yes, no, unknown)
            }
            Cond::Any(conds) => {
                let (mut pending, mut yes, mut unknown) = (vec![p.clone()], Vec::new(), Vec::new());
                for c in conds {
                    let mut next = Vec::new();
                    for q in pending {
                        let (y, n, u) = self.pieces(c, &q);
                        yes.extend(y);
                        next.extend(n);
                        unknown.extend(u);
                    }
                    pending = next;
                    if pending.is_empty() {
                        break;
                    }
                }
                combine(yes, pending, unknown)
            }
            Cond::Opaque(_) => Test::Unknown,
        }
    }

    /// The packets for which `c` holds, does not hold, or cannot be told.
    fn pieces(&self, c: &Cond, p: &Packets) -> (Vec<Packets>, Vec<Packets>, Vec<Packets>) {
        match self.test(c, p) {
            Test::Known(true) => (vec![p.clone()], Vec::new(), Vec::new()),
            Test::Known(false) => (Vec::new(), vec![p.clone()], Vec::new()),
            Test::Unknown => (Vec::new(), Vec::new(), vec![p.clone()]),
            Test::Split { yes, no, unknown } => (yes, no, unknown),
        }
    }

    fn broadcast_v4(&self) -> RangeSet {
        let mut r = vec![(u32::MAX as u128, u32::MAX as u128)];
        for (_, addrs) in &self.host.interfaces {
            for (ip, len) in addrs {
                if ip.is_ipv4() && *len < 31 {
                    let (_, hi) = prefix_range(*ip, *len);
                    r.push((hi, hi));
                }
            }
        }
        RangeSet::from_ranges(r)
    }
}

fn empty_run() -> Run {
    Run {
        p: Packets::arriving(false, "lo", RangeSet::empty(), RangeSet::empty()),
        stage: usize::MAX,
        base: 0,
        base_chain: None,
        stack: Vec::new(),
        evidence: Trail::default(),
        assumed: Vec::new(),
        rewrite: None,
    }
}

/// Whether a path's end lets the packets through.
fn through(outcome: &Outcome) -> bool {
    matches!(outcome, Outcome::Delivered | Outcome::Forwarded | Outcome::Passed)
}

/// One packet of a path, as it was when the query started: the first value of each field the
/// path narrowed (the destination before any rewrite), the rest of the start's state.
fn concrete(start: &Packets, path: &Leaf) -> Packets {
    let one = |s: &RangeSet| s.first().map(RangeSet::single).unwrap_or_default();
    let mut p = start.clone();
    p.src = one(&path.packets.src);
    p.proto = one(&path.packets.proto);
    p.sport = one(&path.packets.sport);
    match &path.rewrite {
        Some(rw) => {
            p.dst = one(&rw.original_dst);
            p.dport = one(&rw.original_dport);
        }
        None => {
            p.dst = one(&path.packets.dst);
            p.dport = one(&path.packets.dport);
        }
    }
    p.uid = path.packets.uid.as_ref().map(one);
    p.gid = path.packets.gid.as_ref().map(one);
    p.cgroups = path.packets.cgroups.clone();
    p
}

/// Narrows a path's packets to the concrete packet's fields (the destination only when no
/// rewrite replaced it).
fn narrow_to(p: &mut Packets, packet: &Packets, rewritten: bool) {
    p.src = packet.src.clone();
    p.proto = packet.proto.clone();
    p.sport = packet.sport.clone();
    if !rewritten {
        p.dst = packet.dst.clone();
        p.dport = packet.dport.clone();
    }
    p.uid = packet.uid.clone();
    p.gid = packet.gid.clone();
}

fn leaf(run: Run, outcome: Outcome) -> Leaf {
    let evidence = run.evidence.to_vec();
    Leaf {
        outcome,
        packets: run.p,
        evidence,
        assumed: run.assumed,
        rewrite: run.rewrite,
    }
}

fn next_item(run: &mut Run) {
    if let Some(f) = run.stack.last_mut() {
        f.item += 1;
    }
}

fn next_rule(run: &mut Run) {
    if let Some(f) = run.stack.last_mut() {
        f.rule += 1;
        f.item = 0;
    }
}

fn verdict_name(v: &Verdict) -> String {
    match v {
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Return => "return".into(),
        Verdict::Continue => "continue".into(),
        Verdict::Jump(t) => format!("jump {t}"),
        Verdict::Goto(t) => format!("goto {t}"),
    }
}

/// How a field of a packet set relates to a value set.
enum Cut {
    /// Every packet's field is in the set.
    Inside,
    /// No packet's field is in the set.
    Outside,
    /// Some are: the packets inside, and those outside.
    Both(Box<(Packets, Packets)>),
}

impl Cut {
    fn into_pieces(self, p: &Packets) -> (Option<Packets>, Option<Packets>) {
        match self {
            Cut::Inside => (Some(p.clone()), None),
            Cut::Outside => (None, Some(p.clone())),
            Cut::Both(pair) => (Some(pair.0), Some(pair.1)),
        }
    }
}

/// Splits packets by an address set: (inside, outside), each `None` when empty.
fn split(p: &Packets, dir: Dir, set: &RangeSet) -> (Option<Packets>, Option<Packets>) {
    cut(p, dir, set).into_pieces(p)
}

fn cut(p: &Packets, dir: Dir, set: &RangeSet) -> Cut {
    if dir == Dir::Src {
        cut_by(p, &p.src, set, |p, s| p.src = s)
    } else {
        cut_by(p, &p.dst, set, |p, s| p.dst = s)
    }
}

/// Cuts packets by one field (`field`, which `put` writes back) against `set`; copies the
/// packets only when the field really splits.
fn cut_by(p: &Packets, field: &RangeSet, set: &RangeSet, put: fn(&mut Packets, RangeSet)) -> Cut {
    if !field.intersects(set) {
        return Cut::Outside;
    }
    if field.is_subset(set) {
        return Cut::Inside;
    }
    let mut inside = p.clone();
    put(&mut inside, field.intersect(set));
    let mut outside = p.clone();
    put(&mut outside, field.subtract(set));
    Cut::Both(Box::new((inside, outside)))
}

fn cut_test(c: Cut, negate: bool) -> Test {
    match c {
        Cut::Inside => Test::Known(!negate),
        Cut::Outside => Test::Known(negate),
        Cut::Both(pair) => {
            let (inside, outside) = *pair;
            let (yes, no) = if negate { (outside, inside) } else { (inside, outside) };
            Test::Split {
                yes: vec![yes],
                no: vec![no],
                unknown: Vec::new(),
            }
        }
    }
}

/// A test result from pieces that hold, do not hold, and cannot be told.
fn combine(yes: Vec<Packets>, no: Vec<Packets>, unknown: Vec<Packets>) -> Test {
    match (yes.is_empty(), no.is_empty(), unknown.is_empty()) {
        (false, true, true) => Test::Known(true),
        (true, false, true) => Test::Known(false),
        (true, true, true) => Test::Known(false),
        (true, true, false) => Test::Unknown,
        _ => Test::Split { yes, no, unknown },
    }
}

fn split_test(yes: Option<Packets>, no: Option<Packets>, negate: bool) -> Test {
    let (yes, no) = if negate { (no, yes) } else { (yes, no) };
    finish(yes.into_iter().collect(), no.into_iter().collect())
}

fn finish(yes: Vec<Packets>, no: Vec<Packets>) -> Test {
    match (yes.is_empty(), no.is_empty()) {
        (false, true) => Test::Known(true),
        (true, _) => Test::Known(false),
        _ => Test::Split {
            yes,
            no,
            unknown: Vec::new(),
        },
    }
}

/// Shows a packet set briefly: one example packet (preferring TCP, documentation-range sources,
/// the canonical loopback addresses and a non-zero port).
pub fn example(p: &Packets) -> String {
    let pick = |s: &RangeSet, prefs: &[u128]| prefs.iter().copied().find(|v| s.contains(*v)).or_else(|| s.first());
    let addr = |s: &RangeSet, prefs: &[IpAddr]| {
        let prefs: Vec<u128> = prefs.iter().map(|a| addr_value(*a)).collect();
        pick(s, &prefs)
            .map(|v| value_addr(v, p.v6).to_string())
            .unwrap_or_else(|| "?".into())
    };
    let prefs: Vec<IpAddr> = if p.v6 {
        vec![
            IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]),
            IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1]),
        ]
    } else {
        vec![
            IpAddr::from([192, 0, 2, 1]),
            IpAddr::from([198, 51, 100, 1]),
            IpAddr::from([203, 0, 113, 1]),
            IpAddr::from([127, 0, 0, 1]),
            IpAddr::from([127, 0, 0, 2]),
        ]
    };
    let proto = match pick(&p.proto, &[6, 17]) {
        Some(6) => "tcp".to_string(),
        Some(17) => "udp".to_string(),
        Some(n) => format!("protocol {n}"),
        None => "?".into(),
    };
    let port = pick(&p.dport, &[80, 1])
        .map(|v| format!(" port {v}"))
        .unwrap_or_default();
    format!("{proto} {} -> {}{port}", addr(&p.src, &prefs), addr(&p.dst, &prefs))
}

#[cfg(test)]
mod tests {
    use super::super::iptables_save;
    use super::super::model::Origin;
    use super::*;
    use crate::firewall::verdict::Decision;

    /// `-m policy` (IPsec) is a match this reader keeps opaque.
    const OPAQUE_THEN_ALLOW_53: &str = "*filter\n:INPUT DROP [0:0]\n\
        -A INPUT -m policy --dir in --pol ipsec -j ACCEPT\n\
        -A INPUT -p udp -m udp --dport 53 -j ACCEPT\nCOMMIT\n";

    fn udp_to(port: u16) -> Answer {
        let mut rs = Ruleset::default();
        iptables_save::read(OPAQUE_THEN_ALLOW_53, false, Origin::IptablesNft, &mut rs);
        let analysis = Analysis::new(rs, Host::default());
        let mut p = Packets::arriving(false, "eth0", RangeSet::single(1), RangeSet::single(2));
        p.proto = RangeSet::single(17);
        p.dport = RangeSet::single(port.into());
        analysis.query(p, Reach::FirewallInput)
    }

    #[test]
    fn an_unreadable_match_that_cannot_change_the_verdict_does_not_make_it_unknown() {
        let allowed = udp_to(53);
        assert_eq!(allowed.decision(), Decision::Open);
        let settled = allowed.open_path().expect("a settled path");
        assert!(settled.assumed.is_empty());
        assert!(
            settled.evidence.iter().any(|e| e.contains("whichever way")),
            "{:?}",
            settled.evidence
        );
        // Port 54 gets through only if the IPsec policy matches: that stays unknown.
        assert_eq!(udp_to(54).decision(), Decision::Unknown);
    }

    /// The answer for TCP to port 80 arriving on eth0 under an iptables `filter` dump.
    fn tcp_80_under(dump: &str) -> Answer {
        let mut rs = Ruleset::default();
        iptables_save::read(dump, false, Origin::IptablesLegacy, &mut rs);
        let analysis = Analysis::new(rs, Host::default());
        let mut p = Packets::arriving(false, "eth0", RangeSet::single(1), RangeSet::single(2));
        p.proto = RangeSet::single(6);
        p.dport = RangeSet::single(80);
        analysis.query(p, Reach::FirewallInput)
    }

    fn loop_unknown(answer: &Answer) -> bool {
        answer
            .leaves
            .iter()
            .any(|l| matches!(&l.outcome, Outcome::Unknown(why) if why.contains("nested deeper than 32 chains")))
    }

    /// A goto to itself never grows the stack; before the bound it ran until the step budget,
    /// a list of millions of evidence entries whose drop overflowed the stack (SIGABRT).
    #[test]
    fn goto_and_mixed_jump_goto_loops_end_as_unknown_at_the_nesting_bound() {
        let started = std::time::Instant::now();
        for dump in [
            "*filter\n:INPUT ACCEPT [0:0]\n:L - [0:0]\n-A INPUT -j L\n-A L -g L\nCOMMIT\n",
            "*filter\n:INPUT ACCEPT [0:0]\n:L - [0:0]\n-A INPUT -g INPUT\nCOMMIT\n",
            "*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n-A INPUT -j A\n-A A -g B\n-A B -j A\nCOMMIT\n",
            "*filter\n:INPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n-A INPUT -g A\n-A A -j B\n-A B -g A\nCOMMIT\n",
        ] {
            let answer = tcp_80_under(dump);
            assert!(loop_unknown(&answer), "{dump}: {:?}", answer.leaves);
            assert_eq!(answer.decision(), Decision::Unknown, "{dump}");
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    /// Chains nested 20 deep through gotos are followed (the kernel allows 16): only a loop, or
    /// a crafted depth past 32, is cut.
    #[test]
    fn a_deep_but_finite_goto_chain_is_followed_to_its_verdict() {
        let mut dump = String::from("*filter\n:INPUT ACCEPT [0:0]\n");
        for i in 0..20 {
            dump.push_str(&format!(":C{i} - [0:0]\n"));
        }
        dump.push_str("-A INPUT -g C0\n");
        for i in 0..19 {
            dump.push_str(&format!("-A C{i} -g C{}\n", i + 1));
        }
        dump.push_str("-A C19 -p tcp -m tcp --dport 80 -j DROP\nCOMMIT\n");
        let answer = tcp_80_under(&dump);
        assert_eq!(
            answer.decision(),
            Decision::Blocked,
            "{:?}",
            answer
                .leaves
                .iter()
                .map(|l| (&l.outcome, &l.evidence))
                .collect::<Vec<_>>()
        );
    }

    /// A path through more rules than evidence is kept for lists the first ones, says so, and
    /// is dropped without recursion however long it grew.
    #[test]
    fn a_path_through_many_rules_keeps_bounded_evidence() {
        let mut trail = Trail::default();
        for i in 0..2_000_000 {
            trail.push(format!("rule {i}"));
        }
        let listed = trail.to_vec();
        assert_eq!(listed.len(), MAX_EVIDENCE);
        assert!(listed[MAX_EVIDENCE - 1].contains("not listed"));
        assert_eq!(&*listed[0], "rule 0");
        // 3,000 jumps one after the other (each returns) are no nesting at all.
        let mut dump = String::from("*filter\n:INPUT ACCEPT [0:0]\n:E - [0:0]\n");
        for _ in 0..3000 {
            dump.push_str("-A INPUT -p tcp -m tcp --dport 80 -j E\n");
        }
        dump.push_str("-A INPUT -p tcp -m tcp --dport 80 -j DROP\nCOMMIT\n");
        let answer = tcp_80_under(&dump);
        assert_eq!(answer.decision(), Decision::Blocked);
        assert!(answer.leaves.iter().all(|l| l.evidence.len() <= MAX_EVIDENCE));
    }

    /// A list far longer than any stack could unwind recursively.
    #[test]
    fn a_long_shared_trail_drops_iteratively() {
        let mut trail = Trail::default();
        for i in 0..3_000_000usize {
            let prev = std::mem::take(&mut trail);
            trail = Trail(Some(Arc::new(TrailNode {
                text: Arc::from(""),
                len: i,
                prev,
            })));
        }
        let shared = trail.clone();
        drop(trail);
        drop(shared);
    }
}
