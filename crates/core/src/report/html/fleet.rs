//! The fleet as one page: the hosts × checks table and the worst paths before one section per
//! host — the same map and tables as a single audit — each a click away from its row.

use super::map::status_rank;
use super::text::shown;
use super::{Page, Section};
use crate::fleet::{CheckCell, Fleet};
use crate::report::Status;
use maud::{html, Markup};

/// The page of a fleet (`loopwarden fleet --format html`).
pub fn render_fleet(fleet: &Fleet) -> String {
    // Sections exist for hosts with a report; `section_of[h]` is host h's section index.
    let mut sections = Vec::new();
    let mut section_of = Vec::with_capacity(fleet.hosts.len());
    for host in &fleet.hosts {
        match &host.report {
            Some(report) => {
                section_of.push(Some(sections.len()));
                sections.push(Section {
                    heading: format!("{} (hostname {})", host.name, report.host.hostname),
                    report,
                });
            }
            None => section_of.push(None),
        }
    }
    let preface = preface(fleet, &section_of);
    Page::new(format!("loopwarden fleet of {} hosts", fleet.hosts.len()), sections)
        .with_preface(preface)
        .render()
}

fn preface(fleet: &Fleet, section_of: &[Option<usize>]) -> Markup {
    let link = |h: usize| section_of[h].map(|s| format!("#r{s}"));
    html! {
        section.fleet {
            h2 { "Hosts × checks" }
            p { "Each cell counts the host's findings of that check: open, unknown, blocked. "
                "A host whose snapshot could not be audited is unknown, never clean." }
            table.fleet {
                thead { tr {
                    th { "Host" } th { "Worst" }
                    @for c in &fleet.checks { th.check scope="col" { (c.as_str()) } }
                } }
                tbody {
                    @for (h, host) in fleet.hosts.iter().enumerate() {
                        tr data-host=(shown(&host.name)) {
                            th scope="row" {
                                @match link(h) {
                                    Some(href) => a href=(href) { (shown(&host.name)) },
                                    None => (shown(&host.name)),
                                }
                            }
                            @match (&host.error, host.worst) {
                                (Some(e), _) => td.status-unknown { "unusable: " (shown(e)) },
                                (None, Some(w)) => td class=(format!("status-{}", w.status.as_str())) {
                                    (w.severity.as_str()) " " (w.status.as_str())
                                },
                                (None, None) => td.status-blocked { "clean" },
                            }
                            @for c in &fleet.checks {
                                (cell(host.checks.iter().find(|x| x.check == *c)))
                            }
                        }
                    }
                }
            }
            h2 { "Worst paths" }
            @if fleet.worst_paths.is_empty() {
                p { "No open or unknown path on any host." }
            } @else {
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

fn cell(c: Option<&CheckCell>) -> Markup {
    let Some(c) = c else {
        return html! { td.cell { "·" } };
    };
    let n = c.counts;
    let worst = [Status::Open, Status::Unknown, Status::Blocked]
        .into_iter()
        .filter(|s| match s {
            Status::Open => n.open > 0,
            Status::Unknown => n.unknown > 0,
            Status::Blocked => n.blocked > 0,
        })
        .max_by_key(|s| status_rank(*s))
        .unwrap_or(Status::Blocked);
    html! {
        td class=(format!("cell status-{}", worst.as_str())) data-status=(worst.as_str())
            title=(format!("{}: {} open, {} unknown, {} blocked", c.check, n.open, n.unknown, n.blocked)) {
            (n.open) "/" (n.unknown) "/" (n.blocked)
        }
    }
}
