//! The generated text: incremental UTF-8 decoding and what may be streamed.

use std::ops::Range;

use super::detokenizer::{Detokenizer, UnknownToken};
use crate::TokenId;

/// The decoded text of a run's generated tokens.
///
/// Token bytes are appended to `bytes`; complete UTF-8 characters move to
/// `text` as soon as they are complete. Invalid bytes become U+FFFD exactly
/// where `String::from_utf8_lossy` would put them, so the incremental text
/// always equals the lossy decoding of the complete prefix. An incomplete
/// character at the end waits for the next token (or becomes one U+FFFD when
/// the run ends).
///
/// `released` is how much of `text` a stream has handed out; it only grows.
#[derive(Debug, Default)]
pub(crate) struct Text {
    bytes: Vec<u8>,
    decoded: usize,
    text: String,
    released: usize,
    /// `text.len()` before each generated token's bytes were appended.
    token_start: Vec<usize>,
    /// What the detokenizer writes into: a buffer of its own, so that a
    /// detokenizer that replaces or shortens its output instead of
    /// appending cannot touch the bytes already decoded.
    piece: Vec<u8>,
}

impl Text {
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.decoded = 0;
        self.text.clear();
        self.released = 0;
        self.token_start.clear();
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    pub(crate) fn len(&self) -> usize {
        self.text.len()
    }

    /// `text.len()` when generated token `i` started.
    pub(crate) fn token_start(&self, i: usize) -> usize {
        self.token_start.get(i).copied().unwrap_or(self.text.len())
    }

    /// Appends a token's bytes and decodes what became complete. On error
    /// nothing changes.
    ///
    /// The detokenizer is handed an empty buffer of its own, and what it
    /// leaves there is appended: whatever it does to that buffer (append as
    /// the trait asks, or replace it), the text decoded so far is intact.
    pub(crate) fn push_token(
        &mut self,
        detokenizer: &dyn Detokenizer,
        token: TokenId,
    ) -> Result<(), UnknownToken> {
        self.piece.clear();
        detokenizer.decode(token, &mut self.piece)?;
        self.bytes.extend_from_slice(&self.piece);
        self.token_start.push(self.text.len());
        self.decode_complete();
        Ok(())
    }

    /// A token that adds no text (an EOS id).
    pub(crate) fn push_silent(&mut self) {
        self.token_start.push(self.text.len());
    }

    fn decode_complete(&mut self) {
        loop {
            let rest = &self.bytes[self.decoded..];
            match std::str::from_utf8(rest) {
                Ok(s) => {
                    self.text.push_str(s);
                    self.decoded = self.bytes.len();
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    if let Ok(s) = std::str::from_utf8(&rest[..valid]) {
                        self.text.push_str(s);
                    }
                    match e.error_len() {
                        Some(bad) => {
                            self.text.push(char::REPLACEMENT_CHARACTER);
                            self.decoded += valid + bad;
                        }
                        None => {
                            // An incomplete character at the end: wait.
                            self.decoded += valid;
                            return;
                        }
                    }
                }
            }
        }
    }

    /// The run is over: an incomplete trailing character becomes U+FFFD.
    pub(crate) fn flush(&mut self) {
        if self.decoded < self.bytes.len() {
            self.text.push(char::REPLACEMENT_CHARACTER);
            self.decoded = self.bytes.len();
        }
    }

    /// Cuts the text at byte `at` (a stop condition).
    pub(crate) fn truncate(&mut self, at: usize) {
        debug_assert!(at >= self.released, "released text must never be cut");
        self.text.truncate(at.max(self.released));
    }

    /// Releases text up to byte `upto` and returns the newly released range.
    pub(crate) fn release(&mut self, upto: usize) -> Range<usize> {
        let end = upto.clamp(self.released, self.text.len());
        let range = self.released..end;
        self.released = end;
        range
    }

    pub(crate) fn take(&mut self) -> String {
        std::mem::take(&mut self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_character_is_released_whole() {
        let vocab: Vec<Vec<u8>> = vec![vec![0xE2, 0x82], vec![0xAC], b"a".to_vec()];
        let mut t = Text::default();
        t.push_token(&vocab, 0).unwrap();
        assert_eq!(t.as_str(), "");
        t.push_token(&vocab, 1).unwrap();
        assert_eq!(t.as_str(), "€");
    }

    #[test]
    fn incremental_equals_lossy() {
        // Every split of a byte string with valid, invalid and truncated
        // sequences decodes, incrementally, to from_utf8_lossy of the whole.
        let bytes: &[u8] = b"a\xE2\x82\xACb\xFF\xC3\xA9\xE2\x82x\xF0\x9F\x98\x80\xF0\x9F";
        for cut1 in 0..=bytes.len() {
            for cut2 in cut1..=bytes.len() {
                let vocab = vec![
                    bytes[..cut1].to_vec(),
                    bytes[cut1..cut2].to_vec(),
                    bytes[cut2..].to_vec(),
                ];
                let mut t = Text::default();
                for id in 0..3 {
                    t.push_token(&vocab, id).unwrap();
                    assert!(String::from_utf8_lossy(bytes).starts_with(t.as_str()));
                }
                t.flush();
                assert_eq!(t.as_str(), String::from_utf8_lossy(bytes));
            }
        }
    }

    /// Replaces its output buffer instead of appending to it.
    struct Replacing;

    impl Detokenizer for Replacing {
        fn decode(&self, token: TokenId, out: &mut Vec<u8>) -> Result<(), UnknownToken> {
            *out = vec![b'a' + token as u8];
            Ok(())
        }
    }

    #[test]
    fn a_detokenizer_that_replaces_its_buffer_cannot_cut_the_text() {
        let mut t = Text::default();
        let vocab: Vec<Vec<u8>> = vec![vec![0xE2, 0x82]];
        t.push_token(&vocab, 0).unwrap();
        for id in 0..3 {
            t.push_token(&Replacing, id).unwrap();
        }
        t.flush();
        assert_eq!(t.as_str(), "\u{FFFD}abc");
    }

    #[test]
    fn unknown_token_changes_nothing() {
        let vocab = vec!["a"];
        let mut t = Text::default();
        assert_eq!(t.push_token(&vocab, 5), Err(UnknownToken(5)));
        assert_eq!(t.token_start.len(), 0);
    }
}
