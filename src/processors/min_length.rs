//! A minimum total sequence length.

use crate::processors::suppress_tokens::BanList;
use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Bans the end-of-sequence tokens while the whole sequence (prompt **and**
/// generated tokens) is shorter than `min_length`: while
/// `ctx.len() < min_length`, every EOS id scores `-inf`.
///
/// Matches Hugging Face transformers' `MinLengthLogitsProcessor`
/// (`min_length` in `generation_config.json`), which compares the length of
/// `input_ids` (the prompt included) with `min_length`. To count generated
/// tokens only, use [`MinNewTokens`](crate::processors::MinNewTokens).
/// `min_length = 0` is the identity (transformers' `generate` leaves the
/// processor out then).
///
/// EOS ids out of range are an error, where transformers silently ignores
/// them. Repeated EOS ids are harmless.
///
/// # Errors
///
/// [`MinLength::new`] returns [`Error::InvalidParameter`] (`eos_token_id`)
/// for an empty EOS list. `process` returns [`Error::TokenOutOfRange`] when
/// an EOS id is not below the row's vocabulary size (at every step), before
/// touching the row.
///
/// # Performance
///
/// `O(e)` per step for `e` EOS ids; no allocation.
///
/// # Example
///
/// ```
/// use decoding::processors::MinLength;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let eos = 2;
/// let mut p = MinLength::new(4, [eos])?;
/// let mut live = Vec::new();
///
/// let mut row = vec![0.0; 5];
/// p.process(&Context::new(&[7, 8, 9], 2)?, &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row[eos as usize], f32::NEG_INFINITY); // 3 tokens < 4
///
/// let mut row = vec![0.0; 5];
/// p.process(&Context::new(&[7, 8, 9, 1], 2)?, &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row[eos as usize], 0.0);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MinLength {
    min_length: usize,
    eos: BanList,
}

impl MinLength {
    /// Bans `eos` while the sequence holds fewer than `min_length` tokens.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] (`eos_token_id`) when `eos` is empty.
    pub fn new(min_length: usize, eos: impl IntoIterator<Item = TokenId>) -> Result<Self, Error> {
        let eos = BanList::new(eos);
        if eos.ids().is_empty() {
            return Err(Error::invalid(
                "eos_token_id",
                "at least one id (min_length needs an end-of-sequence token)",
                "an empty list",
            ));
        }
        Ok(MinLength { min_length, eos })
    }

    /// The minimum total length.
    pub fn min_length(&self) -> usize {
        self.min_length
    }

    /// The end-of-sequence ids, sorted and without repeats.
    pub fn eos(&self) -> &[TokenId] {
        self.eos.ids()
    }
}

impl LogitsProcessor for MinLength {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        self.eos.check(scores.vocab_size())?;
        if ctx.len() < self.min_length {
            self.eos.ban(scores);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    fn run(min: usize, eos: &[TokenId], tokens: &[TokenId], prompt_len: usize) -> Vec<f32> {
        let mut row = vec![0.5; 3];
        let mut live = Vec::new();
        MinLength::new(min, eos.iter().copied())
            .unwrap()
            .process(
                &Context::new(tokens, prompt_len).unwrap(),
                &mut Scores::new(&mut row, &mut live),
            )
            .unwrap();
        row
    }

    #[test]
    fn counts_prompt_and_generated_tokens() {
        let tokens = [1, 1, 1, 1];
        assert_eq!(run(4, &[0, 2], &tokens[..3], 3), [NEG, 0.5, NEG]);
        assert_eq!(run(4, &[0, 2], &tokens[..3], 0), [NEG, 0.5, NEG]);
        assert_eq!(run(4, &[0, 2], &tokens, 3), [0.5; 3]);
        assert_eq!(run(4, &[0], &tokens, 0), [0.5; 3]);
    }

    #[test]
    fn zero_is_the_identity() {
        assert_eq!(run(0, &[0], &[], 0), [0.5; 3]);
    }

    #[test]
    fn rejects_an_empty_eos_list_and_out_of_range_ids() {
        match MinLength::new(3, []) {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "eos_token_id"),
            other => panic!("{other:?}"),
        }
        let mut row = vec![0.5; 3];
        let mut live = Vec::new();
        let err = MinLength::new(9, [3])
            .unwrap()
            .process(&Context::empty(), &mut Scores::new(&mut row, &mut live));
        assert_eq!(err, Err(Error::TokenOutOfRange { id: 3, vocab_size: 3 }));
        assert_eq!(row, [0.5; 3]);
    }
}
