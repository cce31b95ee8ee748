//! Verifying a plan with the firewall evaluator: the snapshot with the planned table added must
//! answer "blocked" for every path the plan claims to close. The planned state is also built
//! here (the table added, the sysctls changed, a previous copy of loopwarden's table removed),
//! for the audit that decides each finding's fate.

use super::sysctls::SysctlChange;
use super::table::{PortRule, Table};
use loopwarden_core::facts::{HostFacts, Protocol};
use loopwarden_core::firewall::eval::{Packets, Reach};
use loopwarden_core::firewall::questions::{loopback, summarize, Firewall};
use loopwarden_core::firewall::ranges::{all_addrs, prefix_range, RangeSet};
use loopwarden_core::firewall::verdict::{Decision, Leaf};
use loopwarden_core::spoof_drops::{TABLE_FAMILY, TABLE_NAME};
use serde::Serialize;
use serde_json::Value;
use std::net::IpAddr;

/// What the evaluator answered for one claimed path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Every such packet is dropped: the claim holds.
    Blocked,
    /// Some get through: the plan does not close what it claims.
    Open,
    /// Could not be decided: the claim is not shown.
    Unknown,
}

impl From<Decision> for Verdict {
    fn from(d: Decision) -> Verdict {
        match d {
            Decision::Blocked => Verdict::Blocked,
            Decision::Open => Verdict::Open,
            Decision::Unknown => Verdict::Unknown,
        }
    }
}

/// One path the plan claims to close, with the evaluator's answer and its evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PathProof {
    /// The packets, in words.
    pub path: String,
    /// The answer.
    pub verdict: Verdict,
    /// The rules that decide, or an example that gets through.
    pub evidence: Vec<String>,
}

impl PathProof {
    /// Why this claim stops the plan, in one line (for a proof that is not `Blocked`).
    pub fn failure(&self) -> String {
        match self.verdict {
            Verdict::Blocked => format!("confirmed: {}", self.path),
            Verdict::Open => format!(
                "still open with the table: {} ({}); something on this host's packet path gets around the \
                 planned rule — if you cannot see what, report it with the snapshot of `loopwarden facts --out FILE`",
                self.path,
                self.evidence.first().map_or("no example", String::as_str)
            ),
            Verdict::Unknown => format!("cannot be confirmed: {} ({})", self.path, self.evidence.join("; ")),
        }
    }
}

/// `facts` without loopwarden's own table: what a plan starts from, since applying replaces it.
pub fn without_own_table(facts: &HostFacts) -> HostFacts {
    let mut out = facts.clone();
    if let Some(objects) = out
        .firewall
        .nft_json
        .as_mut()
        .and_then(|j| j.get_mut("nftables"))
        .and_then(Value::as_array_mut)
    {
        objects.retain(|o| !is_own(o));
    }
    if let Some(text) = out.firewall.nft_text.as_mut() {
        *text = without_own_text(text);
    }
    out
}

/// Whether an object of a listing belongs to loopwarden's table.
fn is_own(object: &Value) -> bool {
    object.as_object().and_then(|o| o.values().next()).is_some_and(|body| {
        body.get("family").and_then(Value::as_str) == Some(TABLE_FAMILY)
            && body.get("table").or_else(|| body.get("name")).and_then(Value::as_str) == Some(TABLE_NAME)
            && (object.get("table").is_some() || body.get("table").is_some())
    })
}

/// `nft list ruleset` text without the `table inet loopwarden { … }` block.
fn without_own_text(text: &str) -> String {
    let header = format!("table {TABLE_FAMILY} {TABLE_NAME} {{");
    let mut out = String::new();
    let mut depth = 0usize;
    let mut skipping = false;
    for line in text.lines() {
        if depth == 0 {
            skipping = line.trim() == header;
        }
        depth += line.matches('{').count();
        depth = depth.saturating_sub(line.matches('}').count());
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// `base` with the planned table's objects added to its nft JSON and its text to its nft text.
pub fn with_table(base: &HostFacts, objects: &[Value], text: &str) -> HostFacts {
    let mut out = base.clone();
    let json = out
        .firewall
        .nft_json
        .get_or_insert_with(|| serde_json::json!({"nftables": [{"metainfo": {"json_schema_version": 1}}]}));
    if let Some(list) = json.get_mut("nftables").and_then(Value::as_array_mut) {
        list.extend(objects.iter().cloned());
    }
    let nft_text = out.firewall.nft_text.get_or_insert_with(String::new);
    nft_text.push_str(text);
    out
}

/// `facts` with the planned sysctl values.
pub fn with_sysctls(facts: &HostFacts, changes: &[SysctlChange]) -> HostFacts {
    let mut out = facts.clone();
    for c in changes {
        out.sysctls.0.insert(c.key.to_string(), c.to.clone());
    }
    out
}

/// Asks the evaluator, on `planned` (a snapshot with the planned table), every question the
/// plan claims to answer "blocked": loopback sources and destinations of both families arriving
/// on each class of outside interface, dropped before NAT; and, per `--allow` port, connections
/// of every other uid refused.
pub fn prove(planned: &HostFacts, table: &Table) -> Vec<PathProof> {
    let fw = Firewall::new(planned);
    let mut out = Vec::new();
    for rep in &fw.outside {
        let class = fw.class_of(rep);
        for v6 in [false, true] {
            let (range, looped) = guarded(table, v6);
            let outside = all_addrs(v6).subtract(&looped);
            let family = if v6 { "IPv6" } else { "IPv4" };
            for source in [true, false] {
                let start = if source {
                    Packets::arriving(v6, rep, looped.clone(), outside.clone())
                } else {
                    Packets::arriving(v6, rep, outside.clone(), looped.clone())
                };
                let answer = fw.analysis.query(start, Reach::BeforeNat);
                let leaves: Vec<&Leaf> = answer.leaves.iter().collect();
                let (decision, mut evidence) = summarize(&leaves, answer.truncated);
                if decision == Decision::Blocked {
                    evidence = trails(&leaves);
                }
                out.push(PathProof {
                    path: format!(
                        "{family} {} {range} arriving on {class}, before conntrack and NAT",
                        if source { "from" } else { "to" }
                    ),
                    verdict: decision.into(),
                    evidence,
                });
            }
        }
    }
    for rule in &table.allows {
        for v6 in [false, true] {
            out.push(uid_proof(&fw, rule, v6));
        }
    }
    out
}

/// The rules each dropped path went through (`rule → rule`), once each: which drop rule
/// caught the packets, not only the chain that ended them.
fn trails(leaves: &[&Leaf]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for leaf in leaves {
        let trail = leaf
            .evidence
            .iter()
            .map(|e| e.split(" comment \"").next().unwrap_or(e))
            .collect::<Vec<&str>>()
            .join(" → ");
        if !out.contains(&trail) {
            out.push(trail);
        }
    }
    out
}

/// The loopback range the table drops for a family, in words and as addresses.
fn guarded(table: &Table, v6: bool) -> (String, RangeSet) {
    let mut set = loopback(v6);
    let mut words: Vec<String> = Vec::new();
    for g in table.guards.iter().filter(|g| g.guard.v6() == v6 && g.guard.source()) {
        set = set.union(&RangeSet::from_ranges(vec![prefix_range(g.addr, g.len)]));
        words.push(g.prefix());
    }
    (words.join(" and "), set)
}

fn uid_proof(fw: &Firewall, rule: &PortRule, v6: bool) -> PathProof {
    let addr: IpAddr = if v6 {
        IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1])
    } else {
        IpAddr::from([127, 0, 0, 1])
    };
    let proto = match rule.proto {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
    };
    let access = fw.uids_allowed(addr, proto, rule.port);
    let intended = RangeSet::from_ranges(rule.uids.iter().map(|a| (a.uid.into(), a.uid.into())).collect());
    let certainly = access.allowed.subtract(&intended);
    let maybe = access.maybe.subtract(&intended);
    let uids: Vec<String> = rule.uids.iter().map(|a| a.uid.to_string()).collect();
    let (verdict, mut evidence) = if !certainly.is_empty() {
        (
            Verdict::Open,
            vec![format!("still allowed: uids {}", ranges(&certainly))],
        )
    } else if !maybe.is_empty() {
        (
            Verdict::Unknown,
            vec![format!("may still connect: uids {}", ranges(&maybe))],
        )
    } else {
        (Verdict::Blocked, Vec::new())
    };
    evidence.extend(access.restricting.iter().map(|r| format!("refused by {r}")));
    evidence.extend(access.unknowns);
    PathProof {
        path: format!(
            "{} {} port {} over loopback from uids other than {}",
            if v6 { "IPv6" } else { "IPv4" },
            rule.proto.as_str(),
            rule.port,
            uids.join(", ")
        ),
        verdict,
        evidence,
    }
}

fn ranges(set: &RangeSet) -> String {
    set.ranges()
        .iter()
        .map(|&(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::table::{AllowedBy, AllowedUid};
    use crate::plan::testing::{facts_with, fixture};
    use crate::render::{nft_json, nft_text};

    fn planned(base: &HostFacts, table: &Table) -> HostFacts {
        with_table(base, &nft_json::objects(table, None), &nft_text::render(table, None))
    }

    #[test]
    fn the_table_closes_every_claimed_path_on_every_captured_ruleset() {
        for name in [
            "no-firewall",
            "docker-27-loopback-publish",
            "docker-28-loopback-publish",
            "kube-proxy-firewall",
            "ufw-stock",
            "firewalld-style",
            "ecs-agent-dnat-to-loopback",
            "netdev-ingress-antispoof",
            "legacy-iptables-antispoof",
        ] {
            let table = Table::new(false, vec![]);
            let proofs = prove(&planned(&fixture(name), &table), &table);
            assert!(
                !proofs.is_empty() && proofs.len() % 4 == 0,
                "{name}: four paths per class of interfaces"
            );
            for p in &proofs {
                assert_eq!(p.verdict, Verdict::Blocked, "{name}: {p:#?}");
                assert!(
                    p.evidence.iter().any(|e| e.contains("inet loopwarden prerouting")),
                    "{name}: {p:#?}"
                );
            }
        }
    }

    #[test]
    fn without_the_table_the_claims_fail_loudly() {
        let table = Table::new(false, vec![]);
        let proofs = prove(&fixture("docker-27-loopback-publish"), &table);
        assert!(proofs.iter().all(|p| p.verdict == Verdict::Open), "{proofs:#?}");
    }

    #[test]
    fn an_allow_rule_refuses_every_other_uid() {
        let base = facts_with(&[(Protocol::Tcp, "127.0.0.1", 8000, 1000)]);
        let rule = PortRule {
            proto: Protocol::Tcp,
            port: 8000,
            uids: vec![
                AllowedUid {
                    uid: 0,
                    by: AllowedBy::Root,
                },
                AllowedUid {
                    uid: 1000,
                    by: AllowedBy::Owner,
                },
            ],
            limit: None,
        };
        let table = Table::new(false, vec![rule]);
        let proofs = prove(&planned(&base, &table), &table);
        let uid_proofs: Vec<&PathProof> = proofs.iter().filter(|p| p.path.contains("uids other than")).collect();
        assert_eq!(uid_proofs.len(), 2);
        assert!(
            uid_proofs.iter().all(|p| p.verdict == Verdict::Blocked),
            "{uid_proofs:#?}"
        );
        let unplanned = prove(&base, &table);
        assert!(unplanned
            .iter()
            .filter(|p| p.path.contains("uids other than"))
            .all(|p| p.verdict == Verdict::Open));
    }

    #[test]
    fn a_previous_copy_of_the_table_is_taken_out_of_both_captures() {
        let table = Table::new(false, vec![]);
        let applied = planned(&fixture("ufw-stock"), &table);
        let base = without_own_table(&applied);
        assert_eq!(base.firewall.nft_json, fixture("ufw-stock").firewall.nft_json);
        assert_eq!(base.firewall.nft_text, fixture("ufw-stock").firewall.nft_text);
    }
}
