//! `bind.wildcard`: a listener that is not local-only at all.

use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::addr::unmapped;
use crate::facts::{InetSocket, SocketState};
use crate::firewall::questions::{fold, loopback, Inbound};
use crate::firewall::ranges::{addr_value, all_addrs, RangeSet};
use crate::firewall::verdict::{Decision, Leaf};
use crate::inventory::{inet_scope, is_inet_service};
use crate::report::{Attacker, Confidence, Finding, Scope, Severity, Status};
use std::cell::OnceCell;
use std::sync::Arc;

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::BindWildcard,
        attackers: &[Attacker::Lan, Attacker::Remote],
        stage: Stage::Inspect,
        summary: "listener on 0.0.0.0, :: or a non-loopback address: not local-only at all",
        why: "a service bound beyond loopback answers every host that can route to it; \
              'localhost only' was never true for it",
    },
    evaluate: Some(evaluate),
};

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let outside = OnceCell::new();
    // Bound to `lo` (SO_BINDTODEVICE): only traffic arriving on loopback reaches it.
    let beyond_loopback = |s: &InetSocket| {
        is_inet_service(s) && inet_scope(s) != Scope::Loopback && s.bound_device.as_deref() != Some("lo")
    };
    for (socket, id) in ctx.inet_services(beyond_loopback) {
        let scope = inet_scope(socket);
        let what = if scope == Scope::Wildcard {
            "every address"
        } else {
            "a non-loopback address"
        };
        let verb = if socket.state == SocketState::Listen {
            "listens"
        } else {
            "is bound"
        };
        let mut evidence = vec![format!(
            "{} {verb} on {} ({what}), held by {}",
            socket.protocol.as_str().to_uppercase(),
            id.split_once(':').map(|(_, rest)| rest).unwrap_or(id),
            ctx.processes.describe(&socket.owners)
        )];
        if socket.address.is_ipv6() && socket.address.is_unspecified() && socket.v6only == Some(false) {
            evidence.push("IPV6_V6ONLY is off: the socket takes IPv4 connections too".to_string());
        }
        if let Some(dev) = &socket.bound_device {
            evidence.push(format!("bound to device {dev} (SO_BINDTODEVICE)"));
        }
        let status = reachability(ctx, outside.get_or_init(|| Outside::new(ctx)), socket, &mut evidence);
        let wildcard = scope == Scope::Wildcard;
        let title = match (status, wildcard) {
            (Status::Open, true) => "reachable from the network, not only from this host (every address)",
            (Status::Open, false) => "reachable from the network, not only from this host (a non-loopback address)",
            (Status::Unknown, true) => {
                "bound beyond loopback (every address); whether the network reaches it is not decided"
            }
            (Status::Unknown, false) => {
                "bound beyond loopback (a non-loopback address); whether the network reaches it is not decided"
            }
            (Status::Blocked, true) => {
                "bound beyond loopback (every address), but the firewall drops connections from outside"
            }
            (Status::Blocked, false) => {
                "bound beyond loopback (a non-loopback address), but the firewall drops connections from outside"
            }
        };
        out.push(Finding {
            check: CHECK.spec.id,
            service: Some(id.to_string()),
            attacker: Attacker::Remote,
            severity: Severity::Medium,
            status,
            confidence: Confidence::Inspected,
            title: title.into(),
            evidence,
            fix: "bind to 127.0.0.1 and/or ::1 (or a Unix socket) if only local clients need it; \
                  otherwise restrict it in the firewall's input chain"
                .into(),
            subject: None,
        });
    }
    out
}

/// A neighbour's packets, per family (IPv4 first): their sources (any but loopback), and where
/// those sent to this host's own addresses go — asked once, read by every wildcard listener.
struct Outside {
    src: [RangeSet; 2],
    to_host: [Option<Arc<Inbound>>; 2],
}

impl Outside {
    fn new(ctx: &Context) -> Outside {
        let src = [false, true].map(|v6| all_addrs(v6).subtract(&loopback(v6)));
        let to_host = [false, true].map(|v6| ctx.firewall.to_host(v6, src[usize::from(v6)].clone()));
        Outside { src, to_host }
    }
}

/// Whether a neighbour's packets to the socket's addresses (this host's own, for a wildcard)
/// on its protocol and port get through, asked of the packet-path evaluator: open to whom, or
/// blocked by which rule, goes to `evidence`.
fn reachability(ctx: &Context, outside: &Outside, socket: &InetSocket, evidence: &mut Vec<String>) -> Status {
    let v6_socket = unmapped(socket.address).is_ipv6();
    let takes_v4 = !v6_socket || (socket.address.is_unspecified() && socket.v6only != Some(true));
    let families: Vec<bool> = [(false, takes_v4), (true, v6_socket)]
        .into_iter()
        .filter_map(|(v6, takes)| takes.then_some(v6))
        .collect();
    let mut statuses = Vec::new();
    for v6 in families {
        let inbound = if socket.address.is_unspecified() {
            outside.to_host[usize::from(v6)].clone()
        } else {
            let src = outside.src[usize::from(v6)].clone();
            Some(
                ctx.firewall
                    .inbound(v6, src, RangeSet::single(addr_value(unmapped(socket.address)))),
            )
        };
        let family = if v6 { "IPv6" } else { "IPv4" };
        let Some(inbound) = inbound else {
            evidence.push(format!(
                "the snapshot lists no {family} address of this host beyond loopback: who reaches it is unknown"
            ));
            statuses.push(Status::Unknown);
            continue;
        };
        // Packets a NAT rule carries on to what it publishes (Docker without its userland proxy)
        // reach the service too.
        let answers = inbound.for_port(
            &ctx.firewall.analysis,
            socket.protocol.number(),
            socket.port,
            |_: &Leaf| true,
        );
        let (decision, lines) = ctx.firewall.qualify(fold(answers));
        evidence.push(format!("{family} from outside to this port:"));
        evidence.extend(lines.into_iter().map(|l| format!("  {l}")));
        statuses.push(match decision {
            Decision::Open => Status::Open,
            Decision::Blocked => Status::Blocked,
            Decision::Unknown => Status::Unknown,
        });
    }
    // One family that gets through makes it open; an undecided one keeps it unknown.
    Status::worst(statuses).unwrap_or(Status::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::{base, inet, run};
    use crate::facts::Protocol;

    #[test]
    fn a_wildcard_socket_bound_to_lo_is_local_only() {
        let mut facts = base();
        let mut s = inet(Protocol::Tcp, "0.0.0.0", 8080);
        s.bound_device = Some("lo".into());
        facts.inet_sockets.push(s);
        assert!(run(&CHECK, &facts).is_empty());
        facts.inet_sockets[0].bound_device = Some("eth0".into());
        assert_eq!(run(&CHECK, &facts).len(), 1);
    }

    /// ufw's default deny: a TCP listener on 9000 is blocked (the policy is named); ufw's stock
    /// DHCP-client rule lets UDP to port 68 in, so a listener there stays open.
    #[test]
    fn an_input_policy_that_drops_the_port_is_named() {
        let mut facts = crate::firewall::fixture_tests::facts("ufw-stock");
        facts.inet_sockets.push(inet(Protocol::Tcp, "0.0.0.0", 9000));
        facts.inet_sockets.push(inet(Protocol::Udp, "0.0.0.0", 68));
        let found = run(&CHECK, &facts);
        let get = |id: &str| found.iter().find(|f| f.service.as_deref() == Some(id)).expect(id);
        let tcp = get("tcp:0.0.0.0:9000");
        assert_eq!(tcp.status, Status::Blocked, "{tcp:#?}");
        assert!(tcp.evidence.iter().any(|e| e.contains("policy drop")), "{tcp:#?}");
        assert_eq!(get("udp:0.0.0.0:68").status, Status::Open);
    }

    /// ufw's ip6tables rules split the every-port question into more paths than the evaluator
    /// follows; the port asked on its own is decided: ufw's default deny drops it (the ufw truth
    /// test's attack on [2001:db8::1]:9002 was dropped).
    #[test]
    fn a_cut_short_answer_is_asked_again_for_the_port() {
        let mut f = crate::firewall::fixture_tests::facts("ufw-allow-22-route-localnet");
        let mut s = inet(Protocol::Udp, "::", 9002);
        s.v6only = Some(false);
        f.inet_sockets.push(s);
        let found = run(&CHECK, &f);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].status, Status::Blocked, "{:#?}", found[0].evidence);
        assert!(
            found[0]
                .evidence
                .iter()
                .any(|e| e.contains("ip6tables filter INPUT: policy drop")),
            "{:#?}",
            found[0].evidence
        );
    }
}
