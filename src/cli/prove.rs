//! `loopwarden prove`: the lab — this host (or a snapshot, or a built-in scenario) replayed in
//! throwaway namespaces, with the real attacks fired from a neighbour.

use super::format::{self, Format};
use super::output;
use super::progress::Progress;
use anyhow::Context;
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
///
/// Exit status: 0 when no attack got through, 1 when one did, 2 on error (or failed controls).
#[derive(clap::Args)]
pub struct Args {
    /// --json, --format human|json|html, --out FILE. JSON is the attack matrix
    /// (loopwarden.proof/v1); html is the audit report with the lab's outcomes as proven paths
    /// (as `audit --prove --format html` writes it).
    #[command(flatten)]
    output: format::Output,
    /// Mirror a snapshot saved by `loopwarden facts --out FILE` instead of this host (`-`: read
    /// it from standard input).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["scenario", "netns"])]
    facts: Option<PathBuf>,
    /// Run a built-in demonstration without reading this host: kube-route-localnet,
    /// docker-published-loopback, ntpd-ipv6-loopback, mapped-loopback-udp, hardened.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["netns", "all_netns"])]
    scenario: Option<String>,
    #[command(flatten)]
    netns: super::netns_args::NetnsArgs,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let progress = Progress::new();
    if args.netns.all_netns {
        let set = match &args.facts {
            Some(path) => super::all_netns::load(path)?,
            None => super::netns_args::collect_all(&progress),
        };
        return super::all_netns::prove(&set, &args.output, &progress);
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
    if args.output.format() == Format::Prometheus {
        anyhow::bail!(
            "prove has no metrics of its own: `loopwarden audit --prove --format prometheus` writes the audit's, with the lab's outcomes"
        );
    }
    let report = prove(&facts, source, &progress)?;
    progress.clear();
    let text = match args.output.format() {
        Format::Json => output::to_json(&report, "proof")?,
        Format::Html => {
            let mut audit = loopwarden_core::audit(&facts);
            audit.merge_active(report.findings(&facts));
            audit.host.limits.extend(report.limits());
            loopwarden_core::report::html::render(&audit)
        }
        Format::Human | Format::Prometheus => loopwarden_lab::render::human(&report, args.output.color()),
    };
    args.output.emit(&text)?;
    if !report.controls_passed {
        return Ok(super::EXIT_ERROR);
    }
    let breached = report.results.iter().any(|r| !r.control && r.outcome.delivered());
    Ok(if breached {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_CLEAN
    })
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
