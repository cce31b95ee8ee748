//! The drop counters of loopwarden's own anti-spoofing table (`table inet loopwarden`, which
//! `loopwarden harden` installs), read from a snapshot's nft JSON.
//!
//! A spoofed loopback packet leaves no trace in the kernel's per-namespace counters, and a
//! successful bypass leaves none at all (notes §1): the table's counters are how a host learns
//! that it was attacked this way. The table has one named counter per drop rule ([`Guard`]) and a
//! set ([`PER_INTERFACE_SET`]) whose elements count the drops per input interface and family;
//! the rule that counts them says since when in its comment ([`SINCE_PREFIX`]).
//! Pure: facts in, evidence lines out.

use crate::checks::CheckId;
use crate::facts::{FirewallFacts, HostFacts};
use crate::report::prometheus::Family;
use crate::report::Finding;
use serde_json::Value;
use std::collections::BTreeMap;

/// The family of loopwarden's table.
pub const TABLE_FAMILY: &str = "inet";
/// The name of loopwarden's table.
pub const TABLE_NAME: &str = "loopwarden";
/// The set counting drops per input interface and family (`type ifname . nf_proto`).
pub const PER_INTERFACE_SET: &str = "spoofed";
/// What the counting rule's comment says before the time the table was created (RFC 3339, UTC).
pub const SINCE_PREFIX: &str = "dropped spoofed packets per input interface since ";

/// One drop rule of the table's prerouting chain, named by its counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Guard {
    /// IPv4 from 127.0.0.0/8.
    Ipv4Source,
    /// IPv4 to 127.0.0.0/8.
    Ipv4Destination,
    /// IPv6 from `::1`.
    Ipv6Source,
    /// IPv6 to `::1`.
    Ipv6Destination,
    /// IPv6 from an IPv4-mapped loopback address (`::ffff:127.0.0.0/104`, or all of
    /// `::ffff:0.0.0.0/96` when asked).
    MappedSource,
    /// IPv6 to an IPv4-mapped loopback address.
    MappedDestination,
}

impl Guard {
    /// Every drop rule, in the order the chain has them.
    pub const ALL: [Guard; 6] = [
        Guard::Ipv4Source,
        Guard::Ipv4Destination,
        Guard::Ipv6Source,
        Guard::Ipv6Destination,
        Guard::MappedSource,
        Guard::MappedDestination,
    ];

    /// The name of the rule's counter in the table.
    pub fn counter(self) -> &'static str {
        match self {
            Guard::Ipv4Source => "ipv4-source",
            Guard::Ipv4Destination => "ipv4-destination",
            Guard::Ipv6Source => "ipv6-source",
            Guard::Ipv6Destination => "ipv6-destination",
            Guard::MappedSource => "mapped-source",
            Guard::MappedDestination => "mapped-destination",
        }
    }

    /// Whether the rule matches IPv6 packets.
    pub fn v6(self) -> bool {
        !matches!(self, Guard::Ipv4Source | Guard::Ipv4Destination)
    }

    /// Whether the rule matches the source address (else the destination).
    pub fn source(self) -> bool {
        matches!(self, Guard::Ipv4Source | Guard::Ipv6Source | Guard::MappedSource)
    }

    /// What the rule drops, in a few words.
    pub fn describe(self) -> &'static str {
        match self {
            Guard::Ipv4Source => "from 127.0.0.0/8",
            Guard::Ipv4Destination => "to 127.0.0.0/8",
            Guard::Ipv6Source => "from ::1",
            Guard::Ipv6Destination => "to ::1",
            Guard::MappedSource => "from IPv4-mapped loopback",
            Guard::MappedDestination => "to IPv4-mapped loopback",
        }
    }

    fn by_counter(name: &str) -> Option<Guard> {
        Guard::ALL.into_iter().find(|g| g.counter() == name)
    }
}

/// What loopwarden's table has counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpoofDrops {
    /// When the table was created, as its counting rule's comment says (RFC 3339), if it says.
    pub since: Option<String>,
    /// Packets dropped per rule.
    pub by_guard: Vec<(Guard, u64)>,
    /// Packets dropped per input interface and family (`true`: IPv6).
    pub by_interface: Vec<(String, bool, u64)>,
}

impl SpoofDrops {
    /// Packets of one family dropped in all.
    pub fn total(&self, v6: bool) -> u64 {
        self.by_guard.iter().filter(|(g, _)| g.v6() == v6).map(|(_, n)| n).sum()
    }

    /// Evidence lines for one family: how many packets were dropped, on which interfaces, by
    /// which rule.
    pub fn evidence(&self, v6: bool) -> Vec<String> {
        let family = if v6 { "IPv6" } else { "IPv4" };
        let since = self
            .since
            .as_deref()
            .map_or_else(|| "since the rules were applied".to_string(), |s| format!("since {s}"));
        let total = self.total(v6);
        if total == 0 {
            return vec![format!(
                "loopwarden's table (inet {TABLE_NAME}) has dropped no spoofed {family} packet {since}"
            )];
        }
        let on: Vec<String> = self
            .by_interface
            .iter()
            .filter(|(_, f, n)| *f == v6 && *n > 0)
            .map(|(iif, _, n)| format!("{n} on {iif}"))
            .collect();
        let by_rule: Vec<String> = self
            .by_guard
            .iter()
            .filter(|(g, n)| g.v6() == v6 && *n > 0)
            .map(|(g, n)| format!("{}: {n}", g.describe()))
            .collect();
        let on = if on.is_empty() {
            String::new()
        } else {
            format!(": {}", on.join(", "))
        };
        vec![format!(
            "loopwarden's table (inet {TABLE_NAME}) dropped {total} spoofed {family} packet(s) {since}{on} ({})",
            by_rule.join(", ")
        )]
    }
}

/// Reads the counters of loopwarden's table from `nft -j list ruleset` output; `None` when the
/// snapshot has no such table.
pub fn read(firewall: &FirewallFacts) -> Option<SpoofDrops> {
    let objects = firewall.nft_json.as_ref()?.get("nftables")?.as_array()?;
    let ours = |o: &Value| {
        o.get("family").and_then(Value::as_str) == Some(TABLE_FAMILY)
            && (o.get("table").or_else(|| o.get("name")).and_then(Value::as_str) == Some(TABLE_NAME))
    };
    if !objects.iter().filter_map(|o| o.get("table")).any(ours) {
        return None;
    }
    let mut drops = SpoofDrops::default();
    for counter in objects.iter().filter_map(|o| o.get("counter")).filter(|c| ours(c)) {
        let guard = counter.get("name").and_then(Value::as_str).and_then(Guard::by_counter);
        if let (Some(g), Some(n)) = (guard, counter.get("packets").and_then(Value::as_u64)) {
            drops.by_guard.push((g, n));
        }
    }
    drops.by_guard.sort();
    let set = objects
        .iter()
        .filter_map(|o| o.get("set"))
        .find(|s| ours(s) && s.get("name").and_then(Value::as_str) == Some(PER_INTERFACE_SET));
    drops.since = objects
        .iter()
        .filter_map(|o| o.get("rule"))
        .filter(|r| ours(r))
        .filter_map(|r| r.get("comment").and_then(Value::as_str))
        .find_map(|c| c.strip_prefix(SINCE_PREFIX))
        .filter(|t| is_timestamp(t))
        .map(str::to_string);
    if let Some(set) = set {
        for elem in set.get("elem").and_then(Value::as_array).into_iter().flatten() {
            if let Some(counted) = interface_count(elem) {
                drops.by_interface.push(counted);
            }
        }
        drops.by_interface.sort();
    }
    Some(drops)
}

/// One element of the per-interface set: `{"elem": {"val": {"concat": [IFNAME, "ipv4"]},
/// "counter": {"packets": N, …}}}`. Interface names are shown only when they look like one.
fn interface_count(elem: &Value) -> Option<(String, bool, u64)> {
    let inner = elem.get("elem")?;
    let parts = inner.get("val")?.get("concat")?.as_array()?;
    let (iif, family) = (parts.first()?.as_str()?, parts.get(1)?.as_str()?);
    let v6 = match family {
        "ipv4" => false,
        "ipv6" => true,
        _ => return None,
    };
    let printable = !iif.is_empty() && iif.len() <= 15 && iif.chars().all(|c| c.is_ascii_graphic());
    let packets = inner.get("counter")?.get("packets")?.as_u64()?;
    Some((
        if printable { iif.to_string() } else { format!("{iif:?}") },
        v6,
        packets,
    ))
}

/// `2025-01-31T12:00:00Z` and nothing else: the comment is host text, shown only in that shape.
fn is_timestamp(text: &str) -> bool {
    text.len() == 20
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | ':' | 'T' | 'Z'))
}

/// Adds what loopwarden's table counted to the audit's per-family anti-spoofing findings.
pub fn annotate(facts: &HostFacts, findings: &mut [Finding]) {
    let Some(drops) = read(&facts.firewall) else { return };
    for f in findings
        .iter_mut()
        .filter(|f| f.check == CheckId::NetNoLoopbackAntispoof)
    {
        match f.subject.as_deref() {
            Some("ipv4") => f.evidence.extend(drops.evidence(false)),
            Some("ipv6") => f.evidence.extend(drops.evidence(true)),
            _ => {}
        }
    }
}

/// What the table counted, as Prometheus families for node_exporter's textfile collector:
/// whether the table is loaded at all, and the packets it dropped per input interface and
/// family and per rule. Counters restart from zero when the table is loaded again, which
/// Prometheus' `rate()` handles as a reset. A hostile snapshot naming one interface twice
/// yields one series (the sum), never a duplicate that would make the collector drop the file.
pub fn metrics(facts: &HostFacts) -> Vec<Family> {
    let drops = read(&facts.firewall);
    let mut families = vec![Family {
        name: "loopwarden_harden_table".into(),
        help: format!(
            "1 when loopwarden's anti-spoofing table ({TABLE_FAMILY} {TABLE_NAME}, from `loopwarden harden`) is loaded in this network namespace, else 0."
        ),
        kind: "gauge",
        series: vec![(Vec::new(), if drops.is_some() { 1.0 } else { 0.0 })],
    }];
    let Some(drops) = drops else { return families };
    let family_name = |v6: bool| if v6 { "ipv6" } else { "ipv4" }.to_string();
    let mut per_interface: BTreeMap<(String, bool), u64> = BTreeMap::new();
    for (iif, v6, n) in &drops.by_interface {
        *per_interface.entry((iif.clone(), *v6)).or_insert(0) += n;
    }
    families.push(Family {
        name: "loopwarden_spoofed_packets_dropped_total".into(),
        help: "Packets with a loopback source or destination that arrived on a non-loopback interface and loopwarden's table dropped, per input interface and family.".into(),
        kind: "counter",
        series: per_interface
            .into_iter()
            .map(|((iif, v6), n)| {
                (
                    vec![("interface".into(), iif), ("family".into(), family_name(v6))],
                    n as f64,
                )
            })
            .collect(),
    });
    let mut per_rule: BTreeMap<Guard, u64> = BTreeMap::new();
    for (guard, n) in &drops.by_guard {
        *per_rule.entry(*guard).or_insert(0) += n;
    }
    families.push(Family {
        name: "loopwarden_spoofed_packets_dropped_by_rule_total".into(),
        help: "Packets loopwarden's table dropped, per drop rule (its named counter) and family.".into(),
        kind: "counter",
        series: per_rule
            .into_iter()
            .map(|(guard, n)| {
                (
                    vec![
                        ("rule".into(), guard.counter().to_string()),
                        ("family".into(), family_name(guard.v6())),
                    ],
                    n as f64,
                )
            })
            .collect(),
    });
    families
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Objects as `nft -j list ruleset` (nft 1.0.6) printed them for a loopwarden table after
    /// spoofed frames arrived on eth0.
    fn listed() -> FirewallFacts {
        FirewallFacts {
            nft_json: Some(json!({"nftables": [
                {"metainfo": {"version": "1.0.6", "json_schema_version": 1}},
                {"table": {"family": "inet", "name": "loopwarden", "handle": 7}},
                {"counter": {"family": "inet", "name": "ipv4-destination", "table": "loopwarden", "handle": 2, "packets": 3, "bytes": 96}},
                {"counter": {"family": "inet", "name": "mapped-source", "table": "loopwarden", "handle": 3, "packets": 1, "bytes": 60}},
                {"counter": {"family": "inet", "name": "ipv4-source", "table": "other", "handle": 3, "packets": 99, "bytes": 60}},
                {"rule": {"family": "inet", "table": "loopwarden", "chain": "drop-spoofed", "handle": 9,
                    "comment": "dropped spoofed packets per input interface since 2025-01-31T12:00:00Z",
                    "expr": [{"set": {"op": "add", "elem": {"concat": [{"meta": {"key": "iifname"}}, {"meta": {"key": "nfproto"}}]}, "set": "@spoofed"}}]}},
                {"set": {"family": "inet", "name": "spoofed", "table": "loopwarden", "type": ["ifname", "nf_proto"],
                    "handle": 4, "elem": [
                        {"elem": {"val": {"concat": ["eth0", "ipv4"]}, "counter": {"packets": 3, "bytes": 96}}},
                        {"elem": {"val": {"concat": ["eth0", "ipv6"]}, "counter": {"packets": 1, "bytes": 60}}}
                    ], "stmt": [{"counter": null}]}}
            ]})),
            nft_text: None,
            iptables: vec![],
        }
    }

    #[test]
    fn reads_named_counters_and_per_interface_elements() {
        let drops = read(&listed()).expect("table present");
        assert_eq!(drops.since.as_deref(), Some("2025-01-31T12:00:00Z"));
        assert_eq!(drops.total(false), 3);
        assert_eq!(drops.total(true), 1);
        assert_eq!(
            drops.evidence(false),
            vec!["loopwarden's table (inet loopwarden) dropped 3 spoofed IPv4 packet(s) since 2025-01-31T12:00:00Z: 3 on eth0 (to 127.0.0.0/8: 3)"]
        );
    }

    #[test]
    fn no_table_means_nothing_to_say_and_zero_is_said() {
        assert_eq!(read(&FirewallFacts::default()), None);
        let mut facts = listed();
        if let Some(objects) = facts.nft_json.as_mut().and_then(|j| j["nftables"].as_array_mut()) {
            objects.retain(|o| o.get("counter").is_none() && o.get("set").is_none() && o.get("rule").is_none());
        }
        let drops = read(&facts).expect("table present");
        assert_eq!(
            drops.evidence(true),
            vec![
                "loopwarden's table (inet loopwarden) has dropped no spoofed IPv6 packet since the rules were applied"
            ]
        );
    }

    #[test]
    fn host_text_is_shown_only_in_a_safe_shape() {
        let mut facts = listed();
        let objects = &mut facts.nft_json.as_mut().expect("json")["nftables"];
        objects[5]["rule"]["comment"] = json!("dropped spoofed packets per input interface since \u{1b}[31mnow");
        objects[6]["set"]["elem"][0]["elem"]["val"]["concat"][0] = json!("e\u{1b}th0");
        let drops = read(&facts).expect("table present");
        assert_eq!(drops.since, None);
        assert!(
            drops.by_interface.iter().any(|(n, _, _)| n == "\"e\\u{1b}th0\""),
            "{drops:?}"
        );
    }

    #[test]
    fn drops_become_counters_per_interface_family_and_rule() {
        let mut facts = crate::checks::test_facts::base();
        facts.firewall = listed();
        let families = metrics(&facts);
        let names: Vec<&str> = families.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "loopwarden_harden_table",
                "loopwarden_spoofed_packets_dropped_total",
                "loopwarden_spoofed_packets_dropped_by_rule_total"
            ]
        );
        assert_eq!(families[0].series, vec![(vec![], 1.0)]);
        let label = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            families[1].series,
            vec![
                (vec![label("interface", "eth0"), label("family", "ipv4")], 3.0),
                (vec![label("interface", "eth0"), label("family", "ipv6")], 1.0),
            ]
        );
        assert!(families[2]
            .series
            .contains(&(vec![label("rule", "mapped-source"), label("family", "ipv6")], 1.0)));
        assert_eq!(
            metrics(&crate::checks::test_facts::base())[0].series,
            vec![(vec![], 0.0)],
            "no table: said, and no counter invented"
        );
    }
}
