//! `net.no-loopback-antispoof`: no firewall rule drops loopback-addressed traffic that arrives
//! from outside, per family and per half (source, destination).
//!
//! The destination half must be dropped before NAT (a prerouting chain with priority below
//! dstnat, −100): a DNAT rule rewrites a loopback destination before any later chain or the
//! kernel's martian check sees it (Docker `-p 127.0.0.1:` before 28). The source half may be
//! dropped anywhere before delivery (NAT does not rewrite sources on the way in). A drop that
//! fires only for some packets — a port, a mark — does not count.

use super::{Check, CheckId, CheckSpec, Context, Stage};
use crate::firewall::eval::{Packets, Reach};
use crate::firewall::questions::{loopback, per_interface, summarize, worse, Firewall};
use crate::firewall::ranges::all_addrs;
use crate::firewall::verdict::{Decision, Leaf};
use crate::report::{Attacker, Confidence, Finding, Reached, Severity, Status};

/// Catalogue entry.
pub const CHECK: Check = Check {
    spec: CheckSpec {
        id: CheckId::NetNoLoopbackAntispoof,
        attackers: &[Attacker::Lan],
        stage: Stage::Inspect,
        summary: "no firewall rule drops loopback source/destination arriving on non-lo interfaces (per family)",
        why: "only a firewall drop stops loopback-addressed packets that NAT rewrites (Docker \
              -p 127.0.0.1: before 28), IPv4-mapped loopback sources (delivered to IPv6 UDP \
              sockets by Linux 6.x) and 127/8 traffic once route_localnet is on; CIS's \
              source-only rule misses the destination half",
    },
    evaluate: Some(evaluate),
};

const FIX: &str = "add an nftables table with a prerouting chain at priority raw (-300) that drops, \
    for iifname != \"lo\": ip saddr 127.0.0.0/8, ip daddr 127.0.0.0/8, ip6 saddr ::1, ip6 daddr ::1, \
    ip6 saddr ::ffff:127.0.0.0/104, ip6 daddr ::ffff:127.0.0.0/104 (every network namespace needs \
    its own copy)";

/// The source half is asked of the firewall's hooks alone (prerouting, input): a packet that
/// passes them is "not dropped by the firewall", which is not the same as delivered — the
/// kernel's own checks are stated separately by [`kernel_on_sources`].
fn firewall_only(line: &str) -> String {
    const PASSED: &str = "not dropped by the firewall (prerouting, input): ";
    match line.strip_prefix("delivered: ") {
        Some(rest) => format!("{PASSED}{rest}"),
        None => line.replacen(": delivered: ", &format!(": {PASSED}"), 1),
    }
}

/// What the kernel does by itself with loopback sources the firewall lets through (notes §1,
/// measured on 6.18): the part of the missing half that still matters.
fn kernel_on_sources(v6: bool) -> &'static str {
    if v6 {
        "the kernel itself drops ::1 sources on non-lo interfaces, but delivers UDP from \
         ::ffff:127.0.0.0/104 to [::] sockets (even IPV6_V6ONLY ones) with a loopback peer"
    } else {
        "the kernel itself drops 127/8 sources as martians unless route_localnet is on (and \
         accepts 127.0.0.1, a configured address, only with accept_local): the firewall is the \
         second line"
    }
}

/// One half of one family, decided over every outside interface.
struct Half {
    decision: Decision,
    lines: Vec<String>,
}

fn half(fw: &Firewall, v6: bool, destination: bool) -> Half {
    let outside_addrs = all_addrs(v6).subtract(&loopback(v6));
    let mut results = Vec::new();
    for iif in &fw.outside {
        let start = if destination {
            Packets::arriving(v6, iif, outside_addrs.clone(), loopback(v6))
        } else {
            let own = fw.analysis.host.local(v6).subtract(&loopback(v6));
            let dst = if own.is_empty() { outside_addrs.clone() } else { own };
            Packets::arriving(v6, iif, loopback(v6), dst)
        };
        let reach = if destination {
            Reach::BeforeNat
        } else {
            Reach::FirewallInput
        };
        let answer = fw.analysis.query(start, reach);
        let leaves: Vec<&Leaf> = answer.leaves.iter().collect();
        let (d, lines) = summarize(&leaves, answer.truncated);
        results.push((fw.class_of(iif), d, lines));
    }
    let (decision, lines) = per_interface(results);
    Half { decision, lines }
}

fn evaluate(ctx: &Context) -> Vec<Finding> {
    let fw = &ctx.firewall;
    let mut out = Vec::new();
    for v6 in [false, true] {
        let family = if v6 { "IPv6" } else { "IPv4" };
        let range = if v6 { "::1, ::ffff:127.0.0.0/104" } else { "127.0.0.0/8" };
        if !fw.captured {
            out.push(finding(
                v6,
                Status::Unknown,
                Severity::Medium,
                format!("{family}: the firewall could not be read, loopback anti-spoofing is unknown"),
                vec!["no nftables or iptables capture in the snapshot (see the limits)".into()],
            ));
            continue;
        }
        let dst = half(fw, v6, true);
        let src = half(fw, v6, false);
        let mut evidence = Vec::new();
        for (h, name, rule) in [
            (
                &dst,
                "destination",
                "dropped before NAT (prerouting, priority below -100)",
            ),
            (&src, "source", "dropped before delivery"),
        ] {
            let verdict = match h.decision {
                Decision::Blocked => format!("{rule}: yes"),
                Decision::Open => format!("{rule}: NO — the {name} half is missing"),
                Decision::Unknown => format!("{rule}: unknown"),
            };
            evidence.push(format!(
                "{family} loopback {name} ({range}) from a non-lo interface, {verdict}"
            ));
            evidence.extend(h.lines.iter().map(|l| format!("  {}", firewall_only(l))));
        }
        if src.decision != Decision::Blocked {
            evidence.push(kernel_on_sources(v6).into());
        }
        let not_understood = &fw.analysis.ruleset.not_understood;
        if !not_understood.is_empty() {
            evidence.push(format!(
                "{} ruleset part(s) not understood (paths through them count as unknown, never as dropped):",
                not_understood.len()
            ));
            evidence.extend(
                not_understood
                    .iter()
                    .take(5)
                    .map(|n| format!("  {}: {}", n.place, n.what)),
            );
        }
        evidence.extend(fw.analysis.ruleset.notes.iter().map(|n| format!("source: {n}")));
        let off_path = &fw.analysis.ruleset.off_path_chains;
        let status = match worse(Some(dst.decision), src.decision) {
            Decision::Open if !off_path.is_empty() => {
                evidence.push(format!(
                    "not evaluated, and able to drop before prerouting: {}",
                    off_path.join(", ")
                ));
                Status::Unknown
            }
            Decision::Open => Status::Open,
            Decision::Unknown => Status::Unknown,
            Decision::Blocked => Status::Blocked,
        };
        let missing: Vec<&str> = [(&dst, "destination"), (&src, "source")]
            .iter()
            .filter(|(h, _)| h.decision != Decision::Blocked)
            .map(|(_, n)| *n)
            .collect();
        let title = match status {
            Status::Blocked => {
                format!("{family}: loopback source and destination from outside are dropped by the firewall")
            }
            Status::Open => format!(
                "{family}: no firewall drop for loopback-addressed traffic from outside ({} half missing)",
                missing.join(" and ")
            ),
            Status::Unknown => format!(
                "{family}: whether the firewall drops loopback-addressed traffic from outside is unknown ({})",
                missing.join(", ")
            ),
        };
        out.push(finding(v6, status, severity(ctx, v6, &dst, &src), title, evidence));
    }
    out
}

/// Medium where the kernel does not stop what the firewall misses: IPv4 with route_localnet on
/// an outside interface; IPv6 with the source half missing (IPv4-mapped loopback sources are
/// delivered to every UDP socket on `::`, present or future). Else low: defence in depth.
fn severity(ctx: &Context, v6: bool, dst: &Half, src: &Half) -> Severity {
    let kernel_lets_through = if v6 {
        src.decision != Decision::Blocked
    } else {
        ctx.firewall
            .outside
            .iter()
            .any(|i| ctx.firewall.analysis.host.route_localnet(i) != Some(false))
            && (dst.decision != Decision::Blocked || src.decision != Decision::Blocked)
    };
    if kernel_lets_through {
        Severity::Medium
    } else {
        Severity::Low
    }
}

/// Links each family's finding to the services a missing anti-spoof drop leaves exposed: those
/// the other LAN checks found a loopback-addressed path to in that family — route_localnet's
/// loopback services and NAT-published addresses (IPv4), the wildcard UDP sockets a spoofed
/// loopback source reaches (IPv4 for `0.0.0.0`, IPv6 for `[::]`), the loopback UDP services one
/// spoofed datagram reaches. The firewall's answer and that path's each limit the other: a
/// blocked one blocks, two open ones are open, anything else is unknown. A blocked anti-spoof
/// finding (the firewall drops it all) links to nothing.
pub(crate) fn link(findings: &mut [Finding]) {
    let family_of = |service: &str| {
        if service.starts_with("udp:[") || service.starts_with("tcp:[") {
            "ipv6"
        } else {
            "ipv4"
        }
    };
    let mut paths: Vec<(&'static str, Reached)> = Vec::new();
    for f in findings.iter().filter(|f| f.attacker == Attacker::Lan) {
        let own = f.service.iter().map(|s| Reached {
            service: s.clone(),
            status: f.status,
        });
        match f.check {
            CheckId::NetRouteLocalnet | CheckId::NetDnatLoopback => {
                paths.extend(f.reaches.iter().cloned().chain(own).map(|r| ("ipv4", r)));
            }
            CheckId::NetLoopbackSourceTrust | CheckId::ProtoUdpLoopback => {
                paths.extend(own.map(|r| (family_of(&r.service), r)));
            }
            _ => {}
        }
    }
    for f in findings
        .iter_mut()
        .filter(|f| f.check == CHECK.spec.id && f.status != Status::Blocked)
    {
        let family = f.subject.as_deref().unwrap_or_default();
        for (_, path) in paths.iter().filter(|(fam, _)| *fam == family) {
            let status = match (f.status, path.status) {
                (Status::Blocked, _) | (_, Status::Blocked) => Status::Blocked,
                (Status::Open, Status::Open) => Status::Open,
                _ => Status::Unknown,
            };
            let reached = Reached {
                service: path.service.clone(),
                status,
            };
            match f.reaches.iter_mut().find(|r| r.service == reached.service) {
                // Two paths to one service: the more open answer stands.
                Some(old) if status.rank() > old.status.rank() => *old = reached,
                Some(_) => {}
                None => f.reaches.push(reached),
            }
        }
    }
}

/// One family's finding; its subject (`ipv4`/`ipv6`) lets the lab's evidence find it.
fn finding(v6: bool, status: Status, severity: Severity, title: String, evidence: Vec<String>) -> Finding {
    Finding {
        check: CHECK.spec.id,
        service: None,
        attacker: Attacker::Lan,
        severity,
        status,
        confidence: Confidence::Inspected,
        title: title.into(),
        evidence,
        fix: FIX.into(),
        subject: Some(if v6 { "ipv6" } else { "ipv4" }.to_string()),
        reaches: Vec::new(),
    }
}

#[cfg(test)]
mod wording_tests {
    use super::firewall_only;

    #[test]
    fn firewall_only_answers_do_not_claim_delivery() {
        assert_eq!(
            firewall_only("on eth0: delivered: tcp ::1 -> fd00::2 port 80"),
            "on eth0: not dropped by the firewall (prerouting, input): tcp ::1 -> fd00::2 port 80"
        );
        assert_eq!(firewall_only("dropped by x"), "dropped by x");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::run;
    use crate::firewall::fixture_tests::facts;

    fn by_family(found: &[Finding], family: &str) -> Finding {
        found
            .iter()
            .find(|f| f.title.starts_with(family))
            .cloned()
            .expect("finding per family")
    }

    #[test]
    fn complete_raw_guard_is_credited_for_both_families() {
        let found = run(&CHECK, &facts("raw-antispoof-complete"));
        assert_eq!(found.len(), 2);
        for f in &found {
            assert_eq!(f.status, Status::Blocked, "{f:#?}");
            assert!(f.service.is_none());
            assert!(
                f.evidence
                    .iter()
                    .any(|e| e.contains("dropped by inet loopback_guard prerouting:")),
                "{f:#?}"
            );
        }
    }

    #[test]
    fn cis_rule_leaves_the_destination_half_open_and_says_so() {
        let found = run(&CHECK, &facts("cis-loopback-source-only"));
        let v4 = by_family(&found, "IPv4");
        assert_eq!(v4.status, Status::Open);
        assert!(v4.title.contains("(destination half missing)"), "{}", v4.title);
        assert!(
            v4.evidence
                .iter()
                .any(|e| e.contains("loopback source") && e.ends_with(": yes")),
            "{:#?}",
            v4.evidence
        );
        assert!(
            v4.evidence
                .iter()
                .any(|e| e.contains("dropped by inet filter input: ip saddr 127.0.0.0/8 drop")),
            "{:#?}",
            v4.evidence
        );
        let v6 = by_family(&found, "IPv6");
        assert_eq!(v6.status, Status::Open);
        assert_eq!(
            v6.severity,
            Severity::Medium,
            "mapped loopback sources reach [::] UDP sockets"
        );
        assert!(
            v6.evidence.iter().any(|e| e.contains("::ffff:127.0.0.1")),
            "{:#?}",
            v6.evidence
        );
    }

    #[test]
    fn a_drop_conditioned_on_a_mark_or_a_port_is_not_a_block() {
        for fixture in ["antispoof-only-with-mark", "docker-28-loopback-publish"] {
            let found = run(&CHECK, &facts(fixture));
            let v4 = by_family(&found, "IPv4");
            assert_eq!(v4.status, Status::Open, "{fixture}: {v4:#?}");
            assert!(v4.title.contains("destination"), "{fixture}: {}", v4.title);
        }
        let docker = by_family(&run(&CHECK, &facts("docker-28-loopback-publish")), "IPv4");
        assert!(docker.evidence.iter().any(|e| e.contains("dropped only for some packets by: iptables raw PREROUTING: -A PREROUTING -d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport 8080 -j DROP")), "{:#?}", docker.evidence);
    }

    #[test]
    fn route_localnet_raises_the_ipv4_severity() {
        assert_eq!(
            by_family(&run(&CHECK, &facts("ufw-stock")), "IPv4").severity,
            Severity::Low
        );
        assert_eq!(
            by_family(&run(&CHECK, &facts("kube-proxy-firewall")), "IPv4").severity,
            Severity::Medium
        );
    }

    #[test]
    fn a_chain_outside_the_evaluated_paths_makes_open_unknown() {
        let found = run(&CHECK, &facts("netdev-ingress-antispoof"));
        let v4 = by_family(&found, "IPv4");
        assert_eq!(v4.status, Status::Unknown, "{v4:#?}");
        assert!(
            v4.evidence
                .iter()
                .any(|e| e.contains("netdev loopback_ingress ingress (hook ingress)")),
            "{v4:#?}"
        );
    }

    #[test]
    fn no_capture_is_unknown_not_safe() {
        let found = run(&CHECK, &crate::checks::test_facts::base());
        assert_eq!(found.len(), 2);
        assert!(found.iter().all(|f| f.status == Status::Unknown));
    }
}
