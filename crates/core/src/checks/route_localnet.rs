//! `net.route-localnet`: the kernel routes loopback-addressed packets that arrive from the LAN.

use super::sysctl_view::{route_localnet_interfaces, LocalnetInterface};
use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::addr::unmapped;
use crate::facts::{InetSocket, Protocol};
use crate::firewall::questions::{fold, loopback, per_interface};
use crate::firewall::ranges::{addr_value, all_addrs, RangeSet};
use crate::firewall::verdict::Decision;
use crate::inventory::is_inet_service;
use crate::makers::Maker;
use crate::report::{shown, Attacker, Confidence, Finding, Reached, Severity, Status};
use std::net::{IpAddr, Ipv4Addr};

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::NetRouteLocalnet,
        attackers: &[Attacker::Lan],
        stage: Stage::Inspect,
        summary: "net.ipv4.conf.<if>.route_localnet=1 on a non-loopback interface",
        why: "the kernel then accepts packets addressed to 127.0.0.0/8 from that interface: any LAN \
              neighbour reaches services bound to 127.0.0.1 by sending to this host's MAC \
              (Kubernetes CVE-2020-8558)",
    },
    evaluate: Some(evaluate),
};

const FIX: &str = "sysctl -w net.ipv4.conf.all.route_localnet=0 and =0 on each listed interface \
    (persist in /etc/sysctl.d/), then `ip route flush cache`; if a component needs it (kube-proxy's \
    localhost NodePorts, a container runtime's loopback publishes without its proxy), drop \
    `ip daddr 127.0.0.0/8` arriving on non-lo interfaces in an nftables prerouting chain at priority raw";

/// [`FIX`], followed by who made the listed bridges (by their names): that component is the one
/// to reconfigure, and the one a drop rule must not break.
fn fix(names: &[&str]) -> std::borrow::Cow<'static, str> {
    let mut makers: Vec<String> = names
        .iter()
        .filter_map(|n| Maker::of_interface(n).map(|m| format!("{n} is {}'s", m.name())))
        .collect();
    makers.dedup();
    if makers.is_empty() {
        FIX.into()
    } else {
        format!("{FIX} (by the names: {})", makers.join(", ")).into()
    }
}

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let interfaces = match route_localnet_interfaces(ctx.facts) {
        Ok(interfaces) => interfaces,
        Err(missing) => {
            return vec![Finding {
                check: CHECK.spec.id,
                service: None,
                attacker: Attacker::Lan,
                severity: Severity::High,
                status: Status::Unknown,
                confidence: Confidence::Inspected,
                title: "route_localnet could not be read: loopback exposure to the LAN is unknown".into(),
                evidence: vec![missing.describe(&ctx.facts.sysctls)],
                fix: FIX.into(),
                subject: None,
                reaches: Vec::new(),
            }]
        }
    };
    if interfaces.is_empty() {
        return vec![];
    }
    let mut evidence = which_keys(&interfaces);
    let names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
    let services = Reach::of(ctx, &names);
    if services.open.is_empty() && services.unknown.is_empty() && services.blocked.is_empty() {
        evidence.push("no service is bound to 127.0.0.0/8 now; any future one is exposed".into());
    }
    if !services.open.is_empty() {
        evidence.push(format!(
            "IPv4 loopback services a neighbour reaches from there: {}",
            shown::list(&services.open)
        ));
    }
    if !services.unknown.is_empty() {
        evidence.push(format!(
            "IPv4 loopback services whose reachability is unknown: {}",
            shown::list(&services.unknown)
        ));
    }
    if !services.blocked.is_empty() {
        evidence.push(format!(
            "IPv4 loopback services the firewall or the kernel keeps out: {}",
            shown::list(&services.blocked)
        ));
    }
    if !services.wildcard_open.is_empty() {
        evidence.push(format!(
            "wildcard listeners also answer packets addressed to 127.0.0.1 from there: {}",
            shown::list(&services.wildcard_open)
        ));
    }
    if ctx.facts.sysctls.ipv4_conf("default", "route_localnet") == Some(1) {
        evidence.push("net.ipv4.conf.default.route_localnet = 1: new interfaces inherit it".into());
    }
    let reaches = services.reached();
    evidence.extend(services.example);
    // Whatever the current services: does any loopback-addressed packet get in at all?
    let any_port = firewall_status(ctx, &names, &mut evidence);
    let status = if !services.open.is_empty() {
        Status::Open
    } else if !services.unknown.is_empty() && any_port != Status::Blocked {
        Status::Unknown
    } else {
        any_port
    };
    let via = shown::list(&names);
    let title = match status {
        Status::Open if !services.open.is_empty() => format!("LAN neighbours can reach 127.0.0.0/8 services via {via}"),
        Status::Open => format!(
            "LAN neighbours can send to 127.0.0.0/8 via {via}: a service on a port that gets through would be exposed"
        ),
        Status::Unknown => {
            format!("LAN neighbours may reach 127.0.0.0/8 services via {via} (route_localnet): not decided")
        }
        Status::Blocked => {
            format!("route_localnet is on for {via}, but loopback-addressed packets from there are dropped")
        }
    };
    vec![Finding {
        check: CHECK.spec.id,
        service: None,
        attacker: Attacker::Lan,
        severity: if services.reached_by_rules {
            Severity::Critical
        } else {
            Severity::High
        },
        status,
        confidence: Confidence::Inspected,
        title: title.into(),
        evidence,
        fix: fix(&names),
        subject: None,
        reaches,
    }]
}

/// Which keys turn it on where, one line per key (a host with a thousand interfaces under
/// `all` gets one line naming [`shown::MAX_LIST`] of them, not a thousand lines).
fn which_keys(interfaces: &[LocalnetInterface]) -> Vec<String> {
    let mut by_key: Vec<(&str, Vec<&str>)> = Vec::new();
    for i in interfaces {
        for key in &i.keys {
            match by_key.iter_mut().find(|(k, _)| k == key) {
                Some((_, names)) => names.push(&i.name),
                None => by_key.push((key, vec![&i.name])),
            }
        }
    }
    by_key
        .into_iter()
        .map(|(key, names)| match names.as_slice() {
            [one] => format!("interface {one}: {key}"),
            _ => format!("interfaces {}: {key}", shown::list(&names)),
        })
        .collect()
}

/// The IPv4 services a neighbour's packets addressed to their loopback address (127.0.0.1 for
/// wildcard listeners) reach, asked of the evaluator with each service's protocol and port;
/// packets a NAT rule rewrote are `net.dnat-loopback`'s.
struct Reach<'c> {
    /// Loopback services reached.
    open: Vec<&'c str>,
    /// Loopback services whose answer is unknown.
    unknown: Vec<&'c str>,
    /// Loopback services every packet to which is dropped.
    blocked: Vec<&'c str>,
    /// Wildcard services reached through 127.0.0.1.
    wildcard_open: Vec<&'c str>,
    /// How the first reached (or else the first) service's packets fare, as evidence.
    example: Vec<String>,
    /// Some loopback service is reached as far as the snapshot's rules and the kernel tell
    /// (open, or unknown only because no firewall was captured).
    reached_by_rules: bool,
}

impl<'c> Reach<'c> {
    /// Every service the neighbour's packets were asked about, with how they fare: what the
    /// report's map draws the path to.
    fn reached(&self) -> Vec<Reached> {
        let with = |ids: &[&str], status: Status| {
            ids.iter()
                .map(|id| Reached {
                    service: id.to_string(),
                    status,
                })
                .collect::<Vec<_>>()
        };
        [
            with(&self.open, Status::Open),
            with(&self.wildcard_open, Status::Open),
            with(&self.unknown, Status::Unknown),
            with(&self.blocked, Status::Blocked),
        ]
        .concat()
    }

    /// Asked on the classes of interfaces that hold one of `names` (those with route_localnet).
    fn of(ctx: &'c Context, names: &[&str]) -> Reach<'c> {
        let mut reach = Reach {
            open: Vec::new(),
            unknown: Vec::new(),
            blocked: Vec::new(),
            wildcard_open: Vec::new(),
            example: Vec::new(),
            reached_by_rules: false,
        };
        let outside = all_addrs(false).subtract(&loopback(false));
        // IPv4 loopback services, and wildcard ones that take IPv4.
        let wildcard = |s: &InetSocket| s.address.is_unspecified() && (s.address.is_ipv4() || s.v6only == Some(false));
        let takes_loopback_v4 = move |s: &InetSocket| {
            is_inet_service(s) && (wildcard(s) || matches!(unmapped(s.address), IpAddr::V4(v4) if v4.is_loopback()))
        };
        for (socket, id) in ctx.inet_services(takes_loopback_v4) {
            let wildcard = wildcard(socket);
            let dst = match unmapped(socket.address) {
                IpAddr::V4(v4) if v4.is_loopback() => v4,
                _ => Ipv4Addr::LOCALHOST,
            };
            // A datagram may carry a spoofed 127/8 source too (a rule that drops only
            // non-loopback sources lets it through); a TCP sender needs its own address to get
            // the SYN-ACK.
            let src = match socket.protocol {
                Protocol::Udp => all_addrs(false),
                _ => outside.clone(),
            };
            let inbound = ctx
                .firewall
                .inbound(false, src, RangeSet::single(addr_value(IpAddr::V4(dst))));
            let mut answers = inbound.for_port(&ctx.firewall.analysis, socket.protocol.number(), socket.port, |l| {
                l.rewrite.is_none()
            });
            answers.retain(|a| names.iter().any(|n| ctx.firewall.in_class(&a.representative, n)));
            let rules = fold(answers);
            reach.reached_by_rules |= !wildcard && rules.0 == Decision::Open;
            let (decision, lines) = ctx.firewall.qualify(rules);
            let list = match (decision, wildcard) {
                (Decision::Open, true) => &mut reach.wildcard_open,
                (_, true) => continue,
                (Decision::Open, false) => &mut reach.open,
                (Decision::Unknown, false) => &mut reach.unknown,
                (Decision::Blocked, false) => &mut reach.blocked,
            };
            list.push(id);
            let first_open = decision == Decision::Open && reach.open.len() == 1;
            if !wildcard && (reach.example.is_empty() || first_open) {
                reach.example = std::iter::once(format!("{id}:"))
                    .chain(lines.into_iter().map(|l| format!("  {l}")))
                    .collect();
            }
        }
        reach
    }
}

/// Whether the ruleset drops what route_localnet lets in: traffic from non-loopback sources to
/// 127.0.0.0/8 arriving on each interface (Kubernetes' KUBE-FIREWALL rule does), and datagrams
/// from spoofed 127/8 sources (which that rule lets through). Blocked only when both are
/// dropped on every interface; the deciding rules, or an example that passes, go to `evidence`.
fn firewall_status(ctx: &Context, names: &[&str], evidence: &mut Vec<String>) -> Status {
    if !ctx.firewall.captured {
        evidence.push("the firewall was not captured: whether a rule drops this traffic is unknown".into());
        return Status::Unknown;
    }
    let neighbour = on_every_interface(names, |n| ctx.firewall.localnet_drop(n));
    match neighbour.0 {
        Decision::Blocked => {
            evidence.push("the firewall drops traffic from non-loopback sources to 127.0.0.0/8:".into())
        }
        Decision::Open => evidence.push("no firewall rule drops it:".into()),
        Decision::Unknown => evidence.push("whether the firewall drops it could not be decided:".into()),
    }
    evidence.extend(neighbour.1.into_iter().map(|l| format!("  {l}")));
    if neighbour.0 != Decision::Blocked {
        return status_of(neighbour.0);
    }
    let spoofed = on_every_interface(names, |n| ctx.firewall.localnet_drop_spoofed_loopback(n));
    match spoofed.0 {
        Decision::Blocked => return Status::Blocked,
        Decision::Open => evidence.push("but UDP from a spoofed 127/8 source gets through:".into()),
        Decision::Unknown => {
            evidence.push("whether UDP from a spoofed 127/8 source gets through could not be decided:".into())
        }
    }
    evidence.extend(spoofed.1.into_iter().map(|l| format!("  {l}")));
    status_of(spoofed.0)
}

/// One question asked on each interface, the answers folded (open beats unknown beats blocked).
fn on_every_interface(names: &[&str], ask: impl Fn(&str) -> (Decision, Vec<String>)) -> (Decision, Vec<String>) {
    per_interface(
        names
            .iter()
            .map(|n| {
                let (d, lines) = ask(n);
                (n.to_string(), d, lines)
            })
            .collect(),
    )
}

fn status_of(decision: Decision) -> Status {
    match decision {
        Decision::Blocked => Status::Blocked,
        Decision::Open => Status::Open,
        Decision::Unknown => Status::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::{base, inet, run};
    use crate::facts::Protocol;

    #[test]
    fn fresh_namespace_defaults_raise_nothing() {
        let mut facts = base();
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 7001));
        assert!(run(&CHECK, &facts).is_empty());
    }

    #[test]
    fn all_alone_is_enough_and_names_the_exposed_services() {
        let mut facts = base();
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.all.route_localnet".into(), "1".into());
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 7001));
        facts.inet_sockets.push(inet(Protocol::Tcp, "::1", 7002));
        let found = run(&CHECK, &facts);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Critical);
        assert!(
            found[0].evidence[0].contains("net.ipv4.conf.all.route_localnet = 1"),
            "{:?}",
            found[0].evidence
        );
        assert!(found[0]
            .evidence
            .iter()
            .any(|e| e.contains("tcp:127.0.0.1:7001") && !e.contains("7002")));
        // The map draws the path to the service it reaches, not to the host.
        assert_eq!(
            found[0].reaches,
            [Reached {
                service: "tcp:127.0.0.1:7001".into(),
                status: found[0].status
            }]
        );
    }

    #[test]
    fn the_interface_alone_is_enough_but_lo_does_not_count() {
        let mut facts = base();
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.lo.route_localnet".into(), "1".into());
        assert!(run(&CHECK, &facts).is_empty());
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.eth0.route_localnet".into(), "1".into());
        let found = run(&CHECK, &facts);
        assert_eq!(found[0].severity, Severity::High);
        assert!(found[0].title.contains("eth0"));
    }

    /// KUBE-FIREWALL drops what a neighbour sends from its own address to 127/8, and lets
    /// spoofed 127/8 sources through: a node's UDP service on 127.0.0.1 is reached (the kube
    /// truth test delivers `127.0.0.2 → 127.0.0.1:7003`), its TCP one only by a blind SYN.
    #[test]
    fn kube_firewall_keeps_out_neighbours_but_not_spoofed_loopback_datagrams() {
        let mut facts = crate::firewall::fixture_tests::facts("kube-proxy-firewall");
        let found = run(&CHECK, &facts);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].status, Status::Open, "{:#?}", found[0].evidence);
        let has = |found: &[Finding], text: &str| found[0].evidence.iter().any(|e| e.contains(text));
        assert!(
            has(&found, "KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8"),
            "{:#?}",
            found[0].evidence
        );
        assert!(
            has(&found, "UDP from a spoofed 127/8 source gets through"),
            "{:#?}",
            found[0].evidence
        );
        facts.inet_sockets.push(inet(Protocol::Udp, "127.0.0.1", 7003));
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 10248));
        let found = run(&CHECK, &facts);
        assert!(
            has(&found, "reaches from there: udp:127.0.0.1:7003"),
            "{:#?}",
            found[0].evidence
        );
        assert!(
            has(&found, "keeps out: tcp:127.0.0.1:10248"),
            "{:#?}",
            found[0].evidence
        );
        // A strict reverse-path filter rejects the spoofed sources: then it is blocked.
        facts.sysctls.0.insert("net.ipv4.conf.all.rp_filter".into(), "1".into());
        let found = run(&CHECK, &facts);
        assert_eq!(found[0].status, Status::Blocked, "{:#?}", found[0].evidence);
    }

    #[test]
    fn without_a_drop_rule_it_stays_open_with_an_example() {
        let found = run(
            &CHECK,
            &crate::firewall::fixture_tests::facts("ecs-agent-dnat-to-loopback"),
        );
        assert_eq!(found[0].status, Status::Open);
        assert!(
            found[0]
                .evidence
                .iter()
                .any(|e| e.contains("delivered: tcp 192.0.2.1 -> 127.0.0.1 port 80")),
            "{:#?}",
            found[0].evidence
        );
    }

    #[test]
    fn unreadable_sysctls_are_unknown_not_safe() {
        let mut facts = base();
        facts.sysctls.0.clear();
        let found = run(&CHECK, &facts);
        assert_eq!(found[0].status, Status::Unknown);
    }

    /// ufw's default deny with route_localnet=1: the services on 9000/tcp and 9001/udp are kept
    /// out (asked with their own protocol and port), but ufw's stock DHCP-client rule (udp sport
    /// 67 → dport 68, any destination) still lets a 127.0.0.1-addressed datagram in.
    #[test]
    fn ufw_keeps_out_the_services_it_drops_and_the_path_it_allows_stays_open() {
        let mut facts = crate::firewall::fixture_tests::facts("ufw-stock");
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.all.route_localnet".into(), "1".into());
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 9000));
        facts.inet_sockets.push(inet(Protocol::Udp, "127.0.0.1", 9001));
        let found = run(&CHECK, &facts);
        let f = &found[0];
        assert_eq!((f.status, f.severity), (Status::Open, Severity::High), "{f:#?}");
        assert!(f.title.contains("would be exposed"), "{}", f.title);
        assert!(
            f.evidence
                .iter()
                .any(|e| e.contains("keeps out: tcp:127.0.0.1:9000, udp:127.0.0.1:9001")),
            "{:#?}",
            f.evidence
        );
        assert!(
            !f.evidence.iter().any(|e| e.contains("reaches from there")),
            "{:#?}",
            f.evidence
        );
        let reached: Vec<(&str, Status)> = f.reaches.iter().map(|r| (r.service.as_str(), r.status)).collect();
        assert_eq!(
            reached,
            [
                ("tcp:127.0.0.1:9000", Status::Blocked),
                ("udp:127.0.0.1:9001", Status::Blocked)
            ]
        );
    }
}
