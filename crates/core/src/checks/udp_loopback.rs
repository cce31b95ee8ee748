//! `proto.udp-loopback`: a UDP service on loopback trusts one datagram, which a spoofer can send.

use super::sysctl_view::route_localnet_interfaces;
use super::{Check, CheckSpec, Context, Stage};
use crate::facts::Protocol;
use crate::facts::SocketState;
use crate::inventory::{describe_owner, inet_scope, inet_service_id};
use crate::report::{Attacker, Confidence, Finding, Scope, Severity, Status};
use std::net::IpAddr;

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: "proto.udp-loopback",
        attackers: &[Attacker::Lan],
        stage: Stage::Inspect,
        summary: "UDP loopback service: one spoofed datagram is enough if any path exists",
        why: "UDP has no handshake: a single forged datagram that reaches the socket is acted on, \
              and a connected socket (the stub-resolver pattern) accepts anything carrying its \
              peer's address",
    },
    evaluate: Some(evaluate),
};

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let localnet = route_localnet_interfaces(ctx.facts);
    let mut out: Vec<Finding> = Vec::new();
    for socket in ctx
        .facts
        .inet_sockets
        .iter()
        .filter(|s| s.protocol == Protocol::Udp && inet_scope(s) == Scope::Loopback)
    {
        let id = inet_service_id(socket);
        if out.iter().any(|f| f.service.as_deref() == Some(id.as_str())) {
            continue;
        }
        let mut evidence = vec![match (socket.state, socket.peer) {
            (SocketState::Connected, Some((peer, port))) => format!(
                "{id} is connected to {}: datagrams forged with that source are accepted; held by {}",
                crate::addr::socket_label(peer, port),
                describe_owner(ctx.facts, &socket.owners)
            ),
            _ => format!(
                "{id} takes datagrams from any source; held by {}",
                describe_owner(ctx.facts, &socket.owners)
            ),
        }];
        let (severity, status) = match (socket.address, &localnet) {
            (IpAddr::V6(_), _) => {
                evidence.push("the kernel drops ::1 arriving on non-loopback interfaces before any firewall".into());
                (Severity::Low, Status::Blocked)
            }
            (IpAddr::V4(_), None) => {
                evidence.push("route_localnet could not be read".into());
                (Severity::Medium, Status::Unknown)
            }
            (IpAddr::V4(_), Some(ifaces)) if !ifaces.is_empty() => {
                evidence.extend(
                    ifaces
                        .iter()
                        .map(|i| format!("path: interface {} ({})", i.name, i.keys.join(", "))),
                );
                (Severity::High, Status::Open)
            }
            (IpAddr::V4(_), Some(_)) => {
                evidence
                    .push("route_localnet is 0 on every interface: the kernel drops 127.0.0.0/8 from outside".into());
                (Severity::Low, Status::Blocked)
            }
        };
        out.push(Finding {
            check: CHECK.spec.id.to_string(),
            service: Some(id),
            attacker: Attacker::Lan,
            severity,
            status,
            confidence: Confidence::Inspected,
            title: "a single spoofed datagram is acted on if any path delivers it".into(),
            evidence,
            fix: "keep route_localnet=0 and drop loopback sources and destinations on non-lo \
                  interfaces at priority raw; authenticate requests in the protocol itself or move \
                  the service to a Unix socket"
                .into(),
            subject: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::{base, inet, run};

    #[test]
    fn blocked_by_default_open_with_route_localnet() {
        let mut facts = base();
        facts.inet_sockets.push(inet(Protocol::Udp, "127.0.0.1", 323));
        facts.inet_sockets.push(inet(Protocol::Udp, "::1", 323));
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 80));
        let found = run(&CHECK, &facts);
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|f| f.status == Status::Blocked));
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.eth0.route_localnet".into(), "1".into());
        let found = run(&CHECK, &facts);
        let v4 = found
            .iter()
            .find(|f| f.service.as_deref() == Some("udp:127.0.0.1:323"))
            .expect("v4 finding");
        assert_eq!((v4.status, v4.severity), (Status::Open, Severity::High));
    }

    #[test]
    fn connected_stub_socket_names_its_peer() {
        let mut facts = base();
        let mut s = inet(Protocol::Udp, "127.0.0.1", 40000);
        s.state = SocketState::Connected;
        s.peer = Some(("127.0.0.53".parse().expect("ip"), 53));
        facts.inet_sockets.push(s);
        let found = run(&CHECK, &facts);
        assert!(
            found[0].evidence[0].contains("connected to 127.0.0.53:53"),
            "{:?}",
            found[0].evidence
        );
    }
}
