//! A minimum number of generated tokens.

use crate::processors::suppress_tokens::BanList;
use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Bans the end-of-sequence tokens until at least `min_new_tokens` tokens
/// have been generated: while `ctx.generated().len() < min_new_tokens`,
/// every EOS id scores `-inf`.
///
/// Matches Hugging Face transformers' `MinNewTokensLengthLogitsProcessor`
/// (`min_new_tokens`), whose prompt length to skip is the [`Context`]'s
/// prompt length. `min_new_tokens = 0` is the identity (transformers'
/// `generate` leaves the processor out then).
///
/// EOS ids out of range are an error, where transformers silently ignores
/// them. Repeated EOS ids are harmless.
///
/// # Errors
///
/// [`MinNewTokens::new`] returns [`Error::InvalidParameter`]
/// (`eos_token_id`) for an empty EOS list. `process` returns
/// [`Error::TokenOutOfRange`] when an EOS id is not below the row's
/// vocabulary size (at every step), before touching the row.
///
/// # Performance
///
/// `O(e)` per step for `e` EOS ids; no allocation.
///
/// # Example
///
/// ```
/// use decoding::processors::MinNewTokens;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let eos = 2;
/// let mut p = MinNewTokens::new(2, [eos])?;
/// let history = [7, 8, 9]; // prompt [7, 8], then 9 was generated
/// let mut row = vec![0.0; 10];
/// let mut live = Vec::new();
/// p.process(&Context::new(&history, 2)?, &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row[eos as usize], f32::NEG_INFINITY);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinNewTokens {
    min_new_tokens: usize,
    eos: BanList,
}

impl MinNewTokens {
    /// Bans `eos` until `min_new_tokens` tokens have been generated.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] (`eos_token_id`) when `eos` is empty.
    pub fn new(
        min_new_tokens: usize,
        eos: impl IntoIterator<Item = TokenId>,
    ) -> Result<Self, Error> {
        let eos = BanList::new(eos);
        if eos.ids().is_empty() {
            return Err(Error::invalid(
                "eos_token_id",
                "at least one id (min_new_tokens needs an end-of-sequence token)",
                "an empty list",
            ));
        }
        Ok(MinNewTokens { min_new_tokens, eos })
    }

    /// The minimum number of generated tokens.
    pub fn min_new_tokens(&self) -> usize {
        self.min_new_tokens
    }

    /// The end-of-sequence ids, sorted and without repeats.
    pub fn eos(&self) -> &[TokenId] {
        self.eos.ids()
    }
}

impl LogitsProcessor for MinNewTokens {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        self.eos.check(scores.vocab_size())?;
        if ctx.generated().len() < self.min_new_tokens {
            self.eos.ban(scores);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    fn run(
        min: usize,
        eos: &[TokenId],
        tokens: &[TokenId],
        prompt_len: usize,
    ) -> Result<Vec<f32>, Error> {
        let mut row = vec![0.5; 3];
        let mut live = Vec::new();
        MinNewTokens::new(min, eos.iter().copied())?
            .process(&Context::new(tokens, prompt_len)?, &mut Scores::new(&mut row, &mut live))?;
        Ok(row)
    }

    #[test]
    fn bans_eos_until_enough_tokens_are_generated() {
        // Prompt of 2; 0, 1, then 2 generated tokens.
        let tokens = [1, 1, 1, 1];
        assert_eq!(run(2, &[0, 2], &tokens[..2], 2).unwrap(), [NEG, 0.5, NEG]);
        assert_eq!(run(2, &[0, 2], &tokens[..3], 2).unwrap(), [NEG, 0.5, NEG]);
        assert_eq!(run(2, &[0, 2], &tokens, 2).unwrap(), [0.5; 3]);
        // The prompt length does not count.
        assert_eq!(run(2, &[0], &tokens, 3).unwrap(), [NEG, 0.5, 0.5]);
    }

    #[test]
    fn zero_is_the_identity() {
        assert_eq!(run(0, &[0], &[], 0).unwrap(), [0.5; 3]);
    }

    #[test]
    fn rejects_an_empty_eos_list_and_out_of_range_ids() {
        match MinNewTokens::new(3, []) {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "eos_token_id"),
            other => panic!("{other:?}"),
        }
        assert_eq!(run(1, &[0, 5], &[], 0), Err(Error::TokenOutOfRange { id: 5, vocab_size: 3 }));
        assert_eq!(run(0, &[5], &[], 0), Err(Error::TokenOutOfRange { id: 5, vocab_size: 3 }));
    }
}
