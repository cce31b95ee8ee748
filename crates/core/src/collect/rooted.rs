//! Files as a process sees them: paths looked up inside its root directory and mount namespace
//! (`/proc/PID/root`), never in ours.
//!
//! A container's socket `/run/app.sock`, its `/etc/hosts` and its runtime's state name files of
//! the container's file system. Looking them up from the host would judge another file (or none),
//! and following a symlink the container planted would leave its root. So every lookup starts
//! at a descriptor of the process's root and goes through `openat2(2)` with `RESOLVE_IN_ROOT`
//! (absolute symlinks and `..` stay inside that root, as they do for the process itself) and
//! `RESOLVE_NO_MAGICLINKS` (no `/proc/…/fd` escape). The root is pinned once, so a pid reused
//! later cannot redirect the lookups.
//!
//! [`Root::Own`] is our own root: plain lookups, exactly what collecting one namespace always did.

use rustix::fs::{fstat, openat, openat2, readlinkat, FileType, Mode, OFlags, ResolveFlags, Stat, CWD};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// What a lookup found, as far as permission checks and identity go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    /// Directory, symlink, socket, regular file or other.
    pub kind: FileType,
    /// Owner uid.
    pub uid: u32,
    /// Owner gid.
    pub gid: u32,
    /// Permission bits (`st_mode & 0o7777`).
    pub mode: u32,
    /// Inode number.
    pub ino: u64,
    /// Device major number.
    pub major: u32,
    /// Device minor number.
    pub minor: u32,
}

impl From<&Stat> for Meta {
    fn from(st: &Stat) -> Meta {
        Meta {
            kind: FileType::from_raw_mode(st.st_mode),
            uid: st.st_uid,
            gid: st.st_gid,
            mode: st.st_mode & 0o7777,
            ino: st.st_ino,
            major: rustix::fs::major(st.st_dev),
            minor: rustix::fs::minor(st.st_dev),
        }
    }
}

/// A root directory to look paths up in.
#[derive(Debug)]
pub enum Root {
    /// Ours: the file system loopwarden itself sees.
    Own,
    /// Another process's, pinned by a descriptor of `/proc/PID/root`.
    Process {
        /// The process whose root it is (for messages).
        pid: u32,
        /// `O_PATH` descriptor of its root directory.
        fd: OwnedFd,
    },
}

/// The most read from one small file (`/etc/hosts`, a runtime's state file).
pub const MAX_SMALL_FILE: u64 = 8 * 1024 * 1024;

impl Root {
    /// The root of process `pid`, pinned now. Fails when the process is gone or we may not
    /// follow its root (not privileged).
    pub fn of_process(pid: u32) -> io::Result<Root> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = openat(CWD, format!("/proc/{pid}/root"), flags, Mode::empty())?;
        Ok(Root::Process { pid, fd })
    }

    /// "pid N's file system", or "this host's file system", for messages.
    pub fn describe(&self) -> String {
        match self {
            Root::Own => "this host's file system".to_string(),
            Root::Process { pid, .. } => format!("the file system of pid {pid}"),
        }
    }

    /// Opens `path` (absolute, as the process would name it) with `flags`.
    fn open(&self, path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
        match self {
            Root::Own => Ok(openat(CWD, path, flags | OFlags::CLOEXEC, Mode::empty())?),
            Root::Process { fd, .. } => {
                let relative = path.strip_prefix("/").unwrap_or(path);
                let relative = if relative.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    relative
                };
                let resolve = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
                Ok(openat2(fd, relative, flags | OFlags::CLOEXEC, Mode::empty(), resolve)?)
            }
        }
    }

    /// `lstat(2)` of `path`: a final symlink is described, not followed.
    pub fn lstat(&self, path: &Path) -> io::Result<Meta> {
        let fd = self.open(path, OFlags::PATH | OFlags::NOFOLLOW)?;
        Ok(Meta::from(&fstat(&fd)?))
    }

    /// `stat(2)` of `path`: symlinks followed (inside the root).
    pub fn stat(&self, path: &Path) -> io::Result<Meta> {
        let fd = self.open(path, OFlags::PATH)?;
        Ok(Meta::from(&fstat(&fd)?))
    }

    /// The target of the symlink at `path`.
    pub fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        let fd = self.open(path, OFlags::PATH | OFlags::NOFOLLOW)?;
        let target = readlinkat(&fd, "", Vec::new())?;
        let bytes: Vec<u8> = target.into_bytes();
        Ok(PathBuf::from(
            <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(bytes),
        ))
    }

    /// The names in the directory at `path`, sorted (`.` and `..` left out).
    pub fn list(&self, path: &Path) -> io::Result<Vec<String>> {
        let fd = self.open(path, OFlags::RDONLY | OFlags::DIRECTORY)?;
        let mut names: Vec<String> = rustix::fs::Dir::read_from(&fd)?
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name != "." && name != "..")
            .collect();
        names.sort();
        Ok(names)
    }

    /// Reads a small file that only root may have written: a regular file owned by uid 0, not
    /// writable by group or others, at most [`MAX_SMALL_FILE`] bytes. `Ok(None)` when it does
    /// not exist; `Err` says which condition failed. Root reads nothing another user chose.
    pub fn read_root_file(&self, path: &Path) -> Result<Option<Vec<u8>>, String> {
        let shown = || format!("{} (in {})", path.display(), self.describe());
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY;
        let fd = match self.open(path, flags) {
            Ok(fd) => fd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot open {}: {e}", shown())),
        };
        let st = fstat(&fd).map_err(|e| format!("cannot stat {}: {e}", shown()))?;
        let meta = Meta::from(&st);
        if meta.kind != FileType::RegularFile {
            return Err(format!("{} is not a regular file", shown()));
        }
        if meta.uid != 0 {
            return Err(format!("{} is owned by uid {}, not root: not read", shown(), meta.uid));
        }
        if meta.mode & 0o022 != 0 {
            return Err(format!(
                "{} (mode {:04o}) is writable by group or others: not read",
                shown(),
                meta.mode
            ));
        }
        if st.st_size as u64 > MAX_SMALL_FILE {
            return Err(format!(
                "{} is {} bytes, more than the {} MiB read",
                shown(),
                st.st_size,
                MAX_SMALL_FILE / (1024 * 1024)
            ));
        }
        let mut bytes = Vec::new();
        use std::io::Read;
        std::fs::File::from(fd)
            .take(MAX_SMALL_FILE)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read {}: {e}", shown()))?;
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    struct TempDir(PathBuf);
    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_dir(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("lw-rooted-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    /// A process of our own whose root is `dir` (chroot), so that lookups through its root can be
    /// compared with ours. Needs root.
    fn chrooted(dir: &Path) -> Option<std::process::Child> {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::copy("/bin/busybox", dir.join("bin/busybox")).ok()?;
        let mut child = std::process::Command::new("chroot")
            .arg(dir)
            .args(["/bin/busybox", "sh", "-c", "echo ready; exec /bin/busybox sleep 30"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .ok()?;
        let mut line = [0u8; 6];
        use std::io::Read;
        child.stdout.as_mut()?.read_exact(&mut line).ok()?;
        Some(child)
    }

    #[test]
    fn lookups_through_a_process_root_stay_inside_it() {
        let dir = temp_dir("jail");
        let Some(mut child) = chrooted(&dir.0) else {
            eprintln!("SKIPPED lookups_through_a_process_root_stay_inside_it: needs root and busybox");
            return;
        };
        std::fs::create_dir_all(dir.0.join("etc")).unwrap();
        std::fs::write(dir.0.join("etc/hosts"), "127.0.0.1 localhost jail\n").unwrap();
        std::fs::set_permissions(dir.0.join("etc/hosts"), std::fs::Permissions::from_mode(0o644)).unwrap();
        // A symlink planted to leave the root: absolute, and through `..`.
        symlink("/etc/passwd", dir.0.join("escape")).unwrap();
        symlink("../../../../etc/passwd", dir.0.join("climb")).unwrap();
        let root = Root::of_process(child.id()).unwrap();

        let hosts = root.read_root_file(Path::new("/etc/hosts")).unwrap().unwrap();
        assert_eq!(String::from_utf8(hosts).unwrap(), "127.0.0.1 localhost jail\n");
        for planted in ["/escape", "/climb"] {
            assert!(root.read_root_file(Path::new(planted)).unwrap().is_none(), "{planted}");
        }
        assert_eq!(
            root.read_link(Path::new("/escape")).unwrap(),
            PathBuf::from("/etc/passwd")
        );
        assert_eq!(root.lstat(Path::new("/escape")).unwrap().kind, FileType::Symlink);
        assert_eq!(root.stat(Path::new("/etc")).unwrap().kind, FileType::Directory);
        assert!(root.list(Path::new("/")).unwrap().contains(&"etc".to_string()));
        // SAFETY: kill(2) on the child this test started.
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn only_root_owned_files_nobody_else_may_write_are_read() {
        let dir = temp_dir("owned");
        let file = dir.0.join("state.json");
        std::fs::write(&file, "{}").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let err = Root::Own.read_root_file(&file).unwrap_err();
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            assert!(err.contains("writable by group or others"), "{err}");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(Root::Own.read_root_file(&file).unwrap().as_deref(), Some(&b"{}"[..]));
        } else {
            assert!(err.contains("not root"), "{err}");
        }
        assert_eq!(Root::Own.read_root_file(&dir.0.join("missing")), Ok(None));
        assert!(Root::Own
            .read_root_file(&dir.0)
            .unwrap_err()
            .contains("not a regular file"));
    }
}
