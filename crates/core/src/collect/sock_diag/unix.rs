//! Named Unix sockets that accept connections or datagrams, from `unix_diag`.

use crate::facts::{UnixName, UnixSocket, UnixType};
use netlink_packet_core::{Emitable, Nla as _};
use netlink_packet_sock_diag::constants::{
    SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, TCP_CLOSE, TCP_ESTABLISHED, TCP_LISTEN, UDIAG_SHOW_NAME, UDIAG_SHOW_PEER,
    UDIAG_SHOW_VFS,
};
use netlink_packet_sock_diag::unix::{
    nlas::{Nla, UnixDiagName},
    ShowFlags, StateFlags, UnixRequest, UnixResponse,
};
use netlink_packet_sock_diag::SockDiagMessage;
use std::path::PathBuf;

/// `UDIAG_SHOW_UID`: ask for the creator's uid (`UNIX_DIAG_UID`), which the crate does not model.
const UDIAG_SHOW_UID: u32 = 0x40;
/// `UNIX_DIAG_UID`: the attribute that carries it, a native-endian `u32`.
const UNIX_DIAG_UID: u16 = 7;

/// Where a path socket's inode lives: what the socket was bound to, to tell whether the file now
/// at its path is still that socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfsId {
    /// Inode number of the socket file.
    pub inode: u64,
    /// Device major number of its filesystem.
    pub major: u32,
    /// Device minor number of its filesystem.
    pub minor: u32,
}

impl VfsId {
    /// From `struct unix_diag_vfs`, whose device is the kernel's internal `dev_t`
    /// (`major << 20 | minor`), not the `stat` encoding.
    pub fn from_kernel(inode: u32, dev: u32) -> VfsId {
        VfsId {
            inode: u64::from(inode),
            major: dev >> 20,
            minor: dev & 0xf_ffff,
        }
    }
}

/// A named Unix socket as the kernel reported it, with what the file collector needs.
#[derive(Debug, Clone)]
pub struct DiagUnix {
    /// The socket fact (file metadata still empty).
    pub socket: UnixSocket,
    /// For path sockets: the path exactly as bound (bytes, not lossily converted).
    pub path: Option<PathBuf>,
    /// For path sockets: the bound inode.
    pub vfs: Option<VfsId>,
}

/// The dump request, with name, bound inode, peer and uid. States: `LISTEN`, and for datagram
/// sockets both `CLOSE` and `ESTABLISHED`: since Linux 5.x a datagram `connect` marks the
/// *target* `ESTABLISHED` too, although it still takes datagrams from anyone (`/dev/log`).
pub fn request() -> SockDiagMessage {
    SockDiagMessage::UnixRequest(UnixRequest {
        state_flags: StateFlags::from_bits_retain((1 << TCP_LISTEN) | (1 << TCP_CLOSE) | (1 << TCP_ESTABLISHED)),
        inode: 0,
        show_flags: ShowFlags::from_bits_retain(UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER | UDIAG_SHOW_UID),
        cookie: [0xff; 8],
    })
}

/// Converts one answer into a socket when it can be reached by name: a listening stream or
/// seqpacket socket, or a datagram socket with a name and no peer of its own (a connected
/// datagram socket takes datagrams only from its peer). Unnamed sockets, bound-but-not-listening
/// and accepted stream sockets are `None`.
pub fn socket(response: &UnixResponse) -> Option<DiagUnix> {
    let kind = match response.header.kind {
        SOCK_STREAM => UnixType::Stream,
        SOCK_SEQPACKET => UnixType::Seqpacket,
        SOCK_DGRAM => UnixType::Dgram,
        _ => return None,
    };
    let listening = response.header.state == TCP_LISTEN;
    let reachable = match kind {
        UnixType::Stream | UnixType::Seqpacket => listening,
        UnixType::Dgram => response.peer().is_none(),
    };
    if !reachable {
        return None;
    }
    let (name, path) = match response.name()? {
        UnixDiagName::Pathname(path) => (
            UnixName::Path(path.to_string_lossy().into_owned()),
            Some(PathBuf::from(path)),
        ),
        UnixDiagName::Abstract(bytes) => (UnixName::Abstract(printable_abstract(bytes)), None),
    };
    let mut uid = None;
    let mut vfs = None;
    for nla in &response.nlas {
        match nla {
            Nla::Vfs(v) => vfs = Some(vfs_id(v)),
            Nla::Other(raw) if raw.kind() == UNIX_DIAG_UID && raw.value_len() == 4 => {
                let mut value = [0u8; 4];
                raw.emit_value(&mut value);
                uid = Some(u32::from_ne_bytes(value));
            }
            _ => {}
        }
    }
    Some(DiagUnix {
        socket: UnixSocket {
            kind,
            name,
            listening,
            inode: u64::from(response.header.inode),
            uid,
            owners: Vec::new(),
            file: None,
            parents: Vec::new(),
        },
        vfs: if path.is_some() { vfs } else { None },
        path,
    })
}

/// The crate keeps `unix_diag_vfs` private; its wire form is two native-endian `u32`s.
fn vfs_id(vfs: &netlink_packet_sock_diag::unix::nlas::Vfs) -> VfsId {
    let mut raw = [0u8; 8];
    vfs.emit(&mut raw);
    let inode = u32::from_ne_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let dev = u32::from_ne_bytes([raw[4], raw[5], raw[6], raw[7]]);
    VfsId::from_kernel(inode, dev)
}

/// An abstract name (without its leading NUL) as printable text: NUL as `\0`, a backslash as
/// `\\`, other control characters and bytes that are not UTF-8 as `\xNN`. Distinct names stay
/// distinct.
pub fn printable_abstract(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\0' => out.push_str("\\0"),
                '\\' => out.push_str("\\\\"),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_names_stay_printable_and_distinct() {
        assert_eq!(printable_abstract(b"/tmp/.X11-unix/X0"), "/tmp/.X11-unix/X0");
        assert_eq!(printable_abstract(b"a\0b"), "a\\0b");
        assert_eq!(printable_abstract(b"a\\0b"), "a\\\\0b");
        assert_eq!(printable_abstract(b"x\x01\xffy"), "x\\x01\\xffy");
    }

    #[test]
    fn kernel_dev_t_splits_into_major_minor() {
        // 0:27 as `struct super_block::s_dev` has it (MKDEV(0, 27)).
        assert_eq!(
            VfsId::from_kernel(42, 27),
            VfsId {
                inode: 42,
                major: 0,
                minor: 27
            }
        );
        assert_eq!(
            VfsId::from_kernel(7, (8 << 20) | 1),
            VfsId {
                inode: 7,
                major: 8,
                minor: 1
            }
        );
    }
}
