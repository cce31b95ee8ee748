#!/usr/bin/env bash
# `loopwarden guard` against its peers, in ONE run, on loopback inside a throwaway namespace:
#   1. bulk throughput (iperf3, 3 s per run, rounds interleaved): direct, guard (TCP mode,
#      splice), socat, HAProxy tcp mode without and with `option splice-auto`, nginx `stream`
#   2. connect + first byte (echo server): direct vs through the guard, HAProxy (default and one
#      thread) and a bare relay without checks (the floor of relaying here), and the identity lookup
#      (exact inet_diag request) alone
#   3. HTTP keep-alive requests/s (wrk, small responses from an nginx backend): guard --http vs
#      nginx as a reverse proxy with upstream keep-alive
#   4. 10,000 idle connections held through the guard, and its memory per idle connection
# Sections: BENCH_SECTIONS="1 2 3 4" (default all).
# Every daemon runs inside the namespace, bound to its loopback, and is stopped by PID.
# Usage: bench/guard.sh   (root; about 2 minutes; needs iperf3, socat, haproxy, nginx with the
# stream module, wrk — scripts/install-test-deps.sh installs them)
set -euo pipefail
sections=${BENCH_SECTIONS:-1 2 3 4}
want() { [[ " $sections " == *" $1 "* ]]; }
source "$(dirname "$0")/common.sh"
cargo build --release --quiet -p loopwarden-guard --example guard_bench
tool=$(realpath "${CARGO_TARGET_DIR:-target}/release/examples/guard_bench")
for t in iperf3 socat haproxy nginx wrk; do
    command -v "$t" >/dev/null || { echo "bench/guard.sh: $t is missing (scripts/install-test-deps.sh)" >&2; exit 1; }
done

ns="lwbench-guard-$$"
work=$(mktemp -d /tmp/lwbench-guard.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for f in "$work"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
    sleep 0.3
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up
# Each proxied connection costs the guard two descriptors: 10,000 need a hard RLIMIT_NOFILE above
# 20,000. Where it cannot be raised (no CAP_SYS_RESOURCE), the most that fits is held and said so.
ulimit -Hn 65536 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"
hold_count=$(( $(ulimit -n) >= 20100 ? 10000 : ($(ulimit -n) - 100) / 2 ))
chmod 755 "$work"

# --- servers and the peers, all on 127.0.0.1 inside the namespace
in_ns iperf3 -s -B 127.0.0.1 -p 5201 -D --pidfile "$work/iperf3.pid"
ip netns exec "$ns" "$tool" echo 127.0.0.1:7000 & pids+=($!)
cat > "$work/haproxy.cfg" <<EOF
global
    maxconn 4000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend plain
    bind 127.0.0.1:8081
    default_backend iperf
frontend spliced
    bind 127.0.0.1:8082
    option splice-auto
    default_backend iperf
backend iperf
    server s 127.0.0.1:5201
frontend echo
    bind 127.0.0.1:8075
    default_backend echo
backend echo
    server e 127.0.0.1:7000
EOF
in_ns haproxy -f "$work/haproxy.cfg" -D -p "$work/haproxy.pid"
# For section 2 also HAProxy on one thread (its fastest connection setup here) and a bare relay
# (one tokio thread, no identity checks, plain copies): how much of the guard's added latency is
# the relaying itself, on this machine, rather than its checks.
cat > "$work/haproxy1.cfg" <<EOF
global
    maxconn 1000
    nbthread 1
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
frontend echo
    bind 127.0.0.1:8076
    default_backend echo
backend echo
    server e 127.0.0.1:7000
EOF
in_ns haproxy -f "$work/haproxy1.cfg" -D -p "$work/haproxy1.pid"
ip netns exec "$ns" "$tool" relay 127.0.0.1:8077 127.0.0.1:7000 & pids+=($!)
ip netns exec "$ns" socat TCP-LISTEN:8083,bind=127.0.0.1,fork,reuseaddr TCP:127.0.0.1:5201 & pids+=($!)
# The HTTP backend is an nginx of its own (one worker), so that the nginx reverse proxy below
# crosses processes to reach it exactly as the guard does.
cat > "$work/backend.conf" <<EOF
worker_processes 1;
pid $work/backend.pid;
error_log $work/backend-error.log;
events { worker_connections 4096; }
http { access_log off; server { listen 127.0.0.1:9000; location / { return 200 "ok\n"; } } }
EOF
cat > "$work/nginx.conf" <<EOF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
stream { server { listen 127.0.0.1:8084; proxy_pass 127.0.0.1:5201; } }
http {
    access_log off;
    upstream backend { server 127.0.0.1:9000; keepalive 64; }
    server {
        listen 127.0.0.1:8091;
        location / { proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection ""; }
    }
}
EOF
in_ns nginx -c "$work/backend.conf" -e "$work/backend-error.log"
in_ns nginx -c "$work/nginx.conf" -e "$work/nginx-error.log"
ip netns exec "$ns" "$binary" guard --name bench-tcp --listen 127.0.0.1:8080 --to 127.0.0.1:5201 --allow-user root \
    --status-dir "$work" 2>"$work/guard-tcp.log" & pids+=($!)
mkdir -p "$work/echo" "$work/http"
ip netns exec "$ns" "$binary" guard --name bench-echo --listen 127.0.0.1:8070 --to 127.0.0.1:7000 --allow-user root \
    --status-dir "$work/echo" 2>"$work/guard-echo.log" & echo_guard=$!; pids+=($echo_guard)
ip netns exec "$ns" "$binary" guard --name bench-http --listen 127.0.0.1:8090 --to 127.0.0.1:9000 --allow-user root --http ${GUARD_HTTP_OPTS:-} \
    --status-dir "$work/http" 2>"$work/guard-http.log" & pids+=($!)
sleep 2

gbps() { in_ns iperf3 -c 127.0.0.1 -p "$1" -t 3 -J | python3 -c 'import json,sys; print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"]/1e9))'; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

if want 1; then
echo "== 1. bulk throughput, iperf3 3 s, 3 interleaved rounds (Gbit/s)"
declare -A name=([5201]="direct" [8080]="loopwarden guard (splice)" [8083]="socat" [8081]="HAProxy tcp"
                 [8082]="HAProxy tcp + splice-auto" [8084]="nginx stream")
order=(5201 8080 8083 8081 8082 8084)
declare -A runs
for round in 1 2 3; do
    for port in "${order[@]}"; do runs[$port]+="$(gbps "$port") "; done
done
direct=$(echo "${runs[5201]}" | tr ' ' '\n' | grep . | median)
printf "%-28s %8s %8s   %s\n" target median ratio runs
for port in "${order[@]}"; do
    m=$(echo "${runs[$port]}" | tr ' ' '\n' | grep . | median)
    printf "%-28s %8s %8s   %s\n" "${name[$port]}" "$m" "$(awk -v a="$m" -v b="$direct" 'BEGIN {printf "%.2fx", a/b}')" "${runs[$port]}"
done

fi
if want 2; then
echo
echo "== 2. connect + first byte (2,000 each, interleaved twice; µs)"
added() { awk -v a="${1#median_us=}" -v b="${d#median_us=}" 'BEGIN {split(a,x," "); split(b,y," "); printf "%.1f", x[1]-y[1]}'; }
for round in 1 2; do
    d=$(in_ns "$tool" latency 127.0.0.1:7000 2000)
    g=$(in_ns "$tool" latency 127.0.0.1:8070 2000)
    h=$(in_ns "$tool" latency 127.0.0.1:8075 2000)
    h1=$(in_ns "$tool" latency 127.0.0.1:8076 2000)
    r=$(in_ns "$tool" latency 127.0.0.1:8077 2000)
    echo "direct: $d"
    echo "  guard:                $g (adds $(added "$g") µs)"
    echo "  HAProxy:              $h (adds $(added "$h") µs)"
    echo "  HAProxy, one thread:  $h1 (adds $(added "$h1") µs)"
    echo "  bare relay, no check: $r (adds $(added "$r") µs)"
done
echo "identity lookup alone (exact inet_diag request, 100,000): $(in_ns "$tool" lookup 100000)"

fi
if want 3; then
echo
echo "== 3. HTTP keep-alive, wrk -t1 -c32 -d4s, small responses (requests/s), 2 interleaved rounds"
rps() { in_ns wrk -t1 -c32 -d4s "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {print $2}'; }
for round in 1 2; do
    echo "guard --http: $(rps 8090)   nginx reverse proxy: $(rps 8091)   backend direct: $(rps 9000)"
done
grep -q '"requests": 0' "$work/http/status.json" && { echo "the guard forwarded no request" >&2; exit 1; }

fi
if want 4; then
echo
echo "== 4. $hold_count idle connections through the guard (descriptor hard limit $(ulimit -Hn))"
rss() { awk '/VmRSS/ {print $2}' "/proc/$echo_guard/status"; }
before=$(rss)
ip netns exec "$ns" "$tool" hold 127.0.0.1:8070 "$hold_count" 6 > "$work/hold.out" & holder=$!; pids+=($holder)
for _ in $(seq 1 60); do grep -q held= "$work/hold.out" && break; sleep 0.5; done
sleep 2
after=$(rss)
open=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["fronts"][0]["counters"]["active"])' "$work/echo/status.json")
echo "$(cat "$work/hold.out") connections; guard reports $open open; guard RSS ${before} KiB -> ${after} KiB:" \
     "$(awk -v a="$after" -v b="$before" -v n="$hold_count" 'BEGIN {printf "%.2f", (a-b)*1024/n}') bytes per idle connection (user space)"
wait "$holder" 2>/dev/null || true
fi
