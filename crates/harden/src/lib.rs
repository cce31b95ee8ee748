//! loopwarden's harden stage: closes the network paths the audit found open.
//!
//! [`plan`] is pure: from a snapshot and its audit to one nftables table (`table inet
//! loopwarden`, nothing else touched) and sysctl settings, with what each closes and what stays
//! open and why, verified with the firewall evaluator. [`render`] prints it (nft text and JSON,
//! human and JSON plans). The acting part applies it in one nft transaction with a rollback
//! unless confirmed ([`apply`], [`rollback`]), checks that it is still in place ([`check`]),
//! takes it away ([`remove`]) and keeps it across reboots and firewall reloads ([`persist`]),
//! with [`nft`], [`sysctl`] and [`state`] underneath and [`netns`] for another namespace;
//! [`in_force`] carries the allows an earlier apply put in force into the next plan;
//! [`recover`] puts back what an apply that died half-way replaced, and [`stale`] finds the state
//! of namespaces that are gone.
#![warn(missing_docs)]

pub mod apply;
pub mod check;
pub mod clock;
pub mod error;
pub mod in_force;
pub mod netns;
pub mod nft;
pub mod ownership;
pub mod persist;
pub mod plan;
pub mod program;
pub mod recover;
pub mod remove;
pub mod render;
pub mod rollback;
pub mod signals;
pub mod stale;
pub mod state;
pub mod sysctl;
pub mod trusted_path;

pub use error::ActError;

/// An error unless this process runs as root: nftables and `/proc/sys/net` are root's.
pub fn require_root(what: &'static str) -> Result<(), ActError> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        Ok(())
    } else {
        Err(ActError::NotRoot(what))
    }
}
