#!/usr/bin/env bash
# Times `loopwarden prove` for a host with a dozen listeners (loopback, wildcard, [::] V6ONLY and
# dual-stack, a resolver-stub connected socket, a NAT-published port) — the issue's target is
# the whole attack matrix in under 5 s. Needs root (the lab creates network namespaces).
# Usage: bench/prove.sh [RUNS]   (default 5); prints each run's wall time and the median.
set -euo pipefail
runs=${1:-5}
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
bin=$binary
snapshot=$(mktemp --suffix=.json)
result=$(mktemp --suffix=.json)
trap 'rm -f "$snapshot" "$result"' EXIT
python3 - "$snapshot" <<'PY'
import json, sys
def sock(proto, addr, port, v6only=None, state=None, peer=None):
    return {"protocol": proto, "address": addr, "port": port, "v6only": v6only,
            "state": state or ("listen" if proto == "tcp" else "unconnected"), "peer": peer,
            "bound_device": None, "uid": 0, "inode": 0, "owners": []}
sockets = [
    sock("tcp", "127.0.0.1", 5432), sock("tcp", "127.0.0.1", 6379), sock("tcp", "127.0.0.1", 8080),
    sock("tcp", "::1", 8080, True), sock("udp", "127.0.0.1", 8125), sock("tcp", "0.0.0.0", 22),
    sock("tcp", "::", 443, False), sock("udp", "0.0.0.0", 123), sock("udp", "::", 123, True),
    sock("udp", "::", 5353, False), sock("tcp", "127.0.0.1", 10249),
    sock("udp", "127.0.0.1", 41000, None, "connected", ["127.0.0.53", 53]),
]
sysctls = {f"net.ipv4.conf.{s}.{k}": "0" for s in ("all", "default", "lo", "eth0")
           for k in ("route_localnet", "rp_filter", "accept_local")}
sysctls["net.ipv4.conf.all.route_localnet"] = "1"
iface = lambda name, idx, lo, addrs: {"name": name, "index": idx, "up": True, "loopback": lo, "kind": None,
    "mac": None, "addresses": [{"address": a, "prefix_len": p} for a, p in addrs]}
facts = {"schema": "loopwarden.facts/v1",
         "host": {"hostname": "bench", "kernel": "", "netns": "bench", "privileged": True, "collected_at": 0, "limits": []},
         "inet_sockets": sockets, "unix_sockets": [], "processes": [],
         "interfaces": [iface("lo", 1, True, [("127.0.0.1", 8), ("::1", 128)]),
                        iface("eth0", 2, False, [("192.0.2.1", 24), ("2001:db8::1", 64)])],
         "sysctls": sysctls, "names": {"hosts_file": None, "nsswitch_hosts": None},
         "accounts": {"users": [], "groups": []},
         "firewall": {"nft_json": None, "nft_text": None, "iptables": [{"family": "ipv4", "backend": "nft", "text":
             "*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -d 127.0.0.1/32 -p tcp -m tcp --dport 30080 -j DNAT --to-destination 127.0.0.1:10249\nCOMMIT\n"}]}}
json.dump(facts, open(sys.argv[1], "w"))
PY
times=()
for i in $(seq "$runs"); do
    start=$(date +%s%N)
    set +e
    "$bin" prove --facts "$snapshot" --json > "$result"
    code=$?
    set -e
    [ "$code" -le 1 ] || { echo "prove failed (exit $code)" >&2; exit 1; }
    ms=$(( ($(date +%s%N) - start) / 1000000 ))
    results=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["results"]))' "$result")
    echo "run $i: ${ms} ms wall, ${results} attacks and controls"
    times+=("$ms")
done
median=$(printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
echo "median: ${median} ms for 12 listeners (target: < 5000 ms)"
