//! The audit: facts in, report out. Pure: no I/O.

use crate::checks;
use crate::facts::HostFacts;
use crate::report::{sort_findings, Finding, Report, ReportHost, REPORT_SCHEMA};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Evaluates every static check against `facts` and assembles the report.
///
/// The same facts always give the same report, which is what makes an offline audit of a saved
/// snapshot identical to the audit on the host.
pub fn audit(facts: &HostFacts) -> Report {
    let ctx = checks::Context::new(facts);
    let mut findings: Vec<Finding> = evaluate_all(&ctx).into_iter().flatten().collect();
    crate::spoof_drops::annotate(facts, &mut findings);
    checks::no_loopback_antispoof::link(&mut findings);
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

/// Every static check's findings, in catalogue order. The checks are independent and pure, so
/// they share out over as many threads as the machine has cores (at 100,000 sockets each of the
/// heavy ones runs for a while); which thread ran which check changes nothing in the result.
fn evaluate_all(ctx: &checks::Context) -> Vec<Vec<Finding>> {
    let evaluations: Vec<fn(&checks::Context) -> Vec<Finding>> =
        checks::ALL.iter().filter_map(|c| c.evaluate).collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(evaluations.len());
    let next = AtomicUsize::new(0);
    // Takes the next check not yet taken, until none is left.
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(evaluate) = evaluations.get(i) else {
                break;
            };
            done.push((i, evaluate(ctx)));
        }
        done
    };
    let mut results: Vec<Vec<Finding>> = vec![Vec::new(); evaluations.len()];
    std::thread::scope(|scope| {
        // A thread that cannot be started leaves its share to the others.
        let helpers: Vec<_> = (1..workers)
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, work).ok())
            .collect();
        let mut done = work();
        for helper in helpers {
            match helper.join() {
                Ok(theirs) => done.extend(theirs),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        for (i, found) in done {
            results[i] = found;
        }
    });
    results
}
