//! The `--probe` flags' contract: probing asks this host, so it cannot go with a saved snapshot,
//! and `--no-post` only means something with `--probe`.

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
