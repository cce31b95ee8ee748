#!/usr/bin/python3
"""The victim side of loopwarden's truth tests: real sockets that log what really arrived.

Each socket is named on the command line as PROTO:ADDRESS:PORT with PROTO tcp or udp (an IPv6
address in brackets; `[::]` sockets are dual-stack unless PROTO is tcp6only/udp6only). For every
datagram, and for every accepted TCP connection once it sent data or closed, one JSON line is
printed: {"socket": "udp:[::]:9002", "peer": "::ffff:127.0.0.1", "peer_port": 1234, "data": "..."}.
`peer` is what the application itself sees (getpeername / recvfrom), which is what a service that
trusts loopback peers would judge. Prints {"ready": true} once every socket is bound.
"""

import json
import select
import socket
import sys
import threading

lock = threading.Lock()


def emit(event):
    with lock:
        print(json.dumps(event), flush=True)


def parse(spec):
    proto, rest = spec.split(":", 1)
    addr, port = rest.rsplit(":", 1)
    return proto, addr.strip("[]"), int(port)


def open_socket(spec):
    proto, addr, port = parse(spec)
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    kind = socket.SOCK_STREAM if proto.startswith("tcp") else socket.SOCK_DGRAM
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1 if proto.endswith("6only") else 0)
    sock.bind((addr, port))
    if kind == socket.SOCK_STREAM:
        sock.listen(16)
    name = proto.replace("6only", "") + ":" + (f"[{addr}]" if family == socket.AF_INET6 else addr) + f":{port}"
    return name, kind, sock


def serve_connection(name, conn, peer):
    conn.settimeout(3.0)
    data = b""
    try:
        while len(data) < 4096:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
            if b"\n" in chunk:
                break
    except OSError:
        pass
    finally:
        conn.close()
    emit({"socket": name, "peer": peer[0], "peer_port": peer[1], "data": data.decode(errors="replace")})


def main():
    sockets = [open_socket(spec) for spec in sys.argv[1:]]
    print(json.dumps({"ready": True}), flush=True)
    by_fd = {sock.fileno(): (name, kind, sock) for name, kind, sock in sockets}
    while True:
        readable, _, _ = select.select(list(by_fd), [], [])
        for fd in readable:
            name, kind, sock = by_fd[fd]
            if kind == socket.SOCK_DGRAM:
                data, peer = sock.recvfrom(65535)
                emit({"socket": name, "peer": peer[0], "peer_port": peer[1], "data": data.decode(errors="replace")})
            else:
                conn, peer = sock.accept()
                threading.Thread(target=serve_connection, args=(name, conn, peer), daemon=True).start()


if __name__ == "__main__":
    main()
