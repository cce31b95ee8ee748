//! State directories of network namespaces that no longer exist. A namespace's rules and
//! sysctls go with it, but its directory under `/run/loopwarden/harden/` stays; `--check`
//! reports such directories (it never removes them: a namespace can be held alive in ways this
//! cannot see, and what a living namespace's directory holds is needed to remove harden there).
//!
//! A namespace exists while a process or thread is in it, a mount (`ip netns add`) or an open
//! descriptor holds it; its inode is unique among the namespaces that exist. Each state
//! directory records its namespace's inode ([`crate::state::NetnsRecord`]): no holder of that
//! inode, no namespace.

use crate::state::{self, files, NetnsRecord};
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// One line per state directory under `root` (other than `own`, the caller's) whose namespace
/// is gone, or whose namespace cannot be told.
pub fn report(root: &Path, own: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<std::path::PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p != own)
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir() && m.uid() == 0))
        .collect();
    if dirs.is_empty() {
        return Vec::new();
    }
    dirs.sort();
    let live = live_namespaces();
    let mut out = Vec::new();
    let mut untold = Vec::new();
    for dir in &dirs {
        match recorded_inode(dir) {
            Some(inode) if live.contains(&inode) => {}
            Some(inode) => out.push(format!(
                "{}: state of network namespace net:[{inode}], which no longer exists (no process, thread, mount or \
                 open descriptor holds it); its table and sysctls went with it — remove the directory",
                dir.display()
            )),
            None => untold.push(
                dir.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
            ),
        }
    }
    if !untold.is_empty() {
        out.push(format!(
            "{} state director{} in {} ({}) record no namespace (an earlier loopwarden made them): whether their \
             namespaces still exist cannot be told",
            untold.len(),
            if untold.len() == 1 { "y" } else { "ies" },
            root.display(),
            untold.join(", ")
        ));
    }
    out
}

/// The namespace inode a state directory records (or, for a `net-<inode>` directory, names).
fn recorded_inode(dir: &Path) -> Option<u64> {
    if let Ok(Some(record)) = state::read_file::<NetnsRecord>(&dir.join(files::NETNS)) {
        return Some(record.inode);
    }
    dir.file_name()?.to_str()?.strip_prefix("net-")?.parse().ok()
}

/// The inodes of every network namespace something holds: processes' and threads' own,
/// open descriptors, and nsfs mounts in every mount namespace.
fn live_namespaces() -> HashSet<u64> {
    let mut live = HashSet::new();
    let mut mount_namespaces = HashSet::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return live;
    };
    for pid in procs.filter_map(Result::ok).map(|e| e.path()) {
        if !pid
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        {
            continue;
        }
        for links in [pid.join("task"), pid.join("fd")] {
            for entry in std::fs::read_dir(&links).into_iter().flatten().filter_map(Result::ok) {
                let link = if links.ends_with("task") {
                    entry.path().join("ns/net")
                } else {
                    entry.path()
                };
                live.extend(
                    std::fs::read_link(link)
                        .ok()
                        .and_then(|t| net_inode(&t.to_string_lossy())),
                );
            }
        }
        let fresh_mounts = std::fs::read_link(pid.join("ns/mnt")).is_ok_and(|m| mount_namespaces.insert(m));
        if fresh_mounts {
            let mountinfo = std::fs::read_to_string(pid.join("mountinfo")).unwrap_or_default();
            // `ID PARENT MAJ:MIN ROOT MOUNTPOINT …`: an nsfs bind mount's root is `net:[N]`.
            live.extend(
                mountinfo
                    .lines()
                    .filter_map(|l| l.split(' ').nth(3))
                    .filter_map(net_inode),
            );
        }
    }
    live
}

/// `net:[4026531840]` → 4026531840.
fn net_inode(text: &str) -> Option<u64> {
    text.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_namespace_is_alive_and_a_made_up_one_is_not() {
        let live = live_namespaces();
        let own = state::namespace_inode().expect("this thread's namespace");
        assert!(live.contains(&own), "{own} not among {live:?}");
        assert!(!live.contains(&1), "inode 1 is never a network namespace");
        assert_eq!(net_inode("net:[4026531840]"), Some(4026531840));
        assert_eq!(net_inode("mnt:[4026531840]"), None);
    }
}
