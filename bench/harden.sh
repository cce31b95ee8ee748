#!/usr/bin/env bash
# Times `loopwarden harden --apply` — collect, audit, plan, verification with the firewall
# evaluator, `nft -c`, the nft transaction, the sysctls and the read-back — for a host with 100
# listeners (50 TCP and 25 UDP on loopback, 25 TCP wildcard) and route_localnet on its LAN
# interface, in a namespace made here. Between runs (untimed) `--remove` puts the host back, so
# that every timed run creates the table and writes the sysctl. The issue's target: < 200 ms.
# Also times the plan alone (`harden`, which changes nothing) and a second apply over an applied
# table (nothing to change: no transaction).
# Usage: bench/harden.sh [RUNS]   (default 10); prints each run and the medians.
set -euo pipefail
runs=${1:-10}
# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
ns="lwbench-harden-$$"
listeners=""
cleanup() {
    [ -n "$listeners" ] && kill "$listeners" 2>/dev/null || true
    if ip netns list | grep -q "^$ns\b"; then
        ip netns exec "$ns" "$binary" harden --remove >/dev/null 2>&1 || true
        cookie=$(ip netns exec "$ns" python3 -c 'import socket, struct; print(struct.unpack("Q", socket.socket().getsockopt(socket.SOL_SOCKET, 71, 8))[0])' 2>/dev/null || true)
        [ -n "$cookie" ] && rm -rf "/run/loopwarden/netns-$cookie"
        rmdir /run/loopwarden 2>/dev/null || true
        ip netns del "$ns"
    fi
}
trap cleanup EXIT
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 type veth peer name peer0
ip -n "$ns" addr add 192.0.2.1/24 dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns" link set peer0 up
ip netns exec "$ns" python3 -c '
import socket, time
keep = []
for i in range(50):
    s = socket.socket(); s.bind(("127.0.0.1", 20000 + i)); s.listen(); keep.append(s)
for i in range(25):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 21000 + i)); keep.append(s)
for i in range(25):
    s = socket.socket(); s.bind(("0.0.0.0", 22000 + i)); s.listen(); keep.append(s)
print("ready", flush=True)
time.sleep(3600)
' > /dev/null &
listeners=$!
sleep 0.5

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
planned=()
created=()
unchanged=()
for i in $(seq "$runs"); do
    ip netns exec "$ns" "$binary" harden --remove > /dev/null
    ip netns exec "$ns" sysctl -qw net.ipv4.conf.eth0.route_localnet=1
    start=$(date +%s%N)
    ip netns exec "$ns" "$binary" harden > /dev/null
    planned+=("$(ms "$start")")
    start=$(date +%s%N)
    ip netns exec "$ns" "$binary" harden --apply > /dev/null
    created+=("$(ms "$start")")
    start=$(date +%s%N)
    ip netns exec "$ns" "$binary" harden --apply > /dev/null
    unchanged+=("$(ms "$start")")
    echo "run $i: plan ${planned[-1]} ms, apply ${created[-1]} ms (table created, route_localnet written), again ${unchanged[-1]} ms (unchanged)"
done
# audit exits 1 when it has findings: that is its answer, not a failure here.
services=$({ ip netns exec "$ns" "$binary" audit --json || true; } | python3 -c 'import json, sys; print(len(json.load(sys.stdin)["services"]))')
echo "median: plan only $(median "${planned[@]}") ms, plan + apply $(median "${created[@]}") ms, again $(median "${unchanged[@]}") ms, for $services listeners (target: < 200 ms)"
