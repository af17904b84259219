//! The CTRL repetition penalty.

use crate::{Context, Error, LogitsProcessor, Scores};

/// Penalizes every token already present in the history, once per distinct
/// token: a score `s` becomes `s * θ` when `s < 0` and `s / θ` otherwise.
///
/// Matches Hugging Face transformers' `RepetitionPenaltyLogitsProcessor`
/// (the CTRL rule) for decoder-only models:
///
/// - **Which tokens**: every distinct id of [`Context::tokens`], prompt
///   *and* generated tokens. A token seen ten times is penalized once, as
///   a token seen once (the penalty does not compound). To leave the prompt
///   out, pass a [`Context`] whose tokens start after it.
/// - **The rule**: for `θ > 1` a positive score is divided and a negative
///   score multiplied, so both move down; `0` stays `0`. `0 < θ < 1`
///   rewards repetition. The arithmetic is f32 (`s / θ`, not
///   `s * (1 / θ)`), bit for bit what transformers computes.
/// - **`θ = 1`** is an exact no-op (the row is not touched).
/// - **Ids not below the row's vocabulary size** in the history are
///   ignored, as transformers ignores them: a prompt may hold ids the
///   output head cannot produce (an embedding table larger than the head),
///   and a token that cannot be sampled needs no penalty. This is data, not
///   configuration, so it is not an error.
/// - `-inf` stays `-inf`. Where `s / θ` or `s * θ` would overflow f32
///   (`θ` near its limits and `|s|` huge), the result saturates at
///   `±f32::MAX`, so a finite score stays finite; transformers would
///   produce `±inf` there.
///
/// The penalty is not shift invariant: adding a constant to every logit
/// changes which scores are negative, hence the result. That is inherent to
/// the rule. It is meant to run on raw logits, before temperature and the
/// truncations, and before
/// [`PresenceFrequencyPenalty`](crate::processors::PresenceFrequencyPenalty)
/// (vLLM's order).
///
/// # Errors
///
/// [`RepetitionPenalty::new`] rejects `θ <= 0`, NaN and infinite values.
/// `process` never fails.
///
/// # Performance
///
/// `O(L)` per step for a history of `L` tokens, independent of the
/// vocabulary size: one pass marks and penalizes first occurrences in a
/// `V`-entry bitmap kept in the processor, a second pass clears the marks.
/// The bitmap is allocated at the first step (and again only if the
/// vocabulary grows); nothing is allocated afterwards.
///
/// # Example
///
/// ```
/// use decoding::processors::RepetitionPenalty;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let mut row = vec![2.0, -2.0, 0.0, 1.0, 5.0];
/// let mut live = Vec::new();
/// let history = [1, 2, 3, 3, 1];
/// RepetitionPenalty::new(2.0)?
///     .process(&Context::prompt_only(&history), &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row, [2.0, -4.0, 0.0, 0.5, 5.0]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RepetitionPenalty {
    penalty: f32,
    /// `seen[id]` marks ids already penalized at this step; all `false`
    /// between steps.
    seen: Vec<bool>,
}

impl RepetitionPenalty {
    /// A penalty `θ > 0` (finite). `1` is the identity, `> 1` discourages
    /// repetition, `< 1` encourages it; 1.1 to 1.3 are common values.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] (`repetition_penalty`) for `θ <= 0`, NaN
    /// or infinite `θ`.
    pub fn new(penalty: f32) -> Result<Self, Error> {
        if !(penalty > 0.0 && penalty.is_finite()) {
            return Err(Error::invalid("repetition_penalty", "finite and > 0", penalty));
        }
        Ok(RepetitionPenalty { penalty, seen: Vec::new() })
    }

    /// The penalty `θ`.
    pub fn penalty(&self) -> f32 {
        self.penalty
    }
}

/// `s * θ` for negative `s`, `s / θ` otherwise, saturated to finite values
/// (`-inf` stays `-inf`).
#[inline]
fn penalize(s: f32, theta: f32) -> f32 {
    let y = if s < 0.0 { s * theta } else { s / theta };
    if s == f32::NEG_INFINITY { s } else { y.clamp(-f32::MAX, f32::MAX) }
}

impl LogitsProcessor for RepetitionPenalty {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let theta = self.penalty;
        if theta == 1.0 || ctx.is_empty() {
            return Ok(());
        }
        let vocab = scores.vocab_size();
        if self.seen.len() < vocab {
            self.seen.resize(vocab, false);
        }
        let seen = &mut self.seen[..vocab];
        let values = scores.values_mut();
        let tokens = ctx.tokens();
        for &id in tokens {
            let i = id as usize;
            if i < vocab && !seen[i] {
                seen[i] = true;
                values[i] = penalize(values[i], theta);
            }
        }
        for &id in tokens {
            if let Some(mark) = seen.get_mut(id as usize) {
                *mark = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    fn run(theta: f32, history: &[u32], row: &[f32]) -> Vec<f32> {
        let mut out = row.to_vec();
        let mut live = Vec::new();
        RepetitionPenalty::new(theta)
            .unwrap()
            .process(&Context::prompt_only(history), &mut Scores::new(&mut out, &mut live))
            .unwrap();
        out
    }

    #[test]
    fn divides_positive_and_multiplies_negative_scores_of_seen_tokens() {
        // Checked against transformers' RepetitionPenaltyLogitsProcessor(2.0).
        assert_eq!(run(2.0, &[1, 2, 3], &[2.0, -2.0, 0.0, 1.0, 5.0]), [2.0, -4.0, 0.0, 0.5, 5.0]);
        assert_eq!(run(2.0, &[0, 1, 2], &[2.0, -2.0, 0.0, 1.0]), [1.0, -4.0, 0.0, 1.0]);
    }

    #[test]
    fn applies_once_per_distinct_token() {
        assert_eq!(run(2.0, &[0, 0, 0, 0], &[2.0, 3.0]), run(2.0, &[0], &[2.0, 3.0]));
        assert_eq!(run(2.0, &[0, 0, 0, 0], &[2.0, 3.0]), [1.0, 3.0]);
        // The scratch marks are cleared: a second step penalizes again.
        let mut p = RepetitionPenalty::new(2.0).unwrap();
        let mut live = Vec::new();
        for _ in 0..2 {
            let mut row = vec![4.0, 4.0];
            p.process(&Context::prompt_only(&[1, 1]), &mut Scores::new(&mut row, &mut live))
                .unwrap();
            assert_eq!(row, [4.0, 2.0]);
        }
    }

    #[test]
    fn counts_prompt_and_generated_tokens() {
        let history = [0, 2];
        let ctx = Context::new(&history, 1).unwrap();
        let mut row = vec![3.0, 3.0, 3.0];
        let mut live = Vec::new();
        RepetitionPenalty::new(1.5)
            .unwrap()
            .process(&ctx, &mut Scores::new(&mut row, &mut live))
            .unwrap();
        assert_eq!(row, [2.0, 3.0, 2.0]);
    }

    #[test]
    fn a_penalty_below_one_rewards_repetition() {
        assert_eq!(run(0.5, &[0, 1], &[2.0, -2.0, 1.0]), [4.0, -1.0, 1.0]);
    }

    #[test]
    fn one_is_the_identity_bit_for_bit() {
        let row = [-0.0, 0.1, -7.25, NEG, 1e-40];
        let out = run(1.0, &[0, 1, 2, 3, 4], &row);
        assert!(out.iter().zip(&row).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn masked_tokens_stay_masked() {
        assert_eq!(run(3.0, &[0], &[NEG, 1.0]), [NEG, 1.0]);
        assert_eq!(run(0.25, &[0], &[NEG, 1.0]), [NEG, 1.0]);
    }

    #[test]
    fn history_ids_beyond_the_vocabulary_are_ignored() {
        assert_eq!(run(2.0, &[7, 1, u32::MAX], &[2.0, 2.0]), [2.0, 1.0]);
    }

    #[test]
    fn overflow_saturates_instead_of_becoming_infinite() {
        // Only the overflowing side saturates; the other is the plain f32 rule.
        assert_eq!(run(1e-3, &[0, 1], &[3e38, -3e38]), [f32::MAX, -3e38 * 1e-3]);
        assert_eq!(run(1e3, &[0, 1], &[3e38, -3e38]), [3e38 / 1e3, -f32::MAX]);
    }

    #[test]
    fn writes_to_a_truncated_row_change_only_live_tokens() {
        let mut row = vec![4.0, 2.0, 8.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        scores.set_live([2, 0], true);
        RepetitionPenalty::new(2.0)
            .unwrap()
            .process(&Context::prompt_only(&[1, 2]), &mut scores)
            .unwrap();
        assert!(!scores.is_sorted());
        scores.densify();
        assert_eq!(row, [4.0, NEG, 4.0]);
    }

    #[test]
    fn rejects_invalid_penalties() {
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            match RepetitionPenalty::new(bad) {
                Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "repetition_penalty"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(RepetitionPenalty::new(1e-30).is_ok());
    }
}
