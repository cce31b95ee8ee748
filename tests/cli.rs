//! The command line's contract: exit codes, error messages that name the bad input, no panics.

mod common;

use std::process::Command;

fn run(args: &[&str]) -> std::process::Output {
    Command::new(common::loopwarden())
        .args(args)
        .output()
        .expect("run loopwarden")
}

#[test]
fn unknown_severity_is_an_error_naming_it() {
    let out = run(&["audit", "--fail-on", "severe"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("severe") && err.contains("info, low, medium, high, critical"),
        "{err}"
    );
}

#[test]
fn missing_snapshot_is_an_error_naming_the_file() {
    let out = run(&["audit", "--facts", "/nonexistent/snap.json"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/snap.json"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn malformed_and_foreign_snapshots_are_refused_clearly() {
    let tmp = common::TempDir::new("cli");
    let dir = tmp.path();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "{\"schema\": \"loopwarden.facts/v1\", \"host\": 3}").expect("write");
    let out = run(&["audit", "--facts", bad.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.json") && err.contains("not a loopwarden facts snapshot"),
        "{err}"
    );

    let foreign = dir.join("foreign.json");
    std::fs::write(&foreign, "{\"schema\": \"other/v9\"}").expect("write");
    let out = run(&["audit", "--facts", foreign.to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unsupported snapshot schema \"other/v9\""), "{err}");
}

#[test]
fn help_teaches_the_verbs() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for verb in ["audit", "facts", "checks"] {
        assert!(text.contains(verb), "--help does not mention {verb}: {text}");
    }
}
