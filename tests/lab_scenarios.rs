//! `loopwarden prove --scenario`: the built-in demonstrations through the binary, the exit
//! codes, a bad scenario name, and clean-up when the run is interrupted.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

fn prove(args: &[&str]) -> (Option<i32>, Value) {
    let out = Command::new(loopwarden()).arg("prove").args(args).arg("--json").output().expect("run prove");
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), report)
}

fn attacks<'a>(report: &'a Value, attack: &str) -> Vec<&'a Value> {
    report["results"].as_array().expect("results").iter().filter(|r| r["attack"] == attack).collect()
}

fn leftover_namespaces(pid: u32) -> Vec<String> {
    let list = must(Command::new("ip").args(["netns", "list"]));
    list.lines().filter(|l| l.contains(&format!("-{pid}-"))).map(str::to_string).collect()
}

#[test]
fn an_unknown_scenario_is_an_error_naming_it_and_the_choices() {
    let out = Command::new(loopwarden()).args(["prove", "--scenario", "nope"]).output().expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"nope\"") && err.contains("kube-route-localnet") && err.contains("hardened"),
        "{err}"
    );
}

#[test]
fn mapped_loopback_udp_reaches_both_v6_sockets_with_a_loopback_peer() {
    if !require_root("mapped_loopback_udp_reaches_both_v6_sockets_with_a_loopback_peer") {
        return;
    }
    let (code, report) = prove(&["--scenario", "mapped-loopback-udp"]);
    assert_eq!(code, Some(1), "an attack got through: exit 1");
    assert_eq!(report["schema"], "loopwarden.proof/v1");
    assert_eq!(report["controls_passed"], true);
    assert!(report["results"][0]["control"] == true, "controls come first");
    let mapped = attacks(&report, "ipv6.src-mapped-loopback");
    let outcome = |service: &str| {
        mapped.iter().find(|r| r["service"] == service).map(|r| r["outcome"].clone()).expect("mapped result")
    };
    assert_eq!(outcome("udp:[::]:5353"), "delivered-to-trust");
    assert_eq!(outcome("udp:[::]:5354"), "delivered-to-trust");
    assert_eq!(outcome("tcp:[::]:8443"), "dropped");
    for r in attacks(&report, "ipv6.src-loopback") {
        assert_eq!(r["outcome"], "dropped", "{r:#}");
        assert!(r["evidence"].to_string().contains("Ip6InHdrErrors"), "the kernel says why: {r:#}");
    }
}

#[test]
fn hardened_blocks_every_attack_and_exits_clean() {
    if !require_root("hardened_blocks_every_attack_and_exits_clean") {
        return;
    }
    let (code, report) = prove(&["--scenario", "hardened"]);
    assert_eq!(report["controls_passed"], true);
    let results = report["results"].as_array().expect("results");
    assert!(results.iter().filter(|r| r["control"] == false).count() >= 10);
    for r in results.iter().filter(|r| r["control"] == false) {
        assert_eq!(r["outcome"], "dropped", "{r:#}");
    }
    assert_eq!(code, Some(0));
}

#[test]
fn an_interrupted_run_removes_its_namespaces() {
    if !require_root("an_interrupted_run_removes_its_namespaces") {
        return;
    }
    let child = Command::new(loopwarden())
        .args(["prove", "--scenario", "hardened", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn prove");
    let pid = child.id();
    std::thread::sleep(Duration::from_millis(250));
    // SAFETY: signalling the child this test started, by its pid.
    unsafe {
        libc::kill(pid as i32, libc::SIGINT);
    }
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.code() == Some(2) {
        assert!(err.contains("interrupted"), "{err}");
    } else {
        eprintln!("note: the run finished before SIGINT arrived ({})", out.status);
    }
    assert!(leftover_namespaces(pid).is_empty(), "left behind: {:?}", leftover_namespaces(pid));
}
