//! The terminal rendering of the whole-host report: the whole-host findings first, then one line
//! per namespace (who it is, how many services and findings), then the full audit of every
//! namespace that has findings, each as `loopwarden audit` would print it inside that namespace.
//!
//! Container names, images and process names come from the host's processes and runtime state:
//! like everything a report prints, they go through [`super::shown`] (escaped and bounded).

use super::shown::line;
use super::{human, Finding, HostFinding, HostReport, NamespaceReport, Report, Severity, Status};
use std::fmt::Write;

/// Renders the whole-host report; `color` adds ANSI colours (only on a terminal, without
/// `NO_COLOR`: the caller decides).
pub fn render(report: &HostReport, color: bool) -> String {
    let paint = |code: &str, text: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    };
    let mut out = String::new();
    let with_findings = report.namespaces.iter().filter(|n| open_count(&n.report) > 0).count();
    let _ = writeln!(
        out,
        "{} {} (kernel {}): {} network namespace{}, {with_findings} with findings{}",
        paint("1", "loopwarden audit of"),
        paint("1", &shown(&report.host.hostname)),
        shown(&report.host.kernel),
        report.namespaces.len(),
        plural(report.namespaces.len()),
        if report.host.privileged {
            ""
        } else {
            " — unprivileged: namespaces and socket owners partly unseen"
        }
    );
    for limit in &report.host.limits {
        let _ = writeln!(out, "  {}", paint("2", &format!("limit: {}", shown(limit))));
    }
    if !report.findings.is_empty() {
        let _ = writeln!(out, "\n{}", paint("1", "whole host"));
        for f in &report.findings {
            host_finding(&mut out, &paint, report, f);
        }
    }
    let _ = writeln!(out, "\n{}", paint("1", "namespaces"));
    for n in &report.namespaces {
        let _ = writeln!(
            out,
            "  {:<18} {}  — {}",
            n.namespace.id,
            shown(&n.namespace.label()),
            counts(&n.report)
        );
    }
    for n in report.namespaces.iter().filter(|n| open_count(&n.report) > 0) {
        let _ = writeln!(
            out,
            "\n{}",
            paint("1", &format!("══ {} — {}", shown(&n.namespace.label()), n.namespace.id))
        );
        for line in identity_lines(n) {
            let _ = writeln!(out, "{}", paint("2", &line));
        }
        out.push_str(&human::render(&n.report, color));
        if !out.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// One whole-host finding.
fn host_finding(out: &mut String, paint: &dyn Fn(&str, &str) -> String, report: &HostReport, hf: &HostFinding) {
    let f: &Finding = &hf.finding;
    let code = match f.severity {
        Severity::Critical => "1;31",
        Severity::High => "31",
        Severity::Medium => "33",
        Severity::Low => "36",
        Severity::Info => "2",
    };
    let label = format!("{:<8}", f.severity.as_str().to_uppercase());
    let _ = writeln!(
        out,
        "  {} {}  {}",
        paint(code, &label),
        shown(&f.title),
        paint(
            "2",
            &format!(
                "[{} · {} · {} · {}]",
                f.check,
                f.attacker.as_str(),
                f.status.as_str(),
                f.confidence.as_str()
            )
        )
    );
    let who = report
        .namespace(&hf.netns)
        .map(|n| shown(&n.namespace.label()))
        .unwrap_or_default();
    let service = f
        .service
        .as_deref()
        .map(|s| format!(" · {}", shown(s)))
        .unwrap_or_default();
    let _ = writeln!(out, "           in {who} ({}){service}", hf.netns);
    for e in &f.evidence {
        let _ = writeln!(out, "           · {}", shown(e));
    }
    let _ = writeln!(out, "           fix: {}", shown(&f.fix));
}

/// Who the namespace is, beyond its label: names, mounts, containers, processes.
fn identity_lines(n: &NamespaceReport) -> Vec<String> {
    let id = &n.namespace;
    let mut lines = Vec::new();
    if !id.ip_netns.is_empty() {
        lines.push(format!("   ip netns: {}", shown(&id.ip_netns.join(", "))));
    }
    if !id.bind_mounts.is_empty() {
        let mounts: Vec<String> = id.bind_mounts.iter().map(|m| m.shown()).collect();
        lines.push(format!("   mounted at: {}", shown(&mounts.join(", "))));
    }
    for c in &id.containers {
        let mut parts = vec![
            c.runtime.as_str().to_string(),
            format!("id {}", c.id.chars().take(12).collect::<String>()),
        ];
        parts.extend(c.image.clone());
        parts.extend(c.pod.as_ref().map(|p| format!("pod {p}")));
        parts.extend(c.network_mode.as_ref().map(|m| format!("network mode {m}")));
        let role = if c.shares_namespace { "shares it" } else { "its own" };
        lines.push(format!(
            "   container {} ({}) — {role}",
            shown(&c.short_name()),
            shown(&parts.join(", "))
        ));
    }
    if let Some(m) = &id.machine {
        lines.push(format!("   machine: {}", shown(m)));
    }
    if id.process_count > 0 {
        let listed: Vec<String> = id
            .processes
            .iter()
            .map(|p| format!("{} (pid {}, uid {})", shown(&p.name), p.pid, p.uid))
            .collect();
        let more = id.process_count.saturating_sub(listed.len());
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        lines.push(format!("   processes: {}{more}", listed.join(", ")));
    }
    lines.push(format!("   /etc read from {}", shown(&id.etc_from)));
    lines
}

/// `3 services, 2 findings (1 high, 1 low)`.
fn counts(report: &Report) -> String {
    let by_severity: Vec<String> = Severity::ALL
        .iter()
        .rev()
        .filter_map(|s| {
            let n = report
                .findings
                .iter()
                .filter(|f| f.severity == *s && f.status != Status::Blocked)
                .count();
            (n > 0).then(|| format!("{n} {s}"))
        })
        .collect();
    let open = open_count(report);
    let mut line = format!(
        "{} service{}, {open} finding{}",
        report.services.len(),
        plural(report.services.len()),
        plural(open)
    );
    if !by_severity.is_empty() {
        let _ = write!(line, " ({})", by_severity.join(", "));
    }
    line
}

/// Findings that are not blocked.
fn open_count(report: &Report) -> usize {
    report.findings.iter().filter(|f| f.status != Status::Blocked).count()
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Text from the host, escaped and bounded for one line.
fn shown(text: &str) -> String {
    line(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_from_the_host_are_escaped() {
        assert_eq!(shown("web\x1b[2Jx\n"), "web\\x1b[2Jx\\n");
        assert_eq!(shown("plain name"), "plain name");
    }
}
