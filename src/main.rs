//! `loopwarden`: who can really reach your localhost services — and how to close it.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
