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
pub mod questions;
pub mod ranges;
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
        let before = out.tables.len();
        iptables_save::read(&dump.text, v6, origin, &mut out);
        if origin == Origin::IptablesNft {
            from_dump.extend(out.tables[before..].iter().map(|t| (t.family.clone(), t.name.clone())));
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

/// Whether the snapshot holds any firewall capture at all (without one, every answer is unknown).
pub fn captured(facts: &FirewallFacts) -> bool {
    facts.nft_json.is_some() || !facts.iptables.is_empty()
}
