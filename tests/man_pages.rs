//! The manual pages through man-db: `loopwarden man --out-dir` writes one page per verb, and
//! `man --warnings -l` (groff with its warnings on, 80 columns) renders each without a warning
//! and with every section a page must have; `loopwarden man VERB` prints the same page.

mod common;

use common::*;
use std::process::Command;

const SECTIONS: [&str; 7] = [
    "SYNOPSIS",
    "DESCRIPTION",
    "OPTIONS",
    "EXIT STATUS",
    "ENVIRONMENT",
    "FILES",
    "SEE ALSO",
];

#[test]
fn man_renders_every_page_without_warnings() {
    let test = "man_renders_every_page_without_warnings";
    if !require_tool(test, "man") || !require_tool(test, "groff") {
        return;
    }
    let tmp = TempDir::new("man-pages");
    must(Command::new(loopwarden()).args(["man", "--out-dir"]).arg(tmp.path()));
    let mut pages: Vec<_> = std::fs::read_dir(tmp.path())
        .expect("pages")
        .map(|e| e.expect("entry").path())
        .collect();
    pages.sort();
    let names: Vec<String> = pages
        .iter()
        .map(|p| p.file_name().expect("name").to_string_lossy().into_owned())
        .collect();
    for verb in [
        "audit",
        "facts",
        "checks",
        "prove",
        "harden",
        "guard",
        "fleet",
        "man",
        "completions",
    ] {
        assert!(names.contains(&format!("loopwarden-{verb}.1")), "{names:?}");
    }
    assert!(names.contains(&"loopwarden.1".to_string()), "{names:?}");
    for page in &pages {
        let out = output_within(
            Command::new("man")
                .args(["--warnings", "-l"])
                .arg(page)
                .env("MANWIDTH", "80")
                .env_remove("MANPAGER")
                .env("PAGER", "cat"),
            COMMAND_TIMEOUT,
        );
        let shown = page.display();
        let warnings = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && warnings.is_empty(), "{shown}: {warnings}");
        let text = String::from_utf8_lossy(&out.stdout);
        let headings: Vec<&str> = text.lines().filter(|l| SECTIONS.contains(l)).collect();
        assert_eq!(headings, SECTIONS, "{shown}:\n{text}");
        let widest = text
            .lines()
            .skip_while(|l| *l != "DESCRIPTION")
            .take_while(|l| *l != "EXAMPLES" && *l != "EXIT STATUS")
            .map(|l| l.chars().count())
            .max();
        assert!(widest.is_some_and(|w| w <= 80), "{shown}: a line of {widest:?} columns");
    }
    let audit = must(Command::new(loopwarden()).args(["man", "audit"]));
    let written = std::fs::read_to_string(tmp.path().join("loopwarden-audit.1")).expect("page");
    assert_eq!(audit.trim_end(), written.trim_end());
}
