//! Whose a daemon is, and whether its program may be run to ask for its configuration.
//!
//! Root must never run a program, or read a file, that another user chose. A process's title
//! (`nginx: master process …`) is whatever its owner wrote, and its executable is whatever file
//! its owner started. So before a relay's own tool is asked (`nginx -T`, `sshd -T`, `caddy
//! adapt`, `apache2 -t`), [`Daemon::inspect`] pins the process (every `/proc` read goes through
//! one descriptor of its `/proc/PID` directory, which a reused pid cannot redirect) and
//! establishes:
//!
//! - its identity: all of the real, effective, saved and filesystem uids equal (and the gids),
//!   so that a set-uid process is neither taken for root nor for its caller;
//! - that it sees the same root directory as we do: a container's paths are not ours, and a
//!   container's root is not the host's;
//! - and, for [`Daemon::executable`], that the file it runs is owned by root, not writable by
//!   group or others, reached from `/` through directories that are all owned by root and not
//!   writable by group or others, with no symlink on the way — checked on descriptors opened
//!   component by component without following links, and against the very inode the process
//!   runs, which is what is then executed (by descriptor, see [`super::command`]).
//!
//! Anything that fails is a [`Refusal`] saying which check, about whose process and which file.

use super::command::RunAs;
use super::path_walk;
use crate::facts::Process;
use rustix::fs::{fstat, openat, readlinkat, FileType, Mode, OFlags, Stat, CWD};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

/// Why a daemon's program is not run (or its files not read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who a daemon runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// uid 0 (real, effective, saved and filesystem).
    Root,
    /// Another user, with all four uids equal and all four gids equal.
    User {
        /// The uid.
        uid: u32,
        /// The primary gid.
        gid: u32,
        /// Supplementary groups.
        groups: Vec<u32>,
    },
}

/// A socket-owning process pinned by its `/proc/PID` directory, with its identity established.
#[derive(Debug)]
pub struct Daemon {
    pid: u32,
    proc_dir: OwnedFd,
    identity: Identity,
}

/// A daemon's executable, opened once and verified; run it only through its descriptor.
#[derive(Debug)]
pub struct VerifiedExe {
    fd: OwnedFd,
    path: String,
}

impl VerifiedExe {
    /// The path the file was verified at (for messages and `argv[0]`; never executed by name).
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl AsFd for VerifiedExe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Daemon {
    /// Pins `process` and establishes whose it is. Refuses a process that changed its command
    /// line since the snapshot listed it (another process may have taken the pid), one with mixed
    /// credentials, and one under another root directory.
    pub fn inspect(process: &Process) -> Result<Daemon, Refusal> {
        let pid = process.pid;
        let dir_flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let proc_dir = openat(CWD, format!("/proc/{pid}"), dir_flags, Mode::empty())
            .map_err(|e| Refusal(format!("cannot open /proc/{pid}: {e}")))?;
        let cmdline = read_proc(&proc_dir, "cmdline", pid)?;
        if super::owners::parse_cmdline(&cmdline) != process.cmdline {
            return Err(Refusal(format!(
                "pid {pid} changed its command line since it was listed (exited, and the pid reused?)"
            )));
        }
        let status = String::from_utf8_lossy(&read_proc(&proc_dir, "status", pid)?).into_owned();
        let identity = identity(&status).map_err(|why| Refusal(format!("pid {pid} {why}")))?;
        let daemon = Daemon {
            pid,
            proc_dir,
            identity,
        };
        daemon.same_root()?;
        Ok(daemon)
    }

    /// The pid.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Who it runs as.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// `uid N` for messages.
    pub fn who(&self) -> String {
        match &self.identity {
            Identity::Root => "uid 0".into(),
            Identity::User { uid, .. } => format!("uid {uid}"),
        }
    }

    /// The identity to run its program with: `None` when that is ours already (root for a root
    /// daemon, or an unprivileged run asking its own user's daemon); else its uid and primary
    /// gid, without supplementary groups.
    pub fn run_as(&self) -> Option<RunAs> {
        match &self.identity {
            Identity::Root => None,
            // SAFETY: geteuid and getegid have no preconditions and cannot fail.
            Identity::User { uid, gid, .. } if unsafe { (libc::geteuid(), libc::getegid()) } == (*uid, *gid) => None,
            Identity::User { uid, gid, .. } => Some(RunAs { uid: *uid, gid: *gid }),
        }
    }

    /// A file of its `/proc/PID` directory (`environ`, …), bounded.
    pub fn proc_file(&self, name: &str) -> Result<Vec<u8>, Refusal> {
        read_proc(&self.proc_dir, name, self.pid)
    }

    /// Its working directory's path, for a child that should see relative paths as it does.
    pub fn cwd_path(&self) -> Option<String> {
        readlinkat(&self.proc_dir, "cwd", Vec::new())
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|p| p.starts_with('/') && !p.ends_with(" (deleted)"))
    }

    /// Opens and verifies the program this process runs (see the module documentation). A
    /// refusal names every check that failed.
    pub fn executable(&self) -> Result<VerifiedExe, Refusal> {
        let pid = self.pid;
        let fd = openat(&self.proc_dir, "exe", OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| Refusal(format!("cannot open the executable of pid {pid}: {e}")))?;
        let running = fstat(&fd).map_err(|e| Refusal(format!("cannot stat the executable of pid {pid}: {e}")))?;
        let path = readlinkat(&self.proc_dir, "exe", Vec::new())
            .map_err(|e| Refusal(format!("cannot read /proc/{pid}/exe: {e}")))?
            .to_string_lossy()
            .into_owned();
        if path.ends_with(" (deleted)") || !path.starts_with('/') {
            return Err(Refusal(format!(
                "the executable of pid {pid} ({path}) was deleted or replaced after it started"
            )));
        }
        let (found, mut problems) = self.walk_to(&path)?;
        if (found.st_dev, found.st_ino) != (running.st_dev, running.st_ino) {
            problems.insert(
                0,
                format!("{path} is no longer the file pid {pid} runs (replaced after it started)"),
            );
        }
        problems.extend(root_owned(&running, &path, "executable"));
        if problems.is_empty() {
            Ok(VerifiedExe { fd, path })
        } else {
            Err(Refusal(problems.join("; ")))
        }
    }

    /// Walks `path` from the process's root, one component at a time without following links;
    /// returns the final file's metadata and what is wrong with the directories on the way.
    fn walk_to(&self, path: &str) -> Result<(Stat, Vec<String>), Refusal> {
        let pid = self.pid;
        // `root` is a magic link to the process's root directory: it has to be followed.
        let root_flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let mut dir = openat(&self.proc_dir, "root", root_flags, Mode::empty())
            .map_err(|e| Refusal(format!("cannot open the root directory of pid {pid}: {e}")))?;
        let mut here = String::from("/");
        let mut problems = Vec::new();
        let names = path_walk::components(path).map_err(Refusal)?;
        for (i, name) in names.iter().enumerate() {
            let stat = fstat(&dir).map_err(|e| Refusal(format!("cannot stat {here}: {e}")))?;
            problems.extend(root_owned(&stat, &here, "directory"));
            let opened = path_walk::open_no_follow(&dir, &here, name)
                .map_err(Refusal)?
                .ok_or_else(|| {
                    Refusal(format!(
                        "cannot open {}/{name}: no such file",
                        here.trim_end_matches('/')
                    ))
                })?;
            if opened.kind == FileType::Symlink {
                return Err(Refusal(format!("{} is a symlink", opened.path)));
            }
            if i + 1 == names.len() {
                if opened.kind != FileType::RegularFile {
                    return Err(Refusal(format!("{} is not a regular file", opened.path)));
                }
                return Ok((opened.stat, problems));
            }
            if opened.kind != FileType::Directory {
                return Err(Refusal(format!("{} is not a directory", opened.path)));
            }
            dir = opened.fd;
            here = opened.path;
        }
        Err(Refusal(format!("the executable of pid {pid} is `{path}`, not a file")))
    }

    /// Refuses a process whose root directory is not ours: its paths name other files.
    fn same_root(&self) -> Result<(), Refusal> {
        let pid = self.pid;
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let theirs = openat(&self.proc_dir, "root", flags, Mode::empty())
            .and_then(fstat)
            .map_err(|e| Refusal(format!("cannot open the root directory of pid {pid}: {e}")))?;
        let ours = openat(CWD, "/proc/self/root", flags, Mode::empty())
            .and_then(fstat)
            .map_err(|e| Refusal(format!("cannot open our own root directory: {e}")))?;
        if (theirs.st_dev, theirs.st_ino) != (ours.st_dev, ours.st_ino) {
            return Err(Refusal(format!(
                "pid {pid} runs under another root directory (a container or chroot): the paths \
                 it names are not this host's"
            )));
        }
        Ok(())
    }
}

/// What makes a file or directory untrustworthy: an owner other than root, or write permission
/// for group or others.
fn root_owned(stat: &Stat, path: &str, what: &str) -> Vec<String> {
    path_walk::untrusted(stat, path, what, &[0], false)
}

/// The most read from one `/proc/PID` file.
const MAX_PROC_FILE: u64 = 1024 * 1024;

/// Reads `name` under a pinned `/proc/PID` directory.
fn read_proc(proc_dir: &OwnedFd, name: &str, pid: u32) -> Result<Vec<u8>, Refusal> {
    use std::io::Read;
    let fd = openat(proc_dir, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Refusal(format!("cannot read /proc/{pid}/{name}: {e}")))?;
    let mut out = Vec::new();
    std::fs::File::from(fd)
        .take(MAX_PROC_FILE)
        .read_to_end(&mut out)
        .map_err(|e| Refusal(format!("cannot read /proc/{pid}/{name}: {e}")))?;
    Ok(out)
}

/// The identity in `/proc/PID/status`: root only when all four uids are 0; a user only when the
/// four uids agree and the four gids agree.
fn identity(status: &str) -> Result<Identity, String> {
    let ids = |key: &str| -> Result<Vec<u32>, String> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .ok_or_else(|| format!("has no {key} line in its status"))?;
        line.split_whitespace()
            .map(|v| v.parse().map_err(|_| format!("has an unreadable {key} line: {line}")))
            .collect()
    };
    let (uids, gids, groups) = (ids("Uid:")?, ids("Gid:")?, ids("Groups:")?);
    let all_equal = |v: &[u32]| v.len() == 4 && v.iter().all(|x| *x == v[0]);
    if !all_equal(&uids) {
        return Err(format!(
            "runs with mixed uids (real, effective, saved, filesystem: {uids:?}), as a set-uid program does"
        ));
    }
    if uids[0] == 0 {
        return Ok(Identity::Root);
    }
    if !all_equal(&gids) {
        return Err(format!(
            "runs with mixed gids (real, effective, saved, filesystem: {gids:?}), as a set-gid program does"
        ));
    }
    Ok(Identity::User {
        uid: uids[0],
        gid: gids[0],
        groups,
    })
}

#[cfg(test)]
mod tests {
    use super::super::test_process::{sleep_binary, Scratch, Sleeper};
    use super::*;

    #[test]
    fn identity_needs_all_four_ids_to_agree() {
        let root = "Name:\tx\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n";
        assert_eq!(identity(root), Ok(Identity::Root));
        let user = "Uid:\t1001\t1001\t1001\t1001\nGid:\t1001\t1001\t1001\t1001\nGroups:\t27 1001 \n";
        assert_eq!(
            identity(user),
            Ok(Identity::User {
                uid: 1001,
                gid: 1001,
                groups: vec![27, 1001]
            })
        );
        let setuid = "Uid:\t1001\t0\t0\t0\nGid:\t1001\t1001\t1001\t1001\nGroups:\t\n";
        assert!(identity(setuid).is_err_and(|e| e.contains("mixed uids")));
        let setgid = "Uid:\t1001\t1001\t1001\t1001\nGid:\t1001\t0\t0\t0\nGroups:\t\n";
        assert!(identity(setgid).is_err_and(|e| e.contains("mixed gids")));
        assert!(identity("Name:\tx\n").is_err());
    }

    #[test]
    fn a_system_program_is_verified_and_its_descriptor_is_the_running_file() {
        let sleeper = Sleeper::start(&sleep_binary());
        let daemon = Daemon::inspect(&sleeper.process()).expect("inspect our own child");
        // SAFETY: geteuid cannot fail.
        let me = unsafe { libc::geteuid() };
        assert_eq!(daemon.identity() == &Identity::Root, me == 0);
        assert_eq!(daemon.run_as(), None, "our own child runs as we do");
        let exe = daemon.executable().expect("coreutils sleep is root-owned");
        assert!(exe.path().ends_with("/sleep"), "{}", exe.path());
        let opened = fstat(exe.as_fd()).expect("stat");
        let on_disk = std::fs::metadata(exe.path()).expect("metadata");
        use std::os::unix::fs::MetadataExt;
        assert_eq!((opened.st_dev, opened.st_ino), (on_disk.dev(), on_disk.ino()));
    }

    #[test]
    fn a_program_in_a_directory_others_may_write_is_refused() {
        let scratch = Scratch::new("open", 0o777);
        let copy = scratch.path().join("sleep");
        std::fs::copy(sleep_binary(), &copy).expect("copy sleep");
        let sleeper = Sleeper::start(&copy);
        let refusal = Daemon::inspect(&sleeper.process())
            .expect("inspect")
            .executable()
            .expect_err("refused");
        let why = format!(
            "directory {} (mode 0777) is writable by group and others",
            scratch.path().display()
        );
        assert!(refusal.0.contains(&why), "{refusal}");
    }

    #[test]
    fn a_replaced_or_deleted_program_is_refused() {
        let scratch = Scratch::new("replaced", 0o755);
        let copy = scratch.path().join("sleep");
        std::fs::copy(sleep_binary(), &copy).expect("copy sleep");
        let sleeper = Sleeper::start(&copy);
        let process = sleeper.process();
        // Another file under the same name: the path check must not vouch for the running one.
        let other = scratch.path().join("other");
        std::fs::copy(sleep_binary(), &other).expect("copy");
        std::fs::rename(&other, &copy).expect("replace");
        let refusal = Daemon::inspect(&process)
            .expect("inspect")
            .executable()
            .expect_err("refused");
        assert!(refusal.0.contains("replaced"), "{refusal}");
    }

    #[test]
    fn a_reused_pid_is_not_taken_for_the_listed_process() {
        let sleeper = Sleeper::start(&sleep_binary());
        let mut listed = sleeper.process();
        listed.cmdline = vec!["nginx: master process nginx".into()];
        let refusal = Daemon::inspect(&listed).expect_err("refused");
        assert!(refusal.0.contains("changed its command line"), "{refusal}");
    }
}
