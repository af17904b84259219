//! llama.cpp's penalties: repetition, frequency and presence over a window.

use crate::{Context, Error, LogitsProcessor, Scores};

/// Penalizes the tokens that occur among the last `last_n` tokens of the
/// history, the way llama.cpp's penalties sampler does (`repeat_last_n`,
/// `repeat_penalty`, `frequency_penalty`, `presence_penalty`).
///
/// For every token `j` occurring `c_j > 0` times in the window, in f32:
///
/// 1. `s = s * repeat` when `s <= 0`, `s = s / repeat` otherwise (the CTRL
///    rule; `0` stays `0`);
/// 2. `s = s - (c_j · frequency + presence)`.
///
/// Tokens outside the window are not touched.
///
/// - **The window** is the last `last_n` tokens of [`Context::tokens`],
///   prompt included: llama.cpp's command-line tool and server feed the
///   prompt to the sampler before generating, so its ring buffer of recent
///   tokens holds prompt tokens too. `last_n = 0` disables the penalties;
///   `usize::MAX` (llama.cpp's `-1`, the context size) covers the whole
///   history.
/// - **Counts** are per occurrence in the window: the repetition factor is
///   applied once per distinct token, the frequency term `c_j` times.
/// - **Differences from the transformers-style processors**: unlike
///   [`RepetitionPenalty`](crate::processors::RepetitionPenalty) the window
///   is bounded, and unlike
///   [`PresenceFrequencyPenalty`](crate::processors::PresenceFrequencyPenalty)
///   the prompt counts and the coefficients are not limited to `[-2, 2]`.
/// - `repeat = 1`, `frequency = 0` and `presence = 0` together are an exact
///   no-op, as is an empty window.
/// - History ids not below the row's vocabulary size are ignored. `-inf`
///   stays `-inf`; a finite score that would overflow saturates at
///   `±f32::MAX`.
///
/// # Errors
///
/// [`WindowedPenalties::new`] rejects a `repeat` that is not finite and
/// `> 0`, and non-finite `frequency` or `presence` coefficients
/// ([`Error::InvalidParameter`] named `repeat_penalty`,
/// `frequency_penalty`, `presence_penalty`). `process` never fails.
///
/// # Performance
///
/// `O(min(last_n, L))` per step, independent of the vocabulary size: one
/// pass over the window counts into a `V`-entry table kept in the
/// processor, a second pass applies the penalties and clears the counts.
/// The table is allocated at the first step (and again only if the
/// vocabulary grows).
///
/// # Example
///
/// ```
/// use decoding::processors::WindowedPenalties;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// // Only the last 3 tokens (2, 1, 1) count; token 0 is outside the window.
/// let history = [0, 2, 1, 1];
/// let mut row = vec![4.0, 4.0, -4.0];
/// let mut live = Vec::new();
/// WindowedPenalties::new(3, 2.0, 0.5, 1.0)?
///     .process(&Context::prompt_only(&history), &mut Scores::new(&mut row, &mut live))?;
/// // token 1: 4 / 2 - (2·0.5 + 1) = 0; token 2: -4 · 2 - (0.5 + 1) = -9.5
/// assert_eq!(row, [4.0, 0.0, -9.5]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WindowedPenalties {
    last_n: usize,
    repeat: f32,
    frequency: f32,
    presence: f32,
    /// Per-token counts of the current step; all zero between steps.
    counts: Vec<u32>,
}

impl WindowedPenalties {
    /// Penalties over the last `last_n` tokens: a repetition factor
    /// `repeat > 0` (1 disables it) and additive `frequency` and `presence`
    /// coefficients (0 disables each).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for `repeat <= 0`, NaN or infinite
    /// values.
    pub fn new(last_n: usize, repeat: f32, frequency: f32, presence: f32) -> Result<Self, Error> {
        if !(repeat > 0.0 && repeat.is_finite()) {
            return Err(Error::invalid("repeat_penalty", "finite and > 0 (1 disables it)", repeat));
        }
        if !frequency.is_finite() {
            return Err(Error::invalid("frequency_penalty", "finite", frequency));
        }
        if !presence.is_finite() {
            return Err(Error::invalid("presence_penalty", "finite", presence));
        }
        Ok(WindowedPenalties { last_n, repeat, frequency, presence, counts: Vec::new() })
    }

    /// The window length.
    pub fn last_n(&self) -> usize {
        self.last_n
    }

    /// The repetition factor.
    pub fn repeat(&self) -> f32 {
        self.repeat
    }

    /// The frequency coefficient.
    pub fn frequency(&self) -> f32 {
        self.frequency
    }

    /// The presence coefficient.
    pub fn presence(&self) -> f32 {
        self.presence
    }
}

/// llama.cpp's per-token update, saturated to finite values (`-inf` stays
/// `-inf`).
#[inline]
fn penalize(s: f32, count: u32, repeat: f32, frequency: f32, presence: f32) -> f32 {
    if s == f32::NEG_INFINITY {
        return s;
    }
    let r = if s <= 0.0 { s * repeat } else { s / repeat };
    let y = r.clamp(-f32::MAX, f32::MAX) - (count as f32 * frequency + presence);
    y.clamp(-f32::MAX, f32::MAX)
}

impl LogitsProcessor for WindowedPenalties {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let (repeat, frequency, presence) = (self.repeat, self.frequency, self.presence);
        let tokens = ctx.tokens();
        let window = &tokens[tokens.len() - self.last_n.min(tokens.len())..];
        if window.is_empty() || (repeat == 1.0 && frequency == 0.0 && presence == 0.0) {
            return Ok(());
        }
        let vocab = scores.vocab_size();
        if self.counts.len() < vocab {
            self.counts.resize(vocab, 0);
        }
        let counts = &mut self.counts[..vocab];
        for &id in window {
            if let Some(c) = counts.get_mut(id as usize) {
                *c = c.saturating_add(1);
            }
        }
        let values = scores.values_mut();
        for &id in window {
            let i = id as usize;
            if i < vocab && counts[i] > 0 {
                values[i] = penalize(values[i], counts[i], repeat, frequency, presence);
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

    fn run(p: (usize, f32, f32, f32), history: &[u32], row: &[f32]) -> Vec<f32> {
        let mut out = row.to_vec();
        let mut live = Vec::new();
        WindowedPenalties::new(p.0, p.1, p.2, p.3)
            .unwrap()
            .process(&Context::prompt_only(history), &mut Scores::new(&mut out, &mut live))
            .unwrap();
        out
    }

    #[test]
    fn repetition_then_frequency_and_presence_per_occurrence() {
        // Token 0 twice, token 1 once: 3/1.5 - (2·0.25 + 0.5) = 1; -3·1.5 - 0.75 = -5.25.
        assert_eq!(run((8, 1.5, 0.25, 0.5), &[0, 1, 0], &[3.0, -3.0, 7.0]), [1.0, -5.25, 7.0]);
        // Zero is multiplied (stays 0), then the additive terms apply.
        assert_eq!(run((8, 3.0, 0.0, 1.0), &[0], &[0.0, 2.0]), [-1.0, 2.0]);
    }

    #[test]
    fn only_the_last_n_tokens_count() {
        let history = [1, 1, 1, 0];
        assert_eq!(run((1, 2.0, 1.0, 0.0), &history, &[4.0, 4.0]), [1.0, 4.0]);
        assert_eq!(run((2, 2.0, 1.0, 0.0), &history, &[4.0, 4.0]), [1.0, 1.0]);
        assert_eq!(run((usize::MAX, 2.0, 1.0, 0.0), &history, &[4.0, 4.0]), [1.0, -1.0]);
    }

    #[test]
    fn disabled_settings_are_exact_no_ops() {
        let row = [-0.0, 0.1, NEG];
        for p in [(0, 2.0, 1.0, 1.0), (64, 1.0, 0.0, 0.0)] {
            let out = run(p, &[0, 1, 2], &row);
            assert!(out.iter().zip(&row).all(|(a, b)| a.to_bits() == b.to_bits()), "{p:?}");
        }
    }

    #[test]
    fn counts_are_cleared_between_steps_and_odd_ids_are_ignored() {
        let mut p = WindowedPenalties::new(4, 1.0, 1.0, 0.0).unwrap();
        let mut live = Vec::new();
        for _ in 0..3 {
            let mut row = vec![5.0, 5.0];
            p.process(&Context::prompt_only(&[1, 9, 1]), &mut Scores::new(&mut row, &mut live))
                .unwrap();
            assert_eq!(row, [5.0, 3.0]);
        }
    }

    #[test]
    fn masked_stays_masked_and_overflow_saturates() {
        assert_eq!(run((4, 0.5, -1.0, -1.0), &[0], &[NEG, 1.0]), [NEG, 1.0]);
        assert_eq!(run((4, 1e-3, 0.0, 0.0), &[0], &[3e38]), [f32::MAX]);
        assert_eq!(run((4, 1.0, 0.0, -3e38), &[0], &[3e38]), [f32::MAX]);
    }

    #[test]
    fn rejects_invalid_parameters() {
        for (p, name) in [
            ((1, 0.0, 0.0, 0.0), "repeat_penalty"),
            ((1, f32::NAN, 0.0, 0.0), "repeat_penalty"),
            ((1, 1.0, f32::INFINITY, 0.0), "frequency_penalty"),
            ((1, 1.0, 0.0, f32::NAN), "presence_penalty"),
        ] {
            match WindowedPenalties::new(p.0, p.1, p.2, p.3) {
                Err(Error::InvalidParameter { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{p:?}: {other:?}"),
            }
        }
    }
}
