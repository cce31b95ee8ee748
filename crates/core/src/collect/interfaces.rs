//! Network interfaces and their addresses, from rtnetlink (`RTM_GETLINK`, `RTM_GETADDR` dumps).

use super::netlink;
use crate::facts::{Interface, InterfaceAddress, Limit};
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::protocols::NETLINK_ROUTE;
use std::net::IpAddr;

/// Reads every link of the namespace with its addresses, ordered by index. A failed dump leaves
/// the list empty (or without addresses) and is recorded as a limit.
pub fn collect(limits: &mut Vec<Limit>) -> Vec<Interface> {
    let mut interfaces = Vec::new();
    let mut masters: Vec<(usize, u32)> = Vec::new();
    let links = netlink::dump(
        NETLINK_ROUTE,
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        |message| {
            if let RouteNetlinkMessage::NewLink(link) = message {
                if let Some(master) = master_index(&link) {
                    masters.push((interfaces.len(), master));
                }
                interfaces.push(interface(&link));
            }
        },
    );
    if let Err(e) = links {
        limits.push(Limit {
            scope: "interfaces".into(),
            detail: format!("cannot list links: {e}"),
        });
        return interfaces;
    }
    let names: std::collections::HashMap<u32, String> = interfaces.iter().map(|i| (i.index, i.name.clone())).collect();
    for (position, master) in masters {
        interfaces[position].master = names.get(&master).cloned();
    }
    let mut addresses = Vec::new();
    let result = netlink::dump(
        NETLINK_ROUTE,
        RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        |message| {
            if let RouteNetlinkMessage::NewAddress(address) = message {
                addresses.extend(interface_address(&address));
            }
        },
    );
    if let Err(e) = result {
        limits.push(Limit {
            scope: "interfaces".into(),
            detail: format!("cannot list interface addresses: {e}"),
        });
    }
    let position: std::collections::HashMap<u32, usize> =
        interfaces.iter().enumerate().map(|(p, i)| (i.index, p)).collect();
    for (index, address) in addresses {
        if let Some(&p) = position.get(&index) {
            interfaces[p].addresses.push(address);
        }
    }
    interfaces.sort_by_key(|i| i.index);
    interfaces
}

/// The index of the device a link is enslaved to (`IFLA_MASTER`).
fn master_index(link: &LinkMessage) -> Option<u32> {
    link.attributes.iter().find_map(|a| match a {
        LinkAttribute::Controller(index) => Some(*index),
        _ => None,
    })
}

/// One link: name, index, flags, kind (`IFLA_INFO_KIND`) and a 6-byte hardware address.
fn interface(link: &LinkMessage) -> Interface {
    let mut name = String::new();
    let mut kind = None;
    let mut mac = None;
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name = n.clone(),
            LinkAttribute::Address(bytes) if bytes.len() == 6 => mac = Some(format_mac(bytes)),
            LinkAttribute::LinkInfo(infos) => {
                kind = infos.iter().find_map(|info| match info {
                    LinkInfo::Kind(k) => Some(k.to_string()),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    Interface {
        name,
        index: link.header.index,
        up: link.header.flags.contains(LinkFlags::Up),
        loopback: link.header.flags.contains(LinkFlags::Loopback),
        kind,
        mac,
        // Named once every link is known (the master may come later in the dump).
        master: None,
        addresses: Vec::new(),
    }
}

/// The interface index and address of one `RTM_NEWADDR`. For IPv4 the local address is
/// `IFA_LOCAL` (`IFA_ADDRESS` is the peer on point-to-point links); IPv6 has only `IFA_ADDRESS`.
fn interface_address(message: &AddressMessage) -> Option<(u32, InterfaceAddress)> {
    let local = message.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let address: IpAddr = local.or_else(|| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })?;
    Some((
        message.header.index,
        InterfaceAddress {
            address,
            prefix_len: message.header.prefix_len,
        },
    ))
}

/// `aa:bb:cc:dd:ee:ff`.
fn format_mac(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

#[cfg(test)]
mod tests {
    use super::format_mac;

    #[test]
    fn mac_is_lowercase_colon_hex() {
        assert_eq!(format_mac(&[0x02, 0xAB, 0, 1, 0x10, 0xff]), "02:ab:00:01:10:ff");
    }
}
