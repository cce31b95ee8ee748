//! The report as one self-contained HTML page: a reachability map (inline SVG) over the findings
//! and services tables. Nothing is loaded from anywhere — no font, image, style sheet or script
//! outside the file — so it works from `file://` and as a mail attachment, and a Content
//! Security Policy says so: `default-src 'none'`, and only this page's own style sheet and
//! script (by their SHA-256) may apply. Everything is readable without JavaScript; the script
//! adds the detail panel, sorting and filters.
//!
//! All host text (process names, socket paths, rule texts, evidence) is hostile: maud escapes it
//! and [`text::shown`] spells out control characters.
//!
//! A page holds one or more [`Section`]s, one per report (a host, a network namespace), so that
//! the multi-namespace report and the fleet reuse the same renderer.

mod assets;
mod fleet;

mod map;
mod tables;
mod text;

use crate::report::{Attacker, Report, Status};
use maud::{html, Markup, PreEscaped, DOCTYPE};

/// One report on a page, under its own heading.
pub struct Section<'a> {
    /// What the section is about (`host-a`, `netns docker-1` …): host text, escaped when shown.
    pub heading: String,
    /// The report.
    pub report: &'a Report,
}

/// A page: a title and what comes before the sections (the fleet's hosts × checks table). The
/// sections are written one at a time between [`Page::head`] and [`Page::tail`], so that a
/// page of many reports (a fleet) never holds more than one in memory.
pub struct Page {
    title: String,
    preface: Option<Markup>,
}

impl Page {
    /// A page titled `title`.
    pub fn new(title: impl Into<String>) -> Page {
        Page {
            title: title.into(),
            preface: None,
        }
    }

    /// Markup shown before the sections.
    pub(crate) fn with_preface(mut self, preface: Markup) -> Page {
        self.preface = Some(preface);
        self
    }

    /// The document up to the first section: head, title, legend and preface.
    pub fn head(&self) -> String {
        let csp = assets::content_security_policy();
        let head = html! {
            head {
                meta charset="utf-8";
                meta http-equiv="Content-Security-Policy" content=(csp);
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (text::shown(&self.title)) }
                style { (PreEscaped(assets::STYLE)) }
            }
        };
        let top = html! {
            header.page {
                h1 { (text::shown(&self.title)) }
                (legend())
            }
            @if let Some(preface) = &self.preface { (preface) }
        };
        format!(
            "{}<html lang=\"en\">{}<body>{}",
            DOCTYPE.into_string(),
            head.into_string(),
            top.into_string()
        )
    }

    /// Section number `index` of the page (its element ids start with `r{index}`).
    pub fn section(index: usize, s: &Section) -> String {
        section(
            s,
            &Ids {
                prefix: format!("r{index}"),
            },
        )
        .into_string()
    }

    /// In place of section `index`: a heading and why its report cannot be shown.
    pub fn missing_section(index: usize, heading: &str, why: &str) -> String {
        html! {
            section.report.missing id=(format!("r{index}")) {
                h2 { (text::shown(heading)) }
                p.status-unknown { "No report: " (text::shown(why)) }
            }
        }
        .into_string()
    }

    /// The end of the document: the page's script.
    pub fn tail() -> String {
        html! { script { (PreEscaped(assets::SCRIPT)) } }.into_string() + "</body></html>"
    }

    /// The whole document with `sections`.
    pub fn render(&self, sections: &[Section]) -> String {
        let mut out = self.head();
        for (i, s) in sections.iter().enumerate() {
            out.push_str(&Page::section(i, s));
        }
        out.push_str(&Page::tail());
        out
    }
}

pub use fleet::write_fleet;

/// The page of one report (`audit --format html`).
pub fn render(report: &Report) -> String {
    render_titled(&format!("loopwarden audit of {}", report.host.hostname), report)
}

/// The page of one report under another title (`prove --format html`: the lab's outcomes).
pub fn render_titled(title: &str, report: &Report) -> String {
    let heading = report.host.hostname.clone();
    Page::new(title).render(&[Section { heading, report }])
}

/// The page of a whole-host report (`audit --all-netns --format html`): first the findings only
/// the whole view shows (each titled with the namespace it is about), then one section per
/// network namespace — its own map, findings and services — under the name a person knows it by.
pub fn render_host(report: &crate::report::HostReport) -> String {
    let whole = Report {
        schema: crate::report::REPORT_SCHEMA.to_string(),
        tool_version: report.tool_version.clone(),
        host: crate::report::ReportHost {
            hostname: report.host.hostname.clone(),
            kernel: report.host.kernel.clone(),
            netns: "every network namespace".to_string(),
            privileged: report.host.privileged,
            limits: report.host.limits.clone(),
        },
        services: Vec::new(),
        findings: report
            .findings
            .iter()
            .map(|f| {
                let mut finding = f.finding.clone();
                finding.title = format!("{}: {}", f.netns, finding.title).into();
                finding
            })
            .collect(),
        activity: Vec::new(),
    };
    let mut sections = vec![Section {
        heading: "the whole host: what only the view of every namespace shows".to_string(),
        report: &whole,
    }];
    sections.extend(report.namespaces.iter().map(|n| Section {
        heading: format!("{} — {}", n.namespace.id, n.namespace.label()),
        report: &n.report,
    }));
    Page::new(format!(
        "loopwarden audit of {}: every network namespace",
        report.host.hostname
    ))
    .render(&sections)
}

/// Element ids of one section: every id on the page starts with the section's prefix, so that
/// several reports share a page.
pub struct Ids {
    prefix: String,
}

impl Ids {
    fn section(&self) -> String {
        self.prefix.clone()
    }
    fn attacker(&self, a: Attacker) -> String {
        format!("{}-a-{}", self.prefix, a.as_str())
    }
    fn node(&self, n: usize) -> String {
        format!("{}-n-{n}", self.prefix)
    }
    fn edge(&self, e: usize) -> String {
        format!("{}-e-{e}", self.prefix)
    }
    /// The entry of path `e` in the services table (what the edge links to without script).
    fn path(&self, e: usize) -> String {
        format!("{}-p-{e}", self.prefix)
    }
    fn finding(&self, k: usize) -> String {
        format!("{}-f-{k}", self.prefix)
    }
    fn service_row(&self, n: usize) -> String {
        format!("{}-s-{n}", self.prefix)
    }
    fn arrow(&self, s: Status) -> String {
        format!("{}-arrow-{}", self.prefix, s.as_str())
    }
    fn findings_table(&self) -> String {
        format!("{}-findings", self.prefix)
    }
}

fn section(s: &Section, ids: &Ids) -> Markup {
    let report = s.report;
    let paths = map::Paths::of(report);
    let count = |status: Status| report.findings.iter().filter(|f| f.status == status).count();
    let h = &report.host;
    html! {
        section.report id=(ids.section()) {
            h2 { (text::shown(&s.heading)) }
            p.host {
                "Host " code { (text::shown(&h.hostname)) } ", kernel "
                @if h.kernel.is_empty() { "unknown" } @else { (text::shown(&h.kernel)) }
                ", network namespace " code { (text::shown(&h.netns)) }
                ", loopwarden " (text::shown(&report.tool_version)) "."
                @if !h.privileged { " Unprivileged run: some socket owners were not seen, so findings may be missing." }
            }
            p.summary {
                (report.services.len()) " services, " (report.findings.len()) " findings: "
                span.status.status-open { (count(Status::Open)) " open" } ", "
                span.status.status-unknown { (count(Status::Unknown)) " unknown" } ", "
                span.status.status-blocked { (count(Status::Blocked)) " blocked" } "."
            }
            @if !h.limits.is_empty() {
                details.limits open {
                    summary { "What this audit could not see (" (h.limits.len()) ")" }
                    ul { @for l in &h.limits { li { (text::shown(l)) } } }
                }
            }
            @if !report.activity.is_empty() {
                details.activity open {
                    summary { "What was asked and fired (" (report.activity.len()) ")" }
                    ul { @for a in &report.activity { li { (text::shown(a)) } } }
                }
            }
            div.mapbox {
                (map::svg(report, &paths, ids))
                aside.detail hidden aria-live="polite" {}
            }
            h3 { "Findings" }
            (tables::findings(report, &paths, ids))
            h3 { "Services" }
            (tables::services(report, &paths, ids))
        }
    }
}

/// How to read the map: colours by status, strokes by confidence.
fn legend() -> Markup {
    use crate::report::Confidence;
    html! {
        p.legend {
            "Paths: "
            @for s in [Status::Open, Status::Unknown, Status::Blocked] {
                span class=(format!("status status-{}", s.as_str())) { "━ " (s.as_str()) } " "
            }
            " · drawn "
            @for c in [Confidence::Inspected, Confidence::Probed, Confidence::Proven] {
                @let (dash, width) = map::confidence_stroke(c);
                svg.sample width="40" height="10" viewBox="0 0 40 10" aria-hidden="true" {
                    line x1="0" y1="5" x2="40" y2="5" stroke="#444" stroke-width=(width) stroke-dasharray=(dash) {}
                }
                " " (c.as_str()) " "
            }
            "(read from configuration · the service answered · the lab replayed the attack). "
            "Unknown is never safe. Each service and path links to its findings (with scripts on, a click shows them beside the map)."
        }
    }
}

#[cfg(test)]
mod tests;
