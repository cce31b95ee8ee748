#!/usr/bin/env bash
# Times `loopwarden audit --all-netns` over 100 network namespaces holding 50 sockets each
# (per namespace: 20 TCP listeners on 127.0.0.1, ::1 and 0.0.0.0, 15 UDP sockets on 127.0.0.1
# and [::], 10 Unix path and 5 abstract sockets; an eth0 veth with an address, as a container
# has), against a loop of `ip netns exec NS loopwarden audit` over the same namespaces. The
# issue's target: <= 3 s, well under the loop.
#
# Everything runs in a sandbox made here — a network, pid and mount namespace of its own, with
# its own /proc and a tmpfs over /run — so that the namespaces measured are exactly the ones made
# here (not other work's on the machine) and all of them go away with the sandbox.
# Usage: bench/netns.sh [RUNS]   (default 5); prints each run and the medians.
set -euo pipefail
runs=${1:-5}
if [ "${LW_BENCH_SANDBOX:-}" != 1 ]; then
    # shellcheck source=bench/common.sh
    . "$(dirname "$0")/common.sh"
    export LW_BENCH_SANDBOX=1 LW_BENCH_BINARY="$binary"
    exec unshare --net --pid --fork --mount --mount-proc --propagation private "$0" "$runs"
fi
binary=$LW_BENCH_BINARY
namespaces=100
# The namespace bind mounts copied from the machine's mount namespace go (from this copy only).
{ findmnt -rn -t nsfs -o TARGET || true; } | while read -r m; do umount -l "$m"; done
mount -t tmpfs -o mode=755 tmpfs /run
ip link set lo up
dir=$(mktemp -d /tmp/lw-bench-netns.XXXX)
trap 'rm -rf "$dir"' EXIT
for i in $(seq "$namespaces"); do
    ns="lwb-$i"
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" link add eth0 type veth peer name peer0
    ip -n "$ns" addr add "192.0.2.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set peer0 up
done
# One process holds every socket, made in each namespace in turn (setns), like a host whose
# containers all run a few services.
python3 -u - "$namespaces" "$dir" > "$dir/holder.out" <<'PY' &
import ctypes, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
count, base = int(sys.argv[1]), sys.argv[2]
keep = []
for i in range(1, count + 1):
    fd = os.open(f"/run/netns/lwb-{i}", os.O_RDONLY)
    if libc.setns(fd, 0x40000000) != 0:
        raise OSError(ctypes.get_errno(), "setns")
    os.close(fd)
    def tcp(family, addr, port):
        s = socket.socket(family, socket.SOCK_STREAM); s.bind((addr, port)); s.listen(); keep.append(s)
    def udp(family, addr, port):
        s = socket.socket(family, socket.SOCK_DGRAM); s.bind((addr, port)); keep.append(s)
    for p in range(10): tcp(socket.AF_INET, "127.0.0.1", 7000 + p)
    for p in range(5): tcp(socket.AF_INET6, "::1", 7100 + p)
    for p in range(5): tcp(socket.AF_INET, "0.0.0.0", 7200 + p)
    for p in range(10): udp(socket.AF_INET, "127.0.0.1", 7300 + p)
    for p in range(5): udp(socket.AF_INET6, "::", 7400 + p)
    os.makedirs(f"{base}/ns{i}", exist_ok=True)
    for p in range(10):
        s = socket.socket(socket.AF_UNIX); s.bind(f"{base}/ns{i}/s{p}.sock"); s.listen(); keep.append(s)
    for p in range(5):
        s = socket.socket(socket.AF_UNIX); s.bind(f"\0lwb-{i}-{p}"); s.listen(); keep.append(s)
print("ready", flush=True)
time.sleep(3600)
PY
holder=$!
for _ in $(seq 100); do grep -q ready "$dir/holder.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$dir/holder.out" || { echo "the socket holder did not start" >&2; exit 1; }

ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
# A first run, untimed: the same page cache for every timed run.
"$binary" audit --all-netns --json > "$dir/report.json" || [ $? -eq 1 ]
found=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(len(r["namespaces"]), sum(len(n["report"]["services"]) for n in r["namespaces"]))' "$dir/report.json")
echo "audit --all-netns sees: $found (namespaces, services) — expected $((namespaces + 1)) namespaces (the sandbox's own too), $((namespaces * 50)) services"
all=()
loop=()
for r in $(seq "$runs"); do
    start=$(date +%s%N)
    "$binary" audit --all-netns --json > /dev/null || [ $? -eq 1 ]
    all+=("$(ms "$start")")
    start=$(date +%s%N)
    for i in $(seq "$namespaces"); do
        ip netns exec "lwb-$i" "$binary" audit --json > /dev/null || [ $? -eq 1 ]
    done
    loop+=("$(ms "$start")")
    echo "run $r: audit --all-netns ${all[-1]} ms; loop of ip netns exec … audit ${loop[-1]} ms"
done
a=$(median "${all[@]}")
l=$(median "${loop[@]}")
echo "median: audit --all-netns $a ms (target <= 3000); loop $l ms; ratio $(awk -v a="$a" -v l="$l" 'BEGIN {printf "%.2f", a / l}')"
kill "$holder"
