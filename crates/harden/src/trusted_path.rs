//! Paths root may write, read or remove through (the persistent copy under `--root`): never one
//! with a component another user controls. A directory of someone else's, or one anybody may
//! write without the sticky bit, lets its owner swap what is below it between a check and a
//! write — root would then write `/etc` files wherever they point. So every component, as given
//! and as resolved, must be owned by root, and a directory writable by group or others must be
//! sticky (like `/tmp`, where nobody else can rename or remove root's entries). Directories that
//! are missing are created one by one, root's, mode 0755.

use crate::error::{io, ActError};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// Checks every existing component of `path` (as given, and as resolved through root's own
/// symlinks); a missing tail is fine.
pub fn check(path: &Path) -> Result<(), ActError> {
    let path = absolute(path)?;
    let mut existing = PathBuf::from("/");
    for part in path.components().skip(1) {
        let next = existing.join(part.as_os_str());
        match std::fs::symlink_metadata(&next) {
            Ok(meta) => trusted(&next, &meta)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
            Err(e) => return Err(io(next)(e)),
        }
        existing = next;
    }
    // Root's own symlinks are followed: where they lead must be root's as well.
    let real = std::fs::canonicalize(&existing).map_err(io(&existing))?;
    for ancestor in real.ancestors() {
        let meta = std::fs::symlink_metadata(ancestor).map_err(io(ancestor))?;
        trusted(ancestor, &meta)?;
    }
    Ok(())
}

/// Creates `dir` and its missing parents (root's, mode 0755) after [`check`]ing the path.
pub fn create_dir_all(dir: &Path) -> Result<(), ActError> {
    check(dir)?;
    let dir = absolute(dir)?;
    let mut at = PathBuf::from("/");
    for part in dir.components().skip(1) {
        at.push(part.as_os_str());
        match std::fs::DirBuilder::new().mode(0o755).create(&at) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(&at)(e)),
        }
    }
    check(&dir)
}

/// `path` made absolute against the working directory, without `..` (which would climb out of
/// a checked directory through a symlink).
fn absolute(path: &Path) -> Result<PathBuf, ActError> {
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(ActError::Untrusted {
            path: path.to_path_buf(),
            why: "has a `..` component: give the path without it".into(),
        });
    }
    if path.is_absolute() {
        return Ok(path.to_path_buf());
    }
    let cwd = std::env::current_dir().map_err(io(path))?;
    Ok(cwd.join(path))
}

/// An error unless `meta` (of `path`, not followed) is root's and, for a directory writable by
/// group or others, sticky.
fn trusted(path: &Path, meta: &std::fs::Metadata) -> Result<(), ActError> {
    let what = if meta.file_type().is_symlink() {
        "a symlink"
    } else if meta.is_dir() {
        "a directory"
    } else {
        "a file"
    };
    if meta.uid() != 0 {
        return Err(ActError::Untrusted {
            path: path.to_path_buf(),
            why: format!(
                "{what} owned by uid {}, not root: loopwarden does not write, read or remove through a path another \
                 user controls (they could redirect it anywhere); give a --root whose every directory is root's",
                meta.uid()
            ),
        });
    }
    let sticky = meta.mode() & 0o1000 != 0;
    if meta.is_dir() && meta.mode() & 0o022 != 0 && !sticky {
        return Err(ActError::Untrusted {
            path: path.to_path_buf(),
            why: format!(
                "a directory others may write (mode {:o}) without the sticky bit: anyone could swap what is below it",
                meta.mode() & 0o7777
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn root_s_directories_pass_and_another_users_symlink_or_directory_does_not() {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED root_s_directories_pass_and_another_users_symlink_or_directory_does_not: needs root");
            return;
        }
        let base = std::env::temp_dir().join(format!("lw-trusted-path-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir(&base).expect("base");
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let theirs = base.join("theirs");
        std::fs::create_dir(&theirs).expect("theirs");
        // uid 65534 (nobody) stands for another user here; tests/harden.rs uses a real account.
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown");
        std::os::unix::fs::symlink(&theirs, base.join("root-link")).expect("root's link");
        let results = (
            create_dir_all(&base.join("mine/etc/sysctl.d")),
            check(&theirs.join("etc")),
            check(&base.join("root-link/etc")),
            check(Path::new("/tmp/../etc")),
        );
        let _ = std::fs::remove_dir_all(&base);
        results.0.expect("root's own directories, created on the way");
        for refused in [results.1, results.2] {
            assert!(
                matches!(&refused, Err(ActError::Untrusted { why, .. }) if why.contains("owned by uid 65534")),
                "{refused:?}"
            );
        }
        assert!(results.3.is_err());
    }
}
