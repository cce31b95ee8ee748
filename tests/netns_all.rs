//! `facts|audit --all-netns` and `--netns` end to end, in a sandboxed host (see
//! `common::sandbox`) holding: an `ip netns` namespace with a veth, `route_localnet=1` and a
//! loopback service whose process sees a hosts file of its own; a namespace made with
//! `unshare --net` that only a process holds (not in `/run/netns`); and, in the sandbox's own
//! namespace, a process in a mount namespace of its own whose Unix socket path does not exist in
//! the host's file system.

mod common;

use common::sandbox;
use common::*;
use serde_json::Value;
use std::time::Duration;

const SCRIPT: &str = r#"
ready() { for _ in $(seq 100); do grep -q ready "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "not ready: $1" >&2; exit 1; }
ip netns add lw-a
ip -n lw-a link set lo up
ip -n lw-a link add eth0 type veth peer name peer0
ip -n lw-a addr add 192.0.2.1/24 dev eth0
ip -n lw-a link set eth0 up
ip -n lw-a link set peer0 up
ip netns exec lw-a sysctl -qw net.ipv4.conf.eth0.route_localnet=1
printf '127.0.0.1 localhost\n::1 localhost\n192.0.2.9 lw-a-marker\n' > "$OUT/hosts-a"
chmod 644 "$OUT/hosts-a"
# A service in lw-a whose process sees its own /etc/hosts (as a container does).
# It is an HTTP server that answers any Host: a web page rebinding a name to 127.0.0.1 reads it.
ip netns exec lw-a sh -c 'cd "$OUT" && mount --bind "$OUT/hosts-a" /etc/hosts && exec python3 -u -c "
import http.server
server = http.server.HTTPServer((\"127.0.0.1\", 8080), http.server.SimpleHTTPRequestHandler)
print(\"ready\", flush=True); server.serve_forever()"' > "$OUT/a.out" 2>/dev/null &
# A namespace only a process holds.
unshare --net sh -c 'ip link set lo up && exec python3 -u -c "
import socket, time
s = socket.socket(); s.bind((\"127.0.0.1\", 9090)); s.listen()
print(\"ready\", flush=True); time.sleep(600)"' > "$OUT/b.out" &
echo $! > "$OUT/b.pid"
# A process in a mount namespace of its own, with a socket where the host has no such file.
mkdir "$OUT/private"
unshare --mount --propagation private sh -c 'mount -t tmpfs -o mode=755 tmpfs "$OUT/private" && mkdir -m 755 "$OUT/private/lwpriv" && exec python3 -u -c "
import os, socket, sys, time
path = sys.argv[1] + \"/private/lwpriv/app.sock\"
s = socket.socket(socket.AF_UNIX); s.bind(path); os.chmod(path, 0o666); s.listen()
print(\"ready\", flush=True); time.sleep(600)" "$OUT"' > "$OUT/c.out" &
echo $! > "$OUT/c.pid"
ready "$OUT/a.out"; ready "$OUT/b.out"; ready "$OUT/c.out"
test ! -e "$OUT/private/lwpriv/app.sock" && echo absent > "$OUT/c-path-on-host"
"$LOOPWARDEN" facts --all-netns > "$OUT/facts.json"
"$LOOPWARDEN" audit --all-netns --json > "$OUT/audit.json" || test $? -eq 1
"$LOOPWARDEN" audit --all-netns > "$OUT/audit.txt" || test $? -eq 1
"$LOOPWARDEN" audit --all-netns --format html --out "$OUT/audit.html" || test $? -eq 1
"$LOOPWARDEN" audit --netns lw-a --json > "$OUT/a.json" || test $? -eq 1
"$LOOPWARDEN" audit --netns "$(cat "$OUT/b.pid")" --json > "$OUT/b.json" || test $? -eq 1
"$LOOPWARDEN" facts --netns "/proc/$(cat "$OUT/b.pid")/ns/net" > "$OUT/b-facts.json"
"$LOOPWARDEN" facts > "$OUT/own.json"
"$LOOPWARDEN" audit --all-netns --facts "$OUT/facts.json" --json > "$OUT/offline.json" || test $? -eq 1
"$LOOPWARDEN" audit --all-netns --facts - --json < "$OUT/facts.json" > "$OUT/offline-stdin.json" || test $? -eq 1
"$LOOPWARDEN" audit --netns lw-a --probe --json > "$OUT/a-probe.json" || test $? -eq 1
"$LOOPWARDEN" audit --all-netns --probe --prove --json > "$OUT/active.json" || test $? -eq 1
"$LOOPWARDEN" prove --all-netns --json > "$OUT/prove.json" || test $? -eq 1
"$LOOPWARDEN" audit --all-netns --format prometheus --out "$OUT/audit.prom" || test $? -eq 1
"$LOOPWARDEN" prove --all-netns --format prometheus --out "$OUT/prove.prom" || test $? -eq 1
promtool check metrics < "$OUT/audit.prom" > "$OUT/audit.promtool" 2>&1 || echo failed >> "$OUT/audit.promtool"
promtool check metrics < "$OUT/prove.prom" > "$OUT/prove.promtool" 2>&1 || echo failed >> "$OUT/prove.promtool"
setpriv --reuid=65534 --regid=65534 --clear-groups "$LOOPWARDEN" audit --all-netns --json > "$OUT/unprivileged.json" || test $? -eq 1
"$LOOPWARDEN" audit --netns no-such-namespace > /dev/null 2> "$OUT/missing.err" || echo $? > "$OUT/missing.rc"
# Namespaces named like pids: 1 is also the sandbox's init, 4242 is no process.
for n in 1 4242; do
  ip netns add "$n"
  ip -n "$n" link add eth0 type veth peer name peer0
  ip -n "$n" addr add 192.0.2.1/24 dev eth0
  ip -n "$n" link set eth0 up
  ip -n "$n" link set peer0 up
  ip netns exec "$n" sysctl -qw net.ipv4.conf.eth0.route_localnet=1
done
"$LOOPWARDEN" audit --all-netns > "$OUT/numeric.txt" || test $? -eq 1
"$LOOPWARDEN" harden --netns 1 > /dev/null 2> "$OUT/ambiguous.err" || echo $? > "$OUT/ambiguous.rc"
"$LOOPWARDEN" audit --netns 4242 --json > "$OUT/n4242.json" || test $? -eq 1
"$LOOPWARDEN" harden --netns /run/netns/1 --json > "$OUT/n1-plan.json"
"#;

fn pid(dir: &TempDir, name: &str) -> u64 {
    let text = std::fs::read_to_string(dir.path().join(name)).expect("pid file");
    text.trim().parse().expect("a pid")
}

/// The namespace entries of a `facts --all-netns` or `audit --all-netns` document.
fn namespaces(doc: &Value) -> &Vec<Value> {
    doc["namespaces"].as_array().expect("namespaces")
}

fn by_ip_netns<'a>(doc: &'a Value, name: &str) -> &'a Value {
    namespaces(doc)
        .iter()
        .find(|n| {
            n["namespace"]["ip_netns"]
                .as_array()
                .is_some_and(|a| a.iter().any(|v| v == name))
        })
        .unwrap_or_else(|| panic!("no namespace named {name}"))
}

fn by_pid(doc: &Value, pid: u64) -> &Value {
    namespaces(doc)
        .iter()
        .find(|n| {
            n["namespace"]["processes"]
                .as_array()
                .is_some_and(|a| a.iter().any(|p| p["pid"] == pid))
        })
        .unwrap_or_else(|| panic!("no namespace holds pid {pid}"))
}

fn inet_ports(facts: &Value) -> Vec<u64> {
    facts["inet_sockets"]
        .as_array()
        .map(|a| a.iter().filter_map(|s| s["port"].as_u64()).collect())
        .unwrap_or_default()
}

#[test]
fn every_namespace_is_found_named_and_collected_from_inside() {
    const TEST: &str = "every_namespace_is_found_named_and_collected_from_inside";
    if !require_root(TEST) || !require_tool(TEST, "unshare") || !require_tool(TEST, "python3") {
        return;
    }
    let dir = TempDir::new("netnsall");
    sandbox::run_ok(SCRIPT, &dir, Duration::from_secs(120));
    let facts = sandbox::json(&dir, "facts.json");
    assert_eq!(facts["schema"], "loopwarden.host-facts/v1");
    // The sandbox's own namespace (the "host" here: it holds its pid 1), lw-a, and the process-held one.
    assert_eq!(
        namespaces(&facts).len(),
        3,
        "{}",
        serde_json::to_string_pretty(&facts["limits"]).unwrap()
    );
    let host: Vec<&Value> = namespaces(&facts)
        .iter()
        .filter(|n| n["namespace"]["host"] == true)
        .collect();
    assert_eq!(host.len(), 1, "exactly one host namespace");

    // The ip netns namespace: its name, its loopback service with its owner, its own sysctls
    // (read by a thread inside it), and the hosts file its process sees.
    let a = by_ip_netns(&facts, "lw-a");
    assert!(inet_ports(&a["facts"]).contains(&8080));
    let sysctls = &a["facts"]["sysctls"];
    assert_eq!(sysctls["net.ipv4.conf.eth0.route_localnet"], "1");
    assert_eq!(host[0]["facts"]["sysctls"]["net.ipv4.conf.all.route_localnet"], "0");
    let hosts = a["facts"]["names"]["hosts_file"].as_str().unwrap_or_default();
    assert!(
        hosts.contains("lw-a-marker"),
        "lw-a's hosts file is its process's: {hosts:?}"
    );
    assert!(a["namespace"]["etc_from"].as_str().unwrap_or_default().contains("pid"));
    let owner = a["facts"]["processes"].as_array().expect("processes");
    assert!(
        owner.iter().any(|p| p["name"] == "python3"),
        "the service's owner is known: {owner:?}"
    );

    // The namespace only a process holds: found through /proc, not /run/netns.
    let b_pid = pid(&dir, "b.pid");
    let b = by_pid(&facts, b_pid);
    assert!(b["namespace"]["ip_netns"].as_array().is_some_and(|a| a.is_empty()));
    assert!(inet_ports(&b["facts"]).contains(&9090));
    assert!(b["namespace"]["host"] == false);

    // The socket of the process with its own mount namespace: judged in its file system.
    assert!(
        dir.path().join("c-path-on-host").exists(),
        "the socket path must not exist on the host"
    );
    let path = format!("{}/private/lwpriv/app.sock", dir.path().display());
    let socket = host[0]["facts"]["unix_sockets"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"]["path"] == path.as_str()))
        .unwrap_or_else(|| panic!("socket {path} not collected"));
    assert_eq!(socket["file"]["mode"], 0o666, "{socket}");
    assert!(socket["parents"].as_array().is_some_and(|p| p
        .iter()
        .any(|d| d["path"].as_str() == Some(&format!("{}/private/lwpriv", dir.path().display())))));
    // The same in a plain one-namespace snapshot.
    let own = sandbox::json(&dir, "own.json");
    let own_socket = own["unix_sockets"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"]["path"] == path.as_str()))
        .expect("the socket in `facts`");
    assert_eq!(own_socket["file"]["mode"], 0o666);

    // The whole-host report: one v1 report per namespace, and the host-level finding for lw-a.
    let audit = sandbox::json(&dir, "audit.json");
    assert_eq!(audit["schema"], "loopwarden.host-report/v1");
    for n in namespaces(&audit) {
        assert_eq!(n["report"]["schema"], "loopwarden.report/v1");
    }
    let a_id = by_ip_netns(&audit, "lw-a")["namespace"]["id"].clone();
    let unprotected: Vec<&Value> = audit["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["check"] == "netns.unprotected-loopback")
        .collect();
    assert_eq!(unprotected.len(), 1, "{unprotected:#?}");
    assert_eq!(unprotected[0]["netns"], a_id);
    assert_eq!(unprotected[0]["status"], "open");
    let host_report = &namespaces(&audit)
        .iter()
        .find(|n| n["namespace"]["host"] == true)
        .expect("host")["report"];
    let world = findings(host_report, "local.unix-world", Some(&format!("unix:{path}")));
    assert_eq!(
        world.len(),
        1,
        "the 0666 socket in a private tmpfs is world-connectable there"
    );
    // The same report as one metrics file: each namespace's series under its own netns label,
    // the host-level finding counted in lw-a's, every family declared once (promtool agrees).
    let metrics = std::fs::read_to_string(dir.path().join("audit.prom")).expect("metrics");
    for n in namespaces(&audit) {
        let id = n["namespace"]["id"].as_str().expect("id");
        assert!(
            metrics.contains(&format!("loopwarden_privileged{{netns=\"{id}\"}}")),
            "no series for {id}:\n{metrics}"
        );
    }
    assert!(
        metrics.contains(&format!(
            "loopwarden_findings{{netns=\"{}\",check=\"netns.unprotected-loopback\",status=\"open\"}} 1\n",
            a_id.as_str().expect("id")
        )),
        "{metrics}"
    );
    for file in ["audit.promtool", "prove.promtool"] {
        let said = std::fs::read_to_string(dir.path().join(file)).expect("promtool output");
        assert!(!said.contains("failed") && !said.contains("error"), "{file}: {said}");
    }
    let proved = std::fs::read_to_string(dir.path().join("prove.prom")).expect("prove metrics");
    assert!(
        proved.contains(&format!(
            "loopwarden_prove_attacks{{netns=\"{}\",outcome=\"dropped\"}}",
            a_id.as_str().expect("id")
        )),
        "the lab of lw-a counts its attacks:\n{proved}"
    );
    // The same report as one HTML page: the whole-host findings, then a section per namespace.
    let page = std::fs::read_to_string(dir.path().join("audit.html")).expect("html report");
    assert!(page.contains("every network namespace"), "{page}");
    assert!(page.contains("netns.unprotected-loopback"), "the whole-host finding");
    assert!(page.contains("ip netns lw-a"), "a section per namespace");
    assert_eq!(page.matches("<script").count(), 1, "only the page's own script");
    let text = std::fs::read_to_string(dir.path().join("audit.txt")).expect("human report");
    assert!(text.contains("ip netns lw-a"), "{text}");
    assert!(
        text.contains("python3 (pid"),
        "the process-held namespace is named for its process: {text}"
    );

    // --netns by name, by pid and by path: single-namespace (v1) documents of that namespace.
    let a_report = sandbox::json(&dir, "a.json");
    assert_eq!(a_report["schema"], "loopwarden.report/v1");
    assert!(a_report["host"]["netns"]
        .as_str()
        .unwrap_or_default()
        .contains("ip netns lw-a"));
    assert_eq!(findings(&a_report, "net.route-localnet", None).len(), 1);
    let b_report = sandbox::json(&dir, "b.json");
    assert!(b_report["services"]
        .as_array()
        .is_some_and(|s| s.iter().any(|s| s["id"] == "tcp:127.0.0.1:9090")));
    let b_facts = sandbox::json(&dir, "b-facts.json");
    assert!(inet_ports(&b_facts).contains(&9090));

    // The snapshot audited offline gives the same whole-host findings.
    let offline = sandbox::json(&dir, "offline.json");
    assert_eq!(offline["findings"], audit["findings"]);
    assert_eq!(sandbox::json(&dir, "offline-stdin.json")["findings"], audit["findings"]);

    // Probes run inside the namespace: 127.0.0.1:8080 exists only in lw-a.
    let probed = sandbox::json(&dir, "a-probe.json");
    let rebinding = findings(&probed, "web.dns-rebinding", Some("tcp:127.0.0.1:8080"));
    assert_eq!(rebinding.len(), 1, "{}", probed["findings"]);
    assert_eq!(
        (&rebinding[0]["status"], &rebinding[0]["confidence"]),
        (&Value::from("open"), &Value::from("probed"))
    );
    // The same in the whole-host run, with each namespace proven in a lab of its own.
    let active = sandbox::json(&dir, "active.json");
    let a_active = &by_ip_netns(&active, "lw-a")["report"];
    assert_eq!(
        findings(a_active, "web.dns-rebinding", Some("tcp:127.0.0.1:8080")).len(),
        1
    );
    let route = findings(a_active, "net.route-localnet", None);
    assert_eq!(
        (&route[0]["status"], &route[0]["confidence"]),
        (&Value::from("open"), &Value::from("proven")),
        "{}",
        route[0]
    );
    let b_active = &by_pid(&active, b_pid)["report"];
    assert!(
        b_active["host"]["limits"].as_array().is_some_and(|l| l
            .iter()
            .any(|l| l.as_str().unwrap_or_default().contains("no interface beyond lo"))),
        "a namespace with only lo gets no lab: {}",
        b_active["host"]["limits"]
    );
    let proofs = sandbox::json(&dir, "prove.json");
    assert_eq!(proofs["schema"], "loopwarden.host-proof/v1");
    let a_proof = by_ip_netns(&proofs, "lw-a");
    let delivered = a_proof["proof"]["results"]
        .as_array()
        .expect("lab results")
        .iter()
        .any(|r| {
            r["attack"] == "ipv4.dst-loopback" && r["outcome"].as_str().is_some_and(|o| o.starts_with("delivered"))
        });
    assert!(
        delivered,
        "route_localnet=1 in lw-a lets the lab's neighbour reach 127.0.0.1:8080: {}",
        a_proof["proof"]["results"]
    );
    assert!(by_pid(&proofs, b_pid)["proof"].is_null());

    // Unprivileged: its own namespace (the host, as far as it can tell), and what it could not
    // enter or read named in the limits — never a silent partial view.
    let unprivileged = sandbox::json(&dir, "unprivileged.json");
    let seen = namespaces(&unprivileged);
    assert_eq!(seen.len(), 1, "{}", unprivileged["host"]);
    assert_eq!(seen[0]["namespace"]["host"], true);
    let limits = unprivileged["host"]["limits"].to_string();
    assert!(
        limits.contains("permission denied") && limits.contains("lw-a"),
        "{limits}"
    );
    assert!(unprivileged["findings"].as_array().is_some_and(|f| f.is_empty()));

    let missing = std::fs::read_to_string(dir.path().join("missing.err")).unwrap_or_default();
    assert!(
        missing.contains("no-such-namespace") && missing.contains("/run/netns/no-such-namespace"),
        "{missing}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("missing.rc"))
            .unwrap_or_default()
            .trim(),
        "2"
    );
    // A number is a pid unless only an `ip netns` has that name; both is refused, never the
    // host's namespace acted on; the printed fix names the namespace by its path.
    let numeric = std::fs::read_to_string(dir.path().join("numeric.txt")).expect("report");
    assert!(numeric.contains("harden --netns /run/netns/1 --apply"), "{numeric}");
    assert!(numeric.contains("harden --netns /run/netns/4242 --apply"), "{numeric}");
    let ambiguous = std::fs::read_to_string(dir.path().join("ambiguous.err")).unwrap_or_default();
    assert!(
        ambiguous.contains("names both the `ip netns` 1 and process 1") && ambiguous.contains("/run/netns/1"),
        "{ambiguous}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ambiguous.rc"))
            .unwrap_or_default()
            .trim(),
        "2"
    );
    let n4242 = sandbox::json(&dir, "n4242.json");
    assert!(
        n4242["host"]["netns"]
            .as_str()
            .unwrap_or_default()
            .contains("ip netns 4242"),
        "{}",
        n4242["host"]
    );
    assert_eq!(findings(&n4242, "net.route-localnet", None).len(), 1);
    let plan = sandbox::json(&dir, "n1-plan.json");
    assert!(plan.to_string().contains("route_localnet"), "{plan}");
}
