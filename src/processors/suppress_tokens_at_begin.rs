//! Tokens that may not start the generated text.

use crate::processors::suppress_tokens::BanList;
use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Sets the score of each listed token to `-inf` at the first generated
/// position only, that is while [`Context::generated`] is empty.
///
/// Matches Hugging Face transformers' `SuppressTokensAtBeginLogitsProcessor`
/// (`begin_suppress_tokens`, used by Whisper to keep a blank or EOS from
/// starting the transcript). transformers applies it when the sequence
/// length equals `begin_index`, which `generate` sets to the prompt length;
/// here that is the step at which no token has been generated yet.
/// (When transformers forces a BOS token after a one-token prompt it moves
/// `begin_index` one step later; put the forced token in the prompt to get
/// the same behavior.)
///
/// Ids out of range are an error, where transformers silently ignores them
/// (see [`SuppressTokens`](crate::processors::SuppressTokens)). Repeated ids
/// are harmless; an empty list is the identity.
///
/// # Errors
///
/// `process` returns [`Error::TokenOutOfRange`] when a listed id is not
/// below the row's vocabulary size (at every step, so that the mistake
/// shows at the first one), before touching the row.
///
/// # Performance
///
/// `O(n)` at the first step for `n` distinct listed ids, `O(1)` afterwards;
/// no allocation.
///
/// # Example
///
/// ```
/// use decoding::processors::SuppressTokensAtBegin;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let mut p = SuppressTokensAtBegin::new([0]);
/// let mut live = Vec::new();
/// let history = [5, 6, 7];
///
/// let mut row = vec![1.0; 8];
/// p.process(&Context::new(&history, 3)?, &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row[0], f32::NEG_INFINITY); // nothing generated yet
///
/// let mut row = vec![1.0; 8];
/// p.process(&Context::new(&history, 2)?, &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row[0], 1.0); // 7 was generated
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressTokensAtBegin {
    ids: BanList,
}

impl SuppressTokensAtBegin {
    /// Suppresses the given ids at the first generated position.
    pub fn new(ids: impl IntoIterator<Item = TokenId>) -> Self {
        SuppressTokensAtBegin { ids: BanList::new(ids) }
    }

    /// The suppressed ids, sorted and without repeats.
    pub fn ids(&self) -> &[TokenId] {
        self.ids.ids()
    }
}

impl LogitsProcessor for SuppressTokensAtBegin {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        self.ids.check(scores.vocab_size())?;
        if ctx.generated().is_empty() {
            self.ids.ban(scores);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    fn run(ids: &[TokenId], tokens: &[TokenId], prompt_len: usize) -> Result<Vec<f32>, Error> {
        let mut row = vec![0.5; 3];
        let mut live = Vec::new();
        SuppressTokensAtBegin::new(ids.iter().copied())
            .process(&Context::new(tokens, prompt_len)?, &mut Scores::new(&mut row, &mut live))?;
        Ok(row)
    }

    #[test]
    fn bans_only_while_nothing_is_generated() {
        assert_eq!(run(&[0, 2], &[1, 1], 2).unwrap(), [NEG, 0.5, NEG]);
        assert_eq!(run(&[0, 2], &[], 0).unwrap(), [NEG, 0.5, NEG]);
        assert_eq!(run(&[0, 2], &[1, 1], 1).unwrap(), [0.5; 3]);
        assert_eq!(run(&[0, 2], &[1], 0).unwrap(), [0.5; 3]);
    }

    #[test]
    fn ids_beyond_the_vocabulary_are_an_error_at_every_step() {
        let out_of_range = Err(Error::TokenOutOfRange { id: 3, vocab_size: 3 });
        assert_eq!(run(&[3], &[1], 1), out_of_range);
        assert_eq!(run(&[3], &[1], 0), out_of_range);
    }
}
