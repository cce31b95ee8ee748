//! Property tests: no input makes the readers or the evaluator panic.

use super::eval::{Analysis, Host, Packets, Reach};
use super::questions::loopback;
use super::ranges::{all_addrs, RangeSet};
use super::{iptables_save, model::Origin, model::Ruleset, nft_json};
use proptest::prelude::*;
use serde_json::{json, Value};

/// Any JSON value, nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        "[a-z@*:./0-9-]{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "ip",
            "ip6",
            "inet",
            "filter",
            "nat",
            "prerouting",
            "input",
            "output",
            "lo",
            "127.0.0.0",
            "::1",
            "tcp",
            "dport",
            "saddr",
            "daddr",
            "@s",
            "eth*",
            "new",
            "dnat"
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "nftables", "table", "chain", "rule", "set", "map", "family", "name", "table", "chain", "hook",
                        "prio", "policy", "type", "expr", "match", "op", "left", "right", "meta", "key", "payload",
                        "protocol", "field", "ct", "fib", "flags", "result", "prefix", "addr", "len", "range", "set",
                        "vmap", "data", "jump", "goto", "target", "accept", "drop", "dnat", "port", "mangle", "value",
                        "&", "|", "xt", "elem", "socket", "level", "limit", "redirect", "counter", "notrack",
                    ]),
                    inner,
                ),
                0..6,
            )
            .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// Text made of iptables-save words in any order.
fn iptables_text() -> impl Strategy<Value = String> {
    let word = prop::sample::select(vec![
        "*filter",
        "*nat",
        "*raw",
        ":INPUT",
        ":PREROUTING",
        ":X",
        "ACCEPT",
        "DROP",
        "-",
        "[0:0]",
        "-A",
        "INPUT",
        "PREROUTING",
        "X",
        "-s",
        "-d",
        "!",
        "-i",
        "-o",
        "lo",
        "eth+",
        "-p",
        "tcp",
        "udp",
        "-m",
        "conntrack",
        "--ctstate",
        "NEW,DNAT",
        "owner",
        "--uid-owner",
        "1000-1002",
        "addrtype",
        "--dst-type",
        "LOCAL",
        "mark",
        "--mark",
        "0x1/0x1",
        "multiport",
        "--dports",
        "1:2,3",
        "--dport",
        "8080",
        "-j",
        "-g",
        "DNAT",
        "--to-destination",
        "127.0.0.1:80",
        "[::1]:80",
        "MARK",
        "--set-xmark",
        "REDIRECT",
        "--to-ports",
        "127.0.0.0/8",
        "::1/128",
        "255.255.0.0",
        "\"",
        "\\",
        "COMMIT",
        "\n",
        "\n",
        "#",
        "rpfilter",
        "--invert",
    ]);
    prop::collection::vec(word, 0..80).prop_map(|w| w.join(" "))
}

fn evaluate_everything(ruleset: Ruleset) {
    let analysis = Analysis::new(ruleset, Host::default());
    for v6 in [false, true] {
        let outside = all_addrs(v6).subtract(&loopback(v6));
        for reach in [Reach::BeforeNat, Reach::Full, Reach::FirewallInput] {
            let _ = analysis
                .query(Packets::arriving(v6, "eth0", outside.clone(), loopback(v6)), reach)
                .decision();
        }
        let _ = analysis.query(
            Packets::local_client(v6, loopback(v6), loopback(v6), RangeSet::range(0, u32::MAX as u128)),
            Reach::LocalClient,
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn nft_json_reader_and_evaluator_never_panic(value in any_json()) {
        let mut rs = Ruleset::default();
        nft_json::read(&value, &|_, _| true, &mut rs);
        let wrapped = json!({"nftables": [value]});
        nft_json::read(&wrapped, &|_, _| true, &mut rs);
        evaluate_everything(rs);
    }

    #[test]
    fn iptables_save_reader_and_evaluator_never_panic(text in iptables_text(), v6 in any::<bool>()) {
        let mut rs = Ruleset::default();
        iptables_save::read(&text, v6, Origin::IptablesNft, &mut rs);
        evaluate_everything(rs);
    }

    #[test]
    fn iptables_save_reader_takes_arbitrary_text(text in any::<String>()) {
        let mut rs = Ruleset::default();
        iptables_save::read(&text, false, Origin::IptablesLegacy, &mut rs);
    }
}

/// Well-formed nft objects with random expressions: the evaluator must walk them too.
fn nft_rules() -> impl Strategy<Value = Value> {
    prop::collection::vec(any_json(), 0..8).prop_map(|exprs| {
        json!({"nftables": [
            {"table": {"family": "inet", "name": "t"}},
            {"chain": {"family": "inet", "table": "t", "name": "c", "type": "nat", "hook": "prerouting", "prio": -100, "policy": "drop"}},
            {"chain": {"family": "inet", "table": "t", "name": "d"}},
            {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": exprs.clone()}},
            {"rule": {"family": "inet", "table": "t", "chain": "c", "expr": [{"jump": {"target": "d"}}]}},
            {"rule": {"family": "inet", "table": "t", "chain": "d", "expr": exprs}},
        ]})
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn structured_nft_rules_with_random_expressions_never_panic(value in nft_rules()) {
        let mut rs = Ruleset::default();
        nft_json::read(&value, &|_, _| true, &mut rs);
        prop_assert_eq!(rs.tables.len(), 1);
        evaluate_everything(rs);
    }
}
