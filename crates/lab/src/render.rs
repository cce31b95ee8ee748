//! The attack matrix for people: controls first, one line per attack, the evidence under it.

use crate::report::{Outcome, ProofReport};

/// Renders the report as text; `color` adds ANSI colours to the outcomes.
pub fn human(report: &ProofReport, color: bool) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "loopwarden prove — {} on kernel {} ({} ms)\nmirrored interfaces: {}\n",
        report.source,
        report.kernel,
        report.duration_ms,
        report.interfaces.join(", ")
    ));
    let m = &report.mirror;
    out.push_str(&format!(
        "mirrored: {} sysctls, nftables {}, iptables {}\n",
        m.sysctls_applied,
        if m.nft_loaded { "loaded" } else { "none" },
        if m.iptables_loaded.is_empty() {
            "none".to_string()
        } else {
            m.iptables_loaded.join(", ")
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
            l.source, l.item, l.reason
        ));
    }
    for n in &report.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out.push_str(if report.controls_passed {
        "controls: passed\n"
    } else {
        "controls: FAILED — nothing below is proven\n"
    });
    let attacks: Vec<_> = report.results.iter().filter(|r| !r.control).collect();
    let through = attacks.iter().filter(|r| r.outcome.delivered()).count();
    let trusted = attacks
        .iter()
        .filter(|r| r.outcome == Outcome::DeliveredToTrust)
        .count();
    let uncertain = attacks.iter().filter(|r| !r.uncertain.is_empty()).count();
    out.push_str(&format!(
        "attacks: {} fired, {through} got through ({trusted} with a loopback peer), {} stopped, {uncertain} uncertain\n\n",
        attacks.len(),
        attacks.len() - through
    ));
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
            out.push_str(&format!("{} — {}\n", r.attack, r.description));
            last = &r.attack;
        }
        let outcome = paint(r.outcome, color);
        out.push_str(&format!(
            "  {:<width$}  {} {} -> {} via {}  {}",
            r.service,
            r.protocol.as_str().to_uppercase(),
            r.source,
            r.destination,
            r.interface,
            outcome
        ));
        if let Some(peer) = &r.peer_seen {
            out.push_str(&format!(" (peer seen {peer})"));
        }
        if !r.uncertain.is_empty() {
            out.push_str(" [uncertain]");
        }
        out.push('\n');
        for e in r.evidence.iter().chain(r.uncertain.iter()) {
            out.push_str(&format!("  {:<width$}    {e}\n", ""));
        }
    }
    out
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
