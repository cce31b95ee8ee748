//! Truth on a host without NAT (review 8, item 4 and item 7): route_localnet=1 on the LAN
//! interface, no firewall and no NAT rule at all, and ntpd / dnsmasq / avahi-style services that
//! bind the same port twice — UDP 123 on 127.0.0.1 *and* 0.0.0.0, UDP 5353 on 127.0.0.1 *and*
//! `[::]`, TCP 53 on 127.0.0.1 *and* the LAN address.
//!
//! How the truth is established: the independent scapy attacker (`tests/real/attacker.py`) in
//! the neighbour namespace sends datagrams to 127.0.0.1 (route_localnet), a `127.0.0.2`-sourced
//! one to the LAN address, a `::ffff:127.0.0.1`-sourced one to the global IPv6 address, and a TCP
//! handshake with data to 127.0.0.1:53; `tests/real/receiver.py` logs which socket got each
//! token and the peer the application saw. Before loopwarden runs, the test checks that the
//! victim really has no NAT rule (`nft list ruleset`, `iptables-save -t nat`).
//!
//! What loopwarden must say: route-localnet and udp-loopback open (proven with `--prove`, at the
//! severity the static audit gives them), no `net.dnat-loopback` finding and no lab NAT attack —
//! there is no NAT to publish anything.

mod common;

use common::real::*;
use common::require_root;

const SOCKETS: &[&str] = &[
    "udp:127.0.0.1:123",
    "udp:0.0.0.0:123",
    "udp:127.0.0.1:5353",
    "udp:[::]:5353",
    "tcp:127.0.0.1:53",
    "tcp:192.0.2.1:53",
];

/// The same UDP port on 127.0.0.1 and on the wildcard, route_localnet=1, no NAT: LAN datagrams to
/// 127.0.0.1 reach the loopback sockets, spoofed loopback sources reach the wildcard ones, and
/// loopwarden must not invent a NAT rule to explain it.
#[test]
fn same_port_on_loopback_and_wildcard_without_nat() {
    let name = "same_port_on_loopback_and_wildcard_without_nat";
    if !require_root(name) || !require_truth_tools(name, &["nft", "iptables-save"]) {
        return;
    }
    let mut ledger = Ledger::new("no NAT, same port on 127.0.0.1 and wildcard, route_localnet=1");
    let lan = Lan::new("sameport", Ipv6::Global);
    lan.victim_sysctls(&["net.ipv4.conf.eth0.route_localnet=1"]);
    let nat_rules = format!(
        "{}{}",
        lan.victim.exec(&["nft", "list", "ruleset"]).unwrap_or_default(),
        lan.victim.exec(&["iptables-save", "-t", "nat"]).unwrap_or_default()
    );
    assert!(
        !nat_rules.contains("dnat") && !nat_rules.contains("DNAT") && !nat_rules.contains("redirect"),
        "the scenario must have no NAT rule, but the victim has:\n{nat_rules}"
    );
    let rx = Receiver::in_namespace(&lan.victim, SOCKETS);
    let mut atk = lan.attacker();

    let cases = [
        (
            Attack::udp("rl-udp-123", CLAIM_V4, "127.0.0.1", 123),
            TruthIs::Delivered,
            "udp:127.0.0.1:123",
        ),
        (
            Attack::udp("rl-udp-5353", CLAIM_V4, "127.0.0.1", 5353),
            TruthIs::Delivered,
            "udp:127.0.0.1:5353",
        ),
        (
            Attack::tcp("rl-tcp-53", CLAIM_V4, "127.0.0.1", 53),
            TruthIs::Delivered,
            "tcp:127.0.0.1:53",
        ),
        (
            Attack::udp("src127002-123", "127.0.0.2", VICTIM_V4, 123),
            TruthIs::DeliveredLoopbackPeer,
            "udp:0.0.0.0:123",
        ),
        (
            Attack::udp("mapped-5353", "::ffff:127.0.0.1", VICTIM_V6, 5353),
            TruthIs::DeliveredLoopbackPeer,
            "udp:[::]:5353",
        ),
    ];
    for (attack, expected, socket) in &cases {
        let t = atk.fire(&rx, attack);
        ledger.establish(attack, &t, *expected);
        // Which of the two sockets on the port got it is part of the truth: the kernel picks the
        // more specific bind (127.0.0.1) for 127.0.0.1, the wildcard for everything else.
        let Truth::Delivered { socket: got, .. } = &t else {
            unreachable!()
        };
        assert_eq!(
            got,
            socket,
            "{}: delivered to another socket than expected",
            attack.describe()
        );
    }

    let runs = Runs::collect(&lan.victim);
    ledger.run_worked("audit", &runs.audit);
    ledger.run_worked("audit --prove", &runs.audit_prove);
    ledger.run_worked("prove", &runs.prove);
    for (name, run) in runs.reports() {
        ledger.expect_absent(
            "4 no dnat",
            "no NAT rule exists (nft and iptables-save show none)",
            name,
            run,
            "net.dnat-loopback",
        );
        ledger.expect(
            "4 route-localnet",
            "LAN → 127.0.0.1:123/5353/53 delivered",
            name,
            run,
            "net.route-localnet",
            None,
            Expect::Open,
        );
        for service in ["udp:127.0.0.1:123", "udp:127.0.0.1:5353"] {
            ledger.expect(
                "4 udp-loopback",
                format!("LAN UDP → {} delivered to it", &service[4..]),
                name,
                run,
                "proto.udp-loopback",
                Some(service),
                Expect::Open,
            );
        }
        ledger.expect(
            "src-trust 0.0.0.0:123",
            "127.0.0.2 → 192.0.2.1:123 delivered to 0.0.0.0:123, loopback peer",
            name,
            run,
            "net.loopback-source-trust",
            Some("udp:0.0.0.0:123"),
            Expect::Open,
        );
        ledger.expect(
            "src-trust [::]:5353",
            "::ffff:127.0.0.1 → [2001:db8::1]:5353 delivered, loopback peer",
            name,
            run,
            "net.loopback-source-trust",
            Some("udp:[::]:5353"),
            Expect::Open,
        );
        ledger.output_rules(name, run);
    }
    ledger.expect(
        "4 route-localnet",
        "LAN → 127.0.0.1:123/5353/53 delivered",
        "audit --prove",
        &runs.audit_prove,
        "net.route-localnet",
        None,
        Expect::OpenProven,
    );
    for service in ["udp:127.0.0.1:123", "udp:127.0.0.1:5353"] {
        ledger.expect(
            "4 udp-loopback",
            format!("LAN UDP → {} delivered to it", &service[4..]),
            "audit --prove",
            &runs.audit_prove,
            "proto.udp-loopback",
            Some(service),
            Expect::OpenProven,
        );
        ledger.severity_as_static(
            "7 severity",
            "audit",
            &runs.audit,
            "audit --prove",
            &runs.audit_prove,
            "proto.udp-loopback",
            Some(service),
        );
    }
    ledger.severity_as_static(
        "7 severity",
        "audit",
        &runs.audit,
        "audit --prove",
        &runs.audit_prove,
        "net.route-localnet",
        None,
    );
    let nat = lab_attacks(&runs.prove.json, "nat.");
    let said = if nat.is_empty() {
        "no NAT attack".to_string()
    } else {
        nat.join(" | ")
    };
    ledger.about_run(
        "4 lab: no NAT attack",
        "no NAT rule exists ⇒ the lab fires no nat.* attack",
        "prove",
        &runs.prove,
        said,
        nat.is_empty(),
    );
    for (proto, dst) in [
        ("udp", "127.0.0.1:123"),
        ("udp", "127.0.0.1:5353"),
        ("tcp", "127.0.0.1:53"),
    ] {
        ledger.lab(
            "4 lab route-localnet",
            &format!("LAN {proto} → {dst} delivered"),
            &runs.prove,
            true,
            lab_row(proto, dst, Some("eth0")),
        );
    }
    ledger.finish();
}
