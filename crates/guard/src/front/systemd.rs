//! Sockets passed by systemd socket activation: with a `.socket` unit, systemd holds the
//! front's sockets across restarts of the guard, so the port is never free for another user to
//! take and connections made meanwhile wait in the backlog for the next instance.

use socket2::{SockAddr, Socket};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// Sockets passed by systemd socket activation (`LISTEN_PID` = this process, `LISTEN_FDS` = n,
/// descriptors 3 … 3+n-1). The variables are removed so children do not inherit them.
pub fn sockets() -> Result<Vec<OwnedFd>, String> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    std::env::remove_var("LISTEN_PID");
    std::env::remove_var("LISTEN_FDS");
    std::env::remove_var("LISTEN_FDNAMES");
    let (Some(pid), Some(count)) = (pid, count) else {
        return Ok(Vec::new());
    };
    if pid.parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(Vec::new());
    }
    let n: i32 = count
        .parse()
        .ok()
        .filter(|n| (0..1024).contains(n))
        .ok_or_else(|| format!("LISTEN_FDS={count:?} is not a descriptor count"))?;
    (3..3 + n)
        .map(|fd| {
            // SAFETY: systemd passed these descriptors to this process (LISTEN_PID matched);
            // nothing else in the process owns them.
            let owned = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)
                .map_err(|e| format!("inherited descriptor {fd}: {e}"))?;
            Ok(owned)
        })
        .collect()
}

/// The address a passed TCP listener is bound to.
pub fn tcp_address(fd: &OwnedFd) -> Option<SocketAddr> {
    let s = socket2::SockRef::from(fd);
    if !s.is_listener().unwrap_or(false) {
        return None;
    }
    s.local_addr().ok().and_then(|a| a.as_socket())
}

/// Takes the passed TCP listener bound to exactly `addr`.
pub fn take_tcp(inherited: &mut Vec<OwnedFd>, addr: SocketAddr) -> Option<std::net::TcpListener> {
    let pos = inherited.iter().position(|fd| tcp_address(fd) == Some(addr))?;
    let socket = Socket::from(inherited.swap_remove(pos));
    socket.set_nonblocking(true).ok()?;
    Some(socket.into())
}

/// Takes the passed Unix listener bound to `path`.
pub fn take_unix(inherited: &mut Vec<OwnedFd>, path: &Path) -> Option<std::os::unix::net::UnixListener> {
    let want = SockAddr::unix(path).ok()?;
    let pos = inherited.iter().position(|fd| {
        let s = socket2::SockRef::from(fd);
        s.local_addr().ok().and_then(|a| a.as_pathname().map(PathBuf::from)) == want.as_pathname().map(PathBuf::from)
            && s.is_listener().unwrap_or(false)
    })?;
    let socket = Socket::from(inherited.swap_remove(pos));
    socket.set_nonblocking(true).ok()?;
    Some(socket.into())
}
