//! Network interfaces and their addresses.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// One network interface of the namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// Interface name (`lo`, `eth0` …).
    pub name: String,
    /// Interface index.
    pub index: u32,
    /// Whether the link is administratively up.
    pub up: bool,
    /// Whether this is a loopback device (`IFF_LOOPBACK`).
    pub loopback: bool,
    /// Link kind as the kernel names it (`veth`, `bridge`, `vrf` …), when known.
    pub kind: Option<String>,
    /// Hardware address, `aa:bb:cc:dd:ee:ff`, when the link has one.
    pub mac: Option<String>,
    /// Configured addresses.
    pub addresses: Vec<InterfaceAddress>,
    /// The device this one is enslaved to (a bridge, bond or VRF), by name: a bridge port hands
    /// its frames to the bridge, whose own settings and addresses then apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
}

impl Interface {
    /// Whether IP packets arriving here are received by this device itself: not a loopback, and
    /// not a port of a bridge or bond (those hand their frames to the master, which is listed on
    /// its own).
    pub fn receives_ip(&self, all: &[Interface]) -> bool {
        if self.loopback {
            return false;
        }
        let Some(master) = &self.master else { return true };
        !all.iter()
            .any(|m| &m.name == master && matches!(m.kind.as_deref(), Some("bridge" | "bond" | "team")))
    }
}

/// An address configured on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceAddress {
    /// The address.
    pub address: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
}
