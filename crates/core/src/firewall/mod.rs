//! Firewall analysis: the captured rulesets read into one typed model, and a packet-path
//! evaluator over it.
//!
//! Sources and which one decides (so that no rule counts twice):
//! - legacy iptables (`iptables-legacy-save`): x_tables is a separate kernel subsystem, absent
//!   from nft's JSON, so its tables are always read from the dump;
//! - iptables-nft: its tables (`ip`/`ip6` tables named `filter`, `nat`, `raw`, `mangle`,
//!   `security`) appear both in the iptables-nft dump and in nft's JSON, where most matches
//!   and targets are opaque `xt` expressions. For every table the nft-backend dump lists, the
//!   dump is authoritative and the JSON copy is skipped;
//! - everything else (native nftables tables, `inet` tables, tables of other names) comes from
//!   nft's JSON.

pub mod eval;
#[cfg(test)]
pub(crate) mod fixture_tests;
#[cfg(test)]
mod fuzz_tests;
mod iptables_save;
pub mod model;
mod names;
mod nft_json;
mod port_index;
pub mod questions;
pub mod ranges;
mod reverse_path;
pub mod verdict;

use crate::facts::{FirewallFacts, IptablesFamily};
use model::{Family, Origin, Ruleset};

/// Reads every captured source into one ruleset (see the module documentation for which source
/// decides for which table). Never fails: what is not understood is listed in the result.
pub fn read(facts: &FirewallFacts) -> Ruleset {
    let mut out = Ruleset::default();
    let mut from_dump: Vec<(Family, String)> = Vec::new();
    for dump in &facts.iptables {
        let v6 = dump.family == IptablesFamily::Ipv6;
        let origin = if dump.backend == "legacy" {
            Origin::IptablesLegacy
        } else {
            Origin::IptablesNft
        };
        let mut tables = Ruleset::default();
        let incompatible = iptables_save::read(&dump.text, v6, origin, &mut tables);
        out.not_understood.append(&mut tables.not_understood);
        for table in tables.tables {
            let hidden =
                origin == Origin::IptablesNft && (incompatible.contains(&table.name) || json_shows_more(facts, &table));
            if hidden {
                // iptables-nft-save prints empty built-in chains for a table whose chains it cannot
                // express: nft's JSON is the truth for it.
                out.notes.push(format!(
                    "{} {}: iptables-nft-save cannot show this table's chains; read from nft's JSON",
                    table.family.name(),
                    table.name
                ));
                continue;
            }
            if origin == Origin::IptablesNft {
                from_dump.push((table.family.clone(), table.name.clone()));
            }
            out.tables.push(table);
        }
    }
    if let Some(json) = &facts.nft_json {
        let keep = |f: &Family, name: &str| !from_dump.iter().any(|(df, dn)| df == f && dn == name);
        nft_json::read(json, &keep, &mut out);
    }
    for (family, name) in &from_dump {
        out.notes.push(format!(
            "{} {name}: read from iptables-nft-save (authoritative over its nft JSON copy)",
            family.name()
        ));
    }
    match (&facts.nft_json, facts.iptables.is_empty()) {
        (None, true) => out.notes.push("no firewall capture in the snapshot".into()),
        (None, false) => out
            .notes
            .push("no nft JSON in the snapshot: native nftables tables, if any, were not seen (see the limits)".into()),
        _ => {}
    }
    out
}

/// Whether nft's JSON copy of an iptables-nft table has chains the dump does not list: a
/// native nft chain added to an iptables table, which the dump silently leaves out. An iptables
/// dump never hides what nft's JSON shows.
fn json_shows_more(facts: &FirewallFacts, table: &model::Table) -> bool {
    let Some(json) = &facts.nft_json else { return false };
    let names = nft_json::chain_names(json, table.family.name(), &table.name);
    names.iter().any(|n| !table.chains.iter().any(|c| &c.name == n))
}

/// Whether the snapshot holds any firewall capture at all (without one, every answer is unknown).
pub fn captured(facts: &FirewallFacts) -> bool {
    facts.nft_json.is_some() || !facts.iptables.is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::IptablesDump;
    use model::Item;

    /// Captured in a namespace holding only `table ip nat { chain prerouting { type nat hook
    /// prerouting priority dstnat; tcp dport 8080 dnat to 127.0.0.1:7001 } }`.
    const NATIVE_NAT_JSON: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "ip", "name": "nat", "handle": 1}}, {"chain": {"family": "ip", "table": "nat", "name": "prerouting", "handle": 1, "type": "nat", "hook": "prerouting", "prio": -100, "policy": "accept"}}, {"rule": {"family": "ip", "table": "nat", "chain": "prerouting", "handle": 2, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}}, {"dnat": {"addr": "127.0.0.1", "port": 7001}}]}}]}"#;
    /// iptables-nft-save of the same namespace.
    const NATIVE_NAT_DUMP: &str = "# Table `nat' contains incompatible base-chains, use 'nft' tool to list them.\n*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\nCOMMIT\n";

    fn facts(dump: &str) -> FirewallFacts {
        FirewallFacts {
            nft_json: Some(serde_json::from_str(NATIVE_NAT_JSON).expect("captured JSON")),
            iptables: vec![IptablesDump {
                family: IptablesFamily::Ipv4,
                backend: "nft".into(),
                text: dump.into(),
            }],
            ..Default::default()
        }
    }

    fn has_dnat(rs: &Ruleset) -> bool {
        rs.tables
            .iter()
            .flat_map(|t| &t.chains)
            .flat_map(|c| &c.rules)
            .any(|r| r.items.iter().any(|i| matches!(i, Item::Nat(_))))
    }

    #[test]
    fn an_iptables_dump_never_hides_what_nft_json_shows() {
        let rs = read(&facts(NATIVE_NAT_DUMP));
        assert!(has_dnat(&rs), "{rs:?}");
        assert!(rs.notes.iter().any(|n| n.contains("cannot show")), "{:?}", rs.notes);
        // Without the comment, chains the dump does not list still make nft's JSON decide.
        let silent = NATIVE_NAT_DUMP.lines().skip(1).collect::<Vec<_>>().join("\n");
        assert!(has_dnat(&read(&facts(&silent))));
    }
}
