//! `Detokenizer`: token ids to bytes, for text output and stop strings.

use std::sync::Arc;

use crate::TokenId;

/// The bytes of a token id: what the generator needs from a tokenizer to
/// produce text and to match stop strings.
///
/// A detokenizer returns **bytes**, not text, because byte-level tokenizers
/// (GPT-2, Llama 3, ...) split multi-byte UTF-8 characters across tokens:
/// `€` may be `[0xE2, 0x82]` in one token and `[0xAC]` in the next. The
/// generator decodes the concatenated bytes incrementally and releases text
/// only when a character is complete, so a streamed character is never cut
/// in two and never becomes U+FFFD when it is valid.
///
/// The bytes are those the token adds to the text (for a SentencePiece
/// tokenizer, with `▁` already turned into a space; for GPT-2, after the
/// byte-level mapping is undone).
///
/// A slice, array or `Vec` of byte strings (`[&str; N]`, `Vec<String>`, `Vec<Vec<u8>>`)
/// is a detokenizer: entry `id` holds the bytes of token `id`.
///
/// # Example
///
/// ```
/// use decoding::Detokenizer;
///
/// let vocab: Vec<Vec<u8>> = vec![b"Hello".to_vec(), b" world".to_vec(), vec![0xE2, 0x82], vec![0xAC]];
/// let mut out = Vec::new();
/// vocab.decode(1, &mut out)?;
/// vocab.decode(2, &mut out)?;
/// vocab.decode(3, &mut out)?;
/// assert_eq!(std::str::from_utf8(&out).ok(), Some(" world€"));
/// assert!(vocab.decode(4, &mut out).is_err());
/// # Ok::<(), decoding::UnknownToken>(())
/// ```
pub trait Detokenizer {
    /// Appends the bytes of `token` to `out`.
    ///
    /// The generator calls it with an empty buffer of its own and appends
    /// what is left there to the text, so an implementation that replaces
    /// `out` instead of appending produces the same text, and what it
    /// writes before failing is discarded.
    ///
    /// # Errors
    ///
    /// [`UnknownToken`] when the detokenizer has no bytes for `token`. It
    /// should leave `out` unchanged then.
    fn decode(&self, token: TokenId, out: &mut Vec<u8>) -> Result<(), UnknownToken>;
}

/// A token id the detokenizer does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown token id {0}")]
pub struct UnknownToken(pub TokenId);

impl<B: AsRef<[u8]>> Detokenizer for [B] {
    fn decode(&self, token: TokenId, out: &mut Vec<u8>) -> Result<(), UnknownToken> {
        let bytes = self.get(token as usize).ok_or(UnknownToken(token))?;
        out.extend_from_slice(bytes.as_ref());
        Ok(())
    }
}

impl<B: AsRef<[u8]>, const N: usize> Detokenizer for [B; N] {
    fn decode(&self, token: TokenId, out: &mut Vec<u8>) -> Result<(), UnknownToken> {
        self.as_slice().decode(token, out)
    }
}

impl<B: AsRef<[u8]>> Detokenizer for Vec<B> {
    fn decode(&self, token: TokenId, out: &mut Vec<u8>) -> Result<(), UnknownToken> {
        self.as_slice().decode(token, out)
    }
}

impl<D: Detokenizer + ?Sized> Detokenizer for &D {
    fn decode(&self, token: TokenId, out: &mut Vec<u8>) -> Result<(), UnknownToken> {
        (**self).decode(token, out)
    }
}

impl<D: Detokenizer + ?Sized> Detokenizer for Box<D> {
    fn decode(&self, token: TokenId, out: &mut Vec<u8>) -> Result<(), UnknownToken> {
        (**self).decode(token, out)
    }
}

impl<D: Detokenizer + ?Sized> Detokenizer for Arc<D> {
    fn decode(&self, token: TokenId, out: &mut Vec<u8>) -> Result<(), UnknownToken> {
        (**self).decode(token, out)
    }
}
