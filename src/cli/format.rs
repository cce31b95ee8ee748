//! The output options of the reporting verbs: `--format FORMAT` (`--json` is `--format json`)
//! and `--out FILE`, and the rendering of an audit report in each format. Every reporting verb
//! (`audit`, `prove`, `fleet`) writes all four [`Format`]s; verbs take [`Output`] with
//! `#[command(flatten)]`.

use super::output;
use anyhow::Context;
use loopwarden_core::report::{html, human, json, prometheus, Report};
use loopwarden_core::HostFacts;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

/// What a report is written as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// For a terminal, coloured on a TTY.
    Human,
    /// For programs: the verb's JSON schema.
    Json,
    /// One self-contained page with a reachability map (no network needed to open it).
    Html,
    /// Prometheus text format, for node_exporter's textfile collector (the series: see the
    /// verb's description).
    Prometheus,
}

/// Where and how a verb writes its report.
#[derive(Debug, clap::Args)]
pub struct Output {
    /// Print JSON: the same as --format json.
    #[arg(long, conflicts_with = "format")]
    json: bool,
    /// The report's format (human unless told otherwise).
    #[arg(long, value_enum, value_name = "FORMAT")]
    format: Option<Format>,
    /// Write the report to FILE instead of standard output. The file is written beside FILE and
    /// renamed over it, so a reader never sees half of it; mode 0600 (it describes the host's
    /// weak spots), 0644 for --format prometheus (node_exporter reads it
    /// as its own user).
    #[arg(long, value_name = "FILE", value_hint = clap::ValueHint::FilePath)]
    out: Option<PathBuf>,
}

impl Output {
    /// The chosen format (human unless told otherwise).
    pub fn format(&self) -> Format {
        match (self.json, self.format) {
            (true, _) => Format::Json,
            (false, Some(f)) => f,
            (false, None) => Format::Human,
        }
    }

    /// Whether the report goes to standard output (no `--out`).
    pub fn to_stdout(&self) -> bool {
        self.out.is_none()
    }

    /// Whether human output may be coloured: on a terminal, without `NO_COLOR`, never in a file.
    pub fn color(&self) -> bool {
        self.out.is_none() && output::use_color()
    }

    /// Writes what `write` produces to `--out` (atomically, mode as for [`Output::emit`]) or to
    /// standard output, as it goes: a report made of many parts (a fleet) is never held whole.
    pub fn emit_with(&self, write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) -> anyhow::Result<()> {
        match &self.out {
            None => output::stream(write),
            Some(path) => {
                let mode = if self.format() == Format::Prometheus {
                    0o644
                } else {
                    0o600
                };
                output::write_atomic_with(path, mode, write)
            }
        }
    }

    /// Writes the rendered report to `--out` (atomically) or to standard output.
    pub fn emit(&self, text: &str) -> anyhow::Result<()> {
        match &self.out {
            None => output::print(text),
            Some(path) => {
                let mode = if self.format() == Format::Prometheus {
                    0o644
                } else {
                    0o600
                };
                let text = if text.ends_with('\n') {
                    text.to_string()
                } else {
                    format!("{text}\n")
                };
                output::write_atomic(path, &text, mode)
            }
        }
    }
}

/// When an audit started, for the metrics' duration and time.
pub struct Clock(Instant);

impl Clock {
    /// Starts timing now.
    pub fn start() -> Clock {
        Clock(Instant::now())
    }

    /// How long since the start, and the time now.
    pub fn run_info(&self) -> prometheus::RunInfo {
        prometheus::RunInfo {
            duration_seconds: self.0.elapsed().as_secs_f64(),
            finished_at: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()),
        }
    }
}

/// Renders an audit `report` of `facts` in `format`; the metrics also carry the harden table's
/// drop counters and how long the audit took since `clock` started.
pub fn render_report(
    format: Format,
    report: &Report,
    facts: &HostFacts,
    clock: &Clock,
    color: bool,
) -> anyhow::Result<String> {
    Ok(match format {
        Format::Human => human::render(report, color),
        Format::Json => json::render(report).context("cannot serialise the report as JSON")?,
        Format::Html => html::render(report),
        Format::Prometheus => {
            prometheus::render(report, clock.run_info(), &loopwarden_core::spoof_drops::metrics(facts))
        }
    })
}
