//! `--netns`: acting in another network namespace (a container's needs its own copy of the
//! table: the host's does not cover it). The work runs on a dedicated thread that joined the
//! namespace with `setns(2)`; threads and processes it starts (collection, `nft`, the rollback
//! watchdog) inherit it, and the caller's thread never changes namespace.

use crate::error::ActError;
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// The namespace file of `target`: a name under `/run/netns` (`ip netns`), a pid, or a path —
/// read as every verb reads `--netns` (a number that is both a name and a pid is refused).
pub fn path_of(target: &str) -> Result<PathBuf, ActError> {
    use loopwarden_core::collect::netns::{target_path, TargetError};
    target_path(target).map_err(|e| ActError::Netns {
        target: target.to_string(),
        why: match e {
            TargetError::Malformed(_) => "expected an `ip netns` name, a pid or a path".to_string(),
            other => other.to_string(),
        },
    })
}

/// Whether the calling thread is in the host's network namespace (PID 1's): the persistent copy
/// under `/` is the host's, and an apply in another namespace must not touch it.
pub fn is_initial() -> bool {
    use std::os::unix::fs::MetadataExt;
    let inode = |p: &str| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    inode("/proc/thread-self/ns/net").is_some_and(|own| Some(own) == inode("/proc/1/ns/net"))
}

/// Runs `f` on a new thread inside the network namespace `target` and returns its result.
pub fn run_in<R, F>(target: &str, f: F) -> Result<R, ActError>
where
    R: Send + 'static,
    F: FnOnce() -> R + Send + 'static,
{
    let path = path_of(target)?;
    let file = std::fs::File::open(&path).map_err(|e| ActError::Netns {
        target: target.to_string(),
        why: format!("{}: {e}", path.display()),
    })?;
    let name = target.to_string();
    let handle = std::thread::Builder::new()
        .name(format!("netns-{name}"))
        .spawn(move || {
            // SAFETY: setns(2) on a file we opened; it changes only this thread's namespace.
            if unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(ActError::Netns {
                    target: name,
                    why: std::io::Error::last_os_error().to_string(),
                });
            }
            Ok(f())
        })
        .map_err(|e| ActError::Netns {
            target: target.to_string(),
            why: format!("cannot start a thread: {e}"),
        })?;
    handle.join().unwrap_or_else(|_| {
        Err(ActError::Netns {
            target: target.to_string(),
            why: "the work in the namespace panicked".into(),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::path_of;

    #[test]
    fn names_pids_and_paths() {
        assert_eq!(path_of("web").expect("name").to_str(), Some("/run/netns/web"));
        assert_eq!(path_of("1234").expect("pid").to_str(), Some("/proc/1234/ns/net"));
        assert_eq!(
            path_of("/proc/1/ns/net").expect("path").to_str(),
            Some("/proc/1/ns/net")
        );
        for bad in ["", "..", "a/b"] {
            assert!(path_of(bad).is_err(), "{bad}");
        }
    }
}
