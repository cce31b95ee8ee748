//! Sockets that can receive traffic: inet (TCP/UDP, v4/v6) and named Unix sockets.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Transport protocol of an inet socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (`SOCK_STREAM`).
    Tcp,
    /// UDP (`SOCK_DGRAM`).
    Udp,
}

impl Protocol {
    /// `tcp` or `udp`, as used in service ids.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// The IP protocol number (6, 17), as firewall rules match it.
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
        }
    }
}

/// The socket state as far as reachability is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SocketState {
    /// A TCP socket in `LISTEN`.
    Listen,
    /// A UDP socket bound to a port and not connected: takes datagrams from anyone.
    Unconnected,
    /// A UDP socket connected to one peer (the stub-resolver pattern): takes datagrams only from
    /// that peer address and port — which a spoofer can forge.
    Connected,
}

/// A TCP or UDP socket bound to a local address and port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InetSocket {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Local address; `0.0.0.0` and `::` are wildcards. IPv4-mapped IPv6 addresses are kept as
    /// the kernel reported them.
    pub address: IpAddr,
    /// Local port.
    pub port: u16,
    /// For IPv6 sockets: whether `IPV6_V6ONLY` is set. `Some(false)` on `[::]` means the socket
    /// also takes IPv4. `None` for IPv4 sockets or when the kernel did not say.
    pub v6only: Option<bool>,
    /// Listening, unconnected or connected.
    pub state: SocketState,
    /// For connected UDP sockets: the peer address and port.
    pub peer: Option<(IpAddr, u16)>,
    /// The bound interface (`SO_BINDTODEVICE`), if any.
    pub bound_device: Option<String>,
    /// The uid that created the socket.
    pub uid: u32,
    /// The socket inode, which links it to the processes that hold it.
    pub inode: u64,
    /// Pids of the processes holding a descriptor to this socket (empty when unknown).
    pub owners: Vec<u32>,
}

/// Unix socket type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnixType {
    /// `SOCK_STREAM`.
    Stream,
    /// `SOCK_SEQPACKET`.
    Seqpacket,
    /// `SOCK_DGRAM`.
    Dgram,
}

/// A Unix socket's address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnixName {
    /// A filesystem path: access needs write on the socket and search on every parent.
    Path(String),
    /// An abstract name (leading NUL, shown as `@name`; other NULs shown as `\0`): no
    /// permission check at all.
    Abstract(String),
}

/// A named Unix socket that accepts connections or datagrams.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnixSocket {
    /// Stream, seqpacket or datagram.
    pub kind: UnixType,
    /// Path or abstract name.
    pub name: UnixName,
    /// Whether it is a listening stream/seqpacket socket (datagram sockets: false).
    pub listening: bool,
    /// Socket inode.
    pub inode: u64,
    /// The uid that created the socket, when the kernel reports it (`UDIAG_SHOW_UID`).
    pub uid: Option<u32>,
    /// Owning pids (empty when unknown).
    pub owners: Vec<u32>,
    /// The socket file's metadata, for path sockets, when it could be read.
    pub file: Option<FileMeta>,
    /// Metadata of every directory a client's lookup of the path searches, in order from `/`,
    /// under its resolved name (symlinks followed like `connect(2)` does: `/var/run/x.sock` with
    /// `/var/run -> /run` gives `/`, `/var`, `/run`). When the walk failed, `file` is `None` and
    /// the snapshot's limits say why.
    pub parents: Vec<FileMeta>,
}

/// Owner, group and permission bits of a file or directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Absolute path.
    pub path: String,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
}
