//! The terminal rendering: host-wide findings first, then each service with its process and the
//! findings about it (who can reach it, how, the evidence and the fix).

use super::{Finding, Report, Service, Severity, Status};
use std::fmt::Write;

/// ANSI styling, or none.
struct Style {
    color: bool,
}

impl Style {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn severity(&self, s: Severity) -> String {
        let label = format!("{:<8}", s.as_str().to_uppercase());
        let code = match s {
            Severity::Critical => "1;31",
            Severity::High => "31",
            Severity::Medium => "33",
            Severity::Low => "36",
            Severity::Info => "2",
        };
        self.paint(code, &label)
    }

    fn bold(&self, text: &str) -> String {
        self.paint("1", text)
    }

    fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// Renders the report for a terminal; `color` adds ANSI colours (the caller decides: only on a
/// TTY and without `NO_COLOR`).
pub fn render(report: &Report, color: bool) -> String {
    let style = Style { color };
    let mut out = String::new();
    let h = &report.host;
    let _ = writeln!(
        out,
        "{} {} (kernel {}, {}){}",
        style.bold("loopwarden audit of"),
        style.bold(&h.hostname),
        h.kernel,
        h.netns,
        if h.privileged {
            ""
        } else {
            " — unprivileged: some socket owners unseen"
        }
    );
    let _ = writeln!(out, "{}", summary(report));

    let host_wide: Vec<&Finding> = report.findings.iter().filter(|f| f.service.is_none()).collect();
    if !host_wide.is_empty() {
        let _ = writeln!(out, "\n{}", style.bold("host-wide"));
        for f in host_wide {
            finding(&mut out, &style, f);
        }
    }

    let mut quiet: Vec<&Service> = Vec::new();
    let mut with_findings: Vec<(&Service, Vec<&Finding>)> = report
        .services
        .iter()
        .filter_map(|s| {
            let fs: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|f| f.service.as_deref() == Some(s.id.as_str()))
                .collect();
            if fs.is_empty() {
                quiet.push(s);
                None
            } else {
                Some((s, fs))
            }
        })
        .collect();
    with_findings.sort_by_key(|(s, fs)| (std::cmp::Reverse(fs.iter().map(|f| f.severity).max()), s.id.clone()));
    for (service, findings) in with_findings {
        let _ = writeln!(
            out,
            "\n{}  {}",
            style.bold(&service.id),
            style.dim(&process_label(service))
        );
        for f in findings {
            finding(&mut out, &style, f);
        }
    }
    let orphans: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| {
            f.service
                .as_ref()
                .is_some_and(|id| !report.services.iter().any(|s| &s.id == id))
        })
        .collect();
    for f in orphans {
        let _ = writeln!(out, "\n{}", style.bold(f.service.as_deref().unwrap_or("")));
        finding(&mut out, &style, f);
    }
    if !quiet.is_empty() {
        let ids: Vec<String> = quiet
            .iter()
            .map(|s| format!("{} ({})", s.id, process_label(s)))
            .collect();
        let _ = writeln!(out, "\n{} {}", style.bold("no findings:"), ids.join(", "));
    }
    if !h.limits.is_empty() {
        let _ = writeln!(
            out,
            "\n{}",
            style.bold("not seen (results touching these are unknown):")
        );
        for l in &h.limits {
            let _ = writeln!(out, "  - {l}");
        }
    }
    out
}

fn summary(report: &Report) -> String {
    let counts: Vec<String> = Severity::ALL
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
    let blocked = report.findings.iter().filter(|f| f.status == Status::Blocked).count();
    let mut line = format!(
        "{} service{}, {} finding{}",
        report.services.len(),
        if report.services.len() == 1 { "" } else { "s" },
        report.findings.len() - blocked,
        if report.findings.len() - blocked == 1 { "" } else { "s" },
    );
    if !counts.is_empty() {
        let _ = write!(line, " ({})", counts.join(", "));
    }
    if blocked > 0 {
        let _ = write!(line, ", {blocked} blocked");
    }
    line
}

fn process_label(service: &Service) -> String {
    match &service.process {
        Some(p) => format!("{} pid {} uid {}", p.name, p.pid, p.uid),
        None => "process unknown".to_string(),
    }
}

fn finding(out: &mut String, style: &Style, f: &Finding) {
    let _ = writeln!(
        out,
        "  {} {}  {}",
        style.severity(f.severity),
        style.bold(&f.title),
        style.dim(&format!(
            "[{} · {} · {} · {}]",
            f.check,
            f.attacker.as_str(),
            f.status.as_str(),
            f.confidence.as_str()
        ))
    );
    for e in &f.evidence {
        let _ = writeln!(out, "           · {e}");
    }
    let _ = writeln!(out, "           {} {}", style.dim("fix:"), f.fix);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::test_facts::{base, inet};
    use crate::facts::Protocol;

    #[test]
    fn groups_by_service_and_lists_quiet_services() {
        let mut facts = base();
        facts.inet_sockets.push(inet(Protocol::Tcp, "127.0.0.1", 7001));
        facts.inet_sockets.push(inet(Protocol::Tcp, "::1", 7001));
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.all.route_localnet".into(), "1".into());
        facts.firewall.nft_json = Some(serde_json::json!({"nftables": [{"metainfo": {"json_schema_version": 1}}]}));
        let text = render(&crate::audit(&facts), false);
        let host = text.find("host-wide").expect("host-wide section");
        let svc = text
            .find("\ntcp:127.0.0.1:7001  svc pid 100 uid 1000")
            .expect("service header");
        assert!(host < svc, "{text}");
        assert!(
            text.contains("CRITICAL LAN neighbours can reach 127.0.0.0/8 services via eth0"),
            "{text}"
        );
        assert!(!text.contains('\x1b'));
        assert!(render(&crate::audit(&facts), true).contains("\x1b[1;31m"));
    }
}
