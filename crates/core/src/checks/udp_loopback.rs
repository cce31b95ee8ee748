//! `proto.udp-loopback`: a UDP service on loopback trusts one datagram, which a spoofer can send.

use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::addr::{socket_label, unmapped};
use crate::facts::Protocol;
use crate::facts::SocketState;
use crate::firewall::questions::{fold, loopback};
use crate::firewall::ranges::{addr_value, all_addrs, RangeSet};
use crate::firewall::verdict::Decision;
use crate::inventory::inet_scope;
use crate::report::{Attacker, Confidence, Finding, Scope, Severity, Status};
use std::net::IpAddr;

/// IP protocol number of UDP.
const UDP: u8 = 17;

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::ProtoUdpLoopback,
        attackers: &[Attacker::Lan],
        stage: Stage::Inspect,
        summary: "UDP loopback service: one spoofed datagram is enough if any path exists",
        why: "UDP has no handshake: a single forged datagram that reaches the socket is acted on, \
              and a connected socket (the stub-resolver pattern) accepts anything carrying its \
              peer's address",
    },
    evaluate: Some(evaluate),
};

/// Whether a neighbour's datagram to `address:port` (IPv4) — from any source it can forge, a
/// `127/8` one included (a firewall rule that drops only non-loopback sources, like kube-proxy's
/// KUBE-FIREWALL, lets `127.0.0.2` through; the evaluator's source checks decide whether the
/// kernel takes it), or for a connected socket from its forged peer — reaches the socket or the target a NAT rule publishes
/// it to: one question to the packet-path evaluator, which applies route_localnet, the source
/// checks (`kernel::Ipv4Input`), NAT and the firewall, for this protocol and port. High when a
/// datagram gets through, medium when that is unknown, low when every path is dropped.
fn paths(ctx: &Context, address: IpAddr, port: u16, spoofed_source: Option<IpAddr>) -> (Severity, Status, Vec<String>) {
    let ask = |src: RangeSet| {
        let inbound = ctx.firewall.inbound(false, src, RangeSet::single(addr_value(address)));
        fold(inbound.for_port(&ctx.firewall.analysis, UDP, port, |_| true))
    };
    let rules = match spoofed_source {
        Some(peer) => ask(RangeSet::single(addr_value(peer))),
        // The neighbour's own address first (the plainer example when it gets through).
        None => match ask(all_addrs(false).subtract(&loopback(false))) {
            open @ (Decision::Open, _) => open,
            _ => ask(all_addrs(false)),
        },
    };
    // The kernel lets it through when this snapshot's rules do; without a firewall capture that
    // is still high, whatever a rule not seen might do.
    let kernel_open = rules.0 == Decision::Open;
    let (decision, lines) = ctx.firewall.qualify(rules);
    let evidence = lines.into_iter().map(|l| format!("  {l}")).collect();
    match decision {
        Decision::Open => (Severity::High, Status::Open, evidence),
        Decision::Unknown if kernel_open => (Severity::High, Status::Unknown, evidence),
        Decision::Unknown => (Severity::Medium, Status::Unknown, evidence),
        Decision::Blocked => (Severity::Low, Status::Blocked, evidence),
    }
}

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for (socket, id) in ctx.inet_services(|s| s.protocol == Protocol::Udp && inet_scope(s) == Scope::Loopback) {
        let owner = ctx.processes.describe(&socket.owners);
        let spoofed_peer = match (socket.state, socket.peer) {
            (SocketState::Connected, Some((peer, port))) => Some((unmapped(peer), port)),
            _ => None,
        };
        let mut evidence = vec![match spoofed_peer {
            Some((peer, port)) => format!(
                "{id} is connected to {}: a datagram must forge that source to be accepted; held by {owner}",
                crate::addr::socket_label(peer, port)
            ),
            None => format!("{id} takes datagrams from any source; held by {owner}"),
        }];
        let (severity, status) = match unmapped(socket.address) {
            IpAddr::V6(_) => {
                evidence.push("the kernel drops ::1 arriving on non-loopback interfaces before any firewall".into());
                (Severity::Low, Status::Blocked)
            }
            IpAddr::V4(v4) => {
                let (severity, status, lines) =
                    paths(ctx, IpAddr::V4(v4), socket.port, spoofed_peer.map(|(peer, _)| peer));
                evidence.push(format!(
                    "a datagram from outside to {}:",
                    socket_label(IpAddr::V4(v4), socket.port)
                ));
                evidence.extend(lines);
                (severity, status)
            }
        };
        out.push(Finding {
            check: CHECK.spec.id,
            service: Some(id.to_string()),
            attacker: Attacker::Lan,
            severity,
            status,
            confidence: Confidence::Inspected,
            title: match status {
                Status::Open => "a LAN neighbour's single spoofed datagram reaches this UDP service",
                Status::Unknown => "whether a LAN neighbour's spoofed datagram reaches this UDP service is not decided",
                Status::Blocked => "a spoofed datagram would be acted on, but every path from outside drops it",
            }
            .into(),
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
        let v4 = |facts: &crate::facts::HostFacts| {
            let found = run(&CHECK, facts);
            let f = found
                .into_iter()
                .find(|f| f.service.as_deref() == Some("udp:127.0.0.1:323"));
            f.map(|f| (f.status, f.severity)).expect("v4 finding")
        };
        // The kernel routes it; no firewall capture: whether a rule drops it is unknown.
        assert_eq!(v4(&facts), (Status::Unknown, Severity::High));
        // An empty ruleset was captured: nothing drops it.
        facts.firewall.nft_json = Some(serde_json::json!({"nftables": [{"metainfo": {"json_schema_version": 1}}]}));
        assert_eq!(v4(&facts), (Status::Open, Severity::High));
    }

    /// notes.md §1: a forged 127.0.0.53 source to a connected socket is delivered with
    /// route_localnet and rp_filter 0, dropped with rp_filter 1 or 2, and with rp_filter 2 plus
    /// accept_local delivered again.
    #[test]
    fn connected_socket_follows_rp_filter_and_accept_local() {
        let mut facts = base();
        let mut s = inet(Protocol::Udp, "127.0.0.1", 40000);
        s.state = SocketState::Connected;
        s.peer = Some(("127.0.0.53".parse().expect("ip"), 53));
        facts.inet_sockets.push(s);
        // An empty ruleset was captured: the kernel alone decides.
        facts.firewall.nft_json = Some(serde_json::json!({"nftables": [{"metainfo": {"json_schema_version": 1}}]}));
        let status = |facts: &crate::facts::HostFacts| run(&CHECK, facts)[0].status;
        let set = |facts: &mut crate::facts::HostFacts, key: &str, v: &str| {
            facts.sysctls.0.insert(format!("net.ipv4.conf.{key}"), v.into());
        };
        set(&mut facts, "eth0.route_localnet", "1");
        assert_eq!(status(&facts), Status::Open);
        set(&mut facts, "all.rp_filter", "1");
        assert_eq!(status(&facts), Status::Blocked);
        set(&mut facts, "all.rp_filter", "2");
        assert_eq!(status(&facts), Status::Blocked);
        set(&mut facts, "eth0.accept_local", "1");
        assert_eq!(status(&facts), Status::Open);
        facts.sysctls.0.remove("net.ipv4.conf.eth0.rp_filter");
        assert_eq!(status(&facts), Status::Unknown);
    }

    #[test]
    fn a_v4_mapped_socket_is_an_ipv4_socket() {
        let mut facts = base();
        facts.inet_sockets.push(inet(Protocol::Udp, "::ffff:127.0.0.1", 5000));
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.eth0.route_localnet".into(), "1".into());
        let found = run(&CHECK, &facts);
        // route_localnet lets it in; no firewall was captured to say whether a rule drops it.
        assert_eq!(found[0].status, Status::Unknown, "{found:#?}");
        assert!(
            found[0].evidence.iter().any(|e| e.contains("route_localnet=1 on eth0")),
            "{found:#?}"
        );
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

    /// Docker before 28 publishing `-p 127.0.0.1:8081:8081/udp` (the captured Docker 27 rules,
    /// with the publish turned into its UDP form) and route_localnet 0: the datagram is DNATed
    /// before the martian check and reaches the container (measured with a real `docker.io`).
    /// This check and `net.dnat-loopback` ask the evaluator the same question and agree.
    #[test]
    fn a_dnat_published_udp_port_is_open_whatever_route_localnet_says() {
        let mut facts = crate::firewall::fixture_tests::facts("docker-27-loopback-publish");
        for dump in &mut facts.firewall.iptables {
            dump.text = dump
                .text
                .replace(
                    "-p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80",
                    "-p udp -m udp --dport 8081 -j DNAT --to-destination 172.17.0.2:8081",
                )
                .replace(
                    "-p tcp -m tcp --dport 80 -j ACCEPT",
                    "-p udp -m udp --dport 8081 -j ACCEPT",
                );
        }
        facts.inet_sockets.push(inet(Protocol::Udp, "127.0.0.1", 8081));
        let found = run(&CHECK, &facts);
        assert_eq!(found[0].status, Status::Open, "{:#?}", found[0].evidence);
        assert!(
            found[0].evidence.iter().any(|e| e.contains("172.17.0.2")),
            "{:#?}",
            found[0].evidence
        );
        let dnat = run(&super::super::dnat_loopback::CHECK, &facts);
        assert!(
            dnat.iter()
                .any(|f| f.service.as_deref() == Some("udp:127.0.0.1:8081") && f.status == Status::Open),
            "{dnat:#?}"
        );
    }
}
