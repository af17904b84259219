//! OpenAI's presence and frequency penalties.

use crate::{Context, Error, LogitsProcessor, Scores};

/// Subtracts the OpenAI presence and frequency penalties from the scores of
/// the tokens already generated:
/// `s_j -= frequency · c_j + presence · [c_j > 0]`, where `c_j` counts the
/// occurrences of token `j` among the **generated** tokens
/// ([`Context::generated`]); prompt tokens are not counted.
///
/// Hugging Face transformers has no such processor. This is the definition
/// of the OpenAI API, as vLLM implements it, in the same f32 steps:
/// `s -= frequency · c` first, then `s -= presence` when `c > 0`. A token
/// that was not generated is not touched.
///
/// - **Range**: both coefficients must lie in `[-2, 2]`, the range the
///   OpenAI API (and vLLM) accept. Positive values discourage repetition,
///   negative values encourage it; `0` disables a term and `(0, 0)` is an
///   exact no-op. With this range no score can overflow.
/// - **Order**: run [`RepetitionPenalty`](crate::processors::RepetitionPenalty)
///   first and this processor second, as vLLM does; both belong on raw
///   logits, before temperature and the truncations. (mistral.rs applies
///   them the other way round; the results differ slightly, because the
///   repetition penalty depends on the sign of the score.)
/// - Generated ids not below the row's vocabulary size are ignored, as
///   [`RepetitionPenalty`](crate::processors::RepetitionPenalty) ignores
///   them.
/// - `-inf` stays `-inf`.
///
/// # Errors
///
/// [`PresenceFrequencyPenalty::new`] rejects NaN, infinite and
/// out-of-range coefficients. `process` never fails.
///
/// # Performance
///
/// `O(G)` per step for `G` generated tokens: one pass counts into a
/// `V`-entry table kept in the processor, a second pass applies the
/// penalties and clears the counts. The table is allocated at the first
/// step (and again only if the vocabulary grows).
///
/// # Example
///
/// ```
/// use decoding::processors::PresenceFrequencyPenalty;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let history = [2, 0, 0, 1]; // prompt [2], then 0, 0, 1 were generated
/// let ctx = Context::new(&history, 1)?;
/// let mut row = vec![1.0, 1.0, 1.0];
/// let mut live = Vec::new();
/// PresenceFrequencyPenalty::new(1.0, 0.5)?.process(&ctx, &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row, [-1.0, -0.5, 1.0]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct PresenceFrequencyPenalty {
    presence: f32,
    frequency: f32,
    /// Per-token counts of the current step; all zero between steps.
    counts: Vec<u32>,
}

impl PresenceFrequencyPenalty {
    /// The OpenAI `presence_penalty` and `frequency_penalty`, each in
    /// `[-2, 2]`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] (`presence_penalty` or
    /// `frequency_penalty`) for NaN or a value outside `[-2, 2]`.
    pub fn new(presence: f32, frequency: f32) -> Result<Self, Error> {
        check("presence_penalty", presence)?;
        check("frequency_penalty", frequency)?;
        Ok(PresenceFrequencyPenalty { presence, frequency, counts: Vec::new() })
    }

    /// The presence penalty.
    pub fn presence(&self) -> f32 {
        self.presence
    }

    /// The frequency penalty.
    pub fn frequency(&self) -> f32 {
        self.frequency
    }
}

fn check(name: &'static str, value: f32) -> Result<(), Error> {
    if (-2.0..=2.0).contains(&value) {
        Ok(())
    } else {
        Err(Error::invalid(name, "in [-2, 2]", value))
    }
}

impl LogitsProcessor for PresenceFrequencyPenalty {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let (presence, frequency) = (self.presence, self.frequency);
        let generated = ctx.generated();
        if (presence == 0.0 && frequency == 0.0) || generated.is_empty() {
            return Ok(());
        }
        let vocab = scores.vocab_size();
        if self.counts.len() < vocab {
            self.counts.resize(vocab, 0);
        }
        let counts = &mut self.counts[..vocab];
        for &id in generated {
            if let Some(c) = counts.get_mut(id as usize) {
                *c = c.saturating_add(1);
            }
        }
        let values = scores.values_mut();
        for &id in generated {
            let i = id as usize;
            if i < vocab && counts[i] > 0 {
                let s = values[i] - frequency * counts[i] as f32;
                values[i] = s - presence;
                counts[i] = 0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    fn run(
        presence: f32,
        frequency: f32,
        tokens: &[u32],
        prompt_len: usize,
        row: &[f32],
    ) -> Vec<f32> {
        let mut out = row.to_vec();
        let mut live = Vec::new();
        PresenceFrequencyPenalty::new(presence, frequency)
            .unwrap()
            .process(
                &Context::new(tokens, prompt_len).unwrap(),
                &mut Scores::new(&mut out, &mut live),
            )
            .unwrap();
        out
    }

    #[test]
    fn subtracts_count_times_frequency_plus_presence() {
        // 1 - 0.5·2 - 1 = -1, 1 - 0.5·1 - 1 = -0.5, token 2 untouched.
        assert_eq!(run(1.0, 0.5, &[0, 0, 1], 0, &[1.0, 1.0, 1.0]), [-1.0, -0.5, 1.0]);
    }

    #[test]
    fn prompt_tokens_are_not_counted() {
        assert_eq!(run(1.0, 0.5, &[2, 2, 0, 0, 1], 2, &[1.0, 1.0, 1.0]), [-1.0, -0.5, 1.0]);
        assert_eq!(run(1.0, 0.5, &[0, 1, 2], 3, &[1.0, 1.0, 1.0]), [1.0, 1.0, 1.0]);
    }

    #[test]
    fn each_term_alone() {
        // Presence only: once, whatever the count.
        assert_eq!(run(2.0, 0.0, &[0, 0, 0, 1], 0, &[0.0, 0.0, 0.0]), [-2.0, -2.0, 0.0]);
        // Frequency only: proportional to the count.
        assert_eq!(run(0.0, 0.25, &[0, 0, 0, 1], 0, &[0.0, 0.0, 0.0]), [-0.75, -0.25, 0.0]);
        // Negative coefficients reward.
        assert_eq!(run(-1.0, -0.5, &[0, 0], 0, &[0.0, 0.0]), [2.0, 0.0]);
    }

    #[test]
    fn counts_are_cleared_between_steps() {
        let mut p = PresenceFrequencyPenalty::new(0.0, 1.0).unwrap();
        let mut live = Vec::new();
        for _ in 0..3 {
            let mut row = vec![5.0, 5.0];
            p.process(&Context::new(&[1, 1], 0).unwrap(), &mut Scores::new(&mut row, &mut live))
                .unwrap();
            assert_eq!(row, [5.0, 3.0]);
        }
    }

    #[test]
    fn masked_tokens_stay_masked_and_out_of_vocab_ids_are_ignored() {
        assert_eq!(run(-2.0, -2.0, &[0, 9, 1], 0, &[NEG, 1.0]), [NEG, 5.0]);
    }

    #[test]
    fn zero_coefficients_are_the_identity() {
        let row = [-0.0, 3.5, NEG];
        let out = run(0.0, 0.0, &[0, 1, 2, 0], 0, &row);
        assert!(out.iter().zip(&row).all(|(a, b)| a.to_bits() == b.to_bits()));
    }

    #[test]
    fn rejects_invalid_coefficients() {
        for bad in [f32::NAN, f32::INFINITY, -2.5, 2.0001] {
            match PresenceFrequencyPenalty::new(bad, 0.0) {
                Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "presence_penalty"),
                other => panic!("{bad}: {other:?}"),
            }
            match PresenceFrequencyPenalty::new(0.0, bad) {
                Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "frequency_penalty"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(PresenceFrequencyPenalty::new(-2.0, 2.0).is_ok());
    }
}
