//! Truth on nftables rulesets built from concatenations (review 8, items 5 and 7).
//!
//! 1. A kube-proxy node in nftables mode (`fixtures/firewall/scenarios/kube-proxy-nftables-nodeport`:
//!    kube-proxy's generated `table ip kube-proxy`, dispatching with `ip daddr . meta l4proto .
//!    th dport vmap @service-ips`, one NodePort 30080 → pod 198.51.100.5:80 on `cni0`) with a
//!    stale `route_localnet=1` and node-local services on 127.0.0.1.
//! 2. A hand-written input policy (`fixtures/firewall/scenarios/nft-tcp-concat-set`) whose only
//!    unusual rule is `ip saddr . tcp dport @trusted accept` — a set only TCP can match — next to
//!    `udp dport 8125 accept` and a drop policy.
//!
//! How the truth is established: the independent scapy attacker (`tests/real/attacker.py`) in
//! the neighbour namespace sends hand-built frames to the victim's MAC (TCP handshakes with data,
//! UDP datagrams, spoofed `::ffff:127.0.0.1` sources) and `tests/real/receiver.py` — on the node
//! and in the pod's namespace — logs which tokens arrived and the peer the application saw.
//!
//! What loopwarden must say: wherever the attacks decide, no `unknown`: on the kube-proxy node
//! route-localnet and udp-loopback are open (proven with `--prove`, at the static severity, so
//! `--fail-on critical` fails) and there is no open or unknown NAT finding (127.0.0.1:30080 is
//! not translated); with the TCP-only set, every UDP verdict follows the attacks.

mod common;

use common::real::*;
use common::require_root;

/// kube-proxy (nftables mode) with a stale route_localnet: the NodePort on the node's address
/// reaches the pod, 127.0.0.1:30080 does not (the nftables mode has no localhost NodePorts), the
/// node's loopback services are reachable from the LAN.
#[test]
fn kube_proxy_nftables_mode_with_stale_route_localnet() {
    let name = "kube_proxy_nftables_mode_with_stale_route_localnet";
    if !require_root(name) || !require_truth_tools(name, &["nft"]) {
        return;
    }
    let mut ledger = Ledger::new("kube-proxy nftables mode, stale route_localnet=1");
    let lan = Lan::new("kpnft", Ipv6::Global);
    run_scenario(&lan.victim, "kube-proxy-nftables-nodeport");
    let pod = attach_to_bridge(&lan.victim, "cni0", "pod", "198.51.100.5", "198.51.100.1");
    let ports = bridge_ports(&lan.victim, "cni0");
    let pod_rx = Receiver::in_namespace(&pod, &["tcp:0.0.0.0:80"]);
    let node_rx = Receiver::in_namespace(
        &lan.victim,
        &["tcp:127.0.0.1:10249", "tcp:127.0.0.1:10248", "udp:127.0.0.1:8125"],
    );
    let mut atk = lan.attacker();

    let nodeport = Attack::tcp("np-tcp-30080", CLAIM_V4, VICTIM_V4, 30080);
    let t = atk.fire(&pod_rx, &nodeport);
    ledger.establish(&nodeport, &t, TruthIs::Delivered);
    let localhost_np = Attack::tcp("lo-np-tcp-30080", CLAIM_V4, "127.0.0.1", 30080);
    let t = atk.fire(&pod_rx, &localhost_np);
    ledger.establish(&localhost_np, &t, TruthIs::Dropped);
    for (attack, expected) in [
        (
            Attack::tcp("rl-tcp-10249", CLAIM_V4, "127.0.0.1", 10249),
            TruthIs::Delivered,
        ),
        (
            Attack::udp("rl-udp-8125", CLAIM_V4, "127.0.0.1", 8125),
            TruthIs::Delivered,
        ),
    ] {
        let t = atk.fire(&node_rx, &attack);
        ledger.establish(&attack, &t, expected);
    }

    let runs = Runs::collect(&lan.victim);
    let fail_on = loopwarden_in(&lan.victim, &["audit", "--prove", "--fail-on", "critical", "--json"]);
    ledger.run_worked("5 audit", &runs.audit);
    ledger.run_worked("5 audit --prove", &runs.audit_prove);
    ledger.run_worked("5 prove", &runs.prove);
    for (name, run) in runs.reports() {
        ledger.expect(
            "5 route-localnet",
            "LAN → 127.0.0.1:10249 (TCP) and :8125 (UDP) delivered",
            name,
            run,
            "net.route-localnet",
            None,
            Expect::Open,
        );
        ledger.expect(
            "5 udp-loopback 8125",
            "LAN UDP → 127.0.0.1:8125 delivered",
            name,
            run,
            "proto.udp-loopback",
            Some("udp:127.0.0.1:8125"),
            Expect::Open,
        );
        ledger.expect_nowhere_open(
            "5 no dnat 127.0.0.1",
            "LAN → 127.0.0.1:30080 never reaches the pod (only 192.0.2.1:30080 is a NodePort)",
            name,
            run,
            "net.dnat-loopback",
        );
        ledger.output_rules(name, run);
        ledger.member_ports_not_ingress("member port", name, run, &ports);
    }
    ledger.member_ports_not_ingress("member port", "prove", &runs.prove, &ports);
    ledger.expect(
        "5 route-localnet",
        "LAN → 127.0.0.1:10249 and :8125 delivered",
        "audit --prove",
        &runs.audit_prove,
        "net.route-localnet",
        None,
        Expect::OpenProven,
    );
    ledger.expect(
        "5 udp-loopback 8125",
        "LAN UDP → 127.0.0.1:8125 delivered",
        "audit --prove",
        &runs.audit_prove,
        "proto.udp-loopback",
        Some("udp:127.0.0.1:8125"),
        Expect::OpenProven,
    );
    ledger.record(
        "7 --fail-on critical",
        "route_localnet reaches a service (critical) ⇒ exit 1",
        fail_on.summary(),
        fail_on.code == Some(1),
    );
    let p = &runs.prove;
    ledger.lab(
        "5 lab tcp 10249",
        "LAN TCP → 127.0.0.1:10249 delivered",
        p,
        true,
        lab_row("tcp", "127.0.0.1:10249", Some("eth0")),
    );
    ledger.lab(
        "5 lab udp 8125",
        "LAN UDP → 127.0.0.1:8125 delivered",
        p,
        true,
        lab_row("udp", "127.0.0.1:8125", Some("eth0")),
    );
    ledger.lab(
        "5 lab 127.0.0.1:30080",
        "LAN TCP → 127.0.0.1:30080 not translated, not delivered",
        p,
        false,
        lab_row("tcp", "127.0.0.1:30080", None),
    );

    // The severity an open finding gets when the static audit itself says open: the same host
    // without kube-proxy's table, where nothing stands between route_localnet and the services.
    lan.victim
        .exec(&["nft", "delete", "table", "ip", "kube-proxy"])
        .expect("remove kube-proxy's table");
    let bare = loopwarden_in(&lan.victim, &["audit", "--json"]);
    for (check, service) in [
        ("net.route-localnet", None),
        ("proto.udp-loopback", Some("udp:127.0.0.1:8125")),
    ] {
        ledger.severity_as_static(
            "7 severity",
            "audit without kube-proxy's table",
            &bare,
            "audit --prove",
            &runs.audit_prove,
            check,
            service,
        );
    }
    ledger.finish();
}

/// A TCP-only concatenated set (`ip saddr . tcp dport @trusted accept`) in a drop policy next to
/// `udp dport 8125 accept`: UDP 8125 is reachable by every path, UDP 9000/9001 by none, and the
/// set matches only its TCP element.
#[test]
fn tcp_only_concatenated_set_does_not_blur_udp() {
    let name = "tcp_only_concatenated_set_does_not_blur_udp";
    if !require_root(name) || !require_truth_tools(name, &["nft"]) {
        return;
    }
    let mut ledger = Ledger::new("nft ip saddr . tcp dport @trusted, udp dport 8125 accept, route_localnet=1");
    let lan = Lan::new("concat", Ipv6::Global);
    run_scenario(&lan.victim, "nft-tcp-concat-set");
    let rx = Receiver::in_namespace(
        &lan.victim,
        &[
            "udp:127.0.0.1:8125",
            "udp:127.0.0.1:9000",
            "udp:[::]:8125",
            "udp:[::]:9001",
            "tcp:127.0.0.1:8002",
            "tcp:127.0.0.1:8003",
        ],
    );
    let mut atk = lan.attacker();
    let cases = [
        (
            Attack::udp("rl-udp-8125", CLAIM_V4, "127.0.0.1", 8125),
            TruthIs::Delivered,
        ),
        (
            Attack::udp("rl-udp-9000", CLAIM_V4, "127.0.0.1", 9000),
            TruthIs::Dropped,
        ),
        (
            Attack::udp("mapped-8125", "::ffff:127.0.0.1", VICTIM_V6, 8125),
            TruthIs::DeliveredLoopbackPeer,
        ),
        (
            Attack::udp("mapped-9001", "::ffff:127.0.0.1", VICTIM_V6, 9001),
            TruthIs::Dropped,
        ),
        (
            Attack::udp("plain-udp-8125", CLAIM_V4, VICTIM_V4, 8125),
            TruthIs::Delivered,
        ),
        (
            Attack::udp("plain-udp-9001", CLAIM_V4, VICTIM_V4, 9001),
            TruthIs::Dropped,
        ),
        (
            Attack::udp("plain6-udp-9001", CLAIM_V6, VICTIM_V6, 9001),
            TruthIs::Dropped,
        ),
        (
            Attack::tcp("rl-tcp-8002", CLAIM_V4, "127.0.0.1", 8002),
            TruthIs::Delivered,
        ),
        (
            Attack::tcp("rl-tcp-8003", CLAIM_V4, "127.0.0.1", 8003),
            TruthIs::Dropped,
        ),
    ];
    for (attack, expected) in &cases {
        let t = atk.fire(&rx, attack);
        ledger.establish(attack, &t, *expected);
    }

    let runs = Runs::collect(&lan.victim);
    ledger.run_worked("5 audit", &runs.audit);
    ledger.run_worked("5 audit --prove", &runs.audit_prove);
    ledger.run_worked("5 prove", &runs.prove);
    let open = [
        (
            "5 udp-loopback 8125",
            "LAN UDP → 127.0.0.1:8125 delivered",
            "proto.udp-loopback",
            "udp:127.0.0.1:8125",
        ),
        (
            "5 src-trust [::]:8125",
            "::ffff:127.0.0.1 → [2001:db8::1]:8125 delivered, loopback peer",
            "net.loopback-source-trust",
            "udp:[::]:8125",
        ),
        (
            "5 wildcard [::]:8125",
            "LAN UDP → 192.0.2.1:8125 delivered",
            "bind.wildcard",
            "udp:[::]:8125",
        ),
    ];
    let closed = [
        (
            "5 udp-loopback 9000",
            "LAN UDP → 127.0.0.1:9000 dropped (policy)",
            "proto.udp-loopback",
            "udp:127.0.0.1:9000",
        ),
        (
            "5 src-trust [::]:9001",
            "::ffff:127.0.0.1 → [2001:db8::1]:9001 dropped (policy)",
            "net.loopback-source-trust",
            "udp:[::]:9001",
        ),
        (
            "5 wildcard [::]:9001",
            "UDP → 192.0.2.1:9001 and [2001:db8::1]:9001 dropped (policy)",
            "bind.wildcard",
            "udp:[::]:9001",
        ),
    ];
    for (name, run) in runs.reports() {
        for (case, truth, check, service) in open {
            ledger.expect(case, truth, name, run, check, Some(service), Expect::Open);
        }
        for (case, truth, check, service) in closed {
            ledger.expect(case, truth, name, run, check, Some(service), Expect::NotOpen);
        }
        ledger.expect(
            "5 route-localnet",
            "LAN → 127.0.0.1:8125 (UDP) and :8002 (TCP) delivered",
            name,
            run,
            "net.route-localnet",
            None,
            Expect::Open,
        );
        ledger.expect_absent(
            "4 no dnat",
            "no NAT rule (udp 8125 is bound on 127.0.0.1 and [::])",
            name,
            run,
            "net.dnat-loopback",
        );
        ledger.output_rules(name, run);
    }
    let p = &runs.prove;
    let v6 = |port: u16| format!("[{VICTIM_V6}]:{port}");
    for (case, truth, proto, dst, delivered) in [
        (
            "5 lab udp 8125",
            "LAN UDP → 127.0.0.1:8125 delivered",
            "udp",
            "127.0.0.1:8125".to_string(),
            true,
        ),
        (
            "5 lab udp 9000",
            "LAN UDP → 127.0.0.1:9000 dropped",
            "udp",
            "127.0.0.1:9000".to_string(),
            false,
        ),
        (
            "5 lab mapped 8125",
            "mapped UDP → :8125 delivered",
            "udp",
            v6(8125),
            true,
        ),
        (
            "5 lab mapped 9001",
            "mapped UDP → :9001 dropped",
            "udp",
            v6(9001),
            false,
        ),
        (
            "5 lab tcp 8003",
            "LAN TCP → 127.0.0.1:8003 dropped",
            "tcp",
            "127.0.0.1:8003".to_string(),
            false,
        ),
    ] {
        ledger.lab(case, truth, p, delivered, lab_row(proto, &dst, Some("eth0")));
    }
    ledger.finish();
}
