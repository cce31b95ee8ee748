//! The guard under hostile or broken peers, in namespaces: slowloris, oversized and overlong
//! heads, too many connections, an upstream that goes away and comes back, a client that never
//! reads, half-closed connections; and its operations: SIGHUP reload keeps allowed connections,
//! SIGTERM drains.

mod common;
mod guard_common;

use common::*;
use guard_common::*;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// Runs `f` on a thread inside `ns` (test clients are plain sockets in the namespace).
fn inside<R: Send + 'static>(ns: &Namespace, f: impl FnOnce() -> R + Send + 'static) -> R {
    ns.run_in(f).expect("run in namespace")
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the front");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s
}

/// Sends a raw request and returns the status code of the answer (0: closed without one).
fn status_of(s: &mut TcpStream, request: &[u8]) -> u16 {
    if s.write_all(request).is_err() {
        return 0;
    }
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: localhost:8090\r\n\r\n";

#[test]
fn http_mode_survives_slowloris_huge_heads_connection_floods_and_an_upstream_outage() {
    if !ready("http_mode_survives…", &["python3"]) {
        return;
    }
    let ns = namespace("guardrobust");
    let mut service = Some(http_service(&ns, 18090, "ok"));
    let guard = start_guard(
        &ns,
        None,
        &[
            "--listen",
            "localhost:8090",
            "--to",
            "127.0.0.1:18090",
            "--allow-user",
            "root",
            "--http",
            "--header-timeout",
            "1",
            "--max-conns",
            "4",
            "--max-header-bytes",
            "8192",
        ],
    );
    // Slowloris: a head that never ends is cut after the header timeout.
    let (closed, elapsed) = inside(&ns, || {
        let mut s = connect(8090);
        let start = Instant::now();
        s.write_all(b"GET / HTTP/1.1\r\nHost: localhost:8090\r\n")
            .expect("write");
        let mut buf = [0u8; 64];
        let mut closed = false;
        for _ in 0..4 {
            std::thread::sleep(Duration::from_millis(400));
            if s.write_all(b"X-Slow: 1\r\n").is_err() {
                closed = true;
                break;
            }
        }
        if !closed {
            closed = matches!(s.read(&mut buf), Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).contains("408");
        }
        (closed, start.elapsed())
    });
    assert!(
        closed && elapsed < Duration::from_secs(4),
        "slowloris connection kept open ({elapsed:?})"
    );
    // Oversized head and too many header fields: 431, no panic.
    let (huge, many) = inside(&ns, || {
        let big = format!(
            "GET / HTTP/1.1\r\nHost: localhost:8090\r\nX-Big: {}\r\n\r\n",
            "a".repeat(20_000)
        );
        let mut fields = String::from("GET / HTTP/1.1\r\nHost: localhost:8090\r\n");
        for i in 0..150 {
            fields.push_str(&format!("X-F{i}: v\r\n"));
        }
        fields.push_str("\r\n");
        (
            status_of(&mut connect(8090), big.as_bytes()),
            status_of(&mut connect(8090), fields.as_bytes()),
        )
    });
    assert_eq!((huge, many), (431, 431), "{}", guard.log());
    // Too many connections: the fifth is closed at once, the first four are still served.
    let (fifth, served) = inside(&ns, || {
        let mut held: Vec<TcpStream> = (0..4).map(|_| connect(8090)).collect();
        // The first asks at once: on a busy machine a head sent only after the fifth was refused
        // could outlast the 1 s header timeout. Its answer is read after the fifth's refusal.
        let asked = held[0].write_all(GET).is_ok();
        std::thread::sleep(Duration::from_millis(200));
        let mut extra = connect(8090);
        let mut buf = [0u8; 16];
        let fifth = extra.read(&mut buf).unwrap_or(0);
        let served = if asked { status_of(&mut held[0], b"") } else { 0 };
        (fifth, served)
    });
    assert_eq!((fifth, served), (0, 200), "{}", guard.log());
    // Upstream down: 502 with the reason; back up: served again.
    drop(service.take());
    std::thread::sleep(Duration::from_millis(200));
    let down = inside(&ns, || status_of(&mut connect(8090), GET));
    assert_eq!(down, 502);
    service = Some(http_service(&ns, 18090, "ok"));
    let up = inside(&ns, || status_of(&mut connect(8090), GET));
    assert_eq!(up, 200, "recovery after the upstream came back\n{}", guard.log());
    drop(service);
    let counters = guard.counters_until(|c| c["upstream_errors"].as_u64() >= Some(1));
    assert!(
        counters["refused"]["too-many-connections"].as_u64() >= Some(1),
        "{counters}"
    );
    assert!(counters["upstream_errors"].as_u64() >= Some(1), "{counters}");
}

/// Upstream for TCP mode: on port 18091 it answers "got N bytes" once the client half-closed;
/// on port 18092 it sends 64 MiB at once to whoever connects.
const TCP_UPSTREAMS: &str = r#"
import socket, threading
def after_eof(c):
    n = 0
    while True:
        d = c.recv(65536)
        if not d: break
        n += len(d)
    c.sendall(b"got %d bytes" % n); c.close()
def flood(c):
    try: c.sendall(b"x" * (64 << 20))
    except OSError: pass
    c.close()
def serve(port, handler):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port)); s.listen(64)
    while True:
        c, _ = s.accept(); threading.Thread(target=handler, args=(c,), daemon=True).start()
for port, h in ((18091, after_eof), (18092, flood)):
    threading.Thread(target=serve, args=(port, h), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"#;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[test]
fn tcp_mode_keeps_half_close_bounds_a_client_that_never_reads_and_recovers_from_an_upstream_outage() {
    if !ready("tcp_mode_keeps_half_close…", &["python3"]) {
        return;
    }
    let ns = namespace("guardsplice");
    let mut upstreams = Some(python_in(&ns, None, TCP_UPSTREAMS));
    let config = "[[front]]\nlisten = \"localhost:8091\"\nto = \"127.0.0.1:18091\"\nallow_users = [\"root\"]\n\
                  [[front]]\nlisten = \"localhost:8092\"\nto = \"127.0.0.1:18092\"\nallow_users = [\"root\"]\n";
    let root = User {
        name: "root",
        uid: 0,
        gid: 0,
    };
    let guard = start_guard_config(&ns, &root, config);
    let pid = guard.process.0.id();
    // A client that never reads: the guard stops reading the upstream when the client's buffers
    // are full (back-pressure through the pipe), so its memory stays flat.
    let (sleeper, reply) = inside(&ns, || {
        let sleeper = connect(8092);
        std::thread::sleep(Duration::from_millis(500));
        // Meanwhile another client is served, with half-close: it sends, shuts down writing,
        // and still receives the answer the upstream sends after seeing EOF.
        let mut s = connect(8091);
        s.write_all(&vec![7u8; 100_000]).expect("send");
        s.shutdown(Shutdown::Write).expect("half-close");
        let mut reply = String::new();
        s.read_to_string(&mut reply).expect("reply after half-close");
        (sleeper, reply)
    });
    assert_eq!(reply, "got 100000 bytes");
    assert!(
        rss_kib(pid) < 64 * 1024,
        "guard RSS {} KiB with a client that never reads",
        rss_kib(pid)
    );
    drop(sleeper);
    // Upstream down: the client's connection is closed; back up: forwarded again.
    drop(upstreams.take());
    std::thread::sleep(Duration::from_millis(200));
    let closed = inside(&ns, || {
        let mut s = connect(8091);
        let mut buf = [0u8; 8];
        matches!(s.read(&mut buf), Ok(0) | Err(_))
    });
    assert!(closed, "a connection to a dead upstream is closed");
    upstreams = Some(python_in(&ns, None, TCP_UPSTREAMS));
    let again = inside(&ns, || {
        let mut s = connect(8091);
        s.write_all(b"abc").expect("send");
        s.shutdown(Shutdown::Write).expect("half-close");
        let mut r = String::new();
        s.read_to_string(&mut r).expect("reply");
        r
    });
    assert_eq!(again, "got 3 bytes", "{}", guard.log());
    drop(upstreams);
}

/// An echo client run as a user: sends `one`, waits for the file named by argv[2], sends `two`,
/// waits for argv[3], sends `three`; prints each echo.
const LONG_CLIENT: &str = r#"
import os, socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def wait_for(path):
    for _ in range(200):
        if os.path.exists(path): return
        time.sleep(0.05)
for word, gate in (("one", sys.argv[2]), ("two", sys.argv[3]), ("three", None)):
    s.sendall(word.encode()); print(s.recv(64).decode(), flush=True)
    if gate: wait_for(gate)
"#;

const ECHO: &str = r#"
import socket, threading
def echo(c):
    while True:
        d = c.recv(65536)
        if not d: break
        c.sendall(d)
    c.close()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 18093)); s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept(); threading.Thread(target=echo, args=(c,), daemon=True).start()
"#;

#[test]
fn sighup_reloads_without_dropping_an_allowed_connection_and_sigterm_drains() {
    if !ready("sighup_reloads…", &["python3", "setpriv"]) {
        return;
    }
    let u = users();
    let ns = namespace("guardops");
    let _echo = python_in(&ns, None, ECHO);
    let front = "[[front]]\nlisten = \"localhost:8093\"\nto = \"127.0.0.1:18093\"\n";
    let guard = start_guard_config(&ns, &u.guard, &format!("{front}allow_users = [\"lwg-alice\"]\n"));
    let config = guard.dir.path().join("guard.toml");
    let gates = TempDir::new("guard-gates");
    let (gate1, gate2) = (gates.path().join("1"), gates.path().join("2"));
    let mut argv = as_user(&u.alice);
    argv.extend(
        ["/usr/bin/python3", "-u", "-c", LONG_CLIENT, "8093"]
            .map(String::from)
            .into_iter()
            .chain([gate1.display().to_string(), gate2.display().to_string()]),
    );
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let alice = ns
        .command(&argv)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("alice's client");
    let alice = Spawned(alice);
    std::thread::sleep(Duration::from_millis(300));
    let bob_echo = |ns: &Namespace| {
        let mut argv = as_user(&u.bob);
        argv.extend(["/usr/bin/python3", "-c", "import socket; s=socket.create_connection(('127.0.0.1',8093)); s.settimeout(3); s.sendall(b'hi'); print(s.recv(8).decode())"].map(String::from));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        String::from_utf8_lossy(&ns.command(&argv).output().expect("bob").stdout)
            .trim()
            .to_string()
    };
    assert_eq!(bob_echo(&ns), "", "bob is refused before the reload");
    // Reload: bob is allowed now; alice's open connection goes on.
    std::fs::write(
        &config,
        format!(
            "status_dir = \"{}\"\n{front}allow_users = [\"lwg-alice\", \"lwg-bob\"]\n",
            guard.status_dir().display()
        ),
    )
    .expect("rewrite config");
    guard.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !guard.log().contains("reloaded") {
        assert!(Instant::now() < deadline, "no reload:\n{}", guard.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(bob_echo(&ns), "hi", "bob is allowed after the reload\n{}", guard.log());
    std::fs::write(&gate1, "").expect("gate");
    // Drain: no new connections, alice's open one finishes, then the guard exits by itself.
    guard.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !guard.log().contains("draining") {
        assert!(Instant::now() < deadline, "no drain:\n{}", guard.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(bob_echo(&ns), "", "no new connection while draining");
    std::fs::write(&gate2, "").expect("gate");
    let mut alice = alice;
    let mut out = String::new();
    alice
        .0
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("alice's output");
    assert_eq!(
        out.split_whitespace().collect::<Vec<_>>(),
        vec!["one", "two", "three"],
        "{}",
        guard.log()
    );
    let mut process = guard.process;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = process.0.try_wait().expect("wait") {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(Instant::now() < deadline, "the guard did not exit after draining");
        std::thread::sleep(Duration::from_millis(50));
    }
}
