//! loopwarden's audit core.
//!
//! Data flows one way: [`collect`] reads one network namespace into [`facts::HostFacts`]
//! (read-only, no judgement); [`readers`] turn the third-party text it captured (daemon
//! configuration dumps, `/etc/hosts`, forwarders' argv) into typed models; [`checks`] are pure
//! functions from facts to [`report::Finding`]s; [`audit::audit`] assembles them into a
//! [`report::Report`], which the probe and lab crates may upgrade with active evidence and
//! [`report`] renders. [`audit_host`] does the same for every network namespace of a host at
//! once ([`collect::netns`]), adding the findings only the whole view shows.
#![warn(missing_docs)]

pub mod addr;
pub mod audit;
pub mod audit_host;
pub mod checks;
pub mod collect;
pub mod facts;
pub mod firewall;
pub mod fleet;
pub mod inventory;
pub mod kernel;
pub mod makers;
pub mod port_allows;
pub mod readers;
pub mod report;
pub mod spoof_drops;

pub use audit::audit;
pub use audit_host::audit_host;
pub use facts::HostFacts;
pub use report::{Finding, Report};
