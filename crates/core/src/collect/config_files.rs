//! A daemon's configuration files, read in-process and as the daemon itself would read them.
//!
//! The paths come from the daemon's command line or its own tool's output, which its owner
//! controls; root reading them as root would hand any user any root-only file. So a file is read
//! with the daemon's file-system identity: for a root daemon as root; for another user's daemon
//! on a thread of our own that first takes that user's filesystem uid and gid and supplementary
//! groups (`setfsuid`, `setfsgid`, `setgroups` are per-thread in the kernel; the thread ends
//! when the reads are done), so that the kernel's permission checks — every directory searched
//! and every symlink followed included — are the daemon's, not root's.
//!
//! A root daemon's files are read as root, but only through directories and symlinks root owns
//! ([`super::trusted_path`]): a path through another user's link or directory is not followed,
//! and the refusal names it.
//!
//! Only regular files are read (opened non-blocking, so a FIFO cannot stall the audit), at
//! most [`MAX_FILE`] bytes of each.

use super::trust::{Daemon, Identity, Refusal};
use super::trusted_path::{self, WalkError};
use rustix::fs::{fstat, openat, FileType, Mode, OFlags, Stat, CWD};
use std::io::Read;
use std::os::fd::OwnedFd;

/// The most read from one configuration file.
pub const MAX_FILE: usize = 4 * 1024 * 1024;

/// One file's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileText {
    /// The text (invalid UTF-8 replaced).
    pub text: String,
    /// Whether the file was longer than [`MAX_FILE`] and only its start was read.
    pub truncated: bool,
}

/// Reads files with one daemon's identity; handed to the closure of [`as_daemon`].
pub struct Files {
    cwd: Option<String>,
    /// Reading as root for a root daemon: paths go only through what root owns.
    as_root: bool,
}

impl Files {
    /// `path` made absolute against the daemon's working directory.
    pub fn absolute(&self, path: &str) -> Result<String, String> {
        if path.starts_with('/') {
            return Ok(path.to_string());
        }
        match &self.cwd {
            Some(cwd) => Ok(format!("{}/{path}", cwd.trim_end_matches('/'))),
            None => Err(format!(
                "{path} is relative and the daemon's working directory is unknown"
            )),
        }
    }

    /// Reads one regular file, bounded.
    pub fn read(&self, path: &str) -> Result<FileText, String> {
        let path = self.absolute(path)?;
        let (fd, stat) = self.open(&path, false).map_err(|e| e.message)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(format!("{path} is not a regular file"));
        }
        let mut bytes = Vec::new();
        std::fs::File::from(fd)
            .take(MAX_FILE as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {path}: {e}"))?;
        let truncated = bytes.len() > MAX_FILE;
        bytes.truncate(MAX_FILE);
        Ok(FileText {
            text: String::from_utf8_lossy(&bytes).into_owned(),
            truncated,
        })
    }

    /// Opens `path` (absolute) for reading: through [`trusted_path`] as root, else as the
    /// kernel resolves it for this thread's identity.
    fn open(&self, path: &str, directory: bool) -> Result<(OwnedFd, Stat), WalkError> {
        if self.as_root {
            let opened = trusted_path::open(path, directory)?;
            return Ok((opened.fd, opened.stat));
        }
        let mut flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        if directory {
            flags |= OFlags::DIRECTORY;
        }
        let fd = openat(CWD, path, flags, Mode::empty()).map_err(|e| WalkError {
            message: format!("cannot open {path}: {e}"),
            absent: matches!(e, rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR),
        })?;
        let stat = fstat(&fd).map_err(|e| format!("cannot stat {path}: {e}"))?;
        Ok((fd, stat))
    }

    /// The entries of `path` whose names end with `suffix`, sorted, as absolute paths; `None`
    /// when `path` is not a directory.
    pub fn list(&self, path: &str, suffix: &str) -> Result<Option<Vec<String>>, String> {
        let path = self.absolute(path)?;
        let fd = match self.open(&path, true) {
            Ok((fd, _)) => fd,
            Err(e) if e.absent => return Ok(None),
            Err(e) => return Err(e.message),
        };
        let dir = rustix::fs::Dir::read_from(&fd).map_err(|e| format!("cannot list {path}: {e}"))?;
        let mut files: Vec<String> = dir
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name != "." && name != ".." && name.ends_with(suffix))
            .map(|name| format!("{}/{name}", path.trim_end_matches('/')))
            .collect();
        files.sort();
        Ok(Some(files))
    }
}

/// Runs `work` with the daemon's file-system identity: on this thread for a root daemon (or one
/// running as we do), else on a short-lived thread that takes the daemon's uid, gid and groups
/// for file access and verifies that it did before `work` runs.
pub fn as_daemon<T: Send>(daemon: &Daemon, work: impl FnOnce(&Files) -> T + Send) -> Result<T, Refusal> {
    let mut files = Files {
        cwd: daemon.cwd_path(),
        as_root: false,
    };
    let (uid, gid, groups) = match daemon.identity() {
        Identity::Root => {
            files.as_root = true;
            return Ok(work(&files));
        }
        Identity::User { uid, gid, groups } => (*uid, *gid, groups.clone()),
    };
    // SAFETY: geteuid and getegid cannot fail.
    if unsafe { (libc::geteuid(), libc::getegid()) } == (uid, gid) {
        return Ok(work(&files));
    }
    let pid = daemon.pid();
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("loopwarden-as-daemon".into())
            .spawn_scoped(scope, move || {
                become_for_files(uid, gid, &groups).map_err(|e| {
                    Refusal(format!(
                        "cannot take the identity of pid {pid} (uid {uid}) to read its files: {e}"
                    ))
                })?;
                Ok(work(&files))
            })
            .map_err(|e| Refusal(format!("cannot start a thread to read the files of pid {pid}: {e}")))?
            .join()
            .unwrap_or_else(|_| Err(Refusal(format!("reading the files of pid {pid} panicked"))))
    })
}

/// Takes `uid`, `gid` and `groups` for file access on the calling thread only, and checks that
/// the kernel applied them (`setfsuid` reports failure only by not changing anything).
fn become_for_files(uid: u32, gid: u32, groups: &[u32]) -> Result<(), String> {
    let groups: Vec<rustix::thread::Gid> = groups.iter().map(|g| rustix::thread::Gid::from_raw(*g)).collect();
    rustix::thread::set_thread_groups(&groups).map_err(|e| format!("setgroups: {e}"))?;
    // SAFETY: setfsgid/setfsuid only change the calling thread's credentials (glibc and musl
    // issue the bare system call, unlike setuid); a value of -1 changes nothing and returns the
    // current one, which is how success is checked.
    let (fsgid, fsuid) = unsafe {
        libc::setfsgid(gid);
        let fsgid = libc::setfsgid(u32::MAX) as u32;
        libc::setfsuid(uid);
        (fsgid, libc::setfsuid(u32::MAX) as u32)
    };
    if (fsuid, fsgid) != (uid, gid) {
        return Err(format!("the filesystem ids stayed uid {fsuid} gid {fsgid} (not root?)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files() -> Files {
        Files {
            cwd: Some("/etc".into()),
            as_root: false,
        }
    }

    #[test]
    fn relative_paths_are_the_daemons_and_unknown_without_its_directory() {
        assert_eq!(files().absolute("hosts").as_deref(), Ok("/etc/hosts"));
        assert_eq!(files().absolute("/x").as_deref(), Ok("/x"));
        assert!(Files {
            cwd: None,
            as_root: false
        }
        .absolute("x")
        .is_err());
    }

    #[test]
    fn only_regular_files_are_read_and_a_fifo_does_not_block() {
        let dir = std::env::temp_dir().join(format!("lw-config-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let fifo = dir.join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().expect("utf-8")).expect("c path");
        // SAFETY: mkfifo with a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let err = files()
            .read(fifo.to_str().expect("utf-8"))
            .expect_err("a FIFO is refused");
        assert!(err.contains("not a regular file"), "{err}");
        let big = dir.join("big.cfg");
        std::fs::write(&big, vec![b'x'; MAX_FILE + 10]).expect("write");
        let read = files().read(big.to_str().expect("utf-8")).expect("read");
        assert!(read.truncated && read.text.len() == MAX_FILE);
        let listed = files().list(dir.to_str().expect("utf-8"), ".cfg").expect("list");
        assert_eq!(listed, Some(vec![big.to_string_lossy().into_owned()]));
        assert_eq!(files().list(big.to_str().expect("utf-8"), ".cfg"), Ok(None));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_thread_that_took_another_uid_reads_only_what_that_uid_may() {
        let outcome = std::thread::spawn(|| {
            become_for_files(65534, 65534, &[])?;
            let files = files();
            Ok::<_, String>((files.read("/etc/shadow"), files.read("/etc/passwd")))
        })
        .join()
        .expect("thread");
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            assert!(outcome.is_err(), "only root can take another uid");
            return;
        }
        let (shadow, passwd) = outcome.expect("root takes uid 65534");
        assert!(shadow.is_err_and(|e| e.contains("Permission denied")));
        assert!(passwd.is_ok_and(|f| f.text.contains("root:")));
        // The process itself kept its identity: only that thread changed.
        assert!(files().read("/etc/shadow").is_ok());
    }
}
