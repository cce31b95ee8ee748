//! `proto.udp-loopback`: a UDP service on loopback trusts one datagram, which a spoofer can send.

use super::route_localnet::firewall_status;
use super::sysctl_view::{route_localnet_interfaces, LocalnetInterface};
use super::{Check, CheckSpec, Context, Stage};
use crate::addr::unmapped;
use crate::facts::Protocol;
use crate::facts::SocketState;
use crate::inventory::{describe_owner, inet_scope, inet_service_id};
use crate::kernel::{Ipv4Input, MissingSysctl};
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

/// Whether some outside interface delivers a datagram to an IPv4 loopback socket: the kernel must
/// route 127/8 from there (route_localnet) and, for a connected socket, accept the forged 127/8
/// source (`kernel::Ipv4Input`); then the firewall must not drop it. What decides is added to
/// `evidence`. High once the kernel lets it through (whatever is unknown about the firewall),
/// medium when even that is unknown, low when blocked.
fn paths(
    ctx: &Context,
    localnet: &Result<Vec<LocalnetInterface>, MissingSysctl>,
    spoofed_source: Option<IpAddr>,
    evidence: &mut Vec<String>,
) -> (Severity, Status) {
    let interfaces = match localnet {
        Ok(interfaces) => interfaces,
        Err(missing) => {
            evidence.push(format!(
                "{} is not in the snapshot: whether the kernel routes 127/8 from outside is unknown",
                missing.0
            ));
            return (Severity::Medium, Status::Unknown);
        }
    };
    if interfaces.is_empty() {
        evidence.push("route_localnet is 0 on every interface: the kernel drops 127.0.0.0/8 from outside".into());
        return (Severity::Low, Status::Blocked);
    }
    let mut open: Vec<&str> = Vec::new();
    for iface in interfaces {
        let Some(source) = spoofed_source else {
            evidence.push(format!("path: interface {} ({})", iface.name, iface.keys.join(", ")));
            open.push(&iface.name);
            continue;
        };
        match Ipv4Input::of(&ctx.facts.sysctls, &iface.name) {
            Err(missing) => {
                evidence.push(format!(
                    "{} is not in the snapshot: whether {} accepts a forged {source} is unknown",
                    missing.0, iface.name
                ));
                return (Severity::Medium, Status::Unknown);
            }
            Ok(input) => {
                let configured = ctx
                    .facts
                    .interfaces
                    .iter()
                    .any(|i| i.addresses.iter().any(|a| a.address == source));
                let verdict = input.accepts_loopback_source(configured);
                evidence.push(format!(
                    "interface {}: route_localnet on, rp_filter={}, accept_local={}, {source} {} configured: the kernel {} a forged {source}",
                    iface.name,
                    input.rp_filter,
                    u8::from(input.accept_local),
                    if configured { "is" } else { "is not" },
                    if verdict { "accepts" } else { "rejects" }
                ));
                if verdict {
                    open.push(&iface.name);
                }
            }
        }
    }
    if open.is_empty() {
        return (Severity::Low, Status::Blocked);
    }
    if spoofed_source.is_some() {
        evidence.push("spoofed loopback sources are judged by the kernel only here; see net.no-loopback-antispoof for the firewall".into());
        return (Severity::High, Status::Open);
    }
    match firewall_status(ctx, &open, evidence) {
        Status::Blocked => (Severity::Low, Status::Blocked),
        status => (Severity::High, status),
    }
}

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
        let owner = describe_owner(ctx.facts, &socket.owners);
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
            IpAddr::V4(_) => paths(ctx, &localnet, spoofed_peer.map(|(peer, _)| peer), &mut evidence),
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
        assert_eq!(found[0].status, Status::Unknown, "{found:#?}");
        assert!(found[0].evidence.iter().any(|e| e.contains("path: interface eth0")));
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
