//! Reading a snapshot given with `--facts FILE` (`-`: standard input), for the verbs that take
//! one.

use anyhow::Context;
use loopwarden_core::facts::FactsError;
use loopwarden_core::HostFacts;
use std::path::Path;

/// The largest snapshot read by default, in MiB. Reading one takes up to about ten times its
/// size in memory (nft's JSON capture, held as a tree, about 23 times its own text: a 93 MiB
/// kube-proxy snapshot took 800 MB, a 242 MiB one GBs), so the default keeps an audit under about
/// a gigabyte; a larger snapshot is refused, naming the way to raise the limit.
pub const DEFAULT_MAX_SNAPSHOT_MIB: u64 = 64;

/// The default limit for a whole-host snapshot (`facts --all-netns`), which holds every
/// namespace's capture, in MiB.
pub const DEFAULT_MAX_SET_MIB: u64 = 256;

/// The environment variable that sets the limit, in MiB, for the snapshots of this run.
pub const LIMIT_VARIABLE: &str = "LOOPWARDEN_MAX_SNAPSHOT_MIB";

/// The size limit in bytes: [`LIMIT_VARIABLE`]'s value when it is set (a whole number too large to
/// hold means as large as can be), else `default_mib`.
pub fn limit(default_mib: u64) -> anyhow::Result<u64> {
    let mib = match std::env::var(LIMIT_VARIABLE) {
        Ok(value) => {
            let digits = value.trim();
            match digits.parse::<u64>() {
                Ok(n) if n > 0 => n.min(u64::MAX / (1024 * 1024)),
                Err(_) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => u64::MAX / (1024 * 1024),
                _ => anyhow::bail!("{LIMIT_VARIABLE}={value:?} is not a whole number of MiB above 0"),
            }
        }
        Err(_) => default_mib,
    };
    Ok(mib.saturating_mul(1024 * 1024))
}

/// Why a snapshot of `size` bytes (when known) at `shown` is refused against `limit`.
pub fn too_large(shown: &str, size: Option<u64>, limit: u64) -> anyhow::Error {
    let size = size.map_or_else(String::new, |s| format!("{} MiB, ", s.div_ceil(1024 * 1024)));
    anyhow::anyhow!(
        "snapshot {shown} is not usable: {size}larger than the {} MiB limit (reading a snapshot takes up to \
         about ten times its size in memory); to read it anyway, set {LIMIT_VARIABLE} to a larger number of MiB",
        limit / (1024 * 1024)
    )
}

/// Reads the snapshot at `path` (`-`: standard input), naming it in every error. A snapshot is
/// untrusted input: it is only ever parsed, bounded in size ([`limit`]), and refused at the first
/// byte that shows it is not JSON text ([`HostFacts::read`]).
pub fn load(path: &Path) -> anyhow::Result<HostFacts> {
    let limit = limit(DEFAULT_MAX_SNAPSHOT_MIB)?;
    let stdin = path == Path::new("-");
    let shown = if stdin {
        "on standard input".to_string()
    } else {
        path.display().to_string()
    };
    let read = if stdin {
        HostFacts::read(std::io::stdin().lock(), limit)
    } else {
        let file = std::fs::File::open(path).with_context(|| format!("cannot open snapshot {shown}"))?;
        // A regular file's size is known before reading it; devices and pipes are bounded as read.
        let size = file
            .metadata()
            .map(|m| if m.is_file() { m.len() } else { 0 })
            .unwrap_or(0);
        if size > limit {
            return Err(too_large(&shown, Some(size), limit));
        }
        HostFacts::read(file, limit)
    };
    match read {
        Err(FactsError::TooLarge { limit }) => Err(too_large(&shown, None, limit)),
        other => other.with_context(|| format!("snapshot {shown} is not usable")),
    }
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
    let limit = limit(DEFAULT_MAX_SNAPSHOT_MIB)?;
    if meta.len() > limit {
        return Err(too_large(&shown.to_string(), Some(meta.len()), limit));
    }
    let stamp = Stamp {
        dev: meta.dev(),
        ino: meta.ino(),
        len: meta.len(),
        mtime: (meta.mtime(), meta.mtime_nsec()),
    };
    let facts = match HostFacts::read(file, limit) {
        Err(FactsError::TooLarge { limit }) => return Err(too_large(&shown.to_string(), None, limit)),
        other => other.with_context(|| format!("snapshot {shown} is not usable"))?,
    };
    Ok((facts, stamp))
}
