#!/usr/bin/env bash
# Benchmark: how `loopwarden audit --facts` scales with the number of sockets, against
# `loopwarden facts` of the same namespace, in one run: 1,000 -> 10,000 -> 100,000 sockets
# (TCP and UDP, IPv4 and IPv6, loopback and wildcard, 1,000 per process) in a namespace with a
# LAN interface and a small stateful ruleset. For each size: the median wall time of `facts`
# and of `audit --facts` (human report, and JSON), their ratio, the time per 1,000 sockets (flat
# when linear), and the peak memory of one audit (/usr/bin/time). Then `facts` of an empty
# namespace while the largest one exists: its /proc walk must pass over the other namespace's
# processes.
#
# Usage: bench/scale.sh [RUNS] [SIZES…]   (root; default 5 runs, sizes 1000 10000 100000)
#        KEEP_SNAPSHOTS=DIR bench/scale.sh … keeps each size's snapshot in DIR (for profiling).
# Everything happens in namespaces this script creates; on exit (also on error or Ctrl-C) it
# kills the processes it started, by pid, and deletes the namespaces.
set -euo pipefail

runs=${1:-5}
shift || true
sizes=("${@:-1000 10000 100000}")
read -r -a sizes <<< "${sizes[*]}"
per_process=1000

# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"
command -v /usr/bin/time > /dev/null || { echo "needs /usr/bin/time (package time)" >&2; exit 1; }

workdir=$(mktemp -d)
namespaces=()
helper_pid=""
stop_helper() {
    if [ -n "$helper_pid" ]; then
        for pid in $(cat "$workdir/pids" 2>/dev/null) "$helper_pid"; do
            kill -KILL "$pid" 2>/dev/null || true
        done
        wait "$helper_pid" 2>/dev/null || true
        helper_pid=""
    fi
}
cleanup() {
    stop_helper
    for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    rm -rf "$workdir"
}
trap cleanup EXIT

# N sockets over ceil(N/1000) processes: socket g is TCP/UDP x IPv4/IPv6 by g % 4 and, within
# that kind, alternately on loopback and the wildcard, each on its own port from 20000.
cat > "$workdir/helper.py" <<'PY'
import os, resource, signal, socket, sys
total, per_process, pidfile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
resource.setrlimit(resource.RLIMIT_NOFILE, (per_process + 64, per_process + 64))
kinds = [(socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET6, socket.SOCK_STREAM),
         (socket.AF_INET, socket.SOCK_DGRAM), (socket.AF_INET6, socket.SOCK_DGRAM)]
addresses = {socket.AF_INET: ("127.0.0.1", "0.0.0.0"), socket.AF_INET6: ("::1", "::")}
children = []
for first in range(0, total, per_process):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        keep = []
        for g in range(first, min(first + per_process, total)):
            family, kind = kinds[g % 4]
            n = g // 4
            s = socket.socket(family, kind)
            if family == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            s.bind((addresses[family][n % 2], 20000 + n))
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

# A host-like namespace: lo, a LAN veth with documentation addresses (its peer inside the same
# namespace, no route out), and a stateful input policy with an anti-spoof table.
make_namespace() {
    local ns=$1
    ip netns add "$ns"
    namespaces+=("$ns")
    ip -n "$ns" link set lo up
    ip -n "$ns" link add eth0 type veth peer name eth0p
    ip -n "$ns" addr add 192.0.2.10/24 dev eth0
    ip -n "$ns" addr add 2001:db8::10/64 dev eth0 nodad
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set eth0p up
    ip netns exec "$ns" nft -f - <<'NFT'
table inet filter {
    chain input {
        type filter hook input priority filter; policy drop;
        ct state established,related accept
        iif "lo" accept
        tcp dport { 22, 443 } accept
        udp dport 53 accept
        icmp type echo-request accept
        icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-advert } accept
    }
}
table inet guard {
    chain prerouting {
        type filter hook prerouting priority raw; policy accept;
        iifname != "lo" ip saddr 127.0.0.0/8 drop
        iifname != "lo" ip daddr 127.0.0.0/8 drop
    }
}
NFT
}

start_sockets() {
    local ns=$1 n=$2
    : > "$workdir/helper.out"
    ip netns exec "$ns" python3 "$workdir/helper.py" "$n" "$per_process" "$workdir/pids" \
        > "$workdir/helper.out" &
    helper_pid=$!
    for _ in $(seq 1200); do
        grep -q ready "$workdir/helper.out" 2>/dev/null && return 0
        kill -0 "$helper_pid" 2>/dev/null || { echo "socket helper died" >&2; exit 1; }
        sleep 0.1
    done
    echo "socket helper did not get ready" >&2
    exit 1
}

# "WALL CPU": the median wall time and the median CPU time (user + system) in ms of a command
# run $runs times inside namespace $1, after one warm-up. CPU time is what the machine's other
# load changes least.
median_ms() {
    local ns=$1
    shift
    ip netns exec "$ns" "$@" > /dev/null 2>&1 || true
    # Wall time from the clock (ns), CPU time from /usr/bin/time (10 ms resolution), both of
    # loopwarden alone: `ip netns exec` runs first and is outside both.
    ip netns exec "$ns" bash -c '
        runs=$1; out=$2; shift 2
        for _ in $(seq "$runs"); do
            a=$(date +%s%N)
            /usr/bin/time -f "%U %S" -o "$out" "$@" > /dev/null 2>&1 || true
            b=$(date +%s%N)
            tail -n 1 "$out" | awk -v w=$(( (b - a) / 1000000 )) "{ printf \"%d %d\\n\", w, (\$1 + \$2) * 1000 }"
        done
    ' timer "$runs" "$workdir/t" "$@" > "$workdir/samples"
    local m=$(( (runs + 1) / 2 ))
    echo "$(cut -d' ' -f1 "$workdir/samples" | sort -n | sed -n "${m}p") $(cut -d' ' -f2 "$workdir/samples" | sort -n | sed -n "${m}p")"
}

# Peak resident size in MiB of one run of a command inside namespace $1.
peak_mib() {
    local ns=$1
    shift
    ip netns exec "$ns" /usr/bin/time -f "%M" -o "$workdir/rss" "$@" > /dev/null 2>&1 || true
    # The last line: /usr/bin/time writes "Command exited with non-zero status 1" before it.
    tail -n 1 "$workdir/rss" | awk '{ printf "%.1f", $1 / 1024 }'
}

printf '%8s %15s %15s %15s %11s %12s %10s %10s\n' sockets "facts ms" "audit ms" "audit --json" "ratio" "audit/1k" "audit MiB" "facts MiB"
printf '%8s %15s %15s %15s %11s %12s %10s %10s\n' "" "wall (cpu)" "wall (cpu)" "wall (cpu)" "wall (cpu)" "wall (cpu)" peak peak
last_ns=""
for n in "${sizes[@]}"; do
    stop_helper
    [ -n "$last_ns" ] && { ip netns del "$last_ns"; }
    ns="lw-scale-$$-$n"
    make_namespace "$ns"
    last_ns=$ns
    start_sockets "$ns" "$n"
    snapshot="$workdir/facts-$n.json"
    ip netns exec "$ns" "$binary" facts --out "$snapshot"
    python3 - "$snapshot" "$n" <<'PY'
import json, sys
facts = json.load(open(sys.argv[1]))
inet = facts["inet_sockets"]
owned = sum(1 for s in inet if s["owners"])
if len(inet) != int(sys.argv[2]) or owned != len(inet):
    sys.exit(f"incomplete snapshot ({len(inet)} sockets, {owned} with an owner): the benchmark would be meaningless")
PY
    [ -n "${KEEP_SNAPSHOTS:-}" ] && cp "$snapshot" "$KEEP_SNAPSHOTS/"
    read -r facts_wall facts_cpu < <(median_ms "$ns" "$binary" facts)
    read -r audit_wall audit_cpu < <(median_ms "$ns" "$binary" audit --facts "$snapshot")
    read -r json_wall json_cpu < <(median_ms "$ns" "$binary" audit --json --facts "$snapshot")
    audit_mib=$(peak_mib "$ns" "$binary" audit --facts "$snapshot")
    facts_mib=$(peak_mib "$ns" "$binary" facts)
    awk -v n="$n" -v fw="$facts_wall" -v fc="$facts_cpu" -v aw="$audit_wall" -v ac="$audit_cpu" \
        -v jw="$json_wall" -v jc="$json_cpu" -v am="$audit_mib" -v fm="$facts_mib" 'BEGIN {
            k = n / 1000
            printf "%8d %8d (%4d) %8d (%4d) %8d (%4d) %5.2f (%.2f) %6.1f (%.1f) %10.1f %10.1f\n",
                n, fw, fc, aw, ac, jw, jc, aw / fw, ac / fc, aw / k, ac / k, am, fm
        }'
done

# `facts` of an empty namespace while the largest one's processes and sockets exist.
empty="lw-scale-$$-empty"
ip netns add "$empty"
namespaces+=("$empty")
ip -n "$empty" link set lo up
read -r empty_wall empty_cpu < <(median_ms "$empty" "$binary" facts)
echo "facts of an empty namespace beside ${sizes[-1]} sockets elsewhere: ${empty_wall} ms (cpu ${empty_cpu} ms)"
echo "targets: audit --facts of 100,000 sockets <= 1 s, <= 1.5x facts, <= 200 MiB; ms/1k flat (linear)"
echo "load average during the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
