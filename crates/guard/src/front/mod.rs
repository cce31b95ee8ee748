//! A front's listening sockets: a loopback TCP port on both `127.0.0.1` and `[::1]`, or a Unix
//! socket with its mode, owner and group in a directory nobody else can write — or the sockets
//! systemd passed (`LISTEN_FDS`), matched to fronts by address.

use crate::accounts;
use crate::config::FrontConfig;
use crate::endpoint::Listen;
use socket2::{Domain, SockAddr, Socket, Type};
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Listen backlog (the kernel caps it at `somaxconn`).
const BACKLOG: i32 = 4096;

/// One bound, listening socket of a front.
#[derive(Debug)]
pub enum Bound {
    /// A TCP socket on one loopback address.
    Tcp(std::net::TcpListener),
    /// A Unix socket.
    Unix(std::os::unix::net::UnixListener),
}

impl Bound {
    /// Another descriptor for the same listening socket (each worker thread accepts on its own).
    pub fn try_clone(&self) -> std::io::Result<Bound> {
        Ok(match self {
            Bound::Tcp(l) => Bound::Tcp(l.try_clone()?),
            Bound::Unix(l) => Bound::Unix(l.try_clone()?),
        })
    }

    /// What it listens on, for messages.
    pub fn describe(&self) -> String {
        match self {
            Bound::Tcp(l) => l.local_addr().map_or_else(|_| "tcp:?".into(), |a| a.to_string()),
            Bound::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
                .unwrap_or_else(|| "unix:?".into()),
        }
    }
}

/// Binds (or takes from systemd) every socket of a front.
pub fn bind(front: &FrontConfig, inherited: &mut Vec<OwnedFd>) -> Result<Vec<Bound>, String> {
    match &front.listen {
        Listen::Tcp(port) => Listen::tcp_addresses(*port)
            .into_iter()
            .map(|addr| match take_inherited_tcp(inherited, addr) {
                Some(l) => Ok(Bound::Tcp(l)),
                None => bind_tcp(addr).map(Bound::Tcp),
            })
            .collect(),
        Listen::Unix(path) => {
            if let Some(l) = take_inherited_unix(inherited, path) {
                return Ok(vec![Bound::Unix(l)]);
            }
            bind_unix(front, path).map(|l| vec![Bound::Unix(l)])
        }
    }
}

fn bind_tcp(addr: SocketAddr) -> Result<std::net::TcpListener, String> {
    let fail = |what: &str, e: std::io::Error| {
        let hint = match e.raw_os_error() {
            Some(libc::EADDRINUSE) => format!(
                ": another process holds it — a guard front needs both 127.0.0.1:{p} and [::1]:{p} (else anyone can squat the other family)",
                p = addr.port()
            ),
            Some(libc::EADDRNOTAVAIL) if addr.is_ipv6() => ": IPv6 loopback is not configured here".into(),
            Some(libc::EACCES) => ": ports below net.ipv4.ip_unprivileged_port_start need privilege".into(),
            _ => String::new(),
        };
        format!("cannot {what} {addr}: {e}{hint}")
    };
    let domain = if addr.is_ipv6() { Domain::IPV6 } else { Domain::IPV4 };
    let socket = Socket::new(domain, Type::STREAM.cloexec(), None).map_err(|e| fail("open a socket for", e))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true).map_err(|e| fail("set IPV6_V6ONLY on", e))?;
    }
    socket
        .set_reuse_address(true)
        .map_err(|e| fail("set SO_REUSEADDR on", e))?;
    socket.bind(&addr.into()).map_err(|e| fail("bind", e))?;
    socket.listen(BACKLOG).map_err(|e| fail("listen on", e))?;
    socket.set_nonblocking(true).map_err(|e| fail("configure", e))?;
    Ok(socket.into())
}

fn bind_unix(front: &FrontConfig, path: &Path) -> Result<std::os::unix::net::UnixListener, String> {
    let group = front
        .socket
        .group
        .as_deref()
        .map(accounts::group)
        .transpose()
        .map_err(|e| format!("front {:?} socket group: {e}", front.name))?;
    let owner = front
        .socket
        .owner
        .as_deref()
        .map(accounts::user)
        .transpose()
        .map_err(|e| format!("front {:?} socket owner: {e}", front.name))?;
    let parent = path
        .parent()
        .ok_or_else(|| format!("unix:{} has no parent directory", path.display()))?;
    private_parent(parent, group.as_ref().map(|g| g.id))?;
    clear_stale(path)?;
    let listener = std::os::unix::net::UnixListener::bind(path)
        .map_err(|e| format!("cannot bind unix:{}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(front.socket.mode))
        .map_err(|e| format!("cannot set mode {:o} on {}: {e}", front.socket.mode, path.display()))?;
    if owner.is_some() || group.is_some() {
        std::os::unix::fs::chown(path, owner.map(|o| o.id), group.map(|g| g.id))
            .map_err(|e| format!("cannot give {} its owner/group: {e}", path.display()))?;
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("cannot configure unix:{}: {e}", path.display()))?;
    Ok(listener)
}

/// The socket's directory: created private (0750, the socket group as group) when missing;
/// refused when others could write it (they could replace the socket with their own).
fn private_parent(dir: &Path, group: Option<u32>) -> Result<(), String> {
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => {
            if !meta.is_dir() {
                return Err(format!("{} is not a directory", dir.display()));
            }
            let me = rustix::process::geteuid().as_raw();
            if meta.uid() != me && meta.uid() != 0 {
                return Err(format!(
                    "{} belongs to uid {}: put the socket in a directory owned by the guard's user or root",
                    dir.display(),
                    meta.uid()
                ));
            }
            if meta.mode() & 0o022 != 0 {
                return Err(format!(
                    "{} is writable by others (mode {:o}): anyone could replace the socket — use a private directory",
                    dir.display(),
                    meta.mode() & 0o7777
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o750)
                .create(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o750))
                .map_err(|e| format!("cannot set the mode of {}: {e}", dir.display()))?;
            if let Some(gid) = group {
                std::os::unix::fs::chown(dir, None, Some(gid))
                    .map_err(|e| format!("cannot give {} group {gid}: {e}", dir.display()))?;
            }
            Ok(())
        }
        Err(e) => Err(format!("cannot inspect {}: {e}", dir.display())),
    }
}

/// Removes a socket file nobody listens on (left by a crash); refuses to touch anything else.
fn clear_stale(path: &Path) -> Result<(), String> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    use std::os::unix::fs::FileTypeExt;
    if !meta.file_type().is_socket() {
        return Err(format!("{} exists and is not a socket: not replaced", path.display()));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(format!("unix:{} is already served by another process", path.display())),
        Err(_) => std::fs::remove_file(path).map_err(|e| format!("cannot remove stale {}: {e}", path.display())),
    }
}

/// Sockets passed by systemd socket activation (`LISTEN_PID` = this process, `LISTEN_FDS` = n,
/// descriptors 3 … 3+n-1). The variables are removed so children do not inherit them.
pub fn systemd_sockets() -> Result<Vec<OwnedFd>, String> {
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

fn take_inherited_tcp(inherited: &mut Vec<OwnedFd>, addr: SocketAddr) -> Option<std::net::TcpListener> {
    let pos = inherited.iter().position(|fd| {
        let s = socket2::SockRef::from(fd);
        s.local_addr().ok().and_then(|a| a.as_socket()) == Some(addr) && s.is_listener().unwrap_or(false)
    })?;
    let socket = Socket::from(inherited.swap_remove(pos));
    socket.set_nonblocking(true).ok()?;
    Some(socket.into())
}

fn take_inherited_unix(inherited: &mut Vec<OwnedFd>, path: &Path) -> Option<std::os::unix::net::UnixListener> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SocketFileConfig;
    use crate::endpoint::Upstream;

    fn front(listen: Listen) -> FrontConfig {
        FrontConfig {
            name: "t".into(),
            listen,
            upstream: Upstream::Tcp("127.0.0.1:1".parse().unwrap()),
            allow_users: vec!["root".into()],
            allow_groups: vec![],
            http: None,
            max_conns: 10,
            max_conns_per_user: None,
            socket: SocketFileConfig::default(),
        }
    }

    #[test]
    fn a_tcp_front_takes_both_families_and_fails_loudly_when_one_is_taken() {
        let squatter = std::net::TcpListener::bind("[::1]:0").unwrap();
        let port = squatter.local_addr().unwrap().port();
        let err = bind(&front(Listen::Tcp(port)), &mut Vec::new()).unwrap_err();
        assert!(err.contains(&format!("cannot bind [::1]:{port}")), "{err}");
        assert!(err.contains("needs both"), "{err}");
        drop(squatter);
        let bound = bind(&front(Listen::Tcp(port)), &mut Vec::new()).unwrap();
        let names: Vec<String> = bound.iter().map(Bound::describe).collect();
        assert_eq!(names, vec![format!("127.0.0.1:{port}"), format!("[::1]:{port}")]);
    }

    #[test]
    fn a_unix_front_gets_a_private_directory_and_its_mode_and_refuses_a_shared_one() {
        let root = std::env::temp_dir().join(format!("lw-front-{}", std::process::id()));
        let path = root.join("private").join("app.sock");
        let mut f = front(Listen::Unix(path.clone()));
        f.socket.mode = 0o600;
        let bound = bind(&f, &mut Vec::new()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777, 0o750);
        let err = bind(&f, &mut Vec::new()).unwrap_err();
        assert!(err.contains("already served"), "{err}");
        drop(bound);
        bind(&f, &mut Vec::new()).unwrap(); // the stale file of a dead listener is replaced

        let shared = root.join("shared");
        std::fs::create_dir_all(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let err = bind(&front(Listen::Unix(shared.join("a.sock"))), &mut Vec::new()).unwrap_err();
        assert!(err.contains("writable by others (mode 1777)"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
