//! A forced first token.

use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Forces `bos` as the first generated token of a sequence whose prompt is
/// a single token (the decoder start of encoder-decoder models, or a
/// one-token prompt).
///
/// Matches Hugging Face transformers' `ForcedBOSTokenLogitsProcessor`
/// (`forced_bos_token_id` in `generation_config.json`): when the history
/// holds exactly one token (`ctx.len() == 1`), the row becomes `-inf`
/// everywhere except `bos`, which scores `0`, whatever it scored before
/// (a forced token is set, not kept: it is revived even if an earlier stage
/// removed it). At any other length nothing changes.
///
/// The result is a one-token live set (sorted), so every sampler picks
/// `bos`.
///
/// # Errors
///
/// `process` returns [`Error::TokenOutOfRange`] when `bos` is not below the
/// row's vocabulary size, at every step, before touching the row.
///
/// # Performance
///
/// `O(1)` per step; no allocation after the first forced step.
///
/// # Example
///
/// ```
/// use decoding::processors::ForcedBosToken;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let mut p = ForcedBosToken::new(2);
/// let mut live = Vec::new();
/// let mut row = vec![1.0, 5.0, -3.0, 0.5];
/// let mut scores = Scores::new(&mut row, &mut live);
/// p.process(&Context::prompt_only(&[0]), &mut scores)?;
/// assert_eq!(scores.live_ids(), Some(&[2][..]));
/// scores.densify(); // the row as transformers holds it
/// assert_eq!(row, [f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY]);
///
/// // Later steps are left alone.
/// let mut row = vec![1.0, 5.0, -3.0, 0.5];
/// p.process(&Context::new(&[0, 2], 1)?, &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row, [1.0, 5.0, -3.0, 0.5]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForcedBosToken {
    bos: TokenId,
}

impl ForcedBosToken {
    /// Forces `bos` after a one-token history.
    pub fn new(bos: TokenId) -> Self {
        ForcedBosToken { bos }
    }

    /// The forced token.
    pub fn bos(&self) -> TokenId {
        self.bos
    }
}

impl LogitsProcessor for ForcedBosToken {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        force(scores, &[self.bos], ctx.len() == 1)
    }
}

/// Checks `ids` (ascending) against the vocabulary, then, when `now`, makes
/// them the only live tokens, each scoring 0.
pub(crate) fn force(scores: &mut Scores<'_>, ids: &[TokenId], now: bool) -> Result<(), Error> {
    let vocab_size = scores.vocab_size();
    if let Some(&id) = ids.iter().find(|&&id| id as usize >= vocab_size) {
        return Err(Error::TokenOutOfRange { id, vocab_size });
    }
    if now {
        let values = scores.values_mut();
        for &id in ids {
            values[id as usize] = 0.0;
        }
        // Equal scores: the higher id ranks first.
        scores.set_live(ids.iter().rev().copied(), true);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn forces_only_after_a_one_token_history() {
        let mut p = ForcedBosToken::new(1);
        assert_eq!(p.bos(), 1);
        let mut live = Vec::new();
        for (tokens, forced) in [(&[][..], false), (&[7][..], true), (&[7, 1][..], false)] {
            let mut row = vec![3.0, NEG, 2.0];
            let mut scores = Scores::new(&mut row, &mut live);
            p.process(&Context::new(tokens, tokens.len().min(1)).unwrap(), &mut scores).unwrap();
            if forced {
                assert!(scores.is_sorted());
                assert_eq!(scores.live_ids(), Some(&[1][..]));
            }
            scores.densify();
            // A masked BOS is set, not kept: it scores 0.
            let want = if forced { vec![NEG, 0.0, NEG] } else { vec![3.0, NEG, 2.0] };
            assert_eq!(row, want, "history {tokens:?}");
        }
    }

    #[test]
    fn an_id_beyond_the_vocabulary_is_an_error_at_every_step() {
        let mut p = ForcedBosToken::new(3);
        let mut live = Vec::new();
        for tokens in [&[0][..], &[0, 1][..]] {
            let mut row = vec![0.0; 3];
            let err =
                p.process(&Context::prompt_only(tokens), &mut Scores::new(&mut row, &mut live));
            assert_eq!(err, Err(Error::TokenOutOfRange { id: 3, vocab_size: 3 }));
            assert_eq!(row, [0.0; 3]);
        }
    }
}
