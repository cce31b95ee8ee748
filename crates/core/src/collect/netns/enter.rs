//! Entering network namespaces on dedicated OS threads.
//!
//! Namespace membership is per thread: a thread that calls `setns(2)` moves alone, and what it
//! opens afterwards — netlink sockets, `/proc/thread-self/net`, `/proc/sys/net`, the programs it
//! starts — belongs to the namespace it entered. So each worker is a plain thread of its own
//! (never an async runtime's worker, whose tasks would run in whatever namespace it happens to
//! be in), takes namespaces from a shared queue one after the other, and ends when the queue is
//! empty; the caller's thread never changes namespace.

use rustix::fs::{fstat, openat, Mode, OFlags, CWD};
use rustix::thread::{move_into_link_name_space, LinkNameSpaceType};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Why a namespace could not be entered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot enter network namespace net:[{inode}]: {why}")]
pub struct EnterError {
    /// The namespace.
    pub inode: u64,
    /// What failed, for every handle tried.
    pub why: String,
}

/// Opens the first of `handles` that still is namespace `inode` (a pid may have exited and been
/// reused; a bind mount may have been removed).
pub fn open(inode: u64, handles: &[PathBuf]) -> Result<OwnedFd, EnterError> {
    let mut tried = Vec::new();
    for handle in handles {
        match open_one(handle, inode) {
            Ok(fd) => return Ok(fd),
            Err(why) => tried.push(format!("{}: {why}", handle.display())),
        }
    }
    Err(EnterError {
        inode,
        why: if tried.is_empty() {
            "no process or bind mount holds it any more".to_string()
        } else {
            tried.join("; ")
        },
    })
}

fn open_one(handle: &Path, inode: u64) -> Result<OwnedFd, String> {
    let fd = openat(CWD, handle, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(|e| e.to_string())?;
    let found = fstat(&fd).map_err(|e| e.to_string())?.st_ino;
    if found == inode {
        return Ok(fd);
    }
    // What holds the handle now: another namespace, or (an `ip netns` deleted meanwhile) the
    // plain file its mount point is.
    const NS_GET_NSTYPE: libc::c_ulong = 0xb703;
    // SAFETY: ioctl(2) with a request that takes no argument, on a descriptor we own.
    let kind = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&fd), NS_GET_NSTYPE) };
    Err(if kind == libc::CLONE_NEWNET {
        format!("is net:[{found}] now, another namespace")
    } else {
        "is no longer a network namespace (it went away)".to_string()
    })
}

/// Moves the calling thread into the network namespace `fd` (nothing to do, and no privilege
/// needed, when it is there already: an unprivileged run still collects its own namespace).
pub fn enter(fd: &OwnedFd, inode: u64) -> Result<(), EnterError> {
    if super::discover::ns_inode("/proc/thread-self/ns/net") == Some(inode) {
        return Ok(());
    }
    move_into_link_name_space(fd.as_fd(), Some(LinkNameSpaceType::Network)).map_err(|e| EnterError {
        inode,
        why: format!("setns: {e}"),
    })
}

/// Runs `work` for every item of `items` on up to `threads` dedicated threads, each item in the
/// namespace `namespace_of` gives it (an inode and the handles that open it). Results come back
/// in the order of `items`; `done` is called after each item with how many are done.
pub fn for_each<T, R>(
    items: &[T],
    threads: usize,
    namespace_of: &(dyn Fn(&T) -> (u64, Vec<PathBuf>) + Sync),
    work: &(dyn Fn(&T) -> R + Sync),
    done: &(dyn Fn(usize, &T) + Sync),
) -> Vec<Result<R, EnterError>>
where
    T: Sync,
    R: Send,
{
    let next = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<R, EnterError>>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let worker = || loop {
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(item) = items.get(index) else { break };
        let (inode, handles) = namespace_of(item);
        let result = open(inode, &handles)
            .and_then(|fd| enter(&fd, inode))
            .map(|()| work(item));
        if let Ok(mut slots) = results.lock() {
            slots[index] = Some(result);
        }
        done(finished.fetch_add(1, Ordering::Relaxed) + 1, item);
    };
    std::thread::scope(|scope| {
        let spawned: Vec<_> = (0..threads.clamp(1, items.len().max(1)))
            .filter_map(|i| {
                std::thread::Builder::new()
                    .name(format!("loopwarden-netns-{i}"))
                    .spawn_scoped(scope, worker)
                    .ok()
            })
            .collect();
        for handle in spawned {
            // A worker that panicked leaves its item's slot empty: reported below.
            let _ = handle.join();
        }
    });
    let slots = results.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    slots
        .into_iter()
        .zip(items)
        .map(|(slot, item)| {
            slot.unwrap_or_else(|| {
                Err(EnterError {
                    inode: namespace_of(item).0,
                    why: "no thread could be started, or the collection panicked".to_string(),
                })
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handle_that_is_another_namespace_now_is_refused() {
        let own = super::super::discover::ns_inode("/proc/thread-self/ns/net").expect("own");
        let handles = vec![PathBuf::from("/proc/thread-self/ns/net")];
        assert!(open(own, &handles).is_ok());
        let err = open(own + 1, &handles).unwrap_err();
        assert!(err.why.contains(&format!("is net:[{own}] now")), "{err}");
        assert!(open(own, &[]).unwrap_err().why.contains("no process or bind mount"));
        // A plain file where a namespace was mounted (an `ip netns` deleted meanwhile).
        let file = std::env::temp_dir().join(format!("lw-enter-{}", std::process::id()));
        std::fs::write(&file, "").expect("file");
        let err = open(own, std::slice::from_ref(&file)).unwrap_err();
        let _ = std::fs::remove_file(&file);
        assert!(err.why.contains("is no longer a network namespace"), "{err}");
    }

    #[test]
    fn work_runs_on_threads_in_the_namespace_and_comes_back_in_order() {
        // SAFETY: geteuid cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIPPED work_runs_on_threads_in_the_namespace_and_comes_back_in_order: setns needs root");
            return;
        }
        let own = super::super::discover::ns_inode("/proc/thread-self/ns/net").expect("own");
        let items: Vec<u32> = (0..5).collect();
        let me = std::thread::current().id();
        let results = for_each(
            &items,
            2,
            &|_| (own, vec![PathBuf::from(format!("/proc/{}/ns/net", std::process::id()))]),
            &|i| {
                assert_ne!(std::thread::current().id(), me, "never on the caller's thread");
                (*i, super::super::discover::ns_inode("/proc/thread-self/ns/net"))
            },
            &|_, _| {},
        );
        let got: Vec<(u32, Option<u64>)> = results.into_iter().map(|r| r.expect("entered")).collect();
        assert_eq!(got, (0..5).map(|i| (i, Some(own))).collect::<Vec<_>>());
    }
}
