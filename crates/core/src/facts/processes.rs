//! Processes that own sockets.

use serde::{Deserialize, Serialize};

/// A process holding at least one socket of the snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Process id.
    pub pid: u32,
    /// Parent process id (0 when unknown).
    pub ppid: u32,
    /// `comm`: the short name.
    pub name: String,
    /// Resolved `/proc/PID/exe`, when readable.
    pub exe: Option<String>,
    /// `argv`, as read from `/proc/PID/cmdline`.
    pub cmdline: Vec<String>,
    /// Real uid.
    pub uid: u32,
}
