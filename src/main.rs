//! `loopwarden`: who can really reach your localhost services — and how to close it.

mod cli;

/// mimalloc: the guard's HTTP path allocates per request; glibc's malloc cost it measurably
/// (bench/guard.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
