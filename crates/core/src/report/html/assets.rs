//! The page's own style sheet and script, and the Content Security Policy that allows exactly
//! them: anything else — a `<script>` or `<style>` smuggled in by host text that escaping
//! somehow missed, an image, a font, a connection — is refused by the browser.

use base64::Engine;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The style sheet (inlined in `<style>`).
pub const STYLE: &str = include_str!("style.css");
/// The script (inlined at the end of `<body>`): the detail panel, sorting and filtering.
pub const SCRIPT: &str = include_str!("script.js");

/// The policy of every page: nothing from anywhere, this style sheet and this script by hash.
pub fn content_security_policy() -> &'static str {
    static POLICY: LazyLock<String> = LazyLock::new(|| {
        format!(
            "default-src 'none'; style-src '{}'; script-src '{}'; img-src 'none'; base-uri 'none'; form-action 'none'",
            hash(STYLE),
            hash(SCRIPT)
        )
    });
    &POLICY
}

/// A CSP source expression for `text`: `sha256-BASE64`.
fn hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!("sha256-{}", base64::engine::general_purpose::STANDARD.encode(digest))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_hash_is_the_one_browsers_compute() {
        // `printf 'alert(1)' | openssl dgst -sha256 -binary | base64`
        assert_eq!(
            super::hash("alert(1)"),
            "sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI="
        );
    }
}
