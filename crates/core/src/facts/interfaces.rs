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
}

/// An address configured on an interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceAddress {
    /// The address.
    pub address: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
}
