#!/usr/bin/env bash
# Benchmark: what firewall analysis adds to an audit on a large kube-proxy/Docker-like ruleset.
#
# Creates a namespace with a veth eth0 and a docker0 bridge, captures `loopwarden facts` with no
# rules, loads a generated iptables-nft ruleset (kube-proxy iptables mode: KUBE-SERVICES,
# KUBE-SVC-* with random-probability endpoint selection, KUBE-SEP-* DNATs, NodePorts,
# KUBE-FIREWALL; Docker: published ports, some on 127.0.0.1, with the 28.x raw drops), captures
# the facts again, and times `loopwarden audit --facts` on both snapshots (loading the larger
# snapshot included), and the analysis alone in process (examples/firewall_timing.rs).
#
# Usage: bench/firewall.sh [SERVICES] [RUNS]   (root; builds the release binary first)
# Everything happens in a namespace this script creates and deletes on exit.
set -euo pipefail

services=${1:-560}
runs=${2:-15}

# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"

ns="lw-fwbench-$$"
workdir=$(mktemp -d)
cleanup() {
    [ -n "${KEEP_SNAPSHOT:-}" ] && cp "$workdir/large.json" "$KEEP_SNAPSHOT"
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$workdir"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 type veth peer name eth0p
ip -n "$ns" addr add 192.0.2.10/24 dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" link add docker0 type bridge
ip -n "$ns" addr add 172.17.0.1/16 dev docker0
ip -n "$ns" link set docker0 up

ip netns exec "$ns" "$binary" facts --out "$workdir/empty.json"

python3 - "$services" > "$workdir/rules.v4" <<'PY'
import sys
n = int(sys.argv[1])
nat, flt, raw = [], [], []
nat_chains, flt_chains = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-MARK-MASQ", "KUBE-POSTROUTING", "DOCKER"], ["KUBE-FIREWALL", "KUBE-FORWARD", "DOCKER", "DOCKER-USER", "DOCKER-FORWARD"]
nat += ["-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES",
        "-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "-A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING",
        "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
        "-A KUBE-POSTROUTING -j MASQUERADE",
        "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"]
for i in range(n):
    svc, ip, port = f"KUBE-SVC-{i:012X}", f"10.96.{i // 250}.{i % 250 + 1}", 8000 + i % 1000
    nat_chains.append(svc)
    nat.append(f"-A KUBE-SERVICES -d {ip}/32 -p tcp -m comment --comment \"ns/svc{i} cluster IP\" -m tcp --dport {port} -j {svc}")
    nat.append(f"-A {svc} ! -s 10.244.0.0/16 -d {ip}/32 -p tcp -m tcp --dport {port} -j KUBE-MARK-MASQ")
    if i % 10 == 0:
        nat.append(f"-A KUBE-NODEPORTS -p tcp -m comment --comment \"ns/svc{i}\" -m tcp --dport {30000 + i} -j {svc}")
    for e in range(2):
        sep = f"KUBE-SEP-{i:010X}{e:02X}"
        nat_chains.append(sep)
        prob = "-m statistic --mode random --probability 0.50000000000 " if e == 0 else ""
        nat.append(f"-A {svc} -m comment --comment \"ns/svc{i} -> ep{e}\" {prob}-j {sep}")
        nat.append(f"-A {sep} -s 10.244.{e}.{i % 250 + 1}/32 -j KUBE-MARK-MASQ")
        nat.append(f"-A {sep} -p tcp -m tcp -j DNAT --to-destination 10.244.{e}.{i % 250 + 1}:{port}")
nat.append("-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS")
for j in range(n // 4):
    host = "127.0.0.1" if j % 5 == 0 else "192.0.2.10"
    cip, hport = f"172.17.{j // 250}.{j % 250 + 2}", 9000 + j
    nat.append(f"-A DOCKER -d {host}/32 ! -i docker0 -p tcp -m tcp --dport {hport} -j DNAT --to-destination {cip}:80")
    flt.append(f"-A DOCKER -d {cip}/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT")
    raw.append(f"-A PREROUTING -d {cip}/32 ! -i docker0 -j DROP")
    if host == "127.0.0.1":
        raw.append(f"-A PREROUTING -d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport {hport} -j DROP")
flt += ["-A INPUT -j KUBE-FIREWALL", "-A OUTPUT -j KUBE-FIREWALL", "-A FORWARD -j KUBE-FORWARD", "-A FORWARD -j DOCKER-USER", "-A FORWARD -j DOCKER-FORWARD",
        "-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
        "-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP",
        "-A KUBE-FORWARD -m mark --mark 0x4000/0x4000 -j ACCEPT",
        "-A DOCKER-FORWARD -o docker0 -j DOCKER", "-A DOCKER-FORWARD -i docker0 -j ACCEPT", "-A DOCKER ! -i docker0 -o docker0 -j DROP"]
print("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]")
print("\n".join(raw)); print("COMMIT")
print("*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]")
print("\n".join(f":{c} - [0:0]" for c in nat_chains)); print("\n".join(nat)); print("COMMIT")
print("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]")
print("\n".join(f":{c} - [0:0]" for c in flt_chains)); print("\n".join(flt)); print("COMMIT")
PY
rules=$(grep -c '^-A' "$workdir/rules.v4")
ip netns exec "$ns" iptables-nft-restore < "$workdir/rules.v4"
ip netns exec "$ns" sysctl -qw net.ipv4.conf.all.route_localnet=1 net.ipv4.ip_forward=1
ip netns exec "$ns" "$binary" facts --out "$workdir/large.json"

# In process: the audit of the large snapshot with and without its firewall capture (snapshot
# loading excluded), which is what the analysis itself costs.
cargo run --release --quiet -p loopwarden-core --example firewall_timing -- "$workdir/large.json" "$runs"

python3 - "$binary" "$workdir/empty.json" "$workdir/large.json" "$runs" "$rules" <<'PY'
import json, os, statistics, subprocess, sys, time
binary, empty, large, runs, rules = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
import resource
def cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (r.ru_utime + r.ru_stime) * 1000
def timed(snapshot):
    out, cpus = [], []
    for i in range(runs + 2):
        t, c = time.perf_counter(), cpu()
        p = subprocess.run([binary, "audit", "--json", "--facts", snapshot], stdout=subprocess.PIPE)
        dt, dc = (time.perf_counter() - t) * 1000, cpu() - c
        if p.returncode not in (0, 1):
            sys.exit(f"audit failed on {snapshot}")
        if i >= 2:
            out.append(dt)
            cpus.append(dc)
    return statistics.median(out), min(out), statistics.median(cpus), p.stdout
e_med, e_min, e_cpu, _ = timed(empty)
l_med, l_min, l_cpu, report = timed(large)
findings = json.loads(report)["findings"]
fw = [f for f in findings if f["check"] in ("net.no-loopback-antispoof", "net.dnat-loopback", "net.route-localnet")]
print(f"ruleset: {rules} iptables rules (+ the nft JSON copy of the same tables)")
print(f"snapshot sizes: {os.path.getsize(empty) // 1024} KiB and {os.path.getsize(large) // 1024} KiB")
print(f"audit --facts, no rules:    wall median {e_med:7.1f} ms (min {e_min:.1f}), cpu median {e_cpu:.1f} ms")
print(f"audit --facts, large rules: wall median {l_med:7.1f} ms (min {l_min:.1f}), cpu median {l_cpu:.1f} ms")
print(f"the large ruleset adds:     wall median {l_med - e_med:7.1f} ms (min {l_min - e_min:.1f}), cpu {l_cpu - e_cpu:.1f} ms  (target < 50 ms)")
print(f"load average during the run: {os.getloadavg()[0]:.2f} (other work on the machine inflates wall times)")
print(f"firewall findings: {len(fw)} ({', '.join(sorted(set(f['check'] + ':' + f['status'] for f in fw)))})")
PY
