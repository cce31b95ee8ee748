//! `loopwarden fleet`: many hosts' snapshots audited into one report.

use super::format::{self, Format};
use anyhow::Context;
use loopwarden_core::fleet::{Fleet, FleetHost};
use loopwarden_core::report::{fleet_human, html, human, json, Severity};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// Audit many hosts' snapshots and print one report: hosts × checks, the worst paths first,
/// each host's detail one step away.
///
/// Takes snapshot files written by `loopwarden facts --out FILE` (contrib/ansible/ collects
/// them from every host of an inventory) or directories of them (every `*.json` in it). A
/// host is named after its file (`web-1.json` is web-1). Snapshots are untrusted input: they
/// are only parsed, each bounded in size; one that cannot be audited is shown as unusable and
/// counts as failing — its host's state is unknown.
///
/// Exit status: 0 when no host has a finding at or above --fail-on (and every snapshot was
/// usable), 1 otherwise, 2 on error.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  loopwarden fleet snapshots/                     hosts × checks and the worst paths
  loopwarden fleet snapshots/ --format html --out fleet.html
  loopwarden fleet snapshots/ --host web-1        one host's full report
  ansible-playbook -i inventory contrib/ansible/playbook.yml && loopwarden fleet contrib/ansible/snapshots/")]
pub struct Args {
    /// Snapshot files, or directories whose `*.json` files are snapshots.
    #[arg(value_name = "SNAPSHOT|DIR", required = true)]
    snapshots: Vec<PathBuf>,
    /// Print only this host's report (its name in the hosts × checks table).
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Count a host against the exit status when it has a finding at or above this severity
    /// that is open or unknown (info, low, medium, high, critical).
    #[arg(long, value_name = "SEVERITY", default_value = "low")]
    fail_on: Severity,
    /// --json, --format human|json|html, --out FILE (JSON: loopwarden.fleet/v1, or
    /// loopwarden.report/v1 with --host).
    #[command(flatten)]
    output: format::Output,
}

/// At most this many snapshots in one run.
const MAX_SNAPSHOTS: usize = 100_000;

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let format = args.output.format();
    if format == Format::Prometheus {
        anyhow::bail!(
            "fleet has no metrics format: each host's node_exporter serves its own (see loopwarden-metrics.timer)"
        );
    }
    let files = snapshot_files(&args.snapshots)?;
    let fleet = Fleet::assemble(audit_all(&files));
    let text = match &args.host {
        Some(name) => {
            let host = fleet.host(name).with_context(|| {
                format!("no host {name:?} in the fleet (hosts are named after their snapshot files)")
            })?;
            let report = host.report.as_ref().with_context(|| {
                format!(
                    "host {name:?} has no report: {}",
                    host.error.as_deref().unwrap_or("its snapshot was not usable")
                )
            })?;
            match format {
                Format::Json => json::render(report).context("cannot serialise the report as JSON")?,
                Format::Html => html::render(report),
                Format::Human | Format::Prometheus => human::render(report, args.output.color()),
            }
        }
        None => match format {
            Format::Json => super::output::to_json(&fleet, "fleet")?,
            Format::Html => html::render_fleet(&fleet),
            Format::Human | Format::Prometheus => {
                let given: Vec<String> = args.snapshots.iter().map(|p| p.display().to_string()).collect();
                fleet_human::render(&fleet, &format!("loopwarden fleet {} --host HOST", given.join(" ")))
            }
        },
    };
    args.output.emit(&text)?;
    let failing = match &args.host {
        Some(name) => fleet.host(name).is_some_and(|h| h.failing(args.fail_on)),
        None => fleet.failing(args.fail_on),
    };
    Ok(if failing {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_CLEAN
    })
}

/// The snapshot files named on the command line: files as given, directories' `*.json` files
/// (not hidden ones, not in subdirectories), in name order. A path that does not exist is an
/// error (a typo); a file that cannot be read or parsed is an unusable host.
fn snapshot_files(given: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in given {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(Result::ok)
                .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                .map(|e| e.path())
                .filter(|p| {
                    p.extension().is_some_and(|x| x == "json")
                        && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            found.sort();
            files.extend(found);
        } else if path.exists() {
            files.push(path.clone());
        } else {
            anyhow::bail!("no snapshot or directory {}", path.display());
        }
        if files.len() > MAX_SNAPSHOTS {
            anyhow::bail!("more than {MAX_SNAPSHOTS} snapshots: refused");
        }
    }
    if files.is_empty() {
        anyhow::bail!("no snapshot found in {}", shown_paths(given));
    }
    Ok(files)
}

fn shown_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads and audits every snapshot, on as many threads as there are cores; only one snapshot
/// per thread is in memory at a time (a report is much smaller than its facts).
fn audit_all(files: &[PathBuf]) -> Vec<FleetHost> {
    let next = AtomicUsize::new(0);
    let done: Mutex<Vec<FleetHost>> = Mutex::new(Vec::with_capacity(files.len()));
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = files.get(i) else { break };
                let snapshot = super::snapshot::load(path).map_err(|e| format!("{e:#}"));
                let host = FleetHost::audit(host_name(path), path.display().to_string(), snapshot);
                if let Ok(mut done) = done.lock() {
                    done.push(host);
                }
            });
        }
    });
    done.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A host's fleet name: its snapshot's file name without `.json`.
fn host_name(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}
