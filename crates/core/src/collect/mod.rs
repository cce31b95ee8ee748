//! Collectors: read one network namespace (the caller's) into [`HostFacts`].
//!
//! Read-only and judgement-free. Each collector adds what it saw and, where it could not see
//! something, a [`Limit`] saying what and why — a collector failure never aborts collection.

mod accounts;
mod host;
mod names;
mod relays;
mod sysctls;

use crate::facts::{HostFacts, Limit, FACTS_SCHEMA};

/// Collects a snapshot of the network namespace the calling thread is in.
pub fn collect() -> HostFacts {
    let mut limits: Vec<Limit> = Vec::new();
    let mut facts = HostFacts {
        schema: FACTS_SCHEMA.to_string(),
        host: host::collect(),
        inet_sockets: Vec::new(),
        unix_sockets: Vec::new(),
        processes: Vec::new(),
        interfaces: Vec::new(),
        sysctls: sysctls::collect(&mut limits),
        names: names::collect(&mut limits),
        accounts: accounts::collect(&mut limits),
        firewall: Default::default(),
        relays: Default::default(),
    };
    facts.relays = relays::collect(&facts.processes, &facts.accounts, &mut limits);
    facts.host.limits.extend(limits);
    facts
}
