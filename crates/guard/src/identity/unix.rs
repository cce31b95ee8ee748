//! The identity of a Unix-socket peer: `SO_PEERCRED` (pid, uid, gid at connect time),
//! `SO_PEERGROUPS` (its supplementary groups) and, on Linux 6.5+, `SO_PEERPIDFD` (a pidfd of
//! the connecting process, which names it without the pid-reuse race).

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};

/// `SO_PEERGROUPS` (asm-generic value: x86, arm, riscv …; not exported by `libc` there).
const SO_PEERGROUPS: libc::c_int = 59;
/// `SO_PEERPIDFD` (asm-generic value, Linux 6.5+).
const SO_PEERPIDFD: libc::c_int = 77;

/// Credentials of a Unix peer as the kernel recorded them at connect.
#[derive(Debug)]
pub struct UnixPeer {
    /// The connecting process's pid (at connect time).
    pub pid: u32,
    /// Its effective uid.
    pub uid: u32,
    /// Its primary and supplementary gids.
    pub gids: Vec<u32>,
    /// A pidfd of the connecting process, where the kernel offers one.
    pub pidfd: Option<OwnedFd>,
}

/// Reads the peer's credentials. Fails only when `SO_PEERCRED` does (then the peer is unknown
/// and refused); groups and pidfd are best effort.
pub fn peer(fd: impl AsFd) -> std::io::Result<UnixPeer> {
    let cred = rustix::net::sockopt::socket_peercred(&fd)?;
    let mut gids = peer_groups(fd.as_fd()).unwrap_or_default();
    let gid = cred.gid.as_raw();
    if !gids.contains(&gid) {
        gids.insert(0, gid);
    }
    Ok(UnixPeer {
        pid: cred.pid.as_raw_nonzero().get() as u32,
        uid: cred.uid.as_raw(),
        gids,
        pidfd: peer_pidfd(fd.as_fd()),
    })
}

fn peer_groups(fd: std::os::fd::BorrowedFd<'_>) -> std::io::Result<Vec<u32>> {
    let mut groups: Vec<libc::gid_t> = vec![0; 64];
    loop {
        let mut len = (groups.len() * std::mem::size_of::<libc::gid_t>()) as libc::socklen_t;
        // SAFETY: the buffer is valid for `len` bytes and the kernel writes at most that much.
        let rc = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_PEERGROUPS,
                groups.as_mut_ptr().cast(),
                &mut len,
            )
        };
        if rc == 0 {
            groups.truncate(len as usize / std::mem::size_of::<libc::gid_t>());
            return Ok(groups);
        }
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::ERANGE) && groups.len() < 65536 {
            let needed = len as usize / std::mem::size_of::<libc::gid_t>();
            groups.resize(needed.max(groups.len() * 2), 0);
            continue;
        }
        return Err(err);
    }
}

fn peer_pidfd(fd: std::os::fd::BorrowedFd<'_>) -> Option<OwnedFd> {
    let mut pidfd: libc::c_int = -1;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `pidfd` is a valid c_int out-parameter of `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut pidfd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    // SAFETY: on success the kernel installed a new descriptor that we now own.
    (rc == 0 && pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) })
}

/// Whether the process a pidfd refers to is still alive (so a name read from `/proc/PID`
/// meanwhile belongs to it, not to a process that reused its pid).
pub fn pidfd_alive(pidfd: &OwnedFd) -> bool {
    // SAFETY: pidfd_send_signal with signal 0 only checks; all pointers are null.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn a_socketpair_peer_is_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let p = peer(&a).unwrap();
        assert_eq!(p.pid, std::process::id());
        assert_eq!(p.uid, rustix::process::getuid().as_raw());
        assert!(p.gids.contains(&rustix::process::getgid().as_raw()));
        if let Some(pidfd) = &p.pidfd {
            assert!(pidfd_alive(pidfd));
        }
    }
}
