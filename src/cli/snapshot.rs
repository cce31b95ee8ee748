//! Reading a snapshot given with `--facts FILE` (`-`: standard input), for the verbs that take
//! one.

use anyhow::Context;
use loopwarden_core::HostFacts;
use std::path::Path;

/// The largest snapshot read: far above a large Kubernetes node's (tens of MiB of rules), low
/// enough that a hostile file cannot exhaust memory.
pub const MAX_SNAPSHOT: u64 = 256 * 1024 * 1024;

/// Reads the snapshot at `path` (`-`: standard input), naming it in every error. A snapshot is
/// untrusted input: it is only ever parsed, bounded in size, and refused at the first byte that
/// shows it is not JSON text ([`HostFacts::read`]).
pub fn load(path: &Path) -> anyhow::Result<HostFacts> {
    if path == Path::new("-") {
        return HostFacts::read(std::io::stdin().lock(), MAX_SNAPSHOT)
            .context("the snapshot on standard input is not usable");
    }
    let shown = path.display();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open snapshot {shown}"))?;
    // A regular file's size is known before reading it; devices and pipes are bounded as read.
    let size = file
        .metadata()
        .map(|m| if m.is_file() { m.len() } else { 0 })
        .unwrap_or(0);
    if size > MAX_SNAPSHOT {
        anyhow::bail!(
            "snapshot {shown} is not usable: {} MiB, larger than {} MiB, the most a snapshot may be",
            size / (1024 * 1024),
            MAX_SNAPSHOT / (1024 * 1024)
        );
    }
    HostFacts::read(file, MAX_SNAPSHOT).with_context(|| format!("snapshot {shown} is not usable"))
}

/// Which file a snapshot was read from, and as it was then: a later read (the fleet's second
/// pass over its hosts) checks that it is still the same file with the same contents' size and
/// time, so that a snapshot replaced meanwhile is said, never mixed into another's summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
}

/// Reads the snapshot at `path`, which must be a regular file: it is opened without blocking
/// (a FIFO would wait forever for a writer, a device would not end) and without following a
/// symbolic link unless `follow`, and anything but a regular file is refused by type. Bounded
/// and screened as [`load`] reads.
pub fn load_regular(path: &Path, follow: bool) -> anyhow::Result<(HostFacts, Stamp)> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
    let shown = path.display();
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .with_context(|| format!("cannot open snapshot {shown}"))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read what snapshot {shown} is"))?;
    let t = meta.file_type();
    let kind = if t.is_file() {
        None
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device")
    } else if t.is_dir() {
        Some("a directory")
    } else {
        Some("not a regular file")
    };
    if let Some(kind) = kind {
        anyhow::bail!("snapshot {shown} is {kind}: a snapshot is a regular file");
    }
    if meta.len() > MAX_SNAPSHOT {
        anyhow::bail!(
            "snapshot {shown} is not usable: {} MiB, larger than {} MiB, the most a snapshot may be",
            meta.len() / (1024 * 1024),
            MAX_SNAPSHOT / (1024 * 1024)
        );
    }
    let stamp = Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
    };
    let facts = HostFacts::read(file, MAX_SNAPSHOT).with_context(|| format!("snapshot {shown} is not usable"))?;
    Ok((facts, stamp))
}
