//! The lab's answer: the attack matrix (attack × service → outcome, with evidence), controls
//! first, and the findings it proves or refutes for `audit --prove`.

use crate::mirror::Mirror;
use crate::priority::Untested;
use loopwarden_core::checks::CheckId;
use loopwarden_core::facts::{HostFacts, Protocol};
use loopwarden_core::report::{Attacker, Confidence, Finding, Reached, Severity, Status};
use serde::Serialize;

/// The schema tag of a serialised [`ProofReport`].
pub const PROOF_SCHEMA: &str = "loopwarden.proof/v1";

/// What happened to one attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// The decoy got the token (for TCP, after a full handshake).
    Delivered,
    /// Delivered, and the peer address the application saw was loopback: the case that fools
    /// address-based access control.
    DeliveredToTrust,
    /// A spoofed SYN reached the socket; the reply went to the spoofed (loopback) source.
    Blind,
    /// The victim answered with a TCP RST or an ICMP error.
    Refused,
    /// Nothing reached the decoy and nothing came back.
    Dropped,
}

impl Outcome {
    /// Every outcome, from got-through to nothing-reached (a metric writes each, zero or not).
    pub const ALL: [Outcome; 5] = [
        Outcome::Delivered,
        Outcome::DeliveredToTrust,
        Outcome::Blind,
        Outcome::Refused,
        Outcome::Dropped,
    ];

    /// The schema's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::DeliveredToTrust => "delivered-to-trust",
            Outcome::Blind => "blind",
            Outcome::Refused => "refused",
            Outcome::Dropped => "dropped",
        }
    }

    /// What the lab saw, in words, beside [`Outcome::as_str`]: the socket read the token, only
    /// a half-open connection (blind), a refusal, or nothing.
    pub fn said(self) -> &'static str {
        match self {
            Outcome::Delivered => "the socket got it: the application read the lab's token",
            Outcome::DeliveredToTrust => "the socket got it: the application read the lab's token from a loopback peer",
            Outcome::Blind => {
                "the listener took the SYN (a half-open connection from the sender) but no reply reached the \
                 sender: no data delivered"
            }
            Outcome::Refused => "a TCP RST or an ICMP error came back",
            Outcome::Dropped => "the socket got nothing",
        }
    }

    /// Whether the application received the attack's data.
    pub fn delivered(self) -> bool {
        matches!(self, Outcome::Delivered | Outcome::DeliveredToTrust)
    }
}

/// Which path carried an attack that got through: the packet as addressed, or a NAT rule that
/// rewrote it to another listener (a DNAT-published port is not a route_localnet delivery).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Path {
    /// Delivered to the listener the packet was addressed to (or not delivered at all).
    Direct,
    /// Delivered to another listener: a NAT rule rewrote the destination.
    Nat,
}

/// One row of the matrix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AttackResult {
    /// The attack's id (`ipv4.dst-loopback`, `ipv6.src-mapped-loopback`, `control.lan` …).
    pub attack: String,
    /// The path that carried it: direct, or rewritten by NAT.
    pub path: Path,
    /// The service that received it as addressed, when another than the one aimed at (the
    /// kernel prefers a socket bound to the exact address over a wildcard one on the same port).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received_by: Option<String>,
    /// What was sent, in words.
    pub description: String,
    /// A control (expected to be delivered), not an attack.
    pub control: bool,
    /// The service aimed at (a host service id, `lab-control:…`, or a NAT stand-in).
    pub service: String,
    /// The victim interface the frames arrived on (`lo` for local controls).
    pub interface: String,
    /// Who fired it, in words: a local client, a LAN neighbour on the interface, or the
    /// containers, pods or VMs behind a bridge (named after the bridge's maker).
    pub attacker: String,
    /// TCP or UDP.
    pub protocol: Protocol,
    /// The source address and port written into the packet (spoofed for most attacks).
    pub source: String,
    /// The destination address and port written into the packet.
    pub destination: String,
    /// What happened.
    pub outcome: Outcome,
    /// The peer address the application saw, when delivered.
    pub peer_seen: Option<String>,
    /// Why, where the kernel tells: counters, nft rule counters, replies seen.
    pub evidence: Vec<String>,
    /// Why the outcome may not hold on the host (a rule that could not be loaded …); empty
    /// when the lab mirrored everything that could decide it.
    pub uncertain: Vec<String>,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProofReport {
    /// Always [`PROOF_SCHEMA`].
    pub schema: String,
    /// What was mirrored: `host`, `snapshot` or `scenario:NAME`.
    pub source: String,
    /// The kernel the lab ran on (outcomes are this kernel's).
    pub kernel: String,
    /// Whether the controls came out as expected: every local client reached its loopback
    /// service and ordinary traffic from the neighbour reached a wildcard listener. They run
    /// before the host's ruleset is loaded, so they test the lab itself. When false, nothing is
    /// proven.
    pub controls_passed: bool,
    /// The mirrored interfaces.
    pub interfaces: Vec<String>,
    /// What was loaded and what was left out.
    pub mirror: Mirror,
    /// Where the lab differs from the host, and why.
    pub notes: Vec<String>,
    /// Host services and interfaces the lab did not test (over its limits): a finding about
    /// them, or about the whole host, is never refuted by this run.
    #[serde(skip_serializing_if = "Untested::is_empty")]
    pub untested: Untested,
    /// The matrix, controls first.
    pub results: Vec<AttackResult>,
    /// Wall-clock time of the run, milliseconds.
    pub duration_ms: u64,
}

impl ProofReport {
    /// Whether an attack (not a control) got through, or was dropped in a way the lab could not
    /// vouch for (a rule left out of the mirror, routes not captured): unknown is never safe.
    pub fn breached_or_uncertain(&self) -> bool {
        self.results
            .iter()
            .filter(|r| !r.control)
            .any(|r| r.outcome.delivered() || !r.uncertain.is_empty())
    }
}

/// A check id, the service it is about (`None`: host-wide) and the finding's subject (the
/// address family, for the per-family anti-spoof findings).
type CheckKey = (CheckId, Option<String>, Option<&'static str>);

/// Which checks a lab result speaks to, each for a service or host-wide. The keys follow the
/// static checks' (check id, service, subject) so that `Report::merge_active` upgrades their
/// findings. Every loopback-addressed attack also speaks to its family's
/// `net.no-loopback-antispoof` finding: delivered anywhere means the boundary is open.
fn checks_of(r: &AttackResult) -> Vec<CheckKey> {
    // The service that took the packet: the one aimed at, or the more specific socket the kernel
    // chose on the same address and port.
    let service = r.received_by.as_deref().unwrap_or(&r.service);
    let host_service = !service.starts_with("lab-control:");
    let udp_loopback =
        r.protocol == Protocol::Udp && (service.starts_with("udp:127.") || service.starts_with("udp:[::1]:"));
    let published = || Some(format!("{}:{}", r.protocol.as_str(), r.destination));
    let mut out = match r.attack.as_str() {
        // A loopback-addressed packet that NAT rewrote proves the publish, not route_localnet.
        "ipv4.dst-loopback" if r.path == Path::Nat => vec![(CheckId::NetDnatLoopback, published(), None)],
        // From another 127/8 source the application also sees a loopback peer.
        "ipv4.dst-loopback" if host_service && r.source.starts_with("127.") => vec![
            (CheckId::NetRouteLocalnet, None, None),
            (CheckId::NetLoopbackSourceTrust, Some(service.to_string()), None),
        ],
        "ipv4.dst-loopback" => vec![(CheckId::NetRouteLocalnet, None, None)],
        // The published address and port, as the static check names the service.
        "nat.published-loopback" => vec![(CheckId::NetDnatLoopback, published(), None)],
        // Translated to a loopback target: the static check names the target's service.
        "nat.to-loopback" if host_service => vec![(CheckId::NetDnatLoopback, Some(service.to_string()), None)],
        "ipv4.src-loopback" | "ipv6.src-loopback" | "ipv6.src-mapped-loopback" if host_service => {
            vec![(CheckId::NetLoopbackSourceTrust, Some(service.to_string()), None)]
        }
        _ => vec![],
    };
    // A datagram addressed to the loopback service that a NAT rule carried to what it publishes
    // reached the service too (the static check asks the same question with NAT).
    if udp_loopback
        && matches!(
            r.attack.as_str(),
            "ipv4.dst-loopback" | "ipv4.stub-spoof" | "ipv6.dst-loopback"
        )
    {
        out.push((CheckId::ProtoUdpLoopback, Some(service.to_string()), None));
    }
    let family = match r.attack.as_str() {
        "ipv4.dst-loopback" | "ipv4.src-loopback" | "ipv4.stub-spoof" | "nat.published-loopback" => Some("ipv4"),
        "ipv6.dst-loopback" | "ipv6.src-loopback" | "ipv6.src-mapped-loopback" => Some("ipv6"),
        _ => None,
    };
    if let Some(family) = family {
        out.push((CheckId::NetNoLoopbackAntispoof, None, Some(family)));
    }
    out
}

/// What a lab finding of `check` says: its severity, title and fix; `None` for the checks no lab
/// attack speaks to (the match names every check, so a new one must be placed here).
fn spec(check: CheckId) -> Option<(Severity, &'static str, &'static str)> {
    match check {
        CheckId::NetNoLoopbackAntispoof => Some((
            Severity::Medium,
            "loopback-addressed packets reach a service from a LAN neighbour",
            "drop loopback sources and destinations (127.0.0.0/8, ::1, ::ffff:127.0.0.0/104) on \
             iifname != lo in a prerouting chain at priority raw",
        )),
        CheckId::NetRouteLocalnet => Some((
            Severity::Critical,
            "loopback services are reached by sending to 127.0.0.0/8 (route_localnet) from a LAN neighbour",
            "set net.ipv4.conf.all.route_localnet=0 and on every interface; drop `ip daddr 127.0.0.0/8` \
             on iifname != lo in a raw prerouting chain",
        )),
        CheckId::NetDnatLoopback => Some((
            Severity::High,
            "a NAT rule publishing a loopback address answers a LAN neighbour",
            "drop `ip daddr 127.0.0.0/8` on iifname != lo at priority raw (before DNAT); if the rule is Docker's, \
             Docker 28.3.3+ adds that drop for its own publishes; or publish on a Unix socket",
        )),
        CheckId::NetLoopbackSourceTrust => Some((
            Severity::High,
            "a spoofed loopback source reaches this listener: the application sees a loopback peer",
            "drop `ip saddr 127.0.0.0/8` and `ip6 saddr ::ffff:127.0.0.0/104` on iifname != lo at priority \
             raw; never grant trust by peer address alone",
        )),
        CheckId::ProtoUdpLoopback => Some((
            Severity::High,
            "one spoofed datagram from the LAN reaches this loopback UDP socket",
            "drop loopback sources and destinations on iifname != lo at priority raw; keep route_localnet=0",
        )),
        CheckId::BindWildcard
        | CheckId::LocalTcpAnyUid
        | CheckId::LocalPortSquat
        | CheckId::LocalUnixWorld
        | CheckId::LocalUnixAbstract
        | CheckId::NameLocalhostResolution
        | CheckId::RelayHttpProxy
        | CheckId::RelaySocksProxy
        | CheckId::RelaySshForwarding
        | CheckId::RelayReverseProxy
        | CheckId::RelayForwarder
        | CheckId::RelayFtpBounce
        | CheckId::NetnsSharedAbstractUnix
        | CheckId::NetnsUnprotectedLoopback
        | CheckId::NetnsPublishedLoopback
        | CheckId::WebDnsRebinding
        | CheckId::WebCorsPermissive
        | CheckId::WebPrivateNetworkAccess
        | CheckId::WebWebsocketOrigin
        | CheckId::WebZeroAddress => None,
    }
}

impl ProofReport {
    /// What the lab could not establish, as report limits (`prove: …`): failed controls, rules
    /// and settings left out of the mirror, and where the lab differed from the host.
    pub fn limits(&self) -> Vec<String> {
        let mut out = Vec::new();
        if !self.controls_passed {
            out.push(
                "prove: the lab's controls failed, so nothing was proven (run `loopwarden prove` for the matrix)"
                    .into(),
            );
        }
        out.extend(
            self.mirror
                .left_out
                .iter()
                .map(|l| format!("prove: {} left out: {} ({})", l.source, l.item, l.reason)),
        );
        out.extend(self.notes.iter().map(|n| format!("prove: {n}")));
        out
    }

    /// The findings the lab proves (`status: open`) or refutes (`status: blocked`), with the
    /// attacks as evidence, all `confidence: proven`. A result the lab could not mirror fully
    /// makes its finding `unknown`. When the controls failed, nothing is proven: empty.
    ///
    /// `facts` is the snapshot the lab mirrored; findings about a service name it only when the
    /// snapshot has that socket.
    pub fn findings(&self, facts: &HostFacts) -> Vec<Finding> {
        if !self.controls_passed {
            return Vec::new();
        }
        let mut groups: Vec<(CheckKey, Vec<&AttackResult>)> = Vec::new();
        for r in self.results.iter().filter(|r| !r.control) {
            for mut key in checks_of(r) {
                if key.1.as_ref().is_some_and(|s| !has_socket(facts, s)) {
                    key.1 = None;
                }
                match groups.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, list)) => list.push(r),
                    None => groups.push((key, vec![r])),
                }
            }
        }
        groups
            .into_iter()
            .filter_map(|((check, service, subject), results)| {
                let (severity, title, fix) = spec(check)?;
                let open = results.iter().any(|r| r.outcome.delivered() && r.uncertain.is_empty());
                let uncertain = results.iter().any(|r| !r.uncertain.is_empty());
                let partial = self.partial_for(service.as_deref());
                let status = if open {
                    Status::Open
                } else if uncertain || partial.is_some() {
                    Status::Unknown
                } else {
                    Status::Blocked
                };
                let mut evidence: Vec<String> = results.iter().map(|r| evidence_line(r)).collect();
                if let (Some(untested), false) = (partial, open) {
                    evidence.push(format!(
                        "not refuted: the lab tested only the {} attack(s) above; it did not test {untested}",
                        results.len()
                    ));
                }
                evidence.extend(
                    results
                        .iter()
                        .flat_map(|r| r.uncertain.iter().map(|u| format!("uncertain: {u}"))),
                );
                evidence.dedup();
                let reaches = if service.is_none() {
                    reached(&results)
                } else {
                    Vec::new()
                };
                if !facts.host.kernel.is_empty() && facts.host.kernel != self.kernel {
                    evidence.push(format!(
                        "the lab ran on kernel {}, the snapshot's host runs {}: outcomes are the lab kernel's",
                        self.kernel, facts.host.kernel
                    ));
                }
                Some(Finding {
                    check,
                    service,
                    attacker: Attacker::Lan,
                    // Proven open: as severe as the static check rates that path open; refuted:
                    // nothing left to rate.
                    severity: if status == Status::Blocked {
                        Severity::Low
                    } else {
                        severity
                    },
                    status,
                    // Only an outcome the lab could vouch for is proven; an uncertain one is not
                    // (never `unknown · proven`).
                    confidence: if status == Status::Unknown {
                        Confidence::Inspected
                    } else {
                        Confidence::Proven
                    },
                    title: {
                        let title = title.replace("a LAN neighbour", &who(&results, status));
                        let title = match subject {
                            Some(family) => format!("{}: {title}", family.replace("ip", "IP")),
                            None => title.to_string(),
                        };
                        let blind = results.iter().any(|r| r.outcome == Outcome::Blind);
                        match status {
                            Status::Open => title,
                            // A blind SYN did get through to the socket: the path is not closed,
                            // only the handshake (and so a loopback peer) is out of reach. Said
                            // after the refutation, as every blocked title is, so that the
                            // static title it quotes is never read as a claim.
                            Status::Blocked if blind => format!(
                                "refuted in the lab: {title} — for connections: a spoofed loopback source \
                                 reached the socket only blind (its SYN-ACK went to loopback), so no \
                                 connection with a loopback peer was made"
                            ),
                            Status::Blocked => format!("refuted in the lab: {title}"),
                            Status::Unknown => format!("not established in the lab: {title}"),
                        }
                        .into()
                    },
                    evidence,
                    fix: fix.into(),
                    subject: subject.map(str::to_string),
                    reaches,
                })
            })
            .collect()
    }
}

/// The services a host-wide finding's attacks got to, each open when an attack was delivered,
/// unknown when one was uncertain, else blocked — the map draws the path to each. A NAT path
/// ends at the address it published; the lab's own control listeners are not the host's.
fn reached(results: &[&AttackResult]) -> Vec<Reached> {
    let mut out: Vec<Reached> = Vec::new();
    for r in results {
        let service = match r.path {
            Path::Nat => format!("{}:{}", r.protocol.as_str(), r.destination),
            _ => r.received_by.clone().unwrap_or_else(|| r.service.clone()),
        };
        if service.starts_with("lab-control:") {
            continue;
        }
        let status = if r.outcome.delivered() && r.uncertain.is_empty() {
            Status::Open
        } else if !r.uncertain.is_empty() {
            Status::Unknown
        } else {
            Status::Blocked
        };
        match out.iter_mut().find(|x| x.service == service) {
            Some(x) if status.rank() > x.status.rank() => x.status = status,
            Some(_) => {}
            None => out.push(Reached { service, status }),
        }
    }
    out
}

impl ProofReport {
    /// What this run left untested that a finding about `service` (`None`: the whole host)
    /// covers, in words; `None` when it tested all of it. A host-wide finding covers every
    /// service on every interface; a service's finding covers that service on every interface.
    fn partial_for(&self, service: Option<&str>) -> Option<String> {
        let relevant = match service {
            None => self.untested.clone(),
            Some(_) => Untested {
                services: Vec::new(),
                interfaces: self.untested.interfaces.clone(),
            },
        };
        (!relevant.is_empty()).then(|| relevant.describe())
    }
}

/// Who the attacks behind a finding came from, for its title: those that got through when it is
/// open, all of them otherwise (`a LAN neighbour on eth0`, `pods behind cni0 (…)`).
fn who(results: &[&AttackResult], status: Status) -> String {
    let mut names: Vec<&str> = results
        .iter()
        .filter(|r| status != Status::Open || r.outcome.delivered())
        // The title names who (`pods behind cni0`); the evidence lines say whose bridge it is.
        .map(|r| r.attacker.split(" (").next().unwrap_or(&r.attacker))
        .collect();
    names.sort_unstable();
    names.dedup();
    match names.as_slice() {
        [] => "a LAN neighbour".into(),
        [one] => (*one).to_string(),
        [first, second] => format!("{first} and {second}"),
        [first, second, rest @ ..] => format!("{first}, {second} and {} more", rest.len()),
    }
}

/// Whether the snapshot has an inet socket with this service id.
fn has_socket(facts: &HostFacts, id: &str) -> bool {
    facts
        .inet_sockets
        .iter()
        .any(|s| loopwarden_core::inventory::inet_service_id(s) == id)
}

/// One lab row for a finding's evidence: what was fired, from where, at what, and what came
/// back — `lab: ipv4.dst-loopback fired UDP 192.0.2.254:30001 -> 127.0.0.1:8125 from a LAN
/// neighbour on eth0 at udp:127.0.0.1:8125: delivered — the socket got it: …; …`.
pub fn evidence_line(r: &AttackResult) -> String {
    let mut line = format!(
        "lab: {} fired {} {} -> {} from {} at {}: {} — {}",
        r.attack,
        r.protocol.as_str().to_uppercase(),
        r.source,
        r.destination,
        r.attacker,
        r.service,
        r.outcome.as_str(),
        r.outcome.said()
    );
    if let Some(receiver) = &r.received_by {
        line.push_str(&format!(", received by {receiver}"));
    }
    if let Some(peer) = &r.peer_seen {
        line.push_str(&format!(" (application saw peer {peer})"));
    }
    if !r.evidence.is_empty() {
        line.push_str(&format!("; {}", r.evidence.join("; ")));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(attack: &str, service: &str, outcome: Outcome) -> AttackResult {
        AttackResult {
            attack: attack.into(),
            path: Path::Direct,
            received_by: None,
            description: String::new(),
            control: attack.starts_with("control."),
            service: service.into(),
            interface: "eth0".into(),
            attacker: "a LAN neighbour on eth0".into(),
            protocol: if service.starts_with("udp") {
                Protocol::Udp
            } else {
                Protocol::Tcp
            },
            source: "192.0.2.254:30001".into(),
            destination: "127.0.0.1:7003".into(),
            outcome,
            peer_seen: None,
            evidence: vec![],
            uncertain: vec![],
        }
    }

    fn report(results: Vec<AttackResult>, controls_passed: bool) -> ProofReport {
        ProofReport {
            schema: PROOF_SCHEMA.into(),
            source: "test".into(),
            kernel: "6.18".into(),
            controls_passed,
            interfaces: vec!["eth0".into()],
            mirror: Mirror::default(),
            notes: vec![],
            untested: Untested::default(),
            results,
            duration_ms: 0,
        }
    }

    #[test]
    fn outcomes_become_proven_open_blocked_or_unknown_findings() {
        let facts = crate::scenario::find("kube-route-localnet").unwrap().facts();
        let mut uncertain = row("ipv4.src-loopback", "tcp:0.0.0.0:10250", Outcome::Dropped);
        uncertain.uncertain.push("nftables left out: a rule".into());
        let r = report(
            vec![
                row("control.lan", "tcp:0.0.0.0:10250", Outcome::Delivered),
                row("ipv4.dst-loopback", "tcp:127.0.0.1:10248", Outcome::Dropped),
                row("ipv4.dst-loopback", "udp:127.0.0.1:8125", Outcome::Delivered),
                uncertain,
            ],
            true,
        );
        let found = r.findings(&facts);
        let get = |check: CheckId, service: Option<&str>| {
            found
                .iter()
                .find(|f| f.check == check && f.service.as_deref() == service)
                .unwrap()
        };
        let route = get(CheckId::NetRouteLocalnet, None);
        assert_eq!((route.status, route.confidence), (Status::Open, Confidence::Proven));
        assert_eq!(route.evidence.len(), 2);
        assert_eq!(
            get(CheckId::ProtoUdpLoopback, Some("udp:127.0.0.1:8125")).status,
            Status::Open
        );
        assert_eq!(
            get(CheckId::NetLoopbackSourceTrust, Some("tcp:0.0.0.0:10250")).status,
            Status::Unknown
        );
        assert!(found.iter().all(|f| f.check.as_str() != "control.lan"));
        // The host-wide finding names what each attack got to: the map draws its paths there.
        let reached: Vec<(&str, Status)> = route.reaches.iter().map(|r| (r.service.as_str(), r.status)).collect();
        assert_eq!(
            reached,
            [
                ("tcp:127.0.0.1:10248", Status::Blocked),
                ("udp:127.0.0.1:8125", Status::Open)
            ]
        );
    }

    #[test]
    fn a_blind_syn_is_refuted_for_connections_but_said_to_have_reached_the_socket() {
        let facts = crate::scenario::find("kube-route-localnet").unwrap().facts();
        let r = report(
            vec![
                row("control.lan", "tcp:0.0.0.0:10250", Outcome::Delivered),
                row("ipv4.src-loopback", "tcp:0.0.0.0:10250", Outcome::Blind),
            ],
            true,
        );
        let found = r.findings(&facts);
        let trust = found
            .iter()
            .find(|f| f.check == CheckId::NetLoopbackSourceTrust)
            .unwrap();
        assert_eq!(trust.status, Status::Blocked);
        assert!(trust.title.contains("reached the socket only blind"), "{}", trust.title);
        // Like every blocked title, it starts with the refutation.
        assert!(trust.title.starts_with("refuted in the lab: "), "{}", trust.title);
    }

    #[test]
    fn every_check_an_attack_speaks_to_has_a_lab_spec() {
        use crate::attacks::Kind;
        let kinds = [
            Kind::ControlLocal,
            Kind::ControlLan,
            Kind::Ipv4DstLoopback,
            Kind::Ipv4SrcLoopback,
            Kind::Ipv4StubSpoof,
            Kind::Ipv6SrcLoopback,
            Kind::Ipv6DstLoopback,
            Kind::Ipv6SrcMapped,
            Kind::NatPublished,
            Kind::NatToLoopback,
        ];
        let mut spoken = Vec::new();
        for kind in kinds {
            for service in [
                "tcp:0.0.0.0:10250",
                "udp:127.0.0.1:8125",
                "udp:[::1]:53",
                "lab-control:x",
            ] {
                for key in checks_of(&row(kind.id(), service, Outcome::Dropped)) {
                    assert!(spec(key.0).is_some(), "{} from {} has no lab spec", key.0, kind.id());
                    spoken.push(key.0);
                }
            }
        }
        spoken.sort_by_key(|id| id.as_str());
        spoken.dedup();
        assert_eq!(spoken.len(), 5, "{spoken:?}");
    }

    #[test]
    fn all_dropped_is_blocked_and_failed_controls_prove_nothing() {
        let facts = crate::scenario::find("kube-route-localnet").unwrap().facts();
        let rows = vec![row("ipv4.dst-loopback", "tcp:127.0.0.1:10248", Outcome::Dropped)];
        let found = report(rows.clone(), true).findings(&facts);
        assert_eq!(found[0].status, Status::Blocked);
        assert!(found[0].title.starts_with("refuted in the lab"));
        assert!(report(rows.clone(), true).limits().is_empty());
        let failed = report(rows, false);
        assert!(failed.findings(&facts).is_empty());
        assert!(failed.limits()[0].contains("controls failed"));
    }

    #[test]
    fn a_partial_run_refutes_nothing_it_did_not_cover() {
        let facts = crate::scenario::find("kube-route-localnet").unwrap().facts();
        let rows = vec![row("ipv4.dst-loopback", "udp:127.0.0.1:8125", Outcome::Dropped)];
        let mut over_decoys = report(rows.clone(), true);
        over_decoys.untested.services = vec!["udp:127.0.0.1:10099".into()];
        let found = over_decoys.findings(&facts);
        let route = found.iter().find(|f| f.check == CheckId::NetRouteLocalnet).unwrap();
        assert_eq!(route.status, Status::Unknown, "{route:#?}");
        assert!(
            route.evidence.iter().any(|e| e.contains("udp:127.0.0.1:10099")),
            "{route:#?}"
        );
        // The service itself was tested on every interface: its refutation stands.
        let udp = found.iter().find(|f| f.check == CheckId::ProtoUdpLoopback).unwrap();
        assert_eq!(udp.status, Status::Blocked);
        let mut over_links = report(rows, true);
        over_links.untested.interfaces = vec!["e37".into()];
        for f in over_links.findings(&facts) {
            assert_eq!(f.status, Status::Unknown, "{f:#?}");
        }
    }

    #[test]
    fn a_loopback_destination_rewritten_by_nat_proves_the_publish_not_route_localnet() {
        let facts = crate::scenario::find("docker-published-loopback").unwrap().facts();
        let mut nat = row("ipv4.dst-loopback", "tcp:127.0.0.1:8081", Outcome::Delivered);
        nat.destination = "127.0.0.1:8081".into();
        nat.path = Path::Nat;
        let found = report(vec![nat], true).findings(&facts);
        assert!(
            found.iter().all(|f| f.check.to_string() != "net.route-localnet"),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|f| f.check.to_string() == "net.dnat-loopback"
                    && f.service.as_deref() == Some("tcp:127.0.0.1:8081")),
            "{found:#?}"
        );
    }
}
