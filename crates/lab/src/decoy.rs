//! Decoy listeners: real sockets on the host's addresses and ports, inside a lab namespace,
//! that record every attack token reaching them and the peer address the kernel reported.

use crate::netns::{Namespace, NetnsError};
use loopwarden_core::facts::Protocol;
use socket2::{Domain, SockAddr, Socket, Type};
use std::io::{self, Read};
use std::mem::MaybeUninit;
use std::net::{IpAddr, SocketAddr};

/// The marker that starts every attack token.
pub const TOKEN_PREFIX: &str = "lwtok:";

/// How to open one decoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoySpec {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Bound address and port.
    pub bind: SocketAddr,
    /// `IPV6_V6ONLY` for IPv6 sockets.
    pub v6only: Option<bool>,
    /// For a connected UDP socket: the peer.
    pub peer: Option<SocketAddr>,
}

/// An open decoy and the connections it accepted but has not finished reading.
#[derive(Debug)]
pub struct Decoy {
    socket: Socket,
    protocol: Protocol,
    bind: SocketAddr,
    v6only: Option<bool>,
    pending: Vec<(Socket, SocketAddr, Vec<u8>)>,
}

/// One token that reached a decoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    /// The token text (without the prefix).
    pub token: String,
    /// The peer address the application saw.
    pub peer: SocketAddr,
}

/// Opens `specs` inside `ns`, in order. A decoy the kernel refuses (two host sockets that
/// shared a port through `SO_REUSEPORT`, say) is `None`, with the reason in the second list.
pub fn open_all(ns: &Namespace, specs: Vec<DecoySpec>) -> Result<(Vec<Option<Decoy>>, Vec<String>), NetnsError> {
    ns.run_in(move || {
        let mut notes = Vec::new();
        let decoys = specs
            .into_iter()
            .map(|s| {
                open(&s)
                    .map_err(|e| {
                        notes.push(format!(
                            "no decoy for {} {}: {e}; its attacks were not run",
                            s.protocol.as_str(),
                            s.bind
                        ))
                    })
                    .ok()
            })
            .collect();
        (decoys, notes)
    })
}

fn open(spec: &DecoySpec) -> io::Result<Decoy> {
    let domain = if spec.bind.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let ty = match spec.protocol {
        Protocol::Tcp => Type::STREAM,
        Protocol::Udp => Type::DGRAM,
    };
    let socket = Socket::new(domain, ty, None)?;
    socket.set_reuse_address(true)?;
    if let (true, Some(v6only)) = (spec.bind.is_ipv6(), spec.v6only) {
        socket.set_only_v6(v6only)?;
    }
    socket.bind(&spec.bind.into())?;
    match spec.protocol {
        Protocol::Tcp => socket.listen(128)?,
        Protocol::Udp => {
            if let Some(peer) = spec.peer {
                socket.connect(&peer.into())?;
            }
        }
    }
    socket.set_nonblocking(true)?;
    Ok(Decoy {
        socket,
        protocol: spec.protocol,
        bind: spec.bind,
        v6only: spec.v6only,
        pending: Vec::new(),
    })
}

impl Decoy {
    /// Whether the kernel could deliver a packet addressed to `dst` to this socket as addressed:
    /// the same port, and the same address or a wildcard of the family (a dual-stack `[::]`
    /// takes IPv4 too). A token that turns up here otherwise was rewritten on the way (NAT).
    pub fn takes(&self, dst: SocketAddr) -> bool {
        let ip = self.bind.ip();
        let wildcard_for = match (ip, dst.ip()) {
            (std::net::IpAddr::V4(a), std::net::IpAddr::V4(_)) => a.is_unspecified(),
            (std::net::IpAddr::V6(a), std::net::IpAddr::V6(_)) => a.is_unspecified(),
            (std::net::IpAddr::V6(a), std::net::IpAddr::V4(_)) => a.is_unspecified() && self.v6only == Some(false),
            _ => false,
        };
        self.bind.port() == dst.port() && (ip == dst.ip() || wildcard_for)
    }

    /// Collects every token that arrived since the last call: accepts waiting connections,
    /// reads what they sent, drains datagrams.
    pub fn poll(&mut self) -> Vec<Arrival> {
        let mut out = Vec::new();
        match self.protocol {
            Protocol::Udp => {
                let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
                while let Ok((n, from)) = self.socket.recv_from(&mut buf) {
                    // SAFETY: recv_from initialised the first n bytes.
                    let bytes: Vec<u8> = buf[..n].iter().map(|b| unsafe { b.assume_init() }).collect();
                    if let Some(peer) = socket_addr(&from) {
                        out.extend(tokens(&bytes).into_iter().map(|token| Arrival { token, peer }));
                    }
                }
            }
            Protocol::Tcp => {
                while let Ok((stream, from)) = self.socket.accept() {
                    if let (Some(peer), Ok(())) = (socket_addr(&from), stream.set_nonblocking(true)) {
                        self.pending.push((stream, peer, Vec::new()));
                    }
                }
                self.pending.retain_mut(|(stream, peer, data)| {
                    let mut buf = [0u8; 2048];
                    let open = loop {
                        match stream.read(&mut buf) {
                            Ok(0) => break false,
                            Ok(n) => data.extend_from_slice(&buf[..n]),
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break true,
                            Err(_) => break false,
                        }
                    };
                    let found = tokens(data);
                    let done = !found.is_empty();
                    out.extend(found.into_iter().map(|token| Arrival { token, peer: *peer }));
                    open && !done
                });
            }
        }
        out
    }
}

/// The tokens in a payload: `lwtok:<token>` up to a newline.
pub fn tokens(data: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(data);
    text.match_indices(TOKEN_PREFIX)
        .filter_map(|(i, _)| {
            let rest = &text[i + TOKEN_PREFIX.len()..];
            let end = rest.find('\n')?;
            Some(rest[..end].to_string())
        })
        .collect()
}

fn socket_addr(addr: &SockAddr) -> Option<SocketAddr> {
    addr.as_socket()
}

/// Whether the peer an application saw is a loopback address (IPv4-mapped included) — the
/// case that fools address-based access control.
pub fn peer_is_loopback(peer: &SocketAddr) -> bool {
    loopwarden_core::addr::is_loopback(peer.ip())
}

/// A local client inside `ns`: connects (TCP) or sends (UDP) `payload` to `dst`, from a
/// loopback source of the same family. Used for the local-client controls.
pub fn local_client(
    ns: &Namespace,
    protocol: Protocol,
    dst: SocketAddr,
    payload: Vec<u8>,
) -> Result<io::Result<()>, NetnsError> {
    ns.run_in(move || -> io::Result<()> {
        let domain = if dst.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
        let target = match dst.ip() {
            ip if ip.is_unspecified() && dst.is_ipv6() => {
                SocketAddr::new(IpAddr::from(std::net::Ipv6Addr::LOCALHOST), dst.port())
            }
            ip if ip.is_unspecified() => SocketAddr::new(IpAddr::from([127, 0, 0, 1]), dst.port()),
            _ => dst,
        };
        match protocol {
            Protocol::Tcp => {
                let socket = Socket::new(domain, Type::STREAM, None)?;
                socket.connect_timeout(&target.into(), std::time::Duration::from_millis(500))?;
                let mut written = 0;
                while written < payload.len() {
                    written += socket.send(&payload[written..])?;
                }
                Ok(())
            }
            Protocol::Udp => {
                let socket = Socket::new(domain, Type::DGRAM, None)?;
                socket.send_to(&payload, &target.into()).map(|_| ())
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_found_only_when_complete() {
        assert_eq!(tokens(b"xx lwtok:7:abc\nlwtok:8:def\n"), vec!["7:abc", "8:def"]);
        assert!(tokens(b"lwtok:7:ab").is_empty());
        assert!(peer_is_loopback(&"[::ffff:127.0.0.1]:9".parse().unwrap()));
        assert!(!peer_is_loopback(&"192.0.2.254:9".parse().unwrap()));
    }
}
