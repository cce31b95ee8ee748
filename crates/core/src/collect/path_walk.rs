//! Walking a path one component at a time without following links, on descriptors
//! (`O_PATH | O_NOFOLLOW`), and judging who could change what was walked.
//!
//! A path is only as safe as every directory on the way to it: whoever may write any of them can
//! rename an entry and put a directory of their own in its place. So a path that root trusts (a
//! daemon's executable, see `trust`) or that the guard puts its Unix front in is opened from `/`
//! component by component, never following a link, and each directory is judged by
//! [`untrusted`]. The guard uses the same two pieces for its fronts' directories.

use rustix::fs::{fstat, openat, FileType, Mode, OFlags, Stat};
use std::os::fd::{AsFd, OwnedFd};

/// One component, opened without following it.
#[derive(Debug)]
pub struct Opened {
    /// A descriptor (`O_PATH`) of what the component names.
    pub fd: OwnedFd,
    /// Its metadata.
    pub stat: Stat,
    /// Its type (a symlink is opened as the link itself).
    pub kind: FileType,
    /// Its path, for messages.
    pub path: String,
}

/// Opens `name` in the directory `dir` (whose path is `here`) without following a link.
/// `Ok(None)` when there is no such entry.
pub fn open_no_follow(dir: impl AsFd, here: &str, name: &str) -> Result<Option<Opened>, String> {
    if matches!(name, "" | "." | "..") || name.contains('/') {
        return Err(format!("{here}: `{name}` is not a plain path component"));
    }
    let path = format!("{}/{name}", here.trim_end_matches('/'));
    let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(None),
        Err(e) => return Err(format!("cannot open {path}: {e}")),
    };
    let stat = fstat(&fd).map_err(|e| format!("cannot stat {path}: {e}"))?;
    Ok(Some(Opened {
        kind: FileType::from_raw_mode(stat.st_mode),
        fd,
        stat,
        path,
    }))
}

/// The plain components of an absolute path (`/a//b/` → `a`, `b`); `Err` for a relative path
/// or one with `.` or `..` (which would make the walk and the kernel's lookup differ).
pub fn components(path: &str) -> Result<Vec<&str>, String> {
    if !path.starts_with('/') {
        return Err(format!("{path} is not an absolute path"));
    }
    let names: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if let Some(dot) = names.iter().find(|n| matches!(**n, "." | "..")) {
        return Err(format!("{path} has a `{dot}` component"));
    }
    Ok(names)
}

/// What makes a file or directory on a path untrustworthy: an owner not in `owners`, or write
/// permission for its group or others. With `sticky_ok`, a sticky directory writable by others
/// (`/tmp`) is accepted: there only an entry's owner may rename or remove it, so the next
/// component — judged in turn — cannot be swapped. `what` names the kind in messages.
pub fn untrusted(stat: &Stat, path: &str, what: &str, owners: &[u32], sticky_ok: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if !owners.contains(&stat.st_uid) {
        let expected: Vec<String> = owners
            .iter()
            .map(|&u| if u == 0 { "root".to_string() } else { format!("uid {u}") })
            .collect();
        problems.push(format!(
            "{what} {path} is owned by uid {}, not {}",
            stat.st_uid,
            expected.join(" or ")
        ));
    }
    let mode = stat.st_mode & 0o7777;
    let sticky = mode & 0o1000 != 0;
    if mode & 0o022 != 0 && !(sticky_ok && sticky) {
        let who = match (mode & 0o020 != 0, mode & 0o002 != 0) {
            (true, true) => "group and others",
            (true, false) => "its group",
            _ => "others",
        };
        problems.push(format!("{what} {path} (mode {mode:04o}) is writable by {who}"));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fs::CWD;

    #[test]
    fn components_are_plain_names_of_an_absolute_path() {
        assert_eq!(components("/a//b/"), Ok(vec!["a", "b"]));
        assert!(components("a/b").is_err());
        assert!(components("/a/../b").unwrap_err().contains("`..`"));
    }

    #[test]
    fn a_symlink_is_opened_as_itself_and_a_missing_entry_is_none() {
        let dir = std::env::temp_dir().join(format!("lw-walk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let _ = std::fs::remove_file(dir.join("link"));
        std::os::unix::fs::symlink("/", dir.join("link")).unwrap();
        let here = dir.display().to_string();
        let base = openat(CWD, here.as_str(), OFlags::PATH | OFlags::CLOEXEC, Mode::empty()).unwrap();
        let link = open_no_follow(&base, &here, "link").unwrap().unwrap();
        assert_eq!(link.kind, FileType::Symlink);
        assert!(open_no_follow(&base, &here, "missing").unwrap().is_none());
        assert!(open_no_follow(&base, &here, "..").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sticky_world_writable_directories_pass_only_when_asked() {
        let tmp = fstat(openat(CWD, "/tmp", OFlags::PATH, Mode::empty()).unwrap()).unwrap();
        if tmp.st_mode & 0o7777 != 0o1777 || tmp.st_uid != 0 {
            eprintln!("SKIPPED sticky_world_writable…: /tmp is not root's 1777 here");
            return;
        }
        assert!(untrusted(&tmp, "/tmp", "directory", &[0], true).is_empty());
        let strict = untrusted(&tmp, "/tmp", "directory", &[0], false);
        assert_eq!(
            strict,
            vec!["directory /tmp (mode 1777) is writable by group and others"]
        );
        let foreign = untrusted(&tmp, "/tmp", "directory", &[4242], true);
        assert_eq!(foreign, vec!["directory /tmp is owned by uid 0, not uid 4242"]);
    }
}
