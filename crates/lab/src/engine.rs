//! Firing the probes: one phase per attack kind (controls first), all probes of a phase at once,
//! then watching the neighbour's interfaces, the victim's `lo` and the decoys until every probe
//! is decided or the phase times out. Counters are read around each phase.

use crate::attacks::{Kind, ProbeSpec, Target};
use crate::counters;
use crate::decoy::{local_client, peer_is_loopback, Decoy, TOKEN_PREFIX};
use crate::mirror::Mirror;
use crate::packet::{self, PacketSocket, Seen, TcpKind};
use crate::plan::LinkRole;
use crate::report::{AttackResult, Outcome, Path};
use crate::topology::Topology;
use crate::{signal, LabError};
use loopwarden_core::facts::Protocol;
use loopwarden_core::makers::Maker;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Index of `lo` in a fresh namespace.
const LO_IFINDEX: u32 = 1;

/// A probe while it runs.
struct Live {
    spec: ProbeSpec,
    token: String,
    isn: u32,
    acked: bool,
    outcome: Option<Outcome>,
    peer: Option<SocketAddr>,
    /// The token arrived at a listener that could not have taken the packet as addressed: a NAT
    /// rule rewrote it on the way.
    rewritten: bool,
    /// The decoy's service that received it, when another than the one aimed at.
    received_by: Option<String>,
    evidence: Vec<String>,
}

impl Live {
    fn decided(&self) -> bool {
        matches!(self.outcome, Some(o) if o != Outcome::Dropped)
    }

    fn matches_reply(&self, src: SocketAddr, dst: SocketAddr) -> bool {
        self.spec.protocol == Protocol::Tcp && dst.port() == self.spec.src.port() && src.port() == self.spec.dst.port()
    }
}

/// What the engine needs besides the probes.
pub struct Setup<'a> {
    /// The built lab.
    pub topology: &'a Topology,
    /// Decoys in the victim, in plan order.
    pub decoys: Vec<Option<Decoy>>,
    /// Stand-ins in the backend, in plan order.
    pub stand_ins: Vec<Option<Decoy>>,
    /// The service id each decoy stands for, in plan order (results name the service that
    /// received a token when it is not the one aimed at).
    pub decoy_services: Vec<String>,
    /// Which rule counters to read around each phase.
    pub counters: counters::Sources,
    /// Whether the lab's observation table is loaded (see [`crate::observe`]).
    pub observed: bool,
    /// How long a phase waits for undecided probes.
    pub timeout: Duration,
}

/// Runs every probe and returns the results in probe order. `progress` is called after each
/// phase with (phases done, phases in all, the phase just finished).
pub fn run(
    setup: &mut Setup<'_>,
    probes: Vec<ProbeSpec>,
    progress: &dyn Fn(usize, usize, &str),
) -> Result<Vec<AttackResult>, LabError> {
    let topo = setup.topology;
    let mut sockets: Vec<Option<PacketSocket>> = Vec::new();
    // Frames are sent and watched from the far end of every link: the neighbour (LAN) or the
    // backend (the containers behind a bridge).
    for link in &topo.links {
        let ifindex = link.peer_ifindex;
        let socket = topo
            .attacker(link)
            .run_in(move || PacketSocket::open(ifindex))?
            .map_err(|e| LabError::io("packet socket on the attacker's side", e))?;
        sockets.push(Some(socket));
    }
    let lo = topo
        .victim
        .run_in(|| PacketSocket::open(LO_IFINDEX))?
        .map_err(|e| LabError::io("packet socket on the victim's lo", e))?;
    let nonce = nonce();
    let mut live: Vec<Live> = probes
        .into_iter()
        .enumerate()
        .map(|(i, spec)| Live {
            token: format!("{i}:{nonce:08x}"),
            isn: nonce.wrapping_mul(2_654_435_761).wrapping_add(i as u32 * 7919),
            evidence: spec.why.clone(),
            spec,
            acked: false,
            outcome: None,
            peer: None,
            rewritten: false,
            received_by: None,
        })
        .collect();
    let mut kinds: Vec<Kind> = live.iter().map(|l| l.spec.kind).collect();
    kinds.dedup();
    let total = kinds.len();
    for (done, kind) in kinds.into_iter().enumerate() {
        if signal::interrupted() {
            return Err(LabError::Interrupted);
        }
        let members: Vec<usize> = (0..live.len()).filter(|i| live[*i].spec.kind == kind).collect();
        let before = counters::snapshot(&topo.victim, &setup.counters)?;
        phase(setup, &sockets, &lo, &mut live, &members)?;
        let after = counters::snapshot(&topo.victim, &setup.counters)?;
        let moved = counters::moved(&before, &after);
        let seen = if setup.observed {
            Some(crate::observe::Seen::read(&topo.victim)?)
        } else {
            None
        };
        let half_open = if members.iter().any(|&i| live[i].spec.protocol == Protocol::Tcp) {
            syn_received(&topo.victim)?
        } else {
            Vec::new()
        };
        for &i in &members {
            let l = &mut live[i];
            if l.outcome.is_none() {
                l.outcome = Some(Outcome::Dropped);
            }
            if l.outcome.is_some_and(|o| o.delivered()) {
                continue;
            }
            let observed = seen.as_ref().filter(|_| l.spec.link.is_some());
            let protocol = match l.spec.protocol {
                Protocol::Tcp => 6,
                Protocol::Udp => 17,
            };
            if let (Some(seen), Some(Outcome::Dropped)) = (observed, l.outcome) {
                let accepted = half_open
                    .iter()
                    .any(|(local, peer)| *peer == l.spec.src && local.port() == l.spec.dst.port());
                if protocol == 6 && seen.passed_input(protocol, l.spec.src.port()) && accepted {
                    // The listener got the SYN; its SYN-ACK found no way back to the sender.
                    l.outcome = Some(Outcome::Blind);
                    l.evidence.push(
                        "the listener took the SYN (a half-open connection from the sender was seen), but no \
                         SYN-ACK came back to the sender (no route to it)"
                            .into(),
                    );
                } else {
                    l.evidence.extend(seen.explain(protocol, l.spec.src.port()));
                }
            }
            if !moved.is_empty() {
                l.evidence.push(format!(
                    "moved while this phase's probes were in flight (not this probe's alone): {}",
                    moved.join(", ")
                ));
            }
        }
        progress(done + 1, total, kind.id());
    }
    Ok(live.into_iter().map(|l| result(topo, l)).collect())
}

fn phase(
    setup: &mut Setup<'_>,
    sockets: &[Option<PacketSocket>],
    lo: &PacketSocket,
    live: &mut [Live],
    members: &[usize],
) -> Result<(), LabError> {
    let topo = setup.topology;
    for &i in members {
        let l = &live[i];
        let payload = format!("{TOKEN_PREFIX}{}\n", l.token).into_bytes();
        match l.spec.link {
            None => {
                if let Err(e) = local_client(&topo.victim, l.spec.protocol, l.spec.dst, payload)? {
                    live[i].outcome = Some(Outcome::Refused);
                    live[i].evidence.push(format!("local client: {e}"));
                }
            }
            Some(li) => {
                let link = &topo.links[li];
                let tcp = (l.spec.protocol == Protocol::Tcp).then_some((TcpKind::Syn, l.isn));
                let frame = packet::build(link.peer_mac, link.victim_mac, l.spec.src, l.spec.dst, tcp, &payload);
                match (frame, sockets.get(li).and_then(Option::as_ref)) {
                    (Some(frame), Some(s)) => s.send(&frame).map_err(|e| LabError::io("sending a frame", e))?,
                    _ => live[i].evidence.push("frame could not be built".into()),
                }
            }
        }
    }
    // Controls are expected to arrive and end the phase early: give them room on a busy machine.
    let timeout = if members.iter().any(|&i| live[i].spec.kind.control()) {
        setup.timeout * 4
    } else {
        setup.timeout
    };
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; 65_536];
    loop {
        for (li, socket) in sockets.iter().enumerate() {
            let Some(socket) = socket else { continue };
            while let Some(n) = socket.recv(&mut buf) {
                if let Some(seen) = packet::parse(&buf[..n]) {
                    on_neighbour_frame(topo, socket, li, &seen, live, members)?;
                }
            }
        }
        while let Some(n) = lo.recv(&mut buf) {
            if let Some(Seen::Tcp {
                src,
                dst,
                syn: true,
                ack: true,
                ..
            }) = packet::parse(&buf[..n])
            {
                for &i in members {
                    let l = &mut live[i];
                    if l.spec.link.is_some() && l.outcome.is_none() && l.matches_reply(src, dst) {
                        l.outcome = Some(Outcome::Blind);
                        l.evidence.push(format!(
                            "the victim's SYN-ACK went to {dst} over lo, not back to the sender"
                        ));
                    }
                }
            }
        }
        let poll = |d: &mut Option<Decoy>| d.as_mut().map(Decoy::poll).unwrap_or_default();
        let arrivals = setup
            .decoys
            .iter_mut()
            .enumerate()
            .map(|(k, d)| (Target::Decoy(k), poll(d)));
        let arrivals: Vec<_> = arrivals
            .chain(
                setup
                    .stand_ins
                    .iter_mut()
                    .enumerate()
                    .map(|(k, d)| (Target::StandIn(k), poll(d))),
            )
            .collect();
        for (target, list) in arrivals {
            for a in list {
                if let Some(l) = live.iter_mut().find(|l| l.token == a.token) {
                    l.outcome = Some(if peer_is_loopback(&a.peer) {
                        Outcome::DeliveredToTrust
                    } else {
                        Outcome::Delivered
                    });
                    l.peer = Some(a.peer);
                    let listener = match target {
                        Target::Decoy(k) => setup.decoys.get(k),
                        Target::StandIn(k) => setup.stand_ins.get(k),
                    }
                    .and_then(Option::as_ref);
                    // The kernel prefers the most specific socket: a datagram to 127.0.0.1:P
                    // aimed at a `0.0.0.0:P` decoy lands on a `127.0.0.1:P` one, as addressed.
                    l.rewritten = listener.is_none_or(|d| !d.takes(l.spec.dst));
                    if let (Target::Decoy(k), false) = (target, target == l.spec.target || l.rewritten) {
                        l.received_by = setup.decoy_services.get(k).cloned();
                    }
                }
            }
        }
        // A handshake completed late gets one more timeout for its data to arrive.
        let mid_handshake = members.iter().any(|&i| live[i].acked && !live[i].decided());
        let now = Instant::now();
        let expired = now >= deadline && !(mid_handshake && now < deadline + timeout);
        if members.iter().all(|&i| live[i].decided()) || expired || signal::interrupted() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn on_neighbour_frame(
    topo: &Topology,
    socket: &PacketSocket,
    li: usize,
    seen: &Seen,
    live: &mut [Live],
    members: &[usize],
) -> Result<(), LabError> {
    for &i in members {
        let l = &mut live[i];
        if l.spec.link != Some(li) || l.decided() {
            continue;
        }
        match *seen {
            Seen::Tcp {
                src,
                dst,
                syn: true,
                ack: true,
                seq,
                ..
            } if l.matches_reply(src, dst) && !l.acked => {
                let link = &topo.links[li];
                let payload = format!("{TOKEN_PREFIX}{}\n", l.token).into_bytes();
                let kind = TcpKind::AckData {
                    ack: seq.wrapping_add(1),
                };
                if let Some(frame) = packet::build(
                    link.peer_mac,
                    link.victim_mac,
                    l.spec.src,
                    l.spec.dst,
                    Some((kind, l.isn.wrapping_add(1))),
                    &payload,
                ) {
                    socket.send(&frame).map_err(|e| LabError::io("sending a frame", e))?;
                    l.acked = true;
                    l.evidence
                        .push(format!("SYN-ACK came back from {src}; handshake completed"));
                }
            }
            Seen::Tcp {
                src, dst, rst: true, ..
            } if l.matches_reply(src, dst) => {
                l.outcome = Some(Outcome::Refused);
                l.evidence.push(format!("RST from {src}"));
            }
            Seen::IcmpError {
                quoted_src_port,
                quoted_dst_port,
                ref kind,
            } if quoted_src_port == l.spec.src.port()
                && quoted_dst_port == l.spec.dst.port()
                && l.spec.protocol == Protocol::Udp =>
            {
                l.outcome = Some(Outcome::Refused);
                l.evidence.push(format!("{kind} came back"));
            }
            _ => {}
        }
    }
    Ok(())
}

/// The victim's half-open TCP connections (`SYN-RECV`: the listener took a SYN and answered it, or
/// tried to), as (local, peer) addresses.
fn syn_received(victim: &crate::netns::Namespace) -> Result<Vec<(SocketAddr, SocketAddr)>, LabError> {
    let text = victim.exec(&["ss", "-Htn", "state", "syn-recv"])?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let n = cols.len();
            let parse = |s: &str| {
                s.replace(['[', ']'], "").rsplit_once(':').and_then(|(ip, port)| {
                    Some(SocketAddr::new(ip.split('%').next()?.parse().ok()?, port.parse().ok()?))
                })
            };
            Some((parse(cols.get(n.checked_sub(2)?)?)?, parse(cols.get(n - 1)?)?))
        })
        .collect())
}

fn result(topo: &Topology, l: Live) -> AttackResult {
    let interface = match l.spec.link {
        Some(li) => topo.links[li].plan.name.clone(),
        None => "lo".to_string(),
    };
    let source = if l.spec.kind == Kind::ControlLocal {
        format!("{} (kernel-chosen port)", l.spec.src.ip())
    } else {
        l.spec.src.to_string()
    };
    // A token that turns up at another listener than the one its packet was addressed to was
    // rewritten on the way: the path is NAT, whatever the attack set out to show.
    let path = if l.rewritten { Path::Nat } else { Path::Direct };
    let outcome = l.outcome.unwrap_or(Outcome::Dropped);
    // Sources the firewall lets in that this probe did not carry: its drop refutes nothing.
    let mut uncertain: Vec<String> = l.spec.doubt.iter().filter(|_| !outcome.delivered()).cloned().collect();
    let mut evidence = l.evidence;
    if path == Path::Nat {
        evidence.push("arrived at another listener than the one addressed: a NAT rule rewrote it".into());
    }
    if outcome == Outcome::Dropped {
        if l.acked {
            // The listener answered: the path reached a socket, only the data did not arrive.
            uncertain.push(
                "a SYN-ACK came back, so the SYN reached a listener, but the data after the handshake never \
                 reached the socket: the path is not refuted"
                    .into(),
            );
        } else {
            evidence.push("nothing came back to the sender".into());
        }
    }
    let attacker = attacker(topo, l.spec.link);
    AttackResult {
        attack: l.spec.kind.id().to_string(),
        path,
        received_by: l.received_by,
        description: l.spec.kind.describe().to_string(),
        control: l.spec.kind.control(),
        service: l.spec.service,
        interface,
        attacker,
        protocol: l.spec.protocol,
        source,
        destination: l.spec.dst.to_string(),
        outcome,
        peer_seen: l.peer.map(|p| p.to_string()),
        evidence,
        uncertain,
    }
}

/// Who fires on link `li`, in words: a local client for `None`; on a bridge whose name a
/// runtime or network plugin gives it, that maker's containers, pods or VMs; otherwise a LAN
/// neighbour (or the hosts of a subnet that holds NAT targets).
fn attacker(topo: &Topology, li: Option<usize>) -> String {
    let Some(link) = li.and_then(|li| topo.links.get(li)) else {
        return "a local client on lo".into();
    };
    let name = &link.plan.name;
    match (Maker::of_interface(name), link.plan.role) {
        (Some(maker), _) => format!(
            "{} behind {name} ({}, by the bridge's name)",
            maker.guests(),
            maker.name()
        ),
        (None, LinkRole::Backend) => format!("a host on {name}'s subnet (it holds NAT targets)"),
        (None, LinkRole::Lan) => format!("a LAN neighbour on {name}"),
    }
}

/// Marks results that something not mirrored could have decided, and LAN results whose family
/// and protocol had no working control. Returns whether the controls passed: every local control
/// delivered and at least one LAN control delivered.
pub fn qualify(results: &mut [AttackResult], mirror: &Mirror) -> bool {
    let lan_controls: Vec<(bool, Protocol, bool)> = results
        .iter()
        .filter(|r| r.attack == Kind::ControlLan.id())
        .map(|r| (is_v6(&r.destination), r.protocol, r.outcome.delivered()))
        .collect();
    let local_ok = results
        .iter()
        .filter(|r| r.attack == Kind::ControlLocal.id())
        .all(|r| r.outcome.delivered());
    let lan_ok = lan_controls.iter().any(|(_, _, ok)| *ok);
    for r in results.iter_mut().filter(|r| !r.control) {
        let v6 = is_v6(&r.destination) || is_v6(&r.source);
        // A missing control makes a drop doubtful (it may be the lab's), never a delivery.
        if !r.outcome.delivered()
            && !lan_controls
                .iter()
                .any(|(f, p, ok)| *f == v6 && *p == r.protocol && *ok)
        {
            r.uncertain.push(format!(
                "no {} {} control was delivered on this path, so a drop here may be the lab's",
                if v6 { "IPv6" } else { "IPv4" },
                r.protocol.as_str().to_uppercase()
            ));
        }
        let family = if v6 { "ipv6" } else { "ipv4" };
        let missing: Vec<String> = mirror
            .left_out
            .iter()
            .filter(|m| m.inbound && (m.family == family || m.family == "both"))
            .map(|m| format!("{} left out: {}", m.source, m.item))
            .collect();
        // A drop by a rule whose verdict depends on runtime state is not proof: the host's
        // packets may meet another CPU, number, count or time.
        if !r.outcome.delivered() {
            r.uncertain.extend(
                mirror
                    .state_dependent
                    .iter()
                    .filter(|m| m.inbound && (m.family == family || m.family == "both"))
                    .take(3)
                    .map(|m| format!("{} rule loaded, but {}: {}", m.source, m.reason, m.item)),
            );
        }
        if !missing.is_empty() {
            let more = missing.len().saturating_sub(3);
            let mut line = missing.into_iter().take(3).collect::<Vec<_>>().join("; ");
            if more > 0 {
                line.push_str(&format!("; and {more} more"));
            }
            r.uncertain.push(line);
        }
    }
    local_ok && lan_ok
}

fn is_v6(addr: &str) -> bool {
    addr.starts_with('[')
}

fn nonce() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    nanos ^ std::process::id().rotate_left(16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::LeftOut;

    fn row(attack: &str, src: &str, dst: &str, protocol: Protocol, outcome: Outcome) -> AttackResult {
        AttackResult {
            attack: attack.into(),
            path: Path::Direct,
            received_by: None,
            description: String::new(),
            control: attack.starts_with("control."),
            service: "s".into(),
            interface: "eth0".into(),
            attacker: "a LAN neighbour on eth0".into(),
            protocol,
            source: src.into(),
            destination: dst.into(),
            outcome,
            peer_seen: None,
            evidence: vec![],
            uncertain: vec![],
        }
    }

    #[test]
    fn a_missing_control_leaves_a_delivery_certain() {
        let mut results = vec![
            row(
                "control.lan",
                "[2001:db8::fffe]:2",
                "[2001:db8::1]:22",
                Protocol::Udp,
                Outcome::Dropped,
            ),
            row(
                "ipv6.src-mapped-loopback",
                "[::ffff:127.0.0.1]:4",
                "[2001:db8::1]:53",
                Protocol::Udp,
                Outcome::DeliveredToTrust,
            ),
            row(
                "ipv6.src-loopback",
                "[::1]:5",
                "[2001:db8::1]:53",
                Protocol::Udp,
                Outcome::Dropped,
            ),
        ];
        qualify(&mut results, &Mirror::default());
        assert!(results[1].uncertain.is_empty(), "{:?}", results[1].uncertain);
        assert!(
            results[2].uncertain.iter().any(|u| u.contains("no IPv6 UDP control")),
            "{:?}",
            results[2].uncertain
        );
    }

    #[test]
    fn a_missing_control_or_rule_makes_results_uncertain_per_family() {
        let mut results = vec![
            row(
                "control.local",
                "127.0.0.1",
                "127.0.0.1:1",
                Protocol::Tcp,
                Outcome::DeliveredToTrust,
            ),
            row(
                "control.lan",
                "192.0.2.254:1",
                "192.0.2.1:22",
                Protocol::Tcp,
                Outcome::Delivered,
            ),
            row(
                "control.lan",
                "[2001:db8::fffe]:2",
                "[2001:db8::1]:22",
                Protocol::Tcp,
                Outcome::Dropped,
            ),
            row(
                "ipv4.src-loopback",
                "127.0.0.1:3",
                "192.0.2.1:22",
                Protocol::Tcp,
                Outcome::Dropped,
            ),
            row(
                "ipv6.src-loopback",
                "[::1]:4",
                "[2001:db8::1]:22",
                Protocol::Tcp,
                Outcome::Dropped,
            ),
        ];
        let mirror = Mirror {
            left_out: vec![LeftOut {
                inbound: true,
                source: "nftables".into(),
                family: "ipv4".into(),
                item: "socket cgroupv2 …".into(),
                reason: "x".into(),
            }],
            ..Mirror::default()
        };
        assert!(qualify(&mut results, &mirror));
        assert_eq!(results[3].uncertain, vec!["nftables left out: socket cgroupv2 …"]);
        assert_eq!(results[4].uncertain.len(), 1);
        assert!(results[4].uncertain[0].contains("no IPv6 TCP control"));
        assert!(results[1].uncertain.is_empty());
    }

    #[test]
    fn a_failed_local_control_fails_the_run() {
        let mut results = vec![
            row(
                "control.local",
                "127.0.0.1",
                "127.0.0.1:1",
                Protocol::Tcp,
                Outcome::Refused,
            ),
            row(
                "control.lan",
                "192.0.2.254:1",
                "192.0.2.1:22",
                Protocol::Tcp,
                Outcome::Delivered,
            ),
        ];
        assert!(!qualify(&mut results, &Mirror::default()));
    }
}
