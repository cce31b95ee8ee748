//! The tables under the map: every finding (with its evidence and fix; sortable and filterable
//! once the script runs) and every service, each with its paths and links to their findings.
//! Without JavaScript they are plain tables that show everything and link to each other: a map
//! node or edge leads to the service's row, which lists each path with a link to every finding
//! on it, and each finding links back to its services.

use super::map::{Paths, ATTACKERS};
use super::text::shown;
use super::Ids;
use crate::report::{Finding, Report, Severity, Status};
use maud::{html, Markup};

/// Evidence longer than this many lines is folded (an HTML `details`, which opens without
/// script).
const EVIDENCE_SHOWN: usize = 8;

/// The findings table.
pub fn findings(report: &Report, paths: &Paths, ids: &Ids) -> Markup {
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
                    (finding_row(f, k, paths, ids))
                }
            }
        }
    }
}

/// The header of a findings table. The columns that sort carry `data-sort`; the script makes
/// them buttons (without it they are plain headings, not controls that do nothing).
pub fn findings_head() -> Markup {
    html! {
        tr {
            th { "#" }
            th data-sort="severity" { "Severity" }
            th data-sort="status" { "Status" }
            th data-sort="confidence" { "Confidence" }
            th data-sort="attacker" { "Attacker" }
            th data-sort="check" { "Check" }
            th data-sort="service" { "Service" }
            th { "What, the evidence and the fix" }
        }
    }
}

/// A space-separated list of numbers, for a `data-` attribute the script splits.
fn numbers(list: impl Iterator<Item = usize>) -> String {
    list.map(|n| n.to_string()).collect::<Vec<_>>().join(" ")
}

fn finding_row(f: &Finding, k: usize, paths: &Paths, ids: &Ids) -> Markup {
    let edges: &[usize] = paths.edges_of.get(k).map_or(&[], Vec::as_slice);
    let mut nodes: Vec<usize> = edges.iter().map(|e| paths.edges[*e].node).collect();
    nodes.dedup();
    let attacker = ATTACKERS
        .iter()
        .find(|(a, _, _)| *a == f.attacker)
        .map_or(f.attacker.as_str(), |(_, name, _)| name);
    html! {
        tr.finding id=(ids.finding(k)) data-severity=(f.severity as u8) data-status=(f.status.as_str())
            data-status-rank=(f.status.rank()) data-confidence=(f.confidence as u8)
            data-attacker=(f.attacker.as_str()) data-check=(f.check.as_str())
            data-service=(shown(f.service.as_deref().unwrap_or("")))
            data-edges=(numbers(edges.iter().copied())) data-nodes=(numbers(nodes.iter().copied())) {
            td.number { (k + 1) }
            td { span class=(format!("sev sev-{}", f.severity.as_str())) { (f.severity.as_str()) } }
            td { span class=(format!("status status-{}", f.status.as_str())) { (f.status.as_str()) } }
            td { (f.confidence.as_str()) }
            td { (attacker) }
            td { code { (f.check.as_str()) } }
            td { (service_cell(f, &nodes, paths, ids)) }
            td.what {
                p.title { (shown(&f.title)) }
                @if f.evidence.len() > EVIDENCE_SHOWN {
                    details.evidence {
                        summary { "Evidence (" (f.evidence.len()) " lines)" }
                        (evidence(f))
                    }
                } @else if !f.evidence.is_empty() {
                    (evidence(f))
                }
                @if !f.fix.is_empty() {
                    p.fix { strong { "Fix: " } (shown(&f.fix)) }
                }
            }
        }
    }
}

fn evidence(f: &Finding) -> Markup {
    html! { ul.evidence { @for e in &f.evidence { li { (shown(e)) } } } }
}

/// Where a finding is: its service, or host-wide with the services its path reaches, each a
/// link to its row when the map has it.
fn service_cell(f: &Finding, nodes: &[usize], paths: &Paths, ids: &Ids) -> Markup {
    let link = |id: &str| {
        let n = nodes.iter().copied().find(|n| paths.nodes[*n].id == Some(id));
        html! {
            @match n {
                Some(n) => a href=(format!("#{}", ids.service_row(n))) { code { (shown(id)) } },
                None => code { (shown(id)) },
            }
        }
    };
    html! {
        @match &f.service {
            Some(id) => (link(id)),
            None => {
                "host-wide"
                @if !f.reaches.is_empty() {
                    ", reaching:"
                    ul.reaches {
                        @for r in &f.reaches {
                            li { (link(&r.service)) " " span class=(format!("status status-{}", r.status.as_str())) { (r.status.as_str()) } }
                        }
                    }
                }
            }
        }
    }
}

/// The services table: every service of the report, those with findings first (in the map's
/// order, each with its paths and links to their findings), then the quiet ones.
pub fn services(report: &Report, paths: &Paths, ids: &Ids) -> Markup {
    let drawn: std::collections::HashSet<&str> = paths.nodes.iter().filter_map(|n| n.id).collect();
    html! {
        table.services {
            thead { tr { th { "Service" } th { "Bound" } th { "Process" } th { "Paths and their findings" } } }
            tbody {
                @for (n, node) in paths.nodes.iter().enumerate() {
                    tr id=(ids.service_row(n)) data-node=(n) {
                        td { code { (shown(node.id.unwrap_or("host-wide"))) } }
                        td { (node.service.map_or("—", |s| s.scope.as_str())) }
                        td { (process(node.service)) }
                        td {
                            ul.paths {
                                @for e in &node.edges {
                                    @let edge = &paths.edges[*e];
                                    li id=(ids.path(*e)) {
                                        span class=(format!("status status-{}", edge.status.as_str())) { (edge.status.as_str()) }
                                        " " (edge.attacker.as_str()) " by " code { (edge.check.as_str()) } " (" (edge.confidence.as_str()) "): "
                                        @for (i, k) in edge.findings.iter().enumerate() {
                                            @if i > 0 { ", " }
                                            a href=(format!("#{}", ids.finding(*k))) { "finding " (k + 1) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
                @for s in report.services.iter().filter(|s| !drawn.contains(s.id.as_str())) {
                    tr.quiet {
                        td { code { (shown(&s.id)) } }
                        td { (s.scope.as_str()) }
                        td { (process(Some(s))) }
                        td { "none" }
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
