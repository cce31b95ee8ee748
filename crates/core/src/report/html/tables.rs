//! The tables under the map: every finding (with its evidence and fix, sortable and filterable
//! once the script runs) and every service (with its process and how many findings it has).
//! Without JavaScript they are plain tables and show everything.

use super::map::{status_rank, Paths, ATTACKERS};
use super::text::shown;
use super::Ids;
use crate::report::{Finding, Report, Severity, Status};
use maud::{html, Markup};

/// The findings table; `edge_of[k]` is the map edge of finding `k`.
pub fn findings(report: &Report, paths: &Paths, edge_of: &[usize], ids: &Ids) -> Markup {
    html! {
        div.filters hidden data-for=(ids.findings_table()) {
            label { "Severity at least "
                select data-filter="severity" {
                    option value="0" { "any" }
                    @for s in Severity::ALL.iter().skip(1) {
                        option value=(*s as u8) { (s.as_str()) }
                    }
                }
            }
            label { "Attacker "
                select data-filter="attacker" {
                    option value="" { "any" }
                    @for (a, name, _) in ATTACKERS { option value=(a.as_str()) { (name) } }
                }
            }
            label { "Status "
                select data-filter="status" {
                    option value="" { "any" }
                    @for s in [Status::Open, Status::Unknown, Status::Blocked] {
                        option value=(s.as_str()) { (s.as_str()) }
                    }
                }
            }
            output.shown {}
        }
        table.findings id=(ids.findings_table()) {
            thead { (findings_head()) }
            tbody {
                @for (k, f) in report.findings.iter().enumerate() {
                    (finding_row(f, k, edge_of.get(k).copied(), paths, ids))
                }
            }
        }
    }
}

/// The header of a findings table; the script makes the sortable columns' buttons work.
pub fn findings_head() -> Markup {
    html! {
        tr {
            th { button type="button" data-sort="severity" { "Severity" } }
            th { button type="button" data-sort="status" { "Status" } }
            th { button type="button" data-sort="confidence" { "Confidence" } }
            th { button type="button" data-sort="attacker" { "Attacker" } }
            th { button type="button" data-sort="check" { "Check" } }
            th { button type="button" data-sort="service" { "Service" } }
            th { "What, the evidence and the fix" }
        }
    }
}

fn finding_row(f: &Finding, k: usize, edge: Option<usize>, paths: &Paths, ids: &Ids) -> Markup {
    let node = edge.map(|e| paths.edges[e].node);
    let attacker = ATTACKERS
        .iter()
        .find(|(a, _, _)| *a == f.attacker)
        .map_or(f.attacker.as_str(), |(_, name, _)| name);
    html! {
        tr.finding id=(ids.finding(k)) data-severity=(f.severity as u8) data-status=(f.status.as_str())
            data-status-rank=(status_rank(f.status)) data-confidence=(f.confidence as u8)
            data-attacker=(f.attacker.as_str()) data-check=(f.check.as_str())
            data-service=(shown(f.service.as_deref().unwrap_or("")))
            data-edge=[edge] data-node=[node] {
            td { span class=(format!("sev sev-{}", f.severity.as_str())) { (f.severity.as_str()) } }
            td { span class=(format!("status status-{}", f.status.as_str())) { (f.status.as_str()) } }
            td { (f.confidence.as_str()) }
            td { (attacker) }
            td { code { (f.check.as_str()) } }
            td {
                @match (&f.service, node) {
                    (Some(id), Some(n)) => a href=(format!("#{}", ids.service_row(n))) { code { (shown(id)) } },
                    (Some(id), None) => code { (shown(id)) },
                    (None, _) => "host-wide",
                }
            }
            td.what {
                p.title { (shown(&f.title)) }
                @if !f.evidence.is_empty() {
                    ul.evidence { @for e in &f.evidence { li { (shown(e)) } } }
                }
                @if !f.fix.is_empty() {
                    p.fix { strong { "Fix: " } (shown(&f.fix)) }
                }
            }
        }
    }
}

/// The services table: every service of the report, those with findings first (in the map's
/// order), then the quiet ones.
pub fn services(report: &Report, paths: &Paths, ids: &Ids) -> Markup {
    let quiet: Vec<_> = report
        .services
        .iter()
        .filter(|s| !paths.nodes.iter().any(|n| n.id == Some(s.id.as_str())))
        .collect();
    html! {
        table.services {
            thead { tr { th { "Service" } th { "Bound" } th { "Process" } th { "Findings" } } }
            tbody {
                @for (n, node) in paths.nodes.iter().enumerate() {
                    @let count = node.edges.iter().map(|e| paths.edges[*e].findings.len()).sum::<usize>();
                    tr id=(ids.service_row(n)) data-node=(n) {
                        td { code { (shown(node.id.unwrap_or("host-wide"))) } }
                        td { (node.service.map_or("—", |s| s.scope.as_str())) }
                        td { (process(node.service)) }
                        td { (count) }
                    }
                }
                @for s in quiet {
                    tr.quiet {
                        td { code { (shown(&s.id)) } }
                        td { (s.scope.as_str()) }
                        td { (process(Some(s))) }
                        td { "0" }
                    }
                }
            }
        }
    }
}

fn process(service: Option<&crate::report::Service>) -> Markup {
    match service.and_then(|s| s.process.as_ref()) {
        None => html! { "—" },
        Some(p) => html! {
            (shown(&p.name)) " (pid " (p.pid) ", uid " (p.uid) ")"
            @if let Some(exe) = &p.exe { br; code { (shown(exe)) } }
        },
    }
}
