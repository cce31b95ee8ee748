//! Every routing table's routes, from rtnetlink (`RTM_GETROUTE` dump of both families).

use super::netlink;
use crate::facts::{Interface, Limit, NextHop, Route, RouteKind};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::protocols::NETLINK_ROUTE;
use std::collections::HashMap;
use std::net::IpAddr;

/// Reads the routes of every table, with devices named after `interfaces`. A failed dump gives
/// `None` and a limit: unknown routes are not "no routes".
pub fn collect(interfaces: &[Interface], limits: &mut Vec<Limit>) -> Option<Vec<Route>> {
    let names: HashMap<u32, &str> = interfaces.iter().map(|i| (i.index, i.name.as_str())).collect();
    let mut routes = Vec::new();
    let result = netlink::dump(
        NETLINK_ROUTE,
        RouteNetlinkMessage::GetRoute(RouteMessage::default()),
        |message| {
            if let RouteNetlinkMessage::NewRoute(route) = message {
                routes.extend(read(&route, &names));
            }
        },
    );
    match result {
        Ok(_) => Some(routes),
        Err(e) => {
            limits.push(Limit {
                scope: "routes".into(),
                detail: format!("cannot list routes: {e}"),
            });
            None
        }
    }
}

/// One `RTM_NEWROUTE` as a [`Route`]; `None` for families other than IPv4 and IPv6.
fn read(message: &RouteMessage, names: &HashMap<u32, &str>) -> Option<Route> {
    let header = &message.header;
    let v6 = match u8::from(header.address_family) {
        2 => false,
        10 => true,
        _ => return None,
    };
    let address = |a: &RouteAddress| match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    };
    let unspecified = if v6 {
        IpAddr::from([0u16; 8])
    } else {
        IpAddr::from([0u8; 4])
    };
    let mut destination = unspecified;
    let mut table = u32::from(header.table);
    let mut metric = None;
    let mut single = NextHop {
        gateway: None,
        device: None,
    };
    let mut multipath = Vec::new();
    let device = |index: u32| {
        Some(
            names
                .get(&index)
                .map_or_else(|| format!("ifindex:{index}"), |n| n.to_string()),
        )
    };
    for attribute in &message.attributes {
        match attribute {
            RouteAttribute::Destination(a) => destination = address(a).unwrap_or(unspecified),
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Priority(p) => metric = Some(*p),
            RouteAttribute::Gateway(a) => single.gateway = address(a),
            RouteAttribute::Oif(index) => single.device = device(*index),
            RouteAttribute::MultiPath(hops) => {
                multipath = hops
                    .iter()
                    .map(|hop| NextHop {
                        gateway: hop.attributes.iter().find_map(|a| match a {
                            RouteAttribute::Gateway(g) => address(g),
                            _ => None,
                        }),
                        device: device(hop.interface_index),
                    })
                    .collect();
            }
            _ => {}
        }
    }
    let hops = if !multipath.is_empty() {
        multipath
    } else if single.gateway.is_some() || single.device.is_some() {
        vec![single]
    } else {
        Vec::new()
    };
    Some(Route {
        destination,
        prefix_len: header.destination_prefix_length,
        kind: kind(header.kind),
        table,
        metric,
        hops,
    })
}

fn kind(kind: RouteType) -> RouteKind {
    match kind {
        RouteType::Unicast => RouteKind::Unicast,
        RouteType::Local => RouteKind::Local,
        RouteType::Broadcast => RouteKind::Broadcast,
        RouteType::BlackHole => RouteKind::Blackhole,
        RouteType::Unreachable => RouteKind::Unreachable,
        RouteType::Prohibit => RouteKind::Prohibit,
        _ => RouteKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test process's own namespace has at least `lo`'s local route (table 255): the dump
    /// works and is read, whatever else the machine routes.
    #[test]
    fn the_own_namespace_has_the_loopback_local_route() {
        let mut limits = Vec::new();
        let interfaces = crate::collect::interfaces::collect(&mut limits);
        let routes = collect(&interfaces, &mut limits).expect("route dump");
        assert!(limits.is_empty(), "{limits:?}");
        assert!(
            routes.iter().any(|r| r.kind == RouteKind::Local
                && r.destination == IpAddr::from([127, 0, 0, 1])
                && r.table == 255
                && r.hops.iter().any(|h| h.device.as_deref() == Some("lo"))),
            "{routes:#?}"
        );
    }
}
