//! Truth where routes decide (review of issue 8, lab items 1 and 3): reverse-path filtering —
//! `rp_filter` and nftables' `fib saddr . iif oif missing drop` — takes or drops a spoofed
//! source according to the host's routes, so the lab must mirror them; and a firewall that
//! trusts several source ranges must be attacked from each of them and from an untrusted one.
//!
//! How the truth is established: the independent scapy attacker (`tests/real/attacker.py`) in
//! the neighbour namespace sends the datagrams to the victim's MAC with the spoofed sources;
//! `tests/real/receiver.py` logs which arrived. Then the route that made the difference is
//! removed (or added) on the victim and the same datagrams are sent again: the truth changes
//! with the route alone, and loopwarden, run again, must follow it.

mod common;

use common::real::*;
use common::require_root;
use serde_json::Value;

/// A lab row: UDP, destination `dst`, source address starting with `src` (`10.`, `::ffff:127`).
fn udp_row<'a>(src: &'a str, dst: &'a str) -> impl Fn(&Value) -> bool + Copy + 'a {
    move |r: &Value| {
        r["protocol"].as_str().is_some_and(|p| p.eq_ignore_ascii_case("udp"))
            && r["destination"].as_str() == Some(dst)
            && r["source"]
                .as_str()
                .is_some_and(|s| s.trim_start_matches('[').starts_with(src))
    }
}

/// The lab attacked with a row matching `pred` and none of those rows was delivered.
fn lab_attacked_and_dropped(
    ledger: &mut Ledger,
    case: &str,
    truth: &str,
    run: &Run,
    pred: impl Fn(&Value) -> bool + Copy,
) {
    let rows = lab_rows(&run.json, pred).len();
    let agrees = run.worked() && rows > 0 && !lab_delivered(&run.json, pred);
    ledger.record(
        case,
        format!("{truth} ⇒ attacked, no lab row delivered"),
        format!("prove: {}", lab_outcome(&run.json, pred)),
        agrees,
    );
}

/// The CIS loopback rules with firewalld's IPv6 `fib saddr . mark . iif oif missing drop`
/// (`fixtures/firewall/scenarios/cis-source-drop-with-fib-rpf`), route_localnet on. With the
/// IPv6 default route through eth0, the reverse path of `::ffff:127.0.0.1` is eth0 itself: the
/// mapped datagram passes the fib rule, which the CIS rules do not see, and reaches the
/// dual-stack socket with a loopback peer. Without that route the fib rule drops it. The lab
/// must give both answers, which it can only do with the host's routes.
#[test]
fn fib_reverse_path_follows_the_hosts_routes() {
    let name = "fib_reverse_path_follows_the_hosts_routes";
    if !require_root(name) || !require_truth_tools(name, &["nft"]) {
        return;
    }
    let mut ledger = Ledger::new("CIS loopback rules + firewalld fib rpf (IPv6), default routes");
    let lan = Lan::new("fibrpf", Ipv6::Global);
    run_scenario(&lan.victim, "cis-source-drop-with-fib-rpf");
    let rx = Receiver::in_namespace(&lan.victim, &["udp:[::]:7008"]);
    let mut atk = lan.attacker();
    let dst = format!("[{VICTIM_V6}]:7008");

    let mapped = Attack::udp("mapped-7008-routed", "::ffff:127.0.0.1", VICTIM_V6, 7008);
    let t = atk.fire(&rx, &mapped);
    ledger.establish(&mapped, &t, TruthIs::DeliveredLoopbackPeer);
    let runs = Runs::collect(&lan.victim);
    ledger.run_worked("1 audit --prove (routed)", &runs.audit_prove);
    ledger.run_worked("1 prove (routed)", &runs.prove);
    ledger.lab(
        "1 lab fib rpf, default route",
        "mapped UDP → [2001:db8::1]:7008 delivered (fib finds eth0)",
        &runs.prove,
        true,
        udp_row("::ffff:127.0.0.1", &dst),
    );
    ledger.expect(
        "1 src-trust, default route",
        "mapped UDP → :7008 delivered, loopback peer",
        "audit --prove",
        &runs.audit_prove,
        "net.loopback-source-trust",
        Some("udp:[::]:7008"),
        Expect::OpenProven,
    );

    lan.victim
        .exec(&["ip", "-6", "route", "del", "default"])
        .expect("remove the IPv6 default route");
    let mapped = Attack::udp("mapped-7008-unrouted", "::ffff:127.0.0.1", VICTIM_V6, 7008);
    let t = atk.fire(&rx, &mapped);
    ledger.establish(&mapped, &t, TruthIs::Dropped);
    let runs = Runs::collect(&lan.victim);
    ledger.run_worked("1 prove (no v6 default)", &runs.prove);
    lab_attacked_and_dropped(
        &mut ledger,
        "1 lab fib rpf, no route",
        "mapped UDP → [2001:db8::1]:7008 dropped (fib: oif missing)",
        &runs.prove,
        udp_row("::ffff:127.0.0.1", &dst),
    );
    ledger.expect(
        "1 src-trust, no route",
        "mapped UDP → :7008 dropped",
        "audit --prove",
        &runs.audit_prove,
        "net.loopback-source-trust",
        Some("udp:[::]:7008"),
        Expect::NotOpen,
    );
    ledger.finish();
}

/// `ip saddr { 10.0.0.0/8, 192.168.0.0/16 } accept` in a drop policy, route_localnet=1 and a
/// strict reverse-path filter (rp_filter=1), default route through eth0 and 192.168.0.0/16
/// routed through another interface (eth1). A neighbour writing 10.0.0.1 reaches
/// 127.0.0.1:8125 (the reverse path of 10/8 is eth0); 192.168.0.1 is trusted by the firewall but
/// dropped by rp_filter (its reverse path is eth1); the neighbour's own address is dropped by
/// the firewall. Once the 192.168/16 route is removed it takes the default route and gets
/// through too. The lab must attack from each trusted range and from its own address, and
/// report each source's own outcome.
#[test]
fn every_trusted_source_range_is_attacked_and_routes_decide_rp_filter() {
    let name = "every_trusted_source_range_is_attacked_and_routes_decide_rp_filter";
    if !require_root(name) || !require_truth_tools(name, &["nft"]) {
        return;
    }
    let mut ledger = Ledger::new("ip saddr { 10/8, 192.168/16 } accept, rp_filter=1, route_localnet=1");
    let lan = Lan::new("ranges", Ipv6::Global);
    for argv in [
        &["nft", "add", "table", "inet", "filter"][..],
        &[
            "nft",
            "add chain inet filter input { type filter hook input priority 0; policy drop; }",
        ],
        &["nft", "add rule inet filter input iif lo accept"],
        &[
            "nft",
            "add rule inet filter input ip saddr { 10.0.0.0/8, 192.168.0.0/16 } accept",
        ],
    ] {
        lan.victim.exec(argv).expect("victim ruleset");
    }
    lan.victim_sysctls(&[
        "net.ipv4.conf.all.rp_filter=1",
        "net.ipv4.conf.eth0.rp_filter=1",
        "net.ipv4.conf.eth0.route_localnet=1",
    ]);
    for argv in [
        &["ip", "link", "add", "eth1", "type", "veth", "peer", "name", "eth1p"][..],
        &["ip", "link", "set", "eth1p", "up"],
        &["ip", "link", "set", "eth1", "up"],
        &["ip", "route", "add", "default", "via", NEIGHBOUR_V4, "dev", "eth0"],
        &["ip", "route", "add", "192.168.0.0/16", "dev", "eth1"],
    ] {
        lan.victim.exec(argv).expect("victim routes");
    }
    let rx = Receiver::in_namespace(&lan.victim, &["udp:127.0.0.1:8125"]);
    let mut atk = lan.attacker();
    let dst = "127.0.0.1:8125";
    for (attack, truth) in [
        (
            Attack::udp("trusted-10", "10.0.0.1", "127.0.0.1", 8125),
            TruthIs::Delivered,
        ),
        (
            Attack::udp("trusted-192.168-elsewhere", "192.168.0.1", "127.0.0.1", 8125),
            TruthIs::Dropped,
        ),
        (
            Attack::udp("own-address", CLAIM_V4, "127.0.0.1", 8125),
            TruthIs::Dropped,
        ),
    ] {
        let t = atk.fire(&rx, &attack);
        ledger.establish(&attack, &t, truth);
    }
    let runs = Runs::collect(&lan.victim);
    ledger.run_worked("3 prove", &runs.prove);
    ledger.run_worked("3 audit --prove", &runs.audit_prove);
    ledger.lab(
        "3 lab from 10/8",
        "UDP 10.0.0.1 → 127.0.0.1:8125 delivered",
        &runs.prove,
        true,
        udp_row("10.", dst),
    );
    lab_attacked_and_dropped(
        &mut ledger,
        "1+3 lab from 192.168/16 (rp_filter)",
        "UDP 192.168.0.1 → 127.0.0.1:8125 dropped (reverse path eth1)",
        &runs.prove,
        udp_row("192.168.", dst),
    );
    lab_attacked_and_dropped(
        &mut ledger,
        "3 lab from its own address",
        "UDP 192.0.2.x → 127.0.0.1:8125 dropped (firewall)",
        &runs.prove,
        udp_row("192.0.2.", dst),
    );
    ledger.expect(
        "3 udp-loopback",
        "UDP 10.0.0.1 → 127.0.0.1:8125 delivered",
        "audit --prove",
        &runs.audit_prove,
        "proto.udp-loopback",
        Some("udp:127.0.0.1:8125"),
        Expect::OpenProven,
    );

    lan.victim
        .exec(&["ip", "route", "del", "192.168.0.0/16"])
        .expect("remove the 192.168/16 route");
    let attack = Attack::udp("trusted-192.168-default", "192.168.0.1", "127.0.0.1", 8125);
    let t = atk.fire(&rx, &attack);
    ledger.establish(&attack, &t, TruthIs::Delivered);
    let runs = Runs::collect(&lan.victim);
    ledger.run_worked("1 prove (no 192.168 route)", &runs.prove);
    ledger.lab(
        "1+3 lab from 192.168/16 (default route)",
        "UDP 192.168.0.1 → 127.0.0.1:8125 delivered",
        &runs.prove,
        true,
        udp_row("192.168.", dst),
    );

    // Every trusted range routed back by eth1 and no default route: rp_filter drops every source
    // the firewall trusts. The static audit, which reads the routes too, must not call the path
    // open (a final review found it did: "delivered: udp 10.0.0.0 -> 127.0.0.1").
    for argv in [
        &["ip", "route", "del", "default"][..],
        &["ip", "route", "add", "10.0.0.0/8", "dev", "eth1"],
        &["ip", "route", "add", "192.168.0.0/16", "dev", "eth1"],
    ] {
        lan.victim.exec(argv).expect("victim routes");
    }
    for source in ["10.0.0.1", "192.168.0.1"] {
        let attack = Attack::udp(&format!("trusted-{source}-routed-elsewhere"), source, "127.0.0.1", 8125);
        let t = atk.fire(&rx, &attack);
        ledger.establish(&attack, &t, TruthIs::Dropped);
    }
    let runs = Runs::collect(&lan.victim);
    ledger.run_worked("4 audit (every trusted range routed by eth1)", &runs.audit);
    ledger.expect(
        "4 udp-loopback, static",
        "UDP 10.0.0.1 and 192.168.0.1 → 127.0.0.1:8125 dropped (reverse path eth1)",
        "audit",
        &runs.audit,
        "proto.udp-loopback",
        Some("udp:127.0.0.1:8125"),
        Expect::NotOpen,
    );
    ledger.finish();
}
