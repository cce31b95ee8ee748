//! The attack catalogue: which packets to send to which decoy, derived from the plan and the
//! built links. Pure.

use crate::plan::{DecoyOrigin, DecoyPlan, Plan};
use crate::sources::{Source, SourcePicker, Sources};
use crate::topology::Link;
use loopwarden_core::facts::Protocol;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// What an attack (or control) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A local client on `lo` reaches a loopback service.
    ControlLocal,
    /// Ordinary traffic from the neighbour to a wildcard listener.
    ControlLan,
    /// IPv4 to a `127/8` destination sent to the victim's MAC.
    Ipv4DstLoopback,
    /// IPv4 from a spoofed `127/8` source to a wildcard listener.
    Ipv4SrcLoopback,
    /// IPv4 from the spoofed upstream of a connected loopback UDP socket (resolver stub).
    Ipv4StubSpoof,
    /// IPv6 from `::1`.
    Ipv6SrcLoopback,
    /// IPv6 to `::1`.
    Ipv6DstLoopback,
    /// IPv6 from `::ffff:127.0.0.1` to a `[::]` listener.
    Ipv6SrcMapped,
    /// IPv4 to a loopback address and a port a DNAT rule publishes.
    NatPublished,
    /// IPv4 to a port a DNAT rule translates to a loopback address.
    NatToLoopback,
}

impl Kind {
    /// The stable id used in reports.
    pub fn id(self) -> &'static str {
        match self {
            Kind::ControlLocal => "control.local",
            Kind::ControlLan => "control.lan",
            Kind::Ipv4DstLoopback => "ipv4.dst-loopback",
            Kind::Ipv4SrcLoopback => "ipv4.src-loopback",
            Kind::Ipv4StubSpoof => "ipv4.stub-spoof",
            Kind::Ipv6SrcLoopback => "ipv6.src-loopback",
            Kind::Ipv6DstLoopback => "ipv6.dst-loopback",
            Kind::Ipv6SrcMapped => "ipv6.src-mapped-loopback",
            Kind::NatPublished => "nat.published-loopback",
            Kind::NatToLoopback => "nat.to-loopback",
        }
    }

    /// A control rather than an attack.
    pub fn control(self) -> bool {
        matches!(self, Kind::ControlLocal | Kind::ControlLan)
    }

    /// What it shows, in words.
    pub fn describe(self) -> &'static str {
        match self {
            Kind::ControlLocal => {
                "local client on lo to a loopback service — a check of the lab itself, run before the host's rules are loaded"
            }
            Kind::ControlLan => {
                "ordinary traffic from the neighbour to a wildcard listener — a check of the lab itself, run before the \
                 host's rules are loaded (not what the host lets through)"
            }
            Kind::Ipv4DstLoopback => "IPv4 to a 127/8 destination via the victim's MAC (route_localnet, CVE-2020-8558)",
            Kind::Ipv4SrcLoopback => "IPv4 from a spoofed 127/8 source to a wildcard listener",
            Kind::Ipv4StubSpoof => "IPv4 from the spoofed upstream of a connected loopback UDP socket (resolver stub)",
            Kind::Ipv6SrcLoopback => "IPv6 from a spoofed ::1 source (CVE-2014-9298)",
            Kind::Ipv6DstLoopback => "IPv6 to ::1 via the victim's MAC",
            Kind::Ipv6SrcMapped => "IPv6 from the IPv4-mapped source ::ffff:127.0.0.1 to a [::] listener",
            Kind::NatToLoopback => {
                "IPv4 to a port a DNAT rule translates to a loopback address (kube-proxy localhost services, ECS agent)"
            }
            Kind::NatPublished => {
                "IPv4 to 127.0.0.1 on a port a DNAT rule publishes (Docker -p 127.0.0.1: before 28, kube-proxy, CNI portmap)"
            }
        }
    }
}

/// Where an attack's token should turn up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A decoy in the victim (index into the plan's decoys).
    Decoy(usize),
    /// A stand-in in the backend (index into the plan's stand-ins).
    StandIn(usize),
}

/// One packet exchange to attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeSpec {
    /// What it is.
    pub kind: Kind,
    /// Index into the topology's links; `None` for local controls.
    pub link: Option<usize>,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// Source written into the packet.
    pub src: SocketAddr,
    /// Destination written into the packet.
    pub dst: SocketAddr,
    /// Where the token should arrive.
    pub target: Target,
    /// The service id it is reported under.
    pub service: String,
    /// Why the packet is what it is, for the evidence: its source when the firewall tells
    /// sources apart, the NAT rule it aims at and who made that rule.
    pub why: Vec<String>,
    /// Why a drop would not refute the path: sources the firewall lets in that this probe did
    /// not carry.
    pub doubt: Option<String>,
}

/// First source port of the probes; each probe gets its own so replies can be matched.
const FIRST_PORT: u16 = 30_000;

/// Every probe for this plan and these links, controls first. Attacks from the neighbour's own
/// IPv4 address carry the sources `sources` picks for each target instead (one probe each).
pub fn probes(plan: &Plan, links: &[Link], sources: &SourcePicker) -> Vec<ProbeSpec> {
    let mut out: Vec<ProbeSpec> = Vec::new();
    let mut next_port = FIRST_PORT;
    let mut port = || {
        next_port = next_port.wrapping_add(1);
        next_port
    };
    let decoys: Vec<(usize, &DecoyPlan)> = plan.decoys.iter().enumerate().collect();
    let listening = || decoys.iter().filter(|(_, d)| d.peer.is_none());
    for (i, d) in listening().filter(|(_, d)| d.loopback()) {
        out.push(spec(
            Kind::ControlLocal,
            None,
            d,
            SocketAddr::new(d.address, 0),
            SocketAddr::new(d.address, d.port),
            Target::Decoy(*i),
        ));
    }
    for (li, link) in links.iter().enumerate() {
        let v4 = link.victim_v4().zip(link.plan.peer_v4);
        let v6 = link.victim_v6().zip(link.peer_v6());
        let wild = |family_v6: bool| {
            listening()
                .filter(move |(_, d)| d.wildcard() && if family_v6 { d.address.is_ipv6() } else { d.takes_ipv4() })
                .collect::<Vec<_>>()
        };
        // Controls: one per protocol and family, preferring a host listener.
        for family_v6 in [false, true] {
            let Some((victim, peer)) = (if family_v6 {
                v6.map(|(a, b)| (IpAddr::V6(a), IpAddr::V6(b)))
            } else {
                v4.map(|(a, b)| (IpAddr::V4(a), IpAddr::V4(b)))
            }) else {
                continue;
            };
            for protocol in [Protocol::Tcp, Protocol::Udp] {
                let mut candidates: Vec<_> = wild(family_v6)
                    .into_iter()
                    .filter(|(_, d)| d.protocol == protocol)
                    .collect();
                candidates.sort_by_key(|(_, d)| d.origin != DecoyOrigin::Host);
                if let Some((i, d)) = candidates.first() {
                    out.push(spec(
                        Kind::ControlLan,
                        Some(li),
                        d,
                        SocketAddr::new(peer, port()),
                        SocketAddr::new(victim, d.port),
                        Target::Decoy(*i),
                    ));
                }
            }
        }
        let host_only = |(_, d): &&(usize, &DecoyPlan)| d.origin != DecoyOrigin::Control;
        // Loopback destinations and published ports need only the attacker's own address: an
        // interface without an IPv4 address (a VM bridge) still takes them when route_localnet
        // is on or a NAT rule publishes a loopback port.
        let victim_v4 = link.victim_v4();
        if link.plan.peer_v4.is_some() {
            for (i, d) in listening().filter(host_only).filter(|(_, d)| d.takes_ipv4()) {
                let dsts: Vec<Ipv4Addr> = match d.address {
                    IpAddr::V4(a) if a.is_loopback() => vec![a],
                    a if a.is_unspecified() => vec![Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)],
                    _ => vec![],
                };
                for dst in dsts {
                    let to = SocketAddr::new(IpAddr::V4(dst), d.port);
                    let picked = sources.pick(&link.plan, d.protocol, to);
                    for src in &picked.list {
                        out.push(with_source(
                            spec(
                                Kind::Ipv4DstLoopback,
                                Some(li),
                                d,
                                SocketAddr::new(IpAddr::V4(src.address), port()),
                                to,
                                Target::Decoy(*i),
                            ),
                            src,
                            &picked,
                        ));
                    }
                    // A datagram may also carry another 127/8 source: a rule that drops only
                    // non-loopback sources (kube-proxy's KUBE-FIREWALL) lets it through. (A TCP
                    // SYN from one would be answered to lo: blind, not worth a probe.)
                    if d.protocol == Protocol::Udp {
                        out.push(spec(
                            Kind::Ipv4DstLoopback,
                            Some(li),
                            d,
                            SocketAddr::new(IpAddr::V4(other_loopback(dst)), port()),
                            SocketAddr::new(IpAddr::V4(dst), d.port),
                            Target::Decoy(*i),
                        ));
                    }
                }
            }
            for (i, d) in wild(false).into_iter().filter(host_only) {
                let Some(victim) = victim_v4 else { break };
                for src in [Ipv4Addr::new(127, 0, 0, 1), Ipv4Addr::new(127, 0, 0, 2)] {
                    out.push(spec(
                        Kind::Ipv4SrcLoopback,
                        Some(li),
                        d,
                        SocketAddr::new(IpAddr::V4(src), port()),
                        SocketAddr::new(IpAddr::V4(victim), d.port),
                        Target::Decoy(*i),
                    ));
                }
            }
            for (i, d) in decoys
                .iter()
                .filter(|(_, d)| d.peer.is_some_and(|p| p.is_ipv4()) && d.address.is_ipv4())
            {
                if let Some(peer_addr) = d.peer {
                    out.push(spec(
                        Kind::Ipv4StubSpoof,
                        Some(li),
                        d,
                        peer_addr,
                        SocketAddr::new(d.address, d.port),
                        Target::Decoy(*i),
                    ));
                }
            }
            for p in &plan.published {
                let Some(address) = p.attack_address(victim_v4) else {
                    continue;
                };
                let dst = SocketAddr::new(address, p.port);
                let picked = sources.pick(&link.plan, p.protocol, dst);
                let target = match plan
                    .stand_ins
                    .iter()
                    .position(|s| s.target == p.target && s.protocol == p.protocol)
                {
                    Some(k) => Some((
                        Target::StandIn(k),
                        format!("{}:{} (NAT stand-in)", p.protocol.as_str(), p.target),
                    )),
                    None => nat_decoy(plan, p.protocol, p.target)
                        .map(|k| (Target::Decoy(k), plan.decoys[k].service.clone())),
                };
                let Some((target, service)) = target else { continue };
                for src in &picked.list {
                    out.push(with_source(
                        ProbeSpec {
                            kind: if p.to_loopback {
                                Kind::NatToLoopback
                            } else {
                                Kind::NatPublished
                            },
                            link: Some(li),
                            protocol: p.protocol,
                            src: SocketAddr::new(IpAddr::V4(src.address), port()),
                            dst,
                            target,
                            service: service.clone(),
                            why: vec![nat_rule_line(p)],
                            doubt: None,
                        },
                        src,
                        &picked,
                    ));
                }
            }
        }
        if let Some((victim, peer)) = v6 {
            for (i, d) in wild(true).into_iter().filter(host_only) {
                let to = SocketAddr::new(IpAddr::V6(victim), d.port);
                out.push(spec(
                    Kind::Ipv6SrcLoopback,
                    Some(li),
                    d,
                    SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port()),
                    to,
                    Target::Decoy(*i),
                ));
                // The kernel's ::1 check does not depend on the destination's scope; the
                // link-local destination shows it.
                if let Some(ll) = link.victim_ll.filter(|ll| *ll != victim) {
                    out.push(spec(
                        Kind::Ipv6SrcLoopback,
                        Some(li),
                        d,
                        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port()),
                        SocketAddr::new(IpAddr::V6(ll), d.port),
                        Target::Decoy(*i),
                    ));
                }
                let mapped = Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped();
                out.push(spec(
                    Kind::Ipv6SrcMapped,
                    Some(li),
                    d,
                    SocketAddr::new(IpAddr::V6(mapped), port()),
                    to,
                    Target::Decoy(*i),
                ));
            }
            for (i, d) in listening()
                .filter(host_only)
                .filter(|(_, d)| d.address == IpAddr::V6(Ipv6Addr::LOCALHOST) || d.wildcard() && d.address.is_ipv6())
            {
                out.push(spec(
                    Kind::Ipv6DstLoopback,
                    Some(li),
                    d,
                    SocketAddr::new(IpAddr::V6(peer), port()),
                    SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), d.port),
                    Target::Decoy(*i),
                ));
            }
        }
    }
    out.sort_by_key(|p| p.kind);
    out
}

/// A loopback source other than `dst` and other than 127.0.0.1 (a configured address, which
/// the kernel's source check treats apart).
fn other_loopback(dst: Ipv4Addr) -> Ipv4Addr {
    if dst == Ipv4Addr::new(127, 0, 0, 2) {
        Ipv4Addr::new(127, 0, 0, 3)
    } else {
        Ipv4Addr::new(127, 0, 0, 2)
    }
}

fn spec(kind: Kind, link: Option<usize>, d: &DecoyPlan, src: SocketAddr, dst: SocketAddr, target: Target) -> ProbeSpec {
    ProbeSpec {
        kind,
        link,
        protocol: d.protocol,
        src,
        dst,
        target,
        service: d.service.clone(),
        why: Vec::new(),
        doubt: None,
    }
}

/// The NAT rule a probe aims at, and who made it by its chain names.
fn nat_rule_line(p: &crate::nat::PublishedPort) -> String {
    let maker = loopwarden_core::makers::Maker::of_rule(&p.rule)
        .map(|m| format!(" (made by {}, by its chain names)", m.name()))
        .unwrap_or_default();
    format!("aimed at the NAT rule {}{maker}", p.rule)
}

/// `probe` from `source`, with the reasons behind it and the trusted sources left untried.
fn with_source(probe: ProbeSpec, source: &Source, picked: &Sources) -> ProbeSpec {
    let mut why = probe.why.clone();
    why.extend(source.why.clone());
    ProbeSpec {
        why,
        doubt: picked.untried.clone(),
        ..probe
    }
}

/// The decoy that receives traffic translated to a local `target`.
fn nat_decoy(plan: &Plan, protocol: Protocol, target: SocketAddr) -> Option<usize> {
    plan.decoys.iter().position(|d| {
        d.protocol == protocol
            && d.port == target.port()
            && d.peer.is_none()
            && (d.address == target.ip() || d.wildcard() && d.takes_ipv4())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;
    use crate::scenario;

    fn fake_links(plan: &Plan) -> Vec<Link> {
        plan.links
            .iter()
            .map(|l| Link {
                plan: l.clone(),
                victim_mac: [2, 0, 0, 0, 0, 1],
                victim_ll: Some("fe80::1".parse().unwrap()),
                peer_name: "lwp0".into(),
                peer_ifindex: 2,
                peer_mac: [2, 0, 0, 0, 0, 2],
                peer_ll: Some("fe80::2".parse().unwrap()),
            })
            .collect()
    }

    #[test]
    fn the_mapped_scenario_gets_mapped_attacks_on_both_v6_sockets_and_controls_first() {
        let facts = scenario::find("mapped-loopback-udp").unwrap().facts();
        let plan = plan(&facts);
        let probes = probes(&plan, &fake_links(&plan), &SourcePicker::plain());
        assert!(probes.first().unwrap().kind.control());
        let mapped: Vec<_> = probes.iter().filter(|p| p.kind == Kind::Ipv6SrcMapped).collect();
        assert_eq!(mapped.len(), 3, "{mapped:?}");
        assert!(mapped
            .iter()
            .all(|p| p.src.ip() == "::ffff:127.0.0.1".parse::<IpAddr>().unwrap()));
        assert!(mapped.iter().any(|p| p.service == "udp:[::]:5354"));
        let ports: Vec<u16> = probes
            .iter()
            .filter(|p| p.kind != Kind::ControlLocal)
            .map(|p| p.src.port())
            .collect();
        let mut unique = ports.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(ports.len(), unique.len(), "source ports must identify probes");
    }

    #[test]
    fn the_kube_scenario_aims_at_127_addresses_and_the_nodeport() {
        let facts = scenario::find("kube-route-localnet").unwrap().facts();
        let plan = plan(&facts);
        let probes = probes(&plan, &fake_links(&plan), &SourcePicker::plain());
        let dst: Vec<String> = probes
            .iter()
            .filter(|p| p.kind == Kind::Ipv4DstLoopback)
            .map(|p| p.dst.to_string())
            .collect();
        assert!(dst.contains(&"127.0.0.1:10248".to_string()), "{dst:?}");
        assert!(dst.contains(&"127.0.0.2:10250".to_string()), "{dst:?}");
        let nat: Vec<_> = probes.iter().filter(|p| p.kind == Kind::NatPublished).collect();
        assert_eq!(nat.len(), 1);
        assert_eq!(nat[0].dst.to_string(), "127.0.0.1:30080");
        assert_eq!(nat[0].service, "tcp:127.0.0.1:10249");
    }
}
