//! `loopwarden man`: manual pages generated from the command-line definition itself, so that
//! they never drift from `--help`.

use super::output;
use anyhow::Context;
use std::path::PathBuf;

/// Print loopwarden's manual pages (roff), or write them all to a directory.
///
/// Without options, prints loopwarden(1) to standard output (`loopwarden man | man -l -`). With a
/// verb, prints that verb's page, loopwarden-VERB(1). With --out-dir, writes loopwarden.1 and one
/// loopwarden-VERB.1 per verb there (what the Debian package installs under
/// /usr/share/man/man1).
#[derive(clap::Args)]
#[command(after_help = "Examples:
  loopwarden man | man -l -             read the manual without installing it
  loopwarden man audit | man -l -       the audit verb's page
  loopwarden man --out-dir man/         every page, for packaging")]
pub struct Args {
    /// The verb whose page to print (audit, facts, prove, …).
    #[arg(value_name = "VERB", conflicts_with = "out_dir")]
    verb: Option<String>,
    /// Write every page into this directory instead of printing one.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Runs the verb over the whole command definition `cli`.
pub fn run(args: Args, cli: clap::Command) -> anyhow::Result<u8> {
    let cli = cli.version(env!("CARGO_PKG_VERSION"));
    if let Some(dir) = args.out_dir {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        for (name, page) in pages(&cli)? {
            let path = dir.join(format!("{name}.1"));
            std::fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
        }
        return Ok(super::EXIT_CLEAN);
    }
    let wanted = match &args.verb {
        None => "loopwarden".to_string(),
        Some(verb) => format!("loopwarden-{verb}"),
    };
    let all = pages(&cli)?;
    let Some((_, page)) = all.into_iter().find(|(name, _)| *name == wanted) else {
        let verbs: Vec<String> = cli.get_subcommands().map(|c| c.get_name().to_string()).collect();
        anyhow::bail!(
            "no manual page for verb {:?}: the verbs are {}",
            args.verb.unwrap_or_default(),
            verbs.join(", ")
        );
    };
    output::print(&String::from_utf8_lossy(&page))?;
    Ok(super::EXIT_CLEAN)
}

/// Every page as (name without section, roff bytes): the top-level one, then one per verb.
fn pages(cli: &clap::Command) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut top = Vec::new();
    clap_mangen::Man::new(cli.clone())
        .render(&mut top)
        .context("cannot render loopwarden(1)")?;
    out.push(("loopwarden".to_string(), top));
    for verb in cli.get_subcommands().filter(|c| c.get_name() != "help") {
        let name = format!("loopwarden-{}", verb.get_name());
        let mut command = verb
            .clone()
            .name(name.clone())
            .bin_name(format!("loopwarden {}", verb.get_name()))
            .version(env!("CARGO_PKG_VERSION"));
        let usage = command.render_usage().to_string();
        out.push((
            name.clone(),
            verb_page(command, &usage).with_context(|| format!("cannot render {name}(1)"))?,
        ));
    }
    Ok(out)
}

/// A verb's page. Its SYNOPSIS is the usage `--help` shows (`loopwarden guard --listen ADDR
/// …`, with the values each option takes), not clap_mangen's list of bare flags under the
/// page's name (`loopwarden-guard [--listen] [--to] …`, which is no command anyone can type).
fn verb_page(command: clap::Command, usage: &str) -> std::io::Result<Vec<u8>> {
    let man = clap_mangen::Man::new(command);
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    page.extend_from_slice(b".SH SYNOPSIS\n.nh\n");
    let forms = usage
        .trim()
        .trim_start_matches("Usage:")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    for form in forms {
        // roff: a backslash is written \e, a minus \- (else hyphenated or drawn as a dash).
        let line = form.replace('\\', "\\e").replace('-', "\\-");
        page.extend_from_slice(format!("{line}\n.br\n").as_bytes());
    }
    page.extend_from_slice(b".hy\n");
    man.render_description_section(&mut page)?;
    man.render_options_section(&mut page)?;
    man.render_extra_section(&mut page)?;
    man.render_version_section(&mut page)?;
    Ok(page)
}
