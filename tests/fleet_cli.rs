//! `loopwarden fleet` through the binary, without Ansible: a directory of real snapshots (the
//! captured namespace of `crates/core/tests/fixtures/facts/`, re-dated and with its privilege and
//! limits changed as other hosts' would be) beside a FIFO, a symbolic link and a hidden file.
//! The fleet must never block on the FIFO, must say what it did not read, must show each
//! snapshot's age and flag the old one stale, must show the unprivileged one incomplete, never
//! clean, and must accept `--fail-on never` as `audit` does.

mod common;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crates/core/tests/fixtures/facts/namespace-every-listener-kind.json"
);

/// A FIFO or a hang must not keep a test waiting long.
const LIMIT: Duration = Duration::from_secs(30);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// The fixture snapshot as another host's: taken `age` seconds ago, as root or not, with
/// `limits`.
fn snapshot(dir: &Path, name: &str, age: u64, privileged: bool, limits: Value) {
    let mut facts: Value = serde_json::from_str(&std::fs::read_to_string(FIXTURE).expect("fixture")).expect("JSON");
    facts["host"]["collected_at"] = (now() - age).into();
    facts["host"]["privileged"] = privileged.into();
    facts["host"]["limits"] = limits;
    std::fs::write(dir.join(format!("{name}.json")), facts.to_string()).expect("write snapshot");
}

fn fleet(args: &[&str]) -> Output {
    common::output_within(Command::new(common::loopwarden()).arg("fleet").args(args), LIMIT)
}

fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.to_str().expect("utf-8 path")).expect("no NUL");
    // SAFETY: mkfifo on a path in this test's own directory.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        path.display()
    );
}

#[test]
fn stale_incomplete_and_unread_files_are_said_and_a_fifo_never_blocks() {
    let tmp = common::TempDir::new("fleet-cli");
    let dir = tmp.path().join("snapshots");
    std::fs::create_dir(&dir).expect("dir");
    snapshot(&dir, "fresh", 60, true, Value::Array(vec![]));
    snapshot(&dir, "old", 3 * 86_400, true, Value::Array(vec![]));
    snapshot(
        &dir,
        "unpriv",
        120,
        false,
        serde_json::json!([{"scope": "owners", "detail": "not root: other users' sockets have no owner"}]),
    );
    mkfifo(&dir.join("pipe.json"));
    std::os::unix::fs::symlink(dir.join("fresh.json"), dir.join("link.json")).expect("symlink");
    std::fs::write(dir.join(".hidden.json"), "not read").expect("hidden");
    let d = dir.to_str().expect("utf-8 path");

    let out = fleet(&["--json", d]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).expect("fleet JSON");
    let host = |name: &str| {
        json["hosts"]
            .as_array()
            .and_then(|h| h.iter().find(|h| h["name"] == name))
            .unwrap_or_else(|| panic!("no {name}: {json:#}"))
            .clone()
    };
    let names: Vec<&str> = json["hosts"]
        .as_array()
        .expect("hosts")
        .iter()
        .filter_map(|h| h["name"].as_str())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "the FIFO, the link and the hidden file are not hosts: {names:?}"
    );
    let (fresh, old, unpriv) = (host("fresh"), host("old"), host("unpriv"));
    assert_eq!(
        (fresh["stale"].as_bool(), old["stale"].as_bool()),
        (Some(false), Some(true))
    );
    assert!(
        old["age_seconds"]
            .as_u64()
            .is_some_and(|a| (3 * 86_400..3 * 86_400 + 60).contains(&a)),
        "{old:#}"
    );
    assert!(
        fresh["collected_at"].as_u64().is_some_and(|t| t + 120 > now()),
        "{fresh:#}"
    );
    assert_eq!(unpriv["incomplete"], true, "{unpriv:#}");
    assert_eq!(
        (unpriv["privileged"].as_bool(), unpriv["limits"].as_u64()),
        (Some(false), Some(1))
    );
    assert_eq!(fresh["incomplete"], false);
    assert_eq!(names[0], "old", "a stale host comes first: {names:?}");
    // Each host's whole report, read again one at a time.
    assert_eq!(fresh["report"]["schema"], "loopwarden.report/v1");
    let skipped = json["skipped"].to_string();
    assert!(
        skipped.contains("link.json") && skipped.contains("symbolic link"),
        "{skipped}"
    );
    assert!(skipped.contains("pipe.json") && skipped.contains("FIFO"), "{skipped}");

    let human = fleet(&[d]);
    let text = String::from_utf8_lossy(&human.stdout);
    let row = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row:\n{text}"))
            .to_string()
    };
    assert!(row("old ").contains("3d STALE"), "{text}");
    assert!(row("fresh").contains("1m") || row("fresh").contains("60s"), "{text}");
    assert!(text.contains("incomplete: taken without root"), "{text}");
    assert!(!row("unpriv").contains("clean"), "{text}");
    assert!(text.contains("link.json: a symbolic link"), "{text}");

    // --fail-on never: only the stale host makes the status 1; without it, 0.
    let never = fleet(&["--fail-on", "never", d]);
    assert_eq!(
        never.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&never.stderr)
    );
    std::fs::remove_file(dir.join("old.json")).expect("remove old");
    let never = fleet(&["--fail-on", "never", d]);
    assert_eq!(
        never.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&never.stderr)
    );
    let found = fleet(&["--fail-on", "info", d]);
    assert_eq!(found.status.code(), Some(1), "the fixture has findings");
    let long = fleet(&["--stale-after", "1m", "--fail-on", "never", d]);
    assert_eq!(
        long.status.code(),
        Some(1),
        "with a one-minute limit the 2-minute-old snapshot is stale"
    );
}

#[test]
fn a_fifo_named_on_the_command_line_is_unusable_not_waited_for() {
    let tmp = common::TempDir::new("fleet-fifo");
    let fifo = tmp.path().join("host.json");
    mkfifo(&fifo);
    let started = std::time::Instant::now();
    let out = fleet(&["--json", fifo.to_str().expect("utf-8 path")]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the FIFO blocked the fleet"
    );
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).expect("fleet JSON");
    let error = json["hosts"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("is a FIFO"), "{json:#}");
}

#[test]
fn a_fleet_as_metrics_labels_every_host_and_an_unusable_snapshot_is_not_clean() {
    let tmp = common::TempDir::new("fleet-prom");
    std::fs::copy(FIXTURE, tmp.path().join("web-1.json")).expect("copy the fixture");
    std::fs::write(tmp.path().join("db-1.json"), "{ not a snapshot").expect("write");
    let out = fleet(&["--format", "prometheus", tmp.path().to_str().expect("utf-8 path")]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("loopwarden_fleet_snapshot_usable{host=\"web-1\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("loopwarden_fleet_snapshot_usable{host=\"db-1\"} 0\n"),
        "{text}"
    );
    assert!(text.contains("loopwarden_findings{host=\"web-1\",netns="), "{text}");
    assert!(!text.contains("{host=\"db-1\",netns="), "{text}");
    assert!(
        text.contains("loopwarden_fleet_snapshot_stale{host=\"web-1\"} "),
        "{text}"
    );
    // One host alone says the same of its snapshot.
    let one = fleet(&[
        "--host",
        "web-1",
        "--format",
        "prometheus",
        tmp.path().to_str().expect("utf-8 path"),
    ]);
    let one = String::from_utf8_lossy(&one.stdout).into_owned();
    assert!(
        one.contains("loopwarden_fleet_snapshot_usable{host=\"web-1\"} 1\n"),
        "{one}"
    );
    assert!(one.contains("loopwarden_findings{host=\"web-1\",netns="), "{one}");
    assert!(!one.contains("db-1"), "{one}");
    // An unusable snapshot asked alone says so in the metrics (a file written before must not
    // keep saying it was fine), and counts as failing.
    let bad = fleet(&[
        "--host",
        "db-1",
        "--format",
        "prometheus",
        tmp.path().to_str().expect("utf-8 path"),
    ]);
    assert_eq!(bad.status.code(), Some(1), "{}", String::from_utf8_lossy(&bad.stderr));
    let bad = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert!(
        bad.contains("loopwarden_fleet_snapshot_usable{host=\"db-1\"} 0\n"),
        "{bad}"
    );
    // A host is asked for by its name as the table shows it: `x\x1by` is the file with the
    // ESC, not the one really named `x\x1by` (which the table shows as `x\\x1by`).
    std::fs::copy(FIXTURE, tmp.path().join("x\u{1b}y.json")).expect("copy");
    std::fs::copy(FIXTURE, tmp.path().join("x\\x1by.json")).expect("copy");
    let esc = fleet(&[
        "--host",
        "x\\x1by",
        "--format",
        "prometheus",
        tmp.path().to_str().expect("utf-8 path"),
    ]);
    let esc = String::from_utf8_lossy(&esc.stdout).into_owned();
    assert!(
        esc.contains("loopwarden_fleet_snapshot_usable{host=\"x\\\\x1by\"} 1\n"),
        "{esc}"
    );
    let literal = fleet(&[
        "--host",
        "x\\\\x1by",
        "--format",
        "prometheus",
        tmp.path().to_str().expect("utf-8 path"),
    ]);
    let literal = String::from_utf8_lossy(&literal.stdout).into_owned();
    assert!(
        literal.contains("loopwarden_fleet_snapshot_usable{host=\"x\\\\\\\\x1by\"} 1\n"),
        "{literal}"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (scripts/install-test-deps.sh installs it)");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let checked = promtool.wait_with_output().expect("promtool");
    assert!(
        checked.status.success(),
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}
