//! The port restrictions (`loopwarden harden --allow`) in loopwarden's own table (`table inet
//! loopwarden`, chain `output`), read from a snapshot's nft JSON: which loopback ports only some
//! uids may connect to, and which uids.
//!
//! `harden --allow` keeps the restrictions in force (a later `--allow` adds; the same port given
//! again replaces that port's list; `--replace-allows` drops them). Whoever prints a `harden
//! --allow` command for one port (the guard's start-up warning) repeats these, one per protocol
//! as the rules say, so that the command shows everything it leaves in place and narrows nothing.
//! Pure: facts in, restrictions out.

use crate::facts::{FirewallFacts, Protocol};
use crate::spoof_drops::{TABLE_FAMILY, TABLE_NAME};
use serde_json::Value;

/// The chain of loopwarden's table that holds the restrictions.
pub const OUTPUT_CHAIN: &str = "output";

/// One restricted port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAllow {
    /// TCP or UDP.
    pub proto: Protocol,
    /// The port.
    pub port: u16,
    /// The uids that may connect (root and the owners included, as harden wrote them).
    pub uids: Vec<u32>,
    /// The per-user connection limit on the port (`--limit-connections`), when there is one.
    pub limit: Option<u32>,
}

/// The restrictions of loopwarden's table; `None` when the snapshot has no nft ruleset (the
/// firewall was not readable), an empty list when the table restricts no port.
pub fn read(firewall: &FirewallFacts) -> Option<Vec<PortAllow>> {
    let objects = firewall.nft_json.as_ref()?.get("nftables")?.as_array()?;
    let mut out: Vec<PortAllow> = Vec::new();
    for rule in objects.iter().filter_map(|o| o.get("rule")) {
        let ours = rule.get("family").and_then(Value::as_str) == Some(TABLE_FAMILY)
            && rule.get("table").and_then(Value::as_str) == Some(TABLE_NAME)
            && rule.get("chain").and_then(Value::as_str) == Some(OUTPUT_CHAIN);
        let Some(expr) = rule.get("expr").and_then(Value::as_array).filter(|_| ours) else {
            continue;
        };
        let Some((proto, port)) = expr.iter().find_map(destination_port) else {
            continue;
        };
        let limit = expr.iter().find_map(connection_limit);
        match (expr.iter().find_map(refused_unless), limit) {
            (Some(uids), _) => match out.iter_mut().find(|a| a.proto == proto && a.port == port) {
                Some(a) => a.uids = uids,
                None => out.push(PortAllow {
                    proto,
                    port,
                    uids,
                    limit: None,
                }),
            },
            (None, Some(limit)) => {
                if let Some(a) = out.iter_mut().find(|a| a.proto == proto && a.port == port) {
                    a.limit = Some(limit);
                }
            }
            (None, None) => {}
        }
    }
    out.sort_by_key(|a| (a.port, a.proto));
    Some(out)
}

/// `{"match": {"left": {"payload": {"protocol": "tcp", "field": "dport"}}, "op": "==",
/// "right": 18080}}` → (TCP, 18080).
fn destination_port(expr: &Value) -> Option<(Protocol, u16)> {
    let m = expr.get("match")?;
    let payload = m.get("left")?.get("payload")?;
    if payload.get("field")?.as_str()? != "dport" || m.get("op").and_then(Value::as_str).unwrap_or("==") != "==" {
        return None;
    }
    let proto = match payload.get("protocol")?.as_str()? {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        _ => return None,
    };
    Some((proto, u16::try_from(m.get("right")?.as_u64()?).ok()?))
}

/// `meta skuid != { 0, 987 }` → the uids.
fn refused_unless(expr: &Value) -> Option<Vec<u32>> {
    let m = expr.get("match")?;
    if m.get("left")?.get("meta")?.get("key")?.as_str()? != "skuid" || m.get("op")?.as_str()? != "!=" {
        return None;
    }
    let right = m.get("right")?;
    let values: Vec<&Value> = match right.get("set").and_then(Value::as_array) {
        Some(set) => set.iter().collect(),
        None => vec![right],
    };
    let mut uids: Vec<u32> = values
        .into_iter()
        .map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
        .collect::<Option<Vec<u32>>>()?;
    uids.sort_unstable();
    uids.dedup();
    Some(uids)
}

/// `ct count over N` → N.
fn connection_limit(expr: &Value) -> Option<u32> {
    let count = expr.get("ct count")?;
    u32::try_from(count.get("val")?.as_u64()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_captured_table_with_two_restrictions_and_a_limit_is_read() {
        // `harden --apply --allow 18080/tcp=987 --allow 9000/tcp=1001,1002 --limit-connections 4`
        // in a namespace (fixtures/firewall/scenarios/loopwarden-harden-two-allows).
        let captured = include_str!("../../../fixtures/firewall/loopwarden-harden-two-allows/ruleset.json");
        let firewall = FirewallFacts {
            nft_json: Some(serde_json::from_str(captured).expect("captured nft JSON")),
            ..FirewallFacts::default()
        };
        let allows = read(&firewall).expect("nft captured");
        let tcp = |port, uids: &[u32]| PortAllow {
            proto: Protocol::Tcp,
            port,
            uids: uids.to_vec(),
            limit: Some(4),
        };
        assert_eq!(allows, vec![tcp(9000, &[0, 1001, 1002]), tcp(18080, &[0, 987])]);
    }

    #[test]
    fn no_ruleset_is_unknown_and_a_ruleset_without_the_table_restricts_nothing() {
        assert_eq!(read(&FirewallFacts::default()), None);
        let firewall = FirewallFacts {
            nft_json: Some(serde_json::json!({"nftables": [{"metainfo": {}}]})),
            ..FirewallFacts::default()
        };
        assert_eq!(read(&firewall), Some(Vec::new()));
    }
}
