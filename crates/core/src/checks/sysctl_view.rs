//! Reading the effective value of per-interface sysctls the way the kernel combines them.

use crate::facts::HostFacts;
use crate::kernel::{route_localnet, MissingSysctl};

/// A non-loopback interface on which the kernel routes loopback-addressed IPv4 packets from
/// outside, and the sysctl keys that make it so.
pub struct LocalnetInterface {
    /// Interface name.
    pub name: String,
    /// The `route_localnet` keys set to 1 (`all` and/or the interface's own).
    pub keys: Vec<String>,
}

/// Names of the interfaces a neighbour's IP packets arrive on — not loopback, not a port of a
/// bridge or bond (its master is listed instead) — from the interface list or, when that is
/// empty, from the per-interface sysctl keys.
pub fn non_loopback_interfaces(facts: &HostFacts) -> Vec<String> {
    let mut names: Vec<String> = if facts.interfaces.is_empty() {
        facts
            .sysctls
            .0
            .keys()
            .filter_map(|k| k.strip_prefix("net.ipv4.conf.")?.strip_suffix(".route_localnet"))
            .filter(|n| !matches!(*n, "all" | "default" | "lo"))
            .map(str::to_string)
            .collect()
    } else {
        facts
            .interfaces
            .iter()
            .filter(|i| i.receives_ip(&facts.interfaces))
            .map(|i| i.name.clone())
            .collect()
    };
    names.sort();
    names.dedup();
    names
}

/// The interfaces with effective `route_localnet` (the kernel ORs `all` with the interface's own
/// value), or the sysctl whose absence leaves it unknown. An interface without its own value is
/// unknown unless `all` decides — never read as 0, nor as `default` (only the template for new
/// interfaces).
pub fn route_localnet_interfaces(facts: &HostFacts) -> Result<Vec<LocalnetInterface>, MissingSysctl> {
    let all_on = facts.sysctls.ipv4_conf("all", "route_localnet").is_some_and(|v| v != 0);
    let mut out = Vec::new();
    for name in non_loopback_interfaces(facts) {
        if !route_localnet(&facts.sysctls, &name)? {
            continue;
        }
        let mut keys = Vec::new();
        if all_on {
            keys.push("net.ipv4.conf.all.route_localnet = 1".to_string());
        }
        if facts.sysctls.ipv4_conf(&name, "route_localnet").is_some_and(|v| v != 0) {
            keys.push(format!("net.ipv4.conf.{name}.route_localnet = 1"));
        }
        out.push(LocalnetInterface { name, keys });
    }
    if out.is_empty() {
        // No interface (or none known): `all` must still have been read for "none" to be a fact.
        route_localnet(&facts.sysctls, "all")?;
    }
    Ok(out)
}
