//! `loopwarden facts`: the snapshot alone.

use super::output;
use anyhow::Context;
use std::path::PathBuf;

/// Collect this network namespace's facts (sockets and their owners, interfaces, sysctls, name
/// resolution, accounts, firewall, relays) as JSON. Read-only; judges nothing.
///
/// Audit the snapshot later, here or on another machine, with `loopwarden audit --facts FILE`
/// (`audit --all-netns --facts FILE` for a snapshot of every namespace).
#[derive(clap::Args)]
pub struct Args {
    /// Write the snapshot to FILE (mode 0600: it holds configuration) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    netns: super::netns_args::NetnsArgs,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let progress = super::progress::Progress::new();
    let json = if args.netns.all_netns {
        super::netns_args::collect_all(&progress).to_json()
    } else {
        args.netns.collect_one(&progress)?.to_json()
    }
    .context("cannot serialise the snapshot as JSON")?;
    progress.clear();
    match args.out {
        // write_private names the path in every error it returns.
        Some(path) => output::write_private(&path, &(json + "\n"))?,
        None => output::print(&json)?,
    }
    Ok(super::EXIT_CLEAN)
}
