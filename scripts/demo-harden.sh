#!/usr/bin/env bash
# A demonstration of `loopwarden harden` that touches nothing on this host: builds a throwaway
# "host" namespace — route_localnet=1 on its LAN interface, a Docker 27 style `-p 127.0.0.1:8081`
# DNAT, a UDP service on 127.0.0.1:8125, a `[::]:5353` UDP listener — with a LAN neighbour, then
# runs `harden` (the plan), `harden --apply`, sends three spoofed frames from the neighbour and
# runs `audit`, whose anti-spoof findings report what the table dropped. Root; removes
# everything on exit (the namespaces and harden's state for them).
# Usage: scripts/demo-harden.sh
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin=$PWD/target/release/loopwarden
ns=lw-hdemo-$$
cleanup() {
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
    if ip netns list | grep -q "^$ns\b"; then
        ip netns exec "$ns" "$bin" harden --remove > /dev/null 2>&1 || true
        cookie=$(ip netns exec "$ns" python3 -c 'import socket, struct; print(struct.unpack("Q", socket.socket().getsockopt(socket.SOL_SOCKET, 71, 8))[0])' 2>/dev/null || true)
        [ -n "$cookie" ] && rm -rf "/run/loopwarden/harden/netns-$cookie"
        rmdir /run/loopwarden/harden /run/loopwarden 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
    ip netns del "$ns-lan" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$ns"
ip netns add "$ns-lan"
ip -n "$ns" link set lo up
ip -n "$ns" link add eth0 type veth peer name eth0 netns "$ns-lan"
ip -n "$ns" addr add 192.0.2.10/24 dev eth0
ip -n "$ns" addr add 2001:db8::10/64 dev eth0 nodad
ip -n "$ns" link set eth0 up
ip -n "$ns-lan" addr add 192.0.2.254/24 dev eth0
ip -n "$ns-lan" link set eth0 up
ip -n "$ns" link add docker0 type bridge
ip -n "$ns" addr add 172.17.0.1/16 dev docker0
ip -n "$ns" link set docker0 up
ip netns exec "$ns" sysctl -qw net.ipv4.conf.eth0.route_localnet=1 net.ipv4.ip_forward=1
printf '%s\n' '*nat' ':PREROUTING ACCEPT [0:0]' ':DOCKER - [0:0]' \
    '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER' \
    '-A DOCKER -d 127.0.0.1/32 ! -i docker0 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.17.0.2:80' \
    'COMMIT' | ip netns exec "$ns" iptables-restore
ip netns exec "$ns" socat -u UDP-RECV:8125,bind=127.0.0.1 /dev/null &
ip netns exec "$ns" python3 -c '
import socket, time
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1); s.bind(("::", 5353))
time.sleep(3600)' &
sleep 0.5
echo '$ loopwarden harden'
ip netns exec "$ns" "$bin" harden
echo '$ loopwarden harden --apply --confirm-within 60'
ip netns exec "$ns" "$bin" harden --apply --confirm-within 60 | sed -n '/^applied:/,$p'
echo '$ loopwarden harden --confirm'
ip netns exec "$ns" "$bin" harden --confirm
# Three spoofed frames from the neighbour: to 127.0.0.1:8125, to 127.0.0.1:8081 (the publish),
# and from ::ffff:127.0.0.1 to [2001:db8::10]:5353.
mac=$(ip -n "$ns" link show eth0 | awk '/link\/ether/ {print $2}')
ip netns exec "$ns-lan" python3 - "$mac" <<'PY'
import socket, struct, sys
dst = bytes.fromhex(sys.argv[1].replace(":", ""))
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
def csum(b):
    b += b"\0" * (len(b) % 2)
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); t += t >> 16
    return ~t & 0xffff
def v4(src, dst_ip, proto, l4):
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 1, 0, 64, proto, 0,
                     socket.inet_aton(src), socket.inet_aton(dst_ip))
    return b"\x08\x00" + ip[:10] + struct.pack("!H", csum(ip)) + ip[12:] + l4
def v6(src, dst_ip, l4):
    return b"\x86\xdd" + struct.pack("!IHBB16s16s", 6 << 28, len(l4), 17, 64,
                                     socket.inet_pton(socket.AF_INET6, src),
                                     socket.inet_pton(socket.AF_INET6, dst_ip)) + l4
udp = struct.pack("!HHHH", 40000, 8125, 12, 0) + b"spof"
syn = struct.pack("!HHIIBBHHH", 40001, 8081, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
udp6 = struct.pack("!HHHH", 40002, 5353, 12, 0) + b"spof"
me = b"\x02\x00\x00\x00\x00\xfe"
for payload in (v4("192.0.2.254", "127.0.0.1", 17, udp), v4("192.0.2.254", "127.0.0.1", 6, syn),
                v6("::ffff:127.0.0.1", "2001:db8::10", udp6)):
    s.send(dst + me + payload)
PY
sleep 0.3
echo '$ loopwarden audit   (excerpt: the anti-spoof findings)'
ip netns exec "$ns" "$bin" audit | grep -A12 'net.no-loopback-antispoof' | grep -v '^tcp\|^udp' || true
