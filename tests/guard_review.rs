//! The guard against the reviewer's findings (issue 11, revA), end to end through the binary in
//! namespaces, with real users (`setpriv`), real Chromium, curl, nftables and Python clients:
//! - a page on another local port (same-site) cannot read or frame the guarded service;
//! - `audit --probe` records the guard's refusal of its own connection and withdraws the web
//!   credit when a TCP-mode front forwards to the same upstream;
//! - the fix the guard prints keeps harden's other allows, and root's check clears the
//!   unprivileged guard's warning;
//! - a refused HTTP user gets 403, `Connection:` cannot remove the identity header, client
//!   address/URL headers are stripped, a repeated Origin is refused, a forged process name is
//!   escaped in the log;
//! - IPv6 off on lo, a Unix front for its users, and a drain that keeps the port.

mod common;
mod guard_common;

use common::*;
use guard_common::*;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// An HTTP service on 127.0.0.1:`port` that grants every origin (`Access-Control-Allow-Origin:
/// *`, as Ollama did) and echoes the request headers it received in the body of `/headers`.
fn permissive_service(ns: &Namespace, port: u16) -> Spawned {
    python_in(
        ns,
        None,
        &format!(
            r#"
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/headers":
            body = "".join(k.lower() + ": " + v + "\n" for k, v in self.headers.items()).encode()
        else:
            body = b"TOKEN-7e57"
        self.send_response(200)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
srv = http.server.ThreadingHTTPServer(("127.0.0.1", {port}), H)
print("ready", flush=True)
srv.serve_forever()
"#
        ),
    )
}

/// The attacker's page: reads `target` with a synchronous XHR and with fetch(), and frames it.
fn attack_page(target: &str) -> String {
    format!(
        r#"<html><body><div id="xhr">xhr did not run</div><div id="fetch">fetch did not finish</div>
<iframe src="{target}?framed"></iframe>
<script>
var x = new XMLHttpRequest();
try {{ x.open("GET", "{target}?xhr", false); x.send();
      document.getElementById("xhr").textContent = "xhr status=" + x.status + " body=" + x.responseText; }}
catch (e) {{ document.getElementById("xhr").textContent = "xhr blocked " + e; }}
fetch("{target}?fetch").then(r => r.text()).then(t => {{
  document.getElementById("fetch").textContent = "fetch body=" + t; }},
  e => {{ document.getElementById("fetch").textContent = "fetch blocked " + e; }});
</script></body></html>
"#
    )
}

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// The DOM of `url` after load, in headless Chromium in `ns` (waits for fetch() to settle).
fn dom(ns: &Namespace, browser: &str, profile: &Path, url: &str) -> String {
    let profile = format!("--user-data-dir={}", profile.display());
    let out = ns
        .command(&[
            "timeout",
            "40",
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            &profile,
            "--dump-dom",
            url,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run chromium");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// revA guard #1 and #4: the attacker's page on 127.0.0.1:8000 reads the bare service (it
/// grants every origin) with XHR and fetch; through the guard on 127.0.0.1:9000 neither reads,
/// Chromium's frame request is refused, and every answer says it may not be framed.
#[test]
fn a_page_on_another_local_port_cannot_read_or_frame_the_service_through_the_guard() {
    if !ready("a_page_on_another_local_port…", &["python3", "curl"]) {
        return;
    }
    let Some(browser) = chromium() else {
        assert!(!full_run(), "chromium is missing");
        eprintln!("SKIPPED a_page_on_another_local_port…: chromium is not installed");
        return;
    };
    let tmp = TempDir::new("guard-sameport");
    let www = tmp.path().join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::write(www.join("bare.html"), attack_page("http://127.0.0.1:19000/secret")).expect("page");
    std::fs::write(www.join("guarded.html"), attack_page("http://127.0.0.1:9000/secret")).expect("page");
    let ns = namespace("guardsite");
    let _service = permissive_service(&ns, 19000);
    let _attacker = file_server(&ns, 8000, &www);
    let guard = start_guard(
        &ns,
        None,
        &[
            "--listen",
            "localhost:9000",
            "--to",
            "127.0.0.1:19000",
            "--allow-user",
            "root",
            "--http",
        ],
    );
    let bare = dom(&ns, browser, &tmp.path().join("p1"), "http://127.0.0.1:8000/bare.html");
    assert!(
        bare.contains("xhr status=200 body=TOKEN-7e57") && bare.contains("fetch body=TOKEN-7e57"),
        "control: the page on :8000 reads the bare service:\n{bare}"
    );
    let guarded = dom(
        &ns,
        browser,
        &tmp.path().join("p2"),
        "http://127.0.0.1:8000/guarded.html",
    );
    assert!(
        !guarded.contains("TOKEN-7e57") && guarded.contains("xhr blocked") && guarded.contains("fetch blocked"),
        "through the guard:\n{guarded}\n{}",
        guard.log()
    );
    // Chromium sent the frame request; the guard refused it as a same-site frame.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !guard.log().contains("dest iframe") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = guard.log();
    assert!(
        log.contains("Origin \"http://127.0.0.1:8000\" is not an allowed origin"),
        "{log}"
    );
    assert!(
        log.contains("Sec-Fetch-Site same-site, mode navigate, dest iframe"),
        "{log}"
    );
    // The page of the front's own origin still reads, and its answers refuse to be framed.
    let out = ns
        .command(&["curl", "-sS", "-D", "-", "http://127.0.0.1:9000/secret"])
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    assert!(
        text.contains("x-frame-options: deny")
            && text.contains("content-security-policy: frame-ancestors 'none'")
            && text.contains("token-7e57"),
        "{text}"
    );
}

/// A raw HTTP exchange from `ns` as `user` (or root): sends `request` to 127.0.0.1:`port`,
/// returns what came back. `comm` renames the client process first (PR_SET_NAME).
fn exchange(ns: &Namespace, user: Option<&User>, port: u16, request: &str, comm: Option<&str>) -> String {
    let code = format!(
        r#"
import socket, sys
comm = bytes.fromhex("{comm}")
if comm:
    open("/proc/self/comm", "wb").write(comm)
s = socket.create_connection(("127.0.0.1", {port}), timeout=5)
s.sendall({request:?}.encode())
out = b""
try:
    while True:
        b = s.recv(65536)
        if not b: break
        out += b
except Exception as e:
    out += ("\nEXCEPTION " + type(e).__name__).encode()
sys.stdout.write(out.decode("latin-1"))
"#,
        comm = comm
            .unwrap_or("")
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect::<String>(),
    );
    let mut argv: Vec<String> = user.map(as_user).unwrap_or_default();
    argv.extend(["/usr/bin/python3", "-c", &code].map(String::from));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = output_within(ns.command(&argv).stdin(Stdio::null()), COMMAND_TIMEOUT);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// revA guard #9, #7, #12, #10, #4: what curl-like clients see at an HTTP front.
#[test]
fn an_http_front_answers_403_keeps_the_identity_header_strips_client_addresses_and_escapes_the_log() {
    if !ready("an_http_front_answers_403…", &["python3", "setpriv"]) {
        return;
    }
    let u = users();
    let ns = namespace("guardhttp");
    let _service = permissive_service(&ns, 19001);
    let guard = start_guard(
        &ns,
        Some(&u.guard),
        &[
            "--listen",
            "localhost:9001",
            "--to",
            "127.0.0.1:19001",
            "--allow-user",
            "lwg-alice",
            "--http",
            "--identity-header",
            "X-Loopwarden-User",
        ],
    );
    // #13: the status directory is this guard's alone, and one the audit does not read is said.
    assert!(
        guard.log().contains("where `loopwarden audit` does not look"),
        "{}",
        guard.log()
    );
    let mut argv = as_user(&u.guard);
    argv.extend(
        [
            loopwarden(),
            "guard",
            "--listen",
            "localhost:9009",
            "--to",
            "127.0.0.1:19001",
            "--allow-user",
            "lwg-alice",
            "--status-dir",
            guard.status_dir().to_str().expect("path"),
        ]
        .map(String::from),
    );
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let second = output_within(ns.command(&argv).stdin(Stdio::null()), COMMAND_TIMEOUT);
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        second.status.code() == Some(2) && err.contains("is in use by another running guard"),
        "a second guard must not overwrite the first one's status.json: {err}"
    );
    let get =
        |extra: &str| format!("GET /headers HTTP/1.1\r\nHost: localhost:9001\r\n{extra}Connection: close\r\n\r\n");

    // #9: a user the front does not admit gets an HTTP answer, not a reset.
    let refused = exchange(&ns, Some(&u.bob), 9001, &get(""), None);
    assert!(
        refused.starts_with("HTTP/1.1 403 Forbidden\r\n")
            && refused.ends_with("loopwarden guard: refused: not an allowed user or group\n"),
        "{refused:?}"
    );

    // #7: a Connection token naming the identity header does not remove the proven identity;
    // #12: client-claimed addresses and rewritten URLs never reach the service.
    let claimed =
        "Connection: X-Loopwarden-User, keep-alive\r\nX-Loopwarden-User: root\r\nTrue-Client-IP: 192.0.2.1\r\n\
                   X-Client-IP: 192.0.2.2\r\nX-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\n\
                   X-Forwarded-For: 192.0.2.3\r\nX-Forwarded-Host: evil.example\r\nX-Real-IP: 192.0.2.4\r\n";
    let seen = exchange(&ns, Some(&u.alice), 9001, &get(claimed), None);
    assert!(seen.starts_with("HTTP/1.1 200"), "{seen}");
    let body = seen.split("\r\n\r\n").nth(1).unwrap_or_default();
    assert!(body.contains("x-loopwarden-user: lwg-alice\n"), "{body}");
    for gone in [
        "x-loopwarden-user: root",
        "true-client-ip",
        "x-client-ip",
        "x-original-url",
        "x-rewrite-url",
        "x-forwarded-",
        "x-real-ip",
    ] {
        assert!(!body.contains(gone), "{gone} reached the service:\n{body}");
    }
    // #4: answers refuse to be framed.
    assert!(
        seen.contains("x-frame-options: DENY") && seen.contains("content-security-policy: frame-ancestors 'none'"),
        "{seen}"
    );

    // #12: a repeated Origin is not left unchecked; #1: another local port's page is refused.
    let twice = exchange(
        &ns,
        Some(&u.alice),
        9001,
        &get("Origin: http://localhost:9001\r\nOrigin: http://127.0.0.1:8000\r\n"),
        None,
    );
    assert!(
        twice.starts_with("HTTP/1.1 400") && twice.contains("more than one Origin header"),
        "{twice}"
    );
    let same_site = exchange(
        &ns,
        Some(&u.alice),
        9001,
        &get("Origin: http://127.0.0.1:8000\r\nSec-Fetch-Site: same-site\r\nSec-Fetch-Mode: cors\r\n"),
        None,
    );
    assert!(same_site.starts_with("HTTP/1.1 403"), "{same_site}");

    // #10: a client that names itself with a newline and an escape cannot forge a log line (a
    // guard running as root names the processes of every user).
    let named = start_guard(
        &ns,
        None,
        &[
            "--listen",
            "localhost:9002",
            "--to",
            "127.0.0.1:19001",
            "--allow-user",
            "lwg-alice",
            "--http",
        ],
    );
    let request = "GET / HTTP/1.1\r\nHost: localhost:9002\r\nConnection: close\r\n\r\n";
    let refused = exchange(&ns, Some(&u.bob), 9002, request, Some("x\nallowed \x1b[2J"));
    assert!(refused.starts_with("HTTP/1.1 403"), "{refused}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !named.log().contains("lwg-bob") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = named.log();
    assert!(
        log.contains(r"(x\nallowed \x1b[2J)"),
        "the name is shown escaped:\n{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("allowed")) && !log.contains('\x1b'),
        "{log:?}"
    );
    drop(guard);
}

/// Starts a guard as `user` from `config` (TOML fronts), publishing where the audit reads
/// (`instance`); waits for its status.
fn start_published(ns: &Namespace, user: &User, instance: &StatusInstance, config: &str, log: &Path) -> Spawned {
    let file = log.with_extension("toml");
    std::fs::write(&file, format!("status_dir = \"{}\"\n{config}", instance.0.display())).expect("config");
    let mut argv = as_user(user);
    argv.extend([
        loopwarden().to_string(),
        "guard".into(),
        "--config".into(),
        file.display().to_string(),
    ]);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let guard = Spawned(
        ns.command(&argv)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log"))
            .spawn()
            .expect("guard"),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    while !instance.0.join("status.json").exists() {
        assert!(
            Instant::now() < deadline,
            "guard did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    guard
}

/// revA guard #2: the probe (root, not admitted) is refused by both fronts — 403 by the HTTP
/// one, a reset or close by the TCP one — and the audit records it; and because a TCP-mode front
/// forwards to the same upstream, the upstream's web findings are not credited to the guard,
/// though only the guard's user reaches it.
#[test]
fn audit_probe_records_the_guards_refusal_and_a_tcp_mode_front_withdraws_the_web_credit() {
    if !ready("audit_probe_records…", &["python3", "nft", "setpriv"]) {
        return;
    }
    let u = users();
    let tmp = TempDir::new("guard-credit");
    let ns = namespace("guardcredit");
    let _service = permissive_service(&ns, 19003);
    let instance = StatusInstance::new(&u.guard);
    let config = r#"
[[front]]
name = "web"
listen = "localhost:9003"
to = "127.0.0.1:19003"
allow_users = ["lwg-alice"]
http = true

[[front]]
name = "raw"
listen = "localhost:9004"
to = "127.0.0.1:19003"
allow_users = ["lwg-alice"]
"#;
    let _guard = start_published(&ns, &u.guard, &instance, config, &tmp.path().join("guard.log"));
    let state = tmp.path().join("harden");
    must(&mut ns.command(&[
        loopwarden(),
        "harden",
        "--apply",
        "--allow",
        "19003=lwg-guard",
        "--root",
        state.to_str().expect("path"),
    ]));
    let report = audit_json(&ns, &["--probe", "--no-post", "--fail-on", "critical"]);
    for (front, answer) in [("tcp:127.0.0.1:9003", "HTTP 403"), ("tcp:127.0.0.1:9004", "")] {
        let local = findings(&report, "local.tcp-any-uid", Some(front));
        assert_eq!(local.len(), 1, "{front}: {report:#}");
        assert_eq!(local[0]["status"], "blocked", "{front}: {:#}", local[0]);
        assert_eq!(local[0]["confidence"], "probed", "{front}: {:#}", local[0]);
        let evidence = local[0]["evidence"].to_string();
        assert!(
            evidence.contains("as uid 0, which front")
                && evidence.contains("the guard's refusal, observed")
                && evidence.contains(answer),
            "{front}: {evidence}"
        );
    }
    let dns = findings(&report, "web.dns-rebinding", Some("tcp:127.0.0.1:19003"));
    assert_eq!(dns.len(), 1, "{report:#}");
    assert_eq!(dns[0]["status"], "open", "{:#}", dns[0]);
    assert!(
        dns[0]["evidence"]
            .to_string()
            .contains("not credited to loopwarden guard: loopwarden guard"),
        "{:#}",
        dns[0]
    );
    assert!(dns[0]["evidence"].to_string().contains("front raw"), "{:#}", dns[0]);
}

/// revA guard #3 and #8: harden already restricts port 9005 to alice. The unprivileged guard
/// cannot read the firewall and warns; root's check prints the fix with alice's allow repeated;
/// applied, alice still reaches 9005 and only the guard's user the upstream; root's check then
/// records "only the guard", and on SIGHUP the guard's warning gives way to it.
#[test]
fn the_printed_fix_keeps_hardens_other_allows_and_roots_check_clears_the_unprivileged_warning() {
    if !ready("the_printed_fix_keeps…", &["python3", "nft", "setpriv"]) {
        return;
    }
    let u = users();
    let tmp = TempDir::new("guard-fix");
    let ns = namespace("guardfix");
    let _service = permissive_service(&ns, 19005);
    let _other = permissive_service(&ns, 9005);
    let state = tmp.path().join("harden");
    let state = state.to_str().expect("path");
    must(&mut ns.command(&[
        loopwarden(),
        "harden",
        "--apply",
        "--allow",
        "9005=lwg-alice",
        "--root",
        state,
    ]));
    let args = [
        "--listen",
        "localhost:9006",
        "--to",
        "127.0.0.1:19005",
        "--allow-user",
        "lwg-alice",
    ];
    let guard = start_guard(&ns, Some(&u.guard), &args);
    assert!(
        guard
            .log()
            .contains("cannot tell whether other users reach it directly"),
        "{}",
        guard.log()
    );
    let status_dir = guard.status_dir();
    let check = |ns: &Namespace| {
        let mut argv = vec![loopwarden(), "guard"];
        argv.extend_from_slice(&args);
        argv.extend([
            "--status-dir",
            status_dir.to_str().expect("path"),
            "--check-upstreams-for",
            "lwg-guard",
        ]);
        must(&mut ns.command(&argv))
    };
    let first = check(&ns);
    // A bare --allow 9005 restricts TCP and UDP: both are repeated.
    let fix =
        "loopwarden harden --allow 19005=lwg-guard --allow 9005/tcp=lwg-alice --allow 9005/udp=lwg-alice".to_string();
    assert!(first.contains(&format!("`{fix}`")), "{first}");
    let mut apply: Vec<&str> = vec![loopwarden()];
    apply.extend(fix.split(' ').skip(1));
    apply.extend(["--apply", "--root", state]);
    must(&mut ns.command(&apply));
    let code = |user: &User, port: &str| curl(&ns, Some(user), &[&format!("http://127.0.0.1:{port}/")]).1;
    assert_eq!(code(&u.alice, "9005"), "200", "alice keeps her allow on 9005");
    assert_eq!(code(&u.bob, "9005"), "000", "bob is still kept out of 9005");
    assert_eq!(code(&u.alice, "19005"), "000", "only the guard reaches the upstream");
    assert_eq!(code(&u.alice, "9006"), "200", "alice is served through the guard");

    let second = check(&ns);
    assert!(
        second.contains("only uid") && second.contains("recorded in"),
        "{second}"
    );
    guard.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !guard
        .log()
        .contains("info: front localhost:9006: upstream 127.0.0.1:19005: only uid")
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = guard.log();
    let after_reload = log.rsplit("reloaded").next().unwrap_or_default();
    assert!(
        after_reload.contains("(root's check") && !after_reload.contains("cannot tell"),
        "{log}"
    );
}

/// A client as `user` that connects to 127.0.0.1:`port` (or the Unix socket `unix`), sends a
/// line and prints what comes back: the echo, or nothing when refused.
fn echo_client(ns: &Namespace, user: &User, target: &str) -> String {
    let code = format!(
        r#"
import socket
t = {target:?}
s = socket.socket(socket.AF_UNIX) if t.startswith("/") else socket.socket()
s.settimeout(5)
try:
    s.connect(t if t.startswith("/") else ("127.0.0.1", int(t)))
    s.sendall(b"ping\n")
    print(s.recv(100).decode(), end="")
except Exception as e:
    print("ERROR", type(e).__name__, e)
"#
    );
    let mut argv = as_user(user);
    argv.extend(["/usr/bin/python3", "-c", &code].map(String::from));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = output_within(ns.command(&argv).stdin(Stdio::null()), COMMAND_TIMEOUT);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An echo server on 127.0.0.1:`port`.
fn echo_service(ns: &Namespace, port: u16) -> Spawned {
    python_in(
        ns,
        None,
        &format!(
            r#"
import socketserver
class E(socketserver.StreamRequestHandler):
    def handle(self):
        for line in self.rfile:
            self.wfile.write(line)
socketserver.ThreadingTCPServer.allow_reuse_address = True
srv = socketserver.ThreadingTCPServer(("127.0.0.1", {port}), E)
print("ready", flush=True)
srv.serve_forever()
"#
        ),
    )
}

/// revA guard #11 and #6: with IPv6 off on lo the TCP front listens on 127.0.0.1 and says what it
/// skipped; while it drains, nobody else can take its port.
#[test]
fn without_ipv6_on_lo_the_front_serves_on_ipv4_and_a_draining_guard_keeps_its_port() {
    if !ready("without_ipv6_on_lo…", &["python3", "setpriv", "sysctl"]) {
        return;
    }
    let u = users();
    let ns = namespace("guardnov6");
    must(&mut ns.command(&["sysctl", "-qw", "net.ipv6.conf.lo.disable_ipv6=1"]));
    let _echo = echo_service(&ns, 19007);
    let guard = start_guard(
        &ns,
        Some(&u.guard),
        &[
            "--listen",
            "localhost:9007",
            "--to",
            "127.0.0.1:19007",
            "--allow-user",
            "lwg-alice",
            "--drain-timeout",
            "5",
        ],
    );
    let log = guard.log();
    assert!(
        log.contains(
            "IPv6 loopback (::1) is not configured in this network namespace (net.ipv6.conf.lo.disable_ipv6=1)"
        ) && log.contains("listens on 127.0.0.1:9007 alone"),
        "{log}"
    );
    let listen = guard.status()[0]["fronts"][0]["listen"].to_string();
    assert!(listen.contains("127.0.0.1:9007") && !listen.contains("::1"), "{listen}");
    assert_eq!(echo_client(&ns, &u.alice, "9007"), "ping\n");
    assert!(!echo_client(&ns, &u.bob, "9007").contains("ping"));

    // An allowed connection stays open while the guard drains; meanwhile bob tries to take
    // the port (as a squatter would, with SO_REUSEADDR).
    let mut holder = python_in(
        &ns,
        Some(u.alice.uid),
        "import socket, time\ns = socket.create_connection(('127.0.0.1', 9007))\nprint('ready', flush=True)\ntime.sleep(30)\n",
    );
    guard.signal("TERM");
    std::thread::sleep(Duration::from_millis(500));
    let squat = "import socket\ns = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                 try:\n    s.bind(('127.0.0.1', 9007)); s.listen(); print('BOUND')\nexcept OSError as e:\n    print('REFUSED', e.errno)\n";
    let mut argv = as_user(&u.bob);
    argv.extend(["/usr/bin/python3", "-c", squat].map(String::from));
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = output_within(ns.command(&argv).stdin(Stdio::null()), COMMAND_TIMEOUT);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("REFUSED 98"),
        "the port must stay held while draining: {said}\n{}",
        guard.log()
    );
    assert!(
        guard.log().contains("the port stays held until the guard exits"),
        "{}",
        guard.log()
    );
    let _ = holder.0.kill();
}

/// revA guard #5: a Unix front with the default modes serves its allowed user (and refuses
/// another); a mode that keeps an allowed user out is warned about; a directory of another user
/// anywhere on the way, or a symlink, is refused with the reason.
#[test]
fn a_unix_front_serves_its_users_by_default_and_refuses_a_path_another_user_controls() {
    if !ready("a_unix_front_serves…", &["python3", "setpriv"]) {
        return;
    }
    let u = users();
    let ns = namespace("guardunix");
    let _echo = echo_service(&ns, 19008);
    let tmp = TempDir::new("guard-unix");
    let run = tmp.path().join("run");
    std::fs::create_dir(&run).expect("run dir");
    std::os::unix::fs::chown(&run, Some(u.guard.uid), Some(u.guard.gid)).expect("chown");
    let sock = run.join("app").join("app.sock");
    let listen = format!("unix:{}", sock.display());
    let guard = start_guard(
        &ns,
        Some(&u.guard),
        &[
            "--listen",
            &listen,
            "--to",
            "127.0.0.1:19008",
            "--allow-user",
            "lwg-alice",
        ],
    );
    assert!(!guard.log().contains("cannot connect"), "{}", guard.log());
    assert_eq!(
        echo_client(&ns, &u.alice, sock.to_str().expect("path")),
        "ping\n",
        "{}",
        guard.log()
    );
    assert!(!echo_client(&ns, &u.bob, sock.to_str().expect("path")).contains("ping"));
    drop(guard);

    let private = run.join("private");
    let narrow = start_guard(
        &ns,
        Some(&u.guard),
        &[
            "--listen",
            &format!("unix:{}", private.join("app.sock").display()),
            "--to",
            "127.0.0.1:19008",
            "--allow-user",
            "lwg-alice",
            "--socket-mode",
            "0600",
        ],
    );
    assert!(
        narrow.log().contains("warning: allowed user lwg-alice")
            && narrow.log().contains("cannot connect")
            && narrow.log().contains("(mode 0600"),
        "{}",
        narrow.log()
    );
    drop(narrow);

    // bob's directory high on the way (he could rename what lies below), and a symlink.
    let bobs = tmp.path().join("bobs");
    std::fs::create_dir_all(bobs.join("sub")).expect("dirs");
    std::os::unix::fs::chown(&bobs, Some(u.bob.uid), Some(u.bob.gid)).expect("chown");
    std::os::unix::fs::chown(bobs.join("sub"), Some(u.guard.uid), Some(u.guard.gid)).expect("chown");
    std::os::unix::fs::symlink(&run, tmp.path().join("link")).expect("symlink");
    for (path, want) in [
        (
            bobs.join("sub").join("a.sock"),
            format!("is owned by uid {}", u.bob.uid),
        ),
        (tmp.path().join("link").join("a.sock"), "is a symlink (to ".to_string()),
    ] {
        let mut argv = as_user(&u.guard);
        argv.extend(
            [
                loopwarden(),
                "guard",
                "--listen",
                &format!("unix:{}", path.display()),
                "--to",
                "127.0.0.1:19008",
                "--allow-user",
                "lwg-alice",
            ]
            .map(String::from),
        );
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = output_within(ns.command(&argv).stdin(Stdio::null()), COMMAND_TIMEOUT);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", path.display());
        assert!(err.contains(&want), "{}: expected {want:?} in {err}", path.display());
    }
}
