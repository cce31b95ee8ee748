//! Whose file system a Unix socket's path names: the socket owner's. A process in a mount
//! namespace or under a root of its own (a container, a service with `PrivateTmp=`) binds
//! `/run/app.sock` in *its* tree; judging the host's `/run/app.sock` instead would judge another
//! file or none. Each path is looked up in the root of the socket's first owner — ours when that
//! process shares our mount namespace and root — else in the namespace's default root.

use super::rooted::Root;
use super::unix_files::Walker;
use rustix::fs::{stat, Stat};
use std::collections::HashMap;

/// A mount namespace and root directory, as `(mount namespace inode, root device, root inode)`.
type FsIdentity = (u64, u64, u64);

/// One walker per distinct file system the sockets' owners see.
pub struct SocketRoots {
    ours: Option<FsIdentity>,
    default_pid: Option<u32>,
    identities: HashMap<u32, Option<FsIdentity>>,
    walkers: HashMap<Option<FsIdentity>, Walker>,
}

impl SocketRoots {
    /// Roots seen from this process; sockets without a known owner are looked up in the root of
    /// `default_pid` (a process of the namespace being collected), or in ours.
    pub fn new(default_pid: Option<u32>) -> SocketRoots {
        SocketRoots {
            ours: identity("/proc/self"),
            default_pid,
            identities: HashMap::new(),
            walkers: HashMap::new(),
        }
    }

    /// The walker for a socket held by `owner` (`None`: unknown). A process we cannot follow
    /// (gone, not privileged) is looked up in our own file system, as before this module: the
    /// walk's bound-inode check then reports a path of another file system as such.
    pub fn walker(&mut self, owner: Option<u32>) -> &mut Walker {
        let pid = owner.or(self.default_pid);
        let theirs = pid.and_then(|pid| {
            *self
                .identities
                .entry(pid)
                .or_insert_with(|| identity(&format!("/proc/{pid}")))
        });
        let key = match theirs {
            Some(id) if Some(id) != self.ours => Some(id),
            _ => None,
        };
        self.walkers.entry(key).or_insert_with(|| match (key, pid) {
            (Some(_), Some(pid)) => Root::of_process(pid).map(Walker::in_root).unwrap_or_default(),
            _ => Walker::default(),
        })
    }
}

/// The file-system identity of the process whose `/proc` directory is `proc_dir`.
fn identity(proc_dir: &str) -> Option<FsIdentity> {
    let mnt: Stat = stat(format!("{proc_dir}/ns/mnt")).ok()?;
    let root: Stat = stat(format!("{proc_dir}/root")).ok()?;
    Some((mnt.st_ino, root.st_dev, root.st_ino))
}
