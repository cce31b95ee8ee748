//! Where the kernel says why a packet was dropped: the victim's SNMP/netstat counters and the
//! packet counters of its nftables rules, read before and after each attack phase.

use crate::netns::{Namespace, NetnsError};
use std::collections::BTreeMap;

/// Counters whose movement explains a drop or a refusal. Successful bypasses move none of
/// them (notes §1), and a rejected IPv4 martian moves none either: where a probe was lost is
/// told by the lab's own observation table ([`crate::observe`]), not by the kernel-wide
/// `rt_cache` martian counters, which count every namespace on the machine.
const DROP_COUNTERS: &[&str] = &[
    "IpInHdrErrors",
    "IpInAddrErrors",
    "IpInDiscards",
    "IpInUnknownProtos",
    "UdpNoPorts",
    "UdpInErrors",
    "TcpInErrs",
    "TcpExtIPReversePathFilter",
    "TcpExtListenDrops",
    "TcpExtListenOverflows",
    "TcpExtTCPReqQFullDrop",
    "Ip6InHdrErrors",
    "Ip6InAddrErrors",
    "Ip6InNoRoutes",
    "Ip6InDiscards",
    "Ip6InUnknownProtos",
    "Udp6NoPorts",
    "Udp6InErrors",
];

/// A reading of the victim's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// `IpInHdrErrors`-style name → value, for [`DROP_COUNTERS`].
    pub kernel: BTreeMap<String, u64>,
    /// nft rule (`family table chain: rule text`) → packets, for rules with a counter.
    pub rules: BTreeMap<String, u64>,
}

/// Reads the victim's counters. The nft part is read only when `with_nft` (a ruleset was
/// loaded), since it costs a process.
pub fn snapshot(victim: &Namespace, with_nft: bool) -> Result<Snapshot, NetnsError> {
    let texts = victim.run_in(|| {
        ["snmp", "snmp6", "netstat"]
            .map(|f| std::fs::read_to_string(format!("/proc/thread-self/net/{f}")).unwrap_or_default())
    })?;
    let mut kernel = BTreeMap::new();
    parse_table_pairs(&texts[0], &mut kernel);
    parse_table_pairs(&texts[2], &mut kernel);
    parse_flat(&texts[1], &mut kernel);
    kernel.retain(|k, _| DROP_COUNTERS.contains(&k.as_str()));
    let rules = if with_nft {
        parse_nft_counters(&victim.exec(&["nft", "list", "ruleset"])?)
    } else {
        BTreeMap::new()
    };
    Ok(Snapshot { kernel, rules })
}

/// What moved between two readings, as evidence lines.
pub fn moved(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let mut out = Vec::new();
    for (name, value) in &after.kernel {
        let old = before.kernel.get(name).copied().unwrap_or(0);
        if *value > old {
            out.push(format!("victim counter {name} +{}", value - old));
        }
    }
    // Only rules that end a packet's way explain a drop; jumps and accepts are noise here.
    let verdict = |rule: &str| rule.split_whitespace().any(|w| w == "drop" || w == "reject");
    for (rule, value) in after.rules.iter().filter(|(r, _)| verdict(r)) {
        let old = before.rules.get(rule).copied().unwrap_or(0);
        if *value > old {
            out.push(format!("nft rule matched {} packet(s): {rule}", value - old));
        }
    }
    out
}

/// `/proc/net/snmp` and `netstat`: pairs of lines `Ip: Forwarding …` / `Ip: 1 …`.
fn parse_table_pairs(text: &str, out: &mut BTreeMap<String, u64>) {
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.chunks(2) {
        let [names, values] = pair else { continue };
        let (Some((prefix, names)), Some((_, values))) = (names.split_once(':'), values.split_once(':')) else {
            continue;
        };
        for (n, v) in names.split_whitespace().zip(values.split_whitespace()) {
            if let Ok(v) = v.parse() {
                out.insert(format!("{prefix}{n}"), v);
            }
        }
    }
}

/// `/proc/net/snmp6`: `Ip6InReceives  12` per line.
fn parse_flat(text: &str, out: &mut BTreeMap<String, u64>) {
    for line in text.lines() {
        let mut words = line.split_whitespace();
        if let (Some(n), Some(Ok(v))) = (words.next(), words.next().map(str::parse)) {
            out.insert(n.to_string(), v);
        }
    }
}

/// Rules with `counter packets N bytes M` in `nft list ruleset` text, keyed by where they are and
/// what they say (with the counter values removed).
fn parse_nft_counters(text: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut table = String::new();
    let mut chain = String::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("table ") {
            table = rest.trim_end_matches('{').trim().to_string();
        } else if let Some(rest) = t.strip_prefix("chain ") {
            chain = rest.trim_end_matches('{').trim().to_string();
        } else if let Some(at) = t.find("counter packets ") {
            let words: Vec<&str> = t[at..].split_whitespace().collect();
            let Some(packets) = words.get(2).and_then(|p| p.parse::<u64>().ok()) else {
                continue;
            };
            let rest = words.get(5..).map(|w| w.join(" ")).unwrap_or_default();
            let rule = format!("{} counter {rest}", t[..at].trim()).trim().to_string();
            *out.entry(format!("{table} {chain}: {rule}")).or_insert(0) += packets;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_real_proc_and_nft_formats() {
        let mut m = BTreeMap::new();
        parse_table_pairs("Ip: Forwarding InHdrErrors\nIp: 1 3\nUdp: NoPorts\nUdp: 2\n", &mut m);
        parse_flat("Ip6InHdrErrors                  \t4\nIp6InReceives 9\n", &mut m);
        assert_eq!(m["IpInHdrErrors"], 3);
        assert_eq!(m["UdpNoPorts"], 2);
        assert_eq!(m["Ip6InHdrErrors"], 4);
        let nft = "table inet g {\n\tchain pre {\n\t\ttype filter hook prerouting priority raw; policy accept;\n\t\tiifname != \"lo\" ip saddr 127.0.0.0/8 counter packets 2 bytes 84 drop\n\t}\n}\n";
        let rules = parse_nft_counters(nft);
        assert_eq!(
            rules["inet g pre: iifname != \"lo\" ip saddr 127.0.0.0/8 counter drop"],
            2
        );
        let before = Snapshot {
            kernel: BTreeMap::new(),
            rules: BTreeMap::new(),
        };
        let after = Snapshot { kernel: m, rules };
        let lines = moved(&before, &after);
        assert!(
            lines.iter().any(|l| l == "victim counter Ip6InHdrErrors +4"),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with("nft rule matched 2 packet(s): inet g pre")),
            "{lines:?}"
        );
    }
}
