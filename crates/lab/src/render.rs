//! The attack matrix for people: controls first, one line per attack, the evidence under it.
//!
//! Names and texts come from the host or a snapshot (interface names, rule texts, service ids,
//! the kernel release): each is escaped ([`line`]) so that a line stays a line and the only escape
//! sequences printed are the outcomes' colours.

use crate::report::{Outcome, ProofReport};
use loopwarden_core::report::prometheus::Family;
use loopwarden_core::report::shown::line;

/// Renders the report as text; `color` adds ANSI colours to the outcomes.
pub fn human(report: &ProofReport, color: bool) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "loopwarden prove — {} on kernel {} ({} ms)\nmirrored interfaces: {}\n",
        line(&report.source),
        line(&report.kernel),
        report.duration_ms,
        line(&report.interfaces.join(", "))
    ));
    let m = &report.mirror;
    out.push_str(&format!(
        "mirrored: {} sysctls, nftables {}, iptables {}\n",
        m.sysctls_applied,
        if m.nft_loaded { "loaded" } else { "none" },
        if m.iptables_loaded.is_empty() {
            "none".to_string()
        } else {
            line(&m.iptables_loaded.join(", ")).into_owned()
        }
    ));
    for l in &m.left_out {
        let scope = if l.inbound {
            l.family.as_str()
        } else {
            "outbound only, no attack touches it"
        };
        out.push_str(&format!(
            "  left out ({}, {scope}): {} — {}\n",
            line(&l.source),
            line(&l.item),
            line(&l.reason)
        ));
    }
    for n in &report.notes {
        out.push_str(&format!("note: {}\n", line(n)));
    }
    if !report.untested.is_empty() {
        out.push_str(&format!(
            "not tested: {} — no result below speaks for them\n",
            line(&report.untested.describe())
        ));
    }
    out.push_str(if report.controls_passed {
        "controls: passed\n"
    } else {
        "controls: FAILED — nothing below is proven\n"
    });
    out.push_str(&format!("attacks: {}\n\n", attacks(report)));
    let width = report
        .results
        .iter()
        .map(|r| r.service.len())
        .max()
        .unwrap_or(0)
        .min(40);
    let mut last = "";
    for r in &report.results {
        if r.attack != last {
            out.push_str(&format!("{} — {}\n", line(&r.attack), line(&r.description)));
            last = &r.attack;
        }
        let outcome = paint(r.outcome, color);
        out.push_str(&format!(
            "  {:<width$}  {} {} -> {} from {}  {} — {}",
            line(&r.service),
            r.protocol.as_str().to_uppercase(),
            line(&r.source),
            line(&r.destination),
            line(&r.attacker),
            outcome,
            r.outcome.said()
        ));
        if let Some(peer) = &r.peer_seen {
            out.push_str(&format!(" (peer seen {})", line(peer)));
        }
        if !r.uncertain.is_empty() {
            out.push_str(" [uncertain]");
        }
        out.push('\n');
        for e in r.evidence.iter().chain(r.uncertain.iter()) {
            out.push_str(&format!("  {:<width$}    {}\n", "", line(e)));
        }
    }
    out
}

/// What the attacks came to: `46 fired, 5 got through (1 with a loopback peer), 41 stopped,
/// 0 uncertain`.
pub fn attacks(report: &ProofReport) -> String {
    let attacks: Vec<_> = report.results.iter().filter(|r| !r.control).collect();
    let through = attacks.iter().filter(|r| r.outcome.delivered()).count();
    let trusted = attacks
        .iter()
        .filter(|r| r.outcome == Outcome::DeliveredToTrust)
        .count();
    let uncertain = attacks.iter().filter(|r| !r.uncertain.is_empty()).count();
    format!(
        "{} fired, {through} got through ({trusted} with a loopback peer), {} stopped, {uncertain} uncertain",
        attacks.len(),
        attacks.len() - through
    )
}

/// One line for an audit report saying what the lab did.
pub fn activity(report: &ProofReport) -> String {
    if !report.controls_passed {
        return "lab: the controls failed: nothing the lab saw is used".to_string();
    }
    format!(
        "lab: {} interface(s) mirrored; attacks from a neighbour namespace: {}",
        report.interfaces.len(),
        attacks(report)
    )
}

fn paint(outcome: Outcome, color: bool) -> String {
    let text = outcome.as_str().to_uppercase();
    if !color {
        return text;
    }
    let code = match outcome {
        Outcome::DeliveredToTrust | Outcome::Delivered => "1;31",
        Outcome::Blind => "33",
        Outcome::Refused | Outcome::Dropped => "32",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mirror::{LeftOut, Mirror};
    use crate::report::{AttackResult, Path, PROOF_SCHEMA};
    use loopwarden_core::facts::Protocol;

    /// Every string of a hostile snapshot (an interface name, a rule text, a service id) is
    /// printed escaped: no terminal control reaches the output, and each row stays one line.
    #[test]
    fn strings_from_a_snapshot_cannot_drive_the_terminal_or_forge_lines() {
        let hostile = "eth0\x1b[2J\x1b[8m\ncontrols: passed";
        let report = ProofReport {
            schema: PROOF_SCHEMA.into(),
            source: "snapshot".into(),
            kernel: "6.1\x1b]0;owned\x07".into(),
            controls_passed: true,
            interfaces: vec![hostile.into()],
            mirror: Mirror {
                left_out: vec![LeftOut {
                    source: "nftables".into(),
                    family: "ipv4".into(),
                    item: "add rule ip t c comment \"\x1b[2J\"".into(),
                    reason: "Error:\nforged line".into(),
                    inbound: true,
                }],
                ..Mirror::default()
            },
            notes: vec!["note\u{202e}".into()],
            untested: Default::default(),
            results: vec![AttackResult {
                attack: "ipv4.dst-loopback".into(),
                path: Path::Direct,
                received_by: Some("udp:127.0.0.1:1\x1b[2J".into()),
                description: "IPv4 to 127.0.0.1".into(),
                control: false,
                service: "unix:/tmp/a\nCRITICAL x".into(),
                interface: hostile.into(),
                attacker: format!("a LAN neighbour on {hostile}"),
                protocol: Protocol::Tcp,
                source: "192.0.2.254:30001".into(),
                destination: "127.0.0.1:80".into(),
                outcome: Outcome::Delivered,
                peer_seen: None,
                evidence: vec!["rule \x1b[8mhidden".into()],
                uncertain: vec![],
            }],
            duration_ms: 1,
        };
        for color in [false, true] {
            let text = human(&report, color);
            let without_colours = text.replace("\x1b[1;31m", "").replace("\x1b[0m", "");
            assert!(!without_colours.contains('\x1b'), "{text}");
            assert!(!text.contains('\x07') && !text.contains('\u{202e}'), "{text}");
            assert!(text.contains("eth0\\x1b[2J\\x1b[8m\\ncontrols: passed"), "{text}");
            assert_eq!(text.matches("\ncontrols: passed").count(), 1, "{text}");
            assert!(
                !text
                    .lines()
                    .any(|l| l.starts_with("CRITICAL") || l.starts_with("forged")),
                "{text}"
            );
        }
    }
}

/// `loopwarden_prove_attacks{outcome}`: the lab's attacks (controls left out) by outcome, each
/// outcome present with its zero, and `uncertain` (a drop the lab could not vouch for) counted
/// apart, never as dropped.
pub fn attacks_metric(proof: &ProofReport) -> Family {
    let attacks = || proof.results.iter().filter(|r| !r.control);
    let mut series: Vec<(Vec<(String, String)>, f64)> = Outcome::ALL
        .iter()
        .map(|o| {
            let n = attacks().filter(|r| r.outcome == *o && r.uncertain.is_empty()).count();
            (vec![("outcome".to_string(), o.as_str().to_string())], n as f64)
        })
        .collect();
    let uncertain = attacks().filter(|r| !r.uncertain.is_empty()).count();
    series.push((vec![("outcome".to_string(), "uncertain".to_string())], uncertain as f64));
    Family {
        name: "loopwarden_prove_attacks".into(),
        help: "Attacks the lab fired (controls left out) by outcome: delivered and delivered-to-trust got \
               through; blind, refused and dropped did not; uncertain ones were dropped in a mirror the lab \
               could not vouch for (not safe)."
            .into(),
        kind: "gauge",
        series,
    }
}
