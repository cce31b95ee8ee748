//! `net.dnat-loopback`: a NAT rule turns traffic from outside into traffic to or for a loopback
//! address.
//!
//! Two shapes: a rule matching traffic *addressed to* a loopback address and translating it
//! elsewhere (Docker's `-d 127.0.0.1 ! -i docker0 … -j DNAT`: reachable from the LAN with no
//! sysctl, because NAT rewrites before the martian check), and a rule translating outside
//! traffic *to* a loopback address (kube-proxy/ECS style: delivered only with route_localnet).
//! Each is followed through the whole ruleset and the routing decision; raw-table drops (Docker
//! 28) and later drops are credited.

use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::addr::socket_label;
use crate::firewall::questions::LoopbackNat;
use crate::firewall::verdict::Decision;
use crate::report::{Attacker, Confidence, Finding, Reached, Severity, Status};
use std::net::IpAddr;

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::NetDnatLoopback,
        attackers: &[Attacker::Lan],
        stage: Stage::Inspect,
        summary: "a NAT rule turns traffic from outside into traffic to/for a loopback address",
        why: "DNAT happens in prerouting, before the kernel's loopback checks: a rule publishing \
              127.0.0.1:P (Docker -p 127.0.0.1: before 28, moby #45610) is reachable from the LAN \
              with default sysctls, and a rule sending outside traffic to 127.0.0.1 exposes that \
              service as soon as route_localnet is on",
    },
    evaluate: Some(evaluate),
};

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for nat in ctx.firewall.loopback_nat() {
        let finding = finding(ctx, &nat);
        if !out
            .iter()
            .any(|f| f.service == finding.service && f.evidence == finding.evidence)
        {
            out.push(finding);
        }
    }
    out
}

fn label(addr: Option<IpAddr>, port: Option<u16>) -> String {
    match (addr, port) {
        (Some(a), Some(p)) => socket_label(a, p),
        (Some(a), None) => a.to_string(),
        (None, Some(p)) => format!("port {p}"),
        (None, None) => "the same address".into(),
    }
}

/// The service a rule affects: the loopback target (to-loopback rules) or the published loopback
/// address (from-loopback rules), when a listener has it.
fn service(ctx: &Context, nat: &LoopbackNat) -> Option<String> {
    let (addr, port) = if nat.from_loopback { nat.matched } else { nat.to };
    let port = port.or(if nat.from_loopback { None } else { nat.matched.1 })?;
    let proto = match nat.proto {
        Some(6) => Some("tcp"),
        Some(17) => Some("udp"),
        _ => None,
    };
    ctx.services_on_port(port)
        .find(|s| {
            proto.is_none_or(|p| s.proto == p)
                && s.address
                    .as_deref()
                    .and_then(|a| a.parse::<IpAddr>().ok())
                    .is_some_and(|a| addr.is_none_or(|want| a == want) || a.is_unspecified())
        })
        .map(|s| s.id.clone())
}

/// What a rule makes reachable when no listener of this host stands behind it: the loopback
/// address and port it publishes (Docker style) or sends outside traffic to (kube-proxy/ECS
/// style), as service ids (`tcp:127.0.0.1:8081`; both protocols when the rule names none).
fn published(nat: &LoopbackNat) -> Vec<String> {
    let (addr, port) = if nat.from_loopback { nat.matched } else { nat.to };
    let (Some(addr), Some(port)) = (addr, port) else {
        return Vec::new();
    };
    let protos: &[&str] = match nat.proto {
        Some(6) => &["tcp"],
        Some(17) => &["udp"],
        _ => &["tcp", "udp"],
    };
    protos
        .iter()
        .map(|p| format!("{p}:{}", socket_label(addr, port)))
        .collect()
}

fn finding(ctx: &Context, nat: &LoopbackNat) -> Finding {
    let to = label(nat.to.0, nat.to.1);
    let (title, fix) = if nat.decision == Decision::Unknown && nat.to == (None, None) {
        (
            "a NAT rule that could not be read handles loopback-addressed traffic from outside".to_string(),
            "capture iptables-save as well (iptables-nft rules appear in nft's JSON only as opaque xt \
             expressions) and audit again"
                .to_string(),
        )
    } else if nat.from_loopback {
        let published = label(nat.matched.0, nat.matched.1);
        (
            match nat.decision {
                Decision::Blocked => format!(
                    "a NAT rule would publish loopback {published} (to {to}), but such packets are dropped before it"
                ),
                _ => format!("NAT publishes loopback {published} to the network (translated to {to})"),
            },
            "drop non-lo traffic to 127.0.0.0/8 before NAT (an nftables prerouting chain at priority raw; \
             Docker >= 28 adds `-t raw -A PREROUTING -d 127.0.0.1/32 ! -i lo -p tcp --dport P -j DROP`, \
             and 28.3.3 keeps it across firewalld reloads, CVE-2025-54388)"
                .to_string(),
        )
    } else {
        (
            match nat.decision {
                Decision::Blocked => {
                    format!("a NAT rule would send traffic from outside to loopback {to}, but it is dropped")
                }
                _ => format!("NAT sends traffic from outside to loopback {to}"),
            },
            "restrict the DNAT rule to the interfaces and sources that need it, keep route_localnet=0 where \
             possible, and drop `! -s 127.0.0.0/8 -d 127.0.0.0/8` for connections that are not DNAT'ed \
             (kube-proxy's KUBE-FIREWALL rule)"
                .to_string(),
        )
    };
    let (status, severity) = match nat.decision {
        Decision::Open => (Status::Open, Severity::High),
        Decision::Blocked => (Status::Blocked, Severity::High),
        Decision::Unknown => (Status::Unknown, Severity::High),
    };
    let service = service(ctx, nat);
    // Without a listener to name, the path still ends somewhere: at what the rule publishes.
    let reaches = match &service {
        Some(_) => Vec::new(),
        None => published(nat)
            .into_iter()
            .map(|service| Reached { service, status })
            .collect(),
    };
    Finding {
        check: CHECK.spec.id,
        service,
        attacker: Attacker::Lan,
        severity,
        status,
        confidence: Confidence::Inspected,
        title: title.into(),
        evidence: nat.evidence.clone(),
        fix: fix.into(),
        subject: None,
        reaches,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::{inet, run};
    use crate::facts::Protocol;
    use crate::firewall::fixture_tests::facts;

    #[test]
    fn docker_27_loopback_publish_is_open_on_the_published_service() {
        let mut f = facts("docker-27-loopback-publish");
        f.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 8080));
        let found = run(&CHECK, &f);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].status, Status::Open);
        assert_eq!(found[0].service.as_deref(), Some("tcp:127.0.0.1:8080"));
        assert!(
            found[0].title.contains("127.0.0.1:8080") && found[0].title.contains("172.17.0.2:80"),
            "{}",
            found[0].title
        );
    }

    #[test]
    fn docker_28_raw_drop_is_credited() {
        let found = run(&CHECK, &facts("docker-28-loopback-publish"));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].status, Status::Blocked);
        assert!(found[0].service.is_none());
        // No listener on this host: the path ends at the published address.
        assert_eq!(
            found[0].reaches,
            [Reached {
                service: "tcp:127.0.0.1:8080".into(),
                status: Status::Blocked
            }]
        );
        assert!(
            found[0]
                .evidence
                .iter()
                .any(|e| e.contains("dropped before it applies: iptables raw PREROUTING")),
            "{:#?}",
            found[0].evidence
        );
    }

    #[test]
    fn dnat_to_loopback_needs_route_localnet() {
        let mut f = facts("ecs-agent-dnat-to-loopback");
        f.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 51679));
        let found = run(&CHECK, &f);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(
            (found[0].status, found[0].service.as_deref()),
            (Status::Open, Some("tcp:127.0.0.1:51679"))
        );
        f.sysctls
            .0
            .insert("net.ipv4.conf.all.route_localnet".into(), "0".into());
        assert_eq!(run(&CHECK, &f)[0].status, Status::Blocked);
    }

    #[test]
    fn iptables_nft_rules_seen_only_in_nft_json_are_unknown_not_absent() {
        let mut f = facts("docker-27-loopback-publish");
        f.firewall.iptables.clear();
        let found = run(&CHECK, &f);
        assert!(!found.is_empty(), "an unreadable DNAT must not vanish");
        assert!(found.iter().all(|x| x.status == Status::Unknown), "{found:#?}");
        assert!(
            found
                .iter()
                .any(|x| x.evidence.iter().any(|e| e.contains("xt") && e.contains("DNAT"))),
            "{found:#?}"
        );
        let antispoof = run(&super::super::no_loopback_antispoof::CHECK, &f);
        assert!(
            antispoof[0].evidence.iter().any(|e| e.contains("not understood")),
            "{:#?}",
            antispoof[0].evidence
        );
    }

    #[test]
    fn rulesets_without_loopback_nat_raise_nothing() {
        for fixture in [
            "kube-proxy-firewall",
            "ufw-stock",
            "firewalld-style",
            "no-firewall",
            "raw-antispoof-complete",
        ] {
            assert!(run(&CHECK, &facts(fixture)).is_empty(), "{fixture}");
        }
    }
}
