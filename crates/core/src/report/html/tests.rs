//! The page for a fixed report: a golden snapshot, hostile host text, and how findings become
//! the map's edges.

use super::*;
use crate::checks::CheckId;
use crate::report::{Confidence, Finding, ReportHost, Scope, Service, ServiceProcess, Severity, REPORT_SCHEMA};

fn service(id: &str, scope: Scope, process: &str) -> Service {
    Service {
        id: id.into(),
        proto: id.split(':').next().unwrap_or("tcp").into(),
        address: None,
        port: None,
        path: None,
        scope,
        process: Some(ServiceProcess {
            pid: 4242,
            name: process.into(),
            exe: Some(format!("/usr/bin/{process}")),
            uid: 1000,
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn finding(
    check: CheckId,
    service: Option<&str>,
    attacker: Attacker,
    severity: Severity,
    status: Status,
    confidence: Confidence,
    title: &str,
) -> Finding {
    Finding {
        check,
        service: service.map(str::to_string),
        attacker,
        severity,
        status,
        confidence,
        title: title.to_string().into(),
        evidence: vec![format!("evidence for {title}")],
        fix: format!("fix for {title}").into(),
        subject: None,
        reaches: Vec::new(),
    }
}

/// A host with a path of every attacker kind, every status and every confidence, and host text
/// an attacker chose: a process named like markup, a socket path that closes the attribute, a
/// rule text that closes the style sheet.
pub(crate) fn fixed_report() -> Report {
    let hostile_sock = "unix:/tmp/\"><img src=x onerror=alert(1)>.sock";
    let mut route = finding(
        CheckId::NetRouteLocalnet,
        None,
        Attacker::Lan,
        Severity::Critical,
        Status::Open,
        Confidence::Proven,
        "route_localnet=1 on eth0: LAN neighbours reach 127.0.0.0/8",
    );
    route.evidence = vec![
        "net.ipv4.conf.eth0.route_localnet = 1".into(),
        "nft rule: </style><script>alert('rule')</script> \u{1b}[31m".into(),
    ];
    Report {
        schema: REPORT_SCHEMA.into(),
        tool_version: "0.1.0".into(),
        host: ReportHost {
            hostname: "web-1".into(),
            kernel: "6.18.0".into(),
            netns: "net:[4026531840]".into(),
            privileged: true,
            limits: vec!["iptables: not installed".into()],
        },
        services: vec![
            service("tcp:127.0.0.1:7001", Scope::Loopback, "<script>alert(1)</script>"),
            service("tcp:0.0.0.0:8080", Scope::Wildcard, "socat"),
            service(hostile_sock, Scope::UnixPath, "app"),
            service("tcp:127.0.0.1:8888", Scope::Loopback, "devserver"),
            service("udp:127.0.0.1:53", Scope::Loopback, "dnsmasq"),
            service("tcp:127.0.0.1:9999", Scope::Loopback, "quiet"),
        ],
        findings: vec![
            route,
            finding(
                CheckId::RelayForwarder,
                Some("tcp:127.0.0.1:7001"),
                Attacker::Remote,
                Severity::High,
                Status::Open,
                Confidence::Inspected,
                "socat on 0.0.0.0:8080 forwards to 127.0.0.1:7001",
            ),
            finding(
                CheckId::WebDnsRebinding,
                Some("tcp:127.0.0.1:8888"),
                Attacker::Browser,
                Severity::High,
                Status::Open,
                Confidence::Probed,
                "answers a foreign Host",
            ),
            finding(
                CheckId::BindWildcard,
                Some("tcp:0.0.0.0:8080"),
                Attacker::Remote,
                Severity::Medium,
                Status::Open,
                Confidence::Inspected,
                "listens on every address",
            ),
            finding(
                CheckId::LocalUnixWorld,
                Some(hostile_sock),
                Attacker::LocalUser,
                Severity::Medium,
                Status::Open,
                Confidence::Inspected,
                "mode 0777 <b>bold</b>",
            ),
            finding(
                CheckId::LocalTcpAnyUid,
                Some("tcp:127.0.0.1:7001"),
                Attacker::LocalUser,
                Severity::Low,
                Status::Unknown,
                Confidence::Inspected,
                "no owner match seen",
            ),
            finding(
                CheckId::ProtoUdpLoopback,
                Some("udp:127.0.0.1:53"),
                Attacker::Lan,
                Severity::Medium,
                Status::Blocked,
                Confidence::Proven,
                "the lab's spoofed datagram was dropped",
            ),
        ],
        activity: vec![],
    }
}

#[test]
fn golden_page_of_a_fixed_report() {
    // One element per line, so that a change shows as a readable diff.
    insta::assert_snapshot!(render(&fixed_report()).replace("><", ">\n<"));
}

#[test]
fn host_text_never_becomes_markup() {
    let page = render(&fixed_report());
    assert_eq!(page.matches("<script").count(), 1, "only the page's own script");
    assert_eq!(page.matches("<style").count(), 1, "only the page's own style sheet");
    assert!(!page.contains("<img"), "{page}");
    assert!(!page.contains("<b>bold"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("\\x1b[31m"), "control characters are spelled out");
    assert!(!page.contains('\u{1b}'));
    // The hostile socket path stays inside its attribute.
    assert!(page.contains("data-service=\"unix:/tmp/&quot;&gt;&lt;img src=x onerror=alert(1)&gt;.sock\""));
}

#[test]
fn the_policy_allows_nothing_but_the_page_itself() {
    let page = render(&fixed_report());
    let policy = assets::content_security_policy();
    assert!(policy.starts_with("default-src 'none'; style-src 'sha256-"), "{policy}");
    assert!(page.contains(&format!("content=\"{policy}\"")));
    // The one address on the page is the SVG namespace's name, which is never fetched.
    assert_eq!(
        page.matches("http://").count(),
        page.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
    );
    assert!(!page.contains("https://"), "{page}");
}

#[test]
fn every_path_is_one_edge_coloured_by_its_worst_status() {
    let mut report = fixed_report();
    // A second, blocked finding on the same path does not hide the open one; a third with
    // another check is another edge.
    let mut blocked = report.findings[1].clone();
    blocked.status = Status::Blocked;
    blocked.confidence = Confidence::Proven;
    blocked.evidence = vec!["other".into()];
    report.findings.push(blocked);
    let paths = map::Paths::of(&report);
    let edges: Vec<_> = paths
        .edges
        .iter()
        .filter(|e| e.check == CheckId::RelayForwarder)
        .collect();
    assert_eq!(edges.len(), 1);
    assert_eq!(
        (edges[0].status, edges[0].confidence, edges[0].findings.len()),
        (Status::Open, Confidence::Inspected, 2)
    );
    assert_eq!(paths.edges.len(), 7);
    // Worst first: the host-wide critical open path, then the high open ones; the blocked UDP
    // service last; the service without findings is not drawn.
    assert_eq!(paths.nodes[0].id, None);
    assert_eq!(paths.nodes.last().and_then(|n| n.id), Some("udp:127.0.0.1:53"));
    assert!(!paths.nodes.iter().any(|n| n.id == Some("tcp:127.0.0.1:9999")));
    let page = render(&report);
    for status in [Status::Open, Status::Unknown, Status::Blocked] {
        assert!(
            page.contains(&format!("data-status=\"{}\"", status.as_str())),
            "an edge of status {status:?}"
        );
    }
}

#[test]
fn a_page_holds_several_reports_with_distinct_ids() {
    let (a, b) = (fixed_report(), fixed_report());
    let page = Page::new("two namespaces").render(&[
        Section {
            heading: "netns a".into(),
            report: &a,
        },
        Section {
            heading: "netns b".into(),
            report: &b,
        },
    ]);
    assert!(page.contains("id=\"r0-n-0\"") && page.contains("id=\"r1-n-0\""));
    assert_eq!(page.matches("<svg class=\"map\"").count(), 2);
}

#[test]
fn a_big_host_draws_the_worst_services_and_names_the_rest() {
    let mut report = fixed_report();
    for port in 0..500u16 {
        let id = format!("tcp:127.0.0.1:{}", 10000 + port);
        report.services.push(service(&id, Scope::Loopback, "svc"));
        report.findings.push(finding(
            CheckId::LocalTcpAnyUid,
            Some(&id),
            Attacker::LocalUser,
            Severity::Low,
            Status::Open,
            Confidence::Inspected,
            "any uid",
        ));
    }
    let page = render(&report);
    assert_eq!(page.matches("<g class=\"service\"").count(), map::MAP_LIMIT);
    assert!(page.contains("more with findings are in the tables below"));
    assert_eq!(page.matches("<tr class=\"finding\"").count(), report.findings.len());
}

#[test]
fn the_fleet_page_links_each_host_to_its_section_and_escapes_host_names() {
    use crate::fleet::tests::{base_read, exposed, fleet_of, NOW};
    let mut unprivileged = base_read();
    unprivileged.host.privileged = false;
    let fleet = fleet_of(
        vec![
            ("<b>kube</b>", Ok(exposed())),
            ("quiet", Ok(base_read())),
            ("unpriv", Ok(unprivileged)),
            ("gone", Err("gone.json: <truncated>")),
        ],
        NOW - 120,
    );
    let mut asked = Vec::new();
    let mut out = Vec::new();
    write_fleet(&mut out, &fleet, |host| {
        asked.push(host.name.clone());
        Ok(crate::audit(&if host.name == "quiet" {
            base_read()
        } else {
            exposed()
        }))
    })
    .expect("write");
    let page = String::from_utf8(out).expect("utf-8");
    assert_eq!(
        asked.len(),
        3,
        "one report per usable host, asked one at a time: {asked:?}"
    );
    assert_eq!(
        page.matches("<section class=\"report\"").count(),
        3,
        "one per usable host"
    );
    assert!(page.contains("&lt;b&gt;kube&lt;/b&gt;") && !page.contains("<b>kube"));
    assert!(page.contains("unusable: gone.json: &lt;truncated&gt;"));
    // The worst usable host's row links to its section, whose map has its route_localnet edge.
    let kube = fleet
        .hosts
        .iter()
        .filter(|h| h.error.is_none())
        .position(|h| h.name == "<b>kube</b>")
        .expect("kube");
    assert!(
        page.contains(&format!("<a href=\"#r{kube}\">&lt;b&gt;kube&lt;/b&gt;</a>")),
        "{page}"
    );
    assert!(page.contains("data-check=\"net.route-localnet\" data-status=\"open\""));
    assert_eq!(page.matches("<script").count(), 1);
    // An unprivileged snapshot without findings is incomplete, never clean.
    let row = page
        .split("data-host=\"unpriv\"")
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("unpriv row");
    assert!(row.contains(">incomplete<") && !row.contains("clean"), "{row}");
    assert!(page.contains("2m</td>"), "the snapshot's age is shown");
}

#[test]
fn a_fleet_report_that_changed_meanwhile_is_said_in_its_section() {
    use crate::fleet::tests::{exposed, fleet_of, NOW};
    let fleet = fleet_of(vec![("kube", Ok(exposed()))], NOW - 120);
    let mut out = Vec::new();
    write_fleet(&mut out, &fleet, |_| {
        Err("kube.json changed while the fleet was audited: run again".into())
    })
    .expect("write");
    let page = String::from_utf8(out).expect("utf-8");
    assert!(
        page.contains("No report: kube.json changed while the fleet was audited"),
        "{page}"
    );
}

/// A host-wide LAN finding reaches services: its edges end at them, not at "this host".
fn route_localnet_reaching(statuses: &[(&str, Status)]) -> Report {
    let mut report = fixed_report();
    report.findings[0].reaches = statuses
        .iter()
        .map(|(service, status)| crate::report::Reached {
            service: service.to_string(),
            status: *status,
        })
        .collect();
    report
}

#[test]
fn host_wide_lan_findings_are_drawn_to_the_services_they_reach() {
    let report = route_localnet_reaching(&[
        ("tcp:127.0.0.1:7001", Status::Open),
        ("udp:127.0.0.1:53", Status::Blocked),
    ]);
    let paths = map::Paths::of(&report);
    let route: Vec<&map::Edge> = paths
        .edges
        .iter()
        .filter(|e| e.check == CheckId::NetRouteLocalnet)
        .collect();
    let ends: Vec<(Option<&str>, Status)> = route.iter().map(|e| (paths.nodes[e.node].id, e.status)).collect();
    assert_eq!(
        ends.len(),
        2,
        "one edge per reached service, none to the host: {ends:?}"
    );
    assert!(ends.contains(&(Some("tcp:127.0.0.1:7001"), Status::Open)), "{ends:?}");
    assert!(ends.contains(&(Some("udp:127.0.0.1:53"), Status::Blocked)), "{ends:?}");
    assert!(!paths.nodes.iter().any(|n| n.id.is_none()), "no host node is left");
    assert_eq!(paths.edges_of[0].len(), 2, "the finding belongs to both edges");
    // Both services' rows list the path with a link to the finding; its row links back.
    let page = render(&report);
    assert!(page.contains("data-edges=\""), "{page}");
    assert!(page.contains("host-wide, reaching:"), "{page}");
}

#[test]
fn the_lab_s_answer_per_service_is_what_the_map_draws() {
    use crate::report::Reached;
    // Inspected: route_localnet reaches 7001 open; the lab then refutes it for 7001 and proves
    // 8888: the merged report's per-service answers are the lab's.
    let mut report = route_localnet_reaching(&[("tcp:127.0.0.1:7001", Status::Open)]);
    let mut lab = report.findings[0].clone();
    lab.status = Status::Open;
    lab.confidence = Confidence::Proven;
    lab.evidence = vec!["lab: …".into()];
    lab.reaches = vec![
        Reached {
            service: "tcp:127.0.0.1:7001".into(),
            status: Status::Blocked,
        },
        Reached {
            service: "tcp:127.0.0.1:8888".into(),
            status: Status::Open,
        },
    ];
    report.merge_active(vec![lab]);
    let paths = map::Paths::of(&report);
    let to = |service: &str| {
        paths
            .edges
            .iter()
            .find(|e| e.check == CheckId::NetRouteLocalnet && paths.nodes[e.node].id == Some(service))
            .map(|e| (e.status, e.confidence))
    };
    assert_eq!(to("tcp:127.0.0.1:7001"), Some((Status::Blocked, Confidence::Proven)));
    assert_eq!(to("tcp:127.0.0.1:8888"), Some((Status::Open, Confidence::Proven)));
}

#[test]
fn without_script_nothing_is_a_dead_control_and_every_finding_is_reachable_by_links() {
    let report = fixed_report();
    let page = render(&report);
    // Sorting headings are headings until the script makes them buttons; the controls that
    // need the script are hidden until it runs.
    assert!(!page.contains("<button"), "no button works without script");
    assert!(page.contains("<div class=\"filters\" hidden"));
    assert!(page.contains("<aside class=\"detail\" hidden"));
    // … and stay hidden whatever display the style sheet gives them.
    assert!(assets::STYLE.starts_with("[hidden] { display: none !important; }"));
    // Each map edge links to its path's entry in the services table, which links to each of
    // its findings.
    let paths = map::Paths::of(&report);
    for (e, edge) in paths.edges.iter().enumerate() {
        assert!(
            page.contains(&format!("<a href=\"#r0-p-{e}\">")),
            "edge {e} links to its path"
        );
        assert!(page.contains(&format!("<li id=\"r0-p-{e}\">")), "path {e} has an entry");
        for k in &edge.findings {
            assert!(
                page.contains(&format!("<a href=\"#r0-f-{k}\">")),
                "finding {k} is linked"
            );
        }
    }
    // Long evidence folds into a details element, which opens without script.
    let mut long = fixed_report();
    long.findings[0].evidence = (0..20).map(|i| format!("line {i}")).collect();
    let page = render(&long);
    assert!(
        page.contains("<details class=\"evidence\"><summary>Evidence (20 lines)</summary>"),
        "{page}"
    );
}

#[test]
fn what_was_probed_and_fired_is_on_the_page() {
    let mut report = fixed_report();
    report.activity = vec!["lab: 6 fired, 4 got through".into()];
    assert!(render(&report).contains("lab: 6 fired, 4 got through"));
}
