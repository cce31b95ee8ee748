//! Truth on a Kubernetes-style node whose pods sit on a real CNI bridge (review of issue 8, lab
//! item 5): the reference `bridge` plugin of containernetworking-plugins (what containerd and
//! CRI-O run under Kubernetes) creates `cni0` in the victim namespace and a pod namespace
//! behind it, with host-local IPAM; kube-proxy's `route_localnet=1` is on. Services on udp
//! 127.0.0.1:8125 and tcp 127.0.0.1:8000.
//!
//! How the truth is established: the independent scapy attacker (`tests/real/attacker.py`) runs
//! inside the pod, on its `eth0`, and sends to `cni0`'s MAC with destination 127.0.0.1 (a
//! datagram, and a TCP handshake with data from its own address); `tests/real/receiver.py` logs
//! what arrived. Both are delivered.
//!
//! What loopwarden must say: route-localnet open and proven, attributed to the pods behind
//! `cni0` and the CNI bridge plugin, not to Docker; the lab rows fired from the pods behind
//! `cni0`, delivered to the socket.

mod common;

use common::real::*;
use common::{cannot_run, namespace, require_root, TempDir};
use serde_json::Value;
use std::process::Stdio;

/// The pod's address from host-local IPAM (the first after the gateway, `cni0`'s .1).
const POD: &str = "198.51.100.2";

/// Runs the CNI `bridge` plugin (ADD) in `host` for the pod namespace `pod`: `cni0` as gateway,
/// no masquerade (nothing leaves the test namespaces), addresses from 198.51.100.0/24.
fn cni_add(host: &common::Namespace, pod: &common::Namespace, ipam_dir: &std::path::Path) {
    let config = serde_json::json!({
        "cniVersion": "1.0.0", "name": "lwtest", "type": "bridge", "bridge": "cni0",
        "isGateway": true, "ipMasq": false,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "198.51.100.0/24"}]],
                 "dataDir": ipam_dir.to_string_lossy()}
    });
    let mut cmd = host.command(&["/usr/lib/cni/bridge"]);
    cmd.env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", "lwtest")
        .env("CNI_NETNS", format!("/run/netns/{}", pod.name()))
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run the CNI bridge plugin");
    if let Some(mut stdin) = child.stdin.take() {
        use std::io::Write;
        stdin.write_all(config.to_string().as_bytes()).expect("CNI config");
    }
    let out = child.wait_with_output().expect("CNI bridge plugin");
    assert!(
        out.status.success(),
        "bridge plugin: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether a finding or lab row names Docker.
fn names_docker(v: &Value) -> bool {
    v.to_string().contains("Docker")
}

#[test]
fn pods_on_a_cni_bridge_reach_loopback_and_the_finding_names_the_cni_bridge() {
    let name = "pods_on_a_cni_bridge_reach_loopback_and_the_finding_names_the_cni_bridge";
    let plugin = std::path::Path::new("/usr/lib/cni/bridge").is_file()
        || cannot_run(
            name,
            "containernetworking-plugins is not installed (scripts/install-test-deps.sh installs it)",
        );
    if !require_root(name) || !require_truth_tools(name, &[]) || !plugin {
        return;
    }
    let mut ledger = Ledger::new("CNI bridge plugin (cni0), route_localnet=1");
    let lan = Lan::new("cni", Ipv6::Global);
    let pod = namespace("pod");
    let ipam = TempDir::new("cni-ipam");
    cni_add(&lan.victim, &pod, ipam.path());
    lan.victim_sysctls(&["net.ipv4.conf.all.route_localnet=1"]);
    let cni_mac = link_mac(&lan.victim, "cni0");
    let rx = Receiver::in_namespace(&lan.victim, &["udp:127.0.0.1:8125", "tcp:127.0.0.1:8000"]);
    let mut atk = attacker_on(&pod, "eth0", &cni_mac, &[POD]);
    for (attack, truth) in [
        (Attack::udp("pod-udp-8125", POD, "127.0.0.1", 8125), TruthIs::Delivered),
        (Attack::tcp("pod-tcp-8000", POD, "127.0.0.1", 8000), TruthIs::Delivered),
    ] {
        let t = atk.fire(&rx, &attack);
        ledger.establish(&attack, &t, truth);
    }
    drop(atk);

    let runs = Runs::collect(&lan.victim);
    ledger.run_worked("5 audit --prove", &runs.audit_prove);
    ledger.run_worked("5 prove", &runs.prove);
    ledger.expect(
        "5 route-localnet",
        "pod → 127.0.0.1:8125/8000 via cni0 delivered",
        "audit --prove",
        &runs.audit_prove,
        "net.route-localnet",
        None,
        Expect::OpenProven,
    );
    let proven: Vec<&Value> = runs.audit_prove.json["findings"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["check"] == "net.route-localnet" && f["confidence"] == "proven")
        .collect();
    let title = proven.first().map(|f| f["title"].to_string()).unwrap_or_default();
    ledger.record(
        "5 attribution",
        "the attackers were pods behind cni0 (CNI bridge plugin)",
        format!("audit --prove title: {title}"),
        title.contains("pods behind cni0") && !proven.iter().any(|f| names_docker(f)),
    );
    for (proto, dst) in [("udp", "127.0.0.1:8125"), ("tcp", "127.0.0.1:8000")] {
        let pred = lab_row(proto, dst, Some("cni0"));
        ledger.lab(
            "5 lab from the pod side",
            &format!("{proto} pod → {dst} delivered"),
            &runs.prove,
            true,
            pred,
        );
        let rows = lab_rows(&runs.prove.json, pred);
        let said: Vec<String> = rows
            .iter()
            .map(|r| format!("{} · {}", r["attacker"], r["outcome"]))
            .collect();
        ledger.record(
            "5 lab wording",
            "fired from the pods behind cni0 (CNI bridge plugin), not Docker's containers",
            said.join(" | "),
            !rows.is_empty()
                && rows.iter().all(|r| {
                    r["attacker"]
                        .as_str()
                        .is_some_and(|a| a.starts_with("pods behind cni0") && a.contains("CNI"))
                        && !names_docker(r)
                }),
        );
    }
    ledger.finish();
}
