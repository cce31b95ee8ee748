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

/// Which rule counters to read: each costs a process, so only what the mirror loaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    /// Native nftables tables were loaded.
    pub nft: bool,
    /// iptables dumps were loaded, as `ipv4/nft`, `ipv6/legacy` … (the mirror's names).
    pub iptables: Vec<String>,
}

impl Sources {
    /// Whether any rule counter is read.
    pub fn any(&self) -> bool {
        self.nft || !self.iptables.is_empty()
    }
}

/// Reads the victim's counters: the kernel's, and the rule counters of what the mirror loaded.
/// iptables rules are read with `iptables-save -c` in their own syntax — nft's rendering of an
/// iptables-nft rule loses parts of it (`! --ctstate RELATED,ESTABLISHED,DNAT` prints as
/// `ct status dnat`, which reads as the opposite) — and their tables are left out of nft's.
pub fn snapshot(victim: &Namespace, sources: &Sources) -> Result<Snapshot, NetnsError> {
    let texts = victim.run_in(|| {
        ["snmp", "snmp6", "netstat"]
            .map(|f| std::fs::read_to_string(format!("/proc/thread-self/net/{f}")).unwrap_or_default())
    })?;
    let mut kernel = BTreeMap::new();
    parse_table_pairs(&texts[0], &mut kernel);
    parse_table_pairs(&texts[2], &mut kernel);
    parse_flat(&texts[1], &mut kernel);
    kernel.retain(|k, _| DROP_COUNTERS.contains(&k.as_str()));
    let mut rules = BTreeMap::new();
    let mut iptables_tables: Vec<String> = Vec::new();
    for loaded in &sources.iptables {
        let tool = match loaded.as_str() {
            "ipv4/legacy" => "iptables-legacy-save",
            "ipv6/legacy" => "ip6tables-legacy-save",
            "ipv6/nft" => "ip6tables-nft-save",
            _ => "iptables-nft-save",
        };
        let text = victim.exec(&[tool, "-c"])?;
        if loaded.ends_with("/nft") {
            let family = if loaded.starts_with("ipv6") { "ip6" } else { "ip" };
            iptables_tables.extend(
                text.lines()
                    .filter_map(|l| l.strip_prefix('*'))
                    .map(|t| format!("{family} {}", t.trim())),
            );
        }
        parse_iptables_counters(&text, tool, &mut rules);
    }
    if sources.nft || !iptables_tables.is_empty() {
        let nft = parse_nft_counters(&victim.exec(&["nft", "list", "ruleset"])?);
        rules.extend(
            nft.into_iter()
                .filter(|(rule, _)| !iptables_tables.iter().any(|t| rule.starts_with(&format!("{t} ")))),
        );
    }
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
    let verdict = |rule: &str| {
        rule.split_whitespace()
            .any(|w| matches!(w, "drop" | "reject" | "DROP" | "REJECT"))
    };
    for (rule, value) in after.rules.iter().filter(|(r, _)| verdict(r)) {
        let old = before.rules.get(rule).copied().unwrap_or(0);
        if *value > old {
            out.push(format!("rule matched {} packet(s): {rule}", value - old));
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

/// Rules of `iptables-save -c` output (`[packets:bytes] -A CHAIN …`), keyed as the tool and
/// table name them with the rule as iptables prints it (without the counters).
fn parse_iptables_counters(text: &str, tool: &str, out: &mut BTreeMap<String, u64>) {
    let family = tool.trim_end_matches("-save");
    let mut table = "";
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('*') {
            table = name.trim();
            continue;
        }
        let Some((counts, rule)) = line.strip_prefix('[').and_then(|l| l.split_once("] ")) else {
            continue;
        };
        let Some(packets) = counts.split(':').next().and_then(|p| p.parse::<u64>().ok()) else {
            continue;
        };
        *out.entry(format!("{family} {table}: {rule}")).or_insert(0) += packets;
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
                .any(|l| l.starts_with("rule matched 2 packet(s): inet g pre")),
            "{lines:?}"
        );
    }

    /// `iptables-nft-save -c` 1.8.9 after kube-proxy's KUBE-FIREWALL dropped 12 packets: the rule
    /// keeps its own syntax, negation included.
    #[test]
    fn iptables_rules_are_read_in_their_own_syntax() {
        let text = "*filter\n:INPUT ACCEPT [40:2400]\n:KUBE-FIREWALL - [0:0]\n\
                    [40:2400] -A INPUT -j KUBE-FIREWALL\n\
                    [12:720] -A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\nCOMMIT\n";
        let mut rules = BTreeMap::new();
        parse_iptables_counters(text, "iptables-nft-save", &mut rules);
        let key = "iptables-nft filter: -A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP";
        assert_eq!(rules.get(key), Some(&12), "{rules:?}");
        let lines = moved(
            &Snapshot::default(),
            &Snapshot {
                kernel: BTreeMap::new(),
                rules,
            },
        );
        assert_eq!(lines.len(), 1, "only the drop explains: {lines:?}");
        assert!(lines[0].contains("! --ctstate RELATED,ESTABLISHED,DNAT"));
    }
}
