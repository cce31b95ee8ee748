//! The whole-host audit: every namespace's facts in, one report out. Pure: no I/O.

use crate::checks::host::{self, HostContext};
use crate::facts::HostFactsSet;
use crate::report::{sort_host_findings, HostReport, HostSummary, NamespaceReport, Report, HOST_REPORT_SCHEMA};

/// Audits every namespace of `set` and evaluates the whole-host checks.
pub fn audit_host(set: &HostFactsSet) -> HostReport {
    let reports = set.namespaces.iter().map(|n| crate::audit(&n.facts)).collect();
    host_report(set, reports)
}

/// Assembles the whole-host report from each namespace's report (in the order of
/// `set.namespaces`, possibly upgraded by probes or the lab): the whole-host checks read those
/// reports, so an attack the lab refuted in a namespace is refuted here too.
pub fn host_report(set: &HostFactsSet, reports: Vec<Report>) -> HostReport {
    let mut findings = host::evaluate(&HostContext { set, reports: &reports });
    sort_host_findings(&mut findings);
    HostReport {
        schema: HOST_REPORT_SCHEMA.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        host: HostSummary {
            hostname: set.hostname.clone(),
            kernel: set.kernel.clone(),
            privileged: set.privileged,
            limits: set
                .limits
                .iter()
                .map(|l| format!("{}: {}", l.scope, l.detail))
                .collect(),
        },
        namespaces: set
            .namespaces
            .iter()
            .zip(reports)
            .map(|(n, report)| NamespaceReport {
                namespace: n.namespace.clone(),
                report,
            })
            .collect(),
        findings,
    }
}
