//! The planned table as nft JSON: the objects as `nft -j list table inet loopwarden` lists them
//! (what the firewall evaluator reads, and what a re-read is compared with), and the batch that
//! `nft -j -f -` applies in one transaction (declare, delete, re-create: idempotent).

use crate::plan::table::{
    GuardRule, PortRule, Table, DROP_CHAIN, OUTPUT_CHAIN, OUTPUT_NAT_CHAIN, OUTPUT_NAT_PRIORITY, OUTPUT_PRIORITY,
    PREROUTING_CHAIN, RAW_PRIORITY, SET_SIZE,
};
use loopwarden_core::facts::Protocol;
use loopwarden_core::spoof_drops::{PER_INTERFACE_SET, SINCE_PREFIX, TABLE_FAMILY, TABLE_NAME};
use serde_json::{json, Value};

/// The comment of the rule that counts drops per interface: with the table's creation time
/// when known (runtime apply), without it in a persisted copy (a reload recreates the table and
/// restarts its counters). On the rule, since nft 1.0.6 drops set and table comments given in
/// JSON.
pub fn count_comment(since: Option<&str>) -> String {
    match since {
        Some(at) => format!("{SINCE_PREFIX}{at}"),
        None => count_comment_base().to_string(),
    }
}

/// [`count_comment`] without a time.
fn count_comment_base() -> &'static str {
    SINCE_PREFIX.trim_end_matches(" since ")
}

/// Whether a listing of `table inet loopwarden` carries harden's mark: the comment of the rule
/// that counts drops per interface, which every table harden makes has (runtime or persisted).
pub fn carries_mark(objects: &[Value]) -> bool {
    objects
        .iter()
        .filter_map(|o| o.get("rule"))
        .filter_map(|r| r.get("comment").and_then(Value::as_str))
        .any(|c| c.starts_with(count_comment_base()))
}

/// The table's objects in listing order and form (no handles, no counter values).
pub fn objects(table: &Table, since: Option<&str>) -> Vec<Value> {
    let mut out = vec![json!({"table": {"family": TABLE_FAMILY, "name": TABLE_NAME}})];
    for g in &table.guards {
        out.push(counter(g.guard.counter(), &g.comment()));
    }
    for rule in &table.allows {
        out.push(counter(
            &rule.refused_counter(),
            &format!(
                "connections to {} port {} refused by --allow",
                rule.proto.as_str(),
                rule.port
            ),
        ));
        if !rule.limited_uids().is_empty() {
            out.push(counter(
                &rule.limited_counter(),
                &format!(
                    "connections to {} port {} refused over the per-user limit",
                    rule.proto.as_str(),
                    rule.port
                ),
            ));
        }
    }
    out.push(json!({"set": {
        "family": TABLE_FAMILY, "name": PER_INTERFACE_SET, "table": TABLE_NAME,
        "type": ["ifname", "nf_proto"], "size": SET_SIZE,
        "stmt": [{"counter": null}]
    }}));
    out.push(chain(DROP_CHAIN, None));
    out.push(chain(PREROUTING_CHAIN, Some(("prerouting", RAW_PRIORITY))));
    if !table.allows.is_empty() {
        out.push(chain(OUTPUT_CHAIN, Some(("output", OUTPUT_PRIORITY))));
        out.push(chain(OUTPUT_NAT_CHAIN, Some(("output", OUTPUT_NAT_PRIORITY))));
    }
    out.push(rule(
        DROP_CHAIN,
        vec![json!({"set": {
            "op": "add",
            "elem": {"concat": [{"meta": {"key": "iifname"}}, {"meta": {"key": "nfproto"}}]},
            "set": format!("@{PER_INTERFACE_SET}")
        }})],
        Some(count_comment(since)),
    ));
    out.push(rule(DROP_CHAIN, vec![json!({"drop": null})], None));
    for g in &table.guards {
        out.push(guard_rule(g));
    }
    for after_nat in [false, true] {
        for r in &table.allows {
            out.extend(port_rules(r, after_nat));
        }
    }
    out
}

/// The batch that replaces the table in one transaction: `add table` (so that the delete finds
/// one), `delete table`, then every object.
pub fn batch(objects: &[Value]) -> Value {
    let id = json!({"family": TABLE_FAMILY, "name": TABLE_NAME});
    let mut cmds = vec![json!({"add": {"table": id}}), json!({"delete": {"table": id}})];
    cmds.extend(objects.iter().map(|o| json!({ "add": o })));
    json!({ "nftables": cmds })
}

/// The batch that removes the table, whether or not it exists.
pub fn removal() -> Value {
    let id = json!({"family": TABLE_FAMILY, "name": TABLE_NAME});
    json!({"nftables": [{"add": {"table": id}}, {"delete": {"table": id}}]})
}

fn counter(name: &str, comment: &str) -> Value {
    json!({"counter": {"family": TABLE_FAMILY, "name": name, "table": TABLE_NAME, "comment": comment}})
}

fn chain(name: &str, hook: Option<(&str, i32)>) -> Value {
    let mut c = json!({"family": TABLE_FAMILY, "table": TABLE_NAME, "name": name});
    if let Some((hook, prio)) = hook {
        c["type"] = json!("filter");
        c["hook"] = json!(hook);
        c["prio"] = json!(prio);
        c["policy"] = json!("accept");
    }
    json!({ "chain": c })
}

fn rule(chain: &str, expr: Vec<Value>, comment: Option<String>) -> Value {
    let mut r = json!({"family": TABLE_FAMILY, "table": TABLE_NAME, "chain": chain, "expr": expr});
    if let Some(c) = comment {
        r["comment"] = json!(c);
    }
    json!({ "rule": r })
}

fn matches(left: Value, op: &str, right: Value) -> Value {
    json!({"match": {"op": op, "left": left, "right": right}})
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn guard_rule(g: &GuardRule) -> Value {
    let protocol = if g.guard.v6() { "ip6" } else { "ip" };
    let field = if g.guard.source() { "saddr" } else { "daddr" };
    let right = if g.len == 128 {
        json!(g.addr.to_string())
    } else {
        json!({"prefix": {"addr": g.addr.to_string(), "len": g.len}})
    };
    rule(
        PREROUTING_CHAIN,
        vec![
            matches(meta("iifname"), "!=", json!("lo")),
            matches(json!({"payload": {"protocol": protocol, "field": field}}), "==", right),
            json!({"counter": g.guard.counter()}),
            json!({"goto": {"target": DROP_CHAIN}}),
        ],
        Some(g.comment()),
    )
}

/// A set of uids as nft lists it: a single value stays a scalar.
fn uid_set(uids: &[u32]) -> Value {
    match uids {
        [one] => json!(one),
        many => json!({ "set": many }),
    }
}

fn reject(proto: Protocol) -> Value {
    match proto {
        Protocol::Tcp => json!({"reject": {"type": "tcp reset"}}),
        Protocol::Udp => json!({"reject": {"type": "icmpx", "expr": "port-unreachable"}}),
    }
}

/// One allow's rules: in [`OUTPUT_CHAIN`] on the port asked for, or (`after_nat`) in
/// [`OUTPUT_NAT_CHAIN`] on the port a destination NAT chose (`ct status dnat`: a connection NAT
/// did not touch was judged before NAT already).
fn port_rules(r: &PortRule, after_nat: bool) -> Vec<Value> {
    let chain_name = if after_nat { OUTPUT_NAT_CHAIN } else { OUTPUT_CHAIN };
    let on_port = || {
        let mut m = vec![matches(meta("oifname"), "==", json!("lo"))];
        if after_nat {
            m.push(matches(json!({"ct": {"key": "status"}}), "in", json!("dnat")));
        }
        m.push(matches(
            json!({"payload": {"protocol": r.proto.as_str(), "field": "dport"}}),
            "==",
            json!(r.port),
        ));
        m
    };
    let allowed: Vec<u32> = r.uids.iter().map(|a| a.uid).collect();
    let mut refuse = on_port();
    refuse.push(matches(meta("skuid"), "!=", uid_set(&allowed)));
    refuse.push(json!({"counter": r.refused_counter()}));
    refuse.push(reject(r.proto));
    let mut out = vec![rule(
        chain_name,
        refuse,
        Some(format!(
            "only the allowed uids connect to {} port {}",
            r.proto.as_str(),
            r.port
        )),
    )];
    if let Some(limit) = r.limit {
        for uid in r.limited_uids() {
            let mut over = on_port();
            over.push(matches(json!({"ct": {"key": "state"}}), "in", json!("new")));
            over.push(matches(meta("skuid"), "==", json!(uid)));
            over.push(json!({"ct count": {"val": limit, "inv": true}}));
            over.push(json!({"counter": r.limited_counter()}));
            over.push(reject(r.proto));
            out.push(rule(
                chain_name,
                over,
                Some(format!("at most {limit} connections of uid {uid} at once")),
            ));
        }
    }
    out
}

/// What of a listing is compared with the plan: every object without its handle, counter
/// values, set elements and the creation time in the counting rule's comment, non-rule objects
/// as a sorted list, rules in order per chain. Objects of other tables (and `metainfo`) are left
/// out.
pub fn normalized(objects: &[Value]) -> Vec<String> {
    let mut others: Vec<String> = Vec::new();
    let mut rules: Vec<(String, String)> = Vec::new();
    for object in objects {
        let Some((kind, body)) = object.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let mut body = body.clone();
        let ours = body.get("family").and_then(Value::as_str) == Some(TABLE_FAMILY)
            && body.get("table").or_else(|| body.get("name")).and_then(Value::as_str) == Some(TABLE_NAME);
        let Some(fields) = body.as_object_mut().filter(|_| ours) else {
            continue;
        };
        fields.remove("handle");
        match kind.as_str() {
            "counter" => {
                fields.remove("packets");
                fields.remove("bytes");
            }
            "set" => {
                fields.remove("elem");
            }
            "rule" => {
                let timed = fields
                    .get("comment")
                    .and_then(Value::as_str)
                    .is_some_and(|c| c.starts_with(count_comment_base()));
                if timed {
                    fields.insert("comment".into(), json!(count_comment_base()));
                }
            }
            _ => {}
        }
        let text = json!({ kind.as_str(): body }).to_string();
        if kind == "rule" {
            let chain = object["rule"]["chain"].as_str().unwrap_or_default().to_string();
            rules.push((chain, text));
        } else {
            others.push(text);
        }
    }
    others.sort();
    // A stable sort by chain keeps each chain's rules in their order.
    rules.sort_by(|a, b| a.0.cmp(&b.0));
    others.extend(rules.into_iter().map(|(_, r)| r));
    others
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::table::{AllowedBy, AllowedUid};

    fn allow() -> PortRule {
        PortRule {
            proto: Protocol::Tcp,
            port: 8000,
            uids: vec![
                AllowedUid {
                    uid: 0,
                    by: AllowedBy::Root,
                },
                AllowedUid {
                    uid: 1001,
                    by: AllowedBy::Allow("bob".into()),
                },
            ],
            limit: Some(3),
        }
    }

    #[test]
    fn the_batch_declares_deletes_and_recreates() {
        let objects = objects(&Table::new(false, vec![]), None);
        let batch = batch(&objects);
        let cmds = batch["nftables"].as_array().expect("array");
        assert_eq!(
            cmds[0],
            json!({"add": {"table": {"family": "inet", "name": "loopwarden"}}})
        );
        assert_eq!(
            cmds[1],
            json!({"delete": {"table": {"family": "inet", "name": "loopwarden"}}})
        );
        assert_eq!(cmds.len(), 2 + objects.len());
        assert!(!objects
            .iter()
            .any(|o| o.get("chain").is_some_and(|c| c["name"] == OUTPUT_CHAIN)));
    }

    #[test]
    fn normalization_ignores_handles_counts_elements_order_and_other_tables() {
        let planned = objects(&Table::new(false, vec![allow()]), Some("2025-01-31T12:00:00Z"));
        let mut listed: Vec<Value> = vec![json!({"metainfo": {"version": "1.0.6"}})];
        for (i, o) in planned.iter().rev().enumerate() {
            let mut o = o.clone();
            let (kind, body) = o.as_object_mut().and_then(|m| m.iter_mut().next()).expect("object");
            body["handle"] = json!(i);
            if kind == "counter" {
                body["packets"] = json!(5);
            }
            listed.push(o);
        }
        listed.push(json!({"table": {"family": "ip", "name": "nat", "handle": 1}}));
        // Reversing swaps the order of rules within a chain: that is a difference.
        assert_ne!(normalized(&listed), normalized(&planned));
        let mut rules_in_order: Vec<Value> = listed.iter().filter(|o| o.get("rule").is_none()).cloned().collect();
        rules_in_order.extend(planned.iter().filter(|o| o.get("rule").is_some()).cloned());
        assert_eq!(normalized(&rules_in_order), normalized(&planned));
    }

    #[test]
    fn a_limit_adds_a_ct_count_rule_per_named_user_only() {
        let objects = objects(&Table::new(false, vec![allow()]), None);
        let output: Vec<&Value> = objects
            .iter()
            .filter(|o| o.get("rule").is_some_and(|r| r["chain"] == OUTPUT_CHAIN))
            .collect();
        assert_eq!(output.len(), 2);
        assert_eq!(
            output[0]["rule"]["expr"][2]["match"]["right"],
            json!({"set": [0, 1001]})
        );
        assert_eq!(
            output[1]["rule"]["expr"][4],
            json!({"ct count": {"val": 3, "inv": true}})
        );
    }
}
