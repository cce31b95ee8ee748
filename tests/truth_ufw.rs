//! Truth on a real ufw host (issue 8, items 5, 6, 9): Debian's `ufw` 0.36 enabled with its stock
//! rules inside the victim namespace (`ufw --force enable`, `ufw allow 22`; see `common/ufw.rs`),
//! `route_localnet=1`, and services on tcp 0.0.0.0:22, udp [::]:22, tcp 127.0.0.1:9000, udp
//! 127.0.0.1:9001 and udp [::]:9002.
//!
//! How the truth is established: the independent scapy attacker (`tests/real/attacker.py`) in
//! the neighbour namespace sends hand-built frames to the victim's MAC — TCP handshakes with data
//! and UDP datagrams carrying a token, to 127.0.0.1 (route_localnet), with a spoofed
//! `::ffff:127.0.0.1` source to the global IPv6 address, and plain ones to the LAN addresses —
//! and `tests/real/receiver.py` in the victim namespace logs which tokens arrived and the peer
//! address the application saw. ufw's default-deny drops everything but port 22 (both protocols,
//! both families); the expected truths are asserted before loopwarden runs.

mod common;

use common::real::*;
use common::require_root;
use common::ufw::UfwHost;

const SOCKETS: &[&str] = &[
    "tcp:0.0.0.0:22",
    "udp:[::]:22",
    "tcp:127.0.0.1:9000",
    "udp:127.0.0.1:9001",
    "udp:[::]:9002",
];

/// ufw (default deny incoming, allow 22) with route_localnet=1: only port 22 is reachable, over
/// 127.0.0.1 (TCP), over the LAN address, and by the mapped `::ffff:127.0.0.1` UDP datagram;
/// 9000, 9001 and 9002 are dropped whatever the path.
#[test]
fn ufw_allows_only_port_22_even_with_route_localnet() {
    let name = "ufw_allows_only_port_22_even_with_route_localnet";
    if !require_root(name) || !require_truth_tools(name, &["ufw", "unshare"]) {
        return;
    }
    let mut ledger = Ledger::new("ufw 0.36 allow 22, route_localnet=1");
    let host = UfwHost::start("ufw", &["allow 22"]);
    host.lan.victim_sysctls(&["net.ipv4.conf.all.route_localnet=1"]);
    let rx = Receiver::in_namespace(&host.lan.victim, SOCKETS);
    let mut atk = host.lan.attacker();

    let cases = [
        (Attack::tcp("rl-tcp-22", CLAIM_V4, "127.0.0.1", 22), TruthIs::Delivered),
        (Attack::udp("rl-udp-22", CLAIM_V4, "127.0.0.1", 22), TruthIs::Delivered),
        (
            Attack::tcp("rl-tcp-9000", CLAIM_V4, "127.0.0.1", 9000),
            TruthIs::Dropped,
        ),
        (
            Attack::udp("rl-udp-9001", CLAIM_V4, "127.0.0.1", 9001),
            TruthIs::Dropped,
        ),
        (
            Attack::udp("mapped-9002", "::ffff:127.0.0.1", VICTIM_V6, 9002),
            TruthIs::Dropped,
        ),
        (
            Attack::udp("mapped-22", "::ffff:127.0.0.1", VICTIM_V6, 22),
            TruthIs::DeliveredLoopbackPeer,
        ),
        (Attack::tcp("plain-tcp-22", CLAIM_V4, VICTIM_V4, 22), TruthIs::Delivered),
        (
            Attack::udp("plain-udp-9002", CLAIM_V4, VICTIM_V4, 9002),
            TruthIs::Dropped,
        ),
        (
            Attack::udp("plain6-udp-9002", CLAIM_V6, VICTIM_V6, 9002),
            TruthIs::Dropped,
        ),
    ];
    for (attack, expected) in &cases {
        let drops_before = input_policy_drops(&host.lan.victim);
        let truth = atk.fire(&rx, attack);
        if attack.name == "rl-tcp-9000" {
            // Who dropped it: ufw's INPUT policy counts it (and 127.0.0.1:22 got through with the
            // same sysctls, so the route lookup accepts 127/8 destinations: not a martian).
            let counted = input_policy_drops(&host.lan.victim) - drops_before;
            assert!(
                counted >= 1,
                "ufw's INPUT policy did not count the dropped SYN to 127.0.0.1:9000"
            );
        }
        if truth.delivered() != matches!(expected, TruthIs::Delivered | TruthIs::DeliveredLoopbackPeer) {
            eprintln!("ufw rules:\n{}", host.rules());
        }
        ledger.establish(attack, &truth, *expected);
    }

    let runs = Runs::collect(&host.lan.victim);
    ledger.run_worked("audit", &runs.audit);
    ledger.run_worked("audit --prove", &runs.audit_prove);
    ledger.run_worked("prove", &runs.prove);
    for (name, run) in runs.reports() {
        ledger.expect(
            "5 route-localnet",
            "TCP → 127.0.0.1:22 delivered",
            name,
            run,
            "net.route-localnet",
            None,
            Expect::Open,
        );
        route_localnet_lists_only_port_22(&mut ledger, name, run);
        ledger.expect(
            "5 udp-loopback 9001",
            "UDP → 127.0.0.1:9001 dropped by ufw",
            name,
            run,
            "proto.udp-loopback",
            Some("udp:127.0.0.1:9001"),
            Expect::NotOpen,
        );
        ledger.expect(
            "5 src-trust [::]:9002",
            "::ffff:127.0.0.1 → :9002 dropped by ufw",
            name,
            run,
            "net.loopback-source-trust",
            Some("udp:[::]:9002"),
            Expect::NotOpen,
        );
        ledger.expect(
            "5 wildcard [::]:9002",
            "UDP → 192.0.2.1:9002 and [2001:db8::1]:9002 dropped by ufw",
            name,
            run,
            "bind.wildcard",
            Some("udp:[::]:9002"),
            Expect::NotOpen,
        );
        ledger.expect(
            "5 wildcard 0.0.0.0:22",
            "TCP → 192.0.2.1:22 delivered",
            name,
            run,
            "bind.wildcard",
            Some("tcp:0.0.0.0:22"),
            Expect::Open,
        );
        ledger.expect(
            "6 src-trust [::]:22",
            "::ffff:127.0.0.1 → :22 delivered, loopback peer",
            name,
            run,
            "net.loopback-source-trust",
            Some("udp:[::]:22"),
            Expect::Open,
        );
        ledger.output_rules(name, run);
    }
    let v6_22 = format!("[{VICTIM_V6}]:22");
    let v6_9002 = format!("[{VICTIM_V6}]:9002");
    ledger.lab(
        "5 lab tcp 127:22",
        "TCP → 127.0.0.1:22 delivered",
        &runs.prove,
        true,
        lab_row("tcp", "127.0.0.1:22", None),
    );
    ledger.lab(
        "5 lab tcp 127:9000",
        "TCP → 127.0.0.1:9000 dropped",
        &runs.prove,
        false,
        lab_row("tcp", "127.0.0.1:9000", None),
    );
    ledger.lab(
        "5 lab udp 127:9001",
        "UDP → 127.0.0.1:9001 dropped",
        &runs.prove,
        false,
        lab_row("udp", "127.0.0.1:9001", None),
    );
    ledger.lab(
        "6 lab mapped :22",
        "mapped UDP → :22 delivered",
        &runs.prove,
        true,
        lab_row("udp", &v6_22, None),
    );
    ledger.lab(
        "5 lab mapped :9002",
        "mapped UDP → :9002 dropped",
        &runs.prove,
        false,
        lab_row("udp", &v6_9002, None),
    );
    let martian: Vec<String> = lab_rows(&runs.prove.json, lab_row("tcp", "127.0.0.1:9000", None))
        .iter()
        .flat_map(|r| r["evidence"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .filter(|e| e.contains("martian"))
        .collect();
    let said = if martian.is_empty() {
        "no martian cited".into()
    } else {
        martian.join(" | ")
    };
    let truth = "TCP → 127.0.0.1:9000 dropped by ufw's INPUT policy (its counter moved), not a martian";
    ledger.about_run("9 martian blame", truth, "prove", &runs.prove, said, martian.is_empty());
    ledger.finish();
}

/// Packets dropped by the victim's INPUT policy so far (`Chain INPUT (policy DROP N packets…)`).
fn input_policy_drops(ns: &common::Namespace) -> i64 {
    let out = ns
        .exec(&["iptables", "-L", "INPUT", "-v", "-x", "-n"])
        .expect("iptables -L INPUT");
    out.lines()
        .next()
        .and_then(|l| l.split("policy DROP ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no INPUT DROP policy counter in: {out}"))
}

/// `net.route-localnet` may list only services that a route_localnet packet reaches: the ones
/// on port 22, never 9000 or 9001, which ufw drops.
fn route_localnet_lists_only_port_22(ledger: &mut Ledger, name: &str, run: &Run) {
    let wrong: Vec<String> = run.json["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["check"] == "net.route-localnet" && f["status"] == "open")
        .flat_map(|f| f["evidence"].as_array().cloned().unwrap_or_default())
        .filter_map(|e| e.as_str().map(str::to_string))
        .filter(|e| e.contains("reachable") && (e.contains(":9000") || e.contains(":9001")))
        .collect();
    let said = if wrong.is_empty() {
        "not listed".into()
    } else {
        wrong.join(" | ")
    };
    let truth = "127.0.0.1:9000/9001 dropped by ufw ⇒ not listed as reachable";
    ledger.about_run("5 route-localnet list", truth, name, run, said, wrong.is_empty());
}
