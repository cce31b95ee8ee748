//! `audit --prove` end to end: a "host" that is itself a namespace (a veth to a peer, addresses,
//! sysctls, rulesets and real listeners set up here), audited with the lab, and the lab's
//! outcomes asserted per attack.
//!
//! Expected outcomes are the ones measured by hand on this kernel (notes §1, columns a, b,
//! b+al, b+c1, d, and the Docker/kube-proxy NAT rows). The KUBE-FIREWALL rows were measured by
//! hand with a separate Python raw-socket script (SYN from the neighbour to 127.0.0.1:7001 and
//! to the DNAT port 8080, route_localnet=1): without the rule both answer; with it the direct
//! SYN is dropped and the DNAT-ed one still answers (the rule exempts `ctstate DNAT`).
//!
//! After every lab run the root namespace's links, sysctls, ruleset and the set of namespaces
//! the run could have made are checked unchanged.

mod common;

use common::*;
use serde_json::Value;
use std::process::Stdio;

/// One test host: sysctls, rules and whether it has a Docker bridge.
struct Case<'a> {
    name: &'a str,
    sysctls: &'a [&'a str],
    nft: Option<&'a str>,
    iptables: Option<&'a str>,
    docker0: bool,
}

/// The listeners every test host runs: loopback TCP/UDP (IPv4 and `::1`), wildcard TCP/UDP,
/// `[::]` UDP V6ONLY and dual-stack, `[::]` TCP dual-stack, and a resolver-stub style connected
/// socket.
const LISTENERS: &str = r#"
import socket, time
def sock(fam, kind, addr, port, v6only=None):
    s = socket.socket(fam, kind)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    s.bind((addr, port))
    if kind == socket.SOCK_STREAM:
        s.listen()
    return s
T, U, V4, V6 = socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.AF_INET, socket.AF_INET6
keep = [
    sock(V4, T, "127.0.0.1", 7001), sock(V4, T, "0.0.0.0", 7002), sock(V4, U, "127.0.0.1", 7003),
    sock(V6, T, "::", 7005, 0), sock(V4, U, "0.0.0.0", 7007), sock(V6, U, "::", 7008, 1),
    sock(V6, U, "::", 7009, 0), sock(V6, U, "::1", 7004, 1),
]
stub = sock(V4, U, "127.0.0.1", 7010); stub.connect(("127.0.0.53", 53)); keep.append(stub)
print("ready", flush=True)
time.sleep(600)
"#;

/// What must not change in the root namespace while the lab runs.
#[derive(Debug, PartialEq)]
struct RootState {
    links: String,
    sysctls: Vec<String>,
    ruleset: String,
}

fn root_state() -> RootState {
    let sysctls = [
        "ipv4/conf/all/route_localnet",
        "ipv4/conf/all/rp_filter",
        "ipv4/conf/all/accept_local",
        "ipv4/ip_forward",
    ]
    .iter()
    .map(|k| std::fs::read_to_string(format!("/proc/sys/net/{k}")).unwrap_or_default())
    .collect();
    let links = must(std::process::Command::new("ip").args(["-o", "link", "show"]));
    let links = links
        .lines()
        .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    RootState {
        links,
        sysctls,
        ruleset: must(std::process::Command::new("nft").args(["list", "ruleset"])),
    }
}

/// Builds the host, runs `audit --prove --json` in it, checks the root namespace is untouched,
/// and returns the report.
fn prove_case(case: &Case<'_>) -> Value {
    let host = namespace(&format!("h{}", case.name));
    let peer = namespace(&format!("p{}", case.name));
    let peer_arg = peer.name().to_string();
    host.exec(&[
        "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0", "netns", &peer_arg,
    ])
    .expect("veth");
    host.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", "eth0"])
        .expect("addr");
    host.exec(&["ip", "addr", "add", "2001:db8::1/64", "dev", "eth0", "nodad"])
        .expect("addr6");
    host.exec(&["ip", "link", "set", "eth0", "up"]).expect("up");
    peer.exec(&["ip", "addr", "add", "192.0.2.254/24", "dev", "peer0"])
        .expect("peer addr");
    peer.exec(&["ip", "link", "set", "peer0", "up"]).expect("peer up");
    if case.docker0 {
        host.exec(&["ip", "link", "add", "docker0", "type", "bridge"])
            .expect("bridge");
        host.exec(&["ip", "addr", "add", "172.17.0.1/16", "dev", "docker0"])
            .expect("bridge addr");
        host.exec(&["ip", "link", "set", "docker0", "up"]).expect("bridge up");
    }
    for s in case.sysctls {
        host.exec(&["sysctl", "-qw", s]).expect("sysctl");
    }
    if let Some(rules) = case.nft {
        let mut child = host
            .command(&["nft", "-f", "-"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("nft");
        std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), rules.as_bytes()).expect("write rules");
        assert!(child.wait().expect("nft").success(), "nft refused the test ruleset");
    }
    if let Some(rules) = case.iptables {
        let mut child = host
            .command(&["iptables-restore"])
            .stdin(Stdio::piped())
            .spawn()
            .expect("iptables-restore");
        std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), rules.as_bytes()).expect("write rules");
        assert!(
            child.wait().expect("iptables-restore").success(),
            "iptables-restore refused the test rules"
        );
    }
    let _listeners = python_in(&host, None, LISTENERS);
    let argv = [loopwarden(), "audit", "--prove", "--json"];

    let before = root_state();
    let child = host
        .command(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run audit --prove");
    let pid = child.id();
    let out = child.wait_with_output().expect("audit --prove");
    assert_eq!(root_state(), before, "the lab changed the root namespace");
    let namespaces = must(std::process::Command::new("ip").args(["netns", "list"]));
    assert!(
        !namespaces.contains(&format!("-{pid}-")),
        "the lab left namespaces behind: {namespaces}"
    );
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "audit --prove failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("report JSON")
}

/// Every lab evidence line of the report: `lab: ATTACK fired PROTO SRC -> DST from WHO at SERVICE: OUTCOME…`.
fn lab_lines(report: &Value) -> Vec<String> {
    let mut lines: Vec<String> = report["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|f| f["evidence"].as_array().into_iter().flatten())
        .filter_map(|e| {
            e.as_str()
                .filter(|e| e.starts_with("lab: ") && !e.contains("did not get through"))
        })
        .map(str::to_string)
        .collect();
    lines.sort();
    lines.dedup();
    lines
}

/// The outcome of the attack `attack` with protocol `proto`, source and destination as given
/// (`*` for any port of the source).
fn outcome(report: &Value, attack: &str, proto: &str, src: &str, dst: &str) -> String {
    let lines = lab_lines(report);
    let src_prefix = src.trim_end_matches('*');
    let line = lines
        .iter()
        .find(|l| {
            let mut words = l.split_whitespace().skip(1);
            words.next() == Some(attack)
                && words.next() == Some("fired")
                && words.next() == Some(proto)
                && words.next().is_some_and(|s| s.starts_with(src_prefix))
                && words.nth(1) == Some(dst)
        })
        .unwrap_or_else(|| {
            panic!(
                "no lab result for {attack} {proto} {src} -> {dst} in:\n{}",
                lines.join("\n")
            )
        });
    let tail = line
        .split_once(" at ")
        .and_then(|(_, rest)| rest.split_once(": "))
        .map_or("", |(_, tail)| tail);
    tail.split([' ', ';']).next().unwrap_or("").to_string()
}

fn finding<'a>(report: &'a Value, check: &str, service: Option<&str>) -> &'a Value {
    let found = findings(report, check, service);
    let found = found
        .iter()
        .find(|f| service.is_some() || f["service"].is_null())
        .copied();
    found.unwrap_or_else(|| panic!("no {check} finding for {service:?}"))
}

/// The host-wide anti-spoof finding of one family (`ipv4`, `ipv6`), as the lab left it.
fn assert_antispoof(report: &Value, family: &str, status: &str) {
    let f = findings(report, "net.no-loopback-antispoof", None)
        .into_iter()
        .find(|f| f["subject"] == family)
        .unwrap_or_else(|| panic!("no {family} anti-spoof finding: {report:#}"));
    assert_eq!(f["confidence"], "proven", "{family}: {f:#}");
    assert_eq!(f["status"], status, "{family}: {f:#}");
    assert!(
        f["evidence"].to_string().contains("lab: "),
        "the attacks are evidence: {f:#}"
    );
}

fn assert_proven(report: &Value, check: &str, service: Option<&str>, status: &str) {
    let f = finding(report, check, service);
    assert_eq!(f["confidence"], "proven", "{check} {service:?}: {f:#}");
    assert_eq!(f["status"], status, "{check} {service:?}: {f:#}");
}

const A: &str = "ipv4.dst-loopback";
const S: &str = "ipv4.src-loopback";
const M: &str = "ipv6.src-mapped-loopback";

#[test]
fn defaults_only_mapped_udp_gets_through() {
    if !require_root("defaults_only_mapped_udp_gets_through") {
        return;
    }
    let r = prove_case(&Case {
        name: "dflt",
        sysctls: &[],
        nft: None,
        iptables: None,
        docker0: false,
    });
    for dst in ["127.0.0.1:7001", "127.0.0.1:7003", "127.0.0.2:7002", "127.0.0.2:7007"] {
        let proto = if dst.ends_with("7003") || dst.ends_with("7007") {
            "UDP"
        } else {
            "TCP"
        };
        assert_eq!(outcome(&r, A, proto, "192.0.2.254:*", dst), "dropped", "{dst}");
    }
    assert_eq!(outcome(&r, S, "UDP", "127.0.0.2:*", "192.0.2.1:7007"), "dropped");
    assert_eq!(
        outcome(&r, "ipv4.stub-spoof", "UDP", "127.0.0.53:53", "127.0.0.1:7010"),
        "dropped"
    );
    assert_eq!(
        outcome(&r, M, "UDP", "[::ffff:127.0.0.1]:*", "[2001:db8::1]:7008"),
        "delivered-to-trust"
    );
    assert_eq!(
        outcome(&r, M, "UDP", "[::ffff:127.0.0.1]:*", "[2001:db8::1]:7009"),
        "delivered-to-trust"
    );
    assert_eq!(
        outcome(&r, M, "TCP", "[::ffff:127.0.0.1]:*", "[2001:db8::1]:7005"),
        "dropped"
    );
    assert_eq!(
        outcome(&r, "ipv6.src-loopback", "UDP", "[::1]:*", "[2001:db8::1]:7008"),
        "dropped"
    );
    assert_eq!(
        outcome(&r, "ipv6.dst-loopback", "UDP", "[2001:db8::fffe]:*", "[::1]:7004"),
        "dropped"
    );
    assert_proven(&r, "proto.udp-loopback", Some("udp:[::1]:7004"), "blocked");
    assert_proven(&r, "net.route-localnet", None, "blocked");
    let route = finding(&r, "net.route-localnet", None)["evidence"].to_string();
    assert!(
        route.contains("dropped by the kernel's routing decision") && !route.contains("rt_cache"),
        "the martian drop is the kernel's reason, seen in the victim itself: {route}"
    );
    // ::1 is dropped by IPv6 input before any firewall, and the kernel counts it; the mapped
    // source is not, so the V6ONLY socket's finding is open with both attacks as evidence.
    let trust = finding(&r, "net.loopback-source-trust", Some("udp:[::]:7008"))["evidence"].to_string();
    assert!(trust.contains("ipv6.src-loopback fired UDP [::1]"), "{trust}");
    assert!(
        trust.contains("Ip6InHdrErrors"),
        "IPv6 input counts its loopback drops: {trust}"
    );
    assert_proven(&r, "net.loopback-source-trust", Some("udp:[::]:7008"), "open");
    assert_proven(&r, "net.loopback-source-trust", Some("udp:0.0.0.0:7007"), "blocked");
    assert_proven(&r, "proto.udp-loopback", Some("udp:127.0.0.1:7003"), "blocked");
    // No firewall: the kernel stops every IPv4 attempt, but mapped UDP gets through IPv6.
    assert_antispoof(&r, "ipv4", "blocked");
    assert_antispoof(&r, "ipv6", "open");
}

#[test]
fn route_localnet_opens_loopback_destinations_and_unconfigured_sources() {
    if !require_root("route_localnet_opens_loopback_destinations_and_unconfigured_sources") {
        return;
    }
    let r = prove_case(&Case {
        name: "rl",
        sysctls: &["net.ipv4.conf.eth0.route_localnet=1"],
        nft: None,
        iptables: None,
        docker0: false,
    });
    assert_eq!(outcome(&r, A, "TCP", "192.0.2.254:*", "127.0.0.1:7001"), "delivered");
    assert_eq!(outcome(&r, A, "UDP", "192.0.2.254:*", "127.0.0.1:7003"), "delivered");
    assert_eq!(outcome(&r, A, "TCP", "192.0.2.254:*", "127.0.0.2:7002"), "delivered");
    assert_eq!(outcome(&r, S, "UDP", "127.0.0.1:*", "192.0.2.1:7007"), "dropped");
    assert_eq!(
        outcome(&r, S, "UDP", "127.0.0.2:*", "192.0.2.1:7007"),
        "delivered-to-trust"
    );
    assert_eq!(outcome(&r, S, "TCP", "127.0.0.1:*", "192.0.2.1:7002"), "dropped");
    assert_eq!(
        outcome(&r, "ipv4.stub-spoof", "UDP", "127.0.0.53:53", "127.0.0.1:7010"),
        "delivered-to-trust"
    );
    assert_proven(&r, "net.route-localnet", None, "open");
    assert_proven(&r, "proto.udp-loopback", Some("udp:127.0.0.1:7003"), "open");
    assert_proven(&r, "net.loopback-source-trust", Some("udp:0.0.0.0:7007"), "open");
    assert_antispoof(&r, "ipv4", "open");
}

#[test]
fn route_localnet_with_accept_local_lets_the_configured_source_in() {
    if !require_root("route_localnet_with_accept_local_lets_the_configured_source_in") {
        return;
    }
    let r = prove_case(&Case {
        name: "al",
        sysctls: &[
            "net.ipv4.conf.all.route_localnet=1",
            "net.ipv4.conf.eth0.accept_local=1",
        ],
        nft: None,
        iptables: None,
        docker0: false,
    });
    assert_eq!(
        outcome(&r, S, "UDP", "127.0.0.1:*", "192.0.2.1:7007"),
        "delivered-to-trust"
    );
    assert_eq!(outcome(&r, S, "TCP", "127.0.0.1:*", "192.0.2.1:7002"), "blind");
    assert_eq!(outcome(&r, A, "UDP", "192.0.2.254:*", "127.0.0.2:7007"), "delivered");
}

#[test]
fn strict_rp_filter_stops_spoofed_sources_but_not_loopback_destinations() {
    if !require_root("strict_rp_filter_stops_spoofed_sources_but_not_loopback_destinations") {
        return;
    }
    let r = prove_case(&Case {
        name: "rp",
        sysctls: &["net.ipv4.conf.all.rp_filter=1", "net.ipv4.conf.eth0.route_localnet=1"],
        nft: None,
        iptables: None,
        docker0: false,
    });
    assert_eq!(outcome(&r, A, "TCP", "192.0.2.254:*", "127.0.0.1:7001"), "delivered");
    assert_eq!(outcome(&r, S, "UDP", "127.0.0.2:*", "192.0.2.1:7007"), "dropped");
    assert_eq!(
        outcome(&r, "ipv4.stub-spoof", "UDP", "127.0.0.53:53", "127.0.0.1:7010"),
        "dropped"
    );
    assert_eq!(
        outcome(&r, M, "UDP", "[::ffff:127.0.0.1]:*", "[2001:db8::1]:7008"),
        "delivered-to-trust"
    );
    assert_proven(&r, "net.loopback-source-trust", Some("udp:0.0.0.0:7007"), "blocked");
}

const DOCKER_RULES: &str =
    "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
:DOCKER - [0:0]\n-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
-A DOCKER -d 127.0.0.1/32 ! -i docker0 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.17.0.2:80\nCOMMIT\n";

#[test]
fn a_docker_style_loopback_publish_is_reachable_with_default_sysctls() {
    if !require_root("a_docker_style_loopback_publish_is_reachable_with_default_sysctls") {
        return;
    }
    let r = prove_case(&Case {
        name: "docker",
        sysctls: &["net.ipv4.ip_forward=1"],
        nft: None,
        iptables: Some(DOCKER_RULES),
        docker0: true,
    });
    assert_eq!(
        outcome(&r, "nat.published-loopback", "TCP", "192.0.2.254:*", "127.0.0.1:8081"),
        "delivered"
    );
    assert_eq!(outcome(&r, A, "TCP", "192.0.2.254:*", "127.0.0.1:7001"), "dropped");
    assert_proven(&r, "net.dnat-loopback", None, "open");
}

const KUBE_NAT: &str =
    "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
-A PREROUTING -d 127.0.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 127.0.0.1:7001\nCOMMIT\n";
const KUBE_FIREWALL: &str = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:KUBE-FIREWALL - [0:0]\n\
-A INPUT -j KUBE-FIREWALL\n\
-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP\n\
COMMIT\n";

#[test]
fn kube_nodeport_to_loopback_with_and_without_kube_firewall() {
    if !require_root("kube_nodeport_to_loopback_with_and_without_kube_firewall") {
        return;
    }
    let open = prove_case(&Case {
        name: "kube",
        sysctls: &["net.ipv4.conf.all.route_localnet=1"],
        nft: None,
        iptables: Some(KUBE_NAT),
        docker0: false,
    });
    assert_eq!(
        outcome(
            &open,
            "nat.published-loopback",
            "TCP",
            "192.0.2.254:*",
            "127.0.0.1:8080"
        ),
        "delivered"
    );
    assert_eq!(outcome(&open, A, "TCP", "192.0.2.254:*", "127.0.0.1:7001"), "delivered");

    let rules = format!("{KUBE_NAT}{KUBE_FIREWALL}");
    let fenced = prove_case(&Case {
        name: "kubefw",
        sysctls: &["net.ipv4.conf.all.route_localnet=1"],
        nft: None,
        iptables: Some(&rules),
        docker0: false,
    });
    assert_eq!(outcome(&fenced, A, "TCP", "192.0.2.254:*", "127.0.0.1:7001"), "dropped");
    assert_eq!(outcome(&fenced, A, "UDP", "192.0.2.254:*", "127.0.0.1:7003"), "dropped");
    // KUBE-FIREWALL exempts DNAT-ed connections: the NodePort itself stays reachable.
    assert_eq!(
        outcome(
            &fenced,
            "nat.published-loopback",
            "TCP",
            "192.0.2.254:*",
            "127.0.0.1:8080"
        ),
        "delivered"
    );
    // KUBE-FIREWALL drops only non-loopback sources: a datagram from 127.0.0.2 gets through,
    // and the application sees a loopback peer.
    assert_eq!(
        outcome(&fenced, A, "UDP", "127.0.0.2:*", "127.0.0.1:7003"),
        "delivered-to-trust"
    );
    let route = finding(&fenced, "net.route-localnet", None);
    assert_eq!(route["status"], "open", "{route:#}");
    assert!(
        route["evidence"].to_string().contains("rule matched"),
        "the neighbour's drops should be attributed to the KUBE-FIREWALL rule: {route:#}"
    );
    assert!(
        route["evidence"]
            .to_string()
            .contains("delivered: udp 127.0.0.2 -> 127.0.0.1"),
        "{route:#}"
    );
}

const GUARD: &str = "table inet loopback_guard {\n\
  chain prerouting {\n\
    type filter hook prerouting priority raw; policy accept;\n\
    iifname != \"lo\" ip saddr 127.0.0.0/8 counter drop\n\
    iifname != \"lo\" ip daddr 127.0.0.0/8 counter drop\n\
    iifname != \"lo\" ip6 saddr ::1 counter drop\n\
    iifname != \"lo\" ip6 daddr ::1 counter drop\n\
    iifname != \"lo\" ip6 saddr ::ffff:127.0.0.0/104 counter drop\n\
    iifname != \"lo\" ip6 daddr ::ffff:127.0.0.0/104 counter drop\n\
  }\n\
}\n";

#[test]
fn the_complete_antispoof_table_blocks_everything_whatever_the_sysctls() {
    if !require_root("the_complete_antispoof_table_blocks_everything_whatever_the_sysctls") {
        return;
    }
    let r = prove_case(&Case {
        name: "guard",
        sysctls: &["net.ipv4.conf.all.route_localnet=1", "net.ipv4.conf.all.accept_local=1"],
        nft: Some(GUARD),
        iptables: None,
        docker0: false,
    });
    let lines = lab_lines(&r);
    assert!(lines.len() >= 15, "{lines:#?}");
    for line in &lines {
        assert!(
            line.contains(": dropped — "),
            "the guard table let this through: {line}"
        );
    }
    assert_eq!(
        outcome(&r, M, "UDP", "[::ffff:127.0.0.1]:*", "[2001:db8::1]:7008"),
        "dropped"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("rule matched") && l.contains("ip6 saddr ::ffff:127.0.0.0/104")),
        "the mapped drop should be attributed to its rule: {lines:#?}"
    );
    assert_proven(&r, "net.loopback-source-trust", Some("udp:[::]:7008"), "blocked");
    assert_proven(&r, "net.route-localnet", None, "blocked");
    assert_proven(&r, "proto.udp-loopback", Some("udp:127.0.0.1:7010"), "blocked");
    assert_antispoof(&r, "ipv4", "blocked");
    assert_antispoof(&r, "ipv6", "blocked");
}
