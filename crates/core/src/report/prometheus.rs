//! The report as Prometheus metrics in the text exposition format that node_exporter's textfile
//! collector reads: every series once, no timestamps (the collector refuses them), values that
//! let an alert say "a path opened" without parsing the report.
//!
//! - `loopwarden_findings{check,severity,status}`: how many findings of each kind;
//! - `loopwarden_findings_failing{threshold}`: findings that count against each severity
//!   threshold (open or unknown, at or above it) — what `--fail-on` would count;
//! - `loopwarden_services{scope}`: local services by how they are bound;
//! - `loopwarden_limits`: what the audit could not see (non-zero deserves a look);
//! - `loopwarden_audit_duration_seconds`, `loopwarden_audit_timestamp_seconds`: the run itself;
//! - `loopwarden_info{version,netns}`: constant 1, carrying the labels.
//!
//! Extra families (the harden table's drop counters) are passed in by the caller as
//! [`Family`]s, so that this renderer stays about the format.

use super::{Report, Scope, Severity, Status};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One metric family: a name, its help and type, and its series (label pairs → value).
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The metric name (`loopwarden_…`).
    pub name: String,
    /// One line of help.
    pub help: String,
    /// `gauge` or `counter`.
    pub kind: &'static str,
    /// Each series: its labels in order, and its value.
    pub series: Vec<(Vec<(String, String)>, f64)>,
}

/// What else a run knows about itself.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunInfo {
    /// How long the audit took, seconds.
    pub duration_seconds: f64,
    /// When it finished, seconds since the epoch.
    pub finished_at: f64,
}

/// Renders `report` (and `extra` families) in the text exposition format.
pub fn render(report: &Report, run: RunInfo, extra: &[Family]) -> String {
    let mut families = vec![findings(report), failing(report), services(report)];
    families.push(single(
        "loopwarden_limits",
        "What the audit could not see (unprivileged run, missing tools …): each is a limit line of the report.",
        "gauge",
        report.host.limits.len() as f64,
    ));
    families.push(single(
        "loopwarden_audit_duration_seconds",
        "How long the audit took.",
        "gauge",
        run.duration_seconds,
    ));
    families.push(single(
        "loopwarden_audit_timestamp_seconds",
        "When the audit finished, seconds since the Unix epoch.",
        "gauge",
        run.finished_at,
    ));
    families.push(Family {
        name: "loopwarden_info".into(),
        help: "Constant 1; the labels say which loopwarden audited which network namespace.".into(),
        kind: "gauge",
        series: vec![(
            vec![
                ("version".into(), report.tool_version.clone()),
                ("netns".into(), report.host.netns.clone()),
            ],
            1.0,
        )],
    });
    families.extend(extra.iter().cloned());
    let mut out = String::new();
    for family in &families {
        write_family(&mut out, family);
    }
    out
}

fn single(name: &str, help: &str, kind: &'static str, value: f64) -> Family {
    Family {
        name: name.into(),
        help: help.into(),
        kind,
        series: vec![(Vec::new(), value)],
    }
}

/// Findings counted by check, severity and status; every check appears with each status it can
/// have (zero when none), so that a series does not vanish when a path closes.
fn findings(report: &Report) -> Family {
    let mut counts: BTreeMap<(String, &'static str, &'static str), f64> = BTreeMap::new();
    for f in &report.findings {
        *counts
            .entry((f.check.to_string(), f.severity.as_str(), f.status.as_str()))
            .or_insert(0.0) += 1.0;
    }
    for spec in crate::checks::ALL.iter().map(|c| c.spec) {
        for status in [Status::Open, Status::Unknown] {
            let seen = counts
                .keys()
                .any(|(check, _, s)| *check == spec.id.as_str() && *s == status.as_str());
            if !seen {
                counts.insert((spec.id.to_string(), "none", status.as_str()), 0.0);
            }
        }
    }
    Family {
        name: "loopwarden_findings".into(),
        help: "Findings of the last audit by check id, severity and status (open, unknown, blocked); \
               severity \"none\" holds the zero of a check without findings."
            .into(),
        kind: "gauge",
        series: counts
            .into_iter()
            .map(|((check, severity, status), n)| {
                (
                    vec![
                        ("check".into(), check),
                        ("severity".into(), severity.into()),
                        ("status".into(), status.into()),
                    ],
                    n,
                )
            })
            .collect(),
    }
}

fn failing(report: &Report) -> Family {
    Family {
        name: "loopwarden_findings_failing".into(),
        help: "Findings open or unknown at or above each severity threshold (what --fail-on counts).".into(),
        kind: "gauge",
        series: Severity::ALL
            .iter()
            .map(|s| {
                (
                    vec![("threshold".into(), s.as_str().to_string())],
                    report.failing(*s).count() as f64,
                )
            })
            .collect(),
    }
}

fn services(report: &Report) -> Family {
    let scopes = [
        Scope::Loopback,
        Scope::Wildcard,
        Scope::Address,
        Scope::UnixPath,
        Scope::UnixAbstract,
    ];
    Family {
        name: "loopwarden_services".into(),
        help: "Local services by how they are bound.".into(),
        kind: "gauge",
        series: scopes
            .iter()
            .map(|scope| {
                let n = report.services.iter().filter(|s| s.scope == *scope).count();
                (vec![("scope".into(), scope.as_str().to_string())], n as f64)
            })
            .collect(),
    }
}

fn write_family(out: &mut String, family: &Family) {
    let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(&family.help));
    let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
    for (labels, value) in &family.series {
        out.push_str(&family.name);
        if !labels.is_empty() {
            let pairs: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(out, "{{{}}}", pairs.join(","));
        }
        let _ = writeln!(out, " {}", format_value(*value));
    }
}

/// A sample value: integers without a fraction, others as Rust prints them (both are valid Go
/// float syntax).
fn format_value(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// HELP text escapes backslash and newline.
fn escape_help(text: &str) -> String {
    text.replace('\\', "\\\\").replace('\n', "\\n")
}

/// Label values escape backslash, double quote and newline (the exposition format's three
/// escapes); they come from the host or a snapshot (a network namespace's name, an interface) and
/// must not break the line or reach a terminal raw. Any other control character, and the
/// direction overrides that reorder text, become visible text (`\\x1b`, `\\u{202e}`: an escaped
/// backslash, as the format has no other escape).
pub fn escape_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x80 && c.is_control() => out.push_str(&format!("\\\\x{:02x}", c as u32)),
            c if c.is_control()
                || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                out.push_str(&format!("\\\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_is_unique_and_hostile_labels_stay_on_their_line() {
        let mut facts = crate::checks::test_facts::base();
        facts.host.netns = "net:[1]\"\n# TYPE evil gauge\r\u{1b}[2J\u{7f}\u{9b}\u{202e}".into();
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.all.route_localnet".into(), "1".into());
        facts.inet_sockets.push(crate::checks::test_facts::inet(
            crate::facts::Protocol::Tcp,
            "127.0.0.1",
            7001,
        ));
        let report = crate::audit(&facts);
        let text = render(
            &report,
            RunInfo {
                duration_seconds: 0.25,
                finished_at: 1_800_000_000.0,
            },
            &[],
        );
        let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
        let mut names: Vec<&str> = samples
            .iter()
            .map(|l| l.rsplit_once(' ').map(|(series, _)| series).unwrap_or(l))
            .collect();
        let total = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            total,
            "a duplicated series makes node_exporter drop the file:\n{text}"
        );
        assert!(text.contains("loopwarden_audit_duration_seconds 0.25\n"), "{text}");
        assert!(!text.lines().any(|l| l.starts_with("# TYPE evil")), "{text}");
        assert!(
            text.contains(r#"netns="net:[1]\"\n# TYPE evil gauge\\x0d\\x1b[2J\\x7f\\u{9b}\\u{202e}""#),
            "{text}"
        );
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        assert!(
            text.contains(r#"loopwarden_findings{check="net.route-localnet",severity="#),
            "{text}"
        );
        assert!(
            text.contains("loopwarden_findings_failing{threshold=\"low\"}"),
            "{text}"
        );
    }
}
