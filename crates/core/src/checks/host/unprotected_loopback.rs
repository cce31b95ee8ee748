//! `netns.unprotected-loopback`: a network namespace other than the host's — a container's, a
//! pod's, an `ip netns` — whose own interfaces accept loopback-addressed traffic from outside
//! (`route_localnet=1`, no anti-spoof rule, a NAT rule to its loopback, a spoofable loopback
//! source). Each namespace has its own sysctls and its own, usually empty, ruleset: whatever
//! protects the host's namespace does not apply there. The finding gathers what that namespace's
//! own audit found open and says who the namespace is.

use super::{HostCheck, HostContext};
use crate::checks::{CheckId, CheckSpec, Stage};
use crate::report::{Attacker, Confidence, Finding, HostFinding, Report, Scope, Status};

/// Catalogue entry.
pub const CHECK: HostCheck = HostCheck {
    spec: CheckSpec {
        id: CheckId::NetnsUnprotectedLoopback,
        attackers: &[Attacker::Lan],
        stage: Stage::AllNetns,
        summary: "a container's (or another non-host) network namespace accepts loopback-addressed \
                  traffic on its own interfaces: route_localnet=1 or no anti-spoof rule there",
        why: "sysctls and firewall rules are per network namespace: the host's anti-spoof table does not \
              protect a container's loopback services, and a neighbour on the container's bridge (another \
              container) reaches them the way a LAN neighbour reaches the host's",
    },
    evaluate,
};

/// The per-namespace checks whose open findings mean loopback-addressed traffic gets in.
const GAPS: &[CheckId] = &[
    CheckId::NetRouteLocalnet,
    CheckId::NetNoLoopbackAntispoof,
    CheckId::NetDnatLoopback,
    CheckId::NetLoopbackSourceTrust,
];

fn evaluate(ctx: &HostContext) -> Vec<HostFinding> {
    let host_blocked = ctx.host_report().is_some_and(|r| {
        let antispoof: Vec<_> = r
            .findings
            .iter()
            .filter(|f| f.check == CheckId::NetNoLoopbackAntispoof)
            .collect();
        !antispoof.is_empty() && antispoof.iter().all(|f| f.status == Status::Blocked)
    });
    let mut out = Vec::new();
    for (ns, report) in ctx.namespaces() {
        if ns.namespace.host {
            continue;
        }
        let outward: Vec<&str> = ns
            .facts
            .interfaces
            .iter()
            .filter(|i| i.up && i.receives_ip(&ns.facts.interfaces))
            .map(|i| i.name.as_str())
            .collect();
        let gaps: Vec<&Finding> = report
            .findings
            .iter()
            .filter(|f| GAPS.contains(&f.check) && f.status != Status::Blocked)
            .collect();
        if outward.is_empty() || gaps.is_empty() {
            continue;
        }
        let Some(severity) = gaps.iter().map(|f| f.severity).max() else {
            continue;
        };
        let status = if gaps.iter().any(|f| f.status == Status::Open) {
            Status::Open
        } else {
            Status::Unknown
        };
        let mut evidence = vec![format!(
            "{} ({}) receives on {}",
            ns.namespace.id,
            ns.namespace.label(),
            outward.join(", ")
        )];
        evidence.extend(gaps.iter().map(|f| {
            let on = f.service.as_deref().map(|s| format!(" [{s}]")).unwrap_or_default();
            format!("its own audit: {} {} — {}{on}", f.check, f.status.as_str(), f.title)
        }));
        evidence.push(loopback_services(report));
        evidence.push(if host_blocked {
            "the host's namespace drops loopback-addressed packets from outside, but its rules and sysctls \
             do not apply to this namespace"
                .to_string()
        } else {
            "rules and sysctls are per network namespace: the host's, whatever they are, do not apply here".to_string()
        });
        let target = ns.namespace.target();
        out.push(HostFinding {
            netns: ns.namespace.id.clone(),
            finding: Finding {
                check: CHECK.spec.id,
                service: None,
                attacker: Attacker::Lan,
                severity,
                status,
                confidence: Confidence::Inspected,
                title: title(&ns.namespace.label(), &gaps).into(),
                evidence,
                fix: format!(
                    "give the namespace its own anti-spoof table and sysctls: `loopwarden harden --netns {target} --apply` \
                     (or `loopwarden harden --all-netns --apply` for every namespace that needs it)"
                ).into(),
                subject: Some(ns.namespace.id.clone()),
            },
        });
    }
    out
}

/// What the namespace's gaps amount to: a path in (`route_localnet=1`, a NAT rule, a trusted
/// spoofed source) is said as accepting loopback-addressed traffic; a missing anti-spoof rule
/// alone is said as no protection of its own — the kernel's defaults still drop such packets
/// (a spoofed SYN to 127.0.0.1 from a neighbour gets no answer), until a sysctl changes.
fn title(label: &str, gaps: &[&Finding]) -> String {
    let path_in = |status: Status| {
        gaps.iter()
            .any(|f| f.check != CheckId::NetNoLoopbackAntispoof && f.status == status)
    };
    if path_in(Status::Open) {
        format!(
            "{label}: its own interfaces accept loopback-addressed traffic (the host's protection does not cover it)"
        )
    } else if path_in(Status::Unknown) {
        format!(
            "{label}: its own interfaces may accept loopback-addressed traffic — undecided (the host's protection \
             does not cover it)"
        )
    } else {
        format!(
            "{label}: no anti-spoof rule of its own (the host's does not cover it); only the kernel's defaults drop \
             loopback-addressed traffic there"
        )
    }
}

/// `loopback services there: tcp:127.0.0.1:8080, …` (or that there are none yet).
fn loopback_services(report: &Report) -> String {
    let ids: Vec<&str> = report
        .services
        .iter()
        .filter(|s| s.scope == Scope::Loopback)
        .map(|s| s.id.as_str())
        .collect();
    match ids.len() {
        0 => "no loopback service there now; any started later is exposed".to_string(),
        n if n <= 6 => format!("loopback services there: {}", ids.join(", ")),
        n => format!("loopback services there: {} and {} more", ids[..6].join(", "), n - 6),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{evaluate, namespace, set};
    use super::*;
    use crate::checks::test_facts::inet;
    use crate::facts::Protocol;
    use crate::report::Severity;

    #[test]
    fn a_container_namespace_with_route_localnet_is_flagged_and_the_host_is_not() {
        let mut host = namespace(1, true);
        host.facts
            .sysctls
            .0
            .insert("net.ipv4.conf.all.route_localnet".into(), "1".into());
        let mut container = namespace(2, false);
        container.namespace.ip_netns.push("blue".into());
        container
            .facts
            .sysctls
            .0
            .insert("net.ipv4.conf.eth0.route_localnet".into(), "1".into());
        container
            .facts
            .inet_sockets
            .push(inet(Protocol::Tcp, "127.0.0.1", 8080));
        // An empty ruleset, as a fresh container namespace has.
        container.facts.firewall.nft_json = Some(serde_json::json!({ "nftables": [] }));
        container.facts.firewall.nft_text = Some(String::new());
        let found = evaluate(&CHECK, &set(vec![host, container]));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].netns, "net:[2]");
        let f = &found[0].finding;
        assert_eq!(f.status, Status::Open);
        assert!(f.severity >= Severity::High, "{:?}", f.severity);
        assert!(f.title.starts_with("ip netns blue:"), "{}", f.title);
        assert!(
            f.evidence.iter().any(|e| e.contains("net.route-localnet open")),
            "{:?}",
            f.evidence
        );
        assert!(f.evidence.iter().any(|e| e.contains("tcp:127.0.0.1:8080")));
        assert!(f.fix.contains("--netns blue"));
    }

    /// route_localnet=0 and no rule: the kernel drops loopback-addressed packets (a spoofed SYN
    /// from a neighbour got no answer), so the finding says the protection is missing, not that
    /// traffic gets in.
    #[test]
    fn a_namespace_lacking_only_an_anti_spoof_rule_is_not_said_to_accept_traffic() {
        let mut container = namespace(2, false);
        container.namespace.ip_netns.push("safe".into());
        container
            .facts
            .inet_sockets
            .push(inet(Protocol::Tcp, "127.0.0.1", 9001));
        container.facts.firewall.nft_json = Some(serde_json::json!({ "nftables": [] }));
        container.facts.firewall.nft_text = Some(String::new());
        let found = evaluate(&CHECK, &set(vec![namespace(1, true), container]));
        assert_eq!(found.len(), 1, "{found:#?}");
        let title = &found[0].finding.title;
        assert!(
            title.starts_with("ip netns safe: no anti-spoof rule of its own"),
            "{title}"
        );
        assert!(!title.contains("accept loopback-addressed traffic"), "{title}");
    }

    #[test]
    fn a_namespace_with_only_loopback_is_not_reachable_from_outside() {
        let mut only_lo = namespace(3, false);
        only_lo.facts.interfaces.retain(|i| i.loopback);
        only_lo
            .facts
            .sysctls
            .0
            .insert("net.ipv4.conf.all.route_localnet".into(), "1".into());
        assert!(evaluate(&CHECK, &set(vec![only_lo])).is_empty());
    }
}
