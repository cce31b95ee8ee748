//! `audit --prove` as people read it: one lab attack speaks to several findings (the delivered
//! `127.0.0.1` packet shows route_localnet, the missing anti-spoof drop and the UDP service
//! alike), yet each attack is printed once, numbered, and referred to after; the report says
//! what the lab did. A host namespace with a LAN interface, route_localnet=1 and two loopback
//! services, attacked from a real neighbour namespace.

mod common;

use common::*;
use std::collections::HashMap;

#[test]
fn each_lab_attack_is_shown_once_and_referred_to() {
    if !require_root("each_lab_attack_is_shown_once_and_referred_to") {
        return;
    }
    let host = namespace("provedup");
    let peer = namespace("provepeer");
    host.exec(&[
        "ip",
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        "peer0",
        "netns",
        peer.name(),
    ])
    .expect("veth");
    for argv in [
        &["ip", "addr", "add", "192.0.2.1/24", "dev", "eth0"][..],
        &["ip", "link", "set", "eth0", "up"],
        &["sysctl", "-qw", "net.ipv4.conf.eth0.route_localnet=1"],
    ] {
        host.exec(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    }
    peer.exec(&["ip", "link", "set", "peer0", "up"]).expect("peer up");
    let _services = python_in(
        &host,
        None,
        "import socket, time\nt = socket.socket(); t.bind(('127.0.0.1', 7600)); t.listen()\nu = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.1', 7601))\nprint('ready', flush=True)\ntime.sleep(120)",
    );
    let out = run_loopwarden(&host, &["audit", "--prove", "--fail-on", "never"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    let mut shown: HashMap<String, usize> = HashMap::new();
    let mut referred = 0;
    for line in text.lines().map(str::trim_start) {
        let Some(rest) = line.strip_prefix("· lab [") else {
            continue;
        };
        if rest.ends_with("shown above") {
            referred += 1;
            continue;
        }
        let (number, attack) = rest.split_once("]: ").expect("lab [n]: attack");
        *shown.entry(attack.to_string()).or_default() += 1;
        assert!(number.parse::<usize>().is_ok(), "{line}");
    }
    assert!(!shown.is_empty(), "no lab attack in the report: {text}");
    assert!(
        shown.values().all(|&n| n == 1),
        "an attack printed twice: {shown:#?}\n{text}"
    );
    assert!(referred > 0, "no attack referred to: {text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("lab: 1 interface(s) mirrored; attacks from a neighbour namespace: ")),
        "{text}"
    );

    // The JSON keeps every finding's evidence whole, each lab line under each finding it proves.
    let report = audit_json(&host, &["--prove"]);
    let under_findings: usize = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            f["evidence"]
                .as_array()
                .expect("evidence")
                .iter()
                .filter(|e| e.as_str().is_some_and(|e| e.starts_with("lab: ")))
                .count()
        })
        .sum();
    assert!(under_findings > shown.len(), "{report:#}");
}
