//! Socket owners: one pass over `/proc/*/fd` mapping `socket:[INODE]` links to pids (what
//! `ss -p` does), then the details of the processes that own a reported socket.
//!
//! The pass uses directory descriptors (`openat`, `getdents64`, `readlinkat` relative to the
//! `fd` directory) so that each descriptor costs one short syscall and no allocation. Processes
//! of other network namespaces (containers, other test namespaces, a load generator's) are
//! passed over after one `stat` of their `ns/net`: their descriptors are read only if a socket
//! of the collected namespace is left without an owner ([`scan_pids`]) — a process can hold a
//! socket created before it moved to another namespace.

use crate::facts::{Limit, Process};
use rustix::fs::{openat, readlinkat_raw, AtFlags, Mode, OFlags, RawDir, CWD};
use rustix::io::Errno;
use std::collections::HashMap;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;

/// What the `/proc` pass found.
#[derive(Debug, Default)]
pub struct Owners {
    /// Socket inode → pids holding a descriptor to it, in `/proc` (ascending pid) order.
    pub by_inode: HashMap<u64, Vec<u32>>,
    /// Processes whose descriptors could not be read for lack of privilege.
    pub unreadable: usize,
    /// Processes looked at.
    pub scanned: usize,
    /// Processes in another network namespace, whose descriptors were not read.
    pub elsewhere: Vec<u32>,
}

/// A network namespace's identity: the device and inode of its `ns/net` file.
pub type NetnsId = (u64, u64);

/// The identity of the calling thread's network namespace, when `/proc` tells it.
pub fn own_netns() -> Option<NetnsId> {
    rustix::fs::stat("/proc/thread-self/ns/net")
        .ok()
        .map(|st| (st.st_dev, st.st_ino))
}

/// Scans the descriptors of every process in the network namespace `netns` (of every process
/// when `None`, or when a process's namespace cannot be read) once and records which pids hold
/// each socket. Processes that exit meanwhile are skipped silently.
pub fn scan(netns: Option<NetnsId>) -> std::io::Result<Owners> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let proc_dir = openat(CWD, "/proc", flags, Mode::empty())?;
    let mut owners = Owners::default();
    let mut proc_buffer: Vec<MaybeUninit<u8>> = vec![MaybeUninit::uninit(); 32 * 1024];
    let mut fd_buffer: Vec<MaybeUninit<u8>> = vec![MaybeUninit::uninit(); 32 * 1024];
    let mut path = Vec::with_capacity(32);
    let mut pids = RawDir::new(&proc_dir, &mut proc_buffer);
    while let Some(entry) = pids.next() {
        let entry = entry?;
        let Some(pid) = parse_u32(entry.file_name().to_bytes()) else {
            continue;
        };
        path.clear();
        path.extend_from_slice(entry.file_name().to_bytes());
        if netns.is_some_and(|own| in_other_netns(&proc_dir, &mut path, own)) {
            owners.elsewhere.push(pid);
            continue;
        }
        owners.scanned += 1;
        path.extend_from_slice(b"/fd");
        let fd_dir = match openat(&proc_dir, path.as_slice(), flags, Mode::empty()) {
            Ok(dir) => dir,
            Err(Errno::ACCESS | Errno::PERM) => {
                owners.unreadable += 1;
                continue;
            }
            Err(_) => continue, // exited, or a zombie without descriptors
        };
        scan_fds(pid, &fd_dir, &mut fd_buffer, &mut owners.by_inode);
    }
    Ok(owners)
}

/// Whether the process whose `/proc` entry `path` names is known to be in another network
/// namespace than `own` (`path` is left as it was).
fn in_other_netns(proc_dir: &OwnedFd, path: &mut Vec<u8>, own: NetnsId) -> bool {
    let len = path.len();
    path.extend_from_slice(b"/ns/net");
    let found = rustix::fs::statat(proc_dir, path.as_slice(), AtFlags::empty());
    path.truncate(len);
    found.is_ok_and(|st| (st.st_dev, st.st_ino) != own)
}

/// Reads the descriptors of `pids` only (the processes [`scan`] passed over), adding what they
/// hold to `owners`.
pub fn scan_pids(pids: &[u32], owners: &mut Owners) {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let mut fd_buffer: Vec<MaybeUninit<u8>> = vec![MaybeUninit::uninit(); 32 * 1024];
    for &pid in pids {
        let Ok(fd_dir) = openat(CWD, format!("/proc/{pid}/fd"), flags, Mode::empty()) else {
            continue;
        };
        scan_fds(pid, &fd_dir, &mut fd_buffer, &mut owners.by_inode);
    }
    for holders in owners.by_inode.values_mut() {
        holders.sort_unstable();
        holders.dedup();
    }
}

/// Adds `pid` to every socket among the descriptors in `fd_dir`.
fn scan_fds(pid: u32, fd_dir: &OwnedFd, buffer: &mut [MaybeUninit<u8>], by_inode: &mut HashMap<u64, Vec<u32>>) {
    let mut fds = RawDir::new(fd_dir, buffer);
    let mut link = [0u8; 64];
    while let Some(Ok(entry)) = fds.next() {
        let name = entry.file_name();
        if name.to_bytes().first() == Some(&b'.') {
            continue;
        }
        let Ok(len) = readlinkat_raw(fd_dir, name, &mut link) else {
            continue;
        };
        let Some(inode) = socket_inode(&link[..len]) else {
            continue;
        };
        let pids = by_inode.entry(inode).or_default();
        if pids.last() != Some(&pid) {
            pids.push(pid);
        }
    }
}

/// `socket:[12345]` → 12345.
pub fn socket_inode(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    parse_u32(digits)
        .map(u64::from)
        .or_else(|| std::str::from_utf8(digits).ok()?.parse().ok())
}

fn parse_u32(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || digits.len() > 10 {
        return None;
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value * 10 + u64::from(d - b'0');
    }
    u32::try_from(value).ok()
}

/// The limit to record when some processes' descriptors could not be read.
pub fn unreadable_limit(owners: &Owners) -> Option<Limit> {
    (owners.unreadable > 0).then(|| Limit {
        scope: "owners".into(),
        detail: format!(
            "the descriptors of {} of {} processes could not be read (not privileged: needs root \
             or CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH); sockets held only by them show no owner",
            owners.unreadable, owners.scanned
        ),
    })
}

/// Reads pid, ppid, name and real uid (`/proc/PID/status`), `argv` (`/proc/PID/cmdline`) and the
/// executable (`/proc/PID/exe`, which needs privilege for other users' processes). `None` when
/// the process has exited.
pub fn process(pid: u32) -> Option<Process> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut process = parse_status(pid, &status)?;
    process.cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| parse_cmdline(&raw))
        .unwrap_or_default();
    process.exe = std::fs::read_link(format!("/proc/{pid}/exe"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned());
    Some(process)
}

/// Name, parent pid and real uid from `/proc/PID/status`.
pub fn parse_status(pid: u32, status: &str) -> Option<Process> {
    let mut name = None;
    let mut ppid = 0;
    let mut uid = None;
    for line in status.lines() {
        if let Some(v) = line.strip_prefix("Name:") {
            name = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("PPid:") {
            ppid = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = line.strip_prefix("Uid:") {
            uid = v.split_whitespace().next().and_then(|real| real.parse().ok());
            break; // Name, PPid and Uid come in this order; nothing else is needed.
        }
    }
    Some(Process {
        pid,
        ppid,
        name: name?,
        exe: None,
        cmdline: Vec::new(),
        uid: uid?,
    })
}

/// `argv` from the NUL-separated `/proc/PID/cmdline`.
pub fn parse_cmdline(raw: &[u8]) -> Vec<String> {
    let raw = raw.strip_suffix(b"\0").unwrap_or(raw);
    if raw.is_empty() {
        return Vec::new();
    }
    raw.split(|b| *b == 0)
        .map(|arg| String::from_utf8_lossy(arg).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_links_give_inodes_and_others_do_not() {
        assert_eq!(socket_inode(b"socket:[17772]"), Some(17772));
        assert_eq!(socket_inode(b"socket:[4294967296]"), Some(4_294_967_296));
        assert_eq!(socket_inode(b"pipe:[17772]"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
        assert_eq!(socket_inode(b"socket:[12x]"), None);
    }

    #[test]
    fn status_gives_name_ppid_and_real_uid() {
        let me = std::process::id();
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let p = parse_status(me, &status).unwrap();
        // SAFETY: getuid and getppid cannot fail.
        let (uid, ppid) = unsafe { (libc::getuid(), libc::getppid()) };
        assert_eq!((p.pid, p.ppid, p.uid), (me, ppid as u32, uid));
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
        assert_eq!(p.name, comm.trim_end());
        assert!(parse_status(1, "garbage").is_none());
    }

    #[test]
    fn cmdline_splits_on_nul() {
        assert_eq!(
            parse_cmdline(b"python3\0-c\0print(1)\0"),
            vec!["python3", "-c", "print(1)"]
        );
        assert!(parse_cmdline(b"").is_empty());
    }

    #[test]
    fn scanning_finds_our_own_socket() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let link = std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&listener))).unwrap();
        let inode = socket_inode(link.to_string_lossy().as_bytes()).unwrap();
        let owners = scan(own_netns()).unwrap();
        assert_eq!(owners.by_inode.get(&inode), Some(&vec![std::process::id()]));
        assert!(owners.scanned > 1);
    }

    /// Processes of another namespace are passed over, and read only when asked.
    #[test]
    fn other_namespaces_are_passed_over_until_asked_for() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let link = std::fs::read_link(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&listener))).unwrap();
        let inode = socket_inode(link.to_string_lossy().as_bytes()).unwrap();
        // No namespace has this identity: every process is elsewhere.
        let mut owners = scan(Some((0, 0))).unwrap();
        assert_eq!(owners.by_inode.get(&inode), None);
        assert!(owners.elsewhere.contains(&std::process::id()));
        let elsewhere = std::mem::take(&mut owners.elsewhere);
        scan_pids(&elsewhere, &mut owners);
        assert_eq!(owners.by_inode.get(&inode), Some(&vec![std::process::id()]));
    }
}
