//! `loopwarden audit` end to end, inside network namespaces made for each test: real listeners of
//! every kind, real sysctls and a namespace-private hosts file; assert the findings that must be
//! there and the ones that must not.

mod common;

use common::*;
use std::process::Stdio;

/// One Python process holding every kind of listener the checks care about.
fn listeners(dir: &str, abstract_name: &str) -> String {
    format!(
        r#"
import os, socket, time
def tcp(fam, addr, port, v6only=None):
    s = socket.socket(fam, socket.SOCK_STREAM)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    s.bind((addr, port)); s.listen(); return s
def udp(fam, addr, port):
    s = socket.socket(fam, socket.SOCK_DGRAM); s.bind((addr, port)); return s
keep = [
    tcp(socket.AF_INET, "127.0.0.1", 7001),
    tcp(socket.AF_INET, "0.0.0.0", 7002),
    udp(socket.AF_INET, "127.0.0.1", 7003),
    udp(socket.AF_INET6, "::1", 7004),
    tcp(socket.AF_INET6, "::", 7005, 0),
    tcp(socket.AF_INET, "127.0.0.1", 7006), tcp(socket.AF_INET6, "::1", 7006),
]
os.makedirs("{dir}/public", mode=0o755); os.chmod("{dir}/public", 0o755)
os.makedirs("{dir}/private", mode=0o700); os.chmod("{dir}/private", 0o700)
for path in ["{dir}/public/api.sock", "{dir}/private/api.sock"]:
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); u.bind(path); os.chmod(path, 0o777); u.listen(); keep.append(u)
a = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); a.bind("\0{abstract_name}"); a.listen(); keep.append(a)
print("ready", flush=True)
time.sleep(600)
"#
    )
}

#[test]
fn every_kind_of_listener_gets_the_right_findings() {
    if !require_root("every_kind_of_listener_gets_the_right_findings") {
        return;
    }
    let ns = namespace("audit");
    let tmp = TempDir::new("audit-sockets");
    let dir = tmp.path().to_path_buf();
    let dir_s = dir.to_str().expect("utf-8 temp dir");
    let abstract_name = format!("{}-abstract", ns.name());
    ns.set_etc_file("hosts", "192.0.2.1 gateway\n").expect("hosts");
    ns.set_etc_file("nsswitch.conf", "hosts: dns files\n")
        .expect("nsswitch");
    // A VLAN-style name with a dot: its sysctls live under conf/lan0.5/, not conf/lan0/5/.
    ns.exec(&["ip", "link", "add", "lan0.5", "type", "veth", "peer", "name", "lan1"])
        .expect("veth");
    ns.exec(&["sh", "-c", "echo 1 > /proc/sys/net/ipv4/conf/lan0.5/route_localnet"])
        .expect("sysctl");
    let _held = python_in(&ns, None, &listeners(dir_s, &abstract_name));

    let report = audit_json(&ns, &[]);
    assert_eq!(report["schema"], "loopwarden.report/v1");

    assert_eq!(
        service_ids(&report, "bind.wildcard"),
        vec!["tcp:0.0.0.0:7002", "tcp:[::]:7005"]
    );
    assert_eq!(
        service_ids(&report, "local.tcp-any-uid"),
        vec![
            "tcp:127.0.0.1:7001",
            "tcp:127.0.0.1:7006",
            "tcp:[::1]:7006",
            "udp:127.0.0.1:7003",
            "udp:[::1]:7004"
        ]
    );
    // 7006 listens on both families: no squat. 7001 and the UDP ports leave the other family free.
    assert_eq!(
        service_ids(&report, "local.port-squat"),
        vec!["tcp:127.0.0.1:7001", "udp:127.0.0.1:7003", "udp:[::1]:7004"]
    );

    let localnet = findings(&report, "net.route-localnet", None);
    assert_eq!(localnet.len(), 1, "{localnet:?}");
    assert_eq!(localnet[0]["severity"], "critical");
    assert_eq!(localnet[0]["status"], "open");
    let evidence = localnet[0]["evidence"].to_string();
    assert!(
        evidence.contains("net.ipv4.conf.lan0.5.route_localnet = 1"),
        "{evidence}"
    );
    assert!(!evidence.contains("lan1:"), "lan1 has route_localnet 0: {evidence}");
    assert!(
        evidence.contains("tcp:127.0.0.1:7001") && evidence.contains("udp:127.0.0.1:7003"),
        "{evidence}"
    );

    let udp = findings(&report, "proto.udp-loopback", None);
    let status = |id: &str| udp.iter().find(|f| f["service"] == id).map(|f| f["status"].clone());
    assert_eq!(status("udp:127.0.0.1:7003"), Some("open".into()));
    assert_eq!(status("udp:[::1]:7004"), Some("blocked".into()));

    let public = format!("unix:{dir_s}/public/api.sock");
    assert_eq!(service_ids(&report, "local.unix-world"), vec![public.clone()]);
    let world = findings(&report, "local.unix-world", Some(&public));
    assert!(
        world[0]["evidence"]
            .to_string()
            .contains(&format!("directory {dir_s}/public 0755")),
        "{world:?}"
    );
    assert_eq!(
        service_ids(&report, "local.unix-abstract"),
        vec![format!("unix:@{abstract_name}")]
    );

    let names = findings(&report, "name.localhost-resolution", None);
    let titles: Vec<&str> = names.iter().filter_map(|f| f["title"].as_str()).collect();
    assert!(
        titles.contains(&"`localhost` is not in /etc/hosts and falls through to DNS"),
        "{titles:?}"
    );
    assert!(titles.contains(&"DNS is consulted before /etc/hosts"), "{titles:?}");

    let service = report["services"]
        .as_array()
        .expect("services")
        .iter()
        .find(|s| s["id"] == "tcp:127.0.0.1:7001")
        .cloned();
    let service = service.expect("service tcp:127.0.0.1:7001");
    assert_eq!(service["scope"], "loopback");
    assert_eq!(service["process"]["name"], "python3");

    // Offline: the same facts audited from a snapshot give identical findings.
    let snapshot = dir.join("facts.json");
    let out = run_loopwarden(&ns, &["facts", "--out", snapshot.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let live = audit_json(&ns, &[]);
    let offline = std::process::Command::new(loopwarden())
        .args(["audit", "--json", "--facts", snapshot.to_str().expect("utf-8")])
        .output()
        .expect("offline audit");
    let offline: serde_json::Value = serde_json::from_slice(&offline.stdout).expect("offline JSON");
    assert_eq!(live["findings"], offline["findings"]);
    assert_eq!(live["services"], offline["services"]);

    drop(_held);
    drop(tmp);
}

/// Loopback drops on every non-lo interface before conntrack and NAT, and an output owner match.
const GUARD_RULESET: &str = r#"
table inet lwguard {
    chain prerouting {
        type filter hook prerouting priority raw; policy accept;
        iifname != "lo" ip saddr 127.0.0.0/8 drop
        iifname != "lo" ip daddr 127.0.0.0/8 drop
        iifname != "lo" ip6 saddr ::1 drop
        iifname != "lo" ip6 daddr ::1 drop
        iifname != "lo" ip6 saddr ::ffff:127.0.0.0/104 drop
        iifname != "lo" ip6 daddr ::ffff:127.0.0.0/104 drop
    }
    chain output {
        type filter hook output priority filter; policy accept;
        oif "lo" tcp dport 7100 meta skuid != 0 reject
    }
}
"#;

#[test]
fn a_hardened_namespace_has_only_blocked_findings_and_exits_zero() {
    if !require_root("a_hardened_namespace_has_only_blocked_findings_and_exits_zero") {
        return;
    }
    let ns = namespace("clean");
    ns.set_etc_file("hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
        .expect("hosts");
    ns.set_etc_file("nsswitch.conf", "hosts: files dns\n")
        .expect("nsswitch");
    ns.exec(&["ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"])
        .expect("veth");
    // Loopback listeners on both families (no squat) and a private Unix socket.
    let tmp = TempDir::new("clean-sockets");
    let dir = tmp.path().to_path_buf();
    let code = format!(
        r#"
import os, socket, time
keep = []
for fam, addr in [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]:
    s = socket.socket(fam, socket.SOCK_STREAM); s.bind((addr, 7100)); s.listen(); keep.append(s)
os.makedirs("{0}/private", mode=0o700); os.chmod("{0}/private", 0o700)
u = socket.socket(socket.AF_UNIX); u.bind("{0}/private/s.sock"); os.chmod("{0}/private/s.sock", 0o600); u.listen(); keep.append(u)
print("ready", flush=True)
time.sleep(600)
"#,
        dir.display()
    );
    let _held = python_in(&ns, None, &code);
    let out = run_loopwarden(&ns, &["audit", "--json", "--fail-on", "medium"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let checks: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter_map(|f| f["check"].as_str())
        .collect();
    // Without a firewall: no anti-spoof drops (medium or worse) and the per-uid findings (low).
    assert!(checks.contains(&"net.no-loopback-antispoof"), "{report:#}");
    assert_eq!(
        checks.iter().filter(|c| **c == "local.tcp-any-uid").count(),
        2,
        "{report:#}"
    );
    assert_eq!(out.status.code(), Some(1));

    // The guard table of the notes (raw-priority loopback drops on non-lo interfaces) and an
    // owner match that lets only root connect to port 7100: nothing is left to report.
    let rules = dir.join("guard.nft");
    std::fs::write(&rules, GUARD_RULESET).expect("write ruleset");
    ns.exec(&["nft", "-f", rules.to_str().expect("utf-8")])
        .expect("load guard ruleset");
    let out = run_loopwarden(&ns, &["audit", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let findings = report["findings"].as_array().expect("findings");
    assert!(
        findings.iter().all(|f| f["status"] == "blocked"),
        "only blocked findings may remain: {report:#}"
    );
    assert!(findings.iter().all(|f| f["check"] != "local.tcp-any-uid"), "{report:#}");
    let evidence = serde_json::to_string(findings).expect("json");
    assert!(
        evidence.contains("ip6 daddr ::ffff:127.0.0.0/104 drop"),
        "the deciding rule is evidence: {evidence}"
    );
    assert_eq!(out.status.code(), Some(0));
    drop(_held);
    drop(tmp);
}

#[test]
fn closed_stdout_is_not_a_panic() {
    if !require_root("closed_stdout_is_not_a_panic") {
        return;
    }
    let ns = namespace("pipe");
    let mut child = ns
        .command(&[loopwarden(), "checks"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

/// The evidence names only interfaces the namespace has: with `lo` alone, the anti-spoof and
/// other packet-path evidence speak of "an interface other than lo", never of an `eth0` that
/// does not exist.
#[test]
fn evidence_never_names_an_interface_the_host_lacks() {
    if !require_root("evidence_never_names_an_interface_the_host_lacks") {
        return;
    }
    let ns = namespace("onlylo");
    let _held = python_in(
        &ns,
        None,
        "import socket, time\nt = socket.socket(); t.bind(('0.0.0.0', 7400)); t.listen()\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.1', 7401))\nprint('ready', flush=True)\ntime.sleep(120)",
    );
    let report = audit_json(&ns, &[]);
    let interfaces: Vec<String> = {
        let out = ns.exec(&["ip", "-o", "link", "show"]).expect("ip link");
        out.lines()
            .filter_map(|l| {
                l.split(": ")
                    .nth(1)
                    .map(|n| n.split('@').next().unwrap_or(n).to_string())
            })
            .collect()
    };
    assert_eq!(interfaces, ["lo"], "the namespace has lo only");
    let evidence: Vec<&str> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .flat_map(|f| f["evidence"].as_array().expect("evidence").iter())
        .filter_map(|e| e.as_str())
        .collect();
    assert!(!evidence.iter().any(|e| e.contains("eth0")), "{evidence:#?}");
    let antispoof = findings(&report, "net.no-loopback-antispoof", None);
    assert!(!antispoof.is_empty(), "{report:#}");
    for f in antispoof {
        assert!(
            f["evidence"]
                .as_array()
                .expect("evidence")
                .iter()
                .any(|e| e.as_str().is_some_and(|e| e.contains("on an interface other than lo:"))),
            "{f:#}"
        );
    }
}
