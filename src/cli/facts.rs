//! `loopwarden facts`: the snapshot alone.

use super::output;
use anyhow::Context;
use std::path::PathBuf;

/// Collect this network namespace's facts (sockets and their owners, interfaces, sysctls, name
/// resolution, accounts, firewall, relays) as JSON. Read-only; judges nothing.
///
/// Audit the snapshot later, here or on another machine, with `loopwarden audit --facts FILE`.
#[derive(clap::Args)]
pub struct Args {
    /// Write the snapshot to FILE (mode 0600: it holds configuration) instead of stdout.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let progress = super::progress::Progress::new();
    let facts = loopwarden_core::collect::collect_reporting(&|step| progress.step(step));
    progress.clear();
    let json = facts.to_json().context("cannot serialise the snapshot as JSON")?;
    match args.out {
        Some(path) => output::write_private(&path, &(json + "\n"))
            .with_context(|| format!("cannot write snapshot to {}", path.display()))?,
        None => output::print(&json)?,
    }
    Ok(super::EXIT_CLEAN)
}
