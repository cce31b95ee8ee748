//! `audit --all-netns` and pasta (Debian's passt package), the user-mode network of rootless
//! Podman, in a sandboxed host (see `common::sandbox`): pasta runs in the sandbox's own namespace
//! and serves an `ip netns` namespace whose service is bound to its loopback only. pasta splices
//! connections that reach its port through the host's loopback to that loopback — the service
//! really answers a client of the host, and sees 127.0.0.1 — and the whole-host audit links the
//! two namespaces through pasta's namespace descriptor and reports the service as published.

mod common;

use common::sandbox;
use common::*;
use std::time::Duration;

const SCRIPT: &str = r#"
# pasta's side (the sandbox's namespace) needs an outward interface and a default route.
ip link add eth0 type veth peer name peer0
ip addr add 192.0.2.1/24 dev eth0
ip link set eth0 up; ip link set peer0 up
ip route add default via 192.0.2.254 dev eth0
ip netns add lw-c
ip -n lw-c link set lo up
ip netns exec lw-c python3 -u -c '
import socket, threading, time
def serve(addr, port):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((addr, port)); s.listen()
    while True:
        c, peer = s.accept(); c.sendall(("peer %s\n" % peer[0]).encode()); c.close()
threading.Thread(target=serve, args=("127.0.0.1", 18080), daemon=True).start()
print("ready", flush=True); time.sleep(600)' > "$OUT/c.out" &
for _ in $(seq 100); do grep -q ready "$OUT/c.out" && break; sleep 0.1; done
pasta --netns /run/netns/lw-c -t 28080:18080 -u none -T none -U none -f -q --runas 0 --config-net > "$OUT/pasta.log" 2>&1 &
echo $! > "$OUT/pasta.pid"
for _ in $(seq 50); do
    python3 -c 'import socket; s = socket.create_connection(("127.0.0.1", 28080), timeout=1); print(s.recv(64).decode().strip())' > "$OUT/truth.txt" 2>/dev/null && break
    sleep 0.2
done
"$LOOPWARDEN" facts --all-netns > "$OUT/facts.json"
"$LOOPWARDEN" audit --all-netns --json > "$OUT/audit.json" || test $? -eq 1
"#;

#[test]
fn a_loopback_only_service_pasta_publishes_on_the_host_is_found() {
    const TEST: &str = "a_loopback_only_service_pasta_publishes_on_the_host_is_found";
    if !require_root(TEST) || !require_tool(TEST, "unshare") || !require_tool(TEST, "pasta") {
        return;
    }
    let dir = TempDir::new("netnspasta");
    sandbox::run_ok(SCRIPT, &dir, Duration::from_secs(120));
    // Truth: a client of the host reaches the namespace's loopback-only service through pasta,
    // and the service sees a loopback peer.
    let truth = std::fs::read_to_string(dir.path().join("truth.txt")).unwrap_or_default();
    assert_eq!(
        truth.trim(),
        "peer 127.0.0.1",
        "pasta log: {}",
        std::fs::read_to_string(dir.path().join("pasta.log")).unwrap_or_default()
    );

    let pasta: u64 = std::fs::read_to_string(dir.path().join("pasta.pid"))
        .expect("pid")
        .trim()
        .parse()
        .expect("pid");
    let facts = sandbox::json(&dir, "facts.json");
    let c = facts["namespaces"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["namespace"]["ip_netns"][0] == "lw-c"))
        .expect("lw-c");
    let host = facts["namespaces"]
        .as_array()
        .and_then(|n| n.iter().find(|n| n["namespace"]["host"] == true))
        .expect("host");
    let links = facts["links"].as_array().expect("links");
    assert!(
        links.iter().any(|l| l["pid"] == pasta
            && l["from"] == host["namespace"]["inode"]
            && l["to"] == c["namespace"]["inode"]),
        "{links:?}"
    );

    let audit = sandbox::json(&dir, "audit.json");
    let published: Vec<&serde_json::Value> = audit["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == "netns.published-loopback")
        .collect();
    assert_eq!(published.len(), 1, "{published:#?}");
    let f = published[0];
    assert_eq!(f["netns"], c["namespace"]["id"]);
    assert_eq!(f["service"], "tcp:127.0.0.1:18080");
    assert_eq!(f["attacker"], "local-user");
    assert!(
        f["title"].as_str().unwrap_or_default().contains("port 28080 by pasta"),
        "{f}"
    );
}
