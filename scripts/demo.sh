#!/usr/bin/env bash
# A demonstration that touches nothing on this host: builds a throwaway network namespace that
# looks like a developer's machine — a dev server on 127.0.0.1:8000 with no Host check, a socat
# forwarder publishing it on 0.0.0.0:9000, route_localnet=1 on the LAN interface (as kube-proxy
# sets it), a UDP service on 127.0.0.1, a world-writable Unix socket — and runs
# `loopwarden audit --probe --prove` inside it. Root; removes everything on exit.
# Usage: scripts/demo.sh [extra audit arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/loopwarden
ns=lw-demo-$$
dir=$(mktemp -d /tmp/lw-demo.XXXXXX)
pids=()
cleanup() {
    # Everything still inside the demo namespace is ours (socat's forked children included).
    for pid in "${pids[@]}" $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    ip netns del "$ns-lan" 2>/dev/null || true
    rm -rf "$dir" "/etc/netns/$ns"
}
trap cleanup EXIT
ip netns add "$ns"
ip netns add "$ns-lan"
mkdir -p "/etc/netns/$ns"
printf '127.0.0.1 localhost\n::1 localhost\n' > "/etc/netns/$ns/hosts"
printf 'hosts: files dns\n' > "/etc/netns/$ns/nsswitch.conf"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 type veth peer name eth0 netns "$ns-lan"
ip -n "$ns" addr add 192.0.2.10/24 dev eth0
ip -n "$ns" link set eth0 up
ip -n "$ns-lan" link set eth0 up
ip netns exec "$ns" sysctl -qw net.ipv4.conf.eth0.route_localnet=1
chmod 755 "$dir"
ip netns exec "$ns" python3 -c '
import http.server, socketserver
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"{\"api_key\": \"dev-secret\"}"
        self.send_response(200); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
socketserver.TCPServer(("127.0.0.1", 8000), H).serve_forever()' &
pids+=($!)
ip netns exec "$ns" socat TCP-LISTEN:9000,bind=0.0.0.0,fork,reuseaddr TCP:127.0.0.1:8000 &
pids+=($!)
ip netns exec "$ns" socat -u UDP-RECV:8125,bind=127.0.0.1 /dev/null &
pids+=($!)
ip netns exec "$ns" socat UNIX-LISTEN:"$dir/agent.sock",mode=777,fork /dev/null &
pids+=($!)
sleep 0.5
ip netns exec "$ns" "$bin" audit --probe --prove "$@" || true
