//! The `--probe` flags' contract: probing asks this host, so it cannot go with a saved snapshot;
//! `--no-post` and `--verbose` only mean something with `--probe` and are refused without it;
//! and a probe that found nothing still says what it asked.

mod common;

use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(common::loopwarden())
        .args(args)
        .output()
        .expect("run loopwarden")
}

#[test]
fn probe_refuses_a_saved_snapshot() {
    let out = run(&["audit", "--probe", "--facts", "/nonexistent/snap.json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--probe") && err.contains("--facts"), "{err}");
}

#[test]
fn no_post_needs_probe() {
    let out = run(&["audit", "--no-post"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--probe"), "{err}");
}

#[test]
fn help_explains_the_probe_flags() {
    let out = run(&["audit", "--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in ["--probe", "--no-post", "--verbose"] {
        assert!(text.contains(flag), "audit --help lacks {flag}: {text}");
    }
}

#[test]
fn probe_flags_are_refused_without_probe_even_with_a_snapshot() {
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crates/core/tests/fixtures/facts/namespace-every-listener-kind.json"
    );
    for flag in ["--no-post", "--verbose"] {
        let out = run(&["audit", "--facts", fixture, flag]);
        assert_eq!(out.status.code(), Some(2), "{flag}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(flag) && err.contains("--probe"), "{err}");
        assert!(out.stdout.is_empty(), "no report for a refused command line");
    }
}

/// Nothing here speaks HTTP: the report still says what was probed and what was not.
#[test]
fn a_probe_that_finds_nothing_says_what_it_asked() {
    if !common::require_root("a_probe_that_finds_nothing_says_what_it_asked") {
        return;
    }
    let ns = common::namespace("probesaid");
    let _held = common::python_in(
        &ns,
        None,
        r#"
import socket, threading, time
def closer(address):
    s = socket.socket(); s.bind(address); s.listen()
    def run():
        while True:
            c, _ = s.accept(); c.close()
    threading.Thread(target=run, daemon=True).start()
closer(("127.0.0.1", 7500)); closer(("0.0.0.0", 7501))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 7502))
a = socket.socket(socket.AF_UNIX); a.bind("\0lw-probe-said"); a.listen()
print("ready", flush=True)
time.sleep(120)
"#,
    );
    let out = common::run_loopwarden(&ns, &["audit", "--probe", "--fail-on", "never"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "--fail-on never: {err}");
    assert!(err.is_empty(), "no progress on a pipe: {err}");
    assert!(
        text.contains("probe: 2 TCP listeners asked as a web page would (0 speak HTTP, 0 HTTPS); 1 listener beyond loopback asked to relay to a canary (HTTP GET/CONNECT, SOCKS4/4a/5): 0 did"),
        "{text}"
    );
    assert!(
        text.contains(
            "probe: not probed: 1 UDP service and 1 Unix socket (the probes speak HTTP, TLS and SOCKS over TCP)"
        ),
        "{text}"
    );
    let json = common::audit_json(&ns, &["--probe"]);
    assert!(json["activity"].as_array().is_some_and(|a| a.len() == 2), "{json:#}");
}
