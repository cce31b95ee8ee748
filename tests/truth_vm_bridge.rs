//! Truth on a VM host (review 8, items 1 and 7): the LAN NIC `eth0` (192.0.2.1/24) is guarded by
//! nft (loopback destinations and sources dropped at priority raw, both families, `iifname
//! "eth0"`), the VM bridge `br0` has no address at all (the host does not route for its guests),
//! a VM's port `vnet0` (a veth, named as libvirt names its taps) is enslaved to it, and
//! `net.ipv4.conf.all.route_localnet=1` is left over. Scenario:
//! `fixtures/firewall/scenarios/vm-bridge-route-localnet`. Services on udp 127.0.0.1:8125, tcp
//! 127.0.0.1:8000 and udp `[::]:9002`.
//!
//! How the truth is established: the independent scapy attacker (`tests/real/attacker.py`) runs
//! twice — in the VM's namespace on the far end of `vnet0`, sending to `br0`'s MAC, and in the
//! LAN neighbour's namespace, sending to `eth0`'s MAC — and `tests/real/receiver.py` logs which
//! tokens the victim's sockets got and the peer the application saw. The guard stops the LAN;
//! nothing stops the VM: a bridge with no address still has an IPv4 device for route_localnet
//! and an IPv6 link-local address for the mapped `::ffff:127.0.0.1` datagram.
//!
//! What loopwarden must say: the attacks from the VM decide route-localnet, udp-loopback and
//! loopback-source-trust (open; open · proven with `--prove`, at the static audit's severity, so
//! `--fail-on critical` fails); the lab must attack from `br0` although it has no address; and
//! `vnet0`, a bridge port, is no ingress interface of its own.

mod common;

use common::real::*;
use common::{namespace, require_root};
use serde_json::Value;

const SOCKETS: &[&str] = &["udp:127.0.0.1:8125", "tcp:127.0.0.1:8000", "udp:[::]:9002"];
/// The VM's own address on the bridge's segment (the host has none there).
const VM_V4: &str = "203.0.113.5";
/// The addresses the VM attacker claims (answers ARP / ND for).
const VM_CLAIM_V4: &str = "203.0.113.200";
const VM_CLAIM_V6: &str = "2001:db8:f00::200";

/// A lab row for the `::ffff:127.0.0.1`-sourced datagram to port 9002, fired on `br0`.
fn mapped_on_br0(r: &Value) -> bool {
    r["interface"] == "br0"
        && r["protocol"].as_str().is_some_and(|p| p.eq_ignore_ascii_case("udp"))
        && r["source"].as_str().is_some_and(|s| s.contains("::ffff:127."))
        && r["destination"].as_str().is_some_and(|d| d.ends_with("]:9002"))
}

/// The `IPv4:` half of `net.no-loopback-antispoof` in `run`, as `status · confidence`.
fn antispoof_v4(run: &Run) -> Option<String> {
    run.json["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|f| f["check"] == "net.no-loopback-antispoof" && f["title"].as_str().is_some_and(|t| t.contains("IPv4")))
        .map(|f| {
            format!(
                "{} · {}",
                f["status"].as_str().unwrap_or(""),
                f["confidence"].as_str().unwrap_or("")
            )
        })
}

/// A VM behind an address-less bridge reaches the host's loopback services (route_localnet on
/// `all`, the guard only on `eth0`); the LAN does not. loopwarden must see the VM's path.
#[test]
fn vm_behind_an_addressless_bridge_reaches_loopback() {
    let name = "vm_behind_an_addressless_bridge_reaches_loopback";
    if !require_root(name) || !require_truth_tools(name, &["nft"]) {
        return;
    }
    let mut ledger = Ledger::new("VM bridge br0 without address, guarded eth0, all.route_localnet=1");
    let lan = Lan::new("vmbr", Ipv6::Global);
    run_scenario(&lan.victim, "vm-bridge-route-localnet");
    let vm = namespace("vm");
    lan.victim
        .exec(&[
            "ip",
            "link",
            "add",
            "vnet0",
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            vm.name(),
        ])
        .expect("VM veth");
    lan.victim
        .exec(&["ip", "link", "set", "vnet0", "master", "br0", "up"])
        .expect("vnet0 into br0");
    vm.exec(&["ip", "addr", "add", &format!("{VM_V4}/24"), "dev", "eth0"])
        .expect("VM address");
    vm.exec(&["ip", "link", "set", "eth0", "up"]).expect("VM eth0 up");
    let br0_ll = wait_link_local(&lan.victim, "br0");
    let br0_v4 = lan
        .victim
        .exec(&["ip", "-4", "-o", "addr", "show", "dev", "br0"])
        .unwrap_or_default();
    assert!(br0_v4.trim().is_empty(), "br0 must have no IPv4 address, has: {br0_v4}");
    let ports = bridge_ports(&lan.victim, "br0");
    assert_eq!(ports, ["vnet0"], "br0's member ports");

    let rx = Receiver::in_namespace(&lan.victim, SOCKETS);
    let br0_mac = link_mac(&lan.victim, "br0");
    let mut from_vm = attacker_on(&vm, "eth0", &br0_mac, &[VM_CLAIM_V4, VM_CLAIM_V6]);
    let mut from_lan = lan.attacker();

    let vm_cases = [
        (
            Attack::udp("vm-udp-8125", VM_CLAIM_V4, "127.0.0.1", 8125),
            TruthIs::Delivered,
        ),
        (
            Attack::udp("vm-udp-9002", VM_CLAIM_V4, "127.0.0.1", 9002),
            TruthIs::Delivered,
        ),
        (
            Attack::udp("vm-mapped-9002", "::ffff:127.0.0.1", &br0_ll, 9002),
            TruthIs::DeliveredLoopbackPeer,
        ),
        // The SYN reaches the listener, but the host has no route back to the VM's segment (br0
        // has no address, no route covers it): the handshake never completes.
        (
            Attack::tcp("vm-tcp-8000", VM_CLAIM_V4, "127.0.0.1", 8000),
            TruthIs::Dropped,
        ),
    ];
    for (attack, expected) in &vm_cases {
        let t = from_vm.fire(&rx, attack);
        ledger.establish(attack, &t, *expected);
    }
    let lan_cases = [
        (
            Attack::udp("lan-udp-8125", CLAIM_V4, "127.0.0.1", 8125),
            TruthIs::Dropped,
        ),
        (
            Attack::udp("lan-udp-9002-rl", CLAIM_V4, "127.0.0.1", 9002),
            TruthIs::Dropped,
        ),
        (
            Attack::udp("lan-mapped-9002", "::ffff:127.0.0.1", VICTIM_V6, 9002),
            TruthIs::Dropped,
        ),
        (
            Attack::udp("lan-udp-9002", CLAIM_V4, VICTIM_V4, 9002),
            TruthIs::Delivered,
        ),
    ];
    for (attack, expected) in &lan_cases {
        let t = from_lan.fire(&rx, attack);
        ledger.establish(attack, &t, *expected);
    }

    let runs = Runs::collect(&lan.victim);
    let fail_on = loopwarden_in(&lan.victim, &["audit", "--prove", "--fail-on", "critical", "--json"]);
    ledger.run_worked("1 audit", &runs.audit);
    ledger.run_worked("1 audit --prove", &runs.audit_prove);
    ledger.run_worked("1 prove", &runs.prove);
    for (name, run) in runs.reports() {
        ledger.expect(
            "1 route-localnet",
            "VM → 127.0.0.1:8125/9002 delivered via br0",
            name,
            run,
            "net.route-localnet",
            None,
            Expect::Open,
        );
        ledger.expect(
            "1 udp-loopback 8125",
            "VM UDP → 127.0.0.1:8125 delivered",
            name,
            run,
            "proto.udp-loopback",
            Some("udp:127.0.0.1:8125"),
            Expect::Open,
        );
        ledger.expect(
            "1 src-trust [::]:9002",
            "VM ::ffff:127.0.0.1 → [br0 fe80]:9002 delivered, loopback peer",
            name,
            run,
            "net.loopback-source-trust",
            Some("udp:[::]:9002"),
            Expect::Open,
        );
        ledger.expect(
            "1 wildcard [::]:9002",
            "LAN → 192.0.2.1:9002 and VM → 127.0.0.1:9002 delivered",
            name,
            run,
            "bind.wildcard",
            Some("udp:[::]:9002"),
            Expect::Open,
        );
        let said = antispoof_v4(run).unwrap_or_else(|| "no IPv4 finding".into());
        let agrees = said.starts_with("open");
        ledger.about_run(
            "1 antispoof IPv4",
            "VM → 127.0.0.1 delivered via br0 (the guard covers eth0 only) ⇒ open",
            name,
            run,
            format!("net.no-loopback-antispoof IPv4: {said}"),
            agrees,
        );
        ledger.output_rules(name, run);
        ledger.member_ports_not_ingress("1 member port", name, run, &ports);
    }
    ledger.member_ports_not_ingress("1 member port", "prove", &runs.prove, &ports);
    for (case, check, service) in [
        ("1 route-localnet", "net.route-localnet", None),
        ("1 udp-loopback 8125", "proto.udp-loopback", Some("udp:127.0.0.1:8125")),
        (
            "1 src-trust [::]:9002",
            "net.loopback-source-trust",
            Some("udp:[::]:9002"),
        ),
    ] {
        ledger.expect(
            case,
            "delivered from the VM via br0",
            "audit --prove",
            &runs.audit_prove,
            check,
            service,
            Expect::OpenProven,
        );
        ledger.severity_as_static(
            "7 severity",
            "audit",
            &runs.audit,
            "audit --prove",
            &runs.audit_prove,
            check,
            service,
        );
    }
    ledger.record(
        "7 --fail-on critical",
        "route_localnet reaches a service (critical) ⇒ exit 1",
        fail_on.summary(),
        fail_on.code == Some(1),
    );

    let p = &runs.prove;
    ledger.lab(
        "1 lab br0 udp 8125",
        "VM UDP → 127.0.0.1:8125 delivered",
        p,
        true,
        lab_row("udp", "127.0.0.1:8125", Some("br0")),
    );
    ledger.lab(
        "1 lab br0 udp 9002",
        "VM UDP → 127.0.0.1:9002 delivered",
        p,
        true,
        lab_row("udp", "127.0.0.1:9002", Some("br0")),
    );
    ledger.lab(
        "1 lab br0 mapped",
        "VM mapped UDP → :9002 delivered",
        p,
        true,
        mapped_on_br0,
    );
    ledger.lab(
        "lab br0 tcp 8000",
        "VM TCP → 127.0.0.1:8000: no handshake (no route back to the VM)",
        p,
        false,
        lab_row("tcp", "127.0.0.1:8000", Some("br0")),
    );
    ledger.lab(
        "lab eth0 udp 8125",
        "LAN UDP → 127.0.0.1:8125 dropped by the guard",
        p,
        false,
        lab_row("udp", "127.0.0.1:8125", Some("eth0")),
    );
    ledger.finish();
}
