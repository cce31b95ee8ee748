//! `local.port-squat`: a loopback service on one address family leaves the same port on the other
//! family free for any local user, and clients resolving `localhost` may connect there.

use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::facts::{HostFacts, InetSocket, Protocol};
use crate::inventory::{inet_scope, is_inet_service};
use crate::readers::hosts::HostsFile;
use crate::report::{Attacker, Confidence, Finding, Scope, Severity, Status};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::LocalPortSquat,
        attackers: &[Attacker::LocalUser],
        stage: Stage::Inspect,
        summary: "listening on 127.0.0.1:P but not [::1]:P (or the reverse): any user can take the \
                  other family's port",
        why: "`localhost` resolves to both ::1 and 127.0.0.1 and most clients try ::1 first: another \
              user who binds the free family's port receives those clients' connections, requests \
              and credentials",
    },
    evaluate: Some(evaluate),
};

/// The snapshot's services by protocol and port.
type ByPort<'a> = HashMap<(Protocol, u16), Vec<&'a InetSocket>>;

/// Whether some socket of `proto` on `port` already holds `target` (exactly, by wildcard, or by a
/// dual-stack `[::]`).
fn covered(by_port: &ByPort, proto: Protocol, port: u16, target: IpAddr) -> bool {
    by_port
        .get(&(proto, port))
        .into_iter()
        .flatten()
        .any(|s| match (s.address, target) {
            (a, t) if a == t => true,
            (IpAddr::V4(a), IpAddr::V4(_)) => a.is_unspecified(),
            (IpAddr::V6(a), IpAddr::V6(_)) => a.is_unspecified(),
            (IpAddr::V6(a), IpAddr::V4(_)) => a.is_unspecified() && s.v6only == Some(false),
            _ => false,
        })
}

/// Whether `localhost` in /etc/hosts includes an address of the free family; `None` without a
/// hosts file.
fn localhost_maps_to(facts: &HostFacts, v6: bool) -> Option<bool> {
    let hosts = HostsFile::parse(facts.names.hosts_file.as_deref()?);
    let mut localhost = hosts.entries_for("localhost");
    Some(localhost.any(|e| e.address.is_some_and(|a| a.is_ipv6() == v6)))
}

fn ipv6_available(facts: &HostFacts) -> bool {
    let disabled = |k: &str| facts.sysctls.ipv6_conf(k, "disable_ipv6") == Some(1);
    !(disabled("all") || disabled("lo"))
}

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let facts = ctx.facts;
    let unprivileged_start = facts
        .sysctls
        .get_int("net.ipv4.ip_unprivileged_port_start")
        .unwrap_or(1024);
    let mut by_port: ByPort = HashMap::new();
    for s in facts.inet_sockets.iter().filter(|s| is_inet_service(s)) {
        by_port.entry((s.protocol, s.port)).or_default().push(s);
    }
    let localhost = [false, true].map(|v6| localhost_maps_to(facts, v6));
    let mut out: Vec<Finding> = Vec::new();
    for (socket, id) in ctx.inet_services(|s| is_inet_service(s) && inet_scope(s) == Scope::Loopback) {
        let (free, free_label, v6) = match socket.address {
            IpAddr::V4(a) if a == Ipv4Addr::LOCALHOST => (IpAddr::V6(Ipv6Addr::LOCALHOST), "[::1]", true),
            IpAddr::V6(a) if a == Ipv6Addr::LOCALHOST => (IpAddr::V4(Ipv4Addr::LOCALHOST), "127.0.0.1", false),
            _ => continue,
        };
        if covered(&by_port, socket.protocol, socket.port, free) || i64::from(socket.port) < unprivileged_start {
            continue;
        }
        if v6 && !ipv6_available(facts) {
            continue;
        }
        out.push(finding(
            socket,
            id.to_string(),
            free_label,
            (v6, localhost[usize::from(v6)]),
            unprivileged_start,
        ));
    }
    out
}

/// The finding for `socket`, whose other family (`v6`: IPv6) is free; `maps` says whether
/// /etc/hosts maps localhost to that family (`None`: no hosts file).
fn finding(socket: &InetSocket, id: String, free_label: &str, (v6, maps): (bool, Option<bool>), start: i64) -> Finding {
    let proto = socket.protocol.as_str();
    let mut evidence = vec![
        format!("{id} is bound, but nothing holds {proto} {free_label}:{}", socket.port),
        format!(
            "port {} is at or above net.ipv4.ip_unprivileged_port_start = {start}: any user may bind it",
            socket.port
        ),
    ];
    let severity = match maps {
        Some(true) => {
            evidence.push(format!(
                "/etc/hosts maps localhost to {}: clients of `localhost` connect there",
                if v6 { "::1" } else { "127.0.0.1" }
            ));
            Severity::Medium
        }
        Some(false) => {
            evidence.push("/etc/hosts does not map localhost to that family: only clients using the address literally or another name reach it".into());
            Severity::Low
        }
        None => Severity::Medium,
    };
    Finding {
        check: CHECK.spec.id,
        service: Some(id),
        attacker: Attacker::LocalUser,
        severity,
        status: Status::Open,
        confidence: Confidence::Inspected,
        title: format!(
            "another user can squat {free_label}:{} and receive clients meant for this service",
            socket.port
        )
        .into(),
        evidence,
        fix: format!(
            "listen on both 127.0.0.1 and [::1] port {} (or have clients connect to the exact address, \
             not `localhost`)",
            socket.port
        )
        .into(),
        subject: None,
        reaches: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::{base, inet, run};

    #[test]
    fn v4_only_service_leaves_v6_port_free() {
        let mut facts = base();
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 8080));
        let found = run(&CHECK, &facts);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Medium);
        assert!(found[0].title.contains("[::1]:8080"));
    }

    #[test]
    fn both_families_privileged_ports_and_dual_stack_are_fine() {
        let mut facts = base();
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 8080));
        facts.inet_sockets.push(inet(Protocol::Tcp, "::1", 8080));
        facts.inet_sockets.push(inet(Protocol::Udp, "127.0.0.1", 53));
        facts.inet_sockets.push(inet(Protocol::Tcp, "::1", 9000));
        let mut dual = inet(Protocol::Tcp, "::", 9000);
        dual.v6only = Some(false);
        facts.inet_sockets.push(dual);
        assert!(run(&CHECK, &facts).is_empty());
    }

    #[test]
    fn v6_only_service_with_v4_port_free_and_ipv6_disabled_case() {
        let mut facts = base();
        facts.inet_sockets.push(inet(Protocol::Tcp, "::1", 9000));
        assert_eq!(
            run(&CHECK, &facts)[0].title,
            "another user can squat 127.0.0.1:9000 and receive clients meant for this service"
        );
        let mut facts = base();
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 9000));
        facts
            .sysctls
            .0
            .insert("net.ipv6.conf.all.disable_ipv6".into(), "1".into());
        assert!(run(&CHECK, &facts).is_empty());
    }
}
