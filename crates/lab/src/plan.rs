//! What to build: the lab's layout derived from a snapshot, before anything is created.
//!
//! Pure: facts in, a [`Plan`] out. Which interfaces to mirror (and whether a neighbour or a
//! NAT stand-in sits behind each), which decoy listeners to open, which NAT-published ports to
//! aim at.

use crate::nat::{published_ports, PublishedPort};
use crate::priority::{Needs, Untested};
use loopwarden_core::addr::{is_loopback, is_wildcard};
use loopwarden_core::facts::{HostFacts, InetSocket, Protocol, SocketState};
use loopwarden_core::firewall::questions::Firewall;
use loopwarden_core::inventory::inet_service_id;
use serde::Serialize;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// At most this many host sockets get a decoy; more are named in the plan's notes.
pub const MAX_DECOYS: usize = 64;
/// At most this many interfaces are mirrored; more are named in the plan's notes.
pub const MAX_LINKS: usize = 32;

/// What sits on the other side of a mirrored interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkRole {
    /// The neighbour namespace: the attacker on the same L2 segment.
    Lan,
    /// The backend namespace holding stand-ins for NAT targets in this interface's subnet.
    Backend,
}

/// One victim interface with its addresses and its peer's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkPlan {
    /// The interface name, as on the host.
    pub name: String,
    /// IPv4 addresses with prefix length.
    pub v4: Vec<(Ipv4Addr, u8)>,
    /// IPv6 addresses (not link-local) with prefix length.
    pub v6: Vec<(Ipv6Addr, u8)>,
    /// The host's IPv6 link-local address on this interface: the address a neighbour reaches
    /// when the interface has no other IPv6 address (most LAN hosts), and the ntpd attack's.
    pub link_local: Option<Ipv6Addr>,
    /// The peer's link-local address on this segment.
    pub peer_link_local: Option<Ipv6Addr>,
    /// The peer's IPv4 address on this segment.
    pub peer_v4: Option<Ipv4Addr>,
    /// The peer's IPv6 address on this segment (`None`: link-local only).
    pub peer_v6: Option<Ipv6Addr>,
    /// Who the peer is: both kinds attack (a bridge's containers reach the host through the
    /// bridge's MAC like LAN neighbours do).
    pub role: LinkRole,
}

impl LinkPlan {
    /// Whether `ip` is on one of this link's IPv4 subnets (reached without a router).
    pub fn on_link(&self, ip: Ipv4Addr) -> bool {
        self.v4.iter().any(|&(a, len)| {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(ip) & mask
        })
    }
}

/// Why a decoy exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DecoyOrigin {
    /// It mirrors a host socket.
    Host,
    /// The lab's own control listener (the host had none suitable).
    Control,
    /// The local target of a NAT rule that no host socket listens on.
    NatTarget,
}

/// A listener to open in the victim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DecoyPlan {
    /// The service id the results are reported under.
    pub service: String,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Bound address.
    pub address: IpAddr,
    /// Bound port.
    pub port: u16,
    /// `IPV6_V6ONLY` for IPv6 sockets.
    pub v6only: Option<bool>,
    /// For a connected UDP socket: its peer.
    pub peer: Option<SocketAddr>,
    /// Why it exists.
    pub origin: DecoyOrigin,
}

impl DecoyPlan {
    /// Bound to `0.0.0.0` or `::`.
    pub fn wildcard(&self) -> bool {
        is_wildcard(self.address)
    }

    /// Bound to a loopback address.
    pub fn loopback(&self) -> bool {
        is_loopback(self.address)
    }

    /// Takes IPv4 traffic (an IPv4 socket, or a dual-stack `::` socket).
    pub fn takes_ipv4(&self) -> bool {
        self.address.is_ipv4() || (self.address.is_unspecified() && self.v6only == Some(false))
    }
}

/// A stand-in for a NAT target that is not a local address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StandInPlan {
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The target address and port.
    pub target: SocketAddr,
    /// The victim interface whose subnet holds it; `None`: a lab link with a host route.
    pub link: Option<String>,
}

/// The whole layout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Mirrored interfaces.
    pub links: Vec<LinkPlan>,
    /// Decoy listeners.
    pub decoys: Vec<DecoyPlan>,
    /// NAT rules to aim at.
    pub published: Vec<PublishedPort>,
    /// Stand-ins behind the victim.
    pub stand_ins: Vec<StandInPlan>,
    /// What the lab did differently from the host, and why.
    pub notes: Vec<String>,
    /// Host services and interfaces the lab leaves untested (over its limits, unusable names):
    /// no result may speak for them.
    pub untested: Untested,
}

impl Plan {
    /// The stand-ins' IPv4 addresses behind each link, by link name: addresses an attacker on
    /// that link must not write as its own.
    pub fn stand_in_addresses(&self) -> std::collections::HashMap<String, Vec<Ipv4Addr>> {
        let mut out: std::collections::HashMap<String, Vec<Ipv4Addr>> = std::collections::HashMap::new();
        for s in &self.stand_ins {
            if let (Some(link), IpAddr::V4(a)) = (&s.link, s.target.ip()) {
                out.entry(link.clone()).or_default().push(a);
            }
        }
        out
    }
}

/// The address of the synthetic interface used when the snapshot has none to mirror.
pub const SYNTHETIC_V4: (Ipv4Addr, u8) = (Ipv4Addr::new(192, 0, 2, 1), 24);
/// The IPv6 address of the synthetic interface.
pub const SYNTHETIC_V6: (Ipv6Addr, u8) = (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 64);

/// Derives the layout from a snapshot.
pub fn plan(facts: &HostFacts) -> Plan {
    let mut notes = Vec::new();
    let mut untested = Untested::default();
    let needs = Needs::of(facts);
    let firewall = Firewall::new(facts);
    let published = published_ports(&firewall);
    let mut links = mirrored_links(facts, &needs, &mut notes, &mut untested.interfaces);
    let stand_ins: Vec<StandInPlan> = published
        .iter()
        .filter(|p| !is_local(facts, &links, p.target.ip()))
        .map(|p| StandInPlan {
            protocol: p.protocol,
            target: p.target,
            link: containing_link(&links, p.target.ip()),
        })
        .fold(Vec::new(), |mut unique: Vec<StandInPlan>, s| {
            // Several published ports may share one target (Docker `-p A:80 -p B:80`).
            if !unique.iter().any(|u| u.protocol == s.protocol && u.target == s.target) {
                unique.push(s);
            }
            unique
        });
    for link in links.iter_mut() {
        let targets: Vec<Ipv4Addr> = stand_ins
            .iter()
            .filter(|s| s.link.as_deref() == Some(link.name.as_str()))
            .filter_map(|s| match s.target.ip() {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            })
            .collect();
        if !targets.is_empty() {
            link.role = LinkRole::Backend;
        }
        // The peer stands for the LAN or the bridge's containers: never on a stand-in's address.
        if let (Some(peer), Some(&(addr, len))) = (link.peer_v4, link.v4.first()) {
            if targets.contains(&peer) {
                let mut taken: Vec<(Ipv4Addr, u8)> = link.v4.clone();
                taken.extend(targets.iter().map(|t| (*t, 32)));
                link.peer_v4 = Some(peer_v4(addr, len, &taken));
            }
        }
    }
    let decoys = decoys(facts, &published, &needs, &mut notes, &mut untested.services);
    Plan {
        links,
        decoys,
        published,
        stand_ins,
        notes,
        untested,
    }
}

/// The interfaces to mirror, those the static findings need first (see [`Needs`]); the ones
/// that receive IP on the host and are not mirrored are added to `untested`.
fn mirrored_links(
    facts: &HostFacts,
    needs: &Needs,
    notes: &mut Vec<String>,
    untested: &mut Vec<String>,
) -> Vec<LinkPlan> {
    let mut links = Vec::new();
    let mut skipped = 0;
    let mut candidates: Vec<_> = facts.interfaces.iter().filter(|i| !i.loopback).collect();
    candidates.sort_by_key(|i| needs.interface_rank(&i.name));
    for iface in candidates {
        if iface.kind.as_deref() == Some("vrf") {
            notes.push(format!(
                "{}: VRF masters are not mirrored (they are exempt from the loopback checks)",
                iface.name
            ));
            continue;
        }
        // A bridge or bond port hands its frames to its master, which is mirrored instead.
        if !iface.receives_ip(&facts.interfaces) || !iface.up {
            continue;
        }
        let v4: Vec<(Ipv4Addr, u8)> = iface
            .addresses
            .iter()
            .filter_map(|a| match a.address {
                IpAddr::V4(v4) if !v4.is_loopback() => Some((v4, a.prefix_len)),
                _ => None,
            })
            .collect();
        let v6: Vec<(Ipv6Addr, u8)> = iface
            .addresses
            .iter()
            .filter_map(|a| match a.address {
                IpAddr::V6(v6) if !v6.is_unicast_link_local() && !v6.is_loopback() => Some((v6, a.prefix_len)),
                _ => None,
            })
            .collect();
        let link_local = iface.addresses.iter().find_map(|a| match a.address {
            IpAddr::V6(v6) if v6.is_unicast_link_local() => Some(v6),
            _ => None,
        });
        if !usable_interface_name(&iface.name) {
            notes.push(format!(
                "interface “{}” left out: the lab gives ip(8) only names of letters, digits, '-', '_' and '.' \
                 (a name from a snapshot could otherwise smuggle an argument or a command), so no lab result \
                 speaks for it",
                iface.name
            ));
            untested.push(iface.name.clone());
            continue;
        }
        if links.len() >= MAX_LINKS {
            skipped += 1;
            untested.push(iface.name.clone());
            continue;
        }
        if let Some(kind) = iface.kind.as_deref().filter(|k| *k != "veth") {
            notes.push(format!(
                "{}: a {kind} on the host, a veth in the lab (same name and addresses)",
                iface.name
            ));
        }
        let addressless = v4.is_empty();
        let mut link = link_from_addresses(&iface.name, v4, v6, &gateways(facts, &iface.name));
        if addressless {
            // No IPv4 address (a VM bridge): packets to 127/8 still arrive there. The attacker
            // sends from a documentation address of its own, to which the host has no route.
            link.peer_v4 = Some(Ipv4Addr::new(198, 51, 100, 100 + links.len().min(150) as u8));
            notes.push(format!(
                "{}: no IPv4 address; attacked from {} (no route back: TCP can only be blind there)",
                iface.name,
                link.peer_v4.map(|p| p.to_string()).unwrap_or_default()
            ));
        }
        link.link_local = link_local;
        link.peer_link_local = link_local.map(peer_link_local);
        links.push(link);
    }
    if skipped > 0 {
        notes.push(format!(
            "{skipped} more interfaces were not mirrored (the lab mirrors at most {MAX_LINKS}, those the \
             static findings name first): no lab result speaks for them"
        ));
    }
    if links.is_empty() {
        notes.push(format!(
            "the snapshot has no interface to mirror: the victim gets a synthetic eth0 ({}/{}, {}/{})",
            SYNTHETIC_V4.0, SYNTHETIC_V4.1, SYNTHETIC_V6.0, SYNTHETIC_V6.1
        ));
        links.push(link_from_addresses("eth0", vec![SYNTHETIC_V4], vec![SYNTHETIC_V6], &[]));
    }
    distinct_onlink_peers(facts, &mut links);
    links
}

/// Gives every link whose IPv4 prefix is /31 or /32 (cloud VMs, WireGuard, kube-ipvs0) a peer
/// address of its own: the peer sits outside the subnet, reached through a device route in both
/// namespaces, and two links with the same peer address would need the same route twice.
fn distinct_onlink_peers(facts: &HostFacts, links: &mut [LinkPlan]) {
    let onlink = |l: &LinkPlan| l.v4.first().is_some_and(|&(_, len)| len > 30);
    let host_has = |a: Ipv4Addr| {
        facts
            .interfaces
            .iter()
            .any(|i| i.addresses.iter().any(|x| x.address == IpAddr::V4(a)))
    };
    let mut taken: Vec<Ipv4Addr> = links.iter().filter(|l| !onlink(l)).filter_map(|l| l.peer_v4).collect();
    for link in links.iter_mut().filter(|l| onlink(l)) {
        let peer = (1..=254u8)
            .rev()
            .map(|last| Ipv4Addr::new(198, 51, 100, last))
            .find(|c| !host_has(*c) && !taken.contains(c));
        link.peer_v4 = peer;
        taken.extend(peer);
    }
}

/// A link-local address for the peer that differs from the host's own.
fn peer_link_local(host: Ipv6Addr) -> Ipv6Addr {
    let candidate = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0x1f, 0xfffe);
    if candidate == host {
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0x1f, 0xfffd)
    } else {
        candidate
    }
}

/// The gateways of the host's routes through interface `name`: the peer must not take their
/// addresses (the lab's neighbour answers for them besides its own, see [`crate::routes`]).
fn gateways(facts: &HostFacts, name: &str) -> Vec<IpAddr> {
    facts
        .routes
        .iter()
        .flatten()
        .flat_map(|r| r.hops.iter())
        .filter(|h| h.device.as_deref() == Some(name))
        .filter_map(|h| h.gateway)
        .collect()
}

/// A link with these addresses and a peer on each family's subnet that is neither one of them
/// nor one of `gateways`.
fn link_from_addresses(name: &str, v4: Vec<(Ipv4Addr, u8)>, v6: Vec<(Ipv6Addr, u8)>, gateways: &[IpAddr]) -> LinkPlan {
    let mut taken_v4 = v4.clone();
    let mut taken_v6 = v6.clone();
    for g in gateways {
        match g {
            IpAddr::V4(a) => taken_v4.push((*a, 32)),
            IpAddr::V6(a) => taken_v6.push((*a, 128)),
        }
    }
    let peer_v4 = v4.first().map(|&(a, len)| peer_v4(a, len, &taken_v4));
    let peer_v6 = v6.first().and_then(|&(a, len)| peer_v6(a, len, &taken_v6));
    LinkPlan {
        name: name.to_string(),
        v4,
        v6,
        link_local: None,
        peer_link_local: None,
        peer_v4,
        peer_v6,
        role: LinkRole::Lan,
    }
}

/// The highest host address of the subnet that the host does not use; for /31 and /32 a
/// documentation address reached through a device route.
fn peer_v4(addr: Ipv4Addr, len: u8, taken: &[(Ipv4Addr, u8)]) -> Ipv4Addr {
    if len > 30 {
        return Ipv4Addr::new(198, 51, 100, 254);
    }
    let mask = u32::MAX << (32 - len);
    let network = u32::from(addr) & mask;
    let broadcast = network | !mask;
    (network + 1..broadcast)
        .rev()
        .map(Ipv4Addr::from)
        .find(|c| !taken.iter().any(|(t, _)| t == c))
        .unwrap_or(Ipv4Addr::new(198, 51, 100, 254))
}

/// An address in the same /64-or-wider subnet ending in `::fffe` (or `::fffd` if taken).
fn peer_v6(addr: Ipv6Addr, len: u8, taken: &[(Ipv6Addr, u8)]) -> Option<Ipv6Addr> {
    if len > 112 {
        return None;
    }
    let base = u128::from(addr) & !0xffff;
    [0xfffe_u128, 0xfffd]
        .into_iter()
        .map(|low| Ipv6Addr::from(base | low))
        .find(|c| !taken.iter().any(|(t, _)| t == c))
}

fn is_local(facts: &HostFacts, links: &[LinkPlan], ip: IpAddr) -> bool {
    is_loopback(ip)
        || facts
            .interfaces
            .iter()
            .any(|i| i.addresses.iter().any(|a| a.address == ip))
        || links.iter().any(|l| l.v4.iter().any(|(a, _)| IpAddr::V4(*a) == ip))
}

fn containing_link(links: &[LinkPlan], ip: IpAddr) -> Option<String> {
    let IpAddr::V4(ip) = ip else { return None };
    links
        .iter()
        .find(|l| {
            l.v4.iter().any(|&(a, len)| {
                let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
                u32::from(a) & mask == u32::from(ip) & mask && len <= 30
            })
        })
        .map(|l| l.name.clone())
}

/// The decoys: host sockets the static findings name first (see [`Needs`]), then NAT targets
/// and the lab's controls. Host sockets over the limit are added to `untested`.
fn decoys(
    facts: &HostFacts,
    published: &[PublishedPort],
    needs: &Needs,
    notes: &mut Vec<String>,
    untested: &mut Vec<String>,
) -> Vec<DecoyPlan> {
    let mut out: Vec<DecoyPlan> = Vec::new();
    let mut relevant: Vec<&InetSocket> = facts.inet_sockets.iter().filter(|s| mirrorable(s)).collect();
    relevant.sort_by_cached_key(|s| needs.service_rank(&inet_service_id(s)));
    let mut skipped = 0;
    for socket in relevant {
        let decoy = DecoyPlan {
            service: inet_service_id(socket),
            protocol: socket.protocol,
            address: socket.address,
            port: socket.port,
            v6only: if socket.address.is_ipv6() {
                Some(socket.v6only.unwrap_or(false))
            } else {
                None
            },
            peer: socket.peer.map(|(ip, port)| SocketAddr::new(ip, port)),
            origin: DecoyOrigin::Host,
        };
        if out.iter().any(|d| same_binding(d, &decoy)) {
            continue;
        }
        if out.len() >= MAX_DECOYS {
            skipped += 1;
            untested.push(decoy.service);
            continue;
        }
        out.push(decoy);
    }
    if skipped > 0 {
        notes.push(format!(
            "{skipped} more listeners were not mirrored (the lab opens at most {MAX_DECOYS} decoys, for those the \
             static findings name first): no lab result speaks for them"
        ));
    }
    for p in published.iter().filter(|p| is_loopback(p.target.ip())) {
        let target = DecoyPlan {
            service: format!("{}:{}", p.protocol.as_str(), p.target),
            protocol: p.protocol,
            address: p.target.ip(),
            port: p.target.port(),
            v6only: None,
            peer: None,
            origin: DecoyOrigin::NatTarget,
        };
        let covered = out.iter().any(|d| {
            d.protocol == p.protocol
                && d.port == p.target.port()
                && d.peer.is_none()
                && (d.address == p.target.ip() || d.wildcard() && d.takes_ipv4())
        });
        if !covered {
            out.push(target);
        }
    }
    add_controls(facts, &mut out);
    out
}

/// TCP listeners and UDP sockets bound to a loopback or wildcard address; connected UDP
/// sockets only when bound to loopback (the stub-resolver pattern).
fn mirrorable(s: &InetSocket) -> bool {
    let loopback = is_loopback(s.address);
    match s.state {
        SocketState::Listen | SocketState::Unconnected => loopback || is_wildcard(s.address),
        SocketState::Connected => loopback && s.peer.is_some() && s.protocol == Protocol::Udp,
    }
}

fn same_binding(a: &DecoyPlan, b: &DecoyPlan) -> bool {
    a.protocol == b.protocol && a.address == b.address && a.port == b.port && a.peer == b.peer
}

/// The lab's own wildcard listeners for the LAN controls, for each protocol and family the
/// host has no wildcard listener of, on a port no host socket uses.
fn add_controls(facts: &HostFacts, decoys: &mut Vec<DecoyPlan>) {
    let used = |port: u16| facts.inet_sockets.iter().any(|s| s.port == port) || decoys.iter().any(|d| d.port == port);
    let Some(port) = (47_000..60_000).find(|p| !used(*p)) else {
        return;
    };
    for protocol in [Protocol::Tcp, Protocol::Udp] {
        for v6 in [false, true] {
            let exists = decoys.iter().any(|d| {
                d.protocol == protocol
                    && d.wildcard()
                    && d.peer.is_none()
                    && (d.address.is_ipv6() == v6 || !v6 && d.takes_ipv4())
            });
            if exists {
                continue;
            }
            let address = if v6 {
                IpAddr::V6(Ipv6Addr::UNSPECIFIED)
            } else {
                IpAddr::V4(Ipv4Addr::UNSPECIFIED)
            };
            decoys.push(DecoyPlan {
                service: format!(
                    "lab-control:{}:{}",
                    protocol.as_str(),
                    loopwarden_core::addr::socket_label(address, port)
                ),
                protocol,
                address,
                port,
                v6only: v6.then_some(true),
                peer: None,
                origin: DecoyOrigin::Control,
            });
        }
    }
}

/// Whether a name from the snapshot may become a lab interface name. Stricter than the kernel's
/// `dev_valid_name()` (1–15 bytes, not `.` or `..`, no `/`, `:` or white space): only ASCII
/// letters, digits, `-`, `_` and `.`, so that a crafted snapshot can never smuggle an argument
/// (`x netns 1`) or a command (a newline) into the `ip -batch` text the lab runs. `all` and
/// `default` name the sysctl scopes of every interface; the kernel refuses them as link names, so
/// no real host has them.
pub fn usable_interface_name(name: &str) -> bool {
    (1..=15).contains(&name.len())
        && !matches!(name, "." | ".." | "all" | "default")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod name_tests {
    use super::usable_interface_name;

    #[test]
    fn crafted_names_are_refused_and_real_ones_kept() {
        for good in [
            "eth0",
            "eth0.100",
            "docker0",
            "br-3f2a_x",
            "wlp3s0",
            "help",
            "dev",
            "-h",
        ] {
            assert!(usable_interface_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "e netns 1",
            "a\nnetns del X",
            "a/b",
            "x:1",
            "sixteen-chars-xx",
            "all",
            "default",
        ] {
            assert!(!usable_interface_name(bad), "{bad:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use loopwarden_core::facts::{Interface, InterfaceAddress};

    #[test]
    fn picks_peer_addresses_inside_the_subnet_and_not_taken() {
        assert_eq!(
            peer_v4(Ipv4Addr::new(192, 0, 2, 1), 24, &[]),
            Ipv4Addr::new(192, 0, 2, 254)
        );
        let taken = [(Ipv4Addr::new(192, 0, 2, 254), 24)];
        assert_eq!(
            peer_v4(Ipv4Addr::new(192, 0, 2, 254), 24, &taken),
            Ipv4Addr::new(192, 0, 2, 253)
        );
        assert_eq!(
            peer_v4(Ipv4Addr::new(192, 0, 2, 9), 32, &[]),
            Ipv4Addr::new(198, 51, 100, 254)
        );
        assert_eq!(
            peer_v6("2001:db8::1".parse().unwrap(), 64, &[]),
            Some("2001:db8::fffe".parse().unwrap())
        );
        assert_eq!(peer_v6("2001:db8::1".parse().unwrap(), 128, &[]), None);
    }

    #[test]
    fn point_to_point_links_get_peers_of_their_own() {
        let mut facts = crate::scenario::base_facts("t");
        facts.interfaces.retain(|i| i.loopback);
        for (i, (name, addr, len)) in [
            ("wg0", "192.0.2.7", 32),
            ("wg1", "192.0.2.8", 32),
            ("p2p", "192.0.2.10", 31),
        ]
        .into_iter()
        .enumerate()
        {
            facts
                .interfaces
                .push(crate::scenario::interface(name, 2 + i as u32, false, &[(addr, len)]));
        }
        let plan = plan(&facts);
        let mut peers: Vec<_> = plan.links.iter().map(|l| l.peer_v4).collect();
        assert!(peers.iter().all(Option::is_some), "{peers:?}");
        peers.sort();
        peers.dedup();
        assert_eq!(peers.len(), 3, "{peers:?}");
    }

    #[test]
    fn a_snapshot_without_interfaces_gets_a_synthetic_one_and_controls() {
        let facts = crate::scenario::base_facts("t");
        let mut bare = facts.clone();
        bare.interfaces.clear();
        let plan = plan(&bare);
        assert_eq!(plan.links.len(), 1);
        assert_eq!(plan.links[0].name, "eth0");
        assert!(plan.notes.iter().any(|n| n.contains("synthetic")));
        assert_eq!(
            plan.decoys.iter().filter(|d| d.origin == DecoyOrigin::Control).count(),
            4
        );
    }

    #[test]
    fn an_unusable_interface_name_is_noted_as_it_is_escaped_only_when_shown() {
        let mut facts = crate::scenario::base_facts("t");
        let mut odd = facts
            .interfaces
            .iter()
            .find(|i| !i.loopback)
            .expect("an interface")
            .clone();
        odd.name = "a\\b c".into();
        odd.index += 100;
        facts.interfaces.push(odd);
        let plan = plan(&facts);
        assert!(
            plan.notes
                .iter()
                .any(|n| n.starts_with("interface “a\\b c” left out: ")),
            "{:?}",
            plan.notes
        );
    }

    #[test]
    fn a_nat_target_in_a_bridge_subnet_puts_a_stand_in_behind_that_interface() {
        let mut facts = crate::scenario::base_facts("t");
        facts.interfaces.push(Interface {
            name: "docker0".into(),
            index: 3,
            up: true,
            loopback: false,
            kind: Some("bridge".into()),
            mac: None,
            addresses: vec![InterfaceAddress {
                address: "172.17.0.1".parse().unwrap(),
                prefix_len: 16,
            }],
            master: None,
        });
        facts.firewall.iptables.push(loopwarden_core::facts::IptablesDump {
            family: loopwarden_core::facts::IptablesFamily::Ipv4,
            backend: "nft".into(),
            // As Docker before 28 installs it: PREROUTING sends local destinations to DOCKER.
            text: "*nat\n:PREROUTING ACCEPT [0:0]\n:DOCKER - [0:0]\n\
                   -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER\n\
                   -A DOCKER -d 127.0.0.1/32 ! -i docker0 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 172.17.0.2:80\n\
                   COMMIT\n"
                .into(),
        });
        let plan = plan(&facts);
        assert_eq!(plan.stand_ins.len(), 1);
        assert_eq!(plan.stand_ins[0].link.as_deref(), Some("docker0"));
        let docker0 = plan.links.iter().find(|l| l.name == "docker0").unwrap();
        assert_eq!(docker0.role, LinkRole::Backend);
        assert_eq!(docker0.peer_v4, Some(Ipv4Addr::new(172, 17, 255, 254)));
    }

    #[test]
    fn a_link_local_only_ipv6_interface_is_mirrored_with_its_address() {
        let mut facts = crate::scenario::base_facts("t");
        let eth0 = facts.interfaces.iter_mut().find(|i| i.name == "eth0").expect("eth0");
        eth0.addresses.retain(|a| a.address.is_ipv4());
        eth0.addresses.push(InterfaceAddress {
            address: "fe80::5054:ff:fe12:3456".parse().unwrap(),
            prefix_len: 64,
        });
        let plan = plan(&facts);
        let link = plan.links.iter().find(|l| l.name == "eth0").expect("eth0 mirrored");
        assert!(link.v6.is_empty());
        assert_eq!(link.link_local, Some("fe80::5054:ff:fe12:3456".parse().unwrap()));
        assert!(link.peer_link_local.is_some_and(|p| Some(p) != link.link_local));
    }

    #[test]
    fn several_ports_published_to_one_backend_share_one_stand_in_address() {
        let mut facts = crate::scenario::base_facts("t");
        facts.interfaces.push(Interface {
            name: "cni0".into(),
            index: 4,
            up: true,
            loopback: false,
            kind: Some("bridge".into()),
            mac: None,
            addresses: vec![InterfaceAddress {
                address: "10.244.0.1".parse().unwrap(),
                prefix_len: 24,
            }],
            master: None,
        });
        // kube-proxy's shape for CoreDNS: 53/udp, 53/tcp and 9153/tcp on one pod, here published
        // on localhost NodePorts.
        let rules: String = [
            ("udp", 30053, 53),
            ("tcp", 30053, 53),
            ("tcp", 30153, 9153),
            ("tcp", 30154, 9153),
        ]
        .iter()
        .map(|(p, from, to)| {
            format!(
                "-A PREROUTING -d 127.0.0.1/32 -p {p} -m {p} --dport {from} -j DNAT --to-destination 10.244.0.5:{to}\n"
            )
        })
        .collect();
        facts.firewall.iptables.push(loopwarden_core::facts::IptablesDump {
            family: loopwarden_core::facts::IptablesFamily::Ipv4,
            backend: "nft".into(),
            text: format!("*nat\n:PREROUTING ACCEPT [0:0]\n{rules}COMMIT\n"),
        });
        let plan = plan(&facts);
        let mut targets: Vec<String> = plan
            .stand_ins
            .iter()
            .map(|s| format!("{:?} {}", s.protocol, s.target))
            .collect();
        targets.sort();
        assert_eq!(
            targets,
            vec!["Tcp 10.244.0.5:53", "Tcp 10.244.0.5:9153", "Udp 10.244.0.5:53"]
        );
        let cni = plan.links.iter().find(|l| l.name == "cni0").expect("cni0");
        assert_eq!(cni.role, LinkRole::Backend);
        assert_ne!(cni.peer_v4, Some("10.244.0.5".parse().unwrap()));
    }
}
