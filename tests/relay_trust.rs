//! Root must not run a program, or read a file, that another user chose — end to end, with a real
//! unprivileged user (`lw-e2e`) and real programs inside a namespace made for each test.
//!
//! The user starts a program of their own titled like an nginx master, and an haproxy-named one
//! whose `-f` names `/etc/shadow` (directly and through a symlink). `loopwarden audit` and
//! `facts` run as root: the program must never be executed again (it would leave a marker
//! file), no line of `/etc/shadow` may appear anywhere, and the limits must say whose process
//! and which check. A root-owned look-alike whose directory the user owns is refused the same
//! way; the user's real (root-owned) caddy is not run either — its routes are unknown.

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A scratch tree: a root-owned 0755 top, a directory owned by the test user inside it, and a
/// world-writable (sticky) directory for the marker, so that a run as anyone would leave it.
struct Tree {
    _tmp: TempDir,
    user_dir: PathBuf,
    marker: PathBuf,
}

fn tree(tag: &str, user: &TestUser) -> Tree {
    let tmp = TempDir::new(tag);
    let user_dir = tmp.path().join("user");
    let marks = tmp.path().join("marks");
    for dir in [&user_dir, &marks] {
        std::fs::create_dir(dir).expect("mkdir");
    }
    std::fs::set_permissions(&marks, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    std::os::unix::fs::chown(&user_dir, Some(user.uid), Some(user.gid)).expect("chown");
    Tree {
        user_dir,
        marker: marks.join("executed"),
        _tmp: tmp,
    }
}

/// Compiles the stand-in daemon to `path`, owned by `owner` (uid, gid).
fn fake_at(path: &Path, marker: &Path, owner: (u32, u32)) {
    fake_daemon(path, marker);
    std::os::unix::fs::chown(path, Some(owner.0), Some(owner.1)).expect("chown fake daemon");
}

/// Starts `exe` as `as_user` (or root) inside `ns` with `argv` (`argv[0]` is the title `ps`
/// shows), listening on `listen`.
fn start(ns: &Namespace, as_user: Option<&TestUser>, exe: &Path, argv: &[&str], listen: &str) -> Spawned {
    let mut line: Vec<String> = Vec::new();
    if let Some(user) = as_user {
        line.extend([
            "setpriv".into(),
            format!("--reuid={}", user.uid),
            format!("--regid={}", user.gid),
            "--clear-groups".into(),
            "--".into(),
        ]);
    }
    // bash's `exec -a` sets argv[0]: the title a daemon would give itself.
    line.extend([
        "bash".into(),
        "-c".into(),
        "exec -a \"$0\" \"$@\"".into(),
        argv[0].into(),
        exe.to_str().expect("utf-8 path").into(),
    ]);
    line.extend(argv[1..].iter().map(|a| a.to_string()));
    let line: Vec<&str> = line.iter().map(String::as_str).collect();
    let mut cmd = ns.command(&line);
    cmd.env("LW_FAKE_LISTEN", listen);
    spawn_ready(cmd, argv[0])
}

fn limits(report: &Value) -> Vec<String> {
    report["host"]["limits"]
        .as_array()
        .expect("limits")
        .iter()
        .filter_map(|l| l.as_str().map(str::to_string))
        .collect()
}

fn shadow_lines() -> Vec<String> {
    std::fs::read_to_string("/etc/shadow")
        .expect("read /etc/shadow")
        .lines()
        .filter(|l| l.len() > 8)
        .map(str::to_string)
        .collect()
}

#[test]
fn another_users_nginx_look_alike_is_never_executed() {
    if !require_root("another_users_nginx_look_alike_is_never_executed") {
        return;
    }
    let user = test_user();
    let tree = tree("trust-nginx", &user);
    let exe = tree.user_dir.join("nginx");
    fake_at(&exe, &tree.marker, (user.uid, user.gid));
    let ns = namespace("trustnginx");
    let title = format!("nginx: master process nginx -c {}/nginx.conf", tree.user_dir.display());
    let _daemon = start(&ns, Some(&user), &exe, &[&title], "127.0.0.1:7401");

    let report = audit_json(&ns, &["--fail-on", "critical"]);
    assert!(
        !tree.marker.exists(),
        "root ran the user's program: {}",
        std::fs::read_to_string(&tree.marker).unwrap_or_default()
    );
    let limits = limits(&report);
    let why = limits
        .iter()
        .find(|l| l.starts_with("relays.nginx:") && l.contains("was not run"))
        .unwrap_or_else(|| panic!("no limit explains why nginx was not asked: {limits:#?}"));
    assert!(why.contains(&format!("runs as uid {}", user.uid)), "{why}");
}

#[test]
fn a_root_daemon_whose_directory_another_user_owns_is_not_executed() {
    if !require_root("a_root_daemon_whose_directory_another_user_owns_is_not_executed") {
        return;
    }
    let user = test_user();
    let tree = tree("trust-rootdir", &user);
    // Root's own file, but in a directory the user may rename it out of and replace.
    let exe = tree.user_dir.join("nginx");
    fake_at(&exe, &tree.marker, (0, 0));
    let ns = namespace("trustrootdir");
    let title = "nginx: master process /usr/sbin/nginx -g daemon off;";
    let _daemon = start(&ns, None, &exe, &[title], "127.0.0.1:7402");
    let report = audit_json(&ns, &["--fail-on", "critical"]);
    assert!(
        !tree.marker.exists(),
        "root ran a program in a directory uid {} owns",
        user.uid
    );
    let limits = limits(&report);
    assert!(
        limits.iter().any(|l| l.contains("(pid ")
            && l.contains("uid 0)")
            && l.contains(&format!(
                "directory {} is owned by uid {}",
                tree.user_dir.display(),
                user.uid
            ))),
        "{limits:#?}"
    );
}

#[test]
fn another_users_haproxy_cannot_read_root_only_files_into_the_snapshot() {
    if !require_root("another_users_haproxy_cannot_read_root_only_files_into_the_snapshot") {
        return;
    }
    let user = test_user();
    let tree = tree("trust-haproxy", &user);
    let exe = tree.user_dir.join("haproxy");
    fake_at(&exe, &tree.marker, (user.uid, user.gid));
    let link = tree.user_dir.join("link.cfg");
    std::os::unix::fs::symlink("/etc/shadow", &link).expect("symlink");
    // What the user may read is still read, as the user: its own configuration.
    let own = tree.user_dir.join("own.cfg");
    std::fs::write(
        &own,
        "frontend mine\n    bind :8403\n    default_backend b\nbackend b\n    server s 127.0.0.1:7403\n",
    )
    .expect("write");
    std::os::unix::fs::chown(&own, Some(user.uid), Some(user.gid)).expect("chown");
    let ns = namespace("trusthaproxy");
    let argv = [
        "haproxy",
        "-f",
        "/etc/shadow",
        "-f",
        link.to_str().expect("utf-8"),
        "-f",
        own.to_str().expect("utf-8"),
    ];
    let _daemon = start(&ns, Some(&user), &exe, &argv, "127.0.0.1:7404");

    let facts = run_loopwarden(&ns, &["facts"]);
    assert!(facts.status.success(), "{}", String::from_utf8_lossy(&facts.stderr));
    let audit = run_loopwarden(&ns, &["audit", "--json", "--fail-on", "critical"]);
    let printed = [&facts.stdout, &facts.stderr, &audit.stdout, &audit.stderr]
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    for line in shadow_lines() {
        assert!(!printed.contains(&line), "a line of /etc/shadow reached the output");
    }
    assert!(!tree.marker.exists(), "the haproxy look-alike was executed");
    let snapshot: Value = serde_json::from_slice(&facts.stdout).expect("facts JSON");
    let captures = snapshot["relays"]["captures"].as_array().expect("captures");
    let read: Vec<&str> = captures
        .iter()
        .filter(|c| c["kind"] == "haproxy")
        .filter_map(|c| c["command"][1].as_str())
        .collect();
    assert_eq!(read, vec![own.to_str().expect("utf-8")], "{captures:#?}");
    let limits: Vec<String> = snapshot["host"]["limits"]
        .as_array()
        .expect("limits")
        .iter()
        .map(|l| {
            format!(
                "{}: {}",
                l["scope"].as_str().unwrap_or(""),
                l["detail"].as_str().unwrap_or("")
            )
        })
        .collect();
    for path in ["/etc/shadow".to_string(), link.display().to_string()] {
        assert!(
            limits.iter().any(|l| l.starts_with("relays.haproxy:")
                && l.contains(&format!("uid {}", user.uid))
                && l.contains(&format!("cannot open {path}: Permission denied"))),
            "{path}: {limits:#?}"
        );
    }
}

#[test]
fn another_users_real_caddy_is_not_run_and_its_routes_are_unknown() {
    if !require_root("another_users_real_caddy_is_not_run_and_its_routes_are_unknown")
        || !require_tool(
            "another_users_real_caddy_is_not_run_and_its_routes_are_unknown",
            "caddy",
        )
    {
        return;
    }
    let user = test_user();
    let tree = tree("trust-caddy", &user);
    let caddyfile = tree.user_dir.join("Caddyfile");
    std::fs::write(
        &caddyfile,
        "{\n    admin off\n    auto_https off\n}\n:8405 {\n    reverse_proxy 127.0.0.1:7405\n}\n",
    )
    .expect("write Caddyfile");
    std::os::unix::fs::chown(&caddyfile, Some(user.uid), Some(user.gid)).expect("chown");
    let ns = namespace("trustcaddy");
    let _upstream = python_in(
        &ns,
        None,
        "import socket, time\ns = socket.socket(); s.bind(('127.0.0.1', 7405)); s.listen()\nprint('ready', flush=True)\ntime.sleep(600)",
    );
    let home = tree.user_dir.to_str().expect("utf-8");
    let config = caddyfile.to_str().expect("utf-8");
    let uid = format!("--reuid={}", user.uid);
    let gid = format!("--regid={}", user.gid);
    let mut cmd = ns.command(&[
        "setpriv",
        &uid,
        &gid,
        "--clear-groups",
        "--",
        "caddy",
        "run",
        "--config",
        config,
        "--adapter",
        "caddyfile",
    ]);
    cmd.env("HOME", home)
        .env("XDG_DATA_HOME", home)
        .env("XDG_CONFIG_HOME", home);
    let _caddy = Spawned(
        cmd.stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start caddy"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !ns
        .exec(&["ss", "-Hltn", "sport = :8405"])
        .unwrap_or_default()
        .contains("8405")
    {
        assert!(std::time::Instant::now() < deadline, "caddy did not listen");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let report = audit_json(&ns, &["--fail-on", "critical"]);
    // Caddy (its program and its Caddyfile) is the user's: loopwarden runs no program another user
    // configured (a Caddyfile can load code, and a user's program could reach root's terminal).
    let limits = limits(&report);
    assert!(
        limits.iter().any(|l| l.starts_with("relays.caddy")
            && l.contains(&format!("runs as uid {}", user.uid))
            && l.contains("was not run")),
        "{limits:#?}"
    );
    let unknown = findings(&report, "relay.reverse-proxy", Some("tcp:*:8405"));
    let unknown = if unknown.is_empty() {
        findings(&report, "relay.reverse-proxy", None)
    } else {
        unknown
    };
    assert!(
        unknown
            .iter()
            .any(|f| f["status"] == "unknown" && f["title"].as_str().is_some_and(|t| t.contains("caddy"))),
        "what the unread proxy publishes is unknown, not nothing: {report:#}"
    );
    let snapshot = run_loopwarden(&ns, &["facts"]);
    let snapshot: Value = serde_json::from_slice(&snapshot.stdout).expect("facts JSON");
    let adapted = snapshot["relays"]["captures"]
        .as_array()
        .expect("captures")
        .iter()
        .any(|c| c["kind"] == "caddy");
    assert!(!adapted, "no caddy adapt was run as the user: {snapshot:#}");
}

/// A root daemon's configuration reached through another user's symlink or directory is not
/// read as root. Real haproxy, started as root, reads three `-f` files: its own (read), one
/// through a directory the user owns, and one through a symlink the user owns in a root
/// directory (both followed by haproxy, both leading to root-only configuration). loopwarden
/// reads the first, names each of the others as not read (the component and its owner), and
/// calls what the unread files publish unknown.
#[test]
fn a_root_daemons_config_through_another_users_link_is_not_read() {
    let test = "a_root_daemons_config_through_another_users_link_is_not_read";
    if !require_root(test) || !require_tool(test, "haproxy") {
        return;
    }
    let user = test_user();
    let tree = tree("trust-links", &user);
    let root_dir = tree.user_dir.parent().expect("top").join("root");
    std::fs::create_dir(&root_dir).expect("mkdir");
    let frontend = |port: u16, backend: u16| {
        format!(
            "defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\
             frontend f{port}\n    bind :{port}\n    default_backend b{port}\nbackend b{port}\n    server s 127.0.0.1:{backend}\n"
        )
    };
    let own = root_dir.join("own.cfg");
    std::fs::write(&own, frontend(8406, 7406)).expect("write");
    for (name, port) in [("secret-a.cfg", 8407), ("secret-b.cfg", 8408)] {
        let path = root_dir.join(name);
        std::fs::write(&path, frontend(port, port - 1000)).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    // Through the user's directory: a link there (the user could point it anywhere).
    let via_dir = tree.user_dir.join("via-dir.cfg");
    std::os::unix::fs::symlink(root_dir.join("secret-a.cfg"), &via_dir).expect("symlink");
    std::os::unix::fs::lchown(&via_dir, Some(user.uid), Some(user.gid)).expect("lchown");
    // The user's own link in root's directory.
    let user_link = root_dir.join("user-link.cfg");
    std::os::unix::fs::symlink(root_dir.join("secret-b.cfg"), &user_link).expect("symlink");
    std::os::unix::fs::lchown(&user_link, Some(user.uid), Some(user.gid)).expect("lchown");

    let ns = namespace("trustlinks");
    let paths = [&own, &via_dir, &user_link].map(|p| p.to_str().expect("utf-8").to_string());
    let mut argv = vec!["haproxy", "-db"];
    for p in &paths {
        argv.extend(["-f", p.as_str()]);
    }
    let _haproxy = Spawned(
        ns.command(&argv)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start haproxy"),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !["8406", "8407", "8408"].iter().all(|p| {
        ns.exec(&["ss", "-Hltn", "sport >= :8406 and sport <= :8408"])
            .unwrap_or_default()
            .contains(&format!(":{p}"))
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "haproxy did not listen on its three ports"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }

    let facts = run_loopwarden(&ns, &["facts"]);
    assert!(facts.status.success(), "{}", String::from_utf8_lossy(&facts.stderr));
    let snapshot: Value = serde_json::from_slice(&facts.stdout).expect("facts JSON");
    let read: Vec<&str> = snapshot["relays"]["captures"]
        .as_array()
        .expect("captures")
        .iter()
        .filter(|c| c["kind"] == "haproxy")
        .filter_map(|c| c["command"][1].as_str())
        .collect();
    assert_eq!(read, vec![paths[0].as_str()], "only root's own file is read");
    let printed = String::from_utf8_lossy(&facts.stdout);
    assert!(
        !printed.contains("f8407") && !printed.contains("f8408"),
        "an unread file's text is in the snapshot"
    );

    let report = audit_json(&ns, &["--fail-on", "critical"]);
    let limits = limits(&report);
    let refused = |what: String| {
        limits
            .iter()
            .any(|l| l.starts_with("relays.haproxy:") && l.contains("not read") && l.contains(&what))
    };
    assert!(
        refused(format!(
            "{} is a directory owned by uid {}",
            tree.user_dir.display(),
            user.uid
        )),
        "{limits:#?}"
    );
    assert!(
        refused(format!(
            "{} is a symlink owned by uid {}",
            user_link.display(),
            user.uid
        )),
        "{limits:#?}"
    );
    for port in ["8407", "8408"] {
        let on_port: Vec<&Value> = findings(&report, "relay.reverse-proxy", None)
            .into_iter()
            .filter(|f| f["service"].as_str().is_some_and(|s| s.ends_with(&format!(":{port}"))))
            .collect();
        assert!(
            on_port.iter().all(|f| f["status"] != "blocked"),
            "what the unread file publishes is not known to be closed: {on_port:#?}"
        );
    }
}
