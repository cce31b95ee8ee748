#!/usr/bin/env bash
# Benchmark: `loopwarden audit --probe` against 200 local HTTP listeners (loopback, one Python
# asyncio process answering every request), best and median wall time of RUNS runs.
# Target: under 2 seconds (issue 5).
#
# Usage: bench/probe.sh [RUNS]   (root; builds the release binary first)
# Everything happens in a namespace this script creates; on exit (also on error or Ctrl-C) it
# kills the helper it started, by pid, and deletes the namespace.
set -euo pipefail

runs=${1:-5}
listeners=200

# shellcheck source=bench/common.sh
. "$(dirname "$0")/common.sh"

ns="lw-bench-probe-$$"
workdir=$(mktemp -d)
helper_pid=""
cleanup() {
    if [ -n "$helper_pid" ]; then
        kill -KILL "$helper_pid" 2>/dev/null || true
        wait "$helper_pid" 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$workdir"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up

# Half the listeners have no Host check (findings, and the POST), half refuse foreign Hosts.
cat > "$workdir/helper.py" <<'PY'
import asyncio, sys
count = int(sys.argv[1])
async def handle(reader, writer, port):
    try:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    except Exception:
        writer.close(); return
    host = next((l.split(b":", 1)[1].strip() for l in head.split(b"\r\n") if l.lower().startswith(b"host:")), b"")
    refused = port % 2 == 1 and not host.startswith((b"127.0.0.1:", b"localhost:"))
    status, body = (b"421 Misdirected Request", b"no") if refused else (b"200 OK", b"hello from %d" % port)
    writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % len(body) + body)
    try:
        await writer.drain()
    finally:
        writer.close()
async def main():
    for i in range(count):
        port = 20000 + i
        await asyncio.start_server(lambda r, w, p=port: handle(r, w, p), "127.0.0.1", port, backlog=512)
    print("ready", flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
PY
ip netns exec "$ns" python3 -u "$workdir/helper.py" "$listeners" > "$workdir/ready" &
helper_pid=$!
for _ in $(seq 100); do grep -q ready "$workdir/ready" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$workdir/ready" || { echo "bench/probe.sh: helper did not start" >&2; exit 1; }

for run in $(seq "$runs"); do
    start=$(date +%s%N)
    ip netns exec "$ns" "$binary" audit --json --fail-on critical > /dev/null
    end=$(date +%s%N)
    echo $(( (end - start) / 1000000 )) >> "$workdir/plain"
    start=$(date +%s%N)
    ip netns exec "$ns" "$binary" audit --probe --json --fail-on critical > "$workdir/report.json"
    end=$(date +%s%N)
    echo $(( (end - start) / 1000000 )) >> "$workdir/times"
done
python3 - "$workdir/times" "$workdir/report.json" "$listeners" "$workdir/plain" <<'PY'
import json, statistics, sys
times = sorted(int(t) for t in open(sys.argv[1]).read().split())
plain = sorted(int(t) for t in open(sys.argv[4]).read().split())
report = json.load(open(sys.argv[2]))
found = sum(1 for f in report["findings"] if f["check"] == "web.dns-rebinding")
print(f"audit --probe, {sys.argv[3]} HTTP listeners, {len(times)} runs: best {times[0]} ms, "
      f"median {statistics.median(times):.0f} ms; web.dns-rebinding findings: {found} "
      f"(expected {int(sys.argv[3]) // 2}); the same audit without --probe: median "
      f"{statistics.median(plain):.0f} ms")
PY
