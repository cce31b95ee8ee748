//! loopwarden's guard: a front that makes a local service reachable only by the local users and
//! web pages its owner intends (`loopwarden guard`).
//!
//! Every connection's peer is identified before a byte reaches the upstream — Unix peers by
//! `SO_PEERCRED`/`SO_PEERGROUPS`/`SO_PEERPIDFD`, loopback TCP peers by an exact `inet_diag`
//! lookup of the client's own socket — and refused unless it is an allowed user or group member
//! (fail closed). TCP fronts then splice bytes both ways ([`splice`]); HTTP fronts check every
//! request's `Host`, `Origin` and fetch metadata ([`http::check`]) and forward with hyper.
//!
//! The pieces: [`config`] and [`endpoint`] (what to do), [`accounts`] and [`identity`] (who is
//! connecting), [`policy`] (whom to admit), [`front`] (the listening sockets), [`serve`] (the
//! accept loops), [`counters`] and [`status`] (what it did, published for `--status` and the
//! audit), [`exposure`] (is the upstream reachable around the guard?), [`upstream`] (is the upstream
//! still held by the service's user?), and [`run`].
#![warn(missing_docs)]

pub mod accounts;
pub mod config;
pub mod counters;
pub mod endpoint;
pub mod exposure;
pub mod front;
pub mod http;
pub mod identity;
pub mod log;
pub mod policy;
pub mod run;
pub mod serve;
pub mod splice;
pub mod state;
pub mod status;
pub mod upstream;

pub use config::{load, GuardConfig};
pub use run::{run, Source};
