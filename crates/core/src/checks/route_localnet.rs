//! `net.route-localnet`: the kernel routes loopback-addressed packets that arrive from the LAN.

use super::sysctl_view::route_localnet_interfaces;
use super::{Check, CheckSpec, Context, Stage};
use crate::addr::unmapped;
use crate::firewall::questions::per_interface;
use crate::firewall::verdict::Decision;
use crate::inventory::{inet_service_id, is_inet_service};
use crate::report::{Attacker, Confidence, Finding, Severity, Status};
use std::net::IpAddr;

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: "net.route-localnet",
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
    (persist in /etc/sysctl.d/), then `ip route flush cache`; if a component needs it (kube-proxy, \
    Docker with userland-proxy=false), drop `ip daddr 127.0.0.0/8` arriving on non-lo interfaces in \
    an nftables prerouting chain at priority raw";

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let interfaces = match route_localnet_interfaces(ctx.facts) {
        Ok(interfaces) => interfaces,
        Err(missing) => {
            return vec![Finding {
                check: CHECK.spec.id.to_string(),
                service: None,
                attacker: Attacker::Lan,
                severity: Severity::High,
                status: Status::Unknown,
                confidence: Confidence::Inspected,
                title: "route_localnet could not be read: loopback exposure to the LAN is unknown".into(),
                evidence: vec![format!("{} is not in the snapshot", missing.0)],
                fix: FIX.into(),
                subject: None,
            }]
        }
    };
    if interfaces.is_empty() {
        return vec![];
    }
    let exposed: Vec<String> = ctx
        .facts
        .inet_sockets
        .iter()
        .filter(|s| is_inet_service(s) && matches!(unmapped(s.address), IpAddr::V4(v4) if v4.is_loopback()))
        .map(inet_service_id)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let wildcard_v4 =
        ctx.facts.inet_sockets.iter().any(|s| {
            is_inet_service(s) && s.address.is_unspecified() && (s.address.is_ipv4() || s.v6only == Some(false))
        });
    let mut evidence: Vec<String> = interfaces
        .iter()
        .map(|i| format!("interface {}: {}", i.name, i.keys.join(", ")))
        .collect();
    if exposed.is_empty() {
        evidence.push("no service is bound to 127.0.0.0/8 now; any future one is exposed".into());
    } else {
        evidence.push(format!(
            "IPv4 loopback services reachable from those interfaces: {}",
            exposed.join(", ")
        ));
    }
    if wildcard_v4 {
        evidence.push("wildcard listeners also answer packets addressed to 127.0.0.1 from there".into());
    }
    if ctx.facts.sysctls.ipv4_conf("default", "route_localnet") == Some(1) {
        evidence.push("net.ipv4.conf.default.route_localnet = 1: new interfaces inherit it".into());
    }
    let names: Vec<&str> = interfaces.iter().map(|i| i.name.as_str()).collect();
    let status = firewall_status(ctx, &names, &mut evidence);
    vec![Finding {
        check: CHECK.spec.id.to_string(),
        service: None,
        attacker: Attacker::Lan,
        severity: if exposed.is_empty() {
            Severity::High
        } else {
            Severity::Critical
        },
        status,
        confidence: Confidence::Inspected,
        title: format!("LAN neighbours can reach 127.0.0.0/8 services via {}", names.join(", ")),
        evidence,
        fix: FIX.into(),
        subject: None,
    }]
}

/// Whether the ruleset drops what route_localnet lets in: traffic from non-loopback sources to
/// 127.0.0.0/8 arriving on each interface (Kubernetes' KUBE-FIREWALL rule does). Blocked only when
/// it does on every interface; the deciding rules, or an example that passes, go to `evidence`.
pub(super) fn firewall_status(ctx: &Context, names: &[&str], evidence: &mut Vec<String>) -> Status {
    if !ctx.firewall.captured {
        evidence.push("the firewall was not captured: whether a rule drops this traffic is unknown".into());
        return Status::Unknown;
    }
    let results = names
        .iter()
        .map(|n| {
            let (d, lines) = ctx.firewall.localnet_drop(n);
            (n.to_string(), d, lines)
        })
        .collect();
    let (decision, lines) = per_interface(results);
    match decision {
        Decision::Blocked => {
            evidence.push("the firewall drops traffic from non-loopback sources to 127.0.0.0/8:".into())
        }
        Decision::Open => evidence.push("no firewall rule drops it:".into()),
        Decision::Unknown => evidence.push("whether the firewall drops it could not be decided:".into()),
    }
    evidence.extend(lines.into_iter().map(|l| format!("  {l}")));
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

    #[test]
    fn kube_firewall_blocks_it_with_the_rule_as_evidence() {
        let found = run(&CHECK, &crate::firewall::fixture_tests::facts("kube-proxy-firewall"));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].status, Status::Blocked, "{:#?}", found[0].evidence);
        assert!(
            found[0]
                .evidence
                .iter()
                .any(|e| e.contains("KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8")),
            "{:#?}",
            found[0].evidence
        );
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
}
