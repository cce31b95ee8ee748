//! The namespace's routes: what decides whether the kernel takes a packet from a given source on
//! a given interface (`rp_filter`, `fib saddr . iif oif missing`) and where replies go.

use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// What a route does with the packets it matches (`RTN_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteKind {
    /// Sent through a device, directly or via a gateway.
    Unicast,
    /// Delivered to this host (the `local` table: one per own address).
    Local,
    /// A broadcast address of this host.
    Broadcast,
    /// Dropped silently.
    Blackhole,
    /// Dropped with "host unreachable".
    Unreachable,
    /// Dropped with "administratively prohibited".
    Prohibit,
    /// Any other type (multicast, anycast, throw, NAT …).
    Other,
}

/// One next hop of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextHop {
    /// The gateway, when the destination is not on the device's link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// The output device by name (`None`: the route names none, or its index has no link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

/// One route of one routing table, as `RTM_GETROUTE` dumps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    /// The destination network's address (`0.0.0.0` or `::` for a default route).
    pub destination: IpAddr,
    /// Its prefix length.
    pub prefix_len: u8,
    /// What the route does.
    pub kind: RouteKind,
    /// The routing table (`254` main, `255` local).
    pub table: u32,
    /// The route's metric (`priority`), when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    /// Where it sends packets: one hop, several for a multipath route, none for a blackhole.
    #[serde(default)]
    pub hops: Vec<NextHop>,
}

/// The main routing table's id.
pub const MAIN_TABLE: u32 = 254;
