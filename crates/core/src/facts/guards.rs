//! Running `loopwarden guard` processes, as they publish themselves: which fronts they hold,
//! what they forward to, and whom they admit.
//!
//! The same types are the guard's published status file (`loopwarden.guard-status/v1`), so the
//! guard and the audit read and write one format.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// The schema tag of a guard's status file.
pub const GUARD_STATUS_SCHEMA: &str = "loopwarden.guard-status/v1";

/// Where guards publish their status: one directory per guard instance
/// (`/run/loopwarden/guard/<name>/status.json`), the instance directory owned by the guard's
/// user (systemd `RuntimeDirectory=loopwarden/guard/%i`).
pub const GUARD_STATUS_DIR: &str = "/run/loopwarden/guard";

/// The file name of a guard's status inside its instance directory.
pub const GUARD_STATUS_FILE: &str = "status.json";

/// One running guard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guard {
    /// Always [`GUARD_STATUS_SCHEMA`].
    pub schema: String,
    /// The instance name (`--name`, or the config file's stem).
    pub name: String,
    /// The guard process.
    pub pid: u32,
    /// The uid it runs as: the uid the upstream must admit, and only it.
    pub uid: u32,
    /// That uid's account name, when it has one.
    pub user: Option<String>,
    /// Seconds since the Unix epoch when it started.
    pub started_at: u64,
    /// Seconds since the Unix epoch when it last wrote this status.
    pub updated_at: u64,
    /// Its fronts.
    pub fronts: Vec<GuardFront>,
    /// Where the status was read from (set by the reader, not by the guard).
    #[serde(default)]
    pub status_file: String,
}

/// One front: where clients connect, where allowed ones are forwarded, and the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardFront {
    /// The front's name (its listen address unless named in the config).
    pub name: String,
    /// The sockets it listens on.
    pub listen: Vec<GuardEndpoint>,
    /// Where allowed connections go.
    pub upstream: GuardEndpoint,
    /// Connection-level forwarding or per-request HTTP checks.
    pub mode: GuardMode,
    /// Users admitted, by name and uid.
    pub allow_users: Vec<GuardAccount>,
    /// Groups whose members are admitted, by name and gid.
    pub allow_groups: Vec<GuardAccount>,
    /// HTTP mode: the `Host` values accepted.
    #[serde(default)]
    pub allow_hosts: Vec<String>,
    /// HTTP mode: the `Origin` values accepted for state-changing and upgrade requests.
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Counters since start.
    #[serde(default)]
    pub counters: GuardCounters,
}

/// A named account and its numeric id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardAccount {
    /// The name as configured.
    pub name: String,
    /// The uid or gid it resolved to.
    pub id: u32,
}

/// A socket address a guard listens on or forwards to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum GuardEndpoint {
    /// A TCP address.
    Tcp {
        /// Address and port.
        address: SocketAddr,
    },
    /// A Unix socket path.
    Unix {
        /// The path.
        path: String,
    },
}

impl std::fmt::Display for GuardEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GuardEndpoint::Tcp { address } => write!(f, "{address}"),
            GuardEndpoint::Unix { path } => write!(f, "unix:{path}"),
        }
    }
}

/// How a front forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GuardMode {
    /// Identity checked at accept, then bytes spliced both ways.
    Tcp,
    /// Identity checked at accept, then every request's Host, Origin and fetch metadata.
    Http,
}

/// What a front has done since the guard started.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardCounters {
    /// Connections accepted from the kernel.
    pub accepted: u64,
    /// Connections admitted (identity allowed).
    pub allowed: u64,
    /// Connections open now.
    pub active: u64,
    /// HTTP requests forwarded.
    pub requests: u64,
    /// Refusals by reason (connections or requests).
    pub refused: BTreeMap<String, u64>,
    /// Failures to reach the upstream.
    pub upstream_errors: u64,
}
