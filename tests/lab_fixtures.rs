//! `prove` against real captured rulesets (`fixtures/firewall/*`: what Docker 27/28, kube-proxy,
//! ufw and the CIS rules install, captured in a namespace by `fixtures/firewall/capture.sh`),
//! each mirrored with its captured interfaces and sysctls and the same few listeners.
//!
//! Expected outcomes: Docker before 28 publishes `127.0.0.1:P` to the LAN and Docker 28's raw
//! drop closes it (moby #41872, PR #49325; notes §1 DNAT row, §2); KUBE-FIREWALL drops direct
//! loopback destinations (measured by hand, see `lab_prove.rs`) but not a spoofed unconfigured
//! source under route_localnet (notes §1 column b); a source-only CIS rule leaves the mapped
//! source open (notes §2); the complete raw table stops everything (column d); ufw's
//! deny-incoming policy drops unsolicited traffic, while the lab's controls (run before the
//! ruleset is loaded) still pass.

mod common;

use common::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn listener(proto: &str, addr: &str, port: u16, v6only: Value) -> Value {
    let state = if proto == "tcp" { "listen" } else { "unconnected" };
    json!({"protocol": proto, "address": addr, "port": port, "v6only": v6only, "state": state,
           "peer": null, "bound_device": null, "uid": 0, "inode": 0, "owners": []})
}

/// A snapshot of the captured host: its interfaces, sysctls and rules, plus loopback TCP/UDP,
/// a wildcard TCP and a V6ONLY `[::]` UDP listener.
fn snapshot(fixture: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/firewall")
        .join(fixture);
    let links: Value = serde_json::from_str(&read(&dir, "interfaces.json")).expect("interfaces.json");
    let interfaces: Vec<Value> = links
        .as_array()
        .expect("interface list")
        .iter()
        .map(|l| {
            let loopback = l["flags"].as_array().is_some_and(|f| f.iter().any(|x| x == "LOOPBACK"));
            let addresses: Vec<Value> = l["addr_info"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| json!({"address": a["local"], "prefix_len": a["prefixlen"]}))
                .collect();
            json!({"name": l["ifname"], "index": l["ifindex"], "up": true, "loopback": loopback,
                   "kind": null, "mac": l["address"], "addresses": addresses})
        })
        .collect();
    let sysctls: serde_json::Map<String, Value> = read(&dir, "sysctls.txt")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), Value::String(v.trim().to_string())))
        .collect();
    let iptables: Vec<Value> = [("ipv4", "iptables-save.txt"), ("ipv6", "ip6tables-save.txt")]
        .iter()
        .filter(|(_, f)| !read(&dir, f).trim().is_empty())
        .map(|(family, f)| json!({"family": family, "backend": "nft", "text": read(&dir, f)}))
        .collect();
    let facts = json!({
        "schema": "loopwarden.facts/v1",
        "host": {"hostname": fixture, "kernel": "", "netns": fixture, "privileged": true, "collected_at": 0, "limits": []},
        "inet_sockets": [
            listener("tcp", "127.0.0.1", 7001, Value::Null), listener("udp", "127.0.0.1", 7003, Value::Null),
            listener("tcp", "0.0.0.0", 22, Value::Null), listener("udp", "::", 7008, json!(true)),
        ],
        "unix_sockets": [], "processes": [], "interfaces": interfaces, "sysctls": sysctls,
        "names": {"hosts_file": null, "nsswitch_hosts": null}, "accounts": {"users": [], "groups": []},
        "firewall": {"nft_json": null, "nft_text": read(&dir, "ruleset.nft"), "iptables": iptables}
    });
    let path = std::env::temp_dir().join(format!("{}.json", loopwarden_lab::netns::unique_name(fixture)));
    std::fs::write(&path, facts.to_string()).expect("write snapshot");
    path
}

/// Runs `prove --json` on the fixture and checks the mirror took every rule.
fn prove(fixture: &str) -> Value {
    let path = snapshot(fixture);
    let out = Command::new(loopwarden())
        .args(["prove", "--json", "--facts"])
        .arg(&path)
        .output()
        .expect("run prove");
    let _ = std::fs::remove_file(&path);
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{fixture}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(report["controls_passed"], true, "{fixture}: {report:#}");
    assert_eq!(
        report["mirror"]["left_out"],
        json!([]),
        "{fixture}: the captured ruleset loads whole"
    );
    report
}

fn outcome<'a>(report: &'a Value, attack: &str, destination: &str) -> &'a Value {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["attack"] == attack && r["destination"] == destination)
        .map(|r| &r["outcome"])
        .unwrap_or_else(|| panic!("no {attack} to {destination}: {report:#}"))
}

const MAPPED: &str = "ipv6.src-mapped-loopback";

#[test]
fn docker_27_publishes_loopback_to_the_lan_and_docker_28_does_not() {
    if !require_root("docker_27_publishes_loopback_to_the_lan_and_docker_28_does_not") {
        return;
    }
    let old = prove("docker-27-loopback-publish");
    assert_eq!(outcome(&old, "nat.published-loopback", "127.0.0.1:8080"), "delivered");
    let new = prove("docker-28-loopback-publish");
    let nat = new["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["attack"] == "nat.published-loopback")
        .expect("nat attack");
    assert_eq!(nat["outcome"], "dropped", "{nat:#}");
    let evidence = nat["evidence"].to_string();
    assert!(
        evidence.contains("dropped in prerouting")
            && evidence
                .contains("iptables-nft raw: -A PREROUTING -d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 8080 -j DROP"),
        "the drop is Docker 28's raw rule: {nat:#}"
    );
}

#[test]
fn kube_firewall_stops_loopback_destinations_but_not_a_spoofed_source() {
    if !require_root("kube_firewall_stops_loopback_destinations_but_not_a_spoofed_source") {
        return;
    }
    let r = prove("kube-proxy-firewall");
    assert_eq!(outcome(&r, "ipv4.dst-loopback", "127.0.0.1:7001"), "dropped");
    assert_eq!(outcome(&r, "ipv4.dst-loopback", "127.0.0.2:22"), "dropped");
    let spoofed = r["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|x| {
            x["attack"] == "ipv4.src-loopback" && x["source"].as_str().is_some_and(|s| s.starts_with("127.0.0.2:"))
        })
        .expect("spoofed 127.0.0.2 SYN");
    assert_eq!(spoofed["outcome"], "blind", "{spoofed:#}");
}

#[test]
fn a_source_only_cis_rule_leaves_the_mapped_source_open() {
    if !require_root("a_source_only_cis_rule_leaves_the_mapped_source_open") {
        return;
    }
    let r = prove("cis-loopback-source-only");
    assert_eq!(outcome(&r, MAPPED, "[2001:db8::10]:7008"), "delivered-to-trust");
    assert_eq!(outcome(&r, "ipv4.dst-loopback", "127.0.0.1:7001"), "dropped");
}

#[test]
fn the_complete_raw_table_and_ufw_stop_every_attack() {
    if !require_root("the_complete_raw_table_and_ufw_stop_every_attack") {
        return;
    }
    for fixture in ["raw-antispoof-complete", "ufw-stock"] {
        let r = prove(fixture);
        let attacks: Vec<&Value> = r["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter(|x| x["control"] == false)
            .collect();
        assert!(attacks.len() >= 8, "{fixture}: {r:#}");
        for a in attacks {
            assert_eq!(a["outcome"], "dropped", "{fixture}: {a:#}");
        }
    }
}
