//! The sysctls that decide whether spoofed loopback traffic is routed.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Sysctl values keyed by their dotted name (`net.ipv4.conf.eth0.route_localnet`), as read from
/// `/proc/sys`. A key that is absent was not readable or does not exist on that kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Sysctls(pub BTreeMap<String, String>);

impl Sysctls {
    /// The raw value of a sysctl, trimmed.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.trim())
    }

    /// The value as an integer, when it is one.
    pub fn get_int(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(|v| v.parse().ok())
    }

    /// An IPv4 per-interface setting: `net.ipv4.conf.<ifname>.<name>`.
    pub fn ipv4_conf(&self, ifname: &str, name: &str) -> Option<i64> {
        self.get_int(&format!("net.ipv4.conf.{ifname}.{name}"))
    }

    /// An IPv6 per-interface setting: `net.ipv6.conf.<ifname>.<name>`.
    pub fn ipv6_conf(&self, ifname: &str, name: &str) -> Option<i64> {
        self.get_int(&format!("net.ipv6.conf.{ifname}.{name}"))
    }
}
