//! A front's listening sockets: a loopback TCP port on both `127.0.0.1` and `[::1]` ([`tcp`]),
//! or a Unix socket with its mode, owner and group in a directory chain nobody else can change
//! ([`unix`]) — or the sockets systemd passed (`LISTEN_FDS`, [`systemd`]), matched to fronts by
//! address.

pub mod systemd;
pub mod tcp;
pub mod unix;

use crate::config::FrontConfig;
use crate::endpoint::Listen;
use crate::policy::Policy;
use loopwarden_core::facts::GuardEndpoint;
use std::os::fd::OwnedFd;

/// Listen backlog (the kernel caps it at `somaxconn`).
const BACKLOG: i32 = 4096;

/// One bound, listening socket of a front.
#[derive(Debug)]
pub enum Bound {
    /// A TCP socket on one loopback address.
    Tcp(std::net::TcpListener),
    /// A Unix socket.
    Unix(std::os::unix::net::UnixListener),
}

impl Bound {
    /// Another descriptor for the same listening socket (each worker thread accepts on its own).
    pub fn try_clone(&self) -> std::io::Result<Bound> {
        Ok(match self {
            Bound::Tcp(l) => Bound::Tcp(l.try_clone()?),
            Bound::Unix(l) => Bound::Unix(l.try_clone()?),
        })
    }

    /// What it listens on, for messages.
    pub fn describe(&self) -> String {
        match self {
            Bound::Tcp(l) => l.local_addr().map_or_else(|_| "tcp:?".into(), |a| a.to_string()),
            Bound::Unix(l) => l
                .local_addr()
                .ok()
                .and_then(|a| a.as_pathname().map(|p| format!("unix:{}", p.display())))
                .unwrap_or_else(|| "unix:?".into()),
        }
    }

    /// What it listens on, as the published status shows it (`None`: the kernel does not say).
    pub fn endpoint(&self) -> Option<GuardEndpoint> {
        match self {
            Bound::Tcp(l) => l.local_addr().ok().map(|address| GuardEndpoint::Tcp { address }),
            Bound::Unix(l) => l.local_addr().ok().and_then(|a| {
                a.as_pathname().map(|p| GuardEndpoint::Unix {
                    path: p.display().to_string(),
                })
            }),
        }
    }
}

/// A front's sockets, and what the operator should know about them (lines for the log).
#[derive(Debug)]
pub struct BoundFront {
    /// The listening sockets.
    pub sockets: Vec<Bound>,
    /// Information and warnings found while binding.
    pub notes: Vec<String>,
}

/// Binds (or takes from systemd) every socket of a front (`policy`: whom it admits, to warn
/// when file modes keep one of them out).
pub fn bind(front: &FrontConfig, policy: &Policy, inherited: &mut Vec<OwnedFd>) -> Result<BoundFront, String> {
    match &front.listen {
        Listen::Tcp(port) => tcp::bind(*port, inherited),
        Listen::Unix(path) => match systemd::take_unix(inherited, path) {
            Some(l) => Ok(BoundFront {
                sockets: vec![Bound::Unix(l)],
                notes: Vec::new(),
            }),
            None => unix::bind(front, policy, path),
        },
    }
}
