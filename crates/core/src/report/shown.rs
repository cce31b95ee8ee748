//! How text from the host or a snapshot is shown to people: escaped and bounded.
//!
//! Every string a report prints may come from someone else — a process name any user sets with
//! `prctl(PR_SET_NAME)`, a socket path, a command line, a rule comment, a whole hostile
//! snapshot. Printed raw, `\e[2J` clears the reader's screen, `\e[8m` hides what follows, a `\n`
//! forges a report line and U+202E reverses the text after it. So what people read goes through
//! [`escape`] (control and format characters become visible escapes: one finding line stays one
//! line, and the only escape sequences loopwarden emits are its own colours) and [`clip`]
//! (a 50 MB process name is not printed in every finding; what was cut is said).

use std::borrow::Cow;
use std::fmt::Write;

/// The most characters of one host-supplied name (a process name, an executable path) put into
/// a report: far above what the kernel gives (`comm` has 15 bytes, a path 4096), so only a
/// forged snapshot is cut.
pub const MAX_NAME: usize = 4096;

/// The most characters of one line of a human report: a longer line is cut, saying how much.
pub const MAX_LINE: usize = 8192;

/// The most items of a list (services, rules) one evidence line names; the rest are counted.
pub const MAX_LIST: usize = 20;

/// Whether `c` changes how a terminal shows what follows instead of being shown itself: C0 and
/// C1 controls (ESC, CSI, newline, carriage return, backspace …), DEL, and the Unicode format
/// characters that reorder or hide text (bidirectional overrides and isolates, zero-width
/// characters, the byte order mark, the line and paragraph separators).
fn hides_or_moves(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{180e}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{2060}'..='\u{2069}'
                | '\u{feff}'
        )
}

/// `text` with every control and format character written as a visible escape (`\n`, `\t`,
/// `\r`, `\x1b`, `\u{202e}`), and every backslash doubled (`\\`); text without any is returned
/// as it is. Doubling the backslash makes the escaping injective: two different texts never
/// print the same, so a name that spells an escape (`\x1b` typed out) cannot pass for the
/// character it names, nor the other way round (the tests decode every output back to its input).
pub fn escape(text: &str) -> Cow<'_, str> {
    // Printable ASCII without a backslash, the common case, is checked byte by byte; anything
    // else char by char.
    let plain_ascii = |b: &u8| (0x20..0x7f).contains(b) && *b != b'\\';
    if text.as_bytes().iter().all(plain_ascii) || !text.chars().any(|c| c == '\\' || hides_or_moves(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if hides_or_moves(c) && (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if hides_or_moves(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` cut to at most `max` characters (at a character boundary), ending with how many bytes
/// were cut: `aaaa… [1234 more bytes cut]`.
pub fn clip(text: &str, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return Cow::Borrowed(text);
    }
    match text.char_indices().nth(max) {
        None => Cow::Borrowed(text),
        Some((end, _)) => {
            let cut = text.len() - end;
            let unit = if cut == 1 { "byte" } else { "bytes" };
            Cow::Owned(format!("{}… [{cut} more {unit} cut]", &text[..end]))
        }
    }
}

/// A host-supplied name as a report carries it: clipped to [`MAX_NAME`].
pub fn name(text: &str) -> String {
    clip(text, MAX_NAME).into_owned()
}

/// One line as a human report prints it: escaped, and clipped to [`MAX_LINE`].
pub fn line(text: &str) -> Cow<'_, str> {
    match clip(text, MAX_LINE) {
        Cow::Borrowed(t) => escape(t),
        Cow::Owned(t) => Cow::Owned(escape(&t).into_owned()),
    }
}

/// Up to [`MAX_LIST`] items joined with `, `, then how many more there are:
/// `a, b, … and 49980 more`.
pub fn list<S: AsRef<str>>(items: &[S]) -> String {
    let shown: Vec<&str> = items.iter().take(MAX_LIST).map(AsRef::as_ref).collect();
    let mut out = shown.join(", ");
    if items.len() > MAX_LIST {
        let _ = write!(out, " and {} more", items.len() - MAX_LIST);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The text [`escape`] was given, from what it printed; `None` for text it never prints (a
    /// lone backslash, an unknown or malformed escape). `unescape(&escape(t)) == Some(t)` for every
    /// `t` is what makes the escaping injective.
    fn unescape(shown: &str) -> Option<String> {
        let mut out = String::with_capacity(shown.len());
        let mut chars = shown.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next()? {
                '\\' => out.push('\\'),
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                'x' => {
                    let hex: String = chars.by_ref().take(2).collect();
                    out.push(char::from(u8::from_str_radix(&hex, 16).ok().filter(|b| *b < 0x80)?));
                }
                'u' => {
                    if chars.next()? != '{' {
                        return None;
                    }
                    let hex: String = chars.by_ref().take_while(|c| *c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                _ => return None,
            }
        }
        Some(out)
    }

    #[test]
    fn terminal_controls_become_visible_and_lines_stay_lines() {
        assert_eq!(escape("\x1b[8m\x1b[2Jsshd"), "\\x1b[8m\\x1b[2Jsshd");
        assert_eq!(
            escape("/run/a.sock\n  CRITICAL forged"),
            "/run/a.sock\\n  CRITICAL forged"
        );
        assert_eq!(escape("a\tb\rc\x7fd\0"), "a\\tb\\rc\\x7fd\\x00");
        // C1 CSI (8-bit ESC [), bidi override, zero-width space, BOM.
        assert_eq!(escape("x\u{9b}2Jy"), "x\\u{9b}2Jy");
        assert_eq!(escape("evil\u{202e}txt.sh"), "evil\\u{202e}txt.sh");
        assert_eq!(escape("a\u{200b}b\u{feff}"), "a\\u{200b}b\\u{feff}");
        assert!(matches!(escape("plain — ünïcode kept"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_spelled_out_escape_never_reads_as_the_character_it_names() {
        // Before the backslash was doubled, the text `\x1b` and the ESC character both printed
        // `\x1b`, and a socket path could pass for another.
        assert_ne!(escape("\\x1b"), escape("\x1b"));
        assert_eq!(escape("\\x1b"), "\\\\x1b");
        assert_eq!(escape("C:\\dir\n"), "C:\\\\dir\\n");
        assert_ne!(escape("a\\nb"), escape("a\nb"));
    }

    proptest! {
        /// Every text is given back by decoding what was printed: no two texts print the same.
        #[test]
        fn escaping_is_injective(text in any::<String>()) {
            let shown = escape(&text);
            prop_assert_eq!(unescape(&shown), Some(text.clone()));
            prop_assert!(!shown.chars().any(hides_or_moves), "{:?}", shown);
        }

        /// Texts made of what escapes are made of (backslashes, `x`, `u`, braces, hex digits and
        /// the characters they name) are where collisions would hide.
        #[test]
        fn escape_like_texts_never_collide(
            a in "[\\\\xu{}1b0a\\x1b\\n\\u{202e}]{0,12}",
            b in "[\\\\xu{}1b0a\\x1b\\n\\u{202e}]{0,12}",
        ) {
            prop_assert_eq!(escape(&a) == escape(&b), a == b);
        }
    }

    #[test]
    fn long_text_is_cut_at_a_character_and_says_how_much() {
        assert_eq!(clip("abcdef", 6), "abcdef");
        assert_eq!(clip("abcdef", 4), "abcd… [2 more bytes cut]");
        assert_eq!(clip("ééé", 1), "é… [4 more bytes cut]");
        let huge = "x".repeat(50 * 1024 * 1024);
        let shown = name(&huge);
        assert!(shown.len() < MAX_NAME + 40, "{}", shown.len());
        assert!(shown.ends_with(&format!("[{} more bytes cut]", huge.len() - MAX_NAME)));
        assert_eq!(
            line(&format!("{}\x1b", "y".repeat(MAX_LINE))),
            format!("{}… [1 more byte cut]", "y".repeat(MAX_LINE))
        );
    }

    #[test]
    fn long_lists_are_counted() {
        let ids: Vec<String> = (0..25).map(|i| i.to_string()).collect();
        assert_eq!(list(&ids[..2]), "0, 1");
        assert!(list(&ids).ends_with("18, 19 and 5 more"), "{}", list(&ids));
    }
}
