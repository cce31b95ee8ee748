#!/usr/bin/env bash
# Benchmark: `loopwarden facts` against `ss -ltnup` on a namespace holding 20,000 sockets
# (TCP and UDP, IPv4 and IPv6, loopback and wildcard) spread over 200 processes.
#
# Usage: bench/facts.sh [RUNS]   (root; builds the release binary first)
# Everything happens in a namespace this script creates; on exit (also on error or Ctrl-C) it
# kills the processes it started, by pid, and deletes the namespace.
set -euo pipefail

runs=${1:-20}
warmup=3
processes=200
per_process=100

# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"

ns="lw-bench-$$"
workdir=$(mktemp -d)
helper_pid=""
cleanup() {
    if [ -n "$helper_pid" ]; then
        # The helper and the children it forked, by the pids they recorded.
        for pid in $(cat "$workdir/pids" 2>/dev/null) "$helper_pid"; do
            kill -KILL "$pid" 2>/dev/null || true
        done
        wait "$helper_pid" 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$workdir"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up

# One parent forks $processes children; child i opens $per_process sockets on ports
# 10000 + i*$per_process + k, cycling through TCP/UDP x IPv4/IPv6 x loopback/wildcard.
cat > "$workdir/helper.py" <<'PY'
import os, signal, socket, sys, time
processes, per_process, pidfile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
kinds = [
    (socket.AF_INET, socket.SOCK_STREAM, "127.0.0.1"), (socket.AF_INET, socket.SOCK_STREAM, "0.0.0.0"),
    (socket.AF_INET6, socket.SOCK_STREAM, "::1"), (socket.AF_INET6, socket.SOCK_STREAM, "::"),
    (socket.AF_INET, socket.SOCK_DGRAM, "127.0.0.1"), (socket.AF_INET, socket.SOCK_DGRAM, "0.0.0.0"),
    (socket.AF_INET6, socket.SOCK_DGRAM, "::1"), (socket.AF_INET6, socket.SOCK_DGRAM, "::"),
]
children = []
for i in range(processes):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        keep = []
        for k in range(per_process):
            family, kind, address = kinds[k % len(kinds)]
            s = socket.socket(family, kind)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((address, 10000 + i * per_process + k))
            if kind == socket.SOCK_STREAM:
                s.listen(8)
            keep.append(s)
        os.write(w, b"x")
        os.close(w)
        signal.pause()
        os._exit(0)
    os.close(w)
    os.read(r, 1)
    os.close(r)
    children.append(pid)
with open(pidfile, "w") as f:
    f.write(" ".join(map(str, children)) + "\n")
print("ready", flush=True)
signal.pause()
PY

ip netns exec "$ns" python3 "$workdir/helper.py" "$processes" "$per_process" "$workdir/pids" \
    > "$workdir/helper.out" &
helper_pid=$!
for _ in $(seq 600); do
    grep -q ready "$workdir/helper.out" 2>/dev/null && break
    kill -0 "$helper_pid" 2>/dev/null || { echo "helper died" >&2; exit 1; }
    sleep 0.1
done
grep -q ready "$workdir/helper.out" || { echo "helper did not get ready" >&2; exit 1; }

sockets=$(ip netns exec "$ns" ss -Htanu | wc -l)
echo "namespace $ns: $sockets sockets in $processes processes (+ the parent)"

# Times both commands inside the namespace (no `ip netns exec` start-up in the figures), after a
# warm-up, alternating them run by run so that a change in machine load hits both alike. Prints
# "facts_mean facts_min ss_mean ss_min" in nanoseconds.
time_both() {
    ip netns exec "$ns" bash -c '
        warmup=$1; runs=$2; binary=$3
        for _ in $(seq "$warmup"); do "$binary" facts > /dev/null; ss -ltnup > /dev/null; done
        ft=0; fmin=; st=0; smin=
        for _ in $(seq "$runs"); do
            a=$(date +%s%N); "$binary" facts > /dev/null; b=$(date +%s%N)
            ss -ltnup > /dev/null; c=$(date +%s%N)
            f=$((b - a)); s=$((c - b)); ft=$((ft + f)); st=$((st + s))
            if [ -z "$fmin" ] || [ "$f" -lt "$fmin" ]; then fmin=$f; fi
            if [ -z "$smin" ] || [ "$s" -lt "$smin" ]; then smin=$s; fi
        done
        echo "$((ft / runs)) $fmin $((st / runs)) $smin"
    ' timer "$warmup" "$runs" "$binary"
}

# The figures only count if the snapshot is complete: every socket, each with its owner.
ip netns exec "$ns" "$binary" facts > "$workdir/facts.json"
python3 - "$workdir/facts.json" "$sockets" <<'PY'
import json, sys
facts = json.load(open(sys.argv[1]))
inet = facts["inet_sockets"]
owned = sum(1 for s in inet if s["owners"])
print(f"loopwarden facts: {len(inet)} inet sockets, {owned} with an owner, "
      f"{len(facts['processes'])} processes, {len(facts['host']['limits'])} limits")
if len(inet) != int(sys.argv[2]) or owned != len(inet):
    sys.exit("incomplete snapshot: the benchmark would be meaningless")
PY

read -r facts_mean facts_min ss_mean ss_min < <(time_both)

ms() { awk -v ns="$1" 'BEGIN { printf "%.1f", ns / 1e6 }'; }
printf '%-22s mean %8s ms   min %8s ms   (%d runs)\n' "loopwarden facts" "$(ms "$facts_mean")" "$(ms "$facts_min")" "$runs"
printf '%-22s mean %8s ms   min %8s ms   (%d runs)\n' "ss -ltnup" "$(ms "$ss_mean")" "$(ms "$ss_min")" "$runs"
awk -v a="$facts_mean" -v b="$ss_mean" -v c="$facts_min" -v d="$ss_min" \
    'BEGIN { printf "ratio facts/ss: %.2f (means), %.2f (mins)   target <= 1.0, goal 0.5\n", a / b, c / d }'
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
