#!/usr/bin/env bash
# A demonstration of `loopwarden audit --all-netns` that touches nothing on this host: in a
# sandbox of its own (pid 1 of a new pid namespace, with its own network namespace, /proc and a
# tmpfs over /run — everything made here goes with it) it builds a small container host: an
# `ip netns` namespace "web" with a LAN-side veth, route_localnet=1 and a loopback admin port;
# two Podman containers (rootful, storage under a temporary directory) — "cache" with a network
# namespace of its own and a service on its loopback, "agent" with --network host; an abstract
# Unix socket on the host, as containerd-shim had one (CVE-2020-15257) — and runs
# `loopwarden audit --all-netns`. Root; needs podman and busybox-static.
# Usage: scripts/demo-netns.sh [AUDIT-OPTIONS…]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
export LW_DEMO_BIN=$PWD/target/release/loopwarden LW_DEMO_DIR
LW_DEMO_DIR=$(mktemp -d /tmp/lw-demo-netns.XXXX)
trap 'rm -rf "$LW_DEMO_DIR"' EXIT
exec 3>&1
unshare --net --pid --fork --kill-child --mount --mount-proc --propagation private \
    bash -euo pipefail -s -- "$@" <<'SANDBOX'
# The namespace bind mounts copied from the machine's mount namespace go (from this copy only).
{ findmnt -rn -t nsfs -o TARGET || true; } | while read -r m; do umount -l "$m"; done
mount -t tmpfs -o mode=755 tmpfs /run
ip link set lo up
d=$LW_DEMO_DIR
ip netns add web
ip -n web link set lo up
ip -n web link add eth0 type veth peer name lan0
ip -n web addr add 192.0.2.10/24 dev eth0
ip -n web link set eth0 up
ip -n web link set lan0 up
ip netns exec web sysctl -qw net.ipv4.conf.eth0.route_localnet=1
ip netns exec web python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 9000)); s.listen(); time.sleep(3600)' &
python3 -c '
import socket, time
s = socket.socket(socket.AF_UNIX); s.bind("\0/containerd-shim/demo/shim.sock"); s.listen(); time.sleep(3600)' &
mkdir -p "$d/rootfs/bin" "$d/rootfs/usr" "$d/rootfs/etc"
cp /bin/busybox "$d/rootfs/bin/busybox"
ln -s usr/lib "$d/rootfs/lib"; ln -s usr/lib64 "$d/rootfs/lib64"
tar -C "$d/rootfs" -cf "$d/rootfs.tar" .
p() { podman --root "$d/storage" --runroot "$d/run" --cgroup-manager cgroupfs --runtime runc \
    --events-backend file --storage-driver overlay --tmpdir "$d/tmp" "$@"; }
p import "$d/rootfs.tar" demo/busybox:1 > /dev/null 2>&1
p run -d --name cache --network none -v /usr:/usr:ro demo/busybox:1 /usr/bin/python3 -c '
import socket, time
s = socket.socket(); s.bind(("127.0.0.1", 6379)); s.listen(); time.sleep(3600)' > /dev/null
p run -d --name agent --network host demo/busybox:1 /bin/busybox sleep 3600 > /dev/null
sleep 1
"$LW_DEMO_BIN" audit --all-netns "$@" >&3 || true
p rm -f -t 0 cache agent > /dev/null 2>&1 || true
SANDBOX
