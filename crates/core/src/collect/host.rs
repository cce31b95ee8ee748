//! Host identity: hostname, kernel, namespace, privilege.

use crate::facts::HostInfo;
use std::time::{SystemTime, UNIX_EPOCH};

/// Reads who and where we are. Never fails: unknown parts are left empty.
pub fn collect() -> HostInfo {
    HostInfo {
        hostname: read_trimmed("/proc/sys/kernel/hostname"),
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        netns: std::fs::read_link("/proc/thread-self/ns/net")
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default(),
        privileged: is_privileged(),
        collected_at: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        limits: Vec::new(),
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Root, or the capabilities that let us read every process's descriptors
/// (`CAP_DAC_READ_SEARCH` and `CAP_SYS_PTRACE`).
fn is_privileged() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    const CAP_DAC_READ_SEARCH: u32 = 2;
    const CAP_SYS_PTRACE: u32 = 19;
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << CAP_DAC_READ_SEARCH) != 0 && caps & (1 << CAP_SYS_PTRACE) != 0)
}
