//! Truth on hosts whose firewall trusts one LAN address (review 8, item 2): an input policy that
//! drops everything except traffic from 192.0.2.10 (a backup or monitoring host), with
//! route_localnet=1 on the LAN interface — once written in nft (`ip saddr 192.0.2.10 accept`,
//! `fixtures/firewall/scenarios/nft-trusted-lan-source`) and once with Debian's real ufw 0.36
//! (`ufw allow from 192.0.2.10`, see `common/ufw.rs`). Services on udp 127.0.0.1:8125 and tcp
//! 127.0.0.1:8000.
//!
//! How the truth is established: the independent scapy attacker (`tests/real/attacker.py`) in
//! the neighbour namespace impersonates the trusted host — it writes 192.0.2.10 as the source and
//! answers the victim's ARP for it (the victim asks "who-has 192.0.2.10 tell 127.0.0.1", which
//! a real attacker answers), so it gets the datagram through and completes TCP handshakes with
//! data — while the same packets from its own address 192.0.2.200 are dropped.
//! `tests/real/receiver.py` logs which tokens arrived. Every neighbour on the segment can do
//! this: trust by address is no trust against route_localnet.
//!
//! What loopwarden must say: route-localnet and udp-loopback open (the lab must not refute them
//! with an attack from an untrusted address and call that blocked · proven), and a lab row
//! delivered where the attack was.

mod common;

use common::real::*;
use common::require_root;
use common::ufw::UfwHost;

/// The LAN address the firewall trusts.
const TRUSTED: &str = "192.0.2.10";
const SOCKETS: &[&str] = &["udp:127.0.0.1:8125", "tcp:127.0.0.1:8000"];

/// Fires the spoofed and the plain attacks, asserts the truth, runs loopwarden and compares.
fn trusted_source_case(ledger: &mut Ledger, lan: &Lan) {
    let rx = Receiver::in_namespace(&lan.victim, SOCKETS);
    let mut atk = lan.attacker_claiming(&[TRUSTED]);
    let cases = [
        (
            Attack::udp("trusted-udp-8125", TRUSTED, "127.0.0.1", 8125),
            TruthIs::Delivered,
        ),
        (
            Attack::tcp("trusted-tcp-8000", TRUSTED, "127.0.0.1", 8000),
            TruthIs::Delivered,
        ),
        (
            Attack::udp("plain-udp-8125", CLAIM_V4, "127.0.0.1", 8125),
            TruthIs::Dropped,
        ),
        (
            Attack::tcp("plain-tcp-8000", CLAIM_V4, "127.0.0.1", 8000),
            TruthIs::Dropped,
        ),
    ];
    for (attack, expected) in &cases {
        let t = atk.fire(&rx, attack);
        ledger.establish(attack, &t, *expected);
    }

    let runs = Runs::collect(&lan.victim);
    ledger.run_worked("2 audit", &runs.audit);
    ledger.run_worked("2 audit --prove", &runs.audit_prove);
    ledger.run_worked("2 prove", &runs.prove);
    for (name, run) in runs.reports() {
        ledger.expect(
            "2 route-localnet",
            "neighbour as 192.0.2.10 → 127.0.0.1:8125/8000 delivered",
            name,
            run,
            "net.route-localnet",
            None,
            Expect::Open,
        );
        ledger.expect(
            "2 udp-loopback 8125",
            "neighbour as 192.0.2.10 → UDP 127.0.0.1:8125 delivered",
            name,
            run,
            "proto.udp-loopback",
            Some("udp:127.0.0.1:8125"),
            Expect::Open,
        );
        ledger.output_rules(name, run);
    }
    for (proto, dst) in [("udp", "127.0.0.1:8125"), ("tcp", "127.0.0.1:8000")] {
        ledger.lab(
            "2 lab trusted source",
            &format!("{proto} 192.0.2.10 → {dst} delivered (spoofed trusted source)"),
            &runs.prove,
            true,
            lab_row(proto, dst, Some("eth0")),
        );
    }
}

/// nft `ip saddr 192.0.2.10 accept` in a drop policy, route_localnet=1: a neighbour posing as
/// 192.0.2.10 reaches the loopback services.
#[test]
fn nft_trusted_lan_source_is_spoofable_with_route_localnet() {
    let name = "nft_trusted_lan_source_is_spoofable_with_route_localnet";
    if !require_root(name) || !require_truth_tools(name, &["nft"]) {
        return;
    }
    let mut ledger = Ledger::new("nft ip saddr 192.0.2.10 accept, route_localnet=1");
    let lan = Lan::new("trustnft", Ipv6::Global);
    run_scenario(&lan.victim, "nft-trusted-lan-source");
    trusted_source_case(&mut ledger, &lan);
    ledger.finish();
}

/// Real ufw 0.36, `ufw allow from 192.0.2.10` (default deny incoming), route_localnet=1: a
/// neighbour posing as 192.0.2.10 reaches the loopback services.
#[test]
fn ufw_allow_from_one_address_is_spoofable_with_route_localnet() {
    let name = "ufw_allow_from_one_address_is_spoofable_with_route_localnet";
    if !require_root(name) || !require_truth_tools(name, &["ufw", "unshare"]) {
        return;
    }
    let mut ledger = Ledger::new("ufw 0.36 allow from 192.0.2.10, route_localnet=1");
    let host = UfwHost::start("trustufw", &["allow from 192.0.2.10"]);
    host.lan.victim_sysctls(&["net.ipv4.conf.eth0.route_localnet=1"]);
    let rules = host.rules();
    assert!(
        rules.contains("-s 192.0.2.10/32 -j ACCEPT") || rules.contains("-s 192.0.2.10 -j ACCEPT"),
        "ufw should have written an accept for 192.0.2.10:\n{rules}"
    );
    trusted_source_case(&mut ledger, &host.lan);
    ledger.finish();
}
