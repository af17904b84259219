//! Forced end-of-sequence tokens at the maximum length.

use crate::processors::forced_bos_token::force;
use crate::processors::suppress_tokens::BanList;
use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Forces an end-of-sequence token as the last token when the sequence
/// reaches `max_length`.
///
/// Matches Hugging Face transformers' `ForcedEOSTokenLogitsProcessor`
/// (`forced_eos_token_id` in `generation_config.json`, with `max_length`
/// counting the prompt and the generated tokens): when the history holds
/// `max_length - 1` tokens (`ctx.len() + 1 == max_length`), the row becomes
/// `-inf` everywhere except the EOS ids, which all score `0` (set, not
/// kept: an EOS that an earlier stage removed is revived), so the sampler
/// draws one of them uniformly. At any other length nothing changes;
/// `max_length = 0` never forces.
///
/// [`ForcedEosToken::after_new_tokens`] counts generated tokens instead:
/// what transformers does when `max_new_tokens` is set (it then sets
/// `max_length` to the prompt length plus `max_new_tokens`).
///
/// The result is the EOS ids as a live set, sorted (the higher id first, as
/// for any tie).
///
/// # Errors
///
/// [`ForcedEosToken::new`] returns [`Error::InvalidParameter`]
/// (`forced_eos_token_id`) for an empty list. `process` returns
/// [`Error::TokenOutOfRange`] when an id is not below the row's vocabulary
/// size, at every step, before touching the row.
///
/// # Performance
///
/// `O(e)` per step for `e` EOS ids; no allocation after the first forced
/// step.
///
/// # Example
///
/// ```
/// use decoding::processors::ForcedEosToken;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let mut p = ForcedEosToken::new(4, [3])?;
/// let mut live = Vec::new();
///
/// // Three tokens so far: the fourth and last must be EOS.
/// let mut row = vec![1.0, 5.0, -3.0, 0.5];
/// let mut scores = Scores::new(&mut row, &mut live);
/// p.process(&Context::new(&[7, 8, 9], 2)?, &mut scores)?;
/// scores.densify();
/// assert_eq!(row[3], 0.0);
/// assert!(row[..3].iter().all(|&x| x == f32::NEG_INFINITY));
///
/// // Two tokens: not yet.
/// let mut row = vec![1.0, 5.0, -3.0, 0.5];
/// p.process(&Context::new(&[7, 8], 2)?, &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row, [1.0, 5.0, -3.0, 0.5]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForcedEosToken {
    limit: Limit,
    eos: BanList,
}

/// The length whose last token is forced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    /// The whole sequence, prompt included.
    Total(usize),
    /// The generated tokens.
    New(usize),
}

impl ForcedEosToken {
    /// Forces one of `eos` as the token that brings the sequence to
    /// `max_length`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `eos` is empty.
    pub fn new(max_length: usize, eos: impl IntoIterator<Item = TokenId>) -> Result<Self, Error> {
        Self::with_limit(Limit::Total(max_length), eos)
    }

    /// Forces one of `eos` as the `max_new_tokens`-th generated token (when
    /// `ctx.generated().len() + 1 == max_new_tokens`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `eos` is empty.
    ///
    /// ```
    /// use decoding::processors::ForcedEosToken;
    /// use decoding::{Context, LogitsProcessor, Scores};
    ///
    /// let mut p = ForcedEosToken::after_new_tokens(2, [0])?;
    /// let mut row = vec![1.0, 5.0];
    /// let mut live = Vec::new();
    /// let mut scores = Scores::new(&mut row, &mut live);
    /// p.process(&Context::new(&[7, 8, 9], 2)?, &mut scores)?;
    /// assert_eq!(scores.live_ids(), Some(&[0][..]));
    /// # Ok::<(), decoding::Error>(())
    /// ```
    pub fn after_new_tokens(
        max_new_tokens: usize,
        eos: impl IntoIterator<Item = TokenId>,
    ) -> Result<Self, Error> {
        Self::with_limit(Limit::New(max_new_tokens), eos)
    }

    fn with_limit(limit: Limit, eos: impl IntoIterator<Item = TokenId>) -> Result<Self, Error> {
        let eos = BanList::new(eos);
        if eos.ids().is_empty() {
            return Err(Error::invalid("forced_eos_token_id", "at least one id", "an empty list"));
        }
        Ok(ForcedEosToken { limit, eos })
    }

    /// The total length (prompt included) whose last token is forced, if
    /// built with [`ForcedEosToken::new`].
    pub fn max_length(&self) -> Option<usize> {
        match self.limit {
            Limit::Total(n) => Some(n),
            Limit::New(_) => None,
        }
    }

    /// The number of generated tokens whose last is forced, if built with
    /// [`ForcedEosToken::after_new_tokens`].
    pub fn max_new_tokens(&self) -> Option<usize> {
        match self.limit {
            Limit::New(n) => Some(n),
            Limit::Total(_) => None,
        }
    }

    /// The forced ids, sorted and without repeats.
    pub fn eos(&self) -> &[TokenId] {
        self.eos.ids()
    }
}

impl LogitsProcessor for ForcedEosToken {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let (limit, len) = match self.limit {
            Limit::Total(n) => (n, ctx.len()),
            Limit::New(n) => (n, ctx.generated().len()),
        };
        let now = limit.checked_sub(1) == Some(len);
        force(scores, self.eos.ids(), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn forces_every_eos_at_the_last_position_only() {
        let mut p = ForcedEosToken::new(5, [3, 0, 3]).unwrap();
        assert_eq!((p.max_length(), p.max_new_tokens(), p.eos()), (Some(5), None, &[0, 3][..]));
        let tokens = [9, 9, 9, 9, 9];
        let mut live = Vec::new();
        for len in 0..=5 {
            let mut row = vec![1.0, 2.0, NEG, NEG];
            let mut scores = Scores::new(&mut row, &mut live);
            p.process(&Context::new(&tokens[..len], 0).unwrap(), &mut scores).unwrap();
            if len == 4 {
                assert!(scores.is_sorted());
                assert_eq!(scores.live_ids(), Some(&[3, 0][..]));
            }
            scores.densify();
            let want = if len == 4 { vec![0.0, NEG, NEG, 0.0] } else { vec![1.0, 2.0, NEG, NEG] };
            assert_eq!(row, want, "length {len}");
        }
    }

    #[test]
    fn after_new_tokens_counts_generated_tokens_only() {
        let mut p = ForcedEosToken::after_new_tokens(3, [1]).unwrap();
        assert_eq!((p.max_length(), p.max_new_tokens()), (None, Some(3)));
        let tokens = [9, 9, 9, 9, 9, 9];
        let mut live = Vec::new();
        for generated in 0..=3 {
            let mut row = vec![1.0, 2.0];
            let ctx = Context::new(&tokens[..3 + generated], 3).unwrap();
            let mut scores = Scores::new(&mut row, &mut live);
            p.process(&ctx, &mut scores).unwrap();
            scores.densify();
            let want = if generated == 2 { [NEG, 0.0] } else { [1.0, 2.0] };
            assert_eq!(row, want, "{generated} generated");
        }
    }

    #[test]
    fn zero_max_length_never_forces_and_bad_ids_are_errors() {
        let mut p = ForcedEosToken::new(0, [1]).unwrap();
        let mut row = vec![1.0, 2.0];
        let mut live = Vec::new();
        p.process(&Context::empty(), &mut Scores::new(&mut row, &mut live)).unwrap();
        assert_eq!(row, [1.0, 2.0]);
        assert!(matches!(
            ForcedEosToken::new(3, []),
            Err(Error::InvalidParameter { name: "forced_eos_token_id", .. })
        ));
        let mut p = ForcedEosToken::new(3, [1, 5]).unwrap();
        let err = p.process(&Context::prompt_only(&[0, 0]), &mut Scores::new(&mut row, &mut live));
        assert_eq!(err, Err(Error::TokenOutOfRange { id: 5, vocab_size: 2 }));
        assert_eq!(row, [1.0, 2.0]);
    }
}
