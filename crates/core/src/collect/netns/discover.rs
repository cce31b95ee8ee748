//! Finding every network namespace of the host: the distinct `/proc/*/ns/net` of its processes,
//! and every `nsfs` bind mount of a network namespace (`ip netns`'s `/run/netns/NAME`,
//! Docker's `/run/docker/netns/…`, containerd's CNI `/var/run/netns/cni-…`, any other runtime's)
//! in our mount namespace and in every other mount namespace a process has — a namespace may
//! have no process at all, and a runtime confined to a mount namespace of its own keeps its
//! bind mounts there.
//!
//! One pass over `/proc` gives, per process, its network and mount namespaces, name, parent and
//! uid; then one `mountinfo` per distinct mount namespace. Namespaces are told apart by their
//! `nsfs` inode number, the number `net:[N]` shows.

use crate::facts::BindMount;
use rustix::fs::{stat, CWD};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

/// A process, as discovery saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Its pid.
    pub pid: u32,
    /// Its parent's pid.
    pub ppid: u32,
    /// `comm`.
    pub name: String,
    /// The owner of `/proc/PID` (its effective uid).
    pub uid: u32,
    /// Its network namespace (inode).
    pub netns: u64,
    /// Its mount namespace (inode).
    pub mntns: u64,
}

/// One network namespace found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    /// The namespace's inode.
    pub inode: u64,
    /// Paths that open it, in the order to try (bind mounts first: they cannot be reused for
    /// another namespace the way a pid can).
    pub handles: Vec<PathBuf>,
    /// Every process in it, lowest pid first.
    pub pids: Vec<u32>,
    /// `ip netns` names (bind mounts under `/run/netns` in our mount namespace).
    pub ip_netns: Vec<String>,
    /// Other bind mounts.
    pub bind_mounts: Vec<BindMount>,
}

/// What discovery found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Every namespace, by inode.
    pub namespaces: BTreeMap<u64, Found>,
    /// Every process, by pid.
    pub processes: HashMap<u32, Proc>,
    /// The host's network namespace: the initial one, where the kernel's threads are (ours when
    /// that cannot be seen).
    pub host: Option<u64>,
    /// Our own (the calling thread's) network namespace.
    pub own: Option<u64>,
    /// Our own mount namespace.
    pub own_mntns: Option<u64>,
    /// Processes whose namespaces could not be read (permission denied).
    pub unreadable: Vec<u32>,
}

impl Discovery {
    /// The processes of namespace `inode`, lowest pid first.
    pub fn processes_in(&self, inode: u64) -> Vec<&Proc> {
        self.namespaces
            .get(&inode)
            .map(|found| found.pids.iter().filter_map(|pid| self.processes.get(pid)).collect())
            .unwrap_or_default()
    }
}

/// Looks for every network namespace (see the module documentation).
pub fn discover() -> Discovery {
    let mut found = Discovery {
        own: ns_inode("/proc/thread-self/ns/net"),
        own_mntns: ns_inode("/proc/self/ns/mnt"),
        ..Default::default()
    };
    processes(&mut found);
    found.host = host_namespace(&found);
    let mut mount_namespaces: BTreeMap<u64, u32> = BTreeMap::new();
    for p in found.processes.values() {
        mount_namespaces
            .entry(p.mntns)
            .and_modify(|pid| *pid = (*pid).min(p.pid))
            .or_insert(p.pid);
    }
    // Ours first, so that a bind mount both see is named as we see it.
    if let Some(own) = found.own_mntns {
        if let Ok(text) = std::fs::read_to_string("/proc/self/mountinfo") {
            add_mounts(&mut found, &text, None);
        }
        mount_namespaces.remove(&own);
    }
    for pid in mount_namespaces.into_values() {
        if let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) {
            add_mounts(&mut found, &text, Some(pid));
        }
    }
    for (inode, ns) in found.namespaces.iter_mut() {
        ns.inode = *inode;
        ns.pids.sort_unstable();
        let by_pid = ns.pids.iter().map(|pid| PathBuf::from(format!("/proc/{pid}/ns/net")));
        ns.handles.extend(by_pid.take(4));
    }
    found
}

/// The initial network namespace: that of `kthreadd` (pid 2, whose parent is 0), where every
/// kernel thread runs; else pid 1's (in a pid namespace of our own, pid 1 is its init); else,
/// when neither can be read (unprivileged), the one we run in.
fn host_namespace(found: &Discovery) -> Option<u64> {
    let kthreadd = found.processes.get(&2).filter(|p| p.ppid == 0 && p.name == "kthreadd");
    kthreadd
        .or_else(|| found.processes.get(&1))
        .map(|p| p.netns)
        .or(found.own)
}

/// One pass over `/proc`: every process's namespaces, name, parent and owner.
fn processes(found: &mut Discovery) {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let namespaces =
            ns_stat(&format!("/proc/{pid}/ns/net")).and_then(|net| Ok((net, ns_stat(&format!("/proc/{pid}/ns/mnt"))?)));
        let (netns, mntns) = match namespaces {
            Ok(found) => found,
            Err(rustix::io::Errno::ACCESS | rustix::io::Errno::PERM) => {
                found.unreadable.push(pid);
                continue;
            }
            Err(_) => continue, // exited meanwhile, or a zombie
        };
        let Ok(stat_text) = std::fs::read(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((name, ppid)) = parse_stat(&stat_text) else {
            continue;
        };
        let uid = stat(format!("/proc/{pid}")).map(|st| st.st_uid).unwrap_or(u32::MAX);
        found.namespaces.entry(netns).or_default().pids.push(pid);
        found.processes.insert(
            pid,
            Proc {
                pid,
                ppid,
                name,
                uid,
                netns,
                mntns,
            },
        );
    }
}

/// The inode of a namespace file (`/proc/PID/ns/net`, a bind mount of one).
pub fn ns_inode(path: &str) -> Option<u64> {
    ns_stat(path).ok()
}

fn ns_stat(path: &str) -> Result<u64, rustix::io::Errno> {
    rustix::fs::statat(CWD, path, rustix::fs::AtFlags::empty()).map(|st| st.st_ino)
}

/// `comm` and the parent pid from `/proc/PID/stat` (`pid (comm) state ppid …`; `comm` may hold
/// spaces and parentheses, so it ends at the last `)`).
pub fn parse_stat(text: &[u8]) -> Option<(String, u32)> {
    let open = text.iter().position(|b| *b == b'(')?;
    let close = text.iter().rposition(|b| *b == b')')?;
    let name = String::from_utf8_lossy(text.get(open + 1..close)?).into_owned();
    let rest = std::str::from_utf8(text.get(close + 1..)?).ok()?;
    let mut fields = rest.split_whitespace();
    let _state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((name, ppid))
}

/// Adds the network namespaces bind-mounted in one mount namespace: ours (`seen_by: None`) or
/// that of process `seen_by`, whose mounts are reached through its root.
fn add_mounts(found: &mut Discovery, mountinfo: &str, seen_by: Option<u32>) {
    for mount in mountinfo.lines().filter_map(nsfs_net_mount) {
        let (inode, point) = mount;
        let ns = found.namespaces.entry(inode).or_default();
        let known = |ns: &Found| {
            ns.bind_mounts.iter().any(|b| b.path == point) || ns.ip_netns.iter().any(|n| point_of_ip_netns(n) == point)
        };
        // Mount namespaces made by copying ours show our mounts too: those are known.
        if known(ns) {
            continue;
        }
        match (seen_by, ip_netns_name(&point)) {
            (None, Some(name)) => ns.ip_netns.push(name.to_string()),
            _ => ns.bind_mounts.push(BindMount {
                path: point.clone(),
                mount_namespace_of: seen_by,
            }),
        }
        let handle = match seen_by {
            None => point.clone(),
            Some(pid) => format!("/proc/{pid}/root{point}"),
        };
        ns.handles.push(PathBuf::from(handle));
    }
}

/// The path `ip netns add NAME` mounts.
fn point_of_ip_netns(name: &str) -> String {
    format!("/run/netns/{name}")
}

/// `NAME` for `/run/netns/NAME` or `/var/run/netns/NAME`.
fn ip_netns_name(point: &str) -> Option<&str> {
    let name = point
        .strip_prefix("/run/netns/")
        .or_else(|| point.strip_prefix("/var/run/netns/"))?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// From one `mountinfo` line, the network namespace inode and the mount point of an `nsfs`
/// mount of a network namespace (`… net:[4026532796] /run/netns/blue … - nsfs nsfs rw`).
pub fn nsfs_net_mount(line: &str) -> Option<(u64, String)> {
    let (mount, fs) = line.split_once(" - ")?;
    if fs.split_whitespace().next()? != "nsfs" {
        return None;
    }
    let mut fields = mount.split_whitespace();
    let root = fields.nth(3)?;
    let point = fields.next()?;
    let inode = root.strip_prefix("net:[")?.strip_suffix(']')?.parse().ok()?;
    Some((inode, unescape(point)))
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .map(|d| d.iter().fold(0u32, |v, b| v * 8 + u32::from(b - b'0')));
        match octal.and_then(|v| u8::try_from(v).ok()) {
            Some(byte) => {
                out.push(byte);
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nsfs_mounts_of_network_namespaces_are_read_and_others_are_not() {
        // Lines from this machine's /proc/self/mountinfo (kernel 6.18).
        let blue = "43 42 0:4 net:[4026532796] /run/netns/lw-vufw-14246-0-23623533 rw shared:2 - nsfs nsfs rw";
        assert_eq!(
            nsfs_net_mount(blue),
            Some((4026532796, "/run/netns/lw-vufw-14246-0-23623533".to_string()))
        );
        let spaced = "50 42 0:4 net:[4026532800] /run/my\\040netns/a rw - nsfs nsfs rw";
        assert_eq!(
            nsfs_net_mount(spaced),
            Some((4026532800, "/run/my netns/a".to_string()))
        );
        let mnt = "51 42 0:4 mnt:[4026532801] /run/keep rw - nsfs nsfs rw";
        assert_eq!(nsfs_net_mount(mnt), None);
        let proc = "22 28 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw";
        assert_eq!(nsfs_net_mount(proc), None);
        assert_eq!(ip_netns_name("/run/netns/blue"), Some("blue"));
        assert_eq!(ip_netns_name("/var/run/netns/cni-1"), Some("cni-1"));
        assert_eq!(ip_netns_name("/run/docker/netns/abc"), None);
    }

    #[test]
    fn stat_gives_names_with_spaces_and_parentheses() {
        assert_eq!(
            parse_stat(b"1234 (tmux: server) S 1 1234 1234 0 -1"),
            Some(("tmux: server".to_string(), 1))
        );
        assert_eq!(parse_stat(b"7 (a) b) R 3 7"), Some(("a) b".to_string(), 3)));
        assert_eq!(parse_stat(b"garbage"), None);
    }

    #[test]
    fn our_own_namespace_and_process_are_found() {
        let found = discover();
        let me = std::process::id();
        let own = found.own.expect("our namespace");
        let ns = found.namespaces.get(&own).expect("listed");
        assert!(ns.pids.contains(&me));
        assert_eq!(found.processes.get(&me).map(|p| p.netns), Some(own));
        assert!(ns.handles.iter().any(|h| h.starts_with("/proc")));
    }
}
