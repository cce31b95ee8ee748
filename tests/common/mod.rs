//! Shared support for the end-to-end tests: root and tool detection (a skip with a clear message,
//! or a failure on a full run), running the binary inside a test namespace, child processes that
//! are killed (by pid) when dropped, and waits that never hang.
#![allow(dead_code)]

pub use loopwarden_lab::netns::Namespace;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long one run of the binary may take before the test kills it and fails.
pub const LOOPWARDEN_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a helper command (`ip`, `nft`, `ssh-keygen` …) may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

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

/// Whether this is a full run (`LOOPWARDEN_E2E=1`, set by `.ci/run`): then a test that cannot
/// run fails instead of passing as skipped.
pub fn full_run() -> bool {
    std::env::var_os("LOOPWARDEN_E2E").is_some_and(|v| v == "1")
}

/// Reports that `test` cannot run because of `why`: a failure on a full run, else a `SKIPPED`
/// line on stderr. Returns false so that callers can `return` on it.
pub fn cannot_run(test: &str, why: &str) -> bool {
    assert!(
        !full_run(),
        "{test} cannot run: {why} (LOOPWARDEN_E2E=1: a full run skips nothing)"
    );
    eprintln!("SKIPPED {test}: {why}");
    false
}

/// True when the test may create namespaces; otherwise [`cannot_run`].
pub fn require_root(test: &str) -> bool {
    loopwarden_lab::netns::can_create_namespaces()
        || cannot_run(test, "needs root and iproute2 to create network namespaces")
}

/// True when `tool` is on `PATH`; otherwise [`cannot_run`], naming the installer.
pub fn require_tool(test: &str, tool: &str) -> bool {
    let on_path =
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()));
    on_path
        || cannot_run(
            test,
            &format!("{tool} is not installed (scripts/install-test-deps.sh installs it)"),
        )
}

/// Runs `cmd` to completion with its output captured, killing it (by its pid) and failing the
/// test if it takes longer than `limit`.
pub fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let shown = format!("{cmd:?}");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
    let deadline = Instant::now() + limit;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_until(&mut child, deadline);
    let collect = |rx: mpsc::Receiver<Vec<u8>>| {
        rx.recv_timeout(deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(1))
            .unwrap_or_default()
    };
    let (stdout, stderr) = (collect(stdout), collect(stderr));
    let Some(status) = status else {
        panic!(
            "{shown} did not finish within {limit:?} and was killed\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&stdout),
            String::from_utf8_lossy(&stderr)
        );
    };
    Output { status, stdout, stderr }
}

/// Reads a pipe to its end on a thread of its own; the bytes arrive on the receiver.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        let _ = tx.send(bytes);
    });
    rx
}

/// Waits for `child` until `deadline`; past it, kills the child by its pid, reaps it and returns
/// `None`.
pub fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

/// A namespace for one test, named after it.
pub fn namespace(tag: &str) -> TestNamespace {
    TestNamespace(Namespace::create(tag).unwrap_or_else(|e| panic!("cannot create test namespace: {e}")))
}

/// A test's namespace: when it goes, so does the state directory `loopwarden harden --apply` keeps
/// for it under the host's `/run/loopwarden/harden` (the kernel takes the namespace's table and
/// sysctls with it, not harden's files) — a test that applied harden and ended leaves nothing.
pub struct TestNamespace(pub Namespace);

impl std::ops::Deref for TestNamespace {
    type Target = Namespace;

    fn deref(&self) -> &Namespace {
        &self.0
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if let Ok(Ok(key)) = self.0.run_in(loopwarden_harden::state::namespace_key) {
            let dir = std::path::Path::new(loopwarden_harden::state::DEFAULT_ROOT).join(key);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}

/// Runs `loopwarden ARGS` inside `ns` (bounded by [`LOOPWARDEN_TIMEOUT`]).
pub fn run_loopwarden(ns: &Namespace, args: &[&str]) -> Output {
    let mut argv = vec![loopwarden()];
    argv.extend_from_slice(args);
    output_within(ns.command(&argv).stdin(Stdio::null()), LOOPWARDEN_TIMEOUT)
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
    let mut argv: Vec<String> = vec![];
    if let Some(uid) = uid {
        argv.extend([
            "setpriv".into(),
            format!("--reuid={uid}"),
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
    spawn_ready(ns.command(&argv), code)
}

/// Starts `cmd` and waits (at most 10 s) until it prints a line `ready` on stdout; a child that
/// does not is killed (by its pid) and the test fails naming `what`.
pub fn spawn_ready(mut cmd: Command, what: &str) -> Spawned {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let spawned = Spawned(child);
    // The lines arrive on a channel, so that a child that never prints cannot hang the test.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 && line.trim() != "ready" {
            line.clear();
        }
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    assert_eq!(line.trim(), "ready", "did not become ready: {what}");
    spawned
}

/// An unprivileged account of the test suite's own.
#[derive(Debug, Clone)]
pub struct TestUser {
    /// Login name.
    pub name: String,
    /// uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
}

/// The suite's unprivileged user `lw-e2e` (a system account with its own group, no home, no
/// shell), created with `useradd` the first time and reused by every test and run after that.
pub fn test_user() -> TestUser {
    static USER: std::sync::OnceLock<TestUser> = std::sync::OnceLock::new();
    USER.get_or_init(|| {
        const NAME: &str = "lw-e2e";
        let lookup = || {
            let out = output_within(Command::new("getent").args(["passwd", NAME]), COMMAND_TIMEOUT);
            let line = String::from_utf8_lossy(&out.stdout).into_owned();
            let fields: Vec<&str> = line.trim().split(':').collect();
            match fields.as_slice() {
                [_, _, uid, gid, ..] => Some(TestUser {
                    name: NAME.into(),
                    uid: uid.parse().ok()?,
                    gid: gid.parse().ok()?,
                }),
                _ => None,
            }
        };
        lookup().unwrap_or_else(|| {
            // Another test binary may create it at the same moment: the lookup decides.
            let _ = output_within(
                Command::new("useradd").args([
                    "--system",
                    "--user-group",
                    "--no-create-home",
                    "--shell",
                    "/usr/sbin/nologin",
                    NAME,
                ]),
                COMMAND_TIMEOUT,
            );
            lookup().unwrap_or_else(|| panic!("cannot create the test user {NAME}"))
        })
    })
    .clone()
}

/// Compiles a stand-in daemon into `path`: started with `LW_FAKE_LISTEN=ADDR:PORT` in its
/// environment it listens there and prints `ready`; run in any other way — as loopwarden would
/// run a daemon's program to ask for its configuration — it writes its arguments to `marker`
/// (which must be writable by whoever runs it) and prints a configuration line.
pub fn fake_daemon(path: &std::path::Path, marker: &std::path::Path) {
    let source = path.with_extension("rs");
    std::fs::write(
        &source,
        format!(
            r##"
fn main() {{
    match std::env::var("LW_FAKE_LISTEN") {{
        Ok(addr) => {{
            let listener = std::net::TcpListener::bind(&addr).expect("bind");
            println!("ready");
            for _ in listener.incoming() {{}}
        }}
        Err(_) => {{
            let args: Vec<String> = std::env::args().collect();
            let _ = std::fs::write({marker:?}, format!("executed again with {{args:?}}
"));
            println!("# a configuration the daemon's owner chose");
        }}
    }}
}}
"##
        ),
    )
    .expect("write fake daemon source");
    let cargo = std::path::Path::new(env!("CARGO"));
    let rustc = [cargo.with_file_name("rustc"), "rustc".into()]
        .into_iter()
        .find(|p| p.components().count() == 1 || p.exists())
        .expect("rustc");
    must(Command::new(rustc).arg("-o").arg(path).arg(&source));
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

/// Runs a command (bounded by [`COMMAND_TIMEOUT`]), panicking with its stderr when it fails.
pub fn must(cmd: &mut Command) -> String {
    let out = output_within(cmd, COMMAND_TIMEOUT);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub mod docker;
pub mod real;
pub mod sandbox;
pub mod ufw;
