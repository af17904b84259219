//! The model side of generation: a trait for anything that produces
//! next-token scores.

use crate::TokenId;

/// A language model that, fed tokens, writes the scores (logits) of the
/// next position.
///
/// The contract is incremental, so a KV-cached transformer does only new
/// work: each call passes the tokens appended since the previous call (the
/// whole prompt on the first call after [`LanguageModel::reset`]) together
/// with the **position** of the first of them (the number of tokens the
/// sequence held before the call, `0` after a reset), and the model writes
/// the scores for the position after the last of them into `logits`, a
/// buffer of exactly [`LanguageModel::vocab_size`] entries that the caller
/// owns and reuses. The model writes the row once; nothing copies it again.
///
/// The position is what a KV-cache engine indexes its cache with (candle's
/// `index_pos`, llama.cpp's `n_past`): a model may use it instead of
/// counting its own calls, and may check it against what it holds. The
/// generator always passes the number of tokens it has fed since the last
/// reset (or, after a [`RewindableModel::rewind`], since the rewind point).
/// [`LanguageModel::reset`] is fallible because rebuilding or clearing a
/// cache can fail (a device allocation, a remote backend).
///
/// To keep a KV cache across runs (a chat turn that extends the previous
/// conversation), wrap a [`RewindableModel`] in a
/// [`PrefixCache`](crate::PrefixCache): it feeds only what differs from what
/// the model already holds.
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
///     fn forward(&mut self, tokens: &[TokenId], _position: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
///         self.last = tokens.last().copied().or(self.last);
///         logits.fill(0.0);
///         if let Some(t) = self.last {
///             logits[(t as usize + 1) % self.vocab] = 10.0;
///         }
///         Ok(())
///     }
///     fn reset(&mut self) -> Result<(), Self::Error> { self.last = None; Ok(()) }
/// }
///
/// let mut model = Next { vocab: 8, last: None };
/// let mut logits = vec![0.0; model.vocab_size()];
/// model.forward(&[3], 0, &mut logits)?;
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
    /// [`LanguageModel::reset`]), which occupy the positions
    /// `position..position + tokens.len()` of the sequence, and writes the
    /// next position's scores into `logits` (length
    /// [`LanguageModel::vocab_size`]).
    ///
    /// # Errors
    ///
    /// Whatever the model reports (a context longer than it supports, a
    /// token id out of its range, a position that does not match what it
    /// holds, a failed backend call, ...).
    fn forward(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error>;

    /// Feeds `tokens` as [`LanguageModel::forward`] does, and writes the
    /// scores of the position after **each** of them: row `i` (the scores
    /// after `tokens[i]`) in `logits[i * V..(i + 1) * V]`, with `V` the
    /// [`vocab_size`](LanguageModel::vocab_size). `logits` has exactly
    /// `tokens.len() * V` entries; an empty `tokens` writes nothing.
    ///
    /// What needs the scores of several positions at once calls it:
    /// speculative decoding (verifying `k` drafted tokens is one call) and
    /// prompt log-probabilities
    /// ([`GenerateOptionsBuilder::prompt_logprobs`](crate::GenerateOptionsBuilder::prompt_logprobs):
    /// the prompt is fed in chunks of rows). A transformer runs the new
    /// positions once and applies its head to each of them. The default
    /// calls [`LanguageModel::forward`] once per token, which is correct
    /// under the incremental contract but does no batching: override it
    /// when the model can do better. `position` is as in
    /// [`LanguageModel::forward`].
    ///
    /// # Errors
    ///
    /// Whatever the model reports.
    fn forward_all(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        let vocab = self.vocab_size();
        if vocab == 0 {
            return Ok(());
        }
        for (i, (&token, row)) in tokens.iter().zip(logits.chunks_exact_mut(vocab)).enumerate() {
            self.forward(std::slice::from_ref(&token), position + i, row)?;
        }
        Ok(())
    }

    /// Forgets every cached position: the next call starts a new sequence
    /// at position 0.
    ///
    /// # Errors
    ///
    /// Whatever the model reports (a cache that cannot be rebuilt, ...).
    /// The generator ends the run with
    /// [`GenerateError::Model`](crate::GenerateError::Model) at step 0.
    fn reset(&mut self) -> Result<(), Self::Error>;
}

/// A [`LanguageModel`] that can forget its latest positions: what
/// speculative decoding
/// ([`Generator::generate_speculative`](crate::Generator::generate_speculative))
/// needs of both the target and the draft model.
///
/// Models that never speculate do not implement it; plain generation needs
/// only [`LanguageModel`].
///
/// # Positions
///
/// The model *holds* the tokens fed since the last
/// [`reset`](LanguageModel::reset), in order (a transformer's KV cache).
/// [`RewindableModel::rewind`] shortens that history like `Vec::truncate`;
/// the next [`forward`](LanguageModel::forward) continues after what is
/// left.
///
/// # Example
///
/// A bigram model holds only its last token, so every rewind leaves it in
/// a correct state: the next call feeds at least one token, which replaces
/// it. The default [`LanguageModel::forward_all`] is enough.
///
/// ```
/// use decoding::{LanguageModel, RewindableModel, TokenId};
///
/// #[derive(Debug)]
/// struct Next { vocab: usize, last: Option<TokenId> }
///
/// impl LanguageModel for Next {
///     type Error = std::convert::Infallible;
///     fn vocab_size(&self) -> usize { self.vocab }
///     fn forward(&mut self, tokens: &[TokenId], _position: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
///         self.last = tokens.last().copied().or(self.last);
///         logits.fill(0.0);
///         if let Some(t) = self.last {
///             logits[(t as usize + 1) % self.vocab] = 10.0;
///         }
///         Ok(())
///     }
///     fn reset(&mut self) -> Result<(), Self::Error> { self.last = None; Ok(()) }
/// }
///
/// impl RewindableModel for Next {
///     fn rewind(&mut self, _len: usize) -> Result<(), Self::Error> { Ok(()) }
/// }
///
/// let mut model = Next { vocab: 8, last: None };
/// let mut rows = vec![0.0; 2 * model.vocab_size()];
/// model.forward_all(&[3, 5], 0, &mut rows)?;
/// assert_eq!(rows[4], 10.0);     // row 0: after token 3
/// assert_eq!(rows[8 + 6], 10.0); // row 1: after token 5
/// # Ok::<(), std::convert::Infallible>(())
/// ```
pub trait RewindableModel: LanguageModel {
    /// Forgets every held position from `len` on, so the model holds the
    /// first `len` tokens fed since the last [`reset`](LanguageModel::reset)
    /// and the next [`forward`](LanguageModel::forward) continues after
    /// them. Like `Vec::truncate`, a `len` at or past the number of tokens
    /// held changes nothing; `rewind(0)` is a reset.
    ///
    /// The generator calls it only to drop drafted tokens that were not
    /// kept, and feeds at least one more token before it reads scores again.
    ///
    /// # Errors
    ///
    /// Whatever the model reports (a backend that cannot truncate its
    /// cache, ...). An error ends the run.
    fn rewind(&mut self, len: usize) -> Result<(), Self::Error>;
}
