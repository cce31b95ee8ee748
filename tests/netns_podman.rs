//! `audit --all-netns` against real Podman containers (Debian's podman 4, rootful, runc, its
//! storage under the test's directory; the image made with `podman import` from
//! busybox-static), in a sandboxed host (see `common::sandbox`): a container with a network
//! namespace of its own is named from conmon and c/storage (name, id, image) and its
//! loopback-only service is judged inside it; a `--network host` container is named as sharing
//! the host's namespace, really reaches an abstract socket there, and that is the
//! CVE-2020-15257 finding.

mod common;

use common::sandbox;
use common::*;
use serde_json::Value;
use std::time::Duration;

const SCRIPT: &str = r#"
mkdir -p "$OUT/rootfs/bin" "$OUT/rootfs/usr" "$OUT/rootfs/etc"
cp /bin/busybox "$OUT/rootfs/bin/busybox"
ln -s usr/lib "$OUT/rootfs/lib"; ln -s usr/lib64 "$OUT/rootfs/lib64"
echo 'root:x:0:0:root:/:/bin/sh' > "$OUT/rootfs/etc/passwd"
tar -C "$OUT/rootfs" -cf "$OUT/rootfs.tar" .
p() { podman --root "$OUT/storage" --runroot "$OUT/run" --cgroup-manager cgroupfs --runtime runc \
    --events-backend file --storage-driver overlay --tmpdir "$OUT/tmp" "$@"; }
p import "$OUT/rootfs.tar" lw-busybox:1 > /dev/null 2>&1
p run -d --name lw-pod --network none -v /usr:/usr:ro lw-busybox:1 /usr/bin/python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 8082)); s.listen(); time.sleep(600)' > /dev/null
p run -d --name lw-podhost --network host -v /usr:/usr:ro lw-busybox:1 /bin/busybox sleep 600 > /dev/null
python3 -u -c '
import socket, time
s = socket.socket(socket.AF_UNIX); s.bind("\0lw-podman-shim"); s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept(); c.sendall(b"shim"); c.close()' > "$OUT/holder.out" &
for _ in $(seq 100); do grep -q ready "$OUT/holder.out" && break; sleep 0.1; done
for _ in $(seq 100); do p exec lw-pod /usr/bin/python3 -c 'import socket; socket.create_connection(("127.0.0.1", 8082))' 2>/dev/null && break; sleep 0.1; done
p exec lw-podhost /usr/bin/python3 -c '
import socket; s = socket.socket(socket.AF_UNIX); s.connect("\0lw-podman-shim"); print(s.recv(8).decode())' > "$OUT/truth.txt"
"$LOOPWARDEN" audit --all-netns --json > "$OUT/audit.json" || test $? -eq 1
p rm -f -t 0 lw-pod lw-podhost > /dev/null 2>&1 || true
"#;

fn with_container<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["namespaces"]
        .as_array()
        .and_then(|a| {
            a.iter().find(|n| {
                n["namespace"]["containers"]
                    .as_array()
                    .is_some_and(|c| c.iter().any(|c| c["name"] == name))
            })
        })
        .unwrap_or_else(|| panic!("no namespace names container {name}: {}", report["namespaces"]))
}

#[test]
fn podman_containers_are_named_and_a_host_network_one_reaches_abstract_sockets() {
    const TEST: &str = "podman_containers_are_named_and_a_host_network_one_reaches_abstract_sockets";
    if !require_root(TEST) || !require_tool(TEST, "podman") || !require_tool(TEST, "busybox") {
        return;
    }
    let dir = TempDir::new("netnspod");
    sandbox::run_ok(SCRIPT, &dir, Duration::from_secs(180));
    let truth = std::fs::read_to_string(dir.path().join("truth.txt")).unwrap_or_default();
    assert_eq!(
        truth.trim(),
        "shim",
        "the host-network container reaches the abstract socket"
    );
    let report = sandbox::json(&dir, "audit.json");

    let own = with_container(&report, "lw-pod");
    let container = &own["namespace"]["containers"][0];
    assert_eq!(container["runtime"], "podman");
    assert_eq!(container["image"], "localhost/lw-busybox:1");
    assert_eq!(container["shares_namespace"], false);
    assert_eq!(container["id"].as_str().map(str::len), Some(64));
    assert!(own["namespace"]["host"] == false);
    let services = own["report"]["services"].as_array().expect("services");
    let service = services
        .iter()
        .find(|s| s["id"] == "tcp:127.0.0.1:8082")
        .unwrap_or_else(|| panic!("the container's loopback service: {services:?}"));
    assert_eq!(service["process"]["name"], "python3");

    let host = with_container(&report, "lw-podhost");
    assert_eq!(
        host["namespace"]["host"], true,
        "--network host shares the host's namespace"
    );
    let sharer = host["namespace"]["containers"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "lw-podhost"))
        .expect("lw-podhost");
    assert_eq!(sharer["shares_namespace"], true);
    let shared: Vec<&Value> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == "netns.shared-abstract-unix" && f["service"] == "unix:@lw-podman-shim")
        .collect();
    assert_eq!(shared.len(), 1, "{}", report["findings"]);
    assert_eq!(shared[0]["netns"], host["namespace"]["id"]);
    assert!(shared[0]["title"].as_str().unwrap_or_default().contains("lw-podhost"));
}
