//! `loopwarden guard` as a user meets it: a help that teaches with examples, and errors that
//! name the bad input (exit 2), before anything is bound.

mod common;

use common::loopwarden;
use std::process::Command;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(loopwarden()).args(args).output().expect("run loopwarden");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_teaches_with_examples_and_the_fix_for_the_upstream() {
    let (code, out, _) = run(&["guard", "--help"]);
    assert_eq!(code, 0);
    for needle in [
        "Examples:",
        "loopwarden guard --listen 127.0.0.1:8080 --to 127.0.0.1:18080 --allow-user alice",
        "--listen unix:/run/app/app.sock",
        "loopwarden harden --allow 18080=loopwarden-guard",
        "[[front]]",
        "--status",
    ] {
        assert!(out.contains(needle), "--help lacks {needle:?}:\n{out}");
    }
}

#[test]
fn bad_input_is_named_and_exits_2() {
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "guard",
                "--listen",
                "0.0.0.0:8080",
                "--to",
                "127.0.0.1:18080",
                "--allow-user",
                "root",
            ],
            "--listen 0.0.0.0:8080: 0.0.0.0 is not loopback",
        ),
        (
            &[
                "guard",
                "--listen",
                "localhost:8080",
                "--to",
                "192.0.2.7:80",
                "--allow-user",
                "root",
            ],
            "--to 192.0.2.7:80: 192.0.2.7 is not loopback",
        ),
        (
            &["guard", "--listen", "localhost:8080", "--to", "127.0.0.1:18080"],
            "allows nobody: give at least one --allow-user or --allow-group",
        ),
        (
            &[
                "guard",
                "--listen",
                "localhost:8080",
                "--to",
                "127.0.0.1:18080",
                "--allow-user",
                "no-such-user-lw",
            ],
            "allowed user \"no-such-user-lw\": no such user \"no-such-user-lw\"",
        ),
        (
            &[
                "guard",
                "--listen",
                "unix:relative.sock",
                "--to",
                "127.0.0.1:18080",
                "--allow-user",
                "root",
            ],
            "unix:relative.sock is not an absolute path",
        ),
        (
            &["guard", "--config", "/nonexistent/lw-guard.toml"],
            "cannot read guard config /nonexistent/lw-guard.toml",
        ),
    ];
    for (args, want) in cases {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: expected {want:?} in:\n{err}");
    }
}

#[test]
fn status_without_running_guards_says_so() {
    let dir = std::env::temp_dir().join(format!("lw-guard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let (code, out, _) = run(&["guard", "--status", "--status-dir", dir.to_str().expect("path")]);
    std::fs::remove_dir_all(&dir).expect("cleanup");
    assert_eq!(code, 0);
    assert!(out.starts_with("no running guard publishes its status under"), "{out}");
}
