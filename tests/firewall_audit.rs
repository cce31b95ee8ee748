//! `loopwarden audit` against real rulesets: each scenario of `fixtures/firewall/scenarios` is
//! loaded into a fresh namespace (with a veth `eth0`) the way the product installs it, then the
//! audit runs inside and the firewall findings are asserted.

mod common;

use common::*;

const SCENARIOS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/firewall");

/// A namespace with `eth0` (192.0.2.10/24, 2001:db8::10/64) and the scenario's rules loaded.
fn scenario(name: &str) -> TestNamespace {
    let ns = namespace(name);
    for argv in [
        &["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"][..],
        &["ip", "addr", "add", "192.0.2.10/24", "dev", "eth0"],
        &["ip", "addr", "add", "2001:db8::10/64", "dev", "eth0", "nodad"],
        &["ip", "link", "set", "eth0", "up"],
        &["ip", "link", "set", "eth0p", "up"],
    ] {
        ns.exec(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    }
    if name == "ufw-stock" {
        // ufw-init needs the downloaded package; load what it installed, as captured.
        for (tool, file) in [
            ("iptables-restore", "iptables-save.txt"),
            ("ip6tables-restore", "ip6tables-save.txt"),
        ] {
            let path = format!("{SCENARIOS}/{name}/{file}");
            must(&mut ns.command(&["sh", "-c", &format!("{tool} < {path}")]));
        }
    } else {
        let setup = format!("{SCENARIOS}/scenarios/{name}/setup.sh");
        must(
            ns.command(&["bash", "-euo", "pipefail", &setup])
                .env("LW_SCENARIO_DIR", format!("{SCENARIOS}/scenarios/{name}")),
        );
    }
    ns
}

fn one<'a>(report: &'a serde_json::Value, check: &str, title_start: &str) -> &'a serde_json::Value {
    let found = findings(report, check, None);
    found
        .into_iter()
        .find(|f| f["title"].as_str().is_some_and(|t| t.starts_with(title_start)))
        .unwrap_or_else(|| panic!("no {check} finding starting with {title_start:?} in {report:#}"))
}

fn evidence(f: &serde_json::Value) -> Vec<String> {
    f["evidence"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e.as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

const LISTEN: &str = r#"
import socket, sys, time
keep = []
for port in sys.argv[1:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(port))); s.listen(); keep.append(s)
print("ready", flush=True)
time.sleep(600)
"#;

fn listen(ns: &Namespace, uid: Option<u32>, ports: &[u16]) -> Spawned {
    let code = format!(
        "import sys; sys.argv = ['x', {}]\n{LISTEN}",
        ports.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ")
    );
    python_in(ns, uid, &code)
}

#[test]
fn docker_27_loopback_publish_is_reachable_from_the_lan() {
    if !require_root("docker_27_loopback_publish_is_reachable_from_the_lan") {
        return;
    }
    let ns = scenario("docker-27-loopback-publish");
    let _proxy = listen(&ns, None, &[8080]);
    let report = audit_json(&ns, &[]);
    let f = one(&report, "net.dnat-loopback", "NAT publishes loopback 127.0.0.1:8080");
    assert_eq!(f["status"], "open", "{f:#}");
    assert_eq!(f["service"], "tcp:127.0.0.1:8080");
    let ev = evidence(f);
    assert!(
        ev.iter().any(|e| e.contains(
            "-A DOCKER -d 127.0.0.1/32 ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80"
        )),
        "{ev:#?}"
    );
    assert!(ev.iter().any(|e| e.contains("forwarded: tcp")), "{ev:#?}");
    assert_eq!(one(&report, "net.no-loopback-antispoof", "IPv4")["status"], "open");
}

#[test]
fn docker_28_raw_drops_are_credited_but_are_no_general_antispoof() {
    if !require_root("docker_28_raw_drops_are_credited_but_are_no_general_antispoof") {
        return;
    }
    let ns = scenario("docker-28-loopback-publish");
    let report = audit_json(&ns, &[]);
    let f = one(
        &report,
        "net.dnat-loopback",
        "a NAT rule would publish loopback 127.0.0.1:8080",
    );
    assert_eq!(f["status"], "blocked", "{f:#}");
    assert!(
        evidence(f)
            .iter()
            .any(|e| e.contains("-A PREROUTING -d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 8080 -j DROP")),
        "{f:#}"
    );
    let a = one(&report, "net.no-loopback-antispoof", "IPv4");
    assert_eq!(a["status"], "open");
    assert!(
        evidence(a).iter().any(|e| e.contains("dropped only for some packets")),
        "{a:#}"
    );
}

/// KUBE-FIREWALL drops what a neighbour sends from its own address to 127/8 but not spoofed
/// 127/8 sources (tests/truth_kube.rs delivers `127.0.0.2 → 127.0.0.1:7003`): route_localnet
/// stays open, with both halves in the evidence.
#[test]
fn kube_firewall_keeps_out_neighbours_but_not_spoofed_loopback_sources() {
    if !require_root("kube_firewall_keeps_out_neighbours_but_not_spoofed_loopback_sources") {
        return;
    }
    let ns = scenario("kube-proxy-firewall");
    let report = audit_json(&ns, &[]);
    let f = one(&report, "net.route-localnet", "");
    assert_eq!(f["status"], "open", "{f:#}");
    assert!(
        evidence(f)
            .iter()
            .any(|e| e.contains("-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8")),
        "{f:#}"
    );
    assert!(
        evidence(f)
            .iter()
            .any(|e| e.contains("UDP from a spoofed 127/8 source gets through")),
        "{f:#}"
    );
    assert!(findings(&report, "net.dnat-loopback", None).is_empty());
}

#[test]
fn dnat_to_loopback_with_route_localnet_is_open() {
    if !require_root("dnat_to_loopback_with_route_localnet_is_open") {
        return;
    }
    let ns = scenario("ecs-agent-dnat-to-loopback");
    let _agent = listen(&ns, None, &[51679]);
    let report = audit_json(&ns, &[]);
    let f = one(
        &report,
        "net.dnat-loopback",
        "NAT sends traffic from outside to loopback 127.0.0.1:51679",
    );
    assert_eq!(
        (f["status"].as_str(), f["service"].as_str()),
        (Some("open"), Some("tcp:127.0.0.1:51679")),
        "{f:#}"
    );
    assert_eq!(one(&report, "net.route-localnet", "")["status"], "open");
}

#[test]
fn antispoof_is_credited_only_for_a_complete_unconditional_raw_table() {
    if !require_root("antispoof_is_credited_only_for_a_complete_unconditional_raw_table") {
        return;
    }
    let complete = audit_json(&scenario("raw-antispoof-complete"), &[]);
    for family in ["IPv4", "IPv6"] {
        assert_eq!(
            one(&complete, "net.no-loopback-antispoof", family)["status"],
            "blocked",
            "{complete:#}"
        );
    }
    let marked = audit_json(&scenario("antispoof-only-with-mark"), &[]);
    for family in ["IPv4", "IPv6"] {
        assert_eq!(one(&marked, "net.no-loopback-antispoof", family)["status"], "open");
    }
    let cis = audit_json(&scenario("cis-loopback-source-only"), &[]);
    let v4 = one(&cis, "net.no-loopback-antispoof", "IPv4");
    assert_eq!(v4["status"], "open");
    assert!(
        v4["title"]
            .as_str()
            .is_some_and(|t| t.contains("(destination half missing)")),
        "{v4:#}"
    );
}

#[test]
fn stock_ufw_and_firewalld_rulesets_leave_the_destination_half_open() {
    if !require_root("stock_ufw_and_firewalld_rulesets_leave_the_destination_half_open") {
        return;
    }
    for name in ["ufw-stock", "firewalld-style"] {
        let report = audit_json(&scenario(name), &[]);
        let v4 = one(&report, "net.no-loopback-antispoof", "IPv4");
        assert_eq!(v4["status"], "open", "{name}: {v4:#}");
        assert!(
            v4["title"].as_str().is_some_and(|t| t.contains("destination")),
            "{name}: {v4:#}"
        );
        assert!(findings(&report, "net.dnat-loopback", None).is_empty(), "{name}");
    }
}

#[test]
fn owner_match_rules_narrow_local_tcp_any_uid() {
    if !require_root("owner_match_rules_narrow_local_tcp_any_uid") {
        return;
    }
    let nft = scenario("owner-match-nft");
    let _svc = listen(&nft, Some(1000), &[7001, 7009]);
    let report = audit_json(&nft, &[]);
    assert!(
        findings(&report, "local.tcp-any-uid", Some("tcp:127.0.0.1:7001")).is_empty(),
        "{report:#}"
    );
    assert_eq!(
        findings(&report, "local.tcp-any-uid", Some("tcp:127.0.0.1:7009")).len(),
        1
    );

    let ipt = scenario("owner-match-iptables");
    let _svc = listen(&ipt, Some(1000), &[7002]);
    let report = audit_json(&ipt, &[]);
    let f = findings(&report, "local.tcp-any-uid", Some("tcp:127.0.0.1:7002"));
    assert_eq!(f.len(), 1, "{report:#}");
    assert!(
        evidence(f[0])
            .iter()
            .any(|e| e.starts_with("uids still allowed to connect: 1001") && e.contains("1002")),
        "{:#}",
        f[0]
    );
}

#[test]
fn legacy_iptables_rules_are_read_and_credited() {
    if !require_root("legacy_iptables_rules_are_read_and_credited") {
        return;
    }
    let report = audit_json(&scenario("legacy-iptables-antispoof"), &[]);
    for family in ["IPv4", "IPv6"] {
        let f = one(&report, "net.no-loopback-antispoof", family);
        assert_eq!(f["status"], "blocked", "{f:#}");
        assert!(evidence(f).iter().any(|e| e.contains("legacy raw PREROUTING")), "{f:#}");
    }
}
