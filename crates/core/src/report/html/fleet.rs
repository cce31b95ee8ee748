//! The fleet as one page: the hosts × checks table and the worst paths before one section per
//! host — the same map and tables as a single audit — each a click away from its row. Written as
//! it goes: each host's report is fetched when its section comes and dropped once written.

use super::text::shown;
use super::{Page, Section};
use crate::fleet::{CheckCell, Fleet, FleetHost};
use crate::report::fleet_human::{age, state};
use crate::report::{Report, Status};
use maud::{html, Markup};

/// Writes the page of a fleet (`loopwarden fleet --format html`) to `out`; `report_of` gives
/// each usable host's report when its section is written (`Err`: why it cannot be had now,
/// shown in its place).
pub fn write_fleet(
    out: &mut dyn std::io::Write,
    fleet: &Fleet,
    mut report_of: impl FnMut(&FleetHost) -> Result<Report, String>,
) -> std::io::Result<()> {
    // Sections exist for hosts with a usable snapshot; `section_of[h]` is host h's section.
    let mut next = 0;
    let section_of: Vec<Option<usize>> = fleet
        .hosts
        .iter()
        .map(|h| {
            h.error.is_none().then(|| {
                next += 1;
                next - 1
            })
        })
        .collect();
    let page =
        Page::new(format!("loopwarden fleet of {} hosts", fleet.hosts.len())).with_preface(preface(fleet, &section_of));
    out.write_all(page.head().as_bytes())?;
    for (host, section) in fleet.hosts.iter().zip(&section_of) {
        let Some(index) = *section else { continue };
        let text = match report_of(host) {
            Ok(report) => Page::section(
                index,
                &Section {
                    heading: format!("{} (hostname {})", host.name, report.host.hostname),
                    report: &report,
                },
            ),
            Err(why) => Page::missing_section(index, &host.name, &why),
        };
        out.write_all(text.as_bytes())?;
    }
    out.write_all(Page::tail().as_bytes())
}

fn preface(fleet: &Fleet, section_of: &[Option<usize>]) -> Markup {
    let link = |h: usize| section_of[h].map(|s| format!("#r{s}"));
    html! {
        section.fleet {
            h2 { "Hosts × checks" }
            p { "Each cell counts the host's findings of that check: open, unknown, blocked. "
                "A host whose snapshot could not be audited is unknown, one older than "
                (crate::fleet::age_shown(fleet.stale_after_seconds)) " is stale, and one taken without root or "
                "with limits is incomplete: none of them is clean." }
            table.fleet {
                thead { tr {
                    th { "Host" } th { "Worst" } th { "Snapshot age" }
                    @for c in &fleet.checks { th.check scope="col" { (c.as_str()) } }
                } }
                tbody {
                    @for (h, host) in fleet.hosts.iter().enumerate() {
                        tr data-host=(shown(&host.name)) data-stale=(host.stale) data-incomplete=(host.incomplete) {
                            th scope="row" {
                                @match link(h) {
                                    Some(href) => a href=(href) { (shown(&host.name)) },
                                    None => (shown(&host.name)),
                                }
                            }
                            (worst(host))
                            td class=(if host.stale { "age status-unknown" } else { "age" }) { (age(host)) }
                            @for c in &fleet.checks {
                                (cell(host.checks.iter().find(|x| x.check == *c)))
                            }
                        }
                    }
                }
            }
            @if !fleet.skipped.is_empty() {
                details.skipped open {
                    summary { "Files not read (" (fleet.skipped.len()) ")" }
                    ul { @for s in &fleet.skipped { li { code { (shown(&s.path)) } ": " (shown(&s.reason)) } } }
                }
            }
            h2 { "Worst paths" }
            @if fleet.worst_paths.is_empty() {
                p { "No open or unknown path on any host." }
            } @else {
                @if fleet.paths_total > fleet.worst_paths.len() {
                    p { "The worst " (fleet.worst_paths.len()) " of " (fleet.paths_total) " open or unknown paths; each host's section has all of its own." }
                }
                table.paths {
                    thead { tr { th { "Severity" } th { "Status" } th { "Confidence" } th { "Host" } th { "Check" } th { "Service" } th { "What" } } }
                    tbody {
                        @for p in &fleet.worst_paths {
                            tr {
                                td { span class=(format!("sev sev-{}", p.severity.as_str())) { (p.severity.as_str()) } }
                                td { span class=(format!("status status-{}", p.status.as_str())) { (p.status.as_str()) } }
                                td { (p.confidence.as_str()) }
                                td {
                                    @match fleet.hosts.iter().position(|h| h.name == p.host).and_then(link) {
                                        Some(href) => a href=(href) { (shown(&p.host)) },
                                        None => (shown(&p.host)),
                                    }
                                }
                                td { code { (p.check.as_str()) } }
                                td { code { (shown(p.service.as_deref().unwrap_or("host-wide"))) } }
                                td { (shown(&p.title)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The "worst" cell: unusable with why, the worst finding, incomplete, or clean.
fn worst(host: &FleetHost) -> Markup {
    let class = match (&host.error, host.worst) {
        (Some(_), _) => "status-unknown".to_string(),
        (None, Some(w)) => format!("status-{}", w.status.as_str()),
        (None, None) if host.incomplete => "status-unknown".to_string(),
        (None, None) => "status-blocked".to_string(),
    };
    html! {
        td class=(class) {
            @match &host.error {
                Some(e) => { "unusable: " (shown(e)) },
                None => {
                    (state(host))
                    @if host.incomplete && host.worst.is_some() { " (incomplete)" }
                }
            }
        }
    }
}

fn cell(c: Option<&CheckCell>) -> Markup {
    let Some(c) = c else {
        return html! { td.cell { "·" } };
    };
    let n = c.counts;
    let worst = [
        (Status::Open, n.open),
        (Status::Unknown, n.unknown),
        (Status::Blocked, n.blocked),
    ]
    .into_iter()
    .find(|(_, count)| *count > 0)
    .map_or(Status::Blocked, |(s, _)| s);
    html! {
        td class=(format!("cell status-{}", worst.as_str())) data-status=(worst.as_str())
            title=(format!("{}: {} open, {} unknown, {} blocked", c.check, n.open, n.unknown, n.blocked)) {
            (n.open) "/" (n.unknown) "/" (n.blocked)
        }
    }
}
