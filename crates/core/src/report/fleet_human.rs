//! The fleet for a terminal: a summary, the hosts × checks table, the worst paths, and how to
//! get one host's detail.

use crate::fleet::{age_shown, CheckCell, Fleet, FleetHost};
use crate::report::{shown, Status};
use std::fmt::Write;

/// How many of the worst paths the terminal shows (JSON and HTML have them all).
pub const PATHS_SHOWN: usize = 25;

/// Renders `fleet`; `detail_hint` is the command that prints one host's report, with `HOST`
/// where its name goes.
pub fn render(fleet: &Fleet, detail_hint: &str) -> String {
    let mut out = String::new();
    let with = |f: &dyn Fn(&FleetHost) -> bool| fleet.hosts.iter().filter(|h| f(h)).count();
    let _ = writeln!(
        out,
        "loopwarden fleet: {} hosts — {} with open paths, {} with unknown ones, {} unusable snapshots, \
         {} stale (older than {}), {} incomplete (unprivileged or with limits)",
        fleet.hosts.len(),
        with(&|h| h.counts.open > 0),
        with(&|h| h.counts.open == 0 && h.counts.unknown > 0),
        with(&|h| h.error.is_some()),
        with(&|h| h.stale),
        age_shown(fleet.stale_after_seconds),
        with(&|h| h.error.is_none() && h.incomplete),
    );
    matrix(&mut out, fleet);
    paths(&mut out, fleet);
    skipped(&mut out, fleet);
    let _ = writeln!(out, "\none host's detail: {detail_hint}");
    out
}

/// What the "worst" column says of a host: never `clean` for a host whose snapshot could not
/// see everything.
pub fn state(host: &FleetHost) -> String {
    match (&host.error, host.worst) {
        (Some(_), _) => "UNUSABLE".to_string(),
        (None, Some(w)) => format!("{} {}", w.severity, w.status.as_str()),
        (None, None) if host.incomplete => "incomplete".to_string(),
        (None, None) => "clean".to_string(),
    }
}

/// How old a host's snapshot is, and `STALE` when too old (or of unknown age).
pub fn age(host: &FleetHost) -> String {
    let age = host.age_seconds.map_or_else(|| "?".to_string(), age_shown);
    match (host.error.is_some(), host.stale) {
        (true, _) => "-".to_string(),
        (false, true) => format!("{age} STALE"),
        (false, false) => age,
    }
}

/// A cell: `3!` three open, `2?` two unknown (none open), `b` blocked only, `.` nothing.
fn cell(c: Option<&CheckCell>) -> String {
    match c.map(|c| c.counts) {
        Some(n) if n.open > 0 => format!("{}!", n.open),
        Some(n) if n.unknown > 0 => format!("{}?", n.unknown),
        Some(n) if n.blocked > 0 => "b".into(),
        _ => ".".into(),
    }
}

fn matrix(out: &mut String, fleet: &Fleet) {
    let names: Vec<String> = fleet.hosts.iter().map(|h| printable(&h.name)).collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(4).clamp(4, 40);
    let _ = writeln!(out, "\nhosts × checks (N! open, N? unknown, b blocked only, . none)");
    let _ = write!(out, "{:<width$}  {:<16} {:<10}", "host", "worst", "age");
    for i in 1..=fleet.checks.len() {
        let _ = write!(out, " {:>4}", format!("[{i}]"));
    }
    let _ = writeln!(out);
    for (host, name) in fleet.hosts.iter().zip(&names) {
        let _ = write!(
            out,
            "{:<width$}  {:<16} {:<10}",
            truncate(name, width),
            state(host),
            age(host)
        );
        for check in &fleet.checks {
            let _ = write!(out, " {:>4}", cell(host.checks.iter().find(|c| c.check == *check)));
        }
        let _ = writeln!(out);
        if let Some(e) = &host.error {
            let _ = writeln!(out, "{:width$}  {}", "", printable(e));
        } else if host.incomplete {
            let mut why = Vec::new();
            if host.privileged == Some(false) {
                why.push("taken without root: socket owners partly unseen".to_string());
            }
            if host.limits > 0 {
                why.push(format!("{} limit(s): see its report", host.limits));
            }
            let _ = writeln!(out, "{:width$}  incomplete: {}", "", why.join("; "));
        }
    }
    for (i, check) in fleet.checks.iter().enumerate() {
        let _ = writeln!(out, "  [{}] {check}", i + 1);
    }
}

fn paths(out: &mut String, fleet: &Fleet) {
    if fleet.worst_paths.is_empty() {
        let _ = writeln!(out, "\nno open or unknown path on any host");
        return;
    }
    let _ = writeln!(out, "\nworst paths");
    for p in fleet.worst_paths.iter().take(PATHS_SHOWN) {
        let status = match p.status {
            Status::Open => "open",
            _ => "unknown",
        };
        let _ = writeln!(
            out,
            "  {:<8} {:<7} {:<9} {}  {}  {} — {}",
            p.severity.as_str().to_uppercase(),
            status,
            p.confidence.as_str(),
            printable(&p.host),
            p.check,
            p.service.as_deref().map_or("host-wide".into(), printable),
            printable(&p.title)
        );
    }
    let shown = fleet.worst_paths.len().min(PATHS_SHOWN);
    if fleet.paths_total > shown {
        let _ = writeln!(
            out,
            "  … {} more (--format json or html lists the worst {}; each host's report has its own)",
            fleet.paths_total - shown,
            fleet.worst_paths.len()
        );
    }
}

fn skipped(out: &mut String, fleet: &Fleet) {
    if fleet.skipped.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nnot read ({})", fleet.skipped.len());
    for s in &fleet.skipped {
        let _ = writeln!(out, "  {}: {}", printable(&s.path), printable(&s.reason));
    }
}

/// Host text for a terminal: escaped as every report escapes it ([`shown::line`]: control and
/// format characters spelled out, backslashes doubled) and bounded.
fn printable(text: &str) -> String {
    shown::line(text).into_owned()
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let mut t: String = text.chars().take(width - 1).collect();
        t.push('…');
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::tests::{base_read, exposed, fleet_of, NOW};
    use crate::fleet::Skipped;

    #[test]
    fn names_each_host_its_cells_and_the_worst_path() {
        let fleet = fleet_of(
            vec![
                ("kube\u{1b}[2J", Ok(exposed())),
                ("quiet", Ok(base_read())),
                ("gone", Err("truncated")),
            ],
            NOW - 7200,
        );
        let text = render(&fleet, "loopwarden fleet DIR --host HOST");
        assert!(
            text.starts_with("loopwarden fleet: 3 hosts — 1 with open paths"),
            "{text}"
        );
        assert!(text.contains("kube\\x1b[2J"), "{text}");
        assert!(!text.contains('\u{1b}'));
        assert!(
            text.contains("gone") && text.contains("UNUSABLE") && text.contains("truncated"),
            "{text}"
        );
        assert!(text.contains("net.route-localnet"), "{text}");
        let quiet = text.lines().find(|l| l.starts_with("quiet")).expect("quiet row");
        assert!(quiet.contains("clean") && quiet.contains(" 2h "), "{quiet}");
        let worst = text.lines().skip_while(|l| *l != "worst paths").nth(1).expect("a path");
        assert!(worst.contains("kube") && worst.contains("open"), "{worst}");
    }

    #[test]
    fn stale_incomplete_and_skipped_are_said_never_clean() {
        let mut unprivileged = base_read();
        unprivileged.host.privileged = false;
        let mut fleet = fleet_of(
            vec![("old", Ok(base_read())), ("unpriv", Ok(unprivileged))],
            NOW - 3 * 86_400,
        );
        fleet.skipped.push(Skipped {
            path: "snaps/link.json".into(),
            reason: "a symbolic link: not followed in a directory".into(),
        });
        let text = render(&fleet, "hint");
        let row = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("{name}: {text}"))
        };
        assert!(
            row("old").contains("3d STALE") && row("old").contains("clean"),
            "{text}"
        );
        assert!(
            row("unpriv").contains("incomplete") && !row("unpriv").contains("clean"),
            "{text}"
        );
        assert!(text.contains("incomplete: taken without root"), "{text}");
        assert!(text.contains("2 stale (older than 24h)"), "{text}");
        assert!(
            text.contains("snaps/link.json: a symbolic link: not followed in a directory"),
            "{text}"
        );
    }
}
