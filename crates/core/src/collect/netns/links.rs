//! Processes that carry traffic between network namespaces: user-mode network stacks for
//! rootless containers (pasta/passt, slirp4netns, RootlessKit) live in one namespace and work in
//! another, whose descriptor they keep open (or which one of their threads entered). Only these
//! programs are looked at: their descriptors and threads, not every process's.

use super::discover::{ns_inode, Discovery};
use crate::facts::NamespaceLink;
use rustix::fs::{readlinkat, CWD};

/// Names (`comm`, possibly cut at 15 bytes) of the programs that link namespaces.
const LINKERS: &[&str] = &["pasta", "passt", "slirp4netns", "rootlesskit"];

/// Every link from a known linker process to another network namespace.
pub fn collect(discovery: &Discovery) -> Vec<NamespaceLink> {
    let mut links = Vec::new();
    let mut linkers: Vec<_> = discovery
        .processes
        .values()
        .filter(|p| LINKERS.iter().any(|l| p.name.starts_with(l)))
        .collect();
    linkers.sort_by_key(|p| p.pid);
    for process in linkers {
        let mut others: Vec<u64> = held(process.pid);
        others.extend(threads(process.pid));
        others.sort_unstable();
        others.dedup();
        links.extend(
            others
                .into_iter()
                .filter(|ns| *ns != process.netns)
                .map(|to| NamespaceLink {
                    pid: process.pid,
                    from: process.netns,
                    to,
                }),
        );
    }
    links
}

/// The network namespaces whose descriptors `pid` holds (`net:[N]` links in `/proc/PID/fd`).
fn held(pid: u32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| readlinkat(CWD, fd.path(), Vec::new()).ok())
        .filter_map(|link| net_inode(link.to_bytes()))
        .collect()
}

/// The network namespaces of `pid`'s threads.
fn threads(pid: u32) -> Vec<u64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|task| ns_inode(&format!("{}/ns/net", task.path().display())))
        .collect()
}

/// `net:[4026532796]` → 4026532796.
pub fn net_inode(link: &[u8]) -> Option<u64> {
    std::str::from_utf8(link.strip_prefix(b"net:[")?.strip_suffix(b"]")?)
        .ok()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::net_inode;

    #[test]
    fn namespace_links_give_inodes() {
        assert_eq!(net_inode(b"net:[4026532796]"), Some(4026532796));
        assert_eq!(net_inode(b"mnt:[4026532796]"), None);
        assert_eq!(net_inode(b"socket:[12]"), None);
    }
}
