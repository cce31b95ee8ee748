//! Truth on a host with a hand-written native nftables NAT table (issue 8, item 7): the victim
//! namespace is loaded with `fixtures/firewall/scenarios/nft-native-nat-to-loopback` — `table ip
//! nat` with a `type nat hook prerouting priority dstnat` chain (the nftables wiki's layout)
//! sending the LAN's TCP 8080 and UDP 8125 to `dnat to 127.0.0.1:7001` / `:7003`, and
//! route_localnet=1 on eth0. `iptables-nft-save` cannot show that table ("incompatible
//! base-chains"): the truth test checks it says so, so the scenario really is the one the issue
//! describes.
//!
//! How the truth is established: the independent scapy attacker (`tests/real/attacker.py`) in
//! the neighbour namespace completes a TCP handshake with data to 192.0.2.1:8080 and sends a
//! datagram to 192.0.2.1:8125; `tests/real/receiver.py`, listening on 127.0.0.1:7001 and
//! 127.0.0.1:7003 in the victim, logs both tokens with the attacker as peer. Then route_localnet
//! is set back to 0 and the same attacks are dropped (a DNAT to loopback needs it): loopwarden is
//! compared with both states.

mod common;

use common::real::*;
use common::require_root;

const SOCKETS: &[&str] = &["tcp:127.0.0.1:7001", "udp:127.0.0.1:7003"];

/// Native nft DNAT to 127.0.0.1: delivered from the LAN with route_localnet=1 on eth0, dropped
/// with 0; `net.dnat-loopback` must follow, whatever `iptables-nft-save` prints.
#[test]
fn native_nft_dnat_to_loopback_is_seen() {
    let name = "native_nft_dnat_to_loopback_is_seen";
    if !require_root(name) || !require_truth_tools(name, &["nft", "iptables-nft-save"]) {
        return;
    }
    let mut ledger = Ledger::new("native nft table ip nat → 127.0.0.1");
    let lan = Lan::new("nftnat", Ipv6::Global);
    run_scenario(&lan.victim, "nft-native-nat-to-loopback");
    let save = lan
        .victim
        .command(&["iptables-nft-save", "-t", "nat"])
        .output()
        .expect("iptables-nft-save");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&save.stdout),
        String::from_utf8_lossy(&save.stderr)
    );
    assert!(
        said.contains("incompatible"),
        "the scenario should make iptables-nft-save refuse the native nat table, but it printed:\n{said}"
    );
    let rx = Receiver::in_namespace(&lan.victim, SOCKETS);
    let mut atk = lan.attacker();
    let tcp = Attack::tcp("nat-tcp-8080", CLAIM_V4, VICTIM_V4, 8080);
    let udp = Attack::udp("nat-udp-8125", CLAIM_V4, VICTIM_V4, 8125);

    let t = atk.fire(&rx, &tcp);
    ledger.establish(&tcp, &t, TruthIs::Delivered);
    let t = atk.fire(&rx, &udp);
    ledger.establish(&udp, &t, TruthIs::Delivered);
    let open = Runs::collect(&lan.victim);
    ledger.run_worked("7 audit", &open.audit);
    ledger.run_worked("7 audit --prove", &open.audit_prove);
    ledger.run_worked("7 prove", &open.prove);
    for (name, run) in open.reports() {
        for (service, truth) in [
            ("tcp:127.0.0.1:7001", "LAN TCP → :8080 DNAT → 127.0.0.1:7001 delivered"),
            ("udp:127.0.0.1:7003", "LAN UDP → :8125 DNAT → 127.0.0.1:7003 delivered"),
        ] {
            ledger.expect(
                "7 dnat (rl=1)",
                truth,
                name,
                run,
                "net.dnat-loopback",
                Some(service),
                Expect::Open,
            );
        }
        ledger.expect(
            "7 udp-loopback (rl=1)",
            "LAN UDP → :8125 DNAT → 127.0.0.1:7003 delivered",
            name,
            run,
            "proto.udp-loopback",
            Some("udp:127.0.0.1:7003"),
            Expect::Open,
        );
        ledger.output_rules(name, run);
    }
    let v4_8080 = format!("{VICTIM_V4}:8080");
    let v4_8125 = format!("{VICTIM_V4}:8125");
    ledger.lab(
        "7 lab tcp :8080 (rl=1)",
        "TCP → :8080 delivered",
        &open.prove,
        true,
        lab_row("tcp", &v4_8080, None),
    );
    ledger.lab(
        "7 lab udp :8125 (rl=1)",
        "UDP → :8125 delivered",
        &open.prove,
        true,
        lab_row("udp", &v4_8125, None),
    );

    lan.victim_sysctls(&[
        "net.ipv4.conf.eth0.route_localnet=0",
        "net.ipv4.conf.all.route_localnet=0",
    ]);
    lan.victim
        .exec(&["ip", "route", "flush", "cache"])
        .expect("flush route cache");
    let t = atk.fire(&rx, &tcp);
    ledger.establish(&tcp, &t, TruthIs::Dropped);
    let t = atk.fire(&rx, &udp);
    ledger.establish(&udp, &t, TruthIs::Dropped);
    let closed = Runs::collect(&lan.victim);
    for (name, run) in closed.reports() {
        for (service, truth) in [
            ("tcp:127.0.0.1:7001", "LAN TCP → :8080 dropped (route_localnet 0)"),
            ("udp:127.0.0.1:7003", "LAN UDP → :8125 dropped (route_localnet 0)"),
        ] {
            ledger.expect(
                "7 dnat (rl=0)",
                truth,
                name,
                run,
                "net.dnat-loopback",
                Some(service),
                Expect::NotOpen,
            );
        }
        ledger.expect(
            "udp-loopback (rl=0)",
            "every UDP path to 127.0.0.1:7003 dropped",
            name,
            run,
            "proto.udp-loopback",
            Some("udp:127.0.0.1:7003"),
            Expect::NotOpen,
        );
    }
    ledger.lab(
        "7 lab tcp :8080 (rl=0)",
        "TCP → :8080 dropped",
        &closed.prove,
        false,
        lab_row("tcp", &v4_8080, None),
    );
    ledger.lab(
        "7 lab udp :8125 (rl=0)",
        "UDP → :8125 dropped",
        &closed.prove,
        false,
        lab_row("udp", &v4_8125, None),
    );
    ledger.finish();
}
