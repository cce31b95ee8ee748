//! Host text made safe to show: maud escapes markup (`& < > "`); this removes what escaping
//! leaves dangerous or invisible — control and format characters (a terminal escape in a process
//! name, a NUL the HTML parser would replace silently, a newline the page would show as a space,
//! a bidirectional override) — with the same escaping as the human report
//! ([`crate::report::shown::escape`]: visible escapes, the backslash doubled, so that two
//! different names never show the same), and shortens text that must fit a place in the map.

use crate::report::shown::escape;
use std::borrow::Cow;

/// `text` as the page shows it: every control and format character spelled out (`\n`, `\x1b`,
/// `\u{202e}`), every backslash doubled.
pub fn shown(text: &str) -> Cow<'_, str> {
    escape(text)
}

/// [`shown`] text cut to at most `max` characters, ending in `…` when cut.
pub fn shortened(text: &str, max: usize) -> String {
    let text = shown(text);
    if text.chars().count() <= max {
        return text.into_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_and_direction_overrides_are_spelled_out() {
        assert_eq!(shown("svc\u{1b}[31m\0\u{202e}x"), "svc\\x1b[31m\\x00\\u{202e}x");
        assert_eq!(shown("two\nlines"), "two\\nlines");
        assert!(matches!(shown("plain <text>"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_name_that_spells_an_escape_is_not_the_character() {
        assert_ne!(shown("\\x1b"), shown("\u{1b}"));
        assert_ne!(shown("a\nb"), shown("a b"));
    }

    #[test]
    fn shortening_counts_characters_not_bytes() {
        assert_eq!(shortened("ééééé", 3), "éé…");
        assert_eq!(shortened("abc", 3), "abc");
    }
}
