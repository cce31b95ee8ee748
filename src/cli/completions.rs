//! `loopwarden completions SHELL`: tab completion scripts generated from the command-line
//! definition.

use super::output;

/// Print a tab-completion script for a shell.
///
/// bash: `loopwarden completions bash > /etc/bash_completion.d/loopwarden` (or source it);
/// zsh: write it as `_loopwarden` in a directory of $fpath; fish:
/// `loopwarden completions fish > ~/.config/fish/completions/loopwarden.fish`. The Debian package
/// installs all three.
#[derive(clap::Args)]
pub struct Args {
    /// The shell (bash, zsh, fish, elvish, powershell).
    #[arg(value_name = "SHELL")]
    shell: clap_complete::Shell,
}

/// Runs the verb over the whole command definition `cli`.
pub fn run(args: Args, mut cli: clap::Command) -> anyhow::Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "loopwarden", &mut script);
    output::print(&String::from_utf8_lossy(&script))?;
    Ok(super::EXIT_CLEAN)
}
