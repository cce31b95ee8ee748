//! Identity of the snapshot: host, kernel, namespace, privilege, blind spots.

use serde::{Deserialize, Serialize};

/// Who took the snapshot, where, and with what privilege.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct HostInfo {
    /// `uname -n`.
    pub hostname: String,
    /// `uname -r`: kernel release, which decides how spoofed packets are treated.
    pub kernel: String,
    /// The network namespace, as `net:[INODE]` (what `/proc/self/ns/net` links to), plus its
    /// `ip netns` name when one is known.
    pub netns: String,
    /// Whether the collector could read every process's file descriptors (root or
    /// `CAP_SYS_PTRACE`+`CAP_DAC_READ_SEARCH`). Without it, socket owners are partly unknown.
    pub privileged: bool,
    /// Seconds since the Unix epoch when collection started.
    pub collected_at: u64,
    /// What could not be seen. Checks treat a missing fact as unknown, never as safe.
    pub limits: Vec<Limit>,
}

/// One blind spot of a snapshot: a collector that failed or saw only part of its subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limit {
    /// The collector or fact concerned (`sockets.unix`, `owners`, `firewall.nftables` …).
    pub scope: String,
    /// What exactly was not seen and why.
    pub detail: String,
}
