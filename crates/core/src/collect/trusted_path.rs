//! Opening a root daemon's configuration as root only through what root controls.
//!
//! A root daemon's file names come from its command line and its own configuration, and the
//! path may pass through directories and symlinks of other users (an include in a user's
//! directory, a symlink a user owns). Root following them would read whatever that user points
//! at (`/etc/shadow`) into the snapshot. So the path is walked one component at a time, each
//! opened with `O_PATH | O_NOFOLLOW` and examined by its descriptor: every directory must be
//! root's and not writable by group or others (unless sticky: then nobody else can replace an
//! entry root owns), every symlink must be root's (its target is then walked the same way), and
//! the file itself is opened from its verified directory with `O_NOFOLLOW`. Anything else is
//! refused with the component and its owner named: the caller reports the file as not read.

use rustix::fs::{fstat, openat, readlinkat, FileType, Mode, OFlags, Stat, CWD};
use std::collections::VecDeque;
use std::os::fd::OwnedFd;

/// How many symlinks one path may pass through (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Why a path was not opened: its message names the component and why; `absent` when nothing
/// is there (no such file, or a non-directory where a directory was needed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkError {
    /// What went wrong, naming the path or component.
    pub message: String,
    /// Whether the path leads nowhere, rather than somewhere refused.
    pub absent: bool,
}

impl From<String> for WalkError {
    fn from(message: String) -> WalkError {
        WalkError { message, absent: false }
    }
}

impl From<&str> for WalkError {
    fn from(message: &str) -> WalkError {
        message.to_string().into()
    }
}

/// A failed `openat` of `shown`.
fn open_error(shown: &str, e: rustix::io::Errno) -> WalkError {
    WalkError {
        message: format!("cannot open {shown}: {e}"),
        absent: matches!(e, rustix::io::Errno::NOENT | rustix::io::Errno::NOTDIR),
    }
}

/// What the walk found at the end of a path: the open file (or directory) and its status.
pub struct Opened {
    /// The descriptor, opened for reading.
    pub fd: OwnedFd,
    /// Its status, from the descriptor.
    pub stat: Stat,
}

/// Opens `path` (absolute) for reading, refusing any directory or symlink on the way that is not
/// root's or that others may change. `directory` asks for a directory at the end (for listing);
/// otherwise the end is opened non-blocking (a FIFO cannot stall the reader).
pub fn open(path: &str, directory: bool) -> Result<Opened, WalkError> {
    if !path.starts_with('/') {
        return Err(format!("{path} is not an absolute path").into());
    }
    let root = openat(
        CWD,
        "/",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("cannot open /: {e}"))?;
    // The directories walked so far, `/` first, each with its path (for `..` and messages).
    let mut dirs: Vec<(OwnedFd, String)> = vec![(root, String::new())];
    let mut rest: VecDeque<String> = components(path);
    let mut links = 0usize;
    while let Some(name) = rest.pop_front() {
        if name == ".." {
            if dirs.len() > 1 {
                dirs.pop();
            }
            continue;
        }
        let (parent, parent_path) = dirs.last().ok_or("the walk lost its root")?;
        let shown = format!("{parent_path}/{name}");
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = openat(parent, name.as_str(), flags, Mode::empty()).map_err(|e| open_error(&shown, e))?;
        let stat = fstat(&fd).map_err(|e| format!("cannot stat {shown}: {e}"))?;
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                refuse_foreign(&shown, "a symlink", &stat)?;
                links += 1;
                if links > MAX_LINKS {
                    return Err(format!("{path}: more than {MAX_LINKS} symlinks").into());
                }
                let target =
                    readlinkat(&fd, "", Vec::new()).map_err(|e| format!("cannot read the link {shown}: {e}"))?;
                let target = target.to_string_lossy().into_owned();
                if target.starts_with('/') {
                    dirs.truncate(1);
                }
                for (i, part) in components(&target).into_iter().enumerate() {
                    rest.insert(i, part);
                }
            }
            FileType::Directory => {
                refuse_foreign(&shown, "a directory", &stat)?;
                refuse_writable(&shown, &stat)?;
                dirs.push((fd, shown));
            }
            _ if !rest.is_empty() || directory => {
                return Err(WalkError {
                    message: format!("{shown} is not a directory"),
                    absent: true,
                })
            }
            _ => return reopen(parent, &name, &shown, &stat),
        }
    }
    // The path named a directory (or `/`): open the last one walked.
    let (dir, shown) = dirs.last().ok_or("the walk lost its root")?;
    let shown = if shown.is_empty() { "/" } else { shown.as_str() };
    if !directory {
        return Err(format!("{shown} is a directory").into());
    }
    let fd = openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| open_error(shown, e))?;
    let stat = fstat(&fd).map_err(|e| format!("cannot stat {shown}: {e}"))?;
    Ok(Opened { fd, stat })
}

/// The last component opened for reading from its verified parent, without following a link,
/// and checked to be the very file examined.
fn reopen(parent: &OwnedFd, name: &str, shown: &str, seen: &Stat) -> Result<Opened, WalkError> {
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NOCTTY | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let fd = openat(parent, name, flags, Mode::empty()).map_err(|e| open_error(shown, e))?;
    let stat = fstat(&fd).map_err(|e| format!("cannot stat {shown}: {e}"))?;
    if (stat.st_dev, stat.st_ino) != (seen.st_dev, seen.st_ino) {
        return Err(format!("{shown} was replaced while it was opened").into());
    }
    Ok(Opened { fd, stat })
}

/// The non-empty components of `path` other than `.`.
fn components(path: &str) -> VecDeque<String> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_string)
        .collect()
}

/// Refuses a directory or symlink that is not root's: its owner decides where the path leads.
fn refuse_foreign(shown: &str, what: &str, stat: &Stat) -> Result<(), WalkError> {
    if stat.st_uid == 0 {
        return Ok(());
    }
    Err(format!(
        "not read: {shown} is {what} owned by uid {}, not root, so root does not follow it (it could lead to any \
         file root may read)",
        stat.st_uid
    )
    .into())
}

/// Refuses a directory that group or others may change without the sticky bit (they could put
/// a link of theirs where the path leads).
fn refuse_writable(shown: &str, stat: &Stat) -> Result<(), WalkError> {
    let mode = stat.st_mode & 0o7777;
    if mode & 0o022 == 0 || mode & 0o1000 != 0 {
        return Ok(());
    }
    Err(format!(
        "not read: the directory {shown} is writable by {} (mode {mode:o}), so root does not follow paths \
         through it",
        if mode & 0o002 != 0 { "everyone" } else { "its group" }
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};

    /// A scratch directory under /tmp (sticky, root's), 0755, removed when dropped.
    struct Scratch(std::path::PathBuf);

    impl Scratch {
        fn new(tag: &str) -> Scratch {
            let dir = std::env::temp_dir().join(format!("lw-trusted-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).expect("mkdir");
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
            Scratch(dir)
        }
        fn path(&self, name: &str) -> String {
            self.0.join(name).to_string_lossy().into_owned()
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Whether the test can run (as root: it makes files of other owners); a full run
    /// (`LOOPWARDEN_E2E=1`) fails instead of skipping.
    fn needs_root(test: &str) -> bool {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            return true;
        }
        assert!(
            std::env::var_os("LOOPWARDEN_E2E").is_none_or(|v| v != "1"),
            "{test} needs root (LOOPWARDEN_E2E=1)"
        );
        eprintln!("SKIPPED {test}: needs root (files of other owners)");
        false
    }

    fn chown_link(path: &str, uid: u32) {
        std::os::unix::fs::lchown(path, Some(uid), Some(uid)).expect("lchown");
    }

    #[test]
    fn roots_links_and_directories_are_followed() {
        if !needs_root("roots_links_and_directories_are_followed") {
            return;
        }
        let s = Scratch::new("follow");
        std::fs::create_dir(s.path("available")).expect("mkdir");
        std::fs::write(s.path("available/site.conf"), "listen 80;\n").expect("write");
        std::fs::create_dir(s.path("enabled")).expect("mkdir");
        // Debian's sites-enabled layout: a relative root-owned link into a sibling directory.
        symlink("../available/site.conf", s.path("enabled/site.conf")).expect("symlink");
        let opened = open(&s.path("enabled/./site.conf"), false).expect("followed");
        assert_eq!(FileType::from_raw_mode(opened.stat.st_mode), FileType::RegularFile);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(opened.fd), &mut text).expect("read");
        assert_eq!(text, "listen 80;\n");
        assert!(open(&s.path("enabled"), true).is_ok());
        assert!(open(&s.path("enabled"), false).is_err_and(|e| e.message.contains("is a directory") && !e.absent));
        assert!(open("/etc/hostname/..", false).is_err_and(|e| e.message.contains("not a directory") && e.absent));
        assert!(open(&s.path("available/site.conf"), true).is_err_and(|e| e.absent));
        assert!(open(&s.path("missing"), false).is_err_and(|e| e.absent));
    }

    #[test]
    fn another_users_link_or_directory_is_refused_naming_it() {
        if !needs_root("another_users_link_or_directory_is_refused_naming_it") {
            return;
        }
        let s = Scratch::new("refuse");
        // A link owned by uid 4242 in a root directory, to a root-only file.
        let link = s.path("user-link.conf");
        symlink("/etc/shadow", &link).expect("symlink");
        chown_link(&link, 4242);
        let err = open(&link, false).err().expect("refused").message;
        assert!(
            err.contains(&link) && err.contains("symlink owned by uid 4242"),
            "{err}"
        );
        // A directory owned by uid 4242 on the way, and one writable by everyone without the
        // sticky bit.
        std::fs::create_dir(s.path("user")).expect("mkdir");
        std::fs::write(s.path("user/x.conf"), "x").expect("write");
        std::os::unix::fs::chown(s.path("user"), Some(4242), Some(4242)).expect("chown");
        let err = open(&s.path("user/x.conf"), false).err().expect("refused").message;
        assert!(err.contains("directory owned by uid 4242"), "{err}");
        std::fs::create_dir(s.path("open")).expect("mkdir");
        std::fs::set_permissions(s.path("open"), std::fs::Permissions::from_mode(0o777)).expect("chmod");
        std::fs::write(s.path("open/x.conf"), "x").expect("write");
        let err = open(&s.path("open/x.conf"), false).err().expect("refused").message;
        assert!(err.contains("writable by everyone"), "{err}");
        // A root link that leads through the user's directory is refused there too.
        symlink(s.path("user/x.conf"), s.path("root-link.conf")).expect("symlink");
        let err = open(&s.path("root-link.conf"), false).err().expect("refused").message;
        assert!(err.contains(&s.path("user")) && err.contains("uid 4242"), "{err}");
        // A file of another user's in a root directory is read (it is the daemon's input; no
        // link is followed to reach it).
        std::fs::write(s.path("theirs.conf"), "y").expect("write");
        std::os::unix::fs::chown(s.path("theirs.conf"), Some(4242), Some(4242)).expect("chown");
        assert!(open(&s.path("theirs.conf"), false).is_ok());
    }

    #[test]
    fn a_loop_of_links_ends() {
        if !needs_root("a_loop_of_links_ends") {
            return;
        }
        let s = Scratch::new("loop");
        symlink(s.path("b"), s.path("a")).expect("symlink");
        symlink(s.path("a"), s.path("b")).expect("symlink");
        assert!(open(&s.path("a"), false).is_err_and(|e| e.message.contains("more than 40 symlinks")));
    }
}
