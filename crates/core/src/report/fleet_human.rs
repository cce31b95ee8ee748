//! The fleet for a terminal: a summary, the hosts × checks table, the worst paths, and how to
//! get one host's detail.

use crate::fleet::{CheckCell, Fleet, FleetHost};
use crate::report::Status;
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
        "loopwarden fleet: {} hosts — {} with open paths, {} with unknown ones, {} unusable snapshots",
        fleet.hosts.len(),
        with(&|h| h.counts.open > 0),
        with(&|h| h.counts.open == 0 && h.counts.unknown > 0),
        with(&|h| h.error.is_some()),
    );
    matrix(&mut out, fleet);
    paths(&mut out, fleet);
    let _ = writeln!(out, "\none host's detail: {detail_hint}");
    out
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
    let _ = write!(out, "{:<width$}  {:<16}", "host", "worst");
    for i in 1..=fleet.checks.len() {
        let _ = write!(out, " {:>4}", format!("[{i}]"));
    }
    let _ = writeln!(out);
    for (host, name) in fleet.hosts.iter().zip(&names) {
        let worst = match (&host.error, host.worst) {
            (Some(_), _) => "UNUSABLE".to_string(),
            (None, Some(w)) => format!("{} {}", w.severity, w.status.as_str()),
            (None, None) => "clean".to_string(),
        };
        let _ = write!(out, "{:<width$}  {:<16}", truncate(name, width), worst);
        for check in &fleet.checks {
            let _ = write!(out, " {:>4}", cell(host.checks.iter().find(|c| c.check == *check)));
        }
        let _ = writeln!(out);
        if let Some(e) = &host.error {
            let _ = writeln!(out, "{:width$}  {}", "", printable(e));
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
    if fleet.worst_paths.len() > PATHS_SHOWN {
        let _ = writeln!(
            out,
            "  … {} more (--format json or html lists them all)",
            fleet.worst_paths.len() - PATHS_SHOWN
        );
    }
}

/// Host text for a terminal: control characters (an escape sequence in a file name or a
/// process name) spelled out.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                format!("\\u{{{:x}}}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
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
    use crate::fleet::FleetHost;

    #[test]
    fn names_each_host_its_cells_and_the_worst_path() {
        let kube = crate::fleet::tests::exposed();
        let fleet = Fleet::assemble(vec![
            FleetHost::audit("kube\u{1b}[2J".into(), "k.json".into(), Ok(kube)),
            FleetHost::audit("quiet".into(), "q.json".into(), Ok(crate::checks::test_facts::base())),
            FleetHost::audit("gone".into(), "g.json".into(), Err("truncated".into())),
        ]);
        let text = render(&fleet, "loopwarden fleet DIR --host HOST");
        assert!(
            text.starts_with("loopwarden fleet: 3 hosts — 1 with open paths"),
            "{text}"
        );
        assert!(text.contains("kube\\u{1b}[2J"), "{text}");
        assert!(!text.contains('\u{1b}'));
        assert!(
            text.contains("gone") && text.contains("UNUSABLE") && text.contains("truncated"),
            "{text}"
        );
        assert!(text.contains("net.route-localnet"), "{text}");
        let worst = text.lines().skip_while(|l| *l != "worst paths").nth(1).expect("a path");
        assert!(worst.contains("kube") && worst.contains("open"), "{worst}");
    }
}
