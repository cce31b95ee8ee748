//! `loopwarden man`: manual pages generated from the command-line definition itself, so that
//! they never drift from `--help`.

use super::{manual, output};
use anyhow::Context;
use roff::{bold, roman, Roff};
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
    #[arg(value_name = "VERB", conflicts_with = "out_dir",
          value_parser = clap::builder::PossibleValuesParser::new(VERBS))]
    verb: Option<String>,
    /// Write every page into this directory instead of printing one.
    #[arg(long, value_name = "DIR", value_hint = clap::ValueHint::DirPath)]
    out_dir: Option<PathBuf>,
}

/// The verbs with a page, for `--help` and the completions (a test keeps it equal to the
/// command's verbs).
const VERBS: [&str; 9] = [
    "audit",
    "facts",
    "checks",
    "prove",
    "harden",
    "man",
    "completions",
    "guard",
    "fleet",
];

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
    let mut out = vec![("loopwarden".to_string(), page("loopwarden", cli.clone(), None)?)];
    for verb in cli.get_subcommands().filter(|c| c.get_name() != "help") {
        let name = format!("loopwarden-{}", verb.get_name());
        let mut command = verb
            .clone()
            .name(name.clone())
            .bin_name(format!("loopwarden {}", verb.get_name()))
            .version(env!("CARGO_PKG_VERSION"));
        let usage = command.render_usage().to_string();
        out.push((name.clone(), page(&name, command, Some(&usage))?));
    }
    Ok(out)
}

/// A verb's SYNOPSIS: the usage `--help` shows (`loopwarden guard --listen ADDR …`, with the
/// values each option takes), not clap_mangen's list of bare flags under the page's name
/// (`loopwarden-guard [--listen] [--to] …`, which is no command anyone can type).
fn synopsis(usage: &str) -> Roff {
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    roff.control("nh", []);
    let forms = usage
        .trim()
        .trim_start_matches("Usage:")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty());
    for form in forms {
        roff.text([roman(form)]);
        roff.control("br", []);
    }
    roff.control("hy", []);
    roff
}

/// One page: clap's NAME, SYNOPSIS (a verb's from `usage`: see [`synopsis`]), DESCRIPTION, OPTIONS (and the verbs, on loopwarden(1)),
/// the command's examples, then EXIT STATUS, ENVIRONMENT, FILES and SEE ALSO from
/// [`manual`], then VERSION.
fn page(name: &str, command: clap::Command, usage: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let sections =
        manual::sections(name).with_context(|| format!("{name}(1) has no EXIT STATUS, FILES … in cli/manual.rs"))?;
    let examples = command.get_after_help().map(|h| h.to_string());
    let has_verbs = command.get_subcommands().next().is_some();
    let man = clap_mangen::Man::new(command);
    let mut page = Vec::new();
    let mut part = |render: &dyn Fn(&mut Vec<u8>) -> std::io::Result<()>| -> anyhow::Result<()> {
        let mut buf = Vec::new();
        render(&mut buf).with_context(|| format!("cannot render {name}(1)"))?;
        page.extend_from_slice(if page.is_empty() { &buf } else { without_preamble(&buf) });
        Ok(())
    };
    part(&|w| man.render_title(w))?;
    part(&|w| man.render_name_section(w))?;
    match usage {
        Some(usage) => part(&|w| synopsis(usage).to_writer(w))?,
        None => part(&|w| man.render_synopsis_section(w))?,
    }
    part(&|w| man.render_description_section(w))?;
    part(&|w| man.render_options_section(w))?;
    if has_verbs {
        part(&|w| man.render_subcommands_section(w))?;
    }
    part(&|w| extra_sections(examples.as_deref(), &sections).to_writer(w))?;
    part(&|w| man.render_version_section(w))?;
    Ok(page)
}

/// A rendered part without the apostrophe definitions every roff rendering starts with (the
/// page keeps the first part's).
fn without_preamble(part: &[u8]) -> &[u8] {
    let mut rest = part;
    for start in [&b".ie \\n(.g .ds Aq"[..], &b".el .ds Aq"[..]] {
        if rest.starts_with(start) {
            let end = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
            rest = &rest[end..];
        }
    }
    rest
}

/// EXAMPLES (the command's after-help, kept as laid out), EXIT STATUS, ENVIRONMENT, FILES and
/// SEE ALSO.
fn extra_sections(examples: Option<&str>, sections: &manual::Sections) -> Roff {
    let mut roff = Roff::new();
    if let Some(text) = examples {
        roff.control("SH", ["EXAMPLES"]);
        roff.control("nf", []);
        for line in text.lines().skip_while(|l| l.trim() == "Examples:") {
            roff.text([roman(line)]);
        }
        roff.control("fi", []);
    }
    let none = [("None.", "")];
    for (heading, entries) in [
        ("EXIT STATUS", sections.exit_status),
        ("ENVIRONMENT", sections.environment),
        ("FILES", sections.files),
    ] {
        roff.control("SH", [heading]);
        if entries.is_empty() {
            roff.text([roman(none[0].0)]);
        }
        for (term, meaning) in entries {
            roff.control("TP", []);
            roff.text([bold(*term)]);
            roff.text([roman(*meaning)]);
        }
    }
    roff.control("SH", ["SEE ALSO"]);
    let mut refs = Vec::new();
    for (i, reference) in sections.see_also.iter().enumerate() {
        let (page, section) = reference.split_once('(').unwrap_or((reference, ""));
        refs.push(bold(page));
        refs.push(roman(format!(
            "({section}{}",
            if i + 1 < sections.see_also.len() { ", " } else { "" }
        )));
    }
    roff.text(refs);
    roff
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_verb_is_offered_for_its_page() {
        let cli = crate::cli::Cli::command();
        let verbs: Vec<&str> = cli
            .get_subcommands()
            .map(|c| c.get_name())
            .filter(|n| *n != "help")
            .collect();
        assert_eq!(verbs, VERBS);
    }

    /// What every page must have, in this order.
    const SECTIONS: [&str; 7] = [
        "SYNOPSIS",
        "DESCRIPTION",
        "OPTIONS",
        "EXIT STATUS",
        "ENVIRONMENT",
        "FILES",
        "SEE ALSO",
    ];

    fn all() -> Vec<(String, String)> {
        pages(&super::super::Cli::command().version(env!("CARGO_PKG_VERSION")))
            .expect("every page renders")
            .into_iter()
            .map(|(name, page)| (name, String::from_utf8(page).expect("roff is UTF-8")))
            .collect()
    }

    #[test]
    fn every_verb_has_a_page_with_every_section_in_order() {
        let pages = all();
        let verbs: Vec<String> = super::super::Cli::command()
            .get_subcommands()
            .map(|c| format!("loopwarden-{}", c.get_name()))
            .collect();
        let names: Vec<&String> = pages.iter().map(|(n, _)| n).collect();
        for verb in &verbs {
            assert!(names.contains(&verb), "{verb} has no page: {names:?}");
        }
        for (name, page) in &pages {
            let headings: Vec<&str> = page.lines().filter_map(|l| l.strip_prefix(".SH ")).collect();
            let wanted: Vec<String> = SECTIONS.iter().map(|s| format!("\"{s}\"")).collect();
            let found: Vec<String> = headings
                .iter()
                .map(|h| {
                    if h.starts_with('"') {
                        h.to_string()
                    } else {
                        format!("\"{h}\"")
                    }
                })
                .filter(|h| wanted.contains(h))
                .collect();
            assert_eq!(found, wanted, "{name}: {headings:?}");
            assert_eq!(
                page.matches(".ds Aq").count(),
                2,
                "{name}: one apostrophe preamble (.ie/.el)"
            );
        }
    }

    #[test]
    fn the_pages_match_their_golden_copies() {
        for (name, page) in all() {
            insta::assert_snapshot!(name, page);
        }
    }

    #[test]
    fn a_page_without_its_sections_is_refused() {
        let err = page(
            "loopwarden-nosuchverb",
            clap::Command::new("loopwarden-nosuchverb"),
            None,
        )
        .expect_err("refused");
        assert!(
            err.to_string().contains("loopwarden-nosuchverb(1) has no EXIT STATUS"),
            "{err}"
        );
    }
}
