//! `loopwarden audit`: the main job.

use super::format::{self, Format};
use super::output;
use super::progress::Progress;
use super::threshold::FailOn;
use loopwarden_core::report::{human, json};
use std::path::PathBuf;

/// Audit this host's local services: who can reach each one, by which path, and how to close it.
///
/// Read-only. Collects this network namespace's facts (or reads a saved snapshot with --facts),
/// evaluates every check, and prints the findings grouped by service.
///
/// Metrics (--format prometheus, for node_exporter's textfile collector; every series labelled
/// netns first): loopwarden_findings{check,status}, loopwarden_findings_by_severity{severity,
/// status}, loopwarden_findings_failing{threshold}, loopwarden_services{scope},
/// loopwarden_limits, loopwarden_privileged, loopwarden_audit_duration_seconds,
/// loopwarden_audit_timestamp_seconds, loopwarden_info{version}, and from the harden table
/// loopwarden_harden_table, loopwarden_spoofed_packets_dropped_total{interface,family} and
/// loopwarden_spoofed_packets_dropped_by_rule_total{rule,family}. With --all-netns: every
/// namespace in one file, plus loopwarden_host_limits, loopwarden_host_limit_info{limit} (which
/// namespaces could not be seen, and why), loopwarden_host_namespaces and
/// loopwarden_namespace_info{netns,name}.
///
/// Exit status: 0 when no finding is at or above --fail-on, 1 when some are, 2 on error.
#[derive(clap::Args)]
pub struct Args {
    /// --json, --format human|json|html|prometheus, --out FILE (JSON: loopwarden.report/v1).
    #[command(flatten)]
    output: format::Output,
    /// Audit a snapshot saved by `loopwarden facts --out FILE` instead of this host (`-`: read
    /// it from standard input; with --all-netns, one of `facts --all-netns`). At most 64 MiB
    /// (256 with --all-netns); LOOPWARDEN_MAX_SNAPSHOT_MIB=N sets another limit.
    #[arg(long, value_name = "FILE", conflicts_with = "netns", value_hint = clap::ValueHint::FilePath)]
    facts: Option<PathBuf>,
    /// Exit 1 when a finding at or above this severity is open or unknown, or never
    /// (`never`: report only).
    #[arg(long, value_name = "SEVERITY", value_enum, ignore_case = true, default_value = "low")]
    fail_on: FailOn,
    /// Also ask this host's own listeners: browser-borne checks on local HTTP(S) services and
    /// relay checks (HTTP/SOCKS proxies, proven against a canary loopwarden opens itself). An
    /// FTP server is logged into as `anonymous` (never with a guessed password) and asked for a
    /// file listing (NLST) sent to a loopback canary: its log will show the login.
    #[arg(long, conflicts_with = "facts")]
    probe: bool,
    /// With --probe: do not send the one state-changing request (an empty cross-site text/plain
    /// POST to services with an open finding).
    #[arg(long)]
    no_post: bool,
    /// With --probe: log every probe request and its outcome on stderr.
    #[arg(long)]
    verbose: bool,
    /// Replay the attacks in a throwaway lab (needs root) and mark each finding the lab can
    /// test proven open or blocked.
    #[arg(long)]
    prove: bool,
    #[command(flatten)]
    netns: super::netns_args::NetnsArgs,
}

/// `--all-netns`: every namespace (or a `facts --all-netns` snapshot), one whole-host report.
fn all_netns(args: &Args, progress: &Progress, clock: &format::Clock) -> anyhow::Result<u8> {
    let set = match &args.facts {
        Some(path) => {
            progress.step("reading the snapshot");
            super::all_netns::load(path)?
        }
        None => super::netns_args::collect_all(progress),
    };
    let opts = super::all_netns::AuditOptions {
        probe: args.probe.then(|| loopwarden_probe::ProbeOptions {
            post: !args.no_post,
            verbose: args.verbose,
            ..Default::default()
        }),
        prove: args.prove,
        fail_on: args.fail_on.threshold(),
    };
    super::all_netns::audit(&set, &opts, &args.output, progress, clock)
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<u8> {
    // Said, not ignored: a user who asks for them believes something is probed.
    for (given, flag) in [(args.no_post, "--no-post"), (args.verbose, "--verbose")] {
        if given && !args.probe {
            anyhow::bail!("{flag} applies to --probe only, which was not given (and cannot be with --facts: a snapshot's listeners are not this host's)");
        }
    }
    let clock = format::Clock::start();
    let progress = Progress::new();
    if args.netns.all_netns {
        return all_netns(&args, &progress, &clock);
    }
    let facts = match &args.facts {
        Some(path) => {
            progress.step("reading the snapshot");
            super::snapshot::load(path)?
        }
        None => args.netns.collect_one(&progress)?,
    };
    progress.step(&format!(
        "auditing {} sockets",
        facts.inet_sockets.len() + facts.unix_sockets.len()
    ));
    let mut report = loopwarden_core::audit(&facts);
    if args.probe {
        let opts = loopwarden_probe::ProbeOptions {
            post: !args.no_post,
            verbose: args.verbose,
            ..Default::default()
        };
        if args.verbose {
            // The log goes to stderr line by line; a progress line would be torn through it.
            progress.clear();
        }
        // Inside the namespace --netns names: its listeners are only there.
        let probed = args.netns.run_in(&|| {
            loopwarden_probe::probe(&facts, &opts, &|done, total| {
                progress.count("probing listeners", done, total)
            })
        })??;
        report.merge_active(probed.findings);
        report.activity.extend(probed.summary.lines());
    }
    if args.prove {
        let source = if args.facts.is_some() { "snapshot" } else { "host" };
        let lab = super::prove::prove(&facts, source.to_string(), &progress)?;
        report.merge_active(lab.findings(&facts));
        report.host.limits.extend(lab.limits());
        report.activity.push(loopwarden_lab::render::activity(&lab));
    }
    progress.clear();
    // To a terminal or a pipe, human and JSON reports are streamed (a 100,000-socket report is
    // never held whole); every other case is rendered, then written (atomically to --out).
    match (args.output.format(), args.output.to_stdout()) {
        (Format::Json, true) => output::stream(|out| json::write(out, &report))?,
        (Format::Human, true) => {
            let color = args.output.color();
            output::stream(|out| human::write(out, &report, color))?
        }
        (format, _) => {
            let text = format::render_report(format, &report, &facts, &clock, args.output.color())?;
            args.output.emit(&text)?
        }
    }
    let failing = args
        .fail_on
        .threshold()
        .is_some_and(|threshold| report.failing(threshold).next().is_some());
    // The process ends next: giving 100,000 findings back to the allocator one by one costs
    // more than writing them out; the kernel takes the memory back at exit in one go.
    std::mem::forget(report);
    std::mem::forget(facts);
    Ok(if failing {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_CLEAN
    })
}
