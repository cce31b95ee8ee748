//! Truth on a kube-proxy node (issue 8, items 1, 4, 9): the victim namespace is loaded with
//! `fixtures/firewall/scenarios/kube-proxy-coredns-nodeports` (kube-proxy's iptables ruleset in
//! its own format — see that README — with KUBE-FIREWALL, CoreDNS's 53/udp, 53/tcp and 9153/tcp
//! DNATed to one pod, a UDP and a TCP NodePort, route_localnet=1), and two pods (namespaces on
//! the `cni0` bridge) run the backends.
//!
//! How the truth is established: the independent scapy attacker (`tests/real/attacker.py`) in
//! the neighbour namespace sends hand-built frames to the node's MAC: a TCP handshake with data
//! to the localhost NodePorts 127.0.0.1:30080 and :30054 and a datagram to 127.0.0.1:30053 (all reach
//! the pods: KUBE-FIREWALL exempts `ctstate DNAT`), TCP/UDP to the node's own 127.0.0.1 services
//! (dropped by KUBE-FIREWALL), a `127.0.0.2`-sourced datagram to the node's wildcard UDP socket
//! (KUBE-FIREWALL matches only 127/8 destinations) and a `::ffff:127.0.0.1` datagram to its `[::]`
//! socket. `tests/real/receiver.py` in the pods and on the node logs what arrived and the peer
//! the application saw. The expected truths are asserted before loopwarden runs.

mod common;

use common::real::*;
use common::require_root;

/// kube-proxy with localhost NodePorts: the NodePorts on 127.0.0.1 are reachable from the LAN,
/// the node's own loopback services are not (KUBE-FIREWALL), and spoofed 127.0.0.2 / mapped
/// sources reach its wildcard UDP sockets with a loopback peer. `prove` must run at all with
/// several DNAT rules to one backend address.
#[test]
fn kube_proxy_node_localhost_nodeports_and_coredns() {
    let name = "kube_proxy_node_localhost_nodeports_and_coredns";
    if !require_root(name) || !require_truth_tools(name, &["iptables-restore"]) {
        return;
    }
    let mut ledger = Ledger::new("kube-proxy node (iptables mode)");
    let lan = Lan::new("kube", Ipv6::Global);
    run_scenario(&lan.victim, "kube-proxy-coredns-nodeports");
    let coredns = attach_to_bridge(&lan.victim, "cni0", "coredns", "198.51.100.10", "198.51.100.1");
    let web = attach_to_bridge(&lan.victim, "cni0", "web", "198.51.100.11", "198.51.100.1");
    let dns_rx = Receiver::in_namespace(&coredns, &["udp:0.0.0.0:53", "tcp:0.0.0.0:53", "tcp:0.0.0.0:9153"]);
    let web_rx = Receiver::in_namespace(&web, &["tcp:0.0.0.0:8080"]);
    let node_rx = Receiver::in_namespace(
        &lan.victim,
        &[
            "tcp:127.0.0.1:10248",
            "udp:127.0.0.1:7003",
            "udp:0.0.0.0:7007",
            "udp:[::]:7008",
        ],
    );
    let mut atk = lan.attacker();

    let np_tcp = Attack::tcp("np-tcp-30080", CLAIM_V4, "127.0.0.1", 30080);
    let np_udp = Attack::udp("np-udp-30053", CLAIM_V4, "127.0.0.1", 30053);
    let t = atk.fire(&web_rx, &np_tcp);
    ledger.establish(&np_tcp, &t, TruthIs::Delivered);
    let t = atk.fire(&dns_rx, &np_udp);
    ledger.establish(&np_udp, &t, TruthIs::Delivered);
    let np_dns_tcp = Attack::tcp("np-tcp-30054", CLAIM_V4, "127.0.0.1", 30054);
    let t = atk.fire(&dns_rx, &np_dns_tcp);
    ledger.establish(&np_dns_tcp, &t, TruthIs::Delivered);
    let node_cases = [
        (
            Attack::tcp("lo-tcp-10248", CLAIM_V4, "127.0.0.1", 10248),
            TruthIs::Dropped,
        ),
        (
            Attack::udp("lo-udp-7003", CLAIM_V4, "127.0.0.1", 7003),
            TruthIs::Dropped,
        ),
        (
            Attack::udp("src127002-lo-7003", "127.0.0.2", "127.0.0.1", 7003),
            TruthIs::DeliveredLoopbackPeer,
        ),
        (
            Attack::udp("src127999-lo-7003", "127.9.9.9", "127.0.0.1", 7003),
            TruthIs::DeliveredLoopbackPeer,
        ),
        (
            Attack::udp("src127002-7007", "127.0.0.2", VICTIM_V4, 7007),
            TruthIs::DeliveredLoopbackPeer,
        ),
        (
            Attack::udp("mapped-7008", "::ffff:127.0.0.1", VICTIM_V6, 7008),
            TruthIs::DeliveredLoopbackPeer,
        ),
    ];
    for (attack, expected) in &node_cases {
        let t = atk.fire(&node_rx, attack);
        ledger.establish(attack, &t, *expected);
    }

    let runs = Runs::collect(&lan.victim);
    ledger.run_worked("1 audit", &runs.audit);
    ledger.run_worked("1 audit --prove", &runs.audit_prove);
    ledger.run_worked("1 prove", &runs.prove);
    for (name, run) in runs.reports() {
        ledger.expect(
            "dnat nodeport 30080",
            "LAN TCP → 127.0.0.1:30080 delivered to the pod",
            name,
            run,
            "net.dnat-loopback",
            Some("tcp:127.0.0.1:30080"),
            Expect::Open,
        );
        ledger.expect(
            "dnat nodeport 30053",
            "LAN UDP → 127.0.0.1:30053 delivered to the pod",
            name,
            run,
            "net.dnat-loopback",
            Some("udp:127.0.0.1:30053"),
            Expect::Open,
        );
        ledger.expect(
            "1 dnat nodeport 30054",
            "LAN TCP → 127.0.0.1:30054 delivered to the pod (same backend as 30053)",
            name,
            run,
            "net.dnat-loopback",
            Some("tcp:127.0.0.1:30054"),
            Expect::Open,
        );
        ledger.expect(
            "4 route-localnet",
            "UDP 127.0.0.2 → 127.0.0.1:7003 delivered (KUBE-FIREWALL exempts 127/8 sources)",
            name,
            run,
            "net.route-localnet",
            None,
            Expect::Open,
        );
        ledger.expect(
            "udp-loopback 7003",
            "UDP 127.0.0.2 → 127.0.0.1:7003 delivered (KUBE-FIREWALL exempts 127/8 sources)",
            name,
            run,
            "proto.udp-loopback",
            Some("udp:127.0.0.1:7003"),
            Expect::Open,
        );
        ledger.expect(
            "src 127.0.0.2 → 127.0.0.1:7003",
            "127.0.0.2 → 127.0.0.1:7003 delivered, loopback peer",
            name,
            run,
            "net.loopback-source-trust",
            Some("udp:127.0.0.1:7003"),
            Expect::Open,
        );
        ledger.expect(
            "src 127.0.0.2 → :7007",
            "127.0.0.2 → 192.0.2.1:7007 delivered, loopback peer",
            name,
            run,
            "net.loopback-source-trust",
            Some("udp:0.0.0.0:7007"),
            Expect::Open,
        );
        ledger.expect(
            "mapped → [::]:7008",
            "::ffff:127.0.0.1 → :7008 delivered, loopback peer",
            name,
            run,
            "net.loopback-source-trust",
            Some("udp:[::]:7008"),
            Expect::Open,
        );
        ledger.output_rules(name, run);
    }
    let p = &runs.prove;
    ledger.lab(
        "1 lab nodeport tcp",
        "TCP → 127.0.0.1:30080 delivered",
        p,
        true,
        lab_row("tcp", "127.0.0.1:30080", None),
    );
    ledger.lab(
        "1 lab nodeport udp",
        "UDP → 127.0.0.1:30053 delivered",
        p,
        true,
        lab_row("udp", "127.0.0.1:30053", None),
    );
    ledger.lab(
        "1 lab nodeport tcp2",
        "TCP → 127.0.0.1:30054 delivered",
        p,
        true,
        lab_row("tcp", "127.0.0.1:30054", None),
    );
    ledger.lab(
        "4 lab lo tcp 10248",
        "TCP → 127.0.0.1:10248 dropped",
        p,
        false,
        lab_row("tcp", "127.0.0.1:10248", None),
    );
    ledger.lab(
        "4 lab lo udp 7003",
        "UDP 127.0.0.2 → 127.0.0.1:7003 delivered",
        p,
        true,
        lab_row("udp", "127.0.0.1:7003", None),
    );
    let v4_7007 = format!("{VICTIM_V4}:7007");
    ledger.lab(
        "lab src 127.0.0.2",
        "127.0.0.2 → :7007 delivered",
        p,
        true,
        lab_row("udp", &v4_7007, None),
    );
    kube_firewall_reads_right(&mut ledger, &runs);
    ledger.finish();
}

/// KUBE-FIREWALL drops 127/8 traffic only when it is *not* DNAT'ed (`! --ctstate
/// RELATED,ESTABLISHED,DNAT`), as the attacks showed: the localhost NodePort got through, the
/// direct 127.0.0.1 service did not. Evidence that renders the rule as nft text must keep the
/// negation (`ct status dnat … drop` reads as the opposite).
fn kube_firewall_reads_right(ledger: &mut Ledger, runs: &Runs) {
    for (name, run) in runs.reports() {
        let wrong: Vec<String> = run.json["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|f| f["evidence"].as_array().cloned().unwrap_or_default())
            .filter_map(|e| e.as_str().map(str::to_string))
            // The negated forms read `ct status != dnat`, `ct state != related,established`.
            .filter(|e| {
                (e.contains("ct status dnat") || e.contains("ct state related,established")) && e.contains("drop")
            })
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let said = if wrong.is_empty() {
            "rendered with its negation".into()
        } else {
            wrong.join(" | ")
        };
        let truth = "DNAT'ed 127/8 traffic passes KUBE-FIREWALL, direct 127/8 is dropped";
        ledger.about_run("9 KUBE-FIREWALL text", truth, name, run, said, wrong.is_empty());
    }
}
