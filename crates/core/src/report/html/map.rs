//! The reachability map: attackers on the left, services on the right, one edge per (attacker,
//! service, check) coloured by status and drawn by confidence, labelled with its check.
//!
//! The paths are grouped from the report's findings ([`Paths::of`]), laid out in fixed columns
//! and drawn as inline SVG. Every node and edge is a link to the rows below that show its
//! findings, so the map works without JavaScript; the page's script turns a click into the
//! detail panel instead.

use super::text::{shortened, shown};
use super::Ids;
use crate::checks::CheckId;
use crate::report::{Attacker, Confidence, Finding, Report, Service, Severity, Status};
use maud::{html, Markup};
use std::collections::HashMap;

/// The four attackers, top to bottom, with what the map calls them.
pub const ATTACKERS: [(Attacker, &str, &str); 4] = [
    (Attacker::Lan, "LAN neighbour", "spoofing, route_localnet, NAT"),
    (Attacker::Remote, "Remote client", "through a relay or an open port"),
    (Attacker::LocalUser, "Another local user", "loopback TCP, Unix sockets"),
    (
        Attacker::Browser,
        "Web page in a local browser",
        "rebinding, CORS, WebSocket",
    ),
];

/// At most this many services are drawn; the rest are named in the tables below.
pub const MAP_LIMIT: usize = 40;

/// The colour of a path by status: red open, amber unknown (never to be read as safe), green
/// blocked. The script and the tests read the same values.
pub fn status_colour(status: Status) -> &'static str {
    match status {
        Status::Open => "#c62828",
        Status::Unknown => "#b26a00",
        Status::Blocked => "#2e7d32",
    }
}

/// How a path is drawn by confidence: dotted when read from configuration, dashed when the
/// service answered the probe, solid and thick when the lab replayed the attack.
pub fn confidence_stroke(confidence: Confidence) -> (&'static str, &'static str) {
    match confidence {
        Confidence::Inspected => ("2 4", "1.5"),
        Confidence::Probed => ("8 4", "2.5"),
        Confidence::Proven => ("none", "3.5"),
    }
}

/// One drawn path: an attacker reaching a node through one check.
pub struct Edge {
    /// Who.
    pub attacker: Attacker,
    /// The node it ends at (an index into [`Paths::nodes`]).
    pub node: usize,
    /// By which check.
    pub check: CheckId,
    /// The worst status among its findings' paths to this node.
    pub status: Status,
    /// The strongest confidence among the findings with that status.
    pub confidence: Confidence,
    /// Its findings, as indices into the report's findings.
    pub findings: Vec<usize>,
}

/// A service, or the host itself for host-wide findings that name no service.
pub struct Node<'a> {
    /// The service id, `None` for the host.
    pub id: Option<&'a str>,
    /// The service as the report lists it, when it does.
    pub service: Option<&'a Service>,
    /// Its edges, as indices into [`Paths::edges`], in drawing order.
    pub edges: Vec<usize>,
    /// The worst (status rank, severity) of its edges, for ordering.
    worst: (u8, Severity),
}

impl Node<'_> {
    /// What the map calls it.
    pub fn label(&self) -> String {
        match (self.id, self.service.and_then(|s| s.process.as_ref())) {
            (None, _) => "this host (host-wide)".to_string(),
            (Some(id), Some(p)) => format!("{id} · {}", p.name),
            (Some(id), None) => id.to_string(),
        }
    }

    /// The worst status of its paths.
    pub fn worst_status(&self) -> Status {
        match self.worst.0 {
            2 => Status::Open,
            1 => Status::Unknown,
            _ => Status::Blocked,
        }
    }
}

/// Every path of a report, grouped and ordered worst first.
pub struct Paths<'a> {
    /// Services with findings (and the host, when it has host-wide ones that name no service),
    /// worst first.
    pub nodes: Vec<Node<'a>>,
    /// The edges.
    pub edges: Vec<Edge>,
    /// The edges of each finding (a host-wide finding that reaches several services has one per
    /// service), as indices into `edges`.
    pub edges_of: Vec<Vec<usize>>,
}

/// Where one finding's path ends, and with what status: its service; else each service it
/// reaches (route_localnet's loopback services, a NAT-published address, what the lab's attacks
/// got to), each with its own status; else the host.
fn targets(f: &Finding) -> Vec<(Option<&str>, Status)> {
    match (&f.service, f.reaches.is_empty()) {
        (Some(id), _) => vec![(Some(id.as_str()), f.status)],
        (None, false) => f.reaches.iter().map(|r| (Some(r.service.as_str()), r.status)).collect(),
        (None, true) => vec![(None, f.status)],
    }
}

impl<'a> Paths<'a> {
    /// Groups the report's findings into edges and nodes. A finding about a service the report
    /// does not list still gets a node (named by its id), never dropped.
    pub fn of(report: &'a Report) -> Paths<'a> {
        let services: HashMap<&str, &Service> = report.services.iter().map(|s| (s.id.as_str(), s)).collect();
        let mut keys: Vec<Option<&'a str>> = Vec::new();
        let mut node_of: HashMap<Option<&'a str>, usize> = HashMap::new();
        let mut edge_at: HashMap<(usize, Attacker, CheckId), usize> = HashMap::new();
        let mut edges: Vec<Edge> = Vec::new();
        let mut edges_of: Vec<Vec<usize>> = vec![Vec::new(); report.findings.len()];
        for (i, f) in report.findings.iter().enumerate() {
            for (key, status) in targets(f) {
                let node = *node_of.entry(key).or_insert_with(|| {
                    keys.push(key);
                    keys.len() - 1
                });
                let e = *edge_at.entry((node, f.attacker, f.check)).or_insert_with(|| {
                    edges.push(Edge {
                        attacker: f.attacker,
                        node,
                        check: f.check,
                        status,
                        confidence: f.confidence,
                        findings: Vec::new(),
                    });
                    edges.len() - 1
                });
                let edge = &mut edges[e];
                if edge.findings.last() != Some(&i) {
                    edge.findings.push(i);
                }
                fold(edge, status, f.confidence);
                if !edges_of[i].contains(&e) {
                    edges_of[i].push(e);
                }
            }
        }
        let mut worst = vec![(0u8, Severity::Info); keys.len()];
        let mut own: Vec<Vec<usize>> = vec![Vec::new(); keys.len()];
        for (e, edge) in edges.iter().enumerate() {
            let severity = edge
                .findings
                .iter()
                .map(|k| report.findings[*k].severity)
                .max()
                .unwrap_or(Severity::Info);
            worst[edge.node] = worst[edge.node].max((edge.status.rank(), severity));
            own[edge.node].push(e);
        }
        let mut order: Vec<usize> = (0..keys.len()).collect();
        order.sort_by(|a, b| {
            worst[*b]
                .cmp(&worst[*a])
                .then_with(|| keys[*a].is_some().cmp(&keys[*b].is_some()))
                .then_with(|| keys[*a].cmp(&keys[*b]))
        });
        let mut renumber = vec![0; keys.len()];
        for (new, old) in order.iter().enumerate() {
            renumber[*old] = new;
        }
        for e in &mut edges {
            e.node = renumber[e.node];
        }
        let nodes = order
            .iter()
            .map(|old| {
                let mut mine = std::mem::take(&mut own[*old]);
                mine.sort_by_key(|e| (edges[*e].attacker, edges[*e].check.as_str()));
                Node {
                    id: keys[*old],
                    service: keys[*old].and_then(|id| services.get(id).copied()),
                    edges: mine,
                    worst: worst[*old],
                }
            })
            .collect();
        Paths { nodes, edges, edges_of }
    }
}

/// Takes one finding's path into its edge: the worst status wins; among equal statuses the
/// strongest confidence.
fn fold(edge: &mut Edge, status: Status, confidence: Confidence) {
    let (old, new) = (edge.status.rank(), status.rank());
    if new > old {
        edge.status = status;
        edge.confidence = confidence;
    } else if new == old {
        edge.confidence = edge.confidence.max(confidence);
    }
}

// Layout, in SVG user units.
const WIDTH: f64 = 1160.0;
const ATTACKER_X: f64 = 10.0;
const ATTACKER_W: f64 = 200.0;
const ATTACKER_H: f64 = 48.0;
const LABEL_X: f64 = 560.0;
const SERVICE_X: f64 = 770.0;
const SERVICE_W: f64 = 380.0;
const ROW: f64 = 22.0;
const GAP: f64 = 10.0;
const TOP: f64 = 10.0;

/// The map of one report as an `<svg>` element, or a sentence when there is nothing to draw.
pub fn svg(report: &Report, paths: &Paths, ids: &Ids) -> Markup {
    if paths.nodes.is_empty() {
        return html! { p.map-empty { "No path to draw: the audit found nothing." } };
    }
    let drawn = paths.nodes.len().min(MAP_LIMIT);
    // Each node is as tall as its edges need; each edge ends in a row of its own.
    let mut tops = Vec::with_capacity(drawn);
    let mut y = TOP;
    for node in &paths.nodes[..drawn] {
        tops.push(y);
        y += node.edges.len().max(1) as f64 * ROW + GAP;
    }
    let height = (y + TOP).max(4.0 * (ATTACKER_H + 2.0 * GAP) + 2.0 * TOP);
    let attacker_y = |a: Attacker| {
        let k = ATTACKERS.iter().position(|(x, _, _)| *x == a).unwrap_or(0) as f64;
        height * (2.0 * k + 1.0) / 8.0
    };
    let open_count = |a: Attacker| {
        paths
            .edges
            .iter()
            .filter(|e| e.attacker == a && e.status == Status::Open)
            .count()
    };
    let title = format!("Reachability map of {}", shown(&report.host.hostname));
    html! {
        svg.map xmlns="http://www.w3.org/2000/svg" role="group" aria-label=(title)
            viewBox=(format!("0 0 {WIDTH} {height}")) width=(WIDTH) height=(height) {
            defs {
                @for status in [Status::Open, Status::Unknown, Status::Blocked] {
                    marker id=(ids.arrow(status)) viewBox="0 0 10 10" refX="9" refY="5"
                        markerUnits="userSpaceOnUse" markerWidth="10" markerHeight="10" orient="auto" {
                        path d="M 0 0 L 10 5 L 0 10 z" fill=(status_colour(status)) {}
                    }
                }
            }
            @for (n, node) in paths.nodes[..drawn].iter().enumerate() {
                @for (slot, e) in node.edges.iter().enumerate() {
                    (edge(report, paths, *e, attacker_y(paths.edges[*e].attacker),
                        tops[n] + slot as f64 * ROW + ROW / 2.0, ids))
                }
            }
            @for (a, name, how) in ATTACKERS {
                @let y = attacker_y(a) - ATTACKER_H / 2.0;
                g.attacker id=(ids.attacker(a)) data-attacker=(a.as_str()) tabindex="0" {
                    title { (name) ": " (open_count(a)) " open path(s)" }
                    rect x=(ATTACKER_X) y=(y) width=(ATTACKER_W) height=(ATTACKER_H) rx="6" {}
                    text x=(ATTACKER_X + 10.0) y=(y + 20.0) class="name" { (name) }
                    text x=(ATTACKER_X + 10.0) y=(y + 38.0) class="how" { (how) }
                }
            }
            @for (n, node) in paths.nodes[..drawn].iter().enumerate() {
                (service_node(node, n, tops[n], ids))
            }
        }
        @if paths.nodes.len() > drawn {
            p.map-more {
                "The map shows the " (drawn) " services with the worst paths; "
                (paths.nodes.len() - drawn) " more with findings are in the tables below."
            }
        }
    }
}

fn service_node(node: &Node, n: usize, top: f64, ids: &Ids) -> Markup {
    let h = node.edges.len().max(1) as f64 * ROW - 4.0;
    let status = node.worst_status().as_str();
    let full = shown(&node.label()).into_owned();
    html! {
        a href=(format!("#{}", ids.service_row(n))) {
            g.service id=(ids.node(n)) data-node=(n) data-worst=(status) tabindex="0" {
                title { (full) }
                rect x=(SERVICE_X) y=(top) width=(SERVICE_W) height=(h) rx="4" {}
                text x=(SERVICE_X + 8.0) y=(top + 15.0) { (shortened(&node.label(), 52)) }
            }
        }
    }
}

fn edge(report: &Report, paths: &Paths, e: usize, from_y: f64, to_y: f64, ids: &Ids) -> Markup {
    let edge = &paths.edges[e];
    let from_x = ATTACKER_X + ATTACKER_W;
    let d = format!(
        "M {from_x} {from_y} C {} {from_y}, {} {to_y}, {LABEL_X} {to_y} L {} {to_y}",
        from_x + 160.0,
        LABEL_X - 160.0,
        SERVICE_X - 2.0
    );
    let (dash, width) = confidence_stroke(edge.confidence);
    let colour = status_colour(edge.status);
    let node = &paths.nodes[edge.node];
    let what = format!(
        "{} → {} by {}: {} ({}), {} finding(s)",
        ATTACKERS
            .iter()
            .find(|(a, _, _)| *a == edge.attacker)
            .map_or("?", |(_, name, _)| name),
        shown(&node.label()),
        edge.check,
        edge.status.as_str(),
        edge.confidence.as_str(),
        edge.findings.len()
    );
    let worst = edge
        .findings
        .iter()
        .map(|i| report.findings[*i].severity)
        .max()
        .unwrap_or(Severity::Info);
    html! {
        a href=(format!("#{}", ids.path(e))) {
            g.edge id=(ids.edge(e)) data-edge=(e) data-node=(edge.node) data-attacker=(edge.attacker.as_str())
                data-check=(edge.check.as_str()) data-status=(edge.status.as_str())
                data-confidence=(edge.confidence.as_str()) data-severity=(worst.as_str()) tabindex="0" {
                title { (what) }
                path.hit d=(d) fill="none" stroke="transparent" stroke-width="12" {}
                path.line d=(d) fill="none" stroke=(colour) stroke-width=(width) stroke-dasharray=(dash)
                    marker-end=(format!("url(#{})", ids.arrow(edge.status))) {}
                text.label x=(LABEL_X + 6.0) y=(to_y - 4.0) fill=(colour) { (edge.check.as_str()) }
            }
        }
    }
}
