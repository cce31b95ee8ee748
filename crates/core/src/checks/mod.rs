//! Checks: pure functions from [`HostFacts`] to [`Finding`]s.
//!
//! A check never does I/O. Each has a [`CheckSpec`] (id, attacker, meaning) in the catalogue
//! [`ALL`]; checks that only an active stage can decide (`--probe`, `--prove`) have a spec and no
//! static evaluation, and their findings come from that stage.

mod bind_wildcard;
mod dnat_loopback;
pub mod guarded;
pub mod host;
mod id;
mod localhost_resolution;
mod loopback_source_trust;
mod no_loopback_antispoof;
mod port_squat;
mod relay_forwarder;
mod relay_proxy;
mod relay_reverse_proxy;
mod relay_ssh;
mod relay_target;
mod route_localnet;
mod sysctl_view;
mod tcp_any_uid;
#[cfg(test)]
pub(crate) mod test_facts;
mod udp_loopback;
mod unix_abstract;
mod unix_world;
mod web;

pub use web::credit_guards;

use crate::facts::{HostFacts, InetSocket};
use crate::report::{Attacker, Finding, Service};
pub use id::{CheckId, UnknownCheckId};
use std::collections::{HashMap, HashSet};

/// Which stage decides a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Decided from the facts alone (`audit`).
    Inspect,
    /// Decided by asking the host's own listeners (`audit --probe`).
    Probe,
    /// Decided by replaying attacks in the lab (`audit --prove`).
    Prove,
    /// Decided from every network namespace's facts together (`audit --all-netns`).
    AllNetns,
}

/// What a check is: its id, who it is about and why it matters.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CheckSpec {
    /// The stable id (never reused with another meaning).
    pub id: CheckId,
    /// Who exploits what it finds.
    pub attackers: &'static [Attacker],
    /// Which stage decides it.
    pub stage: Stage,
    /// What a finding means, in one line.
    pub summary: &'static str,
    /// Why it matters: the attack and a known case.
    pub why: &'static str,
}

/// One entry of the catalogue.
#[derive(Clone, Copy)]
pub struct Check {
    /// What the check is.
    pub spec: CheckSpec,
    /// The pure evaluation, for checks decided from facts.
    pub evaluate: Option<fn(&Context) -> Vec<Finding>>,
}

/// Everything a check may look at: the facts and the services derived from them.
pub struct Context<'a> {
    /// The snapshot.
    pub facts: &'a HostFacts,
    /// The snapshot's processes by pid (who holds a socket).
    pub processes: crate::inventory::Processes<'a>,
    /// Services derived from the snapshot's sockets.
    pub services: Vec<Service>,
    /// Indexes into `services` by port, for the checks that look a port up.
    by_port: HashMap<u16, Vec<usize>>,
    /// The service id of each of `facts.inet_sockets`, in the same order.
    inet_ids: Vec<String>,
    /// Whether two inet sockets share a service id (a `SO_REUSEPORT` group, a snapshot listing
    /// one twice): only then does [`Context::inet_services`] need to remember the ids it gave.
    shared_ids: bool,
    /// The snapshot's firewall, read once and ready for packet-path questions.
    pub firewall: crate::firewall::questions::Firewall,
}

impl<'a> Context<'a> {
    /// Derives what the checks share from the facts.
    pub fn new(facts: &'a HostFacts) -> Context<'a> {
        let inet_ids: Vec<String> = facts
            .inet_sockets
            .iter()
            .map(crate::inventory::inet_service_id)
            .collect();
        let mut distinct: HashSet<&str> = HashSet::with_capacity(inet_ids.len());
        let shared_ids = !inet_ids.iter().all(|id| distinct.insert(id));
        let services = crate::inventory::services_named(facts, &inet_ids);
        let mut by_port: HashMap<u16, Vec<usize>> = HashMap::new();
        for (i, s) in services.iter().enumerate() {
            if let Some(port) = s.port {
                by_port.entry(port).or_default().push(i);
            }
        }
        Context {
            facts,
            processes: crate::inventory::Processes::new(facts),
            services,
            by_port,
            inet_ids,
            shared_ids,
            firewall: crate::firewall::questions::Firewall::new(facts),
        }
    }

    /// The inet sockets `keep` selects, each with its service id, once per id: the sockets of a
    /// `SO_REUSEPORT` group are one service, named by the first of them.
    pub fn inet_services<'c>(
        &'c self,
        keep: impl Fn(&InetSocket) -> bool + 'c,
    ) -> impl Iterator<Item = (&'a InetSocket, &'c str)> + 'c {
        let mut seen: HashSet<&str> = HashSet::new();
        let shared = self.shared_ids;
        self.facts
            .inet_sockets
            .iter()
            .zip(&self.inet_ids)
            .filter(move |(socket, id)| keep(socket) && (!shared || seen.insert(id.as_str())))
            .map(|(socket, id)| (socket, id.as_str()))
    }

    /// The services, once the checks are done with the rest.
    pub fn into_services(self) -> Vec<Service> {
        self.services
    }

    /// The inet services on `port`, in the order of `services`.
    pub fn services_on_port(&self, port: u16) -> impl Iterator<Item = &Service> {
        self.by_port
            .get(&port)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.services.get(i))
    }
}

/// The catalogue: every check loopwarden knows, in the order reports list them.
pub static ALL: &[Check] = &[
    bind_wildcard::CHECK,
    route_localnet::CHECK,
    no_loopback_antispoof::CHECK,
    dnat_loopback::CHECK,
    udp_loopback::CHECK,
    tcp_any_uid::CHECK,
    port_squat::CHECK,
    unix_world::CHECK,
    unix_abstract::CHECK,
    localhost_resolution::CHECK,
    loopback_source_trust::CHECK,
    relay_proxy::HTTP_PROXY,
    relay_proxy::SOCKS_PROXY,
    relay_ssh::CHECK,
    relay_reverse_proxy::CHECK,
    relay_forwarder::CHECK,
    relay_proxy::FTP_BOUNCE,
    web::DNS_REBINDING,
    web::CORS_PERMISSIVE,
    web::PRIVATE_NETWORK_ACCESS,
    web::WEBSOCKET_ORIGIN,
    web::ZERO_ADDRESS,
    host::SHARED_ABSTRACT_UNIX.catalogue_entry(),
    host::UNPROTECTED_LOOPBACK.catalogue_entry(),
    host::PUBLISHED_LOOPBACK.catalogue_entry(),
];

/// The catalogue entry for an id.
pub fn spec(id: CheckId) -> Option<&'static CheckSpec> {
    ALL.iter().map(|c| &c.spec).find(|s| s.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_has_exactly_one_entry_in_the_catalogue_in_the_same_order() {
        let listed: Vec<CheckId> = ALL.iter().map(|c| c.spec.id).collect();
        assert_eq!(listed, CheckId::ALL);
        for &id in CheckId::ALL {
            assert_eq!(spec(id).map(|s| s.id), Some(id));
        }
    }

    #[test]
    fn exactly_the_inspected_checks_have_a_static_evaluation() {
        for check in ALL {
            assert_eq!(
                check.evaluate.is_some(),
                check.spec.stage == Stage::Inspect,
                "{}",
                check.spec.id
            );
        }
    }
}
