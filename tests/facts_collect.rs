//! `loopwarden facts` end to end: real listeners of every kind in a fresh namespace, collected by
//! the binary running inside it, as root and as an unprivileged user.

mod common;

use common::{Namespace, TempDir};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Runs `loopwarden facts` inside `ns`, optionally as uid/gid 65534, and parses the snapshot.
fn facts(ns: &Namespace, as_nobody: bool, workdir: &Path) -> Value {
    // A copy any uid can execute, wherever the build tree lives.
    let binary = workdir.join("loopwarden");
    if !binary.exists() {
        std::fs::copy(common::loopwarden(), &binary).expect("copy binary");
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let binary = binary.to_str().expect("utf-8 path");
    let mut argv = vec![];
    if as_nobody {
        argv.extend(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]);
    }
    argv.extend([binary, "facts"]);
    let out = ns.command(&argv).output().expect("run loopwarden facts");
    assert!(
        out.status.success(),
        "facts failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("facts output is JSON")
}

fn inet<'a>(facts: &'a Value, proto: &str, address: &str, port: u64) -> &'a Value {
    facts["inet_sockets"]
        .as_array()
        .expect("inet_sockets")
        .iter()
        .find(|s| s["protocol"] == proto && s["address"] == address && s["port"] == port)
        .unwrap_or_else(|| panic!("no {proto} {address}:{port} in {:#}", facts["inet_sockets"]))
}

fn unix<'a>(facts: &'a Value, kind: &str, name: &str) -> &'a Value {
    facts["unix_sockets"]
        .as_array()
        .expect("unix_sockets")
        .iter()
        .find(|s| s["name"][kind] == name)
        .unwrap_or_else(|| panic!("no unix {kind} {name} in {:#}", facts["unix_sockets"]))
}

fn owners(socket: &Value) -> Vec<u64> {
    socket["owners"]
        .as_array()
        .expect("owners")
        .iter()
        .filter_map(Value::as_u64)
        .collect()
}

/// The listeners of the root-owned helper. `BASE` is replaced by the temp dir.
fn root_helper(base: &Path) -> String {
    format!(
        r#"
import os, socket
base = {base:?}
keep = []
def inet(family, kind, address, v6only=None, device=None, connect=None):
    s = socket.socket(family, kind)
    if v6only is not None:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, v6only)
    if device:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, device.encode())
    s.bind(address)
    if kind == socket.SOCK_STREAM:
        s.listen()
    if connect:
        s.connect(connect)
    keep.append(s)
T, U = socket.SOCK_STREAM, socket.SOCK_DGRAM
inet(socket.AF_INET, T, ("127.0.0.1", 7001))
inet(socket.AF_INET6, T, ("::", 7002), v6only=0)
inet(socket.AF_INET6, T, ("::1", 7003), v6only=1)
inet(socket.AF_INET6, T, ("::", 7004), v6only=1)
inet(socket.AF_INET, T, ("192.0.2.1", 7005), device="lwv0")
inet(socket.AF_INET, U, ("0.0.0.0", 5353))
inet(socket.AF_INET, U, ("127.0.0.1", 5354), connect=("127.0.0.53", 53))
inet(socket.AF_INET6, U, ("::1", 5355), v6only=1)
inet(socket.AF_INET6, U, ("::", 5356), v6only=0)
def unix(kind, name, mode=None):
    s = socket.socket(socket.AF_UNIX, kind)
    s.bind(name)
    if mode is not None:
        os.chmod(name, mode)
    if kind != socket.SOCK_DGRAM:
        s.listen()
    keep.append(s)
os.mkdir(base + "/open", 0o755); os.chmod(base + "/open", 0o755)
os.mkdir(base + "/private", 0o700); os.chmod(base + "/private", 0o700)
unix(socket.SOCK_STREAM, base + "/open/s.sock", 0o666)
unix(socket.SOCK_STREAM, base + "/private/p.sock", 0o600)
unix(socket.SOCK_DGRAM, base + "/open/d.sock", 0o622)
unix(socket.SOCK_SEQPACKET, "\0lw-facts-abstract\0tail")
print("ready", flush=True)
import time; time.sleep(120)
"#,
        base = base.to_str().expect("utf-8 path")
    )
}

const NOBODY_HELPER: &str = r#"
import socket, time
t = socket.socket(); t.bind(("127.0.0.1", 7100)); t.listen()
u = socket.socket(socket.AF_UNIX); u.bind("\0lw-facts-nobody"); u.listen()
print("ready", flush=True)
time.sleep(120)
"#;

#[test]
fn facts_sees_every_kind_of_listener_with_owner_and_permissions() {
    if !common::require_root("facts_sees_every_kind_of_listener_with_owner_and_permissions") {
        return;
    }
    let dir = TempDir::new("facts");
    let ns = common::namespace("facts");
    for argv in [
        &["ip", "link", "add", "lwv0", "type", "veth", "peer", "name", "lwv1"][..],
        &["ip", "addr", "add", "192.0.2.1/24", "dev", "lwv0"],
        &["ip", "link", "set", "lwv0", "up"],
        &["ip", "link", "set", "lwv1", "up"],
        &["sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1"],
    ] {
        ns.exec(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    }
    let root = common::python_in(&ns, None, &root_helper(dir.path()));
    let nobody = common::python_in(&ns, Some(65534), NOBODY_HELPER);
    // A listener in the test's own (root) namespace must not show up.
    let outside = std::net::TcpListener::bind("127.0.0.1:0").expect("bind outside");
    let outside_port = outside.local_addr().expect("addr").port();

    let facts = facts(&ns, false, dir.path());
    let root_pid = u64::from(root.0.id());
    let nobody_pid = u64::from(nobody.0.id());

    assert_eq!(facts["host"]["privileged"], true);
    let inet_owned_by_root = [
        ("tcp", "127.0.0.1", 7001, Value::Null, "listen"),
        ("tcp", "::", 7002, Value::Bool(false), "listen"),
        ("tcp", "::1", 7003, Value::Bool(true), "listen"),
        ("tcp", "::", 7004, Value::Bool(true), "listen"),
        ("tcp", "192.0.2.1", 7005, Value::Null, "listen"),
        ("udp", "0.0.0.0", 5353, Value::Null, "unconnected"),
        ("udp", "127.0.0.1", 5354, Value::Null, "connected"),
        ("udp", "::1", 5355, Value::Bool(true), "unconnected"),
        ("udp", "::", 5356, Value::Bool(false), "unconnected"),
    ];
    for (proto, address, port, v6only, state) in inet_owned_by_root {
        let s = inet(&facts, proto, address, port);
        assert_eq!(s["v6only"], v6only, "{s}");
        assert_eq!(s["state"], state, "{s}");
        assert_eq!(s["uid"], 0, "{s}");
        assert_eq!(owners(s), vec![root_pid], "{s}");
        assert!(s["inode"].as_u64().is_some_and(|i| i > 0), "{s}");
    }
    assert_eq!(
        inet(&facts, "udp", "127.0.0.1", 5354)["peer"],
        serde_json::json!(["127.0.0.53", 53])
    );
    assert_eq!(inet(&facts, "udp", "0.0.0.0", 5353)["peer"], Value::Null);
    assert_eq!(inet(&facts, "tcp", "192.0.2.1", 7005)["bound_device"], "lwv0");
    assert_eq!(inet(&facts, "tcp", "127.0.0.1", 7001)["bound_device"], Value::Null);
    let other_uid = inet(&facts, "tcp", "127.0.0.1", 7100);
    assert_eq!(
        (other_uid["uid"].as_u64(), owners(other_uid)),
        (Some(65534), vec![nobody_pid])
    );
    assert!(
        !facts["inet_sockets"]
            .as_array()
            .expect("array")
            .iter()
            .any(|s| s["port"] == outside_port),
        "a socket of the root namespace leaked into the snapshot"
    );

    let processes = facts["processes"].as_array().expect("processes");
    let process = |pid: u64| {
        processes
            .iter()
            .find(|p| p["pid"] == pid)
            .expect("owner process listed")
    };
    assert_eq!(process(root_pid)["name"], "python3");
    assert_eq!(process(root_pid)["uid"], 0);
    assert_eq!(process(nobody_pid)["uid"], 65534);
    assert_eq!(process(root_pid)["cmdline"][1], "-u");
    assert!(process(root_pid)["exe"].as_str().is_some_and(|e| e.contains("python3")));
    assert_eq!(processes.len(), 2, "only socket owners are listed: {processes:#?}");

    let base = dir.path().to_str().expect("utf-8");
    let open = unix(&facts, "path", &format!("{base}/open/s.sock"));
    assert_eq!(
        (open["kind"].as_str(), open["listening"].as_bool()),
        (Some("stream"), Some(true))
    );
    assert_eq!((open["uid"].as_u64(), owners(open)), (Some(0), vec![root_pid]));
    assert_eq!(open["file"]["mode"], 0o666);
    let parents: Vec<&str> = open["parents"]
        .as_array()
        .expect("parents")
        .iter()
        .filter_map(|p| p["path"].as_str())
        .collect();
    assert_eq!(parents.first(), Some(&"/"));
    assert_eq!(parents.last().copied(), Some(format!("{base}/open").as_str()));
    assert_eq!(
        open["parents"].as_array().expect("parents").last().expect("dir")["mode"],
        0o755
    );

    let private = unix(&facts, "path", &format!("{base}/private/p.sock"));
    assert_eq!(private["file"]["mode"], 0o600);
    let last = private["parents"]
        .as_array()
        .expect("parents")
        .last()
        .expect("dir")
        .clone();
    assert_eq!(
        (last["path"].as_str(), last["mode"].as_u64()),
        (Some(format!("{base}/private").as_str()), Some(0o700))
    );

    let dgram = unix(&facts, "path", &format!("{base}/open/d.sock"));
    assert_eq!(
        (dgram["kind"].as_str(), dgram["listening"].as_bool()),
        (Some("dgram"), Some(false))
    );
    let abstract_socket = unix(&facts, "abstract", "lw-facts-abstract\\0tail");
    assert_eq!(abstract_socket["kind"], "seqpacket");
    assert_eq!(
        (abstract_socket["file"].clone(), owners(abstract_socket)),
        (Value::Null, vec![root_pid])
    );
    let nobody_abstract = unix(&facts, "abstract", "lw-facts-nobody");
    assert_eq!(
        (nobody_abstract["uid"].as_u64(), owners(nobody_abstract)),
        (Some(65534), vec![nobody_pid])
    );

    let interfaces = facts["interfaces"].as_array().expect("interfaces");
    let lo = interfaces.iter().find(|i| i["name"] == "lo").expect("lo");
    assert_eq!((lo["loopback"].as_bool(), lo["up"].as_bool()), (Some(true), Some(true)));
    assert!(lo["addresses"]
        .as_array()
        .expect("addrs")
        .contains(&serde_json::json!({"address": "127.0.0.1", "prefix_len": 8})));
    let veth = interfaces.iter().find(|i| i["name"] == "lwv0").expect("lwv0");
    assert_eq!(
        (veth["kind"].as_str(), veth["up"].as_bool(), veth["loopback"].as_bool()),
        (Some("veth"), Some(true), Some(false))
    );
    assert!(veth["mac"].as_str().is_some_and(|m| m.len() == 17), "{veth}");
    assert!(veth["addresses"]
        .as_array()
        .expect("addrs")
        .contains(&serde_json::json!({"address": "192.0.2.1", "prefix_len": 24})));
    assert_eq!(interfaces.len(), 3, "only lo and the veth pair: {interfaces:#?}");
    assert_eq!(facts["sysctls"]["net.ipv4.conf.all.route_localnet"], "1");
    assert_eq!(facts["sysctls"]["net.ipv4.conf.lwv0.route_localnet"], "0");
    assert!(
        facts["host"]["limits"].as_array().expect("limits").is_empty(),
        "{:#}",
        facts["host"]["limits"]
    );
    drop(outside);
}

#[test]
fn unprivileged_facts_succeed_and_say_what_owners_they_could_not_see() {
    if !common::require_root("unprivileged_facts_succeed_and_say_what_owners_they_could_not_see") {
        return;
    }
    let dir = TempDir::new("facts-unpriv");
    let ns = common::namespace("factsunpriv");
    let root = common::python_in(
        &ns,
        None,
        "import socket, time\ns = socket.socket(); s.bind(('127.0.0.1', 7001)); s.listen()\nprint('ready', flush=True)\ntime.sleep(120)",
    );
    let facts = facts(&ns, true, dir.path());
    assert_eq!(facts["host"]["privileged"], false);
    let listener = inet(&facts, "tcp", "127.0.0.1", 7001);
    assert_eq!(listener["uid"], 0, "sock_diag works unprivileged");
    assert!(
        owners(listener).is_empty(),
        "root's descriptors are not readable by nobody"
    );
    assert!(!facts["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .any(|p| p["pid"] == root.0.id()));
    let limits = facts["host"]["limits"].as_array().expect("limits");
    let owner_limit = limits.iter().find(|l| l["scope"] == "owners").expect("an owners limit");
    assert!(
        owner_limit["detail"]
            .as_str()
            .is_some_and(|d| d.contains("could not be read")),
        "{owner_limit}"
    );
}

/// `facts` reads the descriptors of the collected namespace's processes only, except when a
/// socket is left without an owner: a process that created its socket in the namespace and then
/// moved to another one (setns) still holds it, and is still named as its owner.
#[test]
fn a_socket_held_from_another_namespace_keeps_its_owner() {
    if !common::require_root("a_socket_held_from_another_namespace_keeps_its_owner") {
        return;
    }
    let dir = TempDir::new("facts-moved");
    let ns = common::namespace("factsmoved");
    let elsewhere = common::namespace("factselse");
    let mover = format!(
        r#"
import ctypes, os, socket, time
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000
home = os.open("/proc/self/ns/net", os.O_RDONLY)
target = os.open("/run/netns/{name}", os.O_RDONLY)
assert libc.setns(target, CLONE_NEWNET) == 0, ctypes.get_errno()
s = socket.socket(); s.bind(("127.0.0.1", 7200)); s.listen()
assert libc.setns(home, CLONE_NEWNET) == 0, ctypes.get_errno()
print("ready", flush=True)
time.sleep(120)
"#,
        name = ns.name()
    );
    let moved = common::python_in(&elsewhere, None, &mover);
    // A process that only lives in the other namespace: never an owner here.
    let stranger = common::python_in(
        &elsewhere,
        None,
        "import socket, time\ns = socket.socket(); s.bind(('127.0.0.1', 7201)); s.listen()\nprint('ready', flush=True)\ntime.sleep(120)",
    );
    let facts = facts(&ns, false, dir.path());
    let listener = inet(&facts, "tcp", "127.0.0.1", 7200);
    assert_eq!(owners(listener), vec![u64::from(moved.0.id())], "{listener}");
    let pids: Vec<u64> = facts["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .filter_map(|p| p["pid"].as_u64())
        .collect();
    assert_eq!(pids, vec![u64::from(moved.0.id())]);
    assert!(!pids.contains(&u64::from(stranger.0.id())));
}
