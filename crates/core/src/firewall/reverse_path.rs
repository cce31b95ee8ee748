//! The reverse-path filter (`rp_filter`) against the host's routes: which IPv4 sources the kernel
//! takes on an interface. `fib_validate_source()` looks the source up as a destination: strict
//! mode (1) wants the route back to leave by the interface the packet came in on, loose mode (2)
//! wants any unicast route back; a source with no route, or whose route is a blackhole,
//! unreachable or prohibit route, is dropped in both.
//!
//! Only the main table is read: with routes in other tables (policy routing) the answer depends
//! on rules the snapshot does not hold, and none is given.

use super::ranges::{prefix_range, RangeSet};
use crate::facts::{Route, RouteKind, MAIN_TABLE};

/// The routing tables that do not change an IPv4 lookup of a remote source: main, local (this
/// host's own addresses, decided elsewhere) and default (empty on Linux unless filled).
const PLAIN_TABLES: [u32; 3] = [MAIN_TABLE, 255, 253];

/// The IPv4 sources `rp_filter` mode `mode` (1 strict, 2 loose) lets in on `iif`, per `routes`;
/// `None` when the routes cannot decide it (policy routing: routes in other tables).
pub fn accepted_sources(routes: &[Route], iif: &str, mode: i64) -> Option<RangeSet> {
    if routes.iter().any(|r| !PLAIN_TABLES.contains(&r.table)) {
        return None;
    }
    let mut main: Vec<&Route> = routes
        .iter()
        .filter(|r| r.table == MAIN_TABLE && r.destination.is_ipv4())
        .collect();
    // The longest prefix wins; among equal prefixes, the lowest metric.
    main.sort_by_key(|r| (std::cmp::Reverse(r.prefix_len), r.metric.unwrap_or(0)));
    let mut covered = RangeSet::empty();
    let mut accepted = RangeSet::empty();
    for route in main {
        let (lo, hi) = prefix_range(route.destination, route.prefix_len);
        let prefix = RangeSet::range(lo, hi);
        let decided_here = prefix.subtract(&covered);
        if decided_here.is_empty() {
            continue;
        }
        let back = route.kind == RouteKind::Unicast
            && (mode == 2 || route.hops.iter().any(|h| h.device.as_deref() == Some(iif)));
        if back {
            accepted = accepted.union(&decided_here);
        }
        covered = covered.union(&prefix);
    }
    Some(accepted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::NextHop;
    use crate::firewall::ranges::addr_value;
    use std::net::IpAddr;

    fn route(dest: &str, len: u8, dev: &str, kind: RouteKind) -> Route {
        Route {
            destination: dest.parse().expect("address"),
            prefix_len: len,
            kind,
            table: MAIN_TABLE,
            metric: None,
            hops: vec![NextHop {
                gateway: None,
                device: Some(dev.into()),
            }],
        }
    }

    fn takes(set: &RangeSet, ip: &str) -> bool {
        set.contains(addr_value(ip.parse::<IpAddr>().expect("ip")))
    }

    /// The reviewer's host: 192.0.2.0/24 on eth0, 10/8 via eth1, no default route.
    #[test]
    fn strict_mode_takes_only_sources_routed_back_by_the_interface() {
        let routes = vec![
            route("192.0.2.0", 24, "eth0", RouteKind::Unicast),
            route("10.0.0.0", 8, "eth1", RouteKind::Unicast),
        ];
        let strict = accepted_sources(&routes, "eth0", 1).expect("decided");
        assert!(takes(&strict, "192.0.2.7"));
        assert!(!takes(&strict, "10.1.1.1"), "routed back by eth1");
        assert!(!takes(&strict, "192.168.1.5"), "no route back");
        let loose = accepted_sources(&routes, "eth0", 2).expect("decided");
        assert!(takes(&loose, "10.1.1.1") && !takes(&loose, "192.168.1.5"));
    }

    /// A default route by eth0 takes every source not routed more specifically elsewhere; a
    /// blackhole route back drops its sources.
    #[test]
    fn the_longest_prefix_decides_and_a_blackhole_drops() {
        let routes = vec![
            route("0.0.0.0", 0, "eth0", RouteKind::Unicast),
            route("10.0.0.0", 8, "eth1", RouteKind::Unicast),
            route("10.9.0.0", 16, "eth0", RouteKind::Unicast),
            route("198.51.100.0", 24, "eth0", RouteKind::Blackhole),
        ];
        let strict = accepted_sources(&routes, "eth0", 1).expect("decided");
        assert!(takes(&strict, "192.168.1.5") && takes(&strict, "10.9.1.1"));
        assert!(!takes(&strict, "10.1.1.1") && !takes(&strict, "198.51.100.9"));
    }

    #[test]
    fn policy_routing_is_not_decided() {
        let mut other = route("0.0.0.0", 0, "eth1", RouteKind::Unicast);
        other.table = 100;
        assert_eq!(accepted_sources(&[other], "eth0", 1), None);
    }
}
