//! What harden remembers between runs, per network namespace, under `/run/loopwarden/harden/`: what it
//! applied, what it replaced (to roll back and to remove), and a confirmation window in progress.
//! `/run` is a tmpfs: nothing survives a reboot, which is when runtime rules are gone too.
//!
//! The directory is root's alone (0700); a directory or file that is not — a symlink, another
//! owner, group or world access — is refused, never read. Every change happens under an
//! exclusive lock on the namespace's directory, so that an apply, a confirmation and the
//! rollback watchdog never interleave; a directory left with nothing to remember (after
//! `--remove`, or a `--check` where nothing was applied) is taken away, lock file and all.
//!
//! Every record is written durably — a temporary file, `fsync`, `rename`, `fsync` of the
//! directory — and what an apply replaces is recorded before it changes anything
//! ([`files::APPLYING`]), so that even a SIGKILL or a power cut in the middle of an apply leaves
//! what is needed to put everything back ([`crate::recover`]).

use crate::error::{io, ActError};
use crate::plan::sysctls::SysctlKey;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The default root of the state directories: harden's own, root-only, inside loopwarden's
/// directory under `/run` (which the guard shares for its status files).
pub const DEFAULT_ROOT: &str = "/run/loopwarden/harden";

/// What `--apply` applied (and earlier applies since the last removal, for sysctls).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    /// When (RFC 3339, UTC).
    pub at: String,
    /// The table's objects as planned (compared, normalised, with what nft lists).
    pub table: Vec<Value>,
    /// Every sysctl loopwarden set, with the value it set.
    pub sysctls: Vec<(SysctlKey, String)>,
    /// The `--allow` specs the table was made with, as written (absent in records of versions
    /// before it was kept).
    #[serde(default)]
    pub allows: Vec<String>,
    /// `--limit-connections` with them.
    #[serde(default)]
    pub limit_connections: Option<u32>,
}

/// A sysctl's value before loopwarden changed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// Which.
    pub key: SysctlKey,
    /// Its value then.
    pub value: String,
}

/// Everything an apply replaced: enough to put it back exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Before {
    /// `nft list table inet loopwarden` as it was (`None`: there was none).
    pub table_text: Option<String>,
    /// The sysctls the apply wrote, as they were.
    pub sysctls: Vec<Saved>,
    /// The record of the apply before (`None`: none).
    pub applied: Option<Applied>,
}

/// An apply that rolls back unless confirmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    /// Identifies this window to its watchdog (a later apply opens another).
    pub token: u64,
    /// When it rolls back (milliseconds since the epoch).
    pub deadline_ms: u64,
    /// The same, for people.
    pub deadline: String,
    /// The watchdog process (informational: it is never signalled by this pid).
    pub watchdog: Option<u32>,
    /// What to put back.
    pub before: Before,
    /// Where to install the persistent copy once confirmed (`--persist`), and what.
    pub persist: Option<crate::persist::Request>,
}

/// An apply in progress, recorded before its first change and removed once its record
/// ([`files::APPLIED`]) is written: found by anyone else who gets the lock, it is an apply whose
/// process died half-way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applying {
    /// When it started (RFC 3339, UTC).
    pub at: String,
    /// Its process (informational).
    pub pid: u32,
    /// What it replaces: what recovery puts back.
    pub before: Before,
    /// What it applies.
    pub applied: Applied,
}

/// Why a rollback happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RollbackCause {
    /// The confirmation window closed without `--confirm`.
    #[default]
    Unconfirmed,
    /// The apply's process died before it finished (a SIGKILL, a crash, a power cut).
    Interrupted,
}

/// The last rollback, for `--check` and the next apply to report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RolledBack {
    /// When it happened.
    pub at: String,
    /// The confirmation deadline that passed, or when the interrupted apply started.
    pub deadline: String,
    /// Why.
    #[serde(default)]
    pub cause: RollbackCause,
    /// What was restored.
    pub restored: Vec<String>,
}

impl RolledBack {
    /// The rollback in words, for `--check` and `--confirm`.
    pub fn describe(&self) -> String {
        match self.cause {
            RollbackCause::Unconfirmed => format!(
                "the last apply was rolled back at {} (not confirmed by {})",
                self.at, self.deadline
            ),
            RollbackCause::Interrupted => format!(
                "the apply started at {} did not finish (its process died); it was rolled back at {}",
                self.deadline, self.at
            ),
        }
    }
}

/// What a namespace's state directory records about the namespace itself: its inode, to tell
/// later whether the namespace still exists ([`crate::stale`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsRecord {
    /// The inode of `/proc/thread-self/ns/net` when the directory was made.
    pub inode: u64,
}

/// File names inside a namespace's state directory.
pub mod files {
    /// [`super::Applied`].
    pub const APPLIED: &str = "applied.json";
    /// The first value of every sysctl loopwarden changed (`Vec<Saved>`), for `--remove`.
    pub const ORIGINAL: &str = "original.json";
    /// [`super::Pending`].
    pub const PENDING: &str = "pending.json";
    /// [`super::RolledBack`].
    pub const ROLLED_BACK: &str = "rolled-back.json";
    /// [`super::Applying`]: an apply in progress, or one that died half-way.
    pub const APPLYING: &str = "applying.json";
    /// The watchdog's own log.
    pub const LOG: &str = "rollback.log";
    /// [`super::NetnsRecord`].
    pub const NETNS: &str = "netns.json";
    /// The lock file.
    pub const LOCK: &str = "lock";
}

/// The state directory of the calling thread's network namespace, locked while this value lives.
#[derive(Debug)]
pub struct StateDir {
    path: PathBuf,
    _lock: File,
}

impl StateDir {
    /// Opens (creating it when missing) `<root>/<namespace>` and takes its lock, waiting for
    /// another holder to finish.
    pub fn open(root: &Path) -> Result<StateDir, ActError> {
        // loopwarden's own directory under /run holds harden's and the guard's.
        if let (true, Some(parent)) = (root == Path::new(DEFAULT_ROOT), root.parent()) {
            shared_dir(parent)?;
        }
        private_dir(root)?;
        let path = root.join(namespace_key()?);
        loop {
            private_dir(&path)?;
            let lock = lock(&path.join(files::LOCK))?;
            // The holder before may have taken the directory away (nothing left to remember)
            // while this one waited: the lock it got is then on a file no longer there.
            if still_there(&path.join(files::LOCK), &lock)? {
                let dir = StateDir { path, _lock: lock };
                dir.remove_temporaries();
                dir.record_namespace()?;
                return Ok(dir);
            }
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads `name`; `None` when it does not exist.
    pub fn read<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ActError> {
        read_file(&self.path.join(name))
    }

    /// Writes `name` atomically and durably (a temporary file, fsync, renamed over it, fsync of
    /// the directory), mode 0600.
    pub fn write<T: Serialize>(&self, name: &str, value: &T) -> Result<(), ActError> {
        let path = self.path.join(name);
        let tmp = self.path.join(format!(".{name}.tmp"));
        let text = serde_json::to_string_pretty(value).map_err(|e| ActError::Untrusted {
            path: path.clone(),
            why: format!("cannot serialise: {e}"),
        })?;
        let _ = std::fs::remove_file(&tmp);
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io(&tmp))?;
        std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        File::open(&self.path)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.path))
    }

    /// Removes the temporary files of a writer that died before its rename (none can be
    /// writing now: the lock is held).
    fn remove_temporaries(&self) {
        for entry in std::fs::read_dir(&self.path)
            .into_iter()
            .flatten()
            .filter_map(Result::ok)
        {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }

    /// Records the namespace's inode, once.
    fn record_namespace(&self) -> Result<(), ActError> {
        if self.read::<NetnsRecord>(files::NETNS)?.is_none() {
            if let Some(inode) = namespace_inode() {
                self.write(files::NETNS, &NetnsRecord { inode })?;
            }
        }
        Ok(())
    }

    /// Whether the directory holds anything but its lock and its namespace record.
    fn holds_nothing(&self) -> bool {
        std::fs::read_dir(&self.path).is_ok_and(|entries| {
            entries
                .filter_map(Result::ok)
                .all(|e| e.file_name() == files::LOCK || e.file_name() == files::NETNS)
        })
    }

    /// Removes `name` if it exists.
    pub fn remove(&self, name: &str) -> Result<(), ActError> {
        let path = self.path.join(name);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(path)(e)),
            _ => Ok(()),
        }
    }

    /// Appends a line to the watchdog's log.
    pub fn log(&self, line: &str) {
        let path = self.path.join(files::LOG);
        if let Ok(mut f) = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            let _ = std::io::Write::write_all(&mut f, format!("{} {line}\n", crate::clock::now_rfc3339()).as_bytes());
        }
    }
}

/// Reads a state file at `path` (`None` when it does not exist): a regular file only root can
/// read and write, holding what loopwarden writes; anything else is refused.
pub fn read_file<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, ActError> {
    let path = path.to_path_buf();
    let file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(path)(e)),
    };
    let meta = file.metadata().map_err(io(&path))?;
    if !meta.is_file() || meta.uid() != 0 || meta.mode() & 0o077 != 0 {
        return Err(ActError::Untrusted {
            path,
            why: "not a file only root can read and write".into(),
        });
    }
    serde_json::from_reader(file)
        .map(Some)
        .map_err(|e| ActError::Untrusted {
            path,
            why: format!("not what loopwarden writes: {e}"),
        })
}

impl Drop for StateDir {
    /// Takes the directory away when it has nothing left to remember (still holding the lock:
    /// a waiter notices that its lock file is gone and makes a new one).
    fn drop(&mut self) {
        if self.holds_nothing() {
            let _ = std::fs::remove_file(self.path.join(files::NETNS));
            let _ = std::fs::remove_file(self.path.join(files::LOCK));
            let _ = std::fs::remove_dir(&self.path);
        }
    }
}

/// Opens (creating it) and exclusively locks `path`, waiting for another holder.
fn lock(path: &Path) -> Result<File, ActError> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(io(path))?;
    // SAFETY: flock(2) on a descriptor we own; it blocks until the lock is ours.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(io(path)(std::io::Error::last_os_error()));
    }
    Ok(file)
}

/// Whether `path` is still the file `lock` has open.
fn still_there(path: &Path, lock: &File) -> Result<bool, ActError> {
    let held = lock.metadata().map_err(io(path))?;
    match std::fs::symlink_metadata(path) {
        Ok(now) => Ok(now.dev() == held.dev() && now.ino() == held.ino()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io(path)(e)),
    }
}

/// The inode of the calling thread's network namespace.
pub fn namespace_inode() -> Option<u64> {
    std::fs::metadata("/proc/thread-self/ns/net").ok().map(|m| m.ino())
}

/// The allows in force in the calling thread's network namespace: what the last apply was made
/// with, as recorded (`None` when nothing is applied there). Reads without taking the lock: a
/// plan made meanwhile is checked again by the apply, which replaces the record.
pub fn allows_in_force(root: &Path) -> Result<Option<InForce>, ActError> {
    let path = root.join(namespace_key()?).join(files::APPLIED);
    Ok(read_file::<Applied>(&path)?.map(|a| InForce {
        path,
        at: a.at,
        allows: a.allows,
        limit_connections: a.limit_connections,
    }))
}

/// What [`allows_in_force`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InForce {
    /// The record read (for messages about it).
    pub path: PathBuf,
    /// When it was applied.
    pub at: String,
    /// The `--allow` specs, as written.
    pub allows: Vec<String>,
    /// `--limit-connections`.
    pub limit_connections: Option<u32>,
}

/// Whether `--apply` left a record (an applied or pending table, or an apply that died half-way)
/// for the calling thread's
/// network namespace under `root`. Creates nothing: for visiting every namespace and acting
/// only where harden applied something.
pub fn recorded(root: &Path) -> Result<bool, ActError> {
    let dir = root.join(namespace_key()?);
    Ok([files::APPLIED, files::PENDING, files::APPLYING]
        .iter()
        .any(|f| dir.join(f).symlink_metadata().is_ok()))
}

/// `SO_NETNS_COOKIE` (Linux 5.14, asm-generic value: x86, arm, riscv …).
const SO_NETNS_COOKIE: libc::c_int = 71;

/// The name of the calling thread's network namespace's state directory: `netns-<cookie>`,
/// the namespace's cookie, which the kernel never hands out twice in a boot — an inode number
/// is reused once a namespace is gone, and a new namespace must never find a dead one's state.
/// Kernels without cookies (before 5.14) fall back to `net-<inode>`.
pub fn namespace_key() -> Result<String, ActError> {
    if let Some(cookie) = netns_cookie() {
        return Ok(format!("netns-{cookie}"));
    }
    let link = Path::new("/proc/thread-self/ns/net");
    let target = std::fs::read_link(link).map_err(io(link))?;
    let text = target.to_string_lossy();
    let inode = text
        .strip_prefix("net:[")
        .and_then(|t| t.strip_suffix(']'))
        .filter(|i| i.chars().all(|c| c.is_ascii_digit()))
        .ok_or_else(|| ActError::Untrusted {
            path: link.to_path_buf(),
            why: format!("unexpected link {text:?}"),
        })?;
    Ok(format!("net-{inode}"))
}

/// The cookie of the calling thread's network namespace, read from a socket made in it.
fn netns_cookie() -> Option<u64> {
    // SAFETY: a plain socket(2); the descriptor is owned (and closed) right away.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return None;
    }
    // SAFETY: raw is a fresh descriptor nobody else owns.
    let socket = unsafe { std::os::fd::OwnedFd::from_raw_fd(raw) };
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: getsockopt(2) writes at most `len` bytes into `cookie`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    (rc == 0 && len as usize == std::mem::size_of::<u64>()).then_some(cookie)
}

/// Makes sure `dir` is a real directory root owns and only root can write (others may read and
/// search it: loopwarden's `/run/loopwarden`, shared with the guard), creating it (0755).
fn shared_dir(dir: &Path) -> Result<(), ActError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().mode(0o755).create(dir).map_err(io(dir))?;
        }
        Err(e) => return Err(io(dir)(e)),
        Ok(_) => {}
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io(dir))?;
    if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(ActError::Untrusted {
            path: dir.to_path_buf(),
            why: format!(
                "not a directory root owns and only root can write (uid {}, mode {:o})",
                meta.uid(),
                meta.mode() & 0o7777
            ),
        });
    }
    Ok(())
}

/// Makes sure `dir` is a real directory only root can use, creating it (0700) when missing.
fn private_dir(dir: &Path) -> Result<(), ActError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new().mode(0o700).create(dir).map_err(io(dir))?;
        }
        Err(e) => return Err(io(dir)(e)),
        Ok(_) => {}
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io(dir))?;
    if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o077 != 0 {
        return Err(ActError::Untrusted {
            path: dir.to_path_buf(),
            why: format!(
                "not a directory only root can use (uid {}, mode {:o}, {})",
                meta.uid(),
                meta.mode() & 0o7777,
                if meta.file_type().is_symlink() {
                    "a symlink"
                } else {
                    "kind ok"
                }
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_namespace_key_is_this_namespaces_cookie() {
        let key = namespace_key().expect("readable");
        let digits = key
            .strip_prefix("netns-")
            .or_else(|| key.strip_prefix("net-"))
            .unwrap_or("");
        assert!(
            !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()),
            "{key}"
        );
        assert_eq!(namespace_key().expect("again"), key);
    }

    #[test]
    fn state_round_trips_and_an_open_directory_is_refused() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED state_round_trips_and_an_open_directory_is_refused: needs root (root-owned files)");
            return;
        }
        let root = std::env::temp_dir().join(format!("lw-state-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let result = (|| {
            let dir = StateDir::open(&root)?;
            let saved = vec![Saved {
                key: SysctlKey::new("eth0", "route_localnet"),
                value: "1".into(),
            }];
            dir.write(files::ORIGINAL, &saved)?;
            let back: Option<Vec<Saved>> = dir.read(files::ORIGINAL)?;
            assert_eq!(back, Some(saved));
            assert_eq!(dir.read::<Vec<Saved>>(files::PENDING)?, None);
            Ok::<(), ActError>(())
        })();
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755));
        let refused = StateDir::open(&root);
        let _ = std::fs::remove_dir_all(&root);
        result.expect("state round trip");
        assert!(matches!(refused, Err(ActError::Untrusted { .. })), "{refused:?}");
    }

    #[test]
    fn a_directory_with_nothing_to_remember_goes_away_with_its_lock() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED a_directory_with_nothing_to_remember_goes_away_with_its_lock: needs root");
            return;
        }
        let root = std::env::temp_dir().join(format!("lw-state-discard-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let key = namespace_key().expect("key");
        let kept = (|| {
            let dir = StateDir::open(&root)?;
            assert!(dir.path().join(files::LOCK).exists());
            assert_eq!(
                dir.read::<NetnsRecord>(files::NETNS)?.map(|r| r.inode),
                namespace_inode()
            );
            dir.write(files::ROLLED_BACK, &Vec::<Saved>::new())?;
            Ok::<(), ActError>(())
        })();
        let with_a_record = root.join(&key).join(files::LOCK).exists();
        let emptied = (|| {
            let dir = StateDir::open(&root)?;
            dir.remove(files::ROLLED_BACK)
        })();
        let gone = !root.join(&key).exists();
        // Opening again after it went away works.
        let again = StateDir::open(&root).map(drop);
        let _ = std::fs::remove_dir_all(&root);
        kept.expect("write");
        emptied.expect("remove");
        again.expect("open again");
        assert!(with_a_record, "a directory with a record stays");
        assert!(gone, "a directory with nothing to remember is taken away");
    }
}
