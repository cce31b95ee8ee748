//! TCP listeners and bound UDP sockets (IPv4 and IPv6) from `inet_diag`.

use crate::facts::{InetSocket, Protocol, SocketState};
use netlink_packet_sock_diag::constants::{
    AF_INET, AF_INET6, IPPROTO_TCP, IPPROTO_UDP, TCP_CLOSE, TCP_ESTABLISHED, TCP_LISTEN,
};
use netlink_packet_sock_diag::inet::{nlas::Nla, ExtensionFlags, InetRequest, InetResponse, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;

/// One `inet_diag` dump: an address family and a protocol, with the states worth reporting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InetDump {
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    /// TCP or UDP.
    pub protocol: Protocol,
}

/// The four dumps that make up the inet inventory.
pub const DUMPS: [InetDump; 4] = [
    InetDump {
        family: AF_INET,
        protocol: Protocol::Tcp,
    },
    InetDump {
        family: AF_INET6,
        protocol: Protocol::Tcp,
    },
    InetDump {
        family: AF_INET,
        protocol: Protocol::Udp,
    },
    InetDump {
        family: AF_INET6,
        protocol: Protocol::Udp,
    },
];

impl InetDump {
    /// `tcp`, `tcp6`, `udp`, `udp6`: the `/proc/net` file with the same sockets, and the name
    /// used in limits.
    pub fn proc_name(self) -> &'static str {
        match (self.protocol, self.family == AF_INET6) {
            (Protocol::Tcp, false) => "tcp",
            (Protocol::Tcp, true) => "tcp6",
            (Protocol::Udp, false) => "udp",
            (Protocol::Udp, true) => "udp6",
        }
    }

    /// The dump request. The kernel filters by state: TCP `LISTEN`; UDP `CLOSE` (bound, not
    /// connected) and `ESTABLISHED` (connected). No extensions are needed: uid, inode and bound
    /// interface are in the fixed header, and `INET_DIAG_SKV6ONLY` comes unasked for IPv6
    /// sockets in `LISTEN`/`CLOSE`.
    pub fn request(self) -> SockDiagMessage {
        let (protocol, states) = match self.protocol {
            Protocol::Tcp => (IPPROTO_TCP, StateFlags::LISTEN),
            Protocol::Udp => (IPPROTO_UDP, StateFlags::CLOSE | StateFlags::ESTABLISHED),
        };
        SockDiagMessage::InetRequest(InetRequest {
            family: self.family,
            protocol,
            extensions: ExtensionFlags::empty(),
            states,
            socket_id: if self.family == AF_INET6 {
                SocketId::new_v6()
            } else {
                SocketId::new_v4()
            },
        })
    }

    /// Converts one answer into a socket, naming the interface of a bound socket with
    /// `device_name`; `None` for states this dump does not report (the kernel filter already
    /// excludes them) and for sockets without a port.
    pub fn socket(self, response: &InetResponse, device_name: impl Fn(u32) -> String) -> Option<InetSocket> {
        let id = &response.header.socket_id;
        let state = match (self.protocol, response.header.state) {
            (Protocol::Tcp, TCP_LISTEN) => SocketState::Listen,
            (Protocol::Udp, TCP_CLOSE) => SocketState::Unconnected,
            (Protocol::Udp, TCP_ESTABLISHED) => SocketState::Connected,
            _ => return None,
        };
        if id.source_port == 0 {
            return None;
        }
        let v6only = if response.header.family == AF_INET6 {
            response.nlas.iter().find_map(|nla| match nla {
                Nla::SkV6Only(v) => Some(*v),
                _ => None,
            })
        } else {
            None
        };
        Some(InetSocket {
            protocol: self.protocol,
            address: id.source_address,
            port: id.source_port,
            v6only,
            state,
            peer: (state == SocketState::Connected).then_some((id.destination_address, id.destination_port)),
            bound_device: (id.interface_id != 0).then(|| device_name(id.interface_id)),
            uid: response.header.uid,
            inode: u64::from(response.header.inode),
            owners: Vec::new(),
        })
    }
}
