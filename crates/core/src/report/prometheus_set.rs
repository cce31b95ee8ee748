//! Several reports as one metrics file: a whole host's namespaces (`audit --all-netns`,
//! `prove --all-netns`) and a fleet's hosts (`fleet`). Each report gives the families of
//! [`super::prometheus`]; they are merged so that every family is declared once, and their
//! labels (`netns`, and `host` for a fleet) keep every series apart.

use super::prometheus::{families, label_first, render_merged, Family, RunInfo};
use super::{HostReport, NamespaceReport, Report};
use crate::fleet::{Fleet, FleetHost};

/// The metrics of a whole-host report: each namespace's families, its share of the host's
/// cross-namespace findings (`netns.*`, which name the namespace they are about) counted with
/// its own, and whatever `extra` gives for it (the harden table's drop counters, a lab's
/// outcomes).
pub fn render_host(report: &HostReport, run: RunInfo, extra: &dyn Fn(&NamespaceReport) -> Vec<Family>) -> String {
    let mut parts: Vec<Vec<Family>> = report
        .namespaces
        .iter()
        .map(|n| {
            let mut own = n.report.clone();
            own.findings.extend(
                report
                    .findings
                    .iter()
                    .filter(|f| f.netns == n.namespace.id)
                    .map(|f| f.finding.clone()),
            );
            families(&own, run, &extra(n))
        })
        .collect();
    parts.push(vec![
        Family {
            name: "loopwarden_host_limits".into(),
            help: "Number of limit lines of the whole host: namespaces that could not be found or entered (an \
                   unprivileged run, processes whose namespaces could not be read). Above 0, namespaces — and their \
                   findings — may be missing from this file."
                .into(),
            kind: "gauge",
            series: vec![(Vec::new(), report.host.limits.len() as f64)],
        },
        Family {
            name: "loopwarden_host_limit_info".into(),
            help: "Constant 1 per limit line of the whole host, the line as its label: which namespaces could not \
                   be found or entered, and why."
                .into(),
            kind: "gauge",
            series: report
                .host
                .limits
                .iter()
                .map(|l| (vec![("limit".to_string(), l.clone())], 1.0))
                .collect(),
        },
        Family {
            name: "loopwarden_host_namespaces".into(),
            help: "Network namespaces audited in this file.".into(),
            kind: "gauge",
            series: vec![(Vec::new(), report.namespaces.len() as f64)],
        },
        Family {
            name: "loopwarden_namespace_info".into(),
            help: "Constant 1 per namespace: its name as the reports give it (host, ip netns NAME, container, pod, \
                   process), to join on the netns label, which is the namespace's inode."
                .into(),
            kind: "gauge",
            series: report
                .namespaces
                .iter()
                .map(|n| {
                    (
                        vec![
                            ("netns".to_string(), n.report.host.netns.clone()),
                            ("name".to_string(), n.namespace.label()),
                        ],
                        1.0,
                    )
                })
                .collect(),
        },
    ]);
    render_merged(parts)
}

/// Writes a fleet's metrics: for each host whose snapshot could be read, its audit's families
/// labelled `host` first, with the snapshot's collection time as the audit's timestamp (what an
/// alert on staleness must watch); for every host, `loopwarden_fleet_snapshot_usable` (0: the
/// snapshot could not be read or audited — its findings are unknown, never zero) and, where
/// known, `loopwarden_fleet_snapshot_age_seconds`. `report_of` gives a host's report and its
/// extra families (the harden table's counters), read again one at a time.
pub fn write_fleet(
    out: &mut dyn std::io::Write,
    fleet: &Fleet,
    duration_seconds: f64,
    mut report_of: impl FnMut(&FleetHost) -> Result<(Report, Vec<Family>), String>,
) -> std::io::Result<()> {
    let mut usable = Family {
        name: "loopwarden_fleet_snapshot_usable".into(),
        help: "1 when the host's snapshot was read and audited, 0 when it was not (its findings are then \
               unknown, not absent)."
            .into(),
        kind: "gauge",
        series: Vec::new(),
    };
    let mut age = Family {
        name: "loopwarden_fleet_snapshot_age_seconds".into(),
        help: "How old the host's snapshot was when the fleet was audited, in seconds.".into(),
        kind: "gauge",
        series: Vec::new(),
    };
    let mut stale = Family {
        name: "loopwarden_fleet_snapshot_stale".into(),
        help: "1 when the host's snapshot is stale: older than --stale-after, or dated ahead of this clock (it \
               says what the host was, not what it is)."
            .into(),
        kind: "gauge",
        series: Vec::new(),
    };
    let mut parts = Vec::new();
    for host in &fleet.hosts {
        let label = || vec![("host".to_string(), host.name.clone())];
        if let Some(seconds) = host.age_seconds {
            age.series.push((label(), seconds as f64));
        }
        stale.series.push((label(), if host.stale { 1.0 } else { 0.0 }));
        let report = match &host.error {
            Some(_) => None,
            None => report_of(host).ok(),
        };
        usable.series.push((label(), if report.is_some() { 1.0 } else { 0.0 }));
        if let Some((report, extra)) = report {
            let run = RunInfo {
                duration_seconds,
                finished_at: host.collected_at.unwrap_or(fleet.audited_at) as f64,
            };
            let mut own = families(&report, run, &extra);
            label_first(&mut own, "host", &host.name);
            parts.push(own);
        }
    }
    let skipped = Family {
        name: "loopwarden_fleet_files_not_read".into(),
        help: "Entries of the snapshot directories that were not read (a symbolic link, a FIFO, a device): a host \
               whose snapshot became one is missing from this file."
            .into(),
        kind: "gauge",
        series: vec![(Vec::new(), fleet.skipped.len() as f64)],
    };
    parts.push(vec![usable, stale, age, skipped]);
    out.write_all(render_merged(parts).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::CheckId;
    use crate::facts::HostFactsSet;
    use crate::report::Status;

    const RUN: RunInfo = RunInfo {
        duration_seconds: 1.5,
        finished_at: 1_800_000_000.0,
    };

    fn declared_once(text: &str) {
        let types: Vec<&str> = text.lines().filter(|l| l.starts_with("# TYPE ")).collect();
        let mut unique = types.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), types.len(), "a family declared twice:\n{text}");
        let series: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').map(|(s, _)| s))
            .collect();
        let mut distinct = series.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), series.len(), "a series written twice:\n{text}");
    }

    /// A host whose pasta forwards a wildcard port to a container's loopback service: the
    /// whole-host check finds it in the container's namespace.
    fn pasta_set() -> HostFactsSet {
        use crate::checks::host::testing::{namespace, set};
        use crate::facts::{NamespaceLink, Process, Protocol};
        let mut host = namespace(1, true);
        host.facts.host.netns = "net:[1]".into();
        host.facts.processes.push(Process {
            pid: 700,
            ppid: 1,
            name: "pasta".into(),
            exe: Some("/usr/bin/pasta".into()),
            cmdline: ["pasta", "--netns", "/run/netns/c", "-t", "28080:18080"]
                .map(String::from)
                .to_vec(),
            uid: 1000,
        });
        let mut listener = crate::checks::test_facts::inet(Protocol::Tcp, "0.0.0.0", 28080);
        listener.owners = vec![700];
        host.facts.inet_sockets.push(listener);
        let mut container = namespace(2, false);
        container.facts.host.netns = "net:[2]".into();
        container
            .facts
            .inet_sockets
            .push(crate::checks::test_facts::inet(Protocol::Tcp, "127.0.0.1", 18080));
        let mut s = set(vec![host, container]);
        s.links.push(NamespaceLink {
            pid: 700,
            from: 1,
            to: 2,
        });
        s
    }

    #[test]
    fn a_host_report_counts_each_namespaces_findings_under_its_own_label() {
        let set = pasta_set();
        let host = crate::audit_host::audit_host(&set);
        assert!(
            host.findings.iter().any(|f| f.netns == "net:[2]"),
            "{:#?}",
            host.findings
        );
        let text = render_host(&host, RUN, &|_| Vec::new());
        declared_once(&text);
        assert!(text.contains("\nloopwarden_host_limits 0\n"), "{text}");
        assert!(text.contains("\nloopwarden_host_namespaces 2\n"), "{text}");
        assert!(
            text.contains("\nloopwarden_namespace_info{netns=\"net:[1]\",name=\"host\"} 1\n"),
            "{text}"
        );
        for n in &host.namespaces {
            let open = |check: CheckId| {
                n.report
                    .findings
                    .iter()
                    .chain(
                        host.findings
                            .iter()
                            .filter(|f| f.netns == n.namespace.id)
                            .map(|f| &f.finding),
                    )
                    .filter(|f| f.check == check && f.status == Status::Open)
                    .count()
            };
            for check in CheckId::ALL {
                let line = format!(
                    "loopwarden_findings{{netns=\"{}\",check=\"{}\",status=\"open\"}} {}",
                    n.namespace.id,
                    check.as_str(),
                    open(*check)
                );
                assert!(text.lines().any(|l| l == line), "no {line}:\n{text}");
            }
        }
    }

    #[test]
    fn a_fleet_labels_every_series_with_its_host_and_an_unreadable_host_is_not_zero() {
        let mut facts = crate::checks::test_facts::base();
        facts.host.netns = "net:[1]".into();
        let report = crate::audit(&facts);
        let mut builder = crate::fleet::FleetBuilder::new(crate::fleet::Freshness {
            now: 160,
            stale_after: 3600,
        });
        builder.add("web-1".into(), "web-1.json".into(), Ok((&report, 100)));
        builder.add("db-1".into(), "db-1.json".into(), Err("not JSON".into()));
        let fleet = builder.finish(Vec::new());
        let mut out = Vec::new();
        write_fleet(&mut out, &fleet, 0.5, |_| Ok((report.clone(), Vec::new()))).unwrap();
        let text = String::from_utf8(out).unwrap();
        declared_once(&text);
        assert!(
            text.contains("loopwarden_fleet_snapshot_usable{host=\"web-1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("loopwarden_fleet_snapshot_usable{host=\"db-1\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("loopwarden_fleet_snapshot_age_seconds{host=\"web-1\"} 60\n"),
            "{text}"
        );
        assert!(
            text.contains("loopwarden_audit_timestamp_seconds{host=\"web-1\",netns=\"net:[1]\"} 100\n"),
            "{text}"
        );
        assert!(
            !text.contains("host=\"db-1\",netns"),
            "no audit series for a host without a report:\n{text}"
        );
    }
}
