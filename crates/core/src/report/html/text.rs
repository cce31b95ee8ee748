//! Host text made safe to show: maud escapes markup (`& < > "`); this removes what escaping
//! leaves dangerous or invisible — control characters (a terminal escape in a process name, a NUL
//! the HTML parser would replace silently, a line separator that breaks a line) are shown as
//! `\u{…}` — and shortens text that must fit a place in the map.

use std::borrow::Cow;

/// `text` with every control character (but tab and newline) and every Unicode line or paragraph
/// separator or bidirectional override spelled out as `\u{hex}`, so that what the page shows is
/// what the host had.
pub fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_spelling) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_spelling(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_spelling(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
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
        assert_eq!(shown("svc\u{1b}[31m\0\u{202e}x"), "svc\\u{1b}[31m\\u{0}\\u{202e}x");
        assert!(matches!(shown("plain <text>"), Cow::Borrowed(_)));
    }

    #[test]
    fn shortening_counts_characters_not_bytes() {
        assert_eq!(shortened("ééééé", 3), "éé…");
        assert_eq!(shortened("abc", 3), "abc");
    }
}
