//! The guard against the second review of issue 11, end to end through the binary in
//! namespaces, with real users (`setpriv`) and real Python services and clients:
//! - after the service stops, another user who takes its port receives nothing of the allowed
//!   users' requests (HTTP: 502 naming the reason; TCP: closed);
//! - header names spelt with `_` cannot smuggle an identity or a client address to a WSGI app;
//! - a user the front refuses cannot hold --max-conns and lock the allowed users out.

mod common;
mod guard_common;

use common::*;
use guard_common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// An HTTP service on 127.0.0.1:`port`, run as `uid`, answering `SERVICE` to every GET.
fn service_as(ns: &Namespace, uid: u32, port: u16) -> Spawned {
    python_in(
        ns,
        Some(uid),
        &format!(
            r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "7")
        self.end_headers()
        self.wfile.write(b"SERVICE")
srv = http.server.ThreadingHTTPServer(("127.0.0.1", {port}), H)
print("ready", flush=True)
srv.serve_forever()
"#
        ),
    )
}

/// A listener on 127.0.0.1:`port`, run as `uid`, that appends every byte it receives to `log`
/// (what a user who took the service's port would collect).
fn collector_as(ns: &Namespace, uid: u32, port: u16, log: &Path) -> Spawned {
    python_in(
        ns,
        Some(uid),
        &format!(
            r#"
import socket, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", {port}))
s.listen(64)
print("ready", flush=True)
def take(c):
    c.settimeout(10)
    try:
        while True:
            b = c.recv(65536)
            if not b: break
            with open("{log}", "ab") as f: f.write(b)
    except Exception: pass
while True:
    c, _ = s.accept()
    threading.Thread(target=take, args=(c,), daemon=True).start()
"#,
            log = log.display()
        ),
    )
}

/// Sends `request` to 127.0.0.1:`port` as `user` and returns what came back (or the
/// exception's name).
fn exchange(ns: &Namespace, user: &User, port: u16, request: &str) -> String {
    let code = format!(
        r#"
import socket, sys
s = socket.create_connection(("127.0.0.1", {port}), timeout=5)
out = b""
try:
    s.sendall({request:?}.encode())
    while True:
        b = s.recv(65536)
        if not b: break
        out += b
except Exception as e:
    out += ("\nEXCEPTION " + type(e).__name__).encode()
sys.stdout.write(out.decode("latin-1"))
"#
    );
    let mut argv = as_user(user);
    argv.extend(["/usr/bin/python3", "-c", &code].map(String::from));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = output_within(ns.command(&argv).stdin(Stdio::null()), COMMAND_TIMEOUT);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_log(guard: &Guard, text: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !guard.log().contains(text) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    guard.log()
}

/// Review #1 (high): the service (lwg-svc) stops and lwg-bob binds its port — any user may,
/// harden's --allow restricts connect, not bind. Alice's request with her Authorization
/// header must not reach bob: the HTTP front answers 502 naming the reason, the TCP front
/// closes, and bob's listener receives nothing.
#[test]
fn a_user_who_takes_the_stopped_services_port_receives_nothing() {
    if !ready("a_user_who_takes_the_stopped_services_port…", &["python3", "setpriv"]) {
        return;
    }
    let u = users();
    let ns = namespace("guardtake");
    let service = service_as(&ns, u.svc.uid, 19020);
    let http = start_guard(
        &ns,
        Some(&u.guard),
        &[
            "--listen",
            "localhost:9020",
            "--to",
            "127.0.0.1:19020",
            "--allow-user",
            "lwg-alice",
            "--http",
        ],
    );
    let tcp = start_guard(
        &ns,
        Some(&u.guard),
        &[
            "--listen",
            "localhost:9021",
            "--to",
            "127.0.0.1:19020",
            "--allow-user",
            "lwg-alice",
        ],
    );
    let held = format!("is held by uid {} (lwg-svc)", u.svc.uid);
    for guard in [&http, &tcp] {
        let log = wait_log(guard, &held);
        assert!(log.contains(&held), "the owner is pinned at start and said:\n{log}");
    }
    let request = "GET / HTTP/1.1\r\nHost: localhost:9020\r\nAuthorization: Bearer SECRET-7e57\r\n\
                   Connection: close\r\n\r\n";
    let control = exchange(&ns, &u.alice, 9020, request);
    assert!(
        control.starts_with("HTTP/1.1 200") && control.ends_with("SERVICE"),
        "{control}"
    );
    let control = exchange(&ns, &u.alice, 9021, request);
    assert!(control.ends_with("SERVICE"), "{control}");

    drop(service);
    let tmp = TempDir::new("guard-take");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let collected = tmp.path().join("bob.log");
    let _bob = collector_as(&ns, u.bob.uid, 19020, &collected);

    let answer = exchange(&ns, &u.alice, 9020, request);
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    assert!(
        answer.contains(&format!("is now held by uid {} (lwg-bob)", u.bob.uid))
            && answer.contains(&format!("not by uid {} (lwg-svc)", u.svc.uid)),
        "{answer}"
    );
    let spliced = exchange(&ns, &u.alice, 9021, request);
    assert!(!spliced.contains("HTTP/1.1"), "the TCP front closes: {spliced:?}");
    let log = wait_log(&tcp, "(lwg-bob)");
    assert!(
        log.contains(&format!("is now held by uid {} (lwg-bob)", u.bob.uid)),
        "{log}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let got = std::fs::read(&collected).unwrap_or_default();
    assert!(
        got.is_empty(),
        "bob's listener received: {:?}",
        String::from_utf8_lossy(&got)
    );
}

/// A WSGI app (Python's wsgiref, which reads `X_Name` as `X-Name`, as CGI and PHP do) on
/// 127.0.0.1:`port` that answers with every `HTTP_*` variable it was given.
fn wsgi_app(ns: &Namespace, port: u16) -> Spawned {
    python_in(
        ns,
        None,
        &format!(
            r#"
from wsgiref.simple_server import make_server, WSGIRequestHandler
class Quiet(WSGIRequestHandler):
    def log_message(self, *a): pass
def app(environ, start):
    body = "".join(k + "=" + v + "\n" for k, v in sorted(environ.items()) if k.startswith("HTTP_")).encode()
    start("200 OK", [("Content-Length", str(len(body)))])
    return [body]
srv = make_server("127.0.0.1", {port}, app, handler_class=Quiet)
print("ready", flush=True)
srv.serve_forever()
"#
        ),
    )
}

/// Review #2: `X_Loopwarden_User: root` and `X_Forwarded_For` reach a WSGI app as the dash
/// names when sent straight to it; through the guard every name with `_` is dropped and the
/// app sees only the proven identity.
#[test]
fn header_names_with_underscores_cannot_smuggle_an_identity_to_a_wsgi_app() {
    if !ready("header_names_with_underscores…", &["python3", "setpriv"]) {
        return;
    }
    let u = users();
    let ns = namespace("guardunder");
    let _app = wsgi_app(&ns, 19030);
    let guard = start_guard(
        &ns,
        Some(&u.guard),
        &[
            "--listen",
            "localhost:9030",
            "--to",
            "127.0.0.1:19030",
            "--allow-user",
            "lwg-alice",
            "--http",
            "--identity-header",
            "X-Loopwarden-User",
        ],
    );
    let request = |port: u16| {
        format!(
            "GET / HTTP/1.1\r\nHost: localhost:{port}\r\nX_Loopwarden_User: root\r\n\
             X_Forwarded_For: 192.0.2.9\r\nX_Real_IP: 192.0.2.8\r\nConnection: close\r\n\r\n"
        )
    };
    let straight = exchange(&ns, &u.alice, 19030, &request(19030));
    assert!(
        straight.contains("HTTP_X_LOOPWARDEN_USER=root") && straight.contains("HTTP_X_FORWARDED_FOR=192.0.2.9"),
        "control: the app reads the underscore names as the dash ones:\n{straight}"
    );
    let guarded = exchange(&ns, &u.alice, 9030, &request(9030));
    assert!(guarded.starts_with("HTTP/1.0 200"), "{guarded}\n{}", guard.log());
    assert!(guarded.contains("HTTP_X_LOOPWARDEN_USER=lwg-alice\n"), "{guarded}");
    for gone in ["root", "HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "192.0.2."] {
        assert!(!guarded.contains(gone), "{gone} reached the app:\n{guarded}");
    }
}

/// Review #3: lwg-bob, whom the front refuses, opens 200 connections and sends nothing (each
/// would be held until its head arrives). Alice must still be served: refused connections do
/// not count against --max-conns 50, and beyond a few answered at once bob's are closed.
#[test]
fn a_refused_user_cannot_hold_max_conns_and_lock_the_allowed_ones_out() {
    if !ready("a_refused_user_cannot_hold_max_conns…", &["python3", "setpriv"]) {
        return;
    }
    let u = users();
    let ns = namespace("guardhold");
    let _service = service_as(&ns, u.svc.uid, 19040);
    let guard = start_guard(
        &ns,
        Some(&u.guard),
        &[
            "--listen",
            "localhost:9040",
            "--to",
            "127.0.0.1:19040",
            "--allow-user",
            "lwg-alice",
            "--http",
            "--max-conns",
            "50",
        ],
    );
    let _held = python_in(
        &ns,
        Some(u.bob.uid),
        r#"
import socket, time
held = []
for _ in range(200):
    held.append(socket.create_connection(("127.0.0.1", 9040), timeout=5))
print("ready", flush=True)
time.sleep(30)
"#,
    );
    let request = "GET / HTTP/1.1\r\nHost: localhost:9040\r\nConnection: close\r\n\r\n";
    let answer = exchange(&ns, &u.alice, 9040, request);
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.ends_with("SERVICE"),
        "alice is locked out by bob's connections: {answer:?}\n{}",
        guard.log()
    );
    let counters = guard.counters_after(200);
    assert_eq!(counters["refused"]["not-allowed"], 200, "{counters}");
    assert!(counters["refused"].get("too-many-connections").is_none(), "{counters}");
}

/// Review #4: `guard --status` prints what status.json says, and that file is written by the
/// guard's unprivileged user: a status with control characters and an escape sequence in its
/// names is printed escaped, one line per line.
#[test]
fn guard_status_escapes_what_the_status_file_says() {
    if !ready("guard_status_escapes…", &["python3", "setpriv"]) {
        return;
    }
    let u = users();
    let ns = namespace("guardstat");
    let guard = start_guard(
        &ns,
        Some(&u.guard),
        &[
            "--listen",
            "localhost:9050",
            "--to",
            "127.0.0.1:19050",
            "--allow-user",
            "lwg-alice",
        ],
    );
    let mut forged = guard.status()[0].clone();
    forged["name"] = "g\x1b[2J\nguard forged pid 1 uid 0 — running".into();
    forged["user"] = "x\ry".into();
    forged["fronts"][0]["name"] = "f\u{202e}\x07".into();
    forged["fronts"][0]["allow_users"][0]["name"] = "a\nb".into();
    let dir = TempDir::new("guard-forged");
    std::fs::write(
        dir.path().join("status.json"),
        serde_json::to_string(&forged).expect("json"),
    )
    .expect("write status");
    let out = std::process::Command::new(loopwarden())
        .args(["guard", "--status", "--status-dir"])
        .arg(dir.path())
        .output()
        .expect("guard --status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        !text.chars().any(|c| (c.is_control() && c != '\n') || c == '\u{202e}'),
        "{text:?}"
    );
    assert!(
        text.contains(r"guard g\x1b[2J\nguard forged pid 1 uid 0") && text.contains(r"(x\ry)"),
        "{text}"
    );
    assert!(!text.lines().any(|l| l.starts_with("guard forged")), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
    drop(guard);
}

/// Review #5: root's `--check-upstreams-for` acts on files of the guard's: it refuses a config
/// file another user owns (they would choose where root writes) and a status directory owned
/// by neither root nor the guard's user; with root's config and the guard's directory it records.
#[test]
fn roots_upstream_check_refuses_another_users_config_or_status_directory() {
    if !ready("roots_upstream_check_refuses…", &[]) {
        return;
    }
    let u = users();
    let ns = namespace("guardrec");
    let tmp = TempDir::new("guard-rec");
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let status = tmp.path().join("status");
    std::fs::create_dir(&status).expect("status dir");
    let config = tmp.path().join("app.toml");
    std::fs::write(
        &config,
        format!(
            "name = \"app\"\nstatus_dir = \"{}\"\n[[front]]\nlisten = \"localhost:9060\"\nto = \"127.0.0.1:19060\"\n\
             allow_users = [\"lwg-alice\"]\n",
            status.display()
        ),
    )
    .expect("config");
    let check = || {
        let out = output_within(
            ns.command(&[
                loopwarden(),
                "guard",
                "--config",
                config.to_str().expect("path"),
                "--check-upstreams-for",
                "lwg-guard",
            ])
            .stdin(Stdio::null()),
            COMMAND_TIMEOUT,
        );
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    };
    let chown = |p: &Path, uid: u32| std::os::unix::fs::chown(p, Some(uid), None).expect("chown");

    chown(&config, u.bob.uid);
    chown(&status, u.guard.uid);
    let (code, text) = check();
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "the guard config {}: owned by uid {} (lwg-bob), not by uid 0 (root)",
            config.display(),
            u.bob.uid
        )),
        "{text}"
    );

    chown(&config, 0);
    chown(&status, u.bob.uid);
    let (code, text) = check();
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "the status directory {}: owned by uid {} (lwg-bob)",
            status.display(),
            u.bob.uid
        )) && text.contains(&format!("uid {} (lwg-guard)", u.guard.uid)),
        "{text}"
    );
    assert!(!status.join("upstream-check.json").exists());

    chown(&status, u.guard.uid);
    let (code, text) = check();
    assert_eq!(code, Some(0), "{text}");
    let record = std::fs::metadata(status.join("upstream-check.json")).expect("recorded");
    assert_eq!(record.permissions().mode() & 0o777, 0o644);
}

/// Review #6: an allow in force for both protocols (`harden --allow 9070=lwg-alice`, nothing
/// listening) is repeated by the printed fix for both, and the fix, applied, leaves it in force
/// for both; the text says harden keeps the allows in force.
#[test]
fn the_printed_fix_repeats_an_allow_for_both_protocols_without_narrowing_it() {
    if !ready(
        "the_printed_fix_repeats_an_allow_for_both…",
        &["python3", "nft", "setpriv"],
    ) {
        return;
    }
    let u = users();
    let tmp = TempDir::new("guard-fix2");
    let ns = namespace("guardfix2");
    let _service = service_as(&ns, u.svc.uid, 19070);
    let state = tmp.path().join("harden");
    let state = state.to_str().expect("path");
    must(&mut ns.command(&[
        loopwarden(),
        "harden",
        "--apply",
        "--allow",
        "9070=lwg-alice",
        "--root",
        state,
    ]));
    let out = must(&mut ns.command(&[
        loopwarden(),
        "guard",
        "--listen",
        "localhost:9071",
        "--to",
        "127.0.0.1:19070",
        "--allow-user",
        "lwg-alice",
        "--check-upstreams-for",
        "lwg-guard",
    ]));
    let fix = "loopwarden harden --allow 19070=lwg-guard --allow 9070/tcp=lwg-alice --allow 9070/udp=lwg-alice";
    assert!(out.contains(&format!("`{fix}`")), "{out}");
    assert!(
        out.contains("harden keeps the restrictions in force") && !out.contains("replaces the table"),
        "{out}"
    );
    let mut apply: Vec<&str> = vec![loopwarden()];
    apply.extend(fix.split(' ').skip(1));
    apply.extend(["--apply", "--root", state]);
    must(&mut ns.command(&apply));
    let rules = must(&mut ns.command(&["nft", "list", "chain", "inet", "loopwarden", "output"]));
    for proto in ["tcp", "udp"] {
        let line = rules
            .lines()
            .find(|l| l.contains(&format!("{proto} dport 9070 meta skuid")))
            .unwrap_or_else(|| panic!("no {proto} rule for 9070 left:\n{rules}"));
        assert!(line.contains(&u.alice.uid.to_string()), "{line}");
    }
}
