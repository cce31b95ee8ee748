//! `loopwarden fleet`: many hosts' snapshots audited into one report.

use super::format::{self, Format};
use super::snapshot::{self, Stamp};
use super::threshold::FailOn;
use anyhow::Context;
use loopwarden_core::fleet::{unique_names, Fleet, FleetBuilder, FleetHost, Freshness, Skipped};
use loopwarden_core::report::{fleet_human, fleet_json, html, prometheus_set};
use loopwarden_core::HostFacts;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::SystemTime;

/// Audit many hosts' snapshots and print one report: hosts × checks, the worst paths first,
/// each host's detail one step away.
///
/// Takes snapshot files written by `loopwarden facts --out FILE` (contrib/ansible/ collects
/// them from every host of an inventory) or directories of them (every `*.json` regular file in
/// it; symbolic links, FIFOs and other special files there are listed as not read, never
/// opened). A host is named after its file (`web-1.json` is web-1). Snapshots are untrusted
/// input: each is only parsed, bounded in size, one at a time per core, and only its summary is
/// kept. A snapshot that cannot be audited is shown as unusable, one older than --stale-after
/// (or without a time) as stale — both count as failing: the host's state now is unknown — and
/// one taken without root or with limits as incomplete, never as clean.
///
/// Metrics (--format prometheus): each usable host's audit series (as `loopwarden audit` writes
/// them, the harden table's counters included) labelled host first, its snapshot's time as loopwarden_audit_timestamp_seconds; for every host
/// loopwarden_fleet_snapshot_usable{host} (0: its findings are unknown) and
/// loopwarden_fleet_snapshot_stale{host}, and loopwarden_fleet_snapshot_age_seconds{host} where
/// the snapshot's time is known; and loopwarden_fleet_files_not_read. With --host, the same for
/// that host (an unusable snapshot writes usable 0 and exits 1).
///
/// Exit status: 0 when no host has a finding at or above --fail-on and every snapshot was
/// usable and fresh, 1 otherwise, 2 on error.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  loopwarden fleet snapshots/                     hosts × checks and the worst paths
  loopwarden fleet snapshots/ --format html --out fleet.html
  loopwarden fleet snapshots/ --host web-1        one host's full report
  loopwarden fleet snapshots/ --stale-after 2h    snapshots older than two hours are stale
  ansible-playbook -i inventory contrib/ansible/playbook.yml && loopwarden fleet contrib/ansible/snapshots/")]
pub struct Args {
    /// Snapshot files, or directories whose `*.json` files are snapshots.
    #[arg(value_name = "SNAPSHOT|DIR", required = true, value_hint = clap::ValueHint::AnyPath)]
    snapshots: Vec<PathBuf>,
    /// Print only this host's report (its name in the hosts × checks table).
    #[arg(long, value_name = "NAME")]
    host: Option<String>,
    /// Count a host against the exit status when it has a finding at or above this severity
    /// that is open or unknown, or never (`never`: only unusable and stale snapshots count).
    #[arg(long, value_name = "SEVERITY", value_enum, ignore_case = true, default_value = "low")]
    fail_on: FailOn,
    /// A snapshot older than this is stale: it says what the host was, not what it is (a number
    /// with s, m, h, d or w: 90m, 36h, 2d).
    #[arg(long, value_name = "AGE", value_parser = parse_age, default_value = "1d")]
    stale_after: u64,
    /// --json, --format human|json|html|prometheus, --out FILE (JSON: loopwarden.fleet/v1, or
    /// loopwarden.report/v1 with --host; metrics: every host's audit series labelled `host`,
    /// with its snapshot's time as the audit's timestamp, and whether each snapshot was usable).
    #[command(flatten)]
    output: format::Output,
}

/// At most this many snapshots in one run.
const MAX_SNAPSHOTS: usize = 100_000;

/// A duration as `--stale-after` takes it: a whole number of seconds, or with a unit.
fn parse_age(text: &str) -> Result<u64, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not an age: a number with s, m, h, d or w (36h, 2d)"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (s, m, h, d or w)")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("{text:?} is too long an age"))
}

/// One snapshot file to read: where, and whether a symbolic link there may be followed (only
/// for a file named on the command line, never for one found in a directory).
struct Candidate {
    path: PathBuf,
    follow: bool,
}

/// Runs the verb.
pub fn run(args: Args) -> anyhow::Result<u8> {
    let clock = format::Clock::start();
    let (files, skipped) = snapshot_files(&args.snapshots)?;
    let names = unique_names(files.iter().map(|c| host_name(&c.path)));
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let freshness = Freshness {
        now,
        stale_after: args.stale_after,
    };
    if let Some(name) = &args.host {
        return one_host(&args, &clock, name, (&files, skipped), &names, freshness);
    }
    let (fleet, stamps) = audit_all(&files, &names, freshness, skipped);
    let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
    // The second pass for the formats that carry every host's report: one at a time, checked to
    // be the snapshot the summary was made of.
    let facts_of = |host: &FleetHost| -> Result<HostFacts, String> {
        let i = *index.get(host.name.as_str()).ok_or("not in this run")?;
        let c = &files[i];
        let (facts, stamp) = snapshot::load_regular(&c.path, c.follow).map_err(|e| format!("{e:#}"))?;
        if Some(stamp) != stamps[i] {
            return Err(format!(
                "{} changed while the fleet was audited: run again",
                c.path.display()
            ));
        }
        Ok(facts)
    };
    let report_of = |host: &FleetHost| facts_of(host).map(|f| loopwarden_core::audit(&f));
    // The metrics also carry each snapshot's harden drop counters.
    let metrics_of = |host: &FleetHost| {
        facts_of(host).map(|f| (loopwarden_core::audit(&f), loopwarden_core::spoof_drops::metrics(&f)))
    };
    match args.output.format() {
        Format::Json => args.output.emit_with(|out| fleet_json::write(out, &fleet, report_of))?,
        Format::Html => args.output.emit_with(|out| html::write_fleet(out, &fleet, report_of))?,
        Format::Prometheus => args
            .output
            .emit_with(|out| prometheus_set::write_fleet(out, &fleet, clock.run_info().duration_seconds, metrics_of))?,
        Format::Human => {
            let given: Vec<String> = args.snapshots.iter().map(|p| p.display().to_string()).collect();
            args.output.emit(&fleet_human::render(
                &fleet,
                &format!("loopwarden fleet {} --host HOST", given.join(" ")),
            ))?
        }
    }
    Ok(exit(fleet.failing(args.fail_on.threshold())))
}

fn exit(failing: bool) -> u8 {
    if failing {
        super::EXIT_FINDINGS
    } else {
        super::EXIT_CLEAN
    }
}

/// `--host NAME`: only that host's snapshot is read, and its whole report printed.
fn one_host(
    args: &Args,
    clock: &format::Clock,
    name: &str,
    (files, skipped): (&[Candidate], Vec<Skipped>),
    names: &[String],
    freshness: Freshness,
) -> anyhow::Result<u8> {
    // The name as the table shows it (control characters and backslashes escaped) is what a
    // user copies: it is matched first, so that `a\x1bb` is the host shown so and never the
    // one whose file is really named that (shown `a\\x1bb`).
    let shown = |n: &str| loopwarden_core::report::shown::line(n).into_owned();
    let i = names
        .iter()
        .position(|n| shown(n) == name)
        .or_else(|| names.iter().position(|n| n == name))
        .with_context(|| {
            format!(
                "no host \"{}\" in the fleet (hosts are named after their snapshot files, as the table shows them)",
                shown(name)
            )
        })?;
    let name = names[i].as_str();
    let c = &files[i];
    let loaded = snapshot::load_regular(&c.path, c.follow);
    if args.output.format() == Format::Prometheus {
        return one_host_metrics(args, clock, (name, c), skipped, freshness, loaded);
    }
    let (facts, _) = loaded.with_context(|| format!("host \"{}\" has no report", shown(name)))?;
    let report = loopwarden_core::audit(&facts);
    let host = FleetHost::summarize(
        name.to_string(),
        c.path.display().to_string(),
        Ok((&report, facts.host.collected_at)),
        freshness,
    );
    warn_if_stale(&host);
    let text = format::render_report(args.output.format(), &report, &facts, clock, args.output.color())?;
    args.output.emit(&text)?;
    Ok(exit(host.failing(args.fail_on.threshold())))
}

/// `--host NAME --format prometheus`: the fleet's metrics for a fleet of that one host, its
/// findings with its snapshot's usability, age and staleness. An unusable snapshot writes
/// usable 0 (a file written before must not keep saying it was fine) and counts as failing.
fn one_host_metrics(
    args: &Args,
    clock: &format::Clock,
    (name, c): (&str, &Candidate),
    skipped: Vec<Skipped>,
    freshness: Freshness,
    loaded: anyhow::Result<(HostFacts, Stamp)>,
) -> anyhow::Result<u8> {
    let audited = loaded
        .map(|(facts, _)| {
            let report = loopwarden_core::audit(&facts);
            (
                report,
                loopwarden_core::spoof_drops::metrics(&facts),
                facts.host.collected_at,
            )
        })
        .map_err(|e| format!("{e:#}"));
    let mut one = FleetBuilder::new(freshness);
    let summary = audited.as_ref().map(|(r, _, at)| (r, *at)).map_err(Clone::clone);
    one.add(name.to_string(), c.path.display().to_string(), summary);
    let fleet = one.finish(skipped);
    fleet.hosts.iter().for_each(warn_if_stale);
    let duration = clock.run_info().duration_seconds;
    args.output.emit_with(|out| {
        prometheus_set::write_fleet(out, &fleet, duration, |_| {
            audited.clone().map(|(report, counters, _)| (report, counters))
        })
    })?;
    Ok(exit(fleet.failing(args.fail_on.threshold())))
}

/// Says on standard error that a host's snapshot is stale: it tells what the host was.
fn warn_if_stale(host: &FleetHost) {
    if host.stale {
        eprintln!(
            "loopwarden: warning: {}'s snapshot is stale ({}): it says what the host was, not what it is",
            loopwarden_core::report::shown::line(&host.name),
            fleet_human::age(host)
        );
    }
}

/// The snapshot files named on the command line: files as given (a symbolic link followed),
/// directories' `*.json` regular files (not hidden ones, not in subdirectories), in name order.
/// What a directory holds under a snapshot's name but is not a regular file — a symbolic link
/// (which could lead anywhere), a FIFO (which would block the read), a socket, a device — is
/// skipped and said. A path that does not exist is an error (a typo).
fn snapshot_files(given: &[PathBuf]) -> anyhow::Result<(Vec<Candidate>, Vec<Skipped>)> {
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    for path in given {
        let meta = std::fs::metadata(path).with_context(|| format!("no snapshot or directory {}", path.display()))?;
        if meta.is_dir() {
            let mut found: Vec<(PathBuf, std::fs::FileType)> = std::fs::read_dir(path)
                .with_context(|| format!("cannot list {}", path.display()))?
                .filter_map(Result::ok)
                .filter_map(|e| e.file_type().ok().map(|t| (e.path(), t)))
                .filter(|(p, _)| {
                    p.extension().is_some_and(|x| x == "json")
                        && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            found.sort_by(|a, b| a.0.cmp(&b.0));
            for (p, t) in found {
                match kind_not_read(t) {
                    None => files.push(Candidate { path: p, follow: false }),
                    Some(reason) => skipped.push(Skipped {
                        path: p.display().to_string(),
                        reason: reason.to_string(),
                    }),
                }
            }
        } else {
            files.push(Candidate {
                path: path.clone(),
                follow: true,
            });
        }
        if files.len() > MAX_SNAPSHOTS {
            anyhow::bail!("more than {MAX_SNAPSHOTS} snapshots: refused");
        }
    }
    if files.is_empty() {
        let why = match skipped.len() {
            0 => String::new(),
            n => format!(
                " ({n} not read: {})",
                skipped
                    .iter()
                    .map(|s| format!("{}: {}", s.path, s.reason))
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        };
        anyhow::bail!("no snapshot found in {}{why}", shown_paths(given));
    }
    Ok((files, skipped))
}

/// Why a directory entry named like a snapshot is not read, `None` for a regular file.
fn kind_not_read(t: std::fs::FileType) -> Option<&'static str> {
    use std::os::unix::fs::FileTypeExt;
    if t.is_file() {
        None
    } else if t.is_symlink() {
        Some("a symbolic link: not followed in a directory (name the file itself to read it)")
    } else if t.is_fifo() {
        Some("a FIFO, not a snapshot file: not opened")
    } else if t.is_socket() {
        Some("a socket, not a snapshot file")
    } else if t.is_char_device() || t.is_block_device() {
        Some("a device, not a snapshot file: not opened")
    } else if t.is_dir() {
        Some("a directory (subdirectories are not searched)")
    } else {
        Some("not a regular file")
    }
}

fn shown_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Reads and audits every snapshot, on as many threads as there are cores, one snapshot per
/// thread at a time; each host's summary goes into the fleet and its report is dropped. Returns
/// the fleet and each file's stamp (`None`: not usable), for the second pass.
fn audit_all(
    files: &[Candidate],
    names: &[String],
    freshness: Freshness,
    skipped: Vec<Skipped>,
) -> (Fleet, Vec<Option<Stamp>>) {
    let next = AtomicUsize::new(0);
    let builder = Mutex::new(FleetBuilder::new(freshness));
    let stamps: Mutex<Vec<Option<Stamp>>> = Mutex::new(vec![None; files.len()]);
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = files.get(i) else { break };
                let loaded = snapshot::load_regular(&c.path, c.follow).map_err(|e| format!("{e:#}"));
                let audited =
                    loaded.map(|(facts, stamp)| (loopwarden_core::audit(&facts), facts.host.collected_at, stamp));
                if let Ok((_, _, stamp)) = &audited {
                    if let Ok(mut s) = stamps.lock() {
                        s[i] = Some(*stamp);
                    }
                }
                let summary = audited.as_ref().map(|(r, at, _)| (r, *at)).map_err(Clone::clone);
                if let Ok(mut b) = builder.lock() {
                    b.add(names[i].clone(), c.path.display().to_string(), summary);
                }
            });
        }
    });
    let builder = builder.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    let stamps = stamps.into_inner().unwrap_or_else(|poisoned| poisoned.into_inner());
    (builder.finish(skipped), stamps)
}

/// A host's fleet name: its snapshot's file name without `.json`.
fn host_name(path: &Path) -> String {
    path.file_stem()
        .map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_take_units_and_refuse_nonsense() {
        assert_eq!(parse_age("90"), Ok(90));
        assert_eq!(parse_age("90m"), Ok(5400));
        assert_eq!(parse_age("36h"), Ok(129_600));
        assert_eq!(parse_age("2d"), Ok(172_800));
        assert_eq!(parse_age("1w"), Ok(604_800));
        assert!(parse_age("soon").is_err() && parse_age("3y").is_err() && parse_age("").is_err());
        assert!(parse_age("99999999999999999999w").is_err());
    }
}
