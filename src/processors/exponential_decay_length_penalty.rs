//! An end-of-sequence score that grows exponentially past a length.

use crate::processors::suppress_tokens::BanList;
use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Raises the score of the end-of-sequence tokens exponentially once the
/// generation passes `start_index` new tokens, so that long outputs end
/// without a hard cut.
///
/// Matches Hugging Face transformers' `ExponentialDecayLengthPenalty`
/// (`exponential_decay_length_penalty = (start_index, decay_factor)` in
/// `generation_config.json`). With `L = ctx.len()` (prompt and generated
/// tokens) and `s = start_index + ctx.prompt_len()`, when `L > s` every
/// live EOS score `x` becomes
///
/// ```text
/// x + |x| · f32(decay_factor^(L - s) - 1)        (the power and - 1 in f64,
///                                                  the product and sum in f32)
/// ```
///
/// so a negative EOS score rises too (transformers' "penalty on the absolute
/// value"). At `L <= s` nothing changes: the first raised step is the one
/// whose history already holds `start_index + 1` generated tokens.
///
/// - A masked or removed EOS token stays removed (transformers leaves `-inf`
///   alone); other tokens are untouched; repeated EOS ids count once.
/// - `decay_factor = 1` is the identity; a factor below 1 lowers the EOS
///   score instead.
/// - **Differs** from transformers only where its f32 arithmetic
///   overflows: there (the factor, the product or the sum past the f32
///   range, where transformers gets `+inf`, or NaN for a score of 0) the
///   same formula is evaluated in f64 and the result saturates at
///   `f32::MAX` (or `f32::MIN`) instead of becoming `±inf`, which the
///   samplers would reject; an EOS score of exactly 0 stays 0.
///
/// # Errors
///
/// [`ExponentialDecayLengthPenalty::new`] returns
/// [`Error::InvalidParameter`] for a `decay_factor` that is NaN, infinite or
/// negative (`exponential_decay_length_penalty`), or an empty EOS list
/// (`eos_token_id`). `process` returns [`Error::TokenOutOfRange`] when an
/// EOS id is not below the row's vocabulary size, before touching the row.
///
/// # Performance
///
/// `O(e)` per step for `e` EOS ids, one `powf`; no allocation.
///
/// # Example
///
/// ```
/// use decoding::processors::ExponentialDecayLengthPenalty;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let eos = 3;
/// let mut p = ExponentialDecayLengthPenalty::new(1, 2.0, [eos])?;
/// let mut live = Vec::new();
/// let history = [10, 11, 20, 21, 22]; // a prompt of 2, then 3 generated
///
/// // s = 1 + 2 = 3, L = 5: the EOS score 1.5 becomes 1.5 + 1.5 · (2² - 1).
/// let mut row = vec![0.0, 0.5, 1.0, 1.5];
/// p.process(&Context::new(&history, 2)?, &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row, [0.0, 0.5, 1.0, 6.0]);
///
/// // L = 3 = s: not yet.
/// let mut row = vec![0.0, 0.5, 1.0, -1.5];
/// p.process(&Context::new(&history[..3], 2)?, &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row[3], -1.5);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ExponentialDecayLengthPenalty {
    start_index: usize,
    decay_factor: f64,
    eos: BanList,
}

impl ExponentialDecayLengthPenalty {
    /// Raises the EOS scores by `decay_factor^(steps past start_index) - 1`
    /// times their magnitude.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `decay_factor` is NaN, infinite or
    /// negative, or when `eos` is empty.
    pub fn new(
        start_index: usize,
        decay_factor: f64,
        eos: impl IntoIterator<Item = TokenId>,
    ) -> Result<Self, Error> {
        if !(decay_factor.is_finite() && decay_factor >= 0.0) {
            return Err(Error::invalid(
                "exponential_decay_length_penalty",
                "a finite decay factor >= 0",
                decay_factor,
            ));
        }
        let eos = BanList::new(eos);
        if eos.ids().is_empty() {
            return Err(Error::invalid(
                "eos_token_id",
                "at least one id (the length penalty raises the end-of-sequence score)",
                "an empty list",
            ));
        }
        Ok(ExponentialDecayLengthPenalty { start_index, decay_factor, eos })
    }

    /// The number of generated tokens after which the penalty starts.
    pub fn start_index(&self) -> usize {
        self.start_index
    }

    /// The factor of the exponential growth.
    pub fn decay_factor(&self) -> f64 {
        self.decay_factor
    }

    /// The end-of-sequence ids, sorted and without repeats.
    pub fn eos(&self) -> &[TokenId] {
        self.eos.ids()
    }
}

impl LogitsProcessor for ExponentialDecayLengthPenalty {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        self.eos.check(scores.vocab_size())?;
        let start = self.start_index.saturating_add(ctx.prompt_len());
        if ctx.len() <= start {
            return Ok(());
        }
        let steps = (ctx.len() - start) as f64;
        let growth64 = self.decay_factor.powf(steps) - 1.0;
        let growth = growth64 as f32;
        for &id in self.eos.ids() {
            let Some(x) = scores.get(id) else { continue };
            if x == f32::NEG_INFINITY || x == 0.0 {
                continue;
            }
            let y = x + x.abs() * growth;
            // Where f32 overflows (the factor, the product or the sum), the
            // same formula in f64, saturated at the f32 range.
            let y = if y.is_finite() {
                y
            } else {
                (f64::from(x) + f64::from(x.abs()) * growth64) as f32
            };
            let y = if y.is_finite() {
                y
            } else if y > 0.0 {
                f32::MAX
            } else {
                f32::MIN
            };
            scores.values_mut()[id as usize] = y;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    fn run(
        p: &mut ExponentialDecayLengthPenalty,
        tokens: &[TokenId],
        prompt: usize,
        row: &[f32],
    ) -> Vec<f32> {
        let mut out = row.to_vec();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut out, &mut live);
        p.process(&Context::new(tokens, prompt).unwrap(), &mut scores).unwrap();
        scores.densify();
        out
    }

    #[test]
    fn starts_after_start_index_new_tokens_and_grows_exponentially() {
        let mut p = ExponentialDecayLengthPenalty::new(2, 1.5, [1]).unwrap();
        let tokens: Vec<TokenId> = (0..10).collect();
        let row = [0.5, 2.0, -1.0];
        // Prompt of 4: s = 6. L = 6 is not past it.
        assert_eq!(run(&mut p, &tokens[..6], 4, &row), row);
        // L = 7, 8, 9: growth 1.5^k - 1 on |2|.
        for (len, k) in [(7, 1), (8, 2), (9, 3)] {
            let growth = (1.5f64.powi(k) - 1.0) as f32;
            let out = run(&mut p, &tokens[..len], 4, &row);
            assert_eq!(out, [0.5, 2.0 + 2.0 * growth, -1.0], "L = {len}");
        }
    }

    #[test]
    fn negative_scores_rise_and_masked_eos_stays_masked() {
        let mut p = ExponentialDecayLengthPenalty::new(0, 2.0, [0, 2, 2]).unwrap();
        assert_eq!(p.eos(), [0, 2]);
        let tokens = [5, 6, 7];
        // s = 0 + 1, L = 3: k = 2, growth 3.
        let out = run(&mut p, &tokens, 1, &[-1.0, 0.25, NEG]);
        assert_eq!(out, [-1.0 + 3.0, 0.25, NEG]);
        // A removed EOS (outside the live set) stays removed.
        let mut row = vec![-1.0, 0.25, 4.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        scores.set_live([1, 2], false);
        p.process(&Context::new(&tokens, 1).unwrap(), &mut scores).unwrap();
        scores.densify();
        assert_eq!(row, [NEG, 0.25, 4.0 + 12.0]);
    }

    #[test]
    fn factor_below_one_lowers_and_one_is_the_identity() {
        let tokens = [1, 2, 3, 4];
        let mut p = ExponentialDecayLengthPenalty::new(0, 0.5, [0]).unwrap();
        // k = 3: growth 0.125 - 1.
        assert_eq!(run(&mut p, &tokens, 1, &[2.0, 0.0]), [2.0 - 2.0 * 0.875, 0.0]);
        let mut p = ExponentialDecayLengthPenalty::new(0, 1.0, [0]).unwrap();
        assert_eq!(run(&mut p, &tokens, 1, &[2.0, 0.0]), [2.0, 0.0]);
    }

    #[test]
    fn overflow_saturates_and_zero_stays_zero() {
        let tokens: Vec<TokenId> = (0..3000).collect();
        let mut p = ExponentialDecayLengthPenalty::new(0, 1.5, [0, 1, 2]).unwrap();
        // 1.5^2999 overflows f64 itself: growth = inf.
        let out = run(&mut p, &tokens, 0, &[1.0, 0.0, -3e38]);
        assert_eq!(out, [f32::MAX, 0.0, f32::MAX]);
        // 4^65 - 1 (about 1.4e39) is beyond f32 but not f64: a tiny score
        // grows to its f64 value, not to infinity.
        let mut p = ExponentialDecayLengthPenalty::new(0, 4.0, [0, 1]).unwrap();
        let out = run(&mut p, &tokens[..65], 0, &[1e-30, 1.0]);
        let want = 1e-30f64 * (4f64.powi(65) - 1.0);
        assert!((f64::from(out[0]) - want).abs() <= 1e-6 * want, "{}", out[0]);
        assert_eq!(out[1], f32::MAX);
        // A product past f32 whose sum is not (found by the property test):
        // -3e38 + 3e38 · 2 = 3e38, not +inf.
        let mut p = ExponentialDecayLengthPenalty::new(0, 3.0, [0]).unwrap();
        assert_eq!(run(&mut p, &tokens[..1], 0, &[-3e38, 1.0]), [3e38, 1.0]);
        let mut p = ExponentialDecayLengthPenalty::new(0, 0.0, [0]).unwrap();
        // Factor 0: x - |x|, so -3e38 goes to -6e38: saturated, never -inf.
        assert_eq!(run(&mut p, &tokens[..2], 0, &[-3e38, 1.0]), [f32::MIN, 1.0]);
    }

    #[test]
    fn rejects_bad_parameters_and_ids() {
        for f in [f64::NAN, f64::INFINITY, -0.5] {
            assert!(matches!(
                ExponentialDecayLengthPenalty::new(1, f, [0]),
                Err(Error::InvalidParameter { name: "exponential_decay_length_penalty", .. })
            ));
        }
        assert!(matches!(
            ExponentialDecayLengthPenalty::new(1, 1.1, []),
            Err(Error::InvalidParameter { name: "eos_token_id", .. })
        ));
        let mut p = ExponentialDecayLengthPenalty::new(0, 1.1, [9]).unwrap();
        let mut row = vec![0.0; 3];
        let mut live = Vec::new();
        let err = p.process(&Context::empty(), &mut Scores::new(&mut row, &mut live));
        assert_eq!(err, Err(Error::TokenOutOfRange { id: 9, vocab_size: 3 }));
    }
}
