//! `harden --all-netns` end to end, in a sandboxed host (see `common::sandbox`): of the
//! sandbox's own namespace (only `lo`), an `ip netns` namespace with a veth, `route_localnet=1`
//! and a loopback UDP service, and one with only `lo`, exactly the second needs the table. Applied
//! there alone (its own table and sysctls, read back with `nft` and `sysctl` inside it), the
//! whole-host audit no longer reports it; `--check` finds it intact; `--remove` restores it.

mod common;

use common::sandbox;
use common::*;
use std::time::Duration;

const SCRIPT: &str = r#"
ip netns add lw-a
ip -n lw-a link set lo up
ip -n lw-a link add eth0 type veth peer name peer0
ip -n lw-a addr add 192.0.2.1/24 dev eth0
ip -n lw-a link set eth0 up
ip -n lw-a link set peer0 up
ip netns exec lw-a sysctl -qw net.ipv4.conf.eth0.route_localnet=1
ip netns add lw-b
ip -n lw-b link set lo up
ip netns exec lw-a python3 -u -c '
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 8125))
print("ready", flush=True); time.sleep(600)' > "$OUT/a.out" &
for _ in $(seq 100); do grep -q ready "$OUT/a.out" && break; sleep 0.1; done
table() { ("$@" nft list table inet loopwarden 2>/dev/null || echo absent); }
"$LOOPWARDEN" harden --all-netns > "$OUT/plan.txt"
"$LOOPWARDEN" harden --all-netns --json > "$OUT/plan.json"
"$LOOPWARDEN" harden --all-netns --apply > "$OUT/apply.txt"
table ip netns exec lw-a > "$OUT/a-table.txt"
table ip netns exec lw-b > "$OUT/b-table.txt"
table > "$OUT/host-table.txt"
ip netns exec lw-a sysctl -n net.ipv4.conf.eth0.route_localnet > "$OUT/a-route-localnet"
"$LOOPWARDEN" audit --all-netns --json > "$OUT/after.json" || test $? -eq 1
rc=0; "$LOOPWARDEN" harden --all-netns --check > "$OUT/check.txt" || rc=$?; echo "$rc" > "$OUT/check.rc"
"$LOOPWARDEN" harden --all-netns --apply > "$OUT/apply-again.txt"
"$LOOPWARDEN" harden --all-netns --remove > "$OUT/remove.txt"
table ip netns exec lw-a > "$OUT/a-table-removed.txt"
ip netns exec lw-a sysctl -n net.ipv4.conf.eth0.route_localnet > "$OUT/a-route-localnet-removed"
"#;

fn read(dir: &TempDir, name: &str) -> String {
    std::fs::read_to_string(dir.path().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_namespace_that_needs_the_table_gets_its_own_and_no_other() {
    const TEST: &str = "every_namespace_that_needs_the_table_gets_its_own_and_no_other";
    if !require_root(TEST) || !require_tool(TEST, "unshare") || !require_tool(TEST, "nft") {
        return;
    }
    let dir = TempDir::new("netnshd");
    sandbox::run_ok(SCRIPT, &dir, Duration::from_secs(120));
    let plan = read(&dir, "plan.txt");
    assert!(plan.contains("══ ip netns lw-a"), "{plan}");
    assert!(
        !plan.contains("lw-b") && !plan.contains("══ host"),
        "only lw-a needs it: {plan}"
    );
    assert!(plan.contains("route_localnet 1 -> 0"), "{plan}");
    let json = sandbox::json(&dir, "plan.json");
    let parts = json["namespaces"].as_array().expect("namespaces");
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0]["namespace"]["ip_netns"][0], "lw-a");
    assert_eq!(parts[0]["result"]["schema"], "loopwarden.harden/v1");
    assert_eq!(parts[0]["result"]["verified"], true);

    assert!(read(&dir, "apply.txt").contains("table inet loopwarden created"));
    assert!(
        read(&dir, "apply.txt").contains("applied in 1 of 3 network namespace(s); 2 needed nothing"),
        "{}",
        read(&dir, "apply.txt")
    );
    assert!(read(&dir, "a-table.txt").contains("table inet loopwarden"));
    assert_eq!(read(&dir, "b-table.txt").trim(), "absent");
    assert_eq!(read(&dir, "host-table.txt").trim(), "absent");
    assert_eq!(read(&dir, "a-route-localnet").trim(), "0");

    let after = sandbox::json(&dir, "after.json");
    let a = after["namespaces"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["namespace"]["ip_netns"][0] == "lw-a"))
        .expect("lw-a audited");
    for f in findings(&a["report"], "net.no-loopback-antispoof", None) {
        assert_eq!(f["status"], "blocked", "{f}");
    }
    let unprotected = after["findings"]
        .as_array()
        .map(|f| f.iter().filter(|f| f["check"] == "netns.unprotected-loopback").count())
        .unwrap_or(0);
    assert_eq!(unprotected, 0, "{}", after["findings"]);

    assert_eq!(read(&dir, "check.rc").trim(), "0", "{}", read(&dir, "check.txt"));
    assert!(read(&dir, "check.txt").contains("ip netns lw-a"));
    assert!(read(&dir, "apply-again.txt").contains("already as planned: not touched"));
    assert_eq!(read(&dir, "a-table-removed.txt").trim(), "absent");
    assert_eq!(
        read(&dir, "a-route-localnet-removed").trim(),
        "1",
        "--remove restores the sysctl"
    );
}

/// A namespace held by a process any user can start and name: its name reaches root's terminal
/// only escaped, on the line it belongs to (review #12: `harden --all-netns` printed it raw — a
/// window title set, the screen cleared, a line forged).
const HOSTILE: &str = r#"
unshare --net sh -c 'ip link set lo up && ip link add eth0 type veth peer name peer0 && ip link set eth0 up \
  && ip link set peer0 up && sysctl -qw net.ipv4.conf.eth0.route_localnet=1 && exec python3 -u -c "
import ctypes, time
ctypes.CDLL(None).prctl(15, b\"\x1b]0;pwn\x07\x1b[2J\nCRITICAL x\", 0, 0, 0)
print(\"ready\", flush=True); time.sleep(600)"' > "$OUT/h.out" &
for _ in $(seq 100); do grep -q ready "$OUT/h.out" && break; sleep 0.1; done
"$LOOPWARDEN" harden --all-netns > "$OUT/plan.txt"
"$LOOPWARDEN" harden --all-netns --apply > "$OUT/apply.txt"
"$LOOPWARDEN" harden --all-netns --check > "$OUT/check.txt"
"$LOOPWARDEN" harden --all-netns --remove > "$OUT/remove.txt"
"#;

#[test]
fn namespace_names_reach_the_terminal_escaped() {
    const TEST: &str = "namespace_names_reach_the_terminal_escaped";
    if !require_root(TEST) || !require_tool(TEST, "unshare") || !require_tool(TEST, "nft") {
        return;
    }
    let dir = TempDir::new("netnshostile");
    sandbox::run_ok(HOSTILE, &dir, Duration::from_secs(120));
    let plan = read(&dir, "plan.txt");
    assert!(
        plan.contains("══ \\x1b]0;pwn\\x07\\x1b[2J\\nCR"),
        "the name, escaped: {plan}"
    );
    for name in ["plan.txt", "apply.txt", "check.txt", "remove.txt"] {
        let text = read(&dir, name);
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{name}: {text:?}");
        assert!(
            !text.lines().any(|l| l.starts_with("CR")),
            "{name}: a forged line: {text}"
        );
    }
}
