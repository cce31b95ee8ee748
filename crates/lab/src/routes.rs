//! The host's routes in the victim: what decides, on the host, whether the kernel takes a
//! packet from a given source on a given interface (`rp_filter`, `fib saddr . iif oif missing`)
//! and where the replies go.
//!
//! Only the victim gets routes, and only the ones that leave through a mirrored interface or
//! drop (blackhole, unreachable, prohibit); a route through an interface the lab does not mirror
//! goes through a device of the lab's own instead (one end of a veth pair whose other end is
//! also in the victim; the `dummy` driver is not on every kernel), so that "the source is routed, but not through this
//! interface" stays true (a strict reverse-path filter rejects it, a loose one takes it). The
//! lab's namespaces are linked only to each other, so no route leads out of them. The
//! neighbour on each link answers for that link's gateways: replies to off-link sources reach it,
//! as they reach the router on a LAN.
//!
//! [`plan`] is pure; [`apply`] runs it.

use crate::netns::{Namespace, NetnsError};
use crate::plan::LinkPlan;
use crate::topology::{mac_text, output_with_input, Link};
use loopwarden_core::facts::{HostFacts, NextHop, Route, RouteKind, MAIN_TABLE};
use loopwarden_core::firewall::questions::Firewall;
use std::net::IpAddr;

/// The device that stands for every interface the lab does not mirror.
pub const ELSEWHERE: &str = "lw-elsewhere";

/// The routes to give the victim.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutePlan {
    /// `ip -batch` lines for the victim, in order.
    pub lines: Vec<String>,
    /// Gateways on mirrored links, by link name: the neighbour there answers for them.
    pub gateways: Vec<(String, IpAddr)>,
    /// What was mirrored and what was not, for the report's notes.
    pub notes: Vec<String>,
}

/// The routes of `facts` that matter for `links`, as commands for the victim.
pub fn plan(facts: &HostFacts, links: &[LinkPlan]) -> RoutePlan {
    let mut out = RoutePlan::default();
    let Some(routes) = &facts.routes else {
        out.notes.push(
            "the snapshot holds no routes (taken by an older loopwarden, or the dump failed): the victim has only \
             its connected routes, so rp_filter and `fib saddr … oif missing` rules may drop off-link sources that \
             the host takes"
                .into(),
        );
        return out;
    };
    let mut elsewhere = false;
    let mut other_tables = 0;
    for route in routes {
        if route.table != MAIN_TABLE {
            // The local table is the kernel's own (made from the addresses); others need policy
            // rules, which the snapshot does not hold.
            if route.table != 255 && matters(route) {
                other_tables += 1;
            }
            continue;
        }
        if !matters(route) || connected(route, links) {
            continue;
        }
        let prefix = format!("{}/{}", route.destination, route.prefix_len);
        let metric = route.metric.map(|m| format!(" metric {m}")).unwrap_or_default();
        let line = match route.kind {
            RouteKind::Blackhole => format!("route replace blackhole {prefix}{metric}"),
            RouteKind::Unreachable => format!("route replace unreachable {prefix}{metric}"),
            RouteKind::Prohibit => format!("route replace prohibit {prefix}{metric}"),
            _ => {
                let hops: Vec<String> = route
                    .hops
                    .iter()
                    .filter_map(|h| hop(h, links, &mut elsewhere, &mut out.gateways))
                    .collect();
                match hops.len() {
                    0 => continue,
                    1 => format!("route replace {prefix}{metric} {}", hops[0]),
                    _ => format!(
                        "route replace {prefix}{metric} {}",
                        hops.iter()
                            .map(|h| format!("nexthop {h}"))
                            .collect::<Vec<_>>()
                            .join(" ")
                    ),
                }
            }
        };
        out.lines.push(line);
    }
    if elsewhere {
        out.lines.splice(
            0..0,
            [
                format!("link add {ELSEWHERE} type veth peer name {ELSEWHERE}-p"),
                format!("link set {ELSEWHERE}-p up"),
                format!("link set {ELSEWHERE} up"),
            ],
        );
    }
    out.gateways.sort();
    out.gateways.dedup();
    if !out.lines.is_empty() {
        out.notes.push(summary(&out, elsewhere));
    }
    if other_tables > 0 {
        out.notes.push(format!(
            "{other_tables} route(s) in tables other than main were not mirrored (policy routing rules are not in \
             the snapshot)"
        ));
    }
    out
}

/// Whether a main-table route can decide a reverse-path check or a reply: not the kernel's own
/// local, broadcast and multicast ones, not IPv6 link-local or multicast prefixes.
fn matters(route: &Route) -> bool {
    let kernel_v6 = match route.destination {
        IpAddr::V6(a) => a.is_unicast_link_local() || a.is_multicast(),
        IpAddr::V4(a) => a.is_loopback(),
    };
    !kernel_v6
        && matches!(
            route.kind,
            RouteKind::Unicast | RouteKind::Blackhole | RouteKind::Unreachable | RouteKind::Prohibit
        )
}

/// A connected route the kernel makes itself from a mirrored link's address.
fn connected(route: &Route, links: &[LinkPlan]) -> bool {
    let [hop] = route.hops.as_slice() else { return false };
    let Some(link) = links.iter().find(|l| Some(&l.name) == hop.device.as_ref()) else {
        return false;
    };
    hop.gateway.is_none()
        && route.metric.is_none_or(|m| m == 0 || route.destination.is_ipv6())
        && match route.destination {
            IpAddr::V4(d) => link
                .v4
                .iter()
                .any(|&(a, len)| len == route.prefix_len && d == network(IpAddr::V4(a), len)),
            IpAddr::V6(d) => link
                .v6
                .iter()
                .any(|&(a, len)| len == route.prefix_len && IpAddr::V6(d) == network(IpAddr::V6(a), len)),
        }
}

/// The network address of `a/len`.
fn network(a: IpAddr, len: u8) -> IpAddr {
    let (lo, _) = loopwarden_core::firewall::ranges::prefix_range(a, len);
    loopwarden_core::firewall::ranges::value_addr(lo, a.is_ipv6())
}

/// `via GW dev NAME onlink` for one hop; through [`ELSEWHERE`] when its interface is not
/// mirrored; `None` for a hop that names no device.
fn hop(h: &NextHop, links: &[LinkPlan], elsewhere: &mut bool, gateways: &mut Vec<(String, IpAddr)>) -> Option<String> {
    let device = h.device.as_deref()?;
    match links.iter().find(|l| l.name == device) {
        Some(link) => Some(match h.gateway {
            Some(g) => {
                gateways.push((link.name.clone(), g));
                format!("via {g} dev {} onlink", link.name)
            }
            None => format!("dev {}", link.name),
        }),
        None if device == "lo" => None,
        None => {
            *elsewhere = true;
            Some(format!("dev {ELSEWHERE}"))
        }
    }
}

/// One line saying what was mirrored.
fn summary(out: &RoutePlan, elsewhere: bool) -> String {
    let routes = out.lines.len() - if elsewhere { 3 } else { 0 };
    let mut text = format!("mirrored {routes} of the host's routes into the victim");
    if !out.gateways.is_empty() {
        let shown: Vec<String> = out.gateways.iter().map(|(l, g)| format!("{g} on {l}")).collect();
        text.push_str(&format!(
            "; the neighbour answers for the gateway(s) {}, so replies to off-link sources reach it (on a LAN only \
             the router, or a neighbour posing as it, sees them)",
            shown.join(", ")
        ));
    }
    if elsewhere {
        text.push_str(&format!(
            "; routes through interfaces the lab does not mirror lead to a device of the lab's own ({ELSEWHERE})"
        ));
    }
    text
}

/// Why a drop of an attack from a spoofed source proves nothing when the snapshot holds no
/// routes (`None` when it holds them, or when nothing on the host asks them about a source):
/// the host's routes decide whether an IPv4 reverse-path filter (`rp_filter`, any interface) or a
/// `fib saddr` / `rpfilter` rule takes such a source, and the victim has only its connected ones.
pub fn spoofed_source_doubt(facts: &HostFacts, firewall: &Firewall, v6: bool) -> Option<&'static str> {
    let rp_filter = !v6
        && facts
            .sysctls
            .0
            .iter()
            .any(|(k, v)| k.starts_with("net.ipv4.conf.") && k.ends_with(".rp_filter") && v.trim() != "0");
    (facts.routes.is_none() && (rp_filter || firewall.analysis.uses_reverse_path())).then_some(
        "the snapshot holds no routes: on the host, a route back to this source could let it past rp_filter or a \
         `fib saddr` rule",
    )
}

/// Gives the victim the planned routes and makes each link's neighbour answer for its gateways.
/// A route the kernel refuses is named in the returned notes; the rest are still added.
pub fn apply(victim: &Namespace, routes: &RoutePlan, links: &[Link]) -> Result<Vec<String>, NetnsError> {
    let mut lines = routes.lines.clone();
    for (name, gateway) in &routes.gateways {
        if let Some(link) = links.iter().find(|l| &l.plan.name == name) {
            lines.push(format!(
                "neigh replace {gateway} lladdr {} dev {name} nud permanent",
                mac_text(link.peer_mac)
            ));
        }
    }
    if lines.is_empty() {
        return Ok(Vec::new());
    }
    let out = output_with_input(victim, &["ip", "-force", "-batch", "-"], &lines.join("\n"))?;
    if out.status.success() {
        return Ok(Vec::new());
    }
    Ok(String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| format!("a route could not be mirrored: {}", l.trim()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(destination: &str, len: u8, kind: RouteKind, hops: &[(Option<&str>, &str)]) -> Route {
        Route {
            destination: destination.parse().unwrap(),
            prefix_len: len,
            kind,
            table: MAIN_TABLE,
            metric: None,
            hops: hops
                .iter()
                .map(|(g, d)| NextHop {
                    gateway: g.map(|g| g.parse().unwrap()),
                    device: Some(d.to_string()),
                })
                .collect(),
        }
    }

    /// A host with a default route on eth0, a connected route the kernel makes, a subnet behind
    /// an interface the lab does not mirror and a blackhole: the default route keeps its gateway
    /// (which the neighbour answers for), the other subnet goes to the lab's stand-in device, the
    /// connected route is left to the kernel.
    #[test]
    fn routes_through_mirrored_links_are_kept_and_the_rest_lead_elsewhere() {
        let mut facts = crate::scenario::base_facts("t");
        facts.routes = Some(vec![
            route("0.0.0.0", 0, RouteKind::Unicast, &[(Some("192.0.2.1"), "eth0")]),
            route("192.0.2.0", 24, RouteKind::Unicast, &[(None, "eth0")]),
            route("10.0.0.0", 8, RouteKind::Unicast, &[(None, "wg0")]),
            route("198.18.0.0", 15, RouteKind::Blackhole, &[]),
            route("::", 0, RouteKind::Unicast, &[(Some("fe80::1"), "eth0")]),
            route("fe80::", 64, RouteKind::Unicast, &[(None, "eth0")]),
            Route {
                table: 255,
                ..route("127.0.0.1", 32, RouteKind::Local, &[(None, "lo")])
            },
        ]);
        let links = crate::plan::plan(&facts).links;
        let planned = plan(&facts, &links);
        assert_eq!(
            planned.lines,
            [
                "link add lw-elsewhere type veth peer name lw-elsewhere-p",
                "link set lw-elsewhere-p up",
                "link set lw-elsewhere up",
                "route replace 0.0.0.0/0 via 192.0.2.1 dev eth0 onlink",
                "route replace 10.0.0.0/8 dev lw-elsewhere",
                "route replace blackhole 198.18.0.0/15",
                "route replace ::/0 via fe80::1 dev eth0 onlink",
            ]
        );
        assert_eq!(planned.gateways.len(), 2);
        assert!(
            planned.notes[0].contains("mirrored 4 of the host's routes"),
            "{:?}",
            planned.notes
        );
    }

    /// A snapshot without routes says so instead of mirroring "no routes".
    #[test]
    fn a_snapshot_without_routes_is_named() {
        let mut facts = crate::scenario::base_facts("t");
        facts.routes = None;
        let planned = plan(&facts, &crate::plan::plan(&facts).links);
        assert!(planned.lines.is_empty());
        assert!(planned.notes[0].contains("holds no routes"), "{:?}", planned.notes);
    }
}
