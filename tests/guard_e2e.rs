//! `loopwarden guard` end to end, in namespaces made for each test, with real clients (curl,
//! Python's `websockets`) running as different users (`setpriv`): the allowed user is served,
//! another is refused, over TCP on both families and over Unix, while the same service without
//! the guard (the control) serves everyone.

mod common;
mod guard_common;

use common::*;
use guard_common::*;
use std::os::unix::fs::PermissionsExt;

#[test]
fn a_tcp_front_admits_the_allowed_user_and_group_on_both_families_and_refuses_another() {
    if !ready("a_tcp_front_admits…", &["curl", "setpriv", "python3"]) {
        return;
    }
    let u = users();
    let ns = namespace("guardtcp");
    let _service = http_service(&ns, 18080, "hello");
    let guard = start_guard(
        &ns,
        Some(&u.guard),
        &[
            "--listen",
            "127.0.0.1:8080",
            "--to",
            "127.0.0.1:18080",
            "--allow-user",
            "lwg-alice",
            "--allow-group",
            "lwg-dev",
        ],
    );
    for url in ["http://127.0.0.1:8080/", "http://[::1]:8080/", "http://localhost:8080/"] {
        for (who, user) in [
            ("alice (allowed user)", &u.alice),
            ("carol (member of lwg-dev)", &u.carol),
        ] {
            let (_, code, body) = curl(&ns, Some(user), &[url]);
            assert_eq!(code, "200", "{who} through {url}: {body}\n{}", guard.log());
            assert!(body.starts_with("hello"), "{body}");
        }
        let (exit, code, _) = curl(&ns, Some(&u.bob), &[url]);
        assert_eq!(code, "000", "bob must be refused through {url}");
        assert_ne!(exit, 0);
    }
    // The control: the service itself answers everyone — only the guard tells them apart.
    for user in [&u.alice, &u.bob] {
        let (_, code, _) = curl(&ns, Some(user), &["http://127.0.0.1:18080/"]);
        assert_eq!(code, "200", "control: {} reaches the bare service", user.name);
    }
    let counters = guard.counters_after(3);
    assert_eq!(counters["refused"]["not-allowed"], 3, "{counters}");
    assert!(counters["allowed"].as_u64() >= Some(6), "{counters}");
    let log = guard.log();
    assert!(
        log.contains(&format!("refused uid {} (lwg-bob)", u.bob.uid)) && log.contains("not an allowed user or group"),
        "{log}"
    );
    assert!(
        log.contains("`loopwarden harden --allow 18080=lwg-guard`"),
        "the start-up warning must name the exact fix:\n{log}"
    );
}

#[test]
fn a_unix_front_checks_the_peer_uid_even_when_the_socket_mode_lets_everyone_connect() {
    if !ready("a_unix_front_checks…", &["curl", "setpriv", "python3"]) {
        return;
    }
    let u = users();
    let ns = namespace("guardunix");
    let _service = http_service(&ns, 18081, "unix-hello");
    let tmp = TempDir::new("guard-unix");
    let dir = tmp.path().join("run");
    std::fs::create_dir(&dir).expect("socket dir");
    std::os::unix::fs::chown(&dir, Some(u.guard.uid), Some(u.guard.gid)).expect("chown");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let socket = dir.join("app.sock");
    let listen = format!("unix:{}", socket.display());
    let guard = start_guard(
        &ns,
        Some(&u.guard),
        &[
            "--listen",
            &listen,
            "--to",
            "127.0.0.1:18081",
            "--allow-user",
            "lwg-alice",
            "--socket-mode",
            "0666",
        ],
    );
    let meta = std::fs::metadata(&socket).expect("socket file");
    assert_eq!(meta.permissions().mode() & 0o777, 0o666);
    let path = socket.display().to_string();
    let (_, code, body) = curl(&ns, Some(&u.alice), &["--unix-socket", &path, "http://localhost/"]);
    assert_eq!(code, "200", "alice over unix: {body}\n{}", guard.log());
    let (_, code, _) = curl(&ns, Some(&u.bob), &["--unix-socket", &path, "http://localhost/"]);
    assert_eq!(
        code, "000",
        "bob may open the socket (mode 0666) but the guard must refuse him"
    );
    let log = guard.log();
    assert!(
        log.contains(&format!("refused uid {} (lwg-bob) pid ", u.bob.uid)) && log.contains("(curl)"),
        "the refusal names the process (SO_PEERCRED):\n{log}"
    );
}

#[test]
fn an_http_front_checks_host_origin_and_preflights_strips_claimed_identities_and_states_the_proven_one() {
    if !ready("an_http_front_checks…", &["curl", "setpriv", "python3"]) {
        return;
    }
    let u = users();
    let ns = namespace("guardhttp");
    let _service = http_service(&ns, 18082, "web");
    let guard = start_guard(
        &ns,
        Some(&u.guard),
        &[
            "--listen",
            "localhost:8082",
            "--to",
            "127.0.0.1:18082",
            "--allow-user",
            "lwg-alice",
            "--http",
            "--identity-header",
            "X-Loopwarden-User",
        ],
    );
    let url = "http://127.0.0.1:8082/";
    let (_, code, body) = curl(
        &ns,
        Some(&u.alice),
        &[
            "-H",
            "X-Forwarded-For: 203.0.113.9",
            "-H",
            "X-Loopwarden-User: root",
            url,
        ],
    );
    assert_eq!(code, "200", "{body}\n{}", guard.log());
    assert_eq!(
        body, "web user=lwg-alice xff=-",
        "claimed identities removed, the proven one stated"
    );
    let cases: [(&str, &[&str], &str); 6] = [
        (
            "DNS rebinding: foreign Host",
            &["-H", "Host: rebind.example:8082"],
            "421",
        ),
        ("no Host at all", &["-H", "Host:"], "400"),
        (
            "cross-site POST",
            &["-X", "POST", "-d", "x", "-H", "Origin: http://evil.example"],
            "403",
        ),
        (
            "same-origin POST",
            &["-X", "POST", "-d", "x", "-H", "Origin: http://localhost:8082"],
            "200",
        ),
        (
            "private network access preflight from a public page",
            &[
                "-X",
                "OPTIONS",
                "-H",
                "Origin: http://evil.example",
                "-H",
                "Access-Control-Request-Method: GET",
                "-H",
                "Access-Control-Request-Private-Network: true",
            ],
            "403",
        ),
        (
            "cross-site fetch (Sec-Fetch-Site)",
            &[
                "-H",
                "Sec-Fetch-Site: cross-site",
                "-H",
                "Sec-Fetch-Mode: cors",
                "-H",
                "Sec-Fetch-Dest: empty",
            ],
            "403",
        ),
    ];
    for (what, args, want) in cases {
        let mut argv = args.to_vec();
        argv.push(url);
        let (_, code, body) = curl(&ns, Some(&u.alice), &argv);
        assert_eq!(code, want, "{what}: {body}");
        if want != "200" {
            assert!(
                body.starts_with("loopwarden guard: refused: "),
                "{what}: one-line reason: {body}"
            );
        }
    }
    let (_, code, body) = curl(&ns, Some(&u.bob), &[url]);
    assert_eq!(
        (code.as_str(), body.as_str()),
        ("403", "loopwarden guard: refused: not an allowed user or group\n"),
        "bob is refused before his request reaches the service, with an HTTP answer"
    );
    let counters = guard.counters_after(6);
    for key in [
        "foreign-host",
        "missing-host",
        "foreign-origin",
        "network-access-preflight",
        "cross-site",
        "not-allowed",
    ] {
        assert_eq!(counters["refused"][key], 1, "{key}: {counters}");
    }
}

/// An echo WebSocket server (Python `websockets`) and a client that connects with an Origin and
/// prints `echo:<text>` or `refused:<reason>`.
const WS_SERVER: &str = r#"
import asyncio, websockets
async def echo(ws, *path):
    async for m in ws: await ws.send(m)
async def main():
    async with websockets.serve(echo, "127.0.0.1", 18083):
        print("ready", flush=True)
        await asyncio.Future()
asyncio.run(main())
"#;

const WS_CLIENT: &str = r#"
import asyncio, sys, websockets
async def main():
    try:
        async with websockets.connect(sys.argv[1], origin=sys.argv[2], open_timeout=5) as ws:
            await ws.send("ping"); print("echo:" + await ws.recv())
    except Exception as e:
        print("refused:" + type(e).__name__ + ":" + str(e))
asyncio.run(main())
"#;

#[test]
fn a_websocket_from_a_foreign_origin_is_refused_and_from_the_front_origin_passed() {
    if !ready("a_websocket_from_a_foreign_origin…", &["setpriv", "python3"]) {
        return;
    }
    if std::process::Command::new("/usr/bin/python3")
        .args(["-c", "import websockets"])
        .status()
        .map_or(true, |s| !s.success())
    {
        assert!(
            std::env::var("LOOPWARDEN_E2E").is_err(),
            "python3-websockets is missing"
        );
        eprintln!("SKIPPED a_websocket_from_a_foreign_origin…: python3-websockets is missing");
        return;
    }
    let u = users();
    let ns = namespace("guardws");
    // Some(0): root, through /usr/bin/python3 (the distribution's, which has websockets).
    let _server = python_in(&ns, Some(0), WS_SERVER);
    let guard = start_guard(
        &ns,
        Some(&u.guard),
        &[
            "--listen",
            "localhost:8083",
            "--to",
            "127.0.0.1:18083",
            "--allow-user",
            "lwg-alice",
            "--http",
        ],
    );
    let client = |origin: &str| {
        let mut argv = as_user(&u.alice);
        argv.extend([
            "/usr/bin/python3".into(),
            "-c".into(),
            WS_CLIENT.into(),
            "ws://localhost:8083/".into(),
            origin.into(),
        ]);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let out = ns.command(&argv).output().expect("websocket client");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let foreign = client("http://evil.example");
    assert!(
        foreign.starts_with("refused:") && foreign.contains("403"),
        "foreign Origin: {foreign}\n{}",
        guard.log()
    );
    let own = client("http://localhost:8083");
    assert_eq!(
        own,
        "echo:ping",
        "the front's own origin passes and the upgraded stream flows\n{}",
        guard.log()
    );
}
