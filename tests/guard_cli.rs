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
    let flat = out.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("a present Origin is checked on every request, reads included")
            && !flat.contains("state-changing"),
        "--allow-origin says when the Origin is checked:\n{out}"
    );
    assert!(
        flat.contains("every header whose name contains '_' are removed") && flat.contains("--upstream-user"),
        "{out}"
    );
}

#[test]
fn bad_input_is_named_and_exits_2() {
    let cases: [(&[&str], &str); 9] = [
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
        (
            &[
                "guard",
                "--listen",
                "localhost:8080",
                "--to",
                "127.0.0.1:18080",
                "--allow-user",
                "root",
                "--workers",
                "0",
            ],
            "invalid value '0' for '--workers <N>'",
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
                "--check-upstreams-for",
                "root",
            ],
            "allowed user \"no-such-user-lw\": no such user \"no-such-user-lw\"",
        ),
        (
            &[
                "guard",
                "--listen",
                "localhost:8080",
                "--to",
                "127.0.0.1:18080",
                "--allow-user",
                "root",
                "--upstream-user",
                "no-such-user-lw",
            ],
            "upstream user \"no-such-user-lw\": no such user \"no-such-user-lw\"",
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

/// revA guard #13: `--help` says what each mode protects against; the man page's SYNOPSIS is
/// the command as typed, with the values options take.
#[test]
fn help_says_what_tcp_mode_lets_through_and_the_synopsis_is_a_typeable_command() {
    let (_, out, _) = run(&["guard", "--help"]);
    for needle in [
        "Without --http (TCP mode)",
        "a web page in an allowed user's browser",
        "browser pages of allowed users pass",
        "loopwarden guard --listen ADDR --to ADDR",
    ] {
        assert!(out.contains(needle), "--help lacks {needle:?}:\n{out}");
    }
    let (code, page, err) = run(&["man", "guard"]);
    assert_eq!(code, 0, "{err}");
    let synopsis = page
        .split(".SH SYNOPSIS")
        .nth(1)
        .and_then(|s| s.split(".SH").next())
        .expect("a SYNOPSIS section");
    assert!(
        synopsis.contains(r"loopwarden guard \-\-listen ADDR \-\-to ADDR")
            && synopsis.contains(r"loopwarden guard \-\-config FILE")
            && !synopsis.contains("loopwarden-guard"),
        "{synopsis}"
    );
}

/// revA guard #12, #7, #13: wildcards, options of the other kind of front, an identity header a
/// client could remove, a TOML error: named, one line, exit 2.
#[test]
fn wildcards_unix_options_on_tcp_reserved_identity_headers_and_toml_errors_are_refused() {
    let base = [
        "guard",
        "--listen",
        "localhost:8080",
        "--to",
        "127.0.0.1:18080",
        "--allow-user",
        "root",
    ];
    let with = |extra: &[&str]| {
        let mut args: Vec<&str> = base.to_vec();
        args.extend_from_slice(extra);
        run(&args)
    };
    let cases: [(&[&str], &str); 7] = [
        (
            &["--http", "--allow-host", "*"],
            "allowed host \"*\": expected one host name",
        ),
        (
            &["--http", "--allow-origin", "http://*.example"],
            "allowed origin \"http://*.example\": expected one origin",
        ),
        (
            &["--http", "--allow-origin", "*"],
            "allowed origin \"*\": expected one origin",
        ),
        (
            &["--socket-mode", "0600"],
            "--socket-mode, --socket-owner and --socket-group apply to unix: fronts only",
        ),
        (
            &["--http", "--identity-header", "Connection"],
            "identity header \"Connection\" is a hop-by-hop",
        ),
        (
            &["--http", "--identity-header", "X-Forwarded-User"],
            "identity header \"X-Forwarded-User\" is a hop-by-hop",
        ),
        (
            &["--http", "--identity-header", "X_Loopwarden_User"],
            "identity header \"X_Loopwarden_User\" is not a header name (letters, digits and '-')",
        ),
    ];
    for (extra, want) in cases {
        let (code, _, err) = with(extra);
        assert_eq!(code, 2, "{extra:?}: {err}");
        assert!(err.contains(want), "{extra:?}: expected {want:?} in:\n{err}");
    }
    let dir = std::env::temp_dir().join(format!("lw-guard-cli-toml-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[[front]]\nlisten = \"localhost:8080\"\nto = \"127.0.0.1:18080\"\nallow_users = 1\n",
    )
    .expect("config");
    let (code, _, err) = run(&["guard", "--config", file.to_str().expect("path")]);
    std::fs::remove_dir_all(&dir).expect("cleanup");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("line 4, column"), "{err}");
    assert!(
        !err.contains("\\n") && err.trim().lines().count() == 1,
        "one line, no literal \\n:\n{err}"
    );
}
