//! Who is connecting: the uid (and groups, pid, process name where the kernel tells them) of a
//! front's peer, decided before a byte reaches the upstream. A peer that cannot be identified
//! is refused.

pub mod inet_diag;
pub mod unix;

use crate::accounts::MembershipCache;
use std::net::SocketAddr;

/// A peer that has been identified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Its uid.
    pub uid: u32,
    /// Its account name, when it has one.
    pub user: Option<String>,
    /// Its primary and supplementary gids: from the kernel for Unix peers, from the account
    /// database for TCP peers.
    pub gids: Vec<u32>,
    /// Its pid, when known (Unix peers; TCP peers when their process is visible).
    pub pid: Option<u32>,
    /// Its process name, when known.
    pub process: Option<String>,
    /// Where it connected from (`127.0.0.1:40312`, `unix`).
    pub from: String,
    /// TCP peers: the client socket's inode, to find its process for a log line.
    pub inode: Option<u32>,
}

impl Peer {
    /// The peer for log lines: `uid 1001 (bob) pid 4242 (curl) from 127.0.0.1:40312`.
    pub fn describe(&self) -> String {
        let mut s = format!("uid {}", self.uid);
        if let Some(u) = &self.user {
            s.push_str(&format!(" ({u})"));
        }
        match (self.pid, &self.process) {
            (Some(pid), Some(name)) => s.push_str(&format!(" pid {pid} ({name})")),
            (Some(pid), None) => s.push_str(&format!(" pid {pid}")),
            _ => s.push_str(" pid unknown"),
        }
        s.push_str(&format!(" from {}", self.from));
        s
    }

    /// The value of the identity header passed upstream: the account name, else the uid.
    pub fn identity(&self) -> String {
        self.user.clone().unwrap_or_else(|| self.uid.to_string())
    }
}

/// Identifies a loopback TCP peer: `front` is the accepted socket's local address.
pub fn tcp_peer(front: SocketAddr, peer: SocketAddr, accounts: &MembershipCache) -> Result<Peer, String> {
    let found = inet_diag::lookup(front, peer).map_err(|e| e.to_string())?;
    let membership = accounts.of(found.uid);
    Ok(Peer {
        uid: found.uid,
        user: membership.name,
        gids: membership.gids,
        pid: None,
        process: None,
        from: peer.to_string(),
        inode: Some(found.inode),
    })
}

/// Identifies a Unix peer from the kernel's record of its credentials.
pub fn unix_peer(fd: impl std::os::fd::AsFd) -> Result<Peer, String> {
    let cred = unix::peer(fd).map_err(|e| format!("SO_PEERCRED failed: {e}"))?;
    let process = process_name(cred.pid).filter(|_| cred.pidfd.as_ref().is_none_or(unix::pidfd_alive));
    Ok(Peer {
        uid: cred.uid,
        user: crate::accounts::user_name(cred.uid),
        gids: cred.gids,
        pid: Some(cred.pid),
        process,
        from: "unix".into(),
        inode: None,
    })
}

/// Names the process of a TCP peer for a log line, where `/proc` lets the guard see it (its
/// own uid's processes, or all of them as root). Slow (a `/proc` walk): used on refusals only,
/// on a blocking thread.
pub fn find_process(peer: &mut Peer) {
    let Some(inode) = peer.inode else {
        return;
    };
    let target = format!("socket:[{inode}]");
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        if fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == target.as_str()))
        {
            peer.pid = Some(pid);
            peer.process = process_name(pid);
            return;
        }
    }
}

fn process_name(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|s| s.trim_end().to_string())
}
