//! What a query answers: the paths the packets took, and the decision drawn from them.

use super::eval::{example, Packets};
use super::ranges::RangeSet;
use std::net::IpAddr;
use std::sync::Arc;

/// How one path ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Dropped by a rule, a policy or the kernel (the evidence says which).
    Dropped,
    /// Accepted for this host (input hook passed).
    Delivered,
    /// Accepted through the forward hook.
    Forwarded,
    /// Not dropped in the part of the path the query looked at.
    Passed,
    /// The path meets something the evaluator cannot follow.
    Unknown(String),
}

/// A destination rewrite on a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// Destinations before the rewrite.
    pub original_dst: RangeSet,
    /// Destination ports before the rewrite.
    pub original_dport: RangeSet,
    /// The new address (`None`: unchanged).
    pub addr: Option<IpAddr>,
    /// The new port (`None`: unchanged).
    pub port: Option<u16>,
    /// The rule that rewrote, as evidence shows it.
    pub rule: Arc<str>,
}

/// Which undecidable thing an assumption is about: a condition of a rule (by position), or a
/// host fact the snapshot lacks (a sysctl the routing decision needs).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AssumptionKey {
    /// Item `item` of rule `rule` of chain `chain` of table `table`; `entry` is the verdict-map
    /// entry (0 for a plain condition).
    Item {
        /// Table index in the ruleset.
        table: usize,
        /// Chain index in the table.
        chain: usize,
        /// Rule index in the chain.
        rule: usize,
        /// Item index in the rule.
        item: usize,
        /// Verdict-map entry index.
        entry: usize,
    },
    /// A fact of the host the snapshot does not have (`route_localnet of eth0`, `forwarding`).
    Host(String),
}

/// A condition the evaluator could not decide, and which way a path assumed it went. The
/// evaluator follows every such condition both ways, so each assumption has a counterpart path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assumption {
    /// What was undecidable.
    pub key: AssumptionKey,
    /// Whether this path assumed it holds.
    pub holds: bool,
    /// How evidence names it (the rule, or the missing fact).
    pub text: Arc<str>,
}

/// One path: the packets it stands for, how it ended, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leaf {
    /// How it ended.
    pub outcome: Outcome,
    /// The packets (fields narrowed by the rules on the way).
    pub packets: Packets,
    /// The rules (and kernel decisions) that acted on it, in order.
    pub evidence: Vec<Arc<str>>,
    /// Conditions that could not be evaluated and were assumed to go this way.
    pub assumed: Vec<Assumption>,
    /// The destination rewrite, if a nat rule applied.
    pub rewrite: Option<Rewrite>,
}

impl Leaf {
    /// Whether the path certainly exists and ends without a drop.
    pub fn certainly_through(&self) -> bool {
        self.assumed.is_empty() && matches!(self.outcome, Outcome::Delivered | Outcome::Forwarded | Outcome::Passed)
    }

    /// Whether the path ends in a drop. Its assumptions do not matter for conclusions over all
    /// paths: every undecidable condition is followed both ways, so when every path of a query
    /// ends in a drop, the packets are dropped whichever way those conditions go.
    pub fn certainly_dropped(&self) -> bool {
        self.outcome == Outcome::Dropped
    }

    /// The last piece of evidence: the rule or kernel decision that ended the path.
    pub fn decided_by(&self) -> Option<&str> {
        self.evidence.last().map(|e| &**e)
    }

    /// One example packet of the path, for evidence.
    pub fn example(&self) -> String {
        example(&self.packets)
    }
}

/// Whether a set of packets gets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Every packet is dropped.
    Blocked,
    /// Some packets certainly get through.
    Open,
    /// Neither could be established.
    Unknown,
}

/// All paths of one query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    /// The paths.
    pub leaves: Vec<Leaf>,
    /// The query was cut short (too many paths): no conclusion may rest on "every path".
    pub truncated: bool,
}

/// A borrowed selection of paths (for example those one nat rule rewrote), with the same
/// conclusions as [`Answer`].
#[derive(Debug, Clone, Copy)]
pub struct Paths<'a> {
    /// The paths.
    pub leaves: &'a [&'a Leaf],
    /// Whether the query they come from was cut short.
    pub truncated: bool,
}

impl Paths<'_> {
    /// Open when some path certainly gets through; blocked when every path certainly ends in a
    /// drop; otherwise unknown.
    pub fn decision(&self) -> Decision {
        if self.leaves.iter().any(|l| l.certainly_through()) {
            Decision::Open
        } else if !self.truncated && !self.leaves.is_empty() && self.leaves.iter().all(|l| l.certainly_dropped()) {
            Decision::Blocked
        } else {
            Decision::Unknown
        }
    }

    /// The rules (or kernel decisions) that dropped some path, deduplicated, in order.
    pub fn drops(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for l in self.leaves.iter().filter(|l| l.outcome == Outcome::Dropped) {
            if let Some(d) = l.decided_by() {
                if !out.iter().any(|o| o == d) {
                    out.push(d.to_string());
                }
            }
        }
        out
    }

    /// Why the answer is unknown: the unknown outcomes and assumptions, deduplicated.
    pub fn unknowns(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if self.truncated {
            out.push("too many distinct paths: the evaluation was cut short".into());
        }
        for l in self.leaves {
            let reasons = l.assumed.iter().map(|a| format!("not evaluable: {}", a.text));
            let ended = match &l.outcome {
                Outcome::Unknown(why) => Some(why.clone()),
                _ => None,
            };
            for r in reasons.chain(ended) {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        out
    }

    /// The first path that certainly gets through.
    pub fn open_path(&self) -> Option<&Leaf> {
        self.leaves.iter().copied().find(|l| l.certainly_through())
    }
}

impl Answer {
    fn with<T>(&self, f: impl FnOnce(Paths) -> T) -> T {
        let refs: Vec<&Leaf> = self.leaves.iter().collect();
        f(Paths {
            leaves: &refs,
            truncated: self.truncated,
        })
    }

    /// See [`Paths::decision`].
    pub fn decision(&self) -> Decision {
        self.with(|p| p.decision())
    }

    /// See [`Paths::drops`].
    pub fn drops(&self) -> Vec<String> {
        self.with(|p| p.drops())
    }

    /// See [`Paths::unknowns`].
    pub fn unknowns(&self) -> Vec<String> {
        self.with(|p| p.unknowns())
    }

    /// The first path that certainly gets through.
    pub fn open_path(&self) -> Option<&Leaf> {
        self.leaves.iter().find(|l| l.certainly_through())
    }
}
