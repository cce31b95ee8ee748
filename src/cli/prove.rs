//! `loopwarden prove`: the lab — this host (or a snapshot, or a built-in scenario) replayed in
//! throwaway namespaces, with the real attacks fired from a neighbour.

use super::format::{self, Clock, Format};
use super::output;
use super::progress::Progress;
use anyhow::Context;
use loopwarden_core::report::Report;
use loopwarden_core::HostFacts;
use loopwarden_lab::{scenario, ProofReport, ProveOptions};
use std::path::PathBuf;

/// Replay this host in throwaway network namespaces and fire the real LAN attacks at mirrors
/// of its localhost services.
///
/// Mirrors the interfaces, addresses, sysctls and firewall rules into a victim namespace, opens
/// decoys on the host's loopback and wildcard ports, and sends hand-built frames from a
/// neighbour namespace: loopback destinations, spoofed loopback sources (127.0.0.1, ::1,
/// ::ffff:127.0.0.1), NAT-published loopback ports. Prints, per attack and service, whether it
/// was delivered or dropped, and why. Needs root; never changes this host.
///
/// The lab keeps the host's own interface addresses: they exist only inside the lab's
/// namespaces, which have no link or route to any other namespace, so no packet leaves them.
/// A drop is uncertain, never proof, where a rule was left out of the mirror or a loaded rule's
/// verdict depends on runtime state the lab does not share (the CPU, a random number, the
/// traffic so far, the clock).
///
/// Metrics (--format prometheus): the audit's series (see `loopwarden audit --help`) with the
/// lab's outcomes merged in, and loopwarden_prove_attacks{netns,outcome}: the attacks fired by
/// outcome (delivered, delivered-to-trust, blind, refused, dropped, and uncertain apart).
///
/// Exit status: 0 when no attack got through and every outcome is certain, 1 when one got through
/// or an outcome is uncertain (a rule left out of the mirror or depending on runtime state,
/// routes not captured), 2 on error (or failed controls).
#[derive(clap::Args)]
pub struct Args {
    /// --json, --format human|json|html|prometheus, --out FILE. JSON is the attack matrix
    /// (loopwarden.proof/v1); html and prometheus are the audit report with the lab's outcomes
    /// as proven paths (as `audit --prove` writes them), the metrics with the count of attacks
    /// by outcome (`loopwarden_prove_attacks`).
    #[command(flatten)]
    output: format::Output,
    /// Mirror a snapshot saved by `loopwarden facts --out FILE` instead of this host (`-`: read
    /// it from standard input).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath, conflicts_with_all = ["scenario", "netns"])]
    facts: Option<PathBuf>,
    /// Run a built-in demonstration without reading this host.
    #[arg(long, value_name = "NAME", value_parser = clap::builder::PossibleValuesParser::new(scenario::names()),
          conflicts_with_all = ["netns", "all_netns"])]
    scenario: Option<String>,
    #[command(flatten)]
    netns: super::netns_args::NetnsArgs,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let clock = Clock::start();
    let progress = Progress::new();
    if args.netns.all_netns {
        let set = match &args.facts {
            Some(path) => super::all_netns::load(path)?,
            None => super::netns_args::collect_all(&progress),
        };
        return super::all_netns::prove(&set, &args.output, &progress, &clock);
    }
    let (facts, source) = match (&args.scenario, &args.facts) {
        (Some(name), _) => {
            let s = scenario::find(name).with_context(|| {
                format!(
                    "unknown scenario {name:?}: expected one of {}",
                    scenario::names().join(", ")
                )
            })?;
            (s.facts(), format!("scenario:{name}"))
        }
        (None, Some(path)) => (super::snapshot::load(path)?, "snapshot".to_string()),
        (None, None) => (args.netns.collect_one(&progress)?, "host".to_string()),
    };
    let report = prove(&facts, source, &progress)?;
    progress.clear();
    let text = match args.output.format() {
        Format::Json => output::to_json(&report, "proof")?,
        Format::Html => {
            let title = format!("loopwarden prove of {} ({})", facts.host.hostname, report.source);
            loopwarden_core::report::html::render_titled(&title, &proven_audit(&facts, &report))
        }
        Format::Prometheus => loopwarden_core::report::prometheus::render(
            &proven_audit(&facts, &report),
            clock.run_info(),
            &[
                loopwarden_core::spoof_drops::metrics(&facts),
                vec![loopwarden_lab::render::attacks_metric(&report)],
            ]
            .concat(),
        ),
        Format::Human => loopwarden_lab::render::human(&report, args.output.color()),
    };
    args.output.emit(&text)?;
    if !report.controls_passed {
        return Ok(super::EXIT_ERROR);
    }
    Ok(if report.breached_or_uncertain() {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_CLEAN
    })
}

/// The audit of what the lab mirrored with the lab's outcomes merged in (its pages and metrics),
/// with the kernel the attacks ran on.
fn proven_audit(facts: &HostFacts, proof: &ProofReport) -> Report {
    let mut audit = loopwarden_core::audit(facts);
    audit.merge_active(proof.findings(facts));
    audit.host.limits.extend(proof.limits());
    audit.activity.push(loopwarden_lab::render::activity(proof));
    // A scenario has no kernel of its own, and a snapshot's may not be this one: the page says
    // which kernel decided the outcomes.
    audit.host.kernel = match facts.host.kernel.as_str() {
        "" => format!("{} (the lab's)", proof.kernel),
        k if k == proof.kernel => k.to_string(),
        k => format!("{k} (the lab ran on {})", proof.kernel),
    };
    audit
}

/// Runs the lab, showing how far it is on `progress`.
pub fn prove(facts: &HostFacts, source: String, progress: &Progress) -> anyhow::Result<ProofReport> {
    let opts = ProveOptions {
        source,
        progress: Some(Box::new(progress.reporter("lab"))),
        ..ProveOptions::default()
    };
    loopwarden_lab::prove(facts, &opts).context("the proof lab failed")
}
