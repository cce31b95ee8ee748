//! `loopwarden audit`: the main job.

use super::output;
use loopwarden_core::report::{human, json, Severity};
use std::path::PathBuf;

/// Audit this host's local services: who can reach each one, by which path, and how to close it.
///
/// Read-only. Collects this network namespace's facts (or reads a saved snapshot with --facts),
/// evaluates every check, and prints the findings grouped by service.
///
/// Exit status: 0 when no finding is at or above --fail-on, 1 when some are, 2 on error.
#[derive(clap::Args)]
pub struct Args {
    /// Print the report as JSON (schema loopwarden.report/v1).
    #[arg(long)]
    json: bool,
    /// Audit a snapshot saved by `loopwarden facts --out FILE` instead of this host (`-`: read
    /// it from standard input).
    #[arg(long, value_name = "FILE")]
    facts: Option<PathBuf>,
    /// Exit 1 when a finding at or above this severity is open or unknown
    /// (info, low, medium, high, critical).
    #[arg(long, value_name = "SEVERITY", default_value = "low")]
    fail_on: Severity,
    /// Also ask this host's own listeners: browser-borne checks on local HTTP(S) services and
    /// relay checks (HTTP/SOCKS proxies, proven against a canary loopwarden opens itself).
    #[arg(long, conflicts_with = "facts")]
    probe: bool,
    /// With --probe: do not send the one state-changing request (an empty cross-site text/plain
    /// POST to services with an open finding).
    #[arg(long, requires = "probe")]
    no_post: bool,
    /// Log every probe request and its outcome on stderr.
    #[arg(long)]
    verbose: bool,
    /// Replay the attacks in a throwaway lab (needs root) and mark each finding the lab can
    /// test proven open or blocked.
    #[arg(long)]
    prove: bool,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let facts = match &args.facts {
        Some(path) => super::snapshot::load(path)?,
        None => loopwarden_core::collect::collect(),
    };
    let mut report = loopwarden_core::audit(&facts);
    if args.probe {
        let opts = loopwarden_probe::ProbeOptions {
            post: !args.no_post,
            verbose: args.verbose,
            ..Default::default()
        };
        report.merge_active(loopwarden_probe::probe(&facts, &opts)?);
    }
    if args.prove {
        let source = if args.facts.is_some() { "snapshot" } else { "host" };
        let lab = super::prove::prove(&facts, source.to_string())?;
        report.merge_active(lab.findings(&facts));
        report.host.limits.extend(lab.limits());
    }
    if args.json {
        output::stream(|out| json::write(out, &report))?;
    } else {
        let color = output::use_color();
        output::stream(|out| human::write(out, &report, color))?;
    }
    Ok(if report.failing(args.fail_on).next().is_some() {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_CLEAN
    })
}
