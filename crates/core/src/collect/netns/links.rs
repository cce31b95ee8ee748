//! Processes that carry traffic between network namespaces: user-mode network stacks for
//! rootless containers (pasta/passt, slirp4netns, RootlessKit) live in one namespace and work in
//! another, whose descriptor they keep open (or which one of their threads entered). Only these
//! programs are looked at: their descriptors and threads, not every process's. A descriptor is
//! a network namespace's when it is a file of the namespace filesystem whose inode is one of the
//! namespaces discovery found (its link may read `net:[N]` or the bind mount's path it was
//! opened by, `/run/netns/NAME`).

use super::discover::{ns_inode, Discovery};
use crate::facts::NamespaceLink;
use rustix::fs::{stat, CWD};

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
    let Ok(nsfs) = stat("/proc/thread-self/ns/net").map(|st| st.st_dev) else {
        return links;
    };
    let is_netns = |dev: u64, ino: u64| dev == nsfs && discovery.namespaces.contains_key(&ino);
    for process in linkers {
        let mut others: Vec<u64> = held(process.pid, &is_netns);
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

/// The network namespaces whose descriptors `pid` holds.
fn held(pid: u32, is_netns: &dyn Fn(u64, u64) -> bool) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.flatten()
        .filter_map(|fd| rustix::fs::statat(CWD, fd.path(), rustix::fs::AtFlags::empty()).ok())
        .filter(|st| is_netns(st.st_dev, st.st_ino))
        .map(|st| st.st_ino)
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
