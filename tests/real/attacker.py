#!/usr/bin/python3
"""An independent LAN attacker for loopwarden's truth tests, built on Debian's python3-scapy.

It is deliberately not loopwarden's lab code: frames are built by scapy and sent on a raw
AF_PACKET socket of the interface it is given, to the MAC address the test names (the victim's
interface, or a Docker bridge seen from a container).

The attacker "claims" an IPv4 and an IPv6 address its own kernel does not have: it answers ARP
and neighbour solicitations for them itself (a victim with route_localnet=1 asks "who-has X tell
127.0.0.1", which a Linux neighbour ignores; a real attacker answers), and its kernel drops the
victim's replies to them silently instead of resetting a handshake it never started.

Protocol: one JSON object per line on stdin, one JSON answer per line on stdout.
  {"op": "udp", "dst_mac", "src", "dst", "sport", "dport", "payload"}        -> {"ok": true}
  {"op": "tcp", "dst_mac", "src", "dst", "sport", "dport", "payload",
   "timeout"}                                      -> {"synack": bool, "synack_src": str|null,
                                                       "established": bool, "data_acked": bool}
  {"op": "neighbour_requests"}  -> {"requests": [{"family", "asker", "target"}, ...]}
A TCP attack completes the handshake only when its source is a claimed address (otherwise the
SYN-ACK goes elsewhere and the attack is a blind SYN). Prints {"ready": true, "mac": ...} first.
"""

import argparse
import json
import queue
import sys
import threading
import time

from scapy.all import (  # noqa: E402  (scapy is imported for its side effects too)
    ARP,
    AsyncSniffer,
    Ether,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6NDOptDstLLAddr,
    IP,
    IPv6,
    TCP,
    UDP,
    conf,
    get_if_hwaddr,
)

conf.verb = 0


def network_layer(src, dst):
    """IPv4 or IPv6 header for the given addresses (IPv6 when either has a colon)."""
    if ":" in src or ":" in dst:
        return IPv6(src=src, dst=dst, hlim=64)
    return IP(src=src, dst=dst, ttl=64)


class Attacker:
    def __init__(self, iface, claims):
        self.iface = iface
        self.mac = get_if_hwaddr(iface)
        self.claims = set(claims)
        self.socket = conf.L2socket(iface=iface)
        self.replies = queue.Queue()
        self.requests = []
        self.lock = threading.Lock()
        self.sniffer = AsyncSniffer(iface=iface, store=False, prn=self.on_frame)
        self.sniffer.start()
        # AsyncSniffer opens its socket on its own thread: wait until it is there.
        deadline = time.time() + 5
        while getattr(self.sniffer, "running", False) is False and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)

    def send(self, frame):
        self.socket.send(frame)

    def on_frame(self, frame):
        if frame.haslayer(ARP) and frame[ARP].op == 1:
            self.note("ipv4", frame[ARP].psrc, frame[ARP].pdst)
            if frame[ARP].pdst in self.claims:
                # Linux ignores an ARP reply addressed to 127/8 unless route_localnet is on for
                # the interface (arp_process): to a loopback asker, answer in the gratuitous
                # form (target = the claimed address), which updates its pending entry all the same.
                asker = frame[ARP].psrc
                target = frame[ARP].pdst if asker.startswith("127.") else asker
                self.send(
                    Ether(dst=frame[Ether].src, src=self.mac)
                    / ARP(op=2, hwsrc=self.mac, psrc=frame[ARP].pdst, hwdst=frame[ARP].hwsrc, pdst=target)
                )
            return
        if frame.haslayer(ICMPv6ND_NS):
            target = frame[ICMPv6ND_NS].tgt
            self.note("ipv6", frame[IPv6].src, target)
            if target in self.claims:
                self.send(
                    Ether(dst=frame[Ether].src, src=self.mac)
                    / IPv6(src=target, dst=frame[IPv6].src, hlim=255)
                    / ICMPv6ND_NA(tgt=target, R=0, S=1, O=1)
                    / ICMPv6NDOptDstLLAddr(lladdr=self.mac)
                )
            return
        if frame.haslayer(TCP) and frame[Ether].src != self.mac:
            self.replies.put(frame)

    def note(self, family, asker, target):
        with self.lock:
            self.requests.append({"family": family, "asker": asker, "target": target})

    def udp(self, cmd):
        self.send(
            Ether(dst=cmd["dst_mac"], src=self.mac)
            / network_layer(cmd["src"], cmd["dst"])
            / UDP(sport=cmd["sport"], dport=cmd["dport"])
            / cmd["payload"].encode()
        )
        return {"ok": True}

    def await_tcp(self, cmd, flags, deadline):
        """The next TCP segment from the victim for this attack's ports with all `flags` set."""
        while time.time() < deadline:
            try:
                frame = self.replies.get(timeout=max(0.01, deadline - time.time()))
            except queue.Empty:
                break
            seg = frame[TCP]
            if seg.sport == cmd["dport"] and seg.dport == cmd["sport"] and (seg.flags & flags) == flags:
                return frame
        return None

    def tcp(self, cmd):
        result = {"synack": False, "synack_src": None, "established": False, "data_acked": False}
        l3 = network_layer(cmd["src"], cmd["dst"])
        ether = Ether(dst=cmd["dst_mac"], src=self.mac)
        seq = 1000
        deadline = time.time() + cmd.get("timeout", 1.0)
        self.drain()
        self.send(ether / l3 / TCP(sport=cmd["sport"], dport=cmd["dport"], flags="S", seq=seq, window=64240))
        if cmd["src"] not in self.claims:
            return result
        synack = self.await_tcp(cmd, 0x12, deadline)
        if synack is None:
            return result
        net = synack[IPv6] if synack.haslayer(IPv6) else synack[IP]
        result["synack"] = True
        result["synack_src"] = net.src
        ack = synack[TCP].seq + 1
        payload = cmd["payload"].encode()
        self.send(ether / l3 / TCP(sport=cmd["sport"], dport=cmd["dport"], flags="A", seq=seq + 1, ack=ack))
        result["established"] = True
        self.send(
            ether / l3 / TCP(sport=cmd["sport"], dport=cmd["dport"], flags="PA", seq=seq + 1, ack=ack) / payload
        )
        acked = self.await_tcp(cmd, 0x10, time.time() + cmd.get("timeout", 1.0))
        while acked is not None and acked[TCP].ack < seq + 1 + len(payload):
            acked = self.await_tcp(cmd, 0x10, time.time() + cmd.get("timeout", 1.0))
        result["data_acked"] = acked is not None
        # Close politely so the application sees end of stream.
        self.send(
            ether
            / l3
            / TCP(sport=cmd["sport"], dport=cmd["dport"], flags="FA", seq=seq + 1 + len(payload), ack=ack)
        )
        return result

    def drain(self):
        while True:
            try:
                self.replies.get_nowait()
            except queue.Empty:
                return

    def neighbour_requests(self, _cmd):
        with self.lock:
            return {"requests": list(self.requests)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iface", required=True)
    parser.add_argument("--claim", action="append", default=[], help="an address to answer ARP/ND for")
    args = parser.parse_args()
    attacker = Attacker(args.iface, args.claim)
    ops = {"udp": attacker.udp, "tcp": attacker.tcp, "neighbour_requests": attacker.neighbour_requests}
    print(json.dumps({"ready": True, "mac": attacker.mac}), flush=True)
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
            answer = ops[cmd["op"]](cmd)
        except Exception as exc:  # one bad command must not end the attacker: report it
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()
