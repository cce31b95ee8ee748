//! The audit: facts in, report out. Pure: no I/O.

use crate::checks;
use crate::facts::HostFacts;
use crate::report::{sort_findings, Report, ReportHost, REPORT_SCHEMA};

/// Evaluates every static check against `facts` and assembles the report.
///
/// The same facts always give the same report, which is what makes an offline audit of a saved
/// snapshot identical to the audit on the host.
pub fn audit(facts: &HostFacts) -> Report {
    let ctx = checks::Context::new(facts);
    let mut findings: Vec<_> = checks::ALL
        .iter()
        .filter_map(|c| c.evaluate)
        .flat_map(|evaluate| evaluate(&ctx))
        .collect();
    sort_findings(&mut findings);
    let services = ctx.into_services();
    Report {
        schema: REPORT_SCHEMA.to_string(),
        tool_version: env!("CARGO_PKG_VERSION").to_string(),
        host: ReportHost {
            hostname: facts.host.hostname.clone(),
            kernel: facts.host.kernel.clone(),
            netns: facts.host.netns.clone(),
            privileged: facts.host.privileged,
            limits: facts
                .host
                .limits
                .iter()
                .map(|l| format!("{}: {}", l.scope, l.detail))
                .collect(),
        },
        services,
        findings,
        activity: Vec::new(),
    }
}
