//! Banned token sequences.

use crate::processors::SequenceBias;
use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Bans the token that would complete a banned sequence.
///
/// Matches Hugging Face transformers' `NoBadWordsLogitsProcessor`
/// (`bad_words_ids`), which is a [`SequenceBias`] with a bias of `-inf`:
///
/// - A **one-token** sequence `[t]` bans `t` at every step.
/// - A **longer** sequence `[p_1, …, p_k, t]` bans `t` when the history
///   ([`Context::tokens`], prompt included) ends with `p_1, …, p_k`. (vLLM
///   matches the prefix against the generated tokens only; this follows
///   transformers.)
/// - A sequence equal to `[e]` for an end-of-sequence id `e` is **dropped**,
///   as transformers drops it, so that a ban list cannot stop generation
///   from ever ending. Longer sequences that contain or end with an EOS id
///   are kept.
/// - A sequence listed twice is banned once. An empty list is the
///   identity (transformers rejects it), as is a list made only of dropped
///   EOS sequences (as in transformers).
/// - A banned token's score becomes `-inf`; nothing is ever revived.
///
/// Only the token that *completes* a sequence is banned: with `[a, b]`
/// banned, `a` can still be generated, after which `b` is banned. Ban the
/// first token as well (or use beam search) to avoid the prefix.
///
/// # Errors
///
/// [`BadWords::new`] returns [`Error::InvalidParameter`] (`bad_words_ids`)
/// for an empty sequence. `process` returns [`Error::TokenOutOfRange`] when
/// an id of a kept sequence is not below the row's vocabulary size, before
/// touching the row.
///
/// # Performance
///
/// As [`SequenceBias`]: `O(Σ prefix lengths)` per step, no allocation.
///
/// # Example
///
/// ```
/// use decoding::processors::BadWords;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let eos = 0;
/// let mut bad = BadWords::new([vec![4], vec![1, 2], vec![eos]], &[eos])?;
/// let mut row = vec![0.0; 5];
/// let mut live = Vec::new();
/// bad.process(&Context::prompt_only(&[3, 1]), &mut Scores::new(&mut row, &mut live))?;
/// let ninf = f32::NEG_INFINITY;
/// assert_eq!(row, [0.0, 0.0, ninf, 0.0, ninf]); // EOS (0) is not banned
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct BadWords {
    inner: SequenceBias,
}

impl BadWords {
    /// Bans each sequence, except one-token sequences equal to an id of
    /// `eos`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] (`bad_words_ids`) for an empty sequence.
    pub fn new(
        sequences: impl IntoIterator<Item = Vec<TokenId>>,
        eos: &[TokenId],
    ) -> Result<Self, Error> {
        let kept = sequences
            .into_iter()
            .filter(|seq| !matches!(seq[..], [t] if eos.contains(&t)))
            .map(|seq| (seq, f32::NEG_INFINITY));
        Ok(BadWords { inner: SequenceBias::build(kept, "bad_words_ids", true)? })
    }
}

impl LogitsProcessor for BadWords {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        self.inner.process(ctx, scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    fn run(
        seqs: &[&[TokenId]],
        eos: &[TokenId],
        history: &[TokenId],
        v: usize,
    ) -> Result<Vec<f32>, Error> {
        let mut out = vec![1.0; v];
        let mut live = Vec::new();
        BadWords::new(seqs.iter().map(|s| s.to_vec()), eos)?
            .process(&Context::prompt_only(history), &mut Scores::new(&mut out, &mut live))?;
        Ok(out)
    }

    #[test]
    fn single_tokens_are_always_banned() {
        assert_eq!(run(&[&[2]], &[], &[], 3).unwrap(), [1.0, 1.0, NEG]);
    }

    #[test]
    fn the_last_token_is_banned_only_after_its_prefix() {
        let seqs: &[&[TokenId]] = &[&[0, 1, 2], &[1, 3]];
        assert_eq!(run(seqs, &[], &[0, 1], 4).unwrap(), [1.0, 1.0, NEG, NEG]);
        assert_eq!(run(seqs, &[], &[1], 4).unwrap(), [1.0, 1.0, 1.0, NEG]);
        assert_eq!(run(seqs, &[], &[0, 1, 2], 4).unwrap(), [1.0; 4]);
    }

    #[test]
    fn eos_only_sequences_are_dropped_but_longer_ones_are_kept() {
        assert_eq!(run(&[&[3], &[1, 3]], &[3, 0], &[], 4).unwrap(), [1.0; 4]);
        assert_eq!(run(&[&[3], &[1, 3]], &[3], &[1], 4).unwrap(), [1.0, 1.0, 1.0, NEG]);
        // A dropped sequence is not checked against the vocabulary either.
        assert_eq!(run(&[&[9]], &[9], &[], 2).unwrap(), [1.0, 1.0]);
    }

    #[test]
    fn repeated_sequences_are_banned_once() {
        assert_eq!(run(&[&[1], &[1], &[0, 1], &[0, 1]], &[], &[0], 2).unwrap(), [1.0, NEG]);
    }

    #[test]
    fn out_of_vocabulary_ids_are_an_error() {
        assert_eq!(
            run(&[&[5, 1]], &[], &[], 2),
            Err(Error::TokenOutOfRange { id: 5, vocab_size: 2 })
        );
    }

    #[test]
    fn rejects_empty_sequences() {
        match BadWords::new([vec![1], vec![]], &[0]) {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "bad_words_ids"),
            other => panic!("{other:?}"),
        }
    }
}
