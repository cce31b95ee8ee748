//! The uid behind a loopback TCP connection, from one exact `inet_diag` request.
//!
//! The client's own socket is looked up by the connection's 4-tuple (its local address and
//! port, the front's address and port) without `NLM_F_DUMP`, with the cookie set to
//! `INET_DIAG_NOCOOKIE` (all `0xff`: `SocketId::new_v4()` leaves it zero, which the kernel
//! would compare). Unprivileged, about 3 µs. An IPv4 connection on a dual-stack socket shows as
//! `::ffff:a.b.c.d`: it is asked for as IPv4 with the unmapped address, which is how the kernel
//! hashes it. The reply is queued while the request is sent, so the receive never waits.

use netlink_packet_core::{NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_REQUEST};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
use netlink_sys::constants::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr as NetlinkAddr};
use std::cell::RefCell;
use std::net::SocketAddr;

/// `INET_DIAG_NOCOOKIE`: "do not compare the cookie".
const NO_COOKIE: [u8; 8] = [0xff; 8];
/// TCP state of sockets that no process holds any more.
const TCP_TIME_WAIT: u8 = 6;
/// A connection whose handshake the server has not completed (a request socket).
const TCP_NEW_SYN_RECV: u8 = 12;
/// Large enough for one socket's reply with any attributes the kernel adds unasked.
const REPLY_BUFFER: usize = 8 * 1024;

/// The client socket found for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSocket {
    /// The uid that created the client's socket.
    pub uid: u32,
    /// The socket's inode (to find the process holding it).
    pub inode: u32,
}

/// Why a peer could not be identified (the connection is then refused).
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The netlink socket could not be opened or used.
    #[error("sock_diag netlink socket: {0}")]
    Netlink(#[source] std::io::Error),
    /// The kernel has no such socket: the client is not on this host's loopback (a spoofed or
    /// routed connection), or it closed its socket already.
    #[error("no local socket for {peer} -> {front}: the client is not a local process, or it closed its socket")]
    NotFound {
        /// The client's address.
        peer: SocketAddr,
        /// The front's address.
        front: SocketAddr,
    },
    /// The client's socket is held by no process (closed, in TIME_WAIT): nobody to name.
    #[error("the client's socket for {peer} is closed (no process holds it)")]
    Orphaned {
        /// The client's address.
        peer: SocketAddr,
    },
    /// The kernel answered something else than one socket.
    #[error("unexpected sock_diag answer: {0}")]
    Unexpected(String),
}

struct Diag {
    socket: Socket,
    sequence: u32,
    buffer: Vec<u8>,
}

thread_local! {
    static DIAG: RefCell<Option<Diag>> = const { RefCell::new(None) };
}

/// Looks up the client socket of a connection the guard accepted: `front` is the accepted
/// socket's local address, `peer` its remote address.
pub fn lookup(front: SocketAddr, peer: SocketAddr) -> Result<ClientSocket, LookupError> {
    let found = ask(front, peer)?;
    if found.inode == 0 || found.state == TCP_TIME_WAIT {
        return Err(LookupError::Orphaned { peer });
    }
    Ok(ClientSocket {
        uid: found.uid,
        inode: found.inode,
    })
}

/// The uid of the listener that took a connection the guard made: `local` is the guard's end,
/// `server` the address it connected to. The server's end of the connection — accepted or still
/// in the accept queue — carries the uid of the listening socket it was cloned from, so this
/// names who really received the connection (not who held the port earlier). `None` while the
/// server's end is still a request socket (the handshake's last ACK not yet processed: the
/// kernel reports uid 0 for those), to ask again.
pub fn listener_uid(local: SocketAddr, server: SocketAddr) -> Result<Option<u32>, LookupError> {
    let found = ask(local, server)?;
    if found.state == TCP_NEW_SYN_RECV {
        return Ok(None);
    }
    if found.state == TCP_TIME_WAIT {
        return Err(LookupError::Orphaned { peer: server });
    }
    Ok(Some(found.uid))
}

/// One exact request on this thread's netlink socket.
fn ask(front: SocketAddr, peer: SocketAddr) -> Result<Found, LookupError> {
    DIAG.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(Diag::open().map_err(LookupError::Netlink)?);
        }
        let diag = slot
            .as_mut()
            .ok_or_else(|| LookupError::Unexpected("no socket".into()))?;
        let result = diag.ask(front, peer);
        if matches!(result, Err(LookupError::Netlink(_)) | Err(LookupError::Unexpected(_))) {
            *slot = None; // a fresh socket next time: no stale reply can be read as an answer
        }
        result
    })
}

/// What the kernel said about one socket.
struct Found {
    uid: u32,
    inode: u32,
    state: u8,
}

impl Diag {
    fn open() -> std::io::Result<Diag> {
        let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
        socket.bind_auto()?;
        socket.connect(&NetlinkAddr::new(0, 0))?;
        Ok(Diag {
            socket,
            sequence: 0,
            buffer: Vec::with_capacity(REPLY_BUFFER),
        })
    }

    fn ask(&mut self, front: SocketAddr, peer: SocketAddr) -> Result<Found, LookupError> {
        let (family, src, dst) = tuple(peer, front);
        let mut id = if family == AF_INET6 {
            SocketId::new_v6()
        } else {
            SocketId::new_v4()
        };
        id.source_address = src.ip();
        id.source_port = src.port();
        id.destination_address = dst.ip();
        id.destination_port = dst.port();
        id.cookie = NO_COOKIE;
        let request = SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id: id,
        });
        self.sequence = self.sequence.wrapping_add(1);
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST;
        header.sequence_number = self.sequence;
        let mut message = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(request));
        message.finalize();
        let mut out = [0u8; 128];
        let len = message.buffer_len();
        message.serialize(&mut out[..len]);
        self.socket.send(&out[..len], 0).map_err(LookupError::Netlink)?;
        self.buffer.clear();
        let got = self
            .socket
            .recv(&mut self.buffer, libc::MSG_DONTWAIT | libc::MSG_TRUNC)
            .map_err(LookupError::Netlink)?;
        if got > self.buffer.capacity() {
            return Err(LookupError::Unexpected(format!("reply of {got} bytes truncated")));
        }
        let reply = NetlinkMessage::<SockDiagMessage>::deserialize(&self.buffer)
            .map_err(|e| LookupError::Unexpected(e.to_string()))?;
        if reply.header.sequence_number != self.sequence {
            return Err(LookupError::Unexpected("reply to another request".into()));
        }
        match reply.payload {
            NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                // A dual-stack client socket answers with its IPv4-mapped addresses.
                let found = &r.header.socket_id;
                let unmap = loopwarden_core::addr::unmapped;
                if (unmap(found.source_address), found.source_port) != (src.ip(), src.port())
                    || (unmap(found.destination_address), found.destination_port) != (dst.ip(), dst.port())
                {
                    return Err(LookupError::Unexpected(
                        "the kernel answered with another socket".into(),
                    ));
                }
                Ok(Found {
                    uid: r.header.uid,
                    inode: r.header.inode,
                    state: r.header.state,
                })
            }
            NetlinkPayload::Error(e) if e.code.is_some() => {
                let err = e.to_io();
                if err.raw_os_error() == Some(libc::ENOENT) {
                    Err(LookupError::NotFound { peer, front })
                } else {
                    Err(LookupError::Netlink(err))
                }
            }
            other => Err(LookupError::Unexpected(format!("{other:?}"))),
        }
    }
}

/// The request's family and the client socket's (local, remote) pair, IPv4-mapped addresses
/// unmapped.
fn tuple(peer: SocketAddr, front: SocketAddr) -> (u8, SocketAddr, SocketAddr) {
    let unmap = |a: SocketAddr| SocketAddr::new(loopwarden_core::addr::unmapped(a.ip()), a.port());
    let (peer, front) = (unmap(peer), unmap(front));
    let family = if peer.is_ipv4() { AF_INET } else { AF_INET6 };
    (family, peer, front)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    fn own_uid() -> u32 {
        rustix::process::getuid().as_raw()
    }

    #[test]
    fn finds_the_clients_uid_on_both_families() {
        for addr in ["127.0.0.1:0", "[::1]:0"] {
            let listener = TcpListener::bind(addr).unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            let (accepted, peer) = listener.accept().unwrap();
            let found = lookup(accepted.local_addr().unwrap(), peer).unwrap();
            assert_eq!(found.uid, own_uid());
            assert_ne!(found.inode, 0);
            drop(client);
        }
    }

    #[test]
    fn a_dual_stack_client_is_found_through_its_unmapped_address() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let socket = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::STREAM, None).unwrap();
        socket.set_only_v6(false).unwrap();
        let mapped: SocketAddr = format!("[::ffff:127.0.0.1]:{port}").parse().unwrap();
        socket.connect(&mapped.into()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        let front = SocketAddr::new("::ffff:127.0.0.1".parse().unwrap(), port);
        assert_eq!(lookup(front, peer).unwrap().uid, own_uid());
        assert_eq!(lookup(accepted.local_addr().unwrap(), peer).unwrap().uid, own_uid());
    }

    #[test]
    fn the_listeners_uid_is_found_from_the_connecting_side() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let server = listener.local_addr().unwrap();
        let client = TcpStream::connect(server).unwrap();
        let local = client.local_addr().unwrap();
        // Not accepted yet: the server's end waits in the accept queue with the listener's uid.
        let mut uid = None;
        for _ in 0..100 {
            uid = listener_uid(local, server).unwrap();
            if uid.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(uid, Some(own_uid()));
    }

    #[test]
    fn a_tuple_with_no_local_client_is_not_found() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let front = listener.local_addr().unwrap();
        let err = lookup(front, "127.0.0.1:1".parse().unwrap()).unwrap_err();
        assert!(matches!(err, LookupError::NotFound { .. }), "{err}");
    }

    #[test]
    fn a_client_that_closed_before_the_lookup_is_not_named() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, peer) = listener.accept().unwrap();
        drop(client);
        std::thread::sleep(std::time::Duration::from_millis(50));
        let err = lookup(accepted.local_addr().unwrap(), peer).unwrap_err();
        assert!(
            matches!(err, LookupError::Orphaned { .. } | LookupError::NotFound { .. }),
            "{err}"
        );
    }
}
