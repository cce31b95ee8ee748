//! Checks: pure functions from [`HostFacts`] to [`Finding`]s.
//!
//! A check never does I/O. Each has a [`CheckSpec`] (id, attacker, meaning) in the catalogue
//! [`ALL`]; checks that only an active stage can decide (`--probe`, `--prove`) have a spec and no
//! static evaluation, and their findings come from that stage.

mod bind_wildcard;
mod dnat_loopback;
mod guarded;
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

use crate::facts::HostFacts;
use crate::report::{Attacker, Finding, Service};
pub use id::{CheckId, UnknownCheckId};

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
    /// Services derived from the snapshot's sockets.
    pub services: Vec<Service>,
    /// The snapshot's firewall, read once and ready for packet-path questions.
    pub firewall: crate::firewall::questions::Firewall,
}

impl<'a> Context<'a> {
    /// Derives what the checks share from the facts.
    pub fn new(facts: &'a HostFacts) -> Context<'a> {
        Context {
            facts,
            services: crate::inventory::services(facts),
            firewall: crate::firewall::questions::Firewall::new(facts),
        }
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
