//! Where in the victim each probe got to: a table of the lab's own that records, at the first
//! and last priority of the prerouting, input and forward hooks, the protocol and source port of
//! every TCP/UDP packet that passes (each probe has its own source port). It only records —
//! every chain accepts and no rule has a verdict — so the mirrored rules decide exactly as they
//! would without it, and a drop is attributed to the stage that really made it: a prerouting
//! rule, the kernel's routing decision (martian or reverse-path checks), an input or forward
//! rule or policy, or the socket layer. Unlike the kernel-wide `rt_cache` martian counters, these
//! records are the victim namespace's own and name each probe.

use crate::netns::{Namespace, NetnsError};
use crate::topology::run_with_input;
use std::collections::HashMap;

/// The lab's observation table (`inet`), loaded after the host's rules.
pub const TABLE: &str = "lw_observe";

/// The places recorded, in packet order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// Before every prerouting chain (priority −1000).
    PreFirst,
    /// After every prerouting chain (priority 1000), before the routing decision.
    PreLast,
    /// Before every input chain: routing sent it to this host.
    InFirst,
    /// After every input chain: it passed the firewall; only the socket layer is left.
    InLast,
    /// Before every forward chain: routing sent it on (NAT to another address).
    FwdFirst,
    /// After every forward chain: forwarded.
    FwdLast,
}

impl Stage {
    const ALL: [Stage; 6] = [
        Stage::PreFirst,
        Stage::PreLast,
        Stage::InFirst,
        Stage::InLast,
        Stage::FwdFirst,
        Stage::FwdLast,
    ];

    /// The set and chain name, the hook and the priority.
    fn place(self) -> (&'static str, &'static str, i32) {
        match self {
            Stage::PreFirst => ("pre_first", "prerouting", -1000),
            Stage::PreLast => ("pre_last", "prerouting", 1000),
            Stage::InFirst => ("in_first", "input", -1000),
            Stage::InLast => ("in_last", "input", 1000),
            Stage::FwdFirst => ("fwd_first", "forward", -1000),
            Stage::FwdLast => ("fwd_last", "forward", 1000),
        }
    }
}

/// The table's text for `nft -f -`.
fn ruleset() -> String {
    let mut text = format!("table inet {TABLE} {{\n");
    for stage in Stage::ALL {
        let (name, hook, priority) = stage.place();
        text.push_str(&format!(
            " set {name} {{ type inet_proto . inet_service; flags dynamic; size 65535; }}\n \
             chain {name} {{\n  type filter hook {hook} priority {priority}; policy accept;\n  \
             meta l4proto {{ tcp, udp }} add @{name} {{ meta l4proto . th sport }}\n }}\n"
        ));
    }
    text.push_str("}\n");
    text
}

/// Loads the observation table into the victim.
pub fn install(victim: &Namespace) -> Result<(), NetnsError> {
    run_with_input(victim, &["nft", "-f", "-"], &ruleset()).map(|_| ())
}

/// What was recorded: (protocol number, source port) → the stages it passed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seen(HashMap<(u8, u16), Vec<Stage>>);

impl Seen {
    /// Reads every stage's set from the victim. A stage that cannot be read is left empty (no
    /// attribution is then made from it).
    pub fn read(victim: &Namespace) -> Result<Seen, NetnsError> {
        let text = victim.exec(&["nft", "-j", "list", "table", "inet", TABLE])?;
        let mut seen = Seen::default();
        for (set, key) in elements(&text) {
            if let Some(stage) = Stage::ALL.into_iter().find(|s| s.place().0 == set) {
                seen.0.entry(key).or_default().push(stage);
            }
        }
        Ok(seen)
    }

    /// Whether a packet of `protocol` from source port `sport` passed every input hook: only the
    /// socket layer was left.
    pub fn passed_input(&self, protocol: u8, sport: u16) -> bool {
        self.0
            .get(&(protocol, sport))
            .is_some_and(|s| s.contains(&Stage::InLast))
    }

    /// Where a packet of `protocol` from source port `sport` was lost, in words, when it was.
    pub fn explain(&self, protocol: u8, sport: u16) -> Option<String> {
        let stages = self.0.get(&(protocol, sport)).map(Vec::as_slice).unwrap_or(&[]);
        let at = |s: Stage| stages.contains(&s);
        let why = if !at(Stage::PreFirst) {
            "never reached the first prerouting hook: the kernel dropped it before any firewall rule"
        } else if !at(Stage::PreLast) {
            "dropped in prerouting by a firewall rule"
        } else if !at(Stage::InFirst) && !at(Stage::FwdFirst) {
            "passed prerouting, then dropped by the kernel's routing decision (martian or reverse-path checks, or forwarding off)"
        } else if at(Stage::InFirst) && !at(Stage::InLast) && !at(Stage::FwdFirst) {
            "routed to this host, then dropped in input by a firewall rule or the chain's policy"
        } else if at(Stage::FwdFirst) && !at(Stage::FwdLast) && !at(Stage::InFirst) {
            "routed onwards, then dropped in forward by a firewall rule or the chain's policy"
        } else if at(Stage::InLast) {
            "passed every input hook: no socket took it"
        } else if at(Stage::FwdLast) {
            "forwarded by this host"
        } else {
            return None;
        };
        Some(why.to_string())
    }
}

/// The `(set name, (protocol, port))` elements of every set in `nft -j list table` output.
fn elements(json: &str) -> Vec<(String, (u8, u16))> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return Vec::new();
    };
    value["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| {
            let set = o.get("set")?;
            let name = set.get("name")?.as_str()?.to_string();
            Some(set.get("elem")?.as_array()?.iter().map(move |e| (name.clone(), e)))
        })
        .flatten()
        .filter_map(|(name, e)| {
            let concat = e.get("concat").or_else(|| e.get("elem")?.get("val")?.get("concat"))?;
            let parts = concat.as_array()?;
            let proto = match parts.first()? {
                serde_json::Value::String(name) => match name.as_str() {
                    "tcp" => 6,
                    "udp" => 17,
                    _ => return None,
                },
                n => u8::try_from(n.as_u64()?).ok()?,
            };
            let port = u16::try_from(parts.get(1)?.as_u64()?).ok()?;
            Some((name, (proto, port)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_only_records() {
        let text = ruleset();
        assert!(!text.contains("drop") && !text.contains("reject") && !text.contains("jump"));
        assert_eq!(text.matches("policy accept").count(), 6);
    }

    #[test]
    fn elements_are_read_per_set() {
        // `nft -j list table` 1.0.6 output, trimmed.
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}}, {"table": {"family": "inet", "name": "lw_observe"}},
            {"set": {"family": "inet", "name": "pre_first", "table": "lw_observe", "type": ["inet_proto", "inet_service"], "elem": [{"concat": ["udp", 30007]}, {"concat": ["tcp", 30001]}]}},
            {"set": {"family": "inet", "name": "in_last", "table": "lw_observe", "type": ["inet_proto", "inet_service"]}}]}"#;
        assert_eq!(
            elements(json),
            vec![
                ("pre_first".to_string(), (17, 30007)),
                ("pre_first".to_string(), (6, 30001))
            ]
        );
    }

    #[test]
    fn stages_explain_where_a_probe_was_lost() {
        let mut seen = Seen::default();
        seen.0.insert((17, 30001), vec![Stage::PreFirst, Stage::PreLast]);
        seen.0
            .insert((17, 30002), vec![Stage::PreFirst, Stage::PreLast, Stage::InFirst]);
        seen.0.insert((6, 30003), vec![Stage::PreFirst]);
        assert!(seen.explain(17, 30001).unwrap().contains("routing decision"));
        assert!(seen.explain(17, 30002).unwrap().contains("dropped in input"));
        assert!(seen.explain(6, 30003).unwrap().contains("in prerouting"));
        assert!(seen.explain(17, 9).unwrap().contains("before any firewall rule"));
    }
}
