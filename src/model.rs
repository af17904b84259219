//! The model side of generation: a trait for anything that produces
//! next-token scores.

use crate::TokenId;

/// A language model that, fed tokens, writes the scores (logits) of the
/// next position.
///
/// The contract is incremental, so a KV-cached transformer does only new
/// work: each call passes the tokens appended since the previous call (the
/// whole prompt on the first call after [`LanguageModel::reset`]), and the
/// model writes the scores for the position after the last of them into
/// `logits`, a buffer of exactly [`LanguageModel::vocab_size`] entries that
/// the caller owns and reuses. The model writes the row once; nothing copies
/// it again.
///
/// # Example
///
/// A bigram model that always prefers `previous + 1`:
///
/// ```
/// use decoding::{LanguageModel, TokenId};
///
/// #[derive(Debug)]
/// struct Next { vocab: usize, last: Option<TokenId> }
///
/// impl LanguageModel for Next {
///     type Error = std::convert::Infallible;
///     fn vocab_size(&self) -> usize { self.vocab }
///     fn forward(&mut self, tokens: &[TokenId], logits: &mut [f32]) -> Result<(), Self::Error> {
///         self.last = tokens.last().copied().or(self.last);
///         logits.fill(0.0);
///         if let Some(t) = self.last {
///             logits[(t as usize + 1) % self.vocab] = 10.0;
///         }
///         Ok(())
///     }
///     fn reset(&mut self) { self.last = None; }
/// }
///
/// let mut model = Next { vocab: 8, last: None };
/// let mut logits = vec![0.0; model.vocab_size()];
/// model.forward(&[3], &mut logits)?;
/// assert_eq!(logits[4], 10.0);
/// # Ok::<(), std::convert::Infallible>(())
/// ```
pub trait LanguageModel {
    /// The model's own error type, returned to the caller unchanged.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Number of scores per position. May exceed the tokenizer's vocabulary
    /// when the model's head is padded (GPT-2 trained with 50304 rows for
    /// 50257 tokens, for example).
    fn vocab_size(&self) -> usize;

    /// Feeds `tokens`, the tokens appended since the previous call (or since
    /// [`LanguageModel::reset`]), and writes the next position's scores into
    /// `logits` (length [`LanguageModel::vocab_size`]).
    ///
    /// # Errors
    ///
    /// Whatever the model reports (a context longer than it supports, a
    /// token id out of its range, a failed backend call, ...).
    fn forward(&mut self, tokens: &[TokenId], logits: &mut [f32]) -> Result<(), Self::Error>;

    /// Forgets every cached position: the next call starts a new sequence.
    fn reset(&mut self);
}
