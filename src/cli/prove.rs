//! `loopwarden prove`: the lab — this host (or a snapshot, or a built-in scenario) replayed in
//! throwaway namespaces, with the real attacks fired from a neighbour.

use super::output;
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use loopwarden_core::HostFacts;
use loopwarden_lab::{scenario, ProofReport, ProveOptions};
use std::io::IsTerminal;
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
    /// Print the attack matrix as JSON (schema loopwarden.proof/v1).
    #[arg(long)]
    json: bool,
    /// Mirror a snapshot saved by `loopwarden facts --out FILE` instead of this host.
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
    if args.netns.all_netns {
        let set = match &args.facts {
            Some(path) => super::all_netns::load(path)?,
            None => super::netns_args::collect_all(),
        };
        return super::all_netns::prove(&set, args.json);
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
        (None, Some(path)) => (super::audit::load(path)?, "snapshot".to_string()),
        (None, None) => (args.netns.collect_one()?, "host".to_string()),
    };
    let report = prove(&facts, source)?;
    let text = if args.json {
        output::to_json(&report, "proof")?
    } else {
        loopwarden_lab::render::human(&report, output::use_color())
    };
    output::print(&text)?;
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

/// Runs the lab with a progress bar on stderr when it is a terminal.
pub fn prove(facts: &HostFacts, source: String) -> anyhow::Result<ProofReport> {
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(Some(1), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template("{spinner} lab {bar:30} {pos}/{len} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let progress_bar = bar.clone();
    let opts = ProveOptions {
        source,
        progress: Some(Box::new(move |done, total, what| {
            progress_bar.set_length(total as u64);
            progress_bar.set_position(done as u64);
            progress_bar.set_message(what.to_string());
        })),
        ..ProveOptions::default()
    };
    let report = loopwarden_lab::prove(facts, &opts);
    bar.finish_and_clear();
    report.context("the proof lab failed")
}
