//! `loopwarden audit`: the main job.

use super::output;
use anyhow::Context;
use loopwarden_core::report::{human, json, Severity};
use loopwarden_core::HostFacts;
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
    /// Audit a snapshot saved by `loopwarden facts --out FILE` instead of this host.
    #[arg(long, value_name = "FILE", conflicts_with = "netns")]
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
    #[command(flatten)]
    netns: super::netns_args::NetnsArgs,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let probe = args.probe.then(|| loopwarden_probe::ProbeOptions {
        post: !args.no_post,
        verbose: args.verbose,
        ..Default::default()
    });
    if args.netns.all_netns {
        let set = match &args.facts {
            Some(path) => super::all_netns::load(path)?,
            None => super::netns_args::collect_all(),
        };
        let opts = super::all_netns::AuditOptions {
            probe,
            prove: args.prove,
            json: args.json,
            fail_on: args.fail_on,
        };
        return super::all_netns::audit(&set, &opts);
    }
    let facts = match &args.facts {
        Some(path) => load(path)?,
        None => args.netns.collect_one()?,
    };
    let mut report = loopwarden_core::audit(&facts);
    if let Some(opts) = &probe {
        report.merge_active(args.netns.run_in(&|| loopwarden_probe::probe(&facts, opts))??);
    }
    if args.prove {
        let source = if args.facts.is_some() { "snapshot" } else { "host" };
        let lab = super::prove::prove(&facts, source.to_string())?;
        report.merge_active(lab.findings(&facts));
        report.host.limits.extend(lab.limits());
    }
    let text = if args.json {
        json::render(&report).context("cannot serialise the report as JSON")?
    } else {
        human::render(&report, output::use_color())
    };
    output::print(&text)?;
    Ok(if report.failing(args.fail_on).next().is_some() {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_CLEAN
    })
}

/// The largest snapshot read: far above a large Kubernetes node's (tens of MiB of rules), low
/// enough that a hostile file cannot exhaust memory.
const MAX_SNAPSHOT: u64 = 256 * 1024 * 1024;

/// Reads a snapshot, naming the file in every error. A snapshot is untrusted input: it is only
/// ever parsed, bounded in size.
pub(super) fn load(path: &PathBuf) -> anyhow::Result<HostFacts> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| format!("cannot read snapshot {}", path.display()))?;
    let mut text = String::new();
    file.take(MAX_SNAPSHOT + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read snapshot {}", path.display()))?;
    if text.len() as u64 > MAX_SNAPSHOT {
        anyhow::bail!(
            "snapshot {} is larger than {} MiB: refused",
            path.display(),
            MAX_SNAPSHOT / (1024 * 1024)
        );
    }
    HostFacts::from_json(&text).with_context(|| format!("snapshot {} is not usable", path.display()))
}
