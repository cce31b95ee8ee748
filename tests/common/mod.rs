//! Shared support for the end-to-end tests: root detection with a clear skip message, running the
//! binary inside a test namespace, and child processes that are killed (by pid) when dropped.
#![allow(dead_code)]

pub use loopwarden_lab::netns::Namespace;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A world-searchable temporary directory with a unique name, removed when dropped — also when
/// the test fails.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    /// Creates `lw-<tag>-…` under the system temp dir, mode 0755.
    pub fn new(tag: &str) -> TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(loopwarden_lab::netns::unique_name(tag));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        TempDir(dir)
    }

    /// The directory.
    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Path of the binary under test.
pub fn loopwarden() -> &'static str {
    env!("CARGO_BIN_EXE_loopwarden")
}

/// True when the test may create namespaces; otherwise prints why it is skipped and returns false.
pub fn require_root(test: &str) -> bool {
    if loopwarden_lab::netns::can_create_namespaces() {
        return true;
    }
    eprintln!("SKIPPED {test}: needs root and iproute2 to create network namespaces");
    false
}

/// A namespace for one test, named after it.
pub fn namespace(tag: &str) -> Namespace {
    Namespace::create(tag).unwrap_or_else(|e| panic!("cannot create test namespace: {e}"))
}

/// Runs `loopwarden ARGS` inside `ns`.
pub fn run_loopwarden(ns: &Namespace, args: &[&str]) -> Output {
    let mut argv = vec![loopwarden()];
    argv.extend_from_slice(args);
    ns.command(&argv)
        .stdin(Stdio::null())
        .output()
        .expect("run loopwarden in namespace")
}

/// Runs `loopwarden audit --json --fail-on critical ARGS` inside `ns` and parses the report.
pub fn audit_json(ns: &Namespace, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["audit", "--json"];
    args.extend_from_slice(extra);
    let out = run_loopwarden(ns, &args);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "audit failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "audit output is not JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// A child process started by a test; killed by its pid and reaped when dropped.
pub struct Spawned(pub Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `argv` inside `ns` in the background.
pub fn spawn_in(ns: &Namespace, argv: &[&str]) -> Spawned {
    Spawned(
        ns.command(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn in namespace"),
    )
}

/// Starts a Python 3 program (`-c CODE`) inside `ns`, optionally as another uid, and waits until
/// it prints `ready` on stdout, so its sockets exist before the test goes on.
pub fn python_in(ns: &Namespace, uid: Option<u32>, code: &str) -> Spawned {
    use std::io::{BufRead, BufReader};
    let mut argv: Vec<String> = vec![];
    let uid_arg;
    if let Some(uid) = uid {
        uid_arg = format!("--reuid={uid}");
        argv.extend([
            "setpriv".into(),
            uid_arg.clone(),
            "--regid=65534".into(),
            "--clear-groups".into(),
        ]);
    }
    // Another uid may not reach a per-user interpreter on PATH (pyenv shims under /root).
    let python = if uid.is_some() && std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    argv.extend([python.into(), "-u".into(), "-c".into(), code.into()]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let mut child = ns
        .command(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    let stdout = child.stdout.take().expect("piped stdout");
    let spawned = Spawned(child);
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reader = BufReader::new(stdout);
    while Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim() == "ready" {
            break;
        }
    }
    assert_eq!(line.trim(), "ready", "python helper did not become ready: {code}");
    spawned
}

/// Findings of a report for `check`, optionally only those about `service`.
pub fn findings<'a>(report: &'a serde_json::Value, check: &str, service: Option<&str>) -> Vec<&'a serde_json::Value> {
    report["findings"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|f| f["check"] == check)
                .filter(|f| service.is_none_or(|s| f["service"] == s))
                .collect()
        })
        .unwrap_or_default()
}

/// The service ids that have a finding of `check`, sorted.
pub fn service_ids(report: &serde_json::Value, check: &str) -> Vec<String> {
    let mut ids: Vec<String> = findings(report, check, None)
        .iter()
        .filter_map(|f| f["service"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

/// Runs a command, panicking with its stderr when it fails.
pub fn must(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub mod docker;
pub mod real;
pub mod ufw;
