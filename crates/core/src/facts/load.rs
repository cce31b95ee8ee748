//! Reading a snapshot from a file or a pipe: bounded, and refused at the first byte that shows
//! it is not one.
//!
//! A snapshot is untrusted input, and `--facts` may be given anything: `/dev/zero` (endless NUL
//! bytes), `/dev/urandom`, a UTF-16 file, a binary. Reading on until the size limit and handing
//! the result to the JSON parser takes seconds and hundreds of megabytes for those; instead the
//! bytes are screened as they arrive — a JSON text is UTF-8, has no byte order mark, starts with
//! `{` for a snapshot and never contains a control byte other than tab, newline and carriage
//! return — so such input is refused within the first read, naming the byte and its offset.

use super::{FactsError, HostFacts};
use std::io::Read;

/// How much is read at a time.
const CHUNK: usize = 64 * 1024;

/// Where screening got to.
#[derive(Default)]
struct Screen {
    /// Bytes known to be valid UTF-8 without control bytes.
    checked: usize,
    /// Whether the first byte that is not whitespace was seen (and is `{`).
    started: bool,
}

impl Screen {
    /// Screens the bytes of `text` not screened yet; `complete` when no more will come. The
    /// first problem in the text is the one reported.
    fn advance(&mut self, text: &[u8], complete: bool) -> Result<(), FactsError> {
        if self.checked == 0 {
            bom(text, complete)?;
        }
        let new = &text[self.checked..];
        let at = |i: usize| (self.checked + i, new[i]);
        let mut problems: Vec<FactsError> = Vec::new();
        if let Some(i) = new
            .iter()
            .position(|&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
        {
            let (offset, byte) = at(i);
            problems.push(FactsError::ControlByte { offset, byte });
        }
        if !self.started {
            if let Some(i) = new.iter().position(|b| !b.is_ascii_whitespace()) {
                let (offset, byte) = at(i);
                if byte != b'{' {
                    problems.push(FactsError::NotAnObject { offset, byte });
                }
                self.started = true;
            }
        }
        match std::str::from_utf8(new) {
            Ok(_) => self.checked = text.len(),
            // A character cut at the end of what was read so far: the next read completes it.
            Err(e) if e.error_len().is_none() && !complete => self.checked += e.valid_up_to(),
            Err(e) => {
                let (offset, byte) = at(e.valid_up_to());
                problems.push(FactsError::NotUtf8 { offset, byte });
            }
        }
        match problems.into_iter().min_by_key(FactsError::offset) {
            Some(first) => Err(first),
            None => Ok(()),
        }
    }
}

/// Refuses a byte order mark: JSON has none (RFC 8259 §8.1), and one in front of UTF-16 text
/// means the whole file is in the wrong encoding.
fn bom(text: &[u8], complete: bool) -> Result<(), FactsError> {
    let encoding = if text.starts_with(&[0xEF, 0xBB, 0xBF]) {
        "UTF-8"
    } else if text.starts_with(&[0xFF, 0xFE]) {
        "UTF-16 little-endian"
    } else if text.starts_with(&[0xFE, 0xFF]) {
        "UTF-16 big-endian"
    } else {
        return Ok(());
    };
    // Two bytes of a UTF-8 mark are not yet a mark; the screen waits for the third.
    if encoding == "UTF-8" || complete || text.len() >= 3 {
        return Err(FactsError::ByteOrderMark { encoding });
    }
    Ok(())
}

impl HostFacts {
    /// Reads a snapshot of at most `limit` bytes from `reader` (a file, or standard input),
    /// refusing input that is not JSON text at the first byte that shows it, and anything
    /// larger than `limit` as soon as it is larger.
    pub fn read(mut reader: impl Read, limit: u64) -> Result<HostFacts, FactsError> {
        let mut text: Vec<u8> = Vec::new();
        let mut screen = Screen::default();
        let mut chunk = vec![0u8; CHUNK];
        loop {
            let n = match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(FactsError::Read(e)),
            };
            if (text.len() + n) as u64 > limit {
                return Err(FactsError::TooLarge { limit });
            }
            text.extend_from_slice(&chunk[..n]);
            screen.advance(&text, false)?;
        }
        screen.advance(&text, true)?;
        if !screen.started {
            return Err(FactsError::Empty);
        }
        let text = String::from_utf8(text).map_err(|e| FactsError::NotUtf8 {
            offset: e.utf8_error().valid_up_to(),
            byte: e.as_bytes()[e.utf8_error().valid_up_to()],
        })?;
        HostFacts::from_json(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<HostFacts, FactsError> {
        HostFacts::read(bytes, 1024 * 1024)
    }

    /// A reader that never ends (what `/dev/zero` is).
    struct Endless(u8);

    impl Read for Endless {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            buf.fill(self.0);
            Ok(buf.len())
        }
    }

    #[test]
    fn endless_input_is_refused_at_its_first_bad_byte_or_at_the_limit() {
        let zero = HostFacts::read(Endless(0), u64::MAX).unwrap_err();
        assert_eq!(
            zero.to_string(),
            "byte 0 is 0x00, a control character: a snapshot is JSON text, which has none"
        );
        let spaces = HostFacts::read(Endless(b' '), 1024 * 1024).unwrap_err();
        assert_eq!(spaces.to_string(), "larger than 1 MiB, the most a snapshot may be");
    }

    #[test]
    fn encodings_and_binaries_are_named_with_the_offset() {
        let bom = read(b"\xEF\xBB\xBF{\"schema\": 1}").unwrap_err();
        assert_eq!(
            bom.to_string(),
            "it starts with a UTF-8 byte order mark (JSON has none): save it without one"
        );
        let utf16 = read(b"\xFF\xFE{\0").unwrap_err();
        assert!(utf16.to_string().contains("UTF-16 little-endian"), "{utf16}");
        let latin1 = read(b"{\"schema\": \"caf\xE9\"}").unwrap_err();
        assert_eq!(
            latin1.to_string(),
            "byte 15 (0xe9) is not UTF-8: a snapshot is UTF-8 JSON text"
        );
        let cut = read(b"{\"a\": \"\xC3").unwrap_err();
        assert_eq!(
            cut.to_string(),
            "byte 7 (0xc3) is not UTF-8: a snapshot is UTF-8 JSON text"
        );
        // Random bytes: the first problem is named, not a later one.
        let random = read(b"\xa3\x01\xff").unwrap_err();
        assert_eq!(
            random.to_string(),
            "byte 0 is 0xa3: a snapshot is a JSON object, which starts with '{'"
        );
        let array = read(b"  [1, 2]").unwrap_err();
        assert_eq!(
            array.to_string(),
            "byte 2 is '[': a snapshot is a JSON object, which starts with '{'"
        );
        assert_eq!(read(b" \n ").unwrap_err().to_string(), "it is empty");
    }

    #[test]
    fn a_character_split_between_reads_is_not_an_error() {
        // 'é' is two bytes; the first read ends between them.
        let mut text = b"{\"schema\": \"".to_vec();
        text.resize(CHUNK - 1, b'x');
        text.extend_from_slice("é\"}".as_bytes());
        // Read whole, it is JSON with another schema tag: the screen let it through.
        let err = read(&text).unwrap_err();
        assert!(matches!(err, FactsError::Schema { .. }), "{err}");
    }

    #[test]
    fn a_good_snapshot_reads() {
        let text = crate::checks::test_facts::base().to_json().unwrap();
        assert_eq!(read(text.as_bytes()).unwrap(), crate::checks::test_facts::base());
    }
}
