//! What the lab tests first when it cannot test everything: the services and interfaces the
//! static audit's open or undecided LAN findings name. Pure.
//!
//! The lab opens at most [`crate::plan::MAX_DECOYS`] decoys and mirrors at most
//! [`crate::plan::MAX_LINKS`] interfaces. Picking the first ones in socket or interface order
//! left the one open service of a hundred, or the one interface with route_localnet of forty,
//! untested; the static findings say which ones matter, so those go first.

use loopwarden_core::facts::HostFacts;
use loopwarden_core::report::{Attacker, Status};
use serde::Serialize;
use std::collections::HashSet;

/// What the static audit says the lab needs.
#[derive(Debug, Clone, Default)]
pub struct Needs {
    /// Service ids named by a LAN finding that is not blocked.
    pub services: HashSet<String>,
    /// Interfaces on which the kernel routes loopback destinations (route_localnet), then
    /// interfaces named by a LAN finding that is not blocked.
    pub interfaces: Vec<String>,
}

impl Needs {
    /// Reads them from the static audit of `facts`.
    pub fn of(facts: &HostFacts) -> Needs {
        let report = loopwarden_core::audit(facts);
        let lan: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.attacker == Attacker::Lan && f.status != Status::Blocked)
            .collect();
        let services = lan.iter().filter_map(|f| f.service.clone()).collect();
        let mut interfaces: Vec<String> = facts
            .interfaces
            .iter()
            .filter(|i| !i.loopback)
            .filter(|i| loopwarden_core::kernel::route_localnet(&facts.sysctls, &i.name).unwrap_or(false))
            .map(|i| i.name.clone())
            .collect();
        for iface in facts.interfaces.iter().filter(|i| !i.loopback) {
            let named = lan
                .iter()
                .flat_map(|f| f.evidence.iter())
                .any(|e| names_word(e, &iface.name));
            if named && !interfaces.contains(&iface.name) {
                interfaces.push(iface.name.clone());
            }
        }
        Needs { services, interfaces }
    }

    /// Sort key of an interface: needed ones first, in the order above.
    pub fn interface_rank(&self, name: &str) -> usize {
        self.interfaces
            .iter()
            .position(|n| n == name)
            .unwrap_or(self.interfaces.len())
    }

    /// Sort key of a service: needed ones first.
    pub fn service_rank(&self, id: &str) -> usize {
        usize::from(!self.services.contains(id))
    }
}

/// Whether `text` names `word` as a whole word (an interface name in an evidence line: `on
/// e37:`, `interface e37:`, `via e37, e38`) — `e3` is not named by `e37`.
fn names_word(text: &str, word: &str) -> bool {
    let part_of_name = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@');
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        // A name ends at a dot only when the dot ends a sentence.
        let after_ok = match after {
            None => true,
            Some('.') => text[i + word.len() + 1..]
                .chars()
                .next()
                .is_none_or(char::is_whitespace),
            Some(c) => !part_of_name(c),
        };
        before.is_none_or(|c| !part_of_name(c)) && after_ok
    })
}

/// What a run left untested: a result about everything may not rest on part of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Untested {
    /// Host services (ids) that got no decoy.
    pub services: Vec<String>,
    /// Interfaces that receive IP packets on the host and were not mirrored.
    pub interfaces: Vec<String>,
}

impl Untested {
    /// Nothing was left out.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty() && self.interfaces.is_empty()
    }

    /// `36 services, beyond the lab's 64 decoys, (udp:127.0.0.1:10064, … and 33 more) and 8
    /// interfaces, beyond its 32 links or with names it cannot use, (e32, …)`: what and why.
    pub fn describe(&self) -> String {
        let list = |items: &[String], what: &str| -> Option<String> {
            if items.is_empty() {
                return None;
            }
            let shown: Vec<&str> = items.iter().take(3).map(String::as_str).collect();
            let more = items.len().saturating_sub(3);
            Some(format!(
                "{} {what} ({}{})",
                items.len(),
                shown.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ))
        };
        [
            list(
                &self.services,
                &format!("services, beyond the lab's {} decoys,", crate::plan::MAX_DECOYS),
            ),
            list(
                &self.interfaces,
                &format!(
                    "interfaces, beyond its {} links or with names it cannot use,",
                    crate::plan::MAX_LINKS
                ),
            ),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" and ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_matched_as_whole_words() {
        assert!(names_word("interface e37: net.ipv4.conf.e37.route_localnet = 1", "e37"));
        assert!(names_word("on e37: delivered", "e37"));
        assert!(names_word("via eth0, e37", "e37"));
        assert!(names_word("ends here e37.", "e37"));
        assert!(!names_word("on e37: delivered", "e3"));
        assert!(!names_word("on eth0.100: delivered", "eth0"));
        assert!(!names_word("veth0 is a port", "eth0"));
    }

    #[test]
    fn route_localnet_interfaces_and_open_services_come_first() {
        let mut facts = crate::scenario::base_facts("t");
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.all.route_localnet".into(), "0".into());
        for i in &facts.interfaces {
            facts
                .sysctls
                .0
                .insert(format!("net.ipv4.conf.{}.route_localnet", i.name), "0".into());
        }
        let mut extra = facts
            .interfaces
            .iter()
            .find(|i| i.name == "eth0")
            .cloned()
            .expect("eth0");
        extra.name = "e37".into();
        extra.index = 37;
        facts.interfaces.push(extra);
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.e37.route_localnet".into(), "1".into());
        let needs = Needs::of(&facts);
        assert_eq!(needs.interface_rank("e37"), 0, "{:?}", needs.interfaces);
        assert!(needs.interface_rank("eth0") > 0);
    }
}
