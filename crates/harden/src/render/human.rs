//! The plan for people: the table, the sysctls, what is kept, the evaluator's verification, what
//! happens to every open finding, and the nft text.

use crate::plan::findings::{After, Outcome};
use crate::plan::keep::Scope;
use crate::plan::verify::Verdict;
use crate::plan::Plan;
use crate::render::{nft_text, one_line, terminal_safe};
use loopwarden_core::report::Report;
use std::fmt::Write;

/// The whole plan as text.
pub fn render(plan: &Plan, report: &Report) -> String {
    let mut out = format!(
        "loopwarden harden: plan for {} ({})\n\n",
        one_line(&report.host.hostname),
        one_line(&report.host.netns)
    );
    table(&mut out, plan);
    sysctls(&mut out, plan);
    verification(&mut out, plan);
    findings(&mut out, plan);
    let _ = write!(
        out,
        "\nThe table, as `nft list table inet loopwarden` will show it:\n\n{}",
        nft_text::render(&plan.table, None)
    );
    terminal_safe(out)
}

fn table(out: &mut String, plan: &Plan) {
    out.push_str("nftables: one table, inet loopwarden (no other table is touched, the ruleset is never flushed)\n");
    out.push_str("  prerouting at priority raw (-300, before conntrack and NAT), on every interface but lo, drop:\n");
    for g in &plan.table.guards {
        let _ = writeln!(out, "    {:<34} counter {}", g.matches(), g.guard.counter());
    }
    out.push_str("    each drop is also counted per input interface (set spoofed): `loopwarden audit` reports them\n");
    if !plan.table.allows.is_empty() {
        out.push_str(
            "  output at priority mangle (-150, after conntrack, before NAT: the port the client asked for), on lo:\n",
        );
    }
    for r in &plan.table.allows {
        let who: Vec<String> = r.uids.iter().map(|a| a.label()).collect();
        let _ = writeln!(
            out,
            "    {} port {} only for uids {}{}",
            r.proto.as_str(),
            r.port,
            who.join(", "),
            match (r.limit, r.limited_uids().is_empty()) {
                (Some(l), false) => format!(
                    "; uids {} at most {l} connections at once each (root and owners are never limited)",
                    r.limited_uids()
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                (Some(_), true) => "; no named user to limit (root and owners are never limited)".to_string(),
                (None, _) => String::new(),
            }
        );
    }
    out.push('\n');
}

fn sysctls(out: &mut String, plan: &Plan) {
    if plan.sysctls.is_empty() {
        out.push_str("sysctls: nothing to change\n");
    } else {
        out.push_str("sysctls:\n");
        for c in &plan.sysctls {
            let _ = writeln!(out, "  {} {} -> {}: {}", c.key, c.from, c.to, one_line(c.why));
        }
    }
    if plan.flush_route_cache {
        out.push_str("  then the route cache is flushed (a cached route keeps delivering to connected UDP sockets)\n");
    }
    kept(out, plan);
    for n in &plan.not_kept {
        let _ = writeln!(out, "  not kept: {}", one_line(&n.why));
    }
    out.push('\n');
}

/// One line per `route_localnet` key that stays on, naming every component that needs it and
/// what shows each one.
fn kept(out: &mut String, plan: &Plan) {
    let mut scopes: Vec<&Scope> = Vec::new();
    for k in &plan.kept {
        if !scopes.contains(&&k.scope) {
            scopes.push(&k.scope);
        }
    }
    for scope in scopes {
        let key = match scope {
            Scope::All => "net.ipv4.conf.all.route_localnet".to_string(),
            Scope::Interface(i) => format!("net.ipv4.conf.{i}.route_localnet"),
        };
        let needs: Vec<String> = plan
            .kept
            .iter()
            .filter(|k| &k.scope == scope)
            .map(|k| format!("{}: {}", k.component.name(), one_line(&k.evidence)))
            .collect();
        let _ = writeln!(
            out,
            "  kept on: {key}, needed by {}; the raw drop of 127.0.0.0/8 covers the LAN side instead",
            needs.join("; ")
        );
    }
}

fn verification(out: &mut String, plan: &Plan) {
    out.push_str("verified with the firewall evaluator (this snapshot plus the planned table):\n");
    for p in &plan.proofs {
        let verdict = match p.verdict {
            Verdict::Blocked => "blocked",
            Verdict::Open => "OPEN",
            Verdict::Unknown => "UNKNOWN",
        };
        let _ = writeln!(out, "  {verdict:<8} {}", one_line(&p.path.to_string()));
        let shown = if p.verdict == Verdict::Blocked {
            1
        } else {
            p.evidence.len()
        };
        for e in p.evidence.iter().take(shown) {
            let _ = writeln!(out, "           · {}", one_line(e));
        }
    }
    if !plan.verified() {
        out.push_str(
            "  NOT CONFIRMED: the evaluator does not answer \"blocked\" for every path above; the plan will not be applied\n",
        );
    }
    out.push('\n');
}

fn findings(out: &mut String, plan: &Plan) {
    if plan.findings.is_empty() {
        out.push_str("findings: none open\n");
        return;
    }
    out.push_str("findings:\n");
    for d in &plan.findings {
        let on = d.service.as_deref().unwrap_or("host-wide");
        let (word, detail) = match &d.outcome {
            Outcome::Closed { by } if by.is_empty() => ("CLOSED", "by the planned state".to_string()),
            Outcome::Closed { by } => ("CLOSED", format!("by {}", by.join(", "))),
            Outcome::Restricted { to } => ("RESTRICTED", format!("only uids {} may connect", to.join(", "))),
            // Left as it is and undecided: never shown as if it were known to be open or closed.
            Outcome::LeftOpen { why } if d.after == After::Unknown => ("UNKNOWN", why.clone()),
            Outcome::LeftOpen { why } => ("OPEN", why.clone()),
        };
        let _ = writeln!(
            out,
            "  {word:<10} {} [{} · {}]\n             {}",
            one_line(&d.title),
            d.check,
            one_line(on),
            one_line(&detail)
        );
    }
}
