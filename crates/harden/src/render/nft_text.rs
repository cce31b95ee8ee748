//! The planned table in nft's own syntax, for people (the plan printout): the same table the JSON
//! batch creates (the end-to-end tests load both and compare what the kernel lists).

use crate::plan::table::{PortRule, Table, DROP_CHAIN, OUTPUT_CHAIN, OUTPUT_NAT_CHAIN, PREROUTING_CHAIN, SET_SIZE};
use crate::render::nft_json::count_comment;
use loopwarden_core::facts::Protocol;
use loopwarden_core::spoof_drops::{PER_INTERFACE_SET, TABLE_FAMILY, TABLE_NAME};
use std::fmt::Write;

/// `table inet loopwarden { … }`.
pub fn render(table: &Table, since: Option<&str>) -> String {
    let mut out = format!("table {TABLE_FAMILY} {TABLE_NAME} {{\n");
    for g in &table.guards {
        counter(&mut out, g.guard.counter(), &g.comment());
    }
    for r in &table.allows {
        counter(
            &mut out,
            &r.refused_counter(),
            &format!("connections to {} port {} refused by --allow", r.proto.as_str(), r.port),
        );
        if !r.limited_uids().is_empty() {
            counter(
                &mut out,
                &r.limited_counter(),
                &format!(
                    "connections to {} port {} refused over the per-user limit",
                    r.proto.as_str(),
                    r.port
                ),
            );
        }
    }
    let _ = write!(
        out,
        "\tset {PER_INTERFACE_SET} {{\n\t\ttype ifname . nf_proto\n\t\tsize {SET_SIZE}\n\t\tflags dynamic\n\t\tcounter\n\t}}\n\n"
    );
    let _ = write!(
        out,
        "\tchain {DROP_CHAIN} {{\n\t\tadd @{PER_INTERFACE_SET} {{ iifname . meta nfproto }} comment \"{}\"\n\t\tdrop\n\t}}\n\n",
        count_comment(since)
    );
    let _ = writeln!(
        out,
        "\tchain {PREROUTING_CHAIN} {{\n\t\ttype filter hook prerouting priority raw; policy accept;"
    );
    for g in &table.guards {
        let _ = writeln!(
            out,
            "\t\tiifname != \"lo\" {} counter name \"{}\" goto {DROP_CHAIN} comment \"{}\"",
            g.matches(),
            g.guard.counter(),
            g.comment()
        );
    }
    out.push_str("\t}\n");
    if !table.allows.is_empty() {
        for (chain, priority, after_nat) in [(OUTPUT_CHAIN, "mangle", false), (OUTPUT_NAT_CHAIN, "filter", true)] {
            let _ = writeln!(
                out,
                "\n\tchain {chain} {{\n\t\ttype filter hook output priority {priority}; policy accept;"
            );
            for r in &table.allows {
                port_rules(&mut out, r, after_nat);
            }
            out.push_str("\t}\n");
        }
    }
    out.push_str("}\n");
    out
}

fn counter(out: &mut String, name: &str, comment: &str) {
    let _ = write!(out, "\tcounter {name} {{\n\t\tcomment \"{comment}\"\n\t}}\n\n");
}

fn reject(proto: Protocol) -> &'static str {
    match proto {
        Protocol::Tcp => "reject with tcp reset",
        Protocol::Udp => "reject",
    }
}

/// One allow's rules, as [`super::nft_json`] makes them (`after_nat`: only for connections a
/// destination NAT changed, in the chain after NAT).
fn port_rules(out: &mut String, r: &PortRule, after_nat: bool) {
    let proto = r.proto.as_str();
    let nat = if after_nat { " ct status dnat" } else { "" };
    let uids: Vec<String> = r.uids.iter().map(|a| a.uid.to_string()).collect();
    let uids = match uids.as_slice() {
        [one] => one.clone(),
        many => format!("{{ {} }}", many.join(", ")),
    };
    let _ = writeln!(
        out,
        "\t\toifname \"lo\"{nat} {proto} dport {} meta skuid != {uids} counter name \"{}\" {} comment \"only the allowed uids connect to {proto} port {}\"",
        r.port,
        r.refused_counter(),
        reject(r.proto),
        r.port
    );
    if let Some(limit) = r.limit {
        for uid in r.limited_uids() {
            let _ = writeln!(
                out,
                "\t\toifname \"lo\"{nat} {proto} dport {} ct state new meta skuid {uid} ct count over {limit} counter name \"{}\" {} comment \"at most {limit} connections of uid {uid} at once\"",
                r.port,
                r.limited_counter(),
                reject(r.proto)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prerouting_chain_reads_like_notes_section_2() {
        let text = render(&Table::new(false, vec![]), None);
        assert!(
            text.contains("type filter hook prerouting priority raw; policy accept;"),
            "{text}"
        );
        assert!(
            text.contains("iifname != \"lo\" ip6 daddr ::ffff:127.0.0.0/104 counter name \"mapped-destination\" goto drop-spoofed"),
            "{text}"
        );
        assert!(!text.contains("chain output"), "{text}");
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }
}
