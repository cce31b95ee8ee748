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
