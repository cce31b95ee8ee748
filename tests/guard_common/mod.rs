//! Support for the guard's end-to-end tests: test users (created once, kept), the guard started
//! as its own user inside a test namespace, and real clients run as other users with `setpriv`.
#![allow(dead_code)]

use crate::common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A test user.
#[derive(Debug, Clone)]
pub struct User {
    /// Account name.
    pub name: &'static str,
    /// Its uid.
    pub uid: u32,
    /// Its primary gid.
    pub gid: u32,
}

/// The test accounts: `alice` (allowed by name), `carol` (allowed through group `lwg-dev`),
/// `bob` (never allowed), `guard` (what the guard runs as) and `svc` (what the guarded service
/// runs as).
#[derive(Debug, Clone)]
pub struct Users {
    pub alice: User,
    pub bob: User,
    pub carol: User,
    pub guard: User,
    pub svc: User,
}

/// Whether the end-to-end test can run: root for namespaces. Under `LOOPWARDEN_E2E=1` a test
/// that cannot run fails instead of skipping.
pub fn ready(test: &str, tools: &[&str]) -> bool {
    let e2e = std::env::var("LOOPWARDEN_E2E").is_ok_and(|v| v == "1");
    if !require_root(test) {
        assert!(!e2e, "{test}: LOOPWARDEN_E2E=1 but the test cannot create namespaces");
        return false;
    }
    for tool in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            assert!(
                !e2e,
                "{test}: LOOPWARDEN_E2E=1 but {tool} is missing (scripts/install-test-deps.sh)"
            );
            eprintln!("SKIPPED {test}: {tool} is missing (scripts/install-test-deps.sh installs it)");
            return false;
        }
    }
    true
}

static ACCOUNTS: Mutex<()> = Mutex::new(());

/// Creates the test accounts when missing (useradd, once; they stay for later runs).
pub fn users() -> Users {
    let _lock = ACCOUNTS.lock().unwrap_or_else(|p| p.into_inner());
    if lookup("lwg-dev", "group").is_none() {
        retry(&["groupadd", "--system", "lwg-dev"]);
    }
    for (name, groups) in [
        ("lwg-alice", ""),
        ("lwg-bob", ""),
        ("lwg-carol", "lwg-dev"),
        ("lwg-guard", ""),
        ("lwg-svc", ""),
    ] {
        if lookup(name, "passwd").is_none() {
            let mut argv = vec![
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ];
            if !groups.is_empty() {
                argv.extend(["--groups", groups]);
            }
            argv.push(name);
            retry(&argv);
        }
    }
    let user = |name: &'static str| {
        let (uid, gid) = lookup(name, "passwd").unwrap_or_else(|| panic!("test user {name} missing"));
        User { name, uid, gid }
    };
    Users {
        alice: user("lwg-alice"),
        bob: user("lwg-bob"),
        carol: user("lwg-carol"),
        guard: user("lwg-guard"),
        svc: user("lwg-svc"),
    }
}

/// `getent DB NAME` → (id, primary gid).
fn lookup(name: &str, db: &str) -> Option<(u32, u32)> {
    let out = Command::new("getent").args([db, name]).output().ok()?;
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let fields: Vec<&str> = line.trim().split(':').collect();
    match db {
        "passwd" => Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)),
        _ => Some((fields.get(2)?.parse().ok()?, 0)),
    }
}

/// Runs an account command, retrying while another process holds the account files' lock.
fn retry(argv: &[&str]) {
    for attempt in 0..20 {
        let out = Command::new(argv[0])
            .args(&argv[1..])
            .output()
            .expect("run account command");
        if out.status.success() {
            return;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("already exists") {
            return;
        }
        assert!(attempt < 19, "{argv:?} failed: {err}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `setpriv` arguments that run a command as `user` with its groups.
pub fn as_user(user: &User) -> Vec<String> {
    vec![
        "setpriv".into(),
        format!("--reuid={}", user.uid),
        format!("--regid={}", user.gid),
        "--init-groups".into(),
    ]
}

/// A running guard: the process, its status directory and its log.
pub struct Guard {
    pub process: Spawned,
    pub dir: TempDir,
}

impl Guard {
    /// The log so far (stderr).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("guard.log")).unwrap_or_default()
    }

    /// The status directory.
    pub fn status_dir(&self) -> PathBuf {
        self.dir.path().join("status")
    }

    /// `guard --status --json` for this guard.
    pub fn status(&self) -> serde_json::Value {
        let out = Command::new(loopwarden())
            .args(["guard", "--status", "--json", "--status-dir"])
            .arg(self.status_dir())
            .output()
            .expect("guard --status");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).expect("status JSON")
    }

    /// The counters of the first front once `done` holds for them, or after 5 s (the status is
    /// rewritten every second).
    pub fn counters_until(&self, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let c = self.status()[0]["fronts"][0]["counters"].clone();
            if done(&c) || Instant::now() > deadline {
                return c;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The counters once they show at least `refused` refusals.
    pub fn counters_after(&self, refused: u64) -> serde_json::Value {
        self.counters_until(|c| {
            c["refused"]
                .as_object()
                .map_or(0, |m| m.values().filter_map(|v| v.as_u64()).sum::<u64>())
                >= refused
        })
    }

    /// Sends a signal to the guard.
    pub fn signal(&self, signal: &str) {
        must(Command::new("kill").args([&format!("-{signal}"), &self.process.0.id().to_string()]));
    }
}

/// Starts `loopwarden guard ARGS` in `ns` as `user` (or root), with its status in a directory
/// of its own, and waits until it has published its status (its fronts are bound by then).
pub fn start_guard(ns: &Namespace, user: Option<&User>, args: &[&str]) -> Guard {
    let dir = TempDir::new("guard");
    let status = dir.path().join("status");
    std::fs::create_dir(&status).expect("status dir");
    if let Some(u) = user {
        std::os::unix::fs::chown(&status, Some(u.uid), Some(u.gid)).expect("chown status dir");
    }
    std::fs::set_permissions(&status, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let log = std::fs::File::create(dir.path().join("guard.log")).expect("log file");
    let mut argv: Vec<String> = user.map(as_user).unwrap_or_default();
    argv.extend([loopwarden().to_string(), "guard".into()]);
    argv.extend(args.iter().map(|a| a.to_string()));
    argv.extend(["--status-dir".into(), status.display().to_string()]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let child = ns
        .command(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn guard");
    let guard = Guard {
        process: Spawned(child),
        dir,
    };
    wait_for(&status.join("status.json"), &guard);
    guard
}

/// Starts a guard from a config file (no `--status-dir`: the file says `status_dir`).
pub fn start_guard_config(ns: &Namespace, user: &User, config: &str) -> Guard {
    let dir = TempDir::new("guard");
    let status = dir.path().join("status");
    std::fs::create_dir(&status).expect("status dir");
    std::os::unix::fs::chown(&status, Some(user.uid), Some(user.gid)).expect("chown status dir");
    let file = dir.path().join("guard.toml");
    std::fs::write(&file, format!("status_dir = \"{}\"\n{config}", status.display())).expect("config");
    let log = std::fs::File::create(dir.path().join("guard.log")).expect("log file");
    let mut argv = as_user(user);
    argv.extend([
        loopwarden().to_string(),
        "guard".into(),
        "--config".into(),
        file.display().to_string(),
    ]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let child = ns
        .command(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn guard");
    let guard = Guard {
        process: Spawned(child),
        dir,
    };
    wait_for(&status.join("status.json"), &guard);
    guard
}

fn wait_for(path: &Path, guard: &Guard) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !path.exists() {
        assert!(Instant::now() < deadline, "the guard did not start:\n{}", guard.log());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs curl in `ns` as `user` (or root): (exit code, HTTP status or "000", body).
pub fn curl(ns: &Namespace, user: Option<&User>, args: &[&str]) -> (i32, String, String) {
    let mut argv: Vec<String> = user.map(as_user).unwrap_or_default();
    argv.extend(["curl", "-sS", "--max-time", "5", "-o", "-", "-w", "\n%{http_code}"].map(String::from));
    argv.extend(args.iter().map(|a| a.to_string()));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = ns.command(&argv).stdin(Stdio::null()).output().expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    (out.status.code().unwrap_or(-1), code.to_string(), body.to_string())
}

/// An HTTP service on `port` (127.0.0.1) answering every GET with `body`, running as root.
pub fn http_service(ns: &Namespace, port: u16, body: &str) -> Spawned {
    let code = format!(
        r#"
import http.server, threading
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def answer(self):
        who = self.headers.get("X-Loopwarden-User", "-")
        fwd = self.headers.get("X-Forwarded-For", "-")
        body = ("{body} user=" + who + " xff=" + fwd).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def do_GET(self): self.answer()
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0"))); self.answer()
srv = http.server.ThreadingHTTPServer(("127.0.0.1", {port}), H)
print("ready", flush=True)
srv.serve_forever()
"#
    );
    python_in(ns, None, &code)
}

/// The instance directory under the audit's status root, owned by the guard's user, removed
/// afterwards.
pub struct StatusInstance(pub PathBuf);

impl StatusInstance {
    pub fn new(owner: &User) -> StatusInstance {
        use std::os::unix::fs::PermissionsExt;
        let root = std::path::Path::new(loopwarden_core::facts::GUARD_STATUS_DIR);
        std::fs::create_dir_all(root).expect("status root");
        for dir in [root.parent().expect("parent"), root] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        }
        let dir = root.join(loopwarden_lab::netns::unique_name("test"));
        std::fs::create_dir(&dir).expect("instance dir");
        std::os::unix::fs::chown(&dir, Some(owner.uid), Some(owner.gid)).expect("chown");
        StatusInstance(dir)
    }
}

impl Drop for StatusInstance {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A static file server on 127.0.0.1:`port` without any Host check (what most development servers
/// are; an attacker's page on another local port).
pub fn file_server(ns: &Namespace, port: u16, dir: &Path) -> Spawned {
    python_in(
        ns,
        None,
        &format!(
            r#"
import functools, http.server
class Files(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", {port}), functools.partial(Files, directory="{}"))
print("ready", flush=True)
srv.serve_forever()
"#,
            dir.display()
        ),
    )
}
