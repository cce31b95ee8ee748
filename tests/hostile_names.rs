//! What other users name their processes and sockets cannot drive root's terminal: a process
//! named with `prctl(PR_SET_NAME)` after terminal escapes, a Unix socket whose path holds a
//! newline, a forged report line and escapes, and a real socat forwarding to it (its command
//! line quotes the path) — all real, in a namespace made for the test. The report shows each
//! name escaped, keeps one finding per line, and emits no escape sequence but its own colours.

mod common;

use common::*;

/// A process name of 15 bytes (the kernel's limit) that would clear the screen and hide what
/// follows.
const NAME: &[u8] = b"\x1b[2J\x1b[8mevil";

/// The socket file's name: a newline, a line that looks like a finding, an escape, a bidi
/// override.
const SOCKET: &str = "a\n  CRITICAL forged: nothing to see\x1b[2J\u{202e}.sock";

fn holder(dir: &str) -> String {
    format!(
        r#"
import ctypes, os, socket, time
libc = ctypes.CDLL(None, use_errno=True)
assert libc.prctl(15, bytes({name:?}), 0, 0, 0) == 0  # PR_SET_NAME
t = socket.socket(); t.bind(("127.0.0.1", 7300)); t.listen()
path = os.path.join({dir}, {socket})
u = socket.socket(socket.AF_UNIX); u.bind(path); os.chmod(path, 0o777); u.listen()
print("ready", flush=True)
time.sleep(120)
"#,
        name = NAME,
        dir = serde_json::to_string(dir).expect("a string"),
        socket = serde_json::to_string(SOCKET).expect("a string"),
    )
}

/// Waits until something listens on 0.0.0.0:`port` in `ns` (socat starting), at most 5 s.
fn wait_for_listener(ns: &Namespace, port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        let ss = ns
            .exec(&["ss", "-Hltn", &format!("sport = :{port}")])
            .unwrap_or_default();
        if !ss.trim().is_empty() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("nothing listens on port {port}");
}

/// The escape sequences in `text`: `ESC [ … final-byte` and any other ESC with what follows it.
fn escape_sequences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find('\x1b') {
        let tail = &rest[i..];
        let end = tail
            .char_indices()
            .skip(2)
            .find(|(_, c)| c.is_ascii_alphabetic())
            .map_or(tail.len(), |(j, c)| j + c.len_utf8());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

#[test]
fn hostile_process_names_and_socket_paths_are_shown_escaped() {
    if !require_root("hostile_process_names_and_socket_paths_are_shown_escaped")
        || !require_tool("hostile_process_names_and_socket_paths_are_shown_escaped", "socat")
        || !require_tool("hostile_process_names_and_socket_paths_are_shown_escaped", "script")
    {
        return;
    }
    let ns = namespace("hostile");
    let tmp = TempDir::new("hostile");
    let dir = tmp.path().to_str().expect("utf-8 temp dir").to_string();
    std::fs::set_permissions(tmp.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let _holder = python_in(&ns, None, &holder(&dir));
    let path = format!("{dir}/{SOCKET}");
    let _socat = spawn_in(
        &ns,
        &[
            "socat",
            "TCP-LISTEN:9300,bind=0.0.0.0,fork,reuseaddr",
            &format!("UNIX-CONNECT:{path}"),
        ],
    );
    wait_for_listener(&ns, 9300);

    let report = audit_json(&ns, &[]);
    let names: Vec<&str> = report["services"]
        .as_array()
        .expect("services")
        .iter()
        .filter_map(|s| s["process"]["name"].as_str())
        .collect();
    assert!(
        names.contains(&std::str::from_utf8(NAME).expect("ascii")),
        "the snapshot keeps the real name: {names:?}"
    );
    let findings = report["findings"].as_array().expect("findings").len();

    let out = run_loopwarden(&ns, &["audit"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.code() == Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!text.contains('\x1b') && !text.contains('\u{202e}'), "{text}");
    assert!(
        text.contains("\\x1b[2J\\x1b[8mevil"),
        "the process name, escaped: {text}"
    );
    assert!(
        text.contains("a\\n  CRITICAL forged: nothing to see\\x1b[2J\\u{202e}.sock"),
        "the socket path, escaped: {text}"
    );
    assert!(text.contains("runs `socat"), "the forwarder's command line: {text}");
    assert!(
        !text.lines().any(|l| l.trim_start().starts_with("CRITICAL forged")),
        "a forged line: {text}"
    );
    let severity = |l: &&str| {
        ["CRITICAL", "HIGH", "MEDIUM", "LOW", "INFO"]
            .iter()
            .any(|s| l.starts_with(&format!("  {s} ")))
    };
    assert_eq!(
        text.lines().filter(severity).count(),
        findings,
        "one line per finding: {text}"
    );

    // On a terminal (a pty from script(1)) the report is coloured: its own colours are the only
    // escape sequences in it. Standard error goes to a file there, so no progress line mixes in.
    let lw = loopwarden();
    let err_file = format!("{dir}/stderr");
    let tty = common::output_within(
        &mut ns.command(&["script", "-qec", &format!("{lw} audit 2>{err_file}"), "/dev/null"]),
        LOOPWARDEN_TIMEOUT,
    );
    let coloured = String::from_utf8_lossy(&tty.stdout);
    let ours = [
        "\x1b[0m",
        "\x1b[1m",
        "\x1b[2m",
        "\x1b[31m",
        "\x1b[1;31m",
        "\x1b[33m",
        "\x1b[36m",
    ];
    let sequences = escape_sequences(&coloured);
    assert!(
        sequences.iter().any(|s| s == "\x1b[1m"),
        "coloured on a terminal: {coloured}"
    );
    let foreign: Vec<&String> = sequences.iter().filter(|s| !ours.contains(&s.as_str())).collect();
    assert!(foreign.is_empty(), "escape sequences not loopwarden's own: {foreign:?}");
    let err = std::fs::read_to_string(&err_file).expect("stderr file");
    assert!(
        err.is_empty(),
        "no progress when standard error is not a terminal: {err:?}"
    );

    // With standard error on the terminal, the progress line is drawn there (and erased): its
    // line erases and the colours are the only sequences, the hostile names never appear raw.
    let progress = common::output_within(
        &mut ns.command(&["script", "-qec", &format!("{lw} audit >/dev/null"), "/dev/null"]),
        LOOPWARDEN_TIMEOUT,
    );
    let drawn = String::from_utf8_lossy(&progress.stdout);
    assert!(
        drawn.contains("auditing") || drawn.contains("collecting"),
        "a progress line: {drawn:?}"
    );
    let foreign: Vec<String> = escape_sequences(&drawn)
        .into_iter()
        .filter(|s| !ours.contains(&s.as_str()) && s != "\x1b[2K" && s != "\x1b[?25l" && s != "\x1b[?25h")
        .collect();
    assert!(foreign.is_empty(), "escape sequences not loopwarden's own: {foreign:?}");
}

/// Interfaces named like `ip`'s own keywords (`help`, `dev`, `type`, `ip`), with a dot (a VLAN's
/// `eth0.7`) or a leading dash, on real veths with addresses, are mirrored by the lab as any
/// other: every name it hands `ip` follows `name` or `dev`, and sysctl keys use `/` (before,
/// `ip link set help up` printed `ip`'s usage and the lab exited 2).
#[test]
fn interfaces_named_like_ip_keywords_are_mirrored() {
    if !require_root("interfaces_named_like_ip_keywords_are_mirrored") {
        return;
    }
    let ns = namespace("ipwords");
    let names = [
        ("help", "192.0.2.1/26"),
        ("dev", "192.0.2.65/26"),
        ("type", "192.0.2.129/26"),
        ("ip", "192.0.2.193/26"),
        ("eth0.7", "198.51.100.1/24"),
        ("-h", "203.0.113.1/24"),
    ];
    for pair in names.chunks(2) {
        let (a, b) = (pair[0].0, pair[1].0);
        ns.exec(&["ip", "link", "add", "name", a, "type", "veth", "peer", "name", b])
            .unwrap_or_else(|e| panic!("veth {a}/{b}: {e}"));
    }
    for (name, addr) in names {
        ns.exec(&["ip", "addr", "add", addr, "dev", name])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        ns.exec(&["ip", "link", "set", "dev", name, "up"])
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let _listener = python_in(
        &ns,
        None,
        "import socket, time\ns = socket.socket(); s.bind(('127.0.0.1', 7310)); s.listen()\nprint('ready', flush=True)\ntime.sleep(600)",
    );
    let out = run_loopwarden(&ns, &["prove", "--json"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(matches!(out.status.code(), Some(0 | 1)), "prove: {}\n{err}", out.status);
    assert!(!err.contains("Usage: ip"), "{err}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("proof JSON");
    let text = report.to_string();
    for (name, _) in names {
        assert!(
            text.contains(&format!("\"{name}\"")),
            "{name} not in the proof: {report:#}"
        );
    }
    assert_eq!(report["mirror"]["left_out"], serde_json::json!([]), "{report:#}");
}

/// The lab runs `ip`, `nft`, `sysctl` and the iptables tools from the system's directories, not
/// from the caller's `PATH`: a user's directory first on root's `PATH` gets nothing run.
#[test]
fn the_lab_never_runs_programs_from_the_callers_path() {
    if !require_root("the_lab_never_runs_programs_from_the_callers_path") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("fakepath");
    let marker = tmp.path().join("ran");
    for tool in [
        "ip",
        "nft",
        "sysctl",
        "ss",
        "iptables-nft-restore",
        "iptables-legacy-restore",
    ] {
        let fake = tmp.path().join(tool);
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho {tool} >> {}\nexec /usr/sbin/{tool} \"$@\"\n",
                marker.display()
            ),
        )
        .expect("write fake tool");
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let path = format!("{}:{}", tmp.path().display(), std::env::var("PATH").unwrap_or_default());
    let mut cmd = std::process::Command::new(loopwarden());
    cmd.args(["prove", "--scenario", "hardened"]).env("PATH", path);
    let out = output_within(&mut cmd, LOOPWARDEN_TIMEOUT);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "prove: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let ran = std::fs::read_to_string(&marker).unwrap_or_default();
    assert!(ran.is_empty(), "root ran the caller's PATH programs: {ran}");
}
