//! Hand-built Ethernet frames: an `AF_PACKET` socket bound to one interface, and the frames the
//! attacks send (spoofed IPv4/IPv6 sources, TCP SYN/ACK, UDP) and read back.

use etherparse::{NetSlice, PacketBuilder, SlicedPacket, TransportSlice};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ETH_P_ALL: u16 = 0x0003;
const PACKET_OUTGOING: u8 = 4;

/// A raw socket on one interface: sends whole frames, receives every frame the interface sees
/// (except its own outgoing ones).
#[derive(Debug)]
pub struct PacketSocket {
    fd: OwnedFd,
    ifindex: i32,
}

impl PacketSocket {
    /// Opens a non-blocking `AF_PACKET`/`SOCK_RAW` socket bound to `ifindex` in the calling
    /// thread's network namespace.
    pub fn open(ifindex: u32) -> io::Result<PacketSocket> {
        // SAFETY: plain socket(2); the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                i32::from(ETH_P_ALL.to_be()),
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a fresh, valid descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let socket = PacketSocket {
            fd,
            ifindex: ifindex as i32,
        };
        let addr = socket.address();
        // SAFETY: addr is a fully initialised sockaddr_ll of the size given.
        let rc = unsafe {
            libc::bind(
                socket.fd.as_raw_fd(),
                &addr as *const libc::sockaddr_ll as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(socket)
    }

    fn address(&self) -> libc::sockaddr_ll {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = ETH_P_ALL.to_be();
        addr.sll_ifindex = self.ifindex;
        addr
    }

    /// Sends one complete Ethernet frame.
    pub fn send(&self, frame: &[u8]) -> io::Result<()> {
        // SAFETY: frame is a valid buffer of the given length.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives the next incoming frame, if one is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> Option<usize> {
        loop {
            // SAFETY: zeroed sockaddr_ll is valid; sizes match the buffers passed.
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    0,
                    &mut from as *mut libc::sockaddr_ll as *mut libc::sockaddr,
                    &mut len,
                )
            };
            if n < 0 {
                return None;
            }
            if from.sll_pkttype != PACKET_OUTGOING {
                return Some(n as usize);
            }
        }
    }
}

/// TCP flags of a hand-built segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpKind {
    /// Opening SYN.
    Syn,
    /// ACK completing the handshake, carrying data.
    AckData {
        /// Acknowledgment number.
        ack: u32,
    },
}

/// Builds an Ethernet frame carrying one UDP datagram or TCP segment from `src` to `dst`
/// (both of one family). Returns `None` for mixed families.
pub fn build(
    src_mac: [u8; 6],
    dst_mac: [u8; 6],
    src: SocketAddr,
    dst: SocketAddr,
    tcp: Option<(TcpKind, u32)>,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let eth = PacketBuilder::ethernet2(src_mac, dst_mac);
    let ip = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => eth.ipv4(s.octets(), d.octets(), 64),
        (IpAddr::V6(s), IpAddr::V6(d)) => eth.ipv6(s.octets(), d.octets(), 64),
        _ => return None,
    };
    let mut frame = Vec::new();
    let written = match tcp {
        None => ip.udp(src.port(), dst.port()).write(&mut frame, payload),
        Some((TcpKind::Syn, seq)) => ip.tcp(src.port(), dst.port(), seq, 64240).syn().write(&mut frame, &[]),
        Some((TcpKind::AckData { ack }, seq)) => ip
            .tcp(src.port(), dst.port(), seq, 64240)
            .ack(ack)
            .psh()
            .write(&mut frame, payload),
    };
    written.ok().map(|_| frame)
}

/// What a received frame says, as far as the lab cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// A TCP segment.
    Tcp {
        /// Source address and port.
        src: SocketAddr,
        /// Destination address and port.
        dst: SocketAddr,
        /// SYN set.
        syn: bool,
        /// ACK set.
        ack: bool,
        /// RST set.
        rst: bool,
        /// Sequence number.
        seq: u32,
    },
    /// An ICMP or ICMPv6 error about a datagram we sent from `quoted_src_port` to
    /// `quoted_dst_port`.
    IcmpError {
        /// The source port of the quoted datagram.
        quoted_src_port: u16,
        /// The destination port of the quoted datagram.
        quoted_dst_port: u16,
        /// `type/code`.
        kind: String,
    },
}

/// Parses an Ethernet frame into what the lab tracks; anything else is `None`.
pub fn parse(frame: &[u8]) -> Option<Seen> {
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    let (src_ip, dst_ip): (IpAddr, IpAddr) = match packet.net.as_ref()? {
        NetSlice::Ipv4(v4) => (v4.header().source_addr().into(), v4.header().destination_addr().into()),
        NetSlice::Ipv6(v6) => (v6.header().source_addr().into(), v6.header().destination_addr().into()),
        NetSlice::Arp(_) => return None,
    };
    match packet.transport.as_ref()? {
        TransportSlice::Tcp(tcp) => Some(Seen::Tcp {
            src: SocketAddr::new(src_ip, tcp.source_port()),
            dst: SocketAddr::new(dst_ip, tcp.destination_port()),
            syn: tcp.syn(),
            ack: tcp.ack(),
            rst: tcp.rst(),
            seq: tcp.sequence_number(),
        }),
        TransportSlice::Icmpv4(icmp) => {
            let (t, c) = (icmp.type_u8(), icmp.code_u8());
            // Destination unreachable (3): the quoted IPv4 header, then the ports.
            let quoted = icmp.payload();
            let ihl = usize::from(quoted.first()? & 0x0f) * 4;
            quoted_ports(quoted.get(ihl..)?)
                .filter(|_| t == 3)
                .map(|(s, d)| Seen::IcmpError {
                    quoted_src_port: s,
                    quoted_dst_port: d,
                    kind: format!("icmp {t}/{c}"),
                })
        }
        TransportSlice::Icmpv6(icmp) => {
            let (t, c) = (icmp.type_u8(), icmp.code_u8());
            // Destination unreachable (1): the quoted 40-byte IPv6 header, then the ports.
            quoted_ports(icmp.payload().get(40..)?)
                .filter(|_| t == 1)
                .map(|(s, d)| Seen::IcmpError {
                    quoted_src_port: s,
                    quoted_dst_port: d,
                    kind: format!("icmpv6 {t}/{c}"),
                })
        }
        _ => None,
    }
}

fn quoted_ports(bytes: &[u8]) -> Option<(u16, u16)> {
    Some((
        u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]),
        u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?]),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_syn_parses_back_with_its_spoofed_source() {
        let src: SocketAddr = "127.0.0.1:40001".parse().unwrap();
        let dst: SocketAddr = "192.0.2.1:22".parse().unwrap();
        let frame = build([2; 6], [4; 6], src, dst, Some((TcpKind::Syn, 1000)), &[]).unwrap();
        assert_eq!(&frame[0..6], &[4; 6]);
        match parse(&frame) {
            Some(Seen::Tcp {
                src: s,
                dst: d,
                syn: true,
                ack: false,
                rst: false,
                seq: 1000,
            }) => {
                assert_eq!((s, d), (src, dst));
            }
            other => panic!("{other:?}"),
        }
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:53".parse().unwrap();
        let v6dst: SocketAddr = "[2001:db8::1]:53".parse().unwrap();
        assert!(build([2; 6], [4; 6], mapped, v6dst, None, b"x").is_some());
        assert!(build([2; 6], [4; 6], src, v6dst, None, b"x").is_none());
    }
}
