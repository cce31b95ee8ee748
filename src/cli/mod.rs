//! Command-line interface: parses arguments and hands each verb to the library.

mod all_netns;
mod audit;
mod checks;
mod completions;
mod facts;
mod fleet;
mod format;
mod guard;
mod harden;
mod harden_all;
mod man;
mod netns_args;
mod output;
mod progress;
mod prove;
mod snapshot;

use clap::{CommandFactory, Parser, Subcommand};
use std::io::Write;
use std::process::ExitCode;

/// Exit status: nothing at or above the threshold.
pub const EXIT_CLEAN: u8 = 0;
/// Exit status: findings at or above the threshold.
pub const EXIT_FINDINGS: u8 = 1;
/// Exit status: an error (bad arguments, unreadable input, failed collection).
pub const EXIT_ERROR: u8 = 2;

/// Who can really reach your localhost services?
///
/// loopwarden answers, for every local service of a Linux host, who can reach it (LAN
/// neighbours, remote clients through relays, other local users, web pages in a local browser),
/// by which path, with what evidence, and how to close it.
#[derive(Parser)]
#[command(
    name = "loopwarden",
    version,
    propagate_version = true,
    max_term_width = 100,
    after_help = "Examples:
  loopwarden audit                      who can reach each local service, and how to close it
  loopwarden audit --probe --prove      ask the listeners and replay the LAN attacks in a lab
  loopwarden audit --json --fail-on high   for CI: exit 1 on high or critical findings
  loopwarden facts --out host.json      snapshot this host; audit it anywhere with --facts
  loopwarden prove --scenario kube-route-localnet   watch CVE-2020-8558 in a throwaway lab
  loopwarden audit --format html --out report.html   the reachability map, in a browser
  loopwarden fleet snapshots/           one report over many hosts' snapshots
  loopwarden checks                     what every check id means
  loopwarden man | man -l -             the manual; `loopwarden completions bash` for tab completion"
)]
struct Cli {
    #[command(subcommand)]
    verb: Verb,
}

#[derive(Subcommand)]
enum Verb {
    Audit(audit::Args),
    Facts(facts::Args),
    Checks(checks::Args),
    Prove(prove::Args),
    Harden(harden::Args),
    Man(man::Args),
    Completions(completions::Args),
    Guard(Box<guard::Args>),
    Fleet(fleet::Args),
}

/// Parses the command line and runs the verb, mapping every outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_ERROR } else { EXIT_CLEAN };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.verb {
        Verb::Audit(args) => audit::run(args),
        Verb::Facts(args) => facts::run(args),
        Verb::Checks(args) => checks::run(args),
        Verb::Prove(args) => prove::run(args),
        Verb::Harden(args) => harden::run(args),
        Verb::Man(args) => man::run(args, Cli::command()),
        Verb::Completions(args) => completions::run(args, Cli::command()),
        Verb::Guard(args) => guard::run(*args),
        Verb::Fleet(args) => fleet::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // A closed stderr must not turn the error into a panic.
            let _ = writeln!(std::io::stderr(), "loopwarden: error: {}", output::error_message(&e));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
