//! A snapshot is untrusted input: `prove --facts` on a crafted one must not make the lab's root
//! tools read a local file or run a program, and must say what it refused.
//!
//! The snapshot is a real one (`loopwarden facts` of a namespace with an address and a loopback
//! listener), edited the way an attacker would: an nftables `include` of a root-only secret —
//! which `nft -f -` really follows, quoting the file's lines in its errors (shown by the first
//! test, against nft itself) — the same hidden behind JSON string escapes and an `include`
//! object in the nft JSON, and iptables lines with the bpf match's `--object-pinned PATH` and
//! `--modprobe PROGRAM`.

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

/// A root-only file with a token that must never be printed.
fn secret(dir: &Path) -> (String, String) {
    let token = format!("lw-secret-token-{}", std::process::id());
    let path = dir.join("secret");
    std::fs::write(&path, format!("{token}:$y$j9T$notahash:19000:0:99999:7:::\n")).expect("write secret");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod secret");
    (path.to_str().expect("utf-8 path").to_string(), token)
}

/// A real snapshot of a namespace with a LAN-side address and a loopback listener.
fn base_snapshot(ns: &Namespace, dir: &Path) -> Value {
    ns.exec(&["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1"])
        .expect("veth");
    ns.exec(&["ip", "addr", "add", "192.0.2.1/24", "dev", "eth0"])
        .expect("address");
    ns.exec(&["ip", "link", "set", "eth0", "up"]).expect("up");
    let _listener = python_in(
        ns,
        None,
        "import socket, time\ns = socket.socket(); s.bind(('127.0.0.1', 7201)); s.listen()\nprint('ready', flush=True)\ntime.sleep(600)",
    );
    let out = dir.join("base.json");
    let got = run_loopwarden(ns, &["facts", "--out", out.to_str().expect("utf-8 path")]);
    assert!(got.status.success(), "{}", String::from_utf8_lossy(&got.stderr));
    serde_json::from_str(&std::fs::read_to_string(&out).expect("read snapshot")).expect("snapshot JSON")
}

/// Writes `text` as a snapshot file and runs `prove --facts` on it (human and JSON); returns
/// everything printed and the JSON report.
fn prove_snapshot(ns: &Namespace, dir: &Path, name: &str, text: &str) -> (String, Value) {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write crafted snapshot");
    let path = path.to_str().expect("utf-8 path");
    let human = run_loopwarden(ns, &["prove", "--facts", path]);
    let json = run_loopwarden(ns, &["prove", "--facts", path, "--json"]);
    for out in [&human, &json] {
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "prove --facts {name}: {}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let printed = [&human.stdout, &human.stderr, &json.stdout, &json.stderr]
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    let report = serde_json::from_slice(&json.stdout).expect("proof JSON");
    (printed, report)
}

fn left_out(report: &Value) -> Vec<(String, String)> {
    report["mirror"]["left_out"]
        .as_array()
        .expect("left_out")
        .iter()
        .map(|l| {
            (
                l["item"].as_str().unwrap_or_default().to_string(),
                l["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn nft_really_follows_an_include_and_quotes_the_file() {
    if !require_root("nft_really_follows_an_include_and_quotes_the_file")
        || !require_tool("nft_really_follows_an_include_and_quotes_the_file", "nft")
    {
        return;
    }
    // The attack the lab must not enable, shown against nft itself in a throwaway namespace.
    let tmp = TempDir::new("nft-include");
    let (path, token) = secret(tmp.path());
    let ns = namespace("nftinclude");
    let mut child = ns
        .command(&["nft", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nft");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("include \"{path}\"\n").as_bytes())
        .expect("feed nft");
    let deadline = std::time::Instant::now() + COMMAND_TIMEOUT;
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    assert!(wait_until(&mut child, deadline).is_some(), "nft did not finish");
    assert!(stderr.contains(&token), "nft did not print the included file: {stderr}");
}

#[test]
fn a_crafted_snapshot_cannot_make_the_lab_read_files_or_run_programs() {
    if !require_root("a_crafted_snapshot_cannot_make_the_lab_read_files_or_run_programs") {
        return;
    }
    let tmp = TempDir::new("untrusted");
    let dir = tmp.path();
    let (secret_path, token) = secret(dir);
    let marker = dir.join("modprobe-ran");
    let modprobe = dir.join("modprobe.sh");
    std::fs::write(&modprobe, format!("#!/bin/sh\ntouch {}\n", marker.display())).expect("write");
    std::fs::set_permissions(&modprobe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let ns = namespace("untrusted");
    let base = base_snapshot(&ns, dir);

    let mut crafted = base.clone();
    crafted["firewall"]["nft_text"] = Value::String(format!(
        "table inet t {{\n\tchain input {{\n\t\ttype filter hook input priority filter; policy accept;\n\t}}\n}}\ninclude \"{secret_path}\"\n"
    ));
    let rules = format!(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A INPUT -p tcp --dport 7201 -m bpf --object-pinned {secret_path} -j DROP\n\
         -A INPUT -p tcp --dport 7202 --modprobe {} -m conntrack --ctstate NEW -j DROP\n\
         -A INPUT -p udp --dport 7203 -j DROP\nCOMMIT\n",
        modprobe.display()
    );
    crafted["firewall"]["iptables"] = serde_json::json!([
        {"family": "ipv4", "backend": "nft", "text": rules},
        {"family": "ipv4", "backend": "legacy", "text": rules},
    ]);
    let (printed, report) = prove_snapshot(&ns, dir, "crafted.json", &crafted.to_string());
    assert!(!printed.contains(&token), "the secret reached the output:\n{printed}");
    assert!(!marker.exists(), "the snapshot's --modprobe program ran");
    let left = left_out(&report);
    let refused = |needle: &str| {
        left.iter()
            .any(|(item, reason)| item.contains(needle) || reason.contains(needle))
    };
    assert!(
        left.iter()
            .any(|(item, reason)| item == "the whole ruleset" && reason.contains("`include` on line 6")),
        "{left:?}"
    );
    assert!(refused("--object-pinned") && refused("--modprobe"), "{left:?}");
    // The harmless rule of the same dumps was still loaded.
    assert!(
        !report["mirror"]["iptables_loaded"]
            .as_array()
            .expect("loaded")
            .is_empty(),
        "{report:#}"
    );
    assert!(
        printed.contains("refused:"),
        "the human report does not say what was refused:\n{printed}"
    );

    // The same include spelt with JSON escapes, and an include object in the nft JSON.
    let mut hidden = base.clone();
    hidden["firewall"]["nft_text"] = Value::String(format!("include \"{secret_path}\"\n"));
    hidden["firewall"]["nft_json"] = serde_json::json!({"nftables": [{"include": secret_path}]});
    let escaped = hidden.to_string().replacen("\"include \\\"", "\"\\u0069nclude \\\"", 1);
    assert!(escaped.contains("\\u0069nclude"), "the escape was not written");
    let (printed, report) = prove_snapshot(&ns, dir, "escaped.json", &escaped);
    assert!(!printed.contains(&token), "the secret reached the output:\n{printed}");
    let left = left_out(&report);
    assert!(
        left.iter().any(|(_, reason)| reason.contains("`include` on line 1")),
        "{left:?}"
    );
}

/// Host names where a ruleset wants an address (`ip saddr attacker.example`, a set element, a
/// `dnat to` target, iptables `-s`) are refused before `nft`/`iptables-restore` see them — they
/// would resolve them as root — each left-out entry naming the rule and the name; the numeric
/// rules of the same texts are still loaded.
#[test]
fn a_snapshots_host_names_are_refused_naming_the_rule_and_the_name() {
    if !require_root("a_snapshots_host_names_are_refused_naming_the_rule_and_the_name") {
        return;
    }
    let tmp = TempDir::new("hostnames");
    let ns = namespace("hostnames");
    let mut crafted = base_snapshot(&ns, tmp.path());
    crafted["firewall"]["nft_text"] = Value::String(
        "table inet t {\n\tchain input {\n\t\ttype filter hook input priority filter; policy accept;\n\
         \t\tip saddr attacker.example drop\n\
         \t\tip daddr { 192.0.2.1, \"in-braces.example\" } tcp dport 7201 drop\n\
         \t\tip saddr 198.51.100.9 drop\n\t}\n\
         \tchain pre {\n\t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         \t\ttcp dport 7202 dnat ip to nat-target.example:80\n\t}\n}\n"
            .into(),
    );
    let rules = "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         -A INPUT -s iptables-source.example -j DROP\n-A INPUT -s 203.0.113.5/32 -j DROP\nCOMMIT\n";
    crafted["firewall"]["iptables"] = serde_json::json!([{"family": "ipv4", "backend": "nft", "text": rules}]);
    let (_, report) = prove_snapshot(&ns, tmp.path(), "hostnames.json", &crafted.to_string());
    let left = left_out(&report);
    for (rule, name) in [
        ("ip saddr attacker.example drop", "attacker.example"),
        ("\"in-braces.example\" }", "in-braces.example"),
        ("dnat ip to nat-target.example:80", "nat-target.example"),
        ("-A INPUT -s iptables-source.example -j DROP", "iptables-source.example"),
    ] {
        assert!(
            left.iter()
                .any(|(item, reason)| item.contains(rule) && reason.contains(name) && reason.contains("resolve")),
            "{rule}: not refused with its name: {left:?}"
        );
    }
    assert_eq!(
        report["mirror"]["iptables_loaded"],
        serde_json::json!(["ipv4/nft"]),
        "{report:#}"
    );
    assert_eq!(report["mirror"]["nft_loaded"], serde_json::json!(true), "{report:#}");

    // A set's element line is not a rule that can be left out alone: the whole text is refused,
    // naming the line and the name.
    crafted["firewall"]["nft_text"] = Value::String(
        "table ip t {\n\tset bad {\n\t\ttype ipv4_addr\n\t\telements = { 192.0.2.7, \"set-element.example\" }\n\t}\n}\n"
            .into(),
    );
    let (_, report) = prove_snapshot(&ns, tmp.path(), "set.json", &crafted.to_string());
    let left = left_out(&report);
    assert!(
        left.iter().any(|(item, reason)| item == "the whole ruleset"
            && reason.contains("set-element.example")
            && reason.contains("line 4")),
        "{left:?}"
    );
    assert_eq!(report["mirror"]["nft_loaded"], serde_json::json!(false), "{report:#}");
}
