//! The report as Prometheus metrics in the text exposition format that node_exporter's textfile
//! collector reads: every series once, no timestamps (the collector refuses them), values that
//! let an alert say "a path opened" without parsing the report.
//!
//! Every series carries the audited network namespace as its first label, `netns`, so that the
//! files of several namespaces (or hosts) in one textfile directory never hold the same series —
//! node_exporter drops every file of a scrape that repeats one. Every count is a gauge (it goes
//! down when a path closes); statuses, severities, scopes and checks are labels whose values are
//! the schema's fixed sets, each present with its zero, so that a series never vanishes:
//!
//! - `loopwarden_findings{check,status}`: findings of each check with each status (`open`,
//!   `unknown`, `blocked` — never summed: an unknown path is neither open nor closed);
//! - `loopwarden_findings_by_severity{severity,status}`: the same findings by severity;
//! - `loopwarden_findings_failing{threshold}`: what `--fail-on THRESHOLD` counts — findings at or
//!   above it whose status is open or unknown;
//! - `loopwarden_services{scope}`: local services by how they are bound;
//! - `loopwarden_limits`, `loopwarden_privileged`: what the audit could not see;
//! - `loopwarden_audit_duration_seconds`, `loopwarden_audit_timestamp_seconds`: the run itself;
//! - `loopwarden_info{version}`: constant 1, carrying the version.
//!
//! Extra families (the harden table's drop counters) are passed in by the caller as
//! [`Family`]s, so that this renderer stays about the format; they get the `netns` label too.

use super::{Report, Scope, Severity, Status};
use crate::checks::CheckId;
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
    let mut out = String::new();
    for family in &families(report, run, extra) {
        write_family(&mut out, family);
    }
    out
}

/// The families of `report` (and `extra`), every series labelled first with the audited
/// namespace (`netns`): what [`render`] writes, for a caller that puts several reports in one
/// file ([`render_merged`]).
pub fn families(report: &Report, run: RunInfo, extra: &[Family]) -> Vec<Family> {
    let mut families = vec![findings(report), by_severity(report), failing(report), services(report)];
    families.push(single(
        "loopwarden_limits",
        "Number of limit lines in the report: things the audit could not see (an unprivileged run, a \
         firewall or a daemon's configuration that could not be read). Above 0, findings may be missing.",
        report.host.limits.len() as f64,
    ));
    families.push(single(
        "loopwarden_privileged",
        "1 when the audit saw every socket's owner (root), 0 when it ran unprivileged and saw only part.",
        if report.host.privileged { 1.0 } else { 0.0 },
    ));
    families.push(single(
        "loopwarden_audit_duration_seconds",
        "How long the audit that wrote this file took, in seconds.",
        run.duration_seconds,
    ));
    families.push(single(
        "loopwarden_audit_timestamp_seconds",
        "When the audit that wrote this file finished, in seconds since the Unix epoch (alert when it stops moving).",
        run.finished_at,
    ));
    families.push(Family {
        name: "loopwarden_info".into(),
        help: "Constant 1; the version label says which loopwarden wrote this file.".into(),
        kind: "gauge",
        series: vec![(vec![("version".into(), report.tool_version.clone())], 1.0)],
    });
    families.extend(extra.iter().cloned());
    label_first(&mut families, "netns", &report.host.netns);
    families
}

/// Puts the label `key="value"` first on every series of `families` (a fleet's host, before the
/// namespace).
pub fn label_first(families: &mut [Family], key: &str, value: &str) {
    for family in families {
        for (labels, _) in &mut family.series {
            labels.insert(0, (key.to_string(), value.to_string()));
        }
    }
}

/// Several reports' families in one file — a host's namespaces, a fleet's hosts: each family's
/// HELP and TYPE once, in the order first seen, followed by the series of every part in order
/// (node_exporter refuses a file that declares a family twice). The parts' labels must tell their
/// series apart (`netns`, `host`).
pub fn render_merged(parts: Vec<Vec<Family>>) -> String {
    let mut merged: Vec<Family> = Vec::new();
    for family in parts.into_iter().flatten() {
        match merged.iter_mut().find(|m| m.name == family.name) {
            Some(m) => m.series.extend(family.series),
            None => merged.push(family),
        }
    }
    let mut out = String::new();
    for family in &merged {
        write_family(&mut out, family);
    }
    out
}

/// A family of one unlabelled gauge (the `netns` label is added to every series).
fn single(name: &str, help: &str, value: f64) -> Family {
    Family {
        name: name.into(),
        help: help.into(),
        kind: "gauge",
        series: vec![(Vec::new(), value)],
    }
}

/// Every status, in the order the series are written.
const STATUSES: [Status; 3] = [Status::Open, Status::Unknown, Status::Blocked];

/// Findings counted by check and status: every check of the catalogue with every status (zero
/// when none), so that a series does not vanish when a path closes.
fn findings(report: &Report) -> Family {
    let mut series = Vec::new();
    for id in CheckId::ALL {
        for status in STATUSES {
            let n = report
                .findings
                .iter()
                .filter(|f| f.check == *id && f.status == status)
                .count();
            series.push((
                vec![
                    ("check".into(), id.as_str().to_string()),
                    ("status".into(), status.as_str().to_string()),
                ],
                n as f64,
            ));
        }
    }
    Family {
        name: "loopwarden_findings".into(),
        help: "Findings of the last audit by check id and status: open (the path exists), unknown (could not \
               be decided: not safe) or blocked (a rule or setting stops it). Each status is counted on its own."
            .into(),
        kind: "gauge",
        series,
    }
}

/// Findings counted by severity and status, every pair present.
fn by_severity(report: &Report) -> Family {
    let mut series = Vec::new();
    for severity in Severity::ALL {
        for status in STATUSES {
            let n = report
                .findings
                .iter()
                .filter(|f| f.severity == severity && f.status == status)
                .count();
            series.push((
                vec![
                    ("severity".into(), severity.as_str().to_string()),
                    ("status".into(), status.as_str().to_string()),
                ],
                n as f64,
            ));
        }
    }
    Family {
        name: "loopwarden_findings_by_severity".into(),
        help: "Findings of the last audit by severity (info, low, medium, high, critical) and status (open, \
               unknown, blocked)."
            .into(),
        kind: "gauge",
        series,
    }
}

fn failing(report: &Report) -> Family {
    Family {
        name: "loopwarden_findings_failing".into(),
        help: "Findings that make `loopwarden audit --fail-on THRESHOLD` exit 1: severity at or above the \
               threshold and status open or unknown (an unknown path is never counted as safe); blocked ones \
               are not counted."
            .into(),
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
        help: "Local services (listening TCP, bound UDP, named Unix sockets) by how they are bound: loopback, \
               wildcard, address, unix-path, unix-abstract."
            .into(),
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
/// backslash, as the format has no other escape). So that such text never reads as a name that
/// really has those characters, a backslash of the name is itself shown doubled (the value read
/// back is `back\\slash` for `back\slash`, as the human report shows it): two names never share
/// a label.
pub fn escape_label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\\\\\"),
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

    const RUN: RunInfo = RunInfo {
        duration_seconds: 0.25,
        finished_at: 1_800_000_000.0,
    };

    fn exposed(netns: &str) -> Report {
        let mut facts = crate::checks::test_facts::base();
        facts.host.netns = netns.into();
        facts
            .sysctls
            .0
            .insert("net.ipv4.conf.all.route_localnet".into(), "1".into());
        facts.inet_sockets.push(crate::checks::test_facts::inet(
            crate::facts::Protocol::Tcp,
            "127.0.0.1",
            7001,
        ));
        crate::audit(&facts)
    }

    /// The series (name and labels) of every sample line.
    fn series(text: &str) -> Vec<&str> {
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.rsplit_once(' ').map_or(l, |(series, _)| series))
            .collect()
    }

    #[test]
    fn every_series_is_unique_and_hostile_labels_stay_on_their_line() {
        let text = render(
            &exposed("net:[1]\"\n# TYPE evil gauge\r\u{1b}[2J\u{7f}\u{9b}\u{202e}"),
            RUN,
            &[],
        );
        let mut names = series(&text);
        let total = names.len();
        names.sort_unstable();
        names.dedup();
        assert_eq!(
            names.len(),
            total,
            "a duplicated series makes node_exporter drop the file:\n{text}"
        );
        assert!(!text.lines().any(|l| l.starts_with("# TYPE evil")), "{text}");
        assert!(!text.chars().any(|c| c.is_control() && c != '\n'), "{text:?}");
        assert!(
            text.contains(
                r#"loopwarden_audit_duration_seconds{netns="net:[1]\"\n# TYPE evil gauge\\x0d\\x1b[2J\\x7f\\u{9b}\\u{202e}"} 0.25"#
            ),
            "{text}"
        );
    }

    #[test]
    fn every_series_names_its_namespace_so_two_namespaces_never_collide() {
        let a = render(&exposed("net:[4026531840]"), RUN, &[]);
        let b = render(&exposed("net:[4026532999] (web)"), RUN, &[]);
        for text in [&a, &b] {
            assert!(
                series(text).iter().all(|s| s.contains("{netns=\"net:[")),
                "every series starts with the netns label:\n{text}"
            );
        }
        let both: Vec<&str> = series(&a).into_iter().chain(series(&b)).collect();
        let mut unique = both.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), both.len(), "one textfile directory holds both files");
    }

    #[test]
    fn a_control_character_and_its_spelling_never_share_a_label() {
        assert_ne!(escape_label("x\u{1b}y"), escape_label("x\\x1by"));
        assert_eq!(escape_label("back\\slash"), "back\\\\\\\\slash");
    }

    #[test]
    fn merged_reports_declare_each_family_once_and_keep_every_series() {
        let mut a = families(&exposed("net:[1]"), RUN, &[]);
        let mut b = families(&exposed("net:[1]"), RUN, &[]);
        label_first(&mut a, "host", "web-1");
        label_first(&mut b, "host", "web-2");
        let alone = render(&exposed("net:[1]"), RUN, &[]);
        let text = render_merged(vec![a, b]);
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let mut unique = types.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), types.len(), "a family declared twice:\n{text}");
        assert_eq!(types.len(), alone.lines().filter(|l| l.starts_with("# TYPE ")).count());
        let all = series(&text);
        assert_eq!(all.len(), 2 * series(&alone).len(), "{text}");
        let mut distinct = all.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), all.len(), "{text}");
        assert!(
            text.contains(r#"loopwarden_privileged{host="web-2",netns="net:[1]"}"#),
            "{text}"
        );
        // Every family's series follow its own HELP and TYPE lines.
        let mut current = "";
        for line in text.lines() {
            match line.strip_prefix("# TYPE ") {
                Some(rest) => current = rest.split(' ').next().unwrap_or(""),
                None if !line.starts_with('#') => assert!(
                    line.split(['{', ' ']).next() == Some(current),
                    "{line} outside its family {current}"
                ),
                None => {}
            }
        }
    }

    #[test]
    fn statuses_are_counted_apart_with_every_label_value_present() {
        let mut report = exposed("n");
        // An open route_localnet finding, and the same check unknown: never added together.
        report.findings.retain(|f| f.check == CheckId::NetRouteLocalnet);
        report.findings[0].status = Status::Open;
        report.findings[0].severity = Severity::Critical;
        report.host.privileged = true;
        let mut unknown = report.findings[0].clone();
        unknown.status = Status::Unknown;
        report.findings.push(unknown);
        let text = render(&report, RUN, &[]);
        let value = |series: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
                .unwrap_or_else(|| panic!("no {series}:\n{text}"))
                .to_string()
        };
        let route = |status: &str| {
            value(&format!(
                r#"loopwarden_findings{{netns="n",check="net.route-localnet",status="{status}"}}"#
            ))
        };
        assert_eq!(
            (route("open"), route("unknown"), route("blocked")),
            ("1".into(), "1".into(), "0".into())
        );
        // Every check and status is a series, zero or not; so is every severity and status.
        assert_eq!(
            text.lines().filter(|l| l.starts_with("loopwarden_findings{")).count(),
            CheckId::ALL.len() * 3
        );
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("loopwarden_findings_by_severity{"))
                .count(),
            Severity::ALL.len() * 3
        );
        assert_eq!(
            value(r#"loopwarden_findings_failing{netns="n",threshold="critical"}"#),
            "2"
        );
        assert_eq!(value(r#"loopwarden_privileged{netns="n"}"#), "1");
        // Only the schema's label values: a bounded set of series.
        for line in text.lines().filter(|l| l.starts_with("loopwarden_findings")) {
            let labelled = |key: &str, allowed: &[&str]| {
                line.split(&format!("{key}=\""))
                    .nth(1)
                    .is_none_or(|rest| allowed.iter().any(|v| rest.starts_with(&format!("{v}\""))))
            };
            assert!(labelled("status", &["open", "unknown", "blocked"]), "{line}");
            assert!(
                labelled("severity", &["info", "low", "medium", "high", "critical"]),
                "{line}"
            );
        }
    }

    #[test]
    fn counts_are_gauges_and_each_family_says_what_it_counts() {
        let text = render(&exposed("n"), RUN, &[]);
        for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
            assert!(line.ends_with(" gauge"), "{line}");
        }
        for line in text.lines().filter(|l| l.starts_with("# HELP ")) {
            assert!(line.len() > 50, "a HELP that explains: {line}");
        }
    }
}
