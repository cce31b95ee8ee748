//! `loopwarden prove --scenario`: the built-in demonstrations through the binary, the exit
//! codes, a bad scenario name, and clean-up when the run is interrupted.

mod common;

use common::*;
use serde_json::Value;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Every lab run sweeps namespaces left by dead runs: the sweep test runs alone (write), the
/// other lab runs of this file together (read).
static LAB: std::sync::RwLock<()> = std::sync::RwLock::new(());

fn prove(args: &[&str]) -> (Option<i32>, Value) {
    let out = Command::new(loopwarden())
        .arg("prove")
        .args(args)
        .arg("--json")
        .output()
        .expect("run prove");
    let report = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), report)
}

fn attacks<'a>(report: &'a Value, attack: &str) -> Vec<&'a Value> {
    report["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["attack"] == attack)
        .collect()
}

fn leftover_namespaces(pid: u32) -> Vec<String> {
    let list = must(Command::new("ip").args(["netns", "list"]));
    list.lines()
        .filter(|l| l.contains(&format!("-{pid}-")))
        .map(str::to_string)
        .collect()
}

#[test]
fn an_unknown_scenario_is_an_error_naming_it_and_the_choices() {
    let out = Command::new(loopwarden())
        .args(["prove", "--scenario", "nope"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'nope'") && err.contains("kube-route-localnet") && err.contains("hardened"),
        "{err}"
    );
}

#[test]
fn mapped_loopback_udp_reaches_both_v6_sockets_with_a_loopback_peer() {
    let _lab = LAB.read().unwrap_or_else(|e| e.into_inner());
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
        mapped
            .iter()
            .find(|r| r["service"] == service)
            .map(|r| r["outcome"].clone())
            .expect("mapped result")
    };
    assert_eq!(outcome("udp:[::]:5353"), "delivered-to-trust");
    assert_eq!(outcome("udp:[::]:5354"), "delivered-to-trust");
    assert_eq!(outcome("tcp:[::]:8443"), "dropped");
    for r in attacks(&report, "ipv6.src-loopback") {
        assert_eq!(r["outcome"], "dropped", "{r:#}");
        assert!(
            r["evidence"].to_string().contains("Ip6InHdrErrors"),
            "the kernel says why: {r:#}"
        );
    }
}

#[test]
fn hardened_blocks_every_attack_and_exits_clean() {
    let _lab = LAB.read().unwrap_or_else(|e| e.into_inner());
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

/// `prove --scenario kube-route-localnet --format FORMAT --out FILE` (an attack gets through:
/// exit 1), and what it wrote.
fn kube_route_localnet_as(format: &str) -> String {
    let tmp = TempDir::new(&format!("prove-{format}"));
    let file = tmp.path().join("proof");
    let out = Command::new(loopwarden())
        .args([
            "prove",
            "--scenario",
            "kube-route-localnet",
            "--format",
            format,
            "--out",
        ])
        .arg(&file)
        .output()
        .expect("run prove");
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(&file).expect("what prove wrote")
}

/// The page of a proof is the lab's: titled as such, with the kernel the attacks ran on (a
/// scenario has no host kernel), and the paths the lab proved drawn to the services attacked —
/// route_localnet's to the kubelet's loopback ports, not to "this host".
#[test]
fn the_proof_page_is_titled_as_the_lab_s_with_its_kernel_and_proven_paths() {
    let _lab = LAB.read().unwrap_or_else(|e| e.into_inner());
    let test = "the_proof_page_is_titled_as_the_lab_s_with_its_kernel_and_proven_paths";
    if !require_root(test) {
        return;
    }
    let html = kube_route_localnet_as("html");
    let kernel = must(Command::new("uname").arg("-r"));
    assert!(
        html.contains("<title>loopwarden prove of scenario-kube-route-localnet (scenario:kube-route-localnet)</title>"),
        "{html}"
    );
    assert!(
        html.contains(&format!("kernel {} (the lab's)", kernel.trim())),
        "no lab kernel"
    );
    assert!(!html.contains("loopwarden audit of"), "not an audit of this host");
    assert!(
        html.contains("attacks from a neighbour namespace"),
        "what the lab fired is said"
    );
    let edge = |service: &str| {
        html.split("<g class=\"edge\"").any(|g| {
            g.contains("data-check=\"net.route-localnet\"")
                && g.contains("data-status=\"open\"")
                && g.contains("data-confidence=\"proven\"")
                && g.contains(&format!("→ {service}"))
        })
    };
    assert!(
        edge("tcp:127.0.0.1:10248"),
        "route_localnet proven open to the kubelet's healthz port"
    );
    assert!(!edge("this host"), "no route_localnet edge to the host");
}

/// A proof as metrics: the audit of what the lab mirrored with its outcomes, and the attacks by
/// outcome; `promtool` accepts the file.
#[test]
fn a_proof_as_metrics_counts_the_attacks_that_got_through() {
    let _lab = LAB.read().unwrap_or_else(|e| e.into_inner());
    if !require_root("a_proof_as_metrics_counts_the_attacks_that_got_through") {
        return;
    }
    let text = kube_route_localnet_as("prometheus");
    let value = |prefix: &str| -> u64 {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit_once(' '))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(|| panic!("no {prefix}:\n{text}"))
    };
    let got_through = ["delivered", "delivered-to-trust"]
        .iter()
        .map(|o| {
            value(&format!(
                "loopwarden_prove_attacks{{netns=\"scenario:kube-route-localnet\",outcome=\"{o}\"}}"
            ))
        })
        .sum::<u64>();
    assert!(got_through >= 1, "route_localnet lets attacks through:\n{text}");
    assert!(
        value(
            "loopwarden_findings{netns=\"scenario:kube-route-localnet\",check=\"net.route-localnet\",status=\"open\"}"
        ) >= 1,
        "{text}"
    );
    let tmp = TempDir::new("prove-prom");
    let file = tmp.path().join("proof.prom");
    std::fs::write(&file, &text).expect("write the metrics");
    let check = must(
        Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::fs::File::open(&file).expect("open")),
    );
    assert!(!check.contains("error"), "{check}");
}

/// Starts a lab run, waits until its namespaces exist, sends `signal`, and requires a clean
/// "interrupted" exit with every namespace removed.
fn interrupt_mid_run(signal: libc::c_int) {
    let _lab = LAB.read().unwrap_or_else(|e| e.into_inner());
    let child = Command::new(loopwarden())
        .args(["prove", "--scenario", "hardened", "--json"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn prove");
    let pid = child.id();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while leftover_namespaces(pid).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        !leftover_namespaces(pid).is_empty(),
        "the lab never created its namespaces"
    );
    // SAFETY: signalling the child this test started, by its pid.
    unsafe {
        libc::kill(pid as i32, signal);
    }
    let out = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "signal {signal}: {err}");
    assert!(err.contains("interrupted"), "{err}");
    assert!(
        leftover_namespaces(pid).is_empty(),
        "left behind: {:?}",
        leftover_namespaces(pid)
    );
}

#[test]
fn an_interrupted_run_removes_its_namespaces() {
    if !require_root("an_interrupted_run_removes_its_namespaces") {
        return;
    }
    interrupt_mid_run(libc::SIGINT);
}

#[test]
fn a_hangup_removes_the_namespaces_too() {
    if !require_root("a_hangup_removes_the_namespaces_too") {
        return;
    }
    interrupt_mid_run(libc::SIGHUP);
}

/// A snapshot whose ruleset has a rule the lab cannot load (a cgroup path that does not exist
/// here) next to the guard table.
fn snapshot_with_unloadable_rule() -> std::path::PathBuf {
    let ruleset = "table inet loopback_guard {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority raw; policy accept;\n\
        \t\tiifname != \"lo\" ip6 saddr ::ffff:127.0.0.0/104 counter drop\n\t}\n}\n\
        table inet host_policy {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\
        \t\tsocket cgroupv2 level 2 \"system.slice/lw-no-such.service\" ip saddr 192.0.2.0/24 drop\n\t\ttcp dport 22 accept\n\t}\n}\n";
    let facts = serde_json::json!({
        "schema": "loopwarden.facts/v1",
        "host": {"hostname": "h", "kernel": "6.18.0", "netns": "n", "privileged": true, "collected_at": 0, "limits": []},
        "inet_sockets": [
            {"protocol": "udp", "address": "::", "port": 5353, "v6only": true, "state": "unconnected", "peer": null,
             "bound_device": null, "uid": 0, "inode": 0, "owners": []},
            {"protocol": "udp", "address": "0.0.0.0", "port": 5353, "v6only": null, "state": "unconnected", "peer": null,
             "bound_device": null, "uid": 0, "inode": 0, "owners": []}
        ],
        "unix_sockets": [], "processes": [],
        "interfaces": [{"name": "eth0", "index": 2, "up": true, "loopback": false, "kind": null, "mac": null,
                        "addresses": [{"address": "192.0.2.1", "prefix_len": 24}, {"address": "2001:db8::1", "prefix_len": 64}]}],
        "sysctls": {"net.ipv4.conf.all.route_localnet": "0", "net.ipv4.conf.eth0.route_localnet": "0"},
        "names": {"hosts_file": null, "nsswitch_hosts": null},
        "accounts": {"users": [], "groups": []},
        "firewall": {"nft_json": null, "nft_text": ruleset, "iptables": []}
    });
    let path = std::env::temp_dir().join(format!("{}.json", loopwarden_lab::netns::unique_name("unloadable")));
    std::fs::write(&path, facts.to_string()).expect("write snapshot");
    path
}

/// A route_localnet host whose only guard drops loopback-destined packets by the CPU that handles
/// them (`meta cpu 0-1023`: every CPU of the lab, not every CPU a host may have — a real rule
/// names fewer, and which CPU handles a packet differs between the lab and the host anyway): the
/// lab's drop is no proof, so it is uncertain (without that, it read as a refutation).
#[test]
fn a_drop_by_a_rule_that_depends_on_the_cpu_is_never_called_proof() {
    let _lab = LAB.read().unwrap_or_else(|e| e.into_inner());
    if !require_root("a_drop_by_a_rule_that_depends_on_the_cpu_is_never_called_proof") {
        return;
    }
    let ruleset =
        "table inet cpu_guard {\n\tchain prerouting {\n\t\ttype filter hook prerouting priority raw; policy accept;\n\
        \t\tiifname \"eth0\" ip daddr 127.0.0.0/8 meta cpu 0-1023 drop\n\t}\n}\n";
    let facts = serde_json::json!({
        "schema": "loopwarden.facts/v1",
        "host": {"hostname": "h", "kernel": "6.18.0", "netns": "n", "privileged": true, "collected_at": 0, "limits": []},
        "inet_sockets": [
            {"protocol": "tcp", "address": "127.0.0.1", "port": 8080, "v6only": null, "state": "listen", "peer": null,
             "bound_device": null, "uid": 0, "inode": 0, "owners": []}
        ],
        "unix_sockets": [], "processes": [],
        "interfaces": [{"name": "eth0", "index": 2, "up": true, "loopback": false, "kind": null, "mac": null,
                        "addresses": [{"address": "192.0.2.1", "prefix_len": 24}]}],
        "sysctls": {"net.ipv4.conf.all.route_localnet": "1", "net.ipv4.conf.eth0.route_localnet": "1"},
        "names": {"hosts_file": null, "nsswitch_hosts": null},
        "accounts": {"users": [], "groups": []},
        "firewall": {"nft_json": null, "nft_text": ruleset, "iptables": []}
    });
    let path = std::env::temp_dir().join(format!("{}.json", loopwarden_lab::netns::unique_name("cpu-rule")));
    std::fs::write(&path, facts.to_string()).expect("write snapshot");
    let (code, report) = prove(&["--facts", path.to_str().expect("utf-8 path")]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(report["controls_passed"], true, "{report:#}");
    assert_eq!(code, Some(1), "uncertain or delivered: never a clean exit");
    let dependent = report["mirror"]["state_dependent"].as_array().expect("state_dependent");
    assert!(
        dependent
            .iter()
            .any(|d| d["item"].as_str().is_some_and(|i| i.contains("meta cpu 0"))),
        "{dependent:#?}"
    );
    let attacks: Vec<&Value> = report["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter(|r| r["control"] == false && r["destination"].as_str().is_some_and(|d| d.starts_with("127.")))
        .collect();
    assert!(!attacks.is_empty(), "{report:#}");
    for r in &attacks {
        let delivered = r["outcome"].as_str().is_some_and(|o| o.starts_with("delivered"));
        let doubted = r["uncertain"].to_string().contains("meta cpu");
        assert!(delivered || doubted, "a drop called proof: {r:#}");
    }
    assert!(
        attacks.iter().any(|r| r["outcome"] == "dropped"),
        "the lab's CPUs all drop: {attacks:#?}"
    );
}

#[test]
fn a_rule_that_cannot_be_loaded_is_named_and_makes_its_family_uncertain() {
    let _lab = LAB.read().unwrap_or_else(|e| e.into_inner());
    if !require_root("a_rule_that_cannot_be_loaded_is_named_and_makes_its_family_uncertain") {
        return;
    }
    let path = snapshot_with_unloadable_rule();
    let (_, report) = prove(&["--facts", path.to_str().expect("utf-8 path")]);
    let audit = Command::new(loopwarden())
        .args([
            "audit",
            "--prove",
            "--json",
            "--facts",
            path.to_str().expect("utf-8 path"),
        ])
        .output()
        .expect("run audit --prove");
    let _ = std::fs::remove_file(&path);
    let audit: Value = serde_json::from_slice(&audit.stdout).expect("audit JSON");
    let limits = audit["host"]["limits"].to_string();
    assert!(
        limits.contains("prove: nftables left out: socket cgroupv2"),
        "the audit names the gap: {limits}"
    );
    let left_out = report["mirror"]["left_out"].as_array().expect("left_out");
    assert_eq!(left_out.len(), 1, "{left_out:#?}");
    assert!(
        left_out[0]["item"].as_str().expect("item").contains("socket cgroupv2"),
        "{left_out:#?}"
    );
    assert!(
        !left_out[0]["reason"].as_str().expect("reason").is_empty(),
        "nft's own words: {left_out:#?}"
    );
    assert_eq!(left_out[0]["family"], "ipv4");
    assert_eq!(
        report["mirror"]["nft_loaded"], true,
        "the rest of the ruleset is loaded"
    );
    let mapped = attacks(&report, "ipv6.src-mapped-loopback");
    assert_eq!(
        mapped[0]["outcome"], "dropped",
        "the guard rule was loaded: {mapped:#?}"
    );
    assert!(
        mapped[0]["uncertain"].as_array().expect("uncertain").is_empty(),
        "IPv6 is not affected"
    );
    for r in attacks(&report, "ipv4.src-loopback") {
        assert!(r["uncertain"].to_string().contains("socket cgroupv2"), "{r:#}");
    }
}

#[test]
fn audit_prove_without_root_is_a_clear_error() {
    // setpriv needs root to drop to another uid.
    if !require_root("audit_prove_without_root_is_a_clear_error") {
        return;
    }
    let path = snapshot_with_unloadable_rule();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            loopwarden(),
            "audit",
            "--prove",
            "--facts",
        ])
        .arg(&path)
        .output()
        .expect("run setpriv");
    let _ = std::fs::remove_file(&path);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the lab needs root"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn namespaces_left_by_a_killed_run_are_swept_and_named() {
    let _lab = LAB.write().unwrap_or_else(|e| e.into_inner());
    if !require_root("namespaces_left_by_a_killed_run_are_swept_and_named") {
        return;
    }
    // A pid that no process has: the run that made this namespace is gone.
    let dead = (1_000_000..4_000_000)
        // SAFETY: kill(pid, 0) only asks whether the process exists.
        .find(|pid| unsafe { libc::kill(*pid, 0) } != 0)
        .expect("a free pid");
    let stale = format!("lw-victim-{dead}-0-1f2e");
    must(Command::new("ip").args(["netns", "add", &stale]));
    let out = Command::new(loopwarden())
        .args(["prove", "--scenario", "hardened", "--json"])
        .output()
        .expect("run prove");
    let left = must(Command::new("ip").args(["netns", "list"]));
    if left.contains(&stale) {
        let _ = Command::new("ip").args(["netns", "del", &stale]).status();
        panic!("the stale namespace {stale} was not swept");
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("proof JSON");
    assert!(report["notes"].to_string().contains(&stale), "{:#}", report["notes"]);
}
