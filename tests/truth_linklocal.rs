//! Truth on a LAN host with IPv4 and only a link-local IPv6 address (issue 8, item 8): the
//! victim's `eth0` has 192.0.2.1/24 and the kernel's `fe80::` address, no global IPv6, no
//! firewall, default sysctls; services on udp `[::]:7008` (dual-stack), udp `[::]:7009`
//! (`IPV6_V6ONLY`) and udp 127.0.0.1:7003. The fixture `linklocal-only-ipv6` captures the shape.
//!
//! How the truth is established: the independent scapy attacker (`tests/real/attacker.py`) in
//! the neighbour namespace sends datagrams to the victim's MAC and its `fe80::` address with a
//! spoofed `::ffff:127.0.0.1` source (the ntpd CVE-2014-9298 shape, moved to the mapped source
//! that Linux 6.x still delivers) and with `::1` (dropped by the kernel);
//! `tests/real/receiver.py` logs which arrived and the peer the application saw.

mod common;

use common::real::*;
use common::require_root;

const SOCKETS: &[&str] = &["udp:[::]:7008", "udp6only:[::]:7009", "udp:127.0.0.1:7003"];

/// A lab row aimed at a link-local destination on `port`.
fn link_local_row(port: u16) -> impl Fn(&serde_json::Value) -> bool + Copy {
    move |r: &serde_json::Value| {
        r["protocol"].as_str().is_some_and(|p| p.eq_ignore_ascii_case("udp"))
            && r["destination"]
                .as_str()
                .is_some_and(|d| d.starts_with("[fe80:") && d.ends_with(&format!("]:{port}")))
    }
}

/// Link-local-only host: the mapped `::ffff:127.0.0.1` datagram to the `fe80::` address reaches
/// both `[::]` sockets with a loopback peer; `::1` does not. The lab must fire IPv6 attacks at
/// the link-local address and prove it.
#[test]
fn link_local_only_host_gets_the_mapped_datagram() {
    let name = "link_local_only_host_gets_the_mapped_datagram";
    if !require_root(name) || !require_truth_tools(name, &[]) {
        return;
    }
    let mut ledger = Ledger::new("link-local-only IPv6 host");
    let lan = Lan::new("ll", Ipv6::LinkLocalOnly);
    let ll = lan.victim_link_local.clone();
    let rx = Receiver::in_namespace(&lan.victim, SOCKETS);
    let mut atk = lan.attacker();
    let cases = [
        (
            Attack::udp("mapped-ll-7008", "::ffff:127.0.0.1", &ll, 7008),
            TruthIs::DeliveredLoopbackPeer,
        ),
        (
            Attack::udp("mapped-ll-7009", "::ffff:127.0.0.1", &ll, 7009),
            TruthIs::DeliveredLoopbackPeer,
        ),
        (Attack::udp("lo6-ll-7008", "::1", &ll, 7008), TruthIs::Dropped),
        (
            Attack::udp("rl-udp-7003", CLAIM_V4, "127.0.0.1", 7003),
            TruthIs::Dropped,
        ),
    ];
    for (attack, expected) in &cases {
        let t = atk.fire(&rx, attack);
        ledger.establish(attack, &t, *expected);
    }

    let runs = Runs::collect(&lan.victim);
    ledger.run_worked("8 audit", &runs.audit);
    ledger.run_worked("8 audit --prove", &runs.audit_prove);
    ledger.run_worked("8 prove", &runs.prove);
    for service in ["udp:[::]:7008", "udp:[::]:7009"] {
        let truth = format!("::ffff:127.0.0.1 → [{ll}]:{} delivered, loopback peer", &service[9..]);
        ledger.expect(
            "8 src-trust",
            &truth,
            "audit",
            &runs.audit,
            "net.loopback-source-trust",
            Some(service),
            Expect::Open,
        );
        ledger.expect(
            "8 src-trust",
            &truth,
            "audit --prove",
            &runs.audit_prove,
            "net.loopback-source-trust",
            Some(service),
            Expect::OpenProven,
        );
    }
    for (name, run) in runs.reports() {
        ledger.expect(
            "udp-loopback 7003",
            "UDP → 127.0.0.1:7003 dropped (route_localnet 0)",
            name,
            run,
            "proto.udp-loopback",
            Some("udp:127.0.0.1:7003"),
            Expect::NotOpen,
        );
        ledger.output_rules(name, run);
    }
    ledger.lab(
        "8 lab mapped → fe80 :7008",
        "mapped UDP → fe80:7008 delivered",
        &runs.prove,
        true,
        link_local_row(7008),
    );
    ledger.lab(
        "8 lab mapped → fe80 :7009",
        "mapped UDP → fe80:7009 delivered",
        &runs.prove,
        true,
        link_local_row(7009),
    );
    ledger.finish();
}
