//! Configuration of relays (SSH daemons, reverse proxies) as their own tools print it.

use serde::{Deserialize, Serialize};

/// Effective configuration dumps of relays running on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RelayFacts {
    /// Captured configuration dumps (`sshd -T`, `nginx -T` …), one per running daemon.
    pub captures: Vec<CommandCapture>,
}

/// The output of one command run to read a daemon's effective configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandCapture {
    /// What the capture is of: `sshd`, `nginx`, `haproxy`, `caddy`, `apache`.
    pub kind: String,
    /// Pid of the daemon the configuration belongs to.
    pub pid: u32,
    /// The command line that produced it; `["read", PATH]` for a file loopwarden read itself
    /// (as the daemon's uid), `["cat", PATH]` in snapshots from before that.
    pub command: Vec<String>,
    /// Its standard output.
    pub output: String,
}
