//! `loopwarden completions SHELL`: tab completion scripts generated from the command-line
//! definition (values, file and directory hints, users and hosts come from clap's value hints),
//! plus, for bash and fish, the `ip netns` names after `--netns` — the one value no static
//! hint can list.

use super::output;
use clap_complete::Shell;

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
    shell: Shell,
}

/// bash: a front for clap's `_loopwarden` that answers `--netns` itself with the names
/// `ip netns list` prints (its first word per line), and hands every other word to clap's.
const BASH_NETNS: &str = r#"
_loopwarden_with_netns() {
    if [[ "${COMP_WORDS[COMP_CWORD-1]}" == --netns ]]; then
        local names
        names=$(ip netns list 2>/dev/null | cut -d' ' -f1)
        COMPREPLY=($(compgen -W "${names}" -- "${COMP_WORDS[COMP_CWORD]}"))
        return 0
    fi
    _loopwarden "$@"
}
if [[ "${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -ge 4 || "${BASH_VERSINFO[0]}" -gt 4 ]]; then
    complete -F _loopwarden_with_netns -o nosort -o bashdefault -o default loopwarden
else
    complete -F _loopwarden_with_netns -o bashdefault -o default loopwarden
fi
"#;

/// Runs the verb over the whole command definition `cli`.
pub fn run(args: Args, mut cli: clap::Command) -> anyhow::Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cli, "loopwarden", &mut script);
    let mut text = String::from_utf8_lossy(&script).into_owned();
    match args.shell {
        Shell::Bash => text.push_str(BASH_NETNS),
        Shell::Fish => text.push_str(&fish_netns(&cli)),
        _ => {}
    }
    output::print(&text)?;
    Ok(super::EXIT_CLEAN)
}

/// fish: `--netns` of each verb that has it completes to the `ip netns` names.
fn fish_netns(cli: &clap::Command) -> String {
    let verbs: Vec<&str> = cli
        .get_subcommands()
        .filter(|verb| verb.get_arguments().any(|a| a.get_long() == Some("netns")))
        .map(|verb| verb.get_name())
        .collect();
    format!(
        "complete -c loopwarden -n \"__fish_seen_subcommand_from {}\" -l netns -x -a \"(ip netns list 2>/dev/null | string split -f1 ' ')\" -d 'ip netns name'\n",
        verbs.join(" ")
    )
}
