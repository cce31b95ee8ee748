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

/// Runs `loopwarden ARGS` in a namespace of its own when root (so that the host is never read),
/// else here, unprivileged.
fn run_isolated(tag: &str, args: &[&str]) -> std::process::Output {
    if loopwarden_lab::netns::can_create_namespaces() {
        let ns = common::namespace(tag);
        common::run_loopwarden(&ns, args)
    } else {
        common::output_within(
            Command::new(common::loopwarden()).args(args),
            common::LOOPWARDEN_TIMEOUT,
        )
    }
}

#[test]
fn snapshots_are_written_for_their_owner_only_and_never_through_a_planted_file() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let tmp = common::TempDir::new("cli-out");
    let dir = tmp.path();
    let fresh = dir.join("fresh.json");
    // A file someone left world-readable, and a symlink planted where the snapshot goes.
    let loose = dir.join("loose.json");
    std::fs::write(&loose, "old").expect("write");
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let victim = dir.join("victim");
    std::fs::write(&victim, "untouched").expect("write");
    let planted = dir.join("planted.json");
    std::os::unix::fs::symlink(&victim, &planted).expect("symlink");
    for (i, out) in [&fresh, &loose, &planted].iter().enumerate() {
        let got = run_isolated(
            &format!("out{i}"),
            &["facts", "--out", out.to_str().expect("utf-8 path")],
        );
        assert_eq!(got.status.code(), Some(0), "{}", String::from_utf8_lossy(&got.stderr));
        let meta = std::fs::symlink_metadata(out).expect("snapshot written");
        assert!(meta.is_file(), "{} is not a regular file", out.display());
        assert_eq!(meta.mode() & 0o777, 0o600, "{}", out.display());
        let text = std::fs::read_to_string(out).expect("read snapshot");
        assert!(text.contains("\"schema\": \"loopwarden.facts/v1\""), "{text}");
    }
    assert_eq!(std::fs::read_to_string(&victim).expect("read"), "untouched");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    let bad = run(&["facts", "--out", "/nonexistent/dir/host.json"]);
    assert_eq!(bad.status.code(), Some(2));
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(said.contains("/nonexistent/dir/host.json"), "{said}");
    // The temporary file is an implementation detail the user never named.
    assert!(!said.contains(".tmp"), "{said}");
}

#[test]
fn findings_keep_their_exit_status_when_the_reader_closes_the_pipe() {
    if !common::require_root("findings_keep_their_exit_status_when_the_reader_closes_the_pipe") {
        return;
    }
    let ns = common::namespace("pipe-status");
    // A loopback TCP listener: at least the low `local.tcp-any-uid` finding.
    let _listener = common::python_in(
        &ns,
        None,
        "import socket, time\ns = socket.socket(); s.bind(('127.0.0.1', 7101)); s.listen()\nprint('ready', flush=True)\ntime.sleep(600)",
    );
    let lw = common::loopwarden();
    // `head -1` as the CI gate does; `true` reads nothing and exits at once, so the
    // write certainly meets a closed pipe.
    for reader in ["head -1", "true"] {
        let script = format!("set -o pipefail; {lw} audit --fail-on low | {reader}");
        let out = common::output_within(&mut ns.command(&["bash", "-c", &script]), common::LOOPWARDEN_TIMEOUT);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "`… | {reader}` with findings: {err}");
        assert!(!err.contains("error") && !err.contains("panicked"), "{err}");
    }
    let script = format!("set -o pipefail; {lw} audit --fail-on critical | true");
    let out = common::output_within(&mut ns.command(&["bash", "-c", &script]), common::LOOPWARDEN_TIMEOUT);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `loopwarden ARGS` with `stdin` as its standard input.
fn run_with_stdin(args: &[&str], stdin: std::process::Stdio) -> std::process::Output {
    Command::new(common::loopwarden())
        .args(args)
        .stdin(stdin)
        .output()
        .expect("run loopwarden")
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crates/core/tests/fixtures/facts/namespace-every-listener-kind.json"
);

/// Endless or random input is refused within a second, naming the byte that shows it is not a
/// snapshot — not read up to the size limit first.
#[test]
fn devices_and_binaries_are_refused_at_once_naming_the_problem() {
    // /dev/urandom starts with '{' once in 256 runs, or with whitespace: its first problem is
    // then a later byte, still in the first read.
    for (device, said) in [
        ("/dev/zero", "byte 0 is 0x00, a control character"),
        ("/dev/urandom", "byte "),
    ] {
        let started = std::time::Instant::now();
        let out = run(&["audit", "--facts", device]);
        let took = started.elapsed();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{device}: {err}");
        assert!(err.contains(device) && err.contains(said), "{device}: {err}");
        assert!(took < std::time::Duration::from_secs(5), "{device} took {took:?}");
    }
    let started = std::time::Instant::now();
    let file = std::fs::File::open("/dev/zero").expect("open /dev/zero");
    let out = run_with_stdin(&["audit", "--facts", "-"], file.into());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("standard input") && err.contains("byte 0 is 0x00"),
        "{err}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// `--facts -` reads standard input, with the same report as the file.
#[test]
fn a_snapshot_on_standard_input_is_audited_like_the_file() {
    let from_file = run(&["audit", "--json", "--facts", FIXTURE]);
    let file = std::fs::File::open(FIXTURE).expect("open fixture");
    let from_stdin = run_with_stdin(&["audit", "--json", "--facts", "-"], file.into());
    assert_eq!(from_stdin.status.code(), from_file.status.code());
    assert!(
        from_file.status.code() == Some(1),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );
    assert_eq!(from_stdin.stdout, from_file.stdout);
}

/// Each cause once; encodings named with the offset of the first bad byte.
#[test]
fn snapshot_errors_say_each_cause_once_and_where() {
    let tmp = common::TempDir::new("cli-err");
    let cases: [(&str, &[u8], &str); 4] = [
        (
            "truncated.json",
            b"{\"schema\": \"loopwarden.facts/v1\", \"host\": {",
            "EOF while parsing",
        ),
        ("bom.json", b"\xEF\xBB\xBF{}", "UTF-8 byte order mark"),
        (
            "latin1.json",
            b"{\"schema\": \"caf\xE9\"}",
            "byte 15 (0xe9) is not UTF-8",
        ),
        ("utf16.json", b"\xFF\xFE{\0}\0", "UTF-16 little-endian byte order mark"),
    ];
    for (name, bytes, said) in cases {
        let path = tmp.path().join(name);
        std::fs::write(&path, bytes).expect("write");
        let out = run(&["audit", "--facts", path.to_str().expect("utf-8 path")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert_eq!(err.matches(said).count(), 1, "{name}: {err}");
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains(name), "{name}: {err}");
    }
}

/// `--fail-on never` reports without failing; progress never reaches a pipe.
#[test]
fn fail_on_never_exits_zero_and_a_pipe_gets_no_progress() {
    let out = run(&["audit", "--facts", FIXTURE, "--fail-on", "never"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("findings ("));
    let failing = run(&["audit", "--facts", FIXTURE]);
    assert_eq!(failing.status.code(), Some(1));
}

#[test]
fn output_options_are_checked_and_errors_name_the_input() {
    let both = run(&["audit", "--json", "--format", "html"]);
    assert_eq!(both.status.code(), Some(2), "--json is --format json: not both");
    let unknown = run(&["audit", "--format", "pdf"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("human, json, html, prometheus"));
    // Every reporting verb offers every format.
    for verb in ["audit", "prove", "fleet"] {
        let help = run(&[verb, "--help"]);
        assert!(
            String::from_utf8_lossy(&help.stdout).contains("prometheus:"),
            "{verb} --help: {}",
            String::from_utf8_lossy(&help.stdout)
        );
    }
    let none = run(&["fleet", "/nonexistent/fleet-dir"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&none.stderr).contains("/nonexistent/fleet-dir"));
    let tmp = common::TempDir::new("cli-fleet");
    let empty = run(&["fleet", tmp.path().to_str().expect("utf-8 path")]);
    assert_eq!(empty.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no snapshot found"));
}

/// `--out` into a pipe or a device writes into it: the FIFO and the device stay what they are
/// (renaming over `/dev/null` as root would break it for the whole host).
#[test]
fn out_writes_into_pipes_and_devices_and_never_replaces_them() {
    let tmp = common::TempDir::new("cli-out-stream");
    let fifo = tmp.path().join("report.fifo");
    let fifo_c = std::ffi::CString::new(fifo.to_str().expect("utf-8 path")).expect("no NUL");
    // SAFETY: mkfifo on a path in this test's own directory.
    assert_eq!(unsafe { libc::mkfifo(fifo_c.as_ptr(), 0o600) }, 0);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).expect("read the fifo"))
    };
    let out = run(&[
        "audit",
        "--facts",
        FIXTURE,
        "--format",
        "json",
        "--out",
        fifo.to_str().expect("utf-8"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let text = reader.join().expect("reader");
    assert!(text.contains("loopwarden.report/v1"), "{text}");
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::symlink_metadata(&fifo)
        .expect("still there")
        .file_type()
        .is_fifo());
    if !common::require_root("out_writes_into_pipes_and_devices_and_never_replaces_them") {
        return;
    }
    // A private /dev with its own null device: the host's is never at stake.
    let script = format!(
        "mount -t tmpfs none /dev && mknod -m 666 /dev/null c 1 3 && {} audit --facts {FIXTURE} --format prometheus --out /dev/null; stat -c %F /dev/null",
        common::loopwarden()
    );
    let dev = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let said = String::from_utf8_lossy(&dev.stdout);
    assert_eq!(
        said.trim(),
        "character special file",
        "{said}{}",
        String::from_utf8_lossy(&dev.stderr)
    );
}
