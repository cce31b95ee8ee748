//! Renderings of a plan: the table as nft JSON (applied) and nft text (shown), and the plan as
//! a human report or JSON.

pub mod human;
pub mod json;
pub mod nft_json;
pub mod nft_text;
pub mod outcome;

/// `text` made safe for a terminal, line by line: every control character and anything that
/// hides or moves text (names from the host: interfaces, namespaces, processes) is escaped as
/// the audit's report escapes it; the newlines between lines and the tabs that indent them stay. A value that may hold a
/// newline of its own goes through [`one_line`] first, so that it cannot forge a line.
pub fn terminal_safe(text: String) -> String {
    if !text.chars().any(|c| c != '\n' && (c.is_control() || !c.is_ascii())) {
        return text;
    }
    // Tabs indent the nft text, which is meant to be pasted into `nft -f`: they stay too. A
    // backslash is left as it is here: the values that need it escaped went through
    // [`one_line`] already (doubling it again printed `\\\\` for one backslash).
    let line = |line: &str| {
        line.split('\t')
            .map(|part| {
                part.chars()
                    .map(|c| match c {
                        '\\' => c.to_string(),
                        c => loopwarden_core::report::shown::escape(&c.to_string()).into_owned(),
                    })
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\t")
    };
    text.split('\n').map(line).collect::<Vec<_>>().join("\n")
}

/// One value from the host (a title, evidence, a name) on one line: its newlines escaped too.
pub fn one_line(text: &str) -> std::borrow::Cow<'_, str> {
    loopwarden_core::report::shown::escape(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newlines_and_tabs_stay_and_every_other_control_is_escaped() {
        let text = "table inet loopwarden {\n\tchain c {\n\t\tiifname \"x\u{1b}[2J\" drop\n\t}\n}".to_string();
        assert_eq!(
            terminal_safe(text),
            "table inet loopwarden {\n\tchain c {\n\t\tiifname \"x\\x1b[2J\" drop\n\t}\n}"
        );
        assert_eq!(one_line("a\nCRITICAL"), "a\\nCRITICAL");
    }

    /// A name with a backslash, escaped once by [`one_line`], is not escaped again by
    /// [`terminal_safe`] (a final review saw `rv13"\\\\{x` for `rv13"\{x`).
    #[test]
    fn a_backslash_is_escaped_once() {
        let text = format!("plan for {}\n", one_line("rv13\"\\{x\u{1b}"));
        assert_eq!(terminal_safe(text), "plan for rv13\"\\\\{x\\x1b\n");
    }
}
