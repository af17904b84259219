//! Min-p truncation.

use crate::math::{Entry, ProbFloor, Softmax, top_n};
use crate::{Context, Error, LogitsProcessor, Scores};

/// Keeps the live tokens whose probability is at least `min_p` times the
/// probability of the most likely token, and at least `min_tokens_to_keep`.
///
/// Matches Hugging Face transformers' `MinPLogitsWarper` on the processed
/// row. With `p_i` the softmax of the live scores, a token is removed when
///
/// ```text
/// p_i < f32(min_p) * p_max      (in f32)
/// ```
///
/// so a token exactly at the threshold is **kept**, and the most likely
/// token (with its ties) always is. If fewer than `min_tokens_to_keep`
/// tokens pass, the `min_tokens_to_keep` highest-ranked ones are kept
/// instead (score descending, the higher id first among equal scores).
///
/// - **Numerics** (as transformers on CPU): `p_i = exp(x_i - max) / z`, the
///   exponential in f32, the normalizer `z` summed in f64, the quotient
///   rounded to f32; `p_max = f32(1 / z)`. The test runs on the score
///   `x - max` with an exact check near the boundary, so the verdict is that
///   of the f32 comparison above.
/// - **`min_p = 0`** is an exact no-op; **`min_p = 1`** keeps the maximum
///   and its exact ties.
/// - Masked tokens are never revived; a row where every live token is masked
///   is left as it is.
///
/// The survivors keep the order of the live set (a sorted live set stays
/// sorted).
///
/// # Errors
///
/// [`MinP::new`] rejects NaN and values outside `[0, 1]`;
/// [`MinP::min_tokens_to_keep`] rejects 0.
///
/// # Performance
///
/// No sort: one pass for the maximum, one for the normalizer, one comparison
/// pass that collects the survivors. A count pass and a heap selection are
/// added only when `min_tokens_to_keep > 1`. No allocation once the buffers
/// have grown.
///
/// # Example
///
/// ```
/// use decoding::processors::MinP;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// // Probabilities 0.1, 0.2, 0.3, 0.4: with min_p = 0.51 the floor is 0.204.
/// let mut row: Vec<f32> = [0.1f32, 0.2, 0.3, 0.4].iter().map(|p| p.ln()).collect();
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// MinP::new(0.51)?.process(&Context::empty(), &mut scores)?;
/// assert_eq!(scores.live_ids(), Some(&[2, 3][..]));
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MinP {
    min_p: f32,
    min_tokens_to_keep: usize,
    top: Vec<Entry>,
}

impl MinP {
    /// Min-p with `0 <= min_p <= 1` and `min_tokens_to_keep = 1`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `min_p` is NaN or outside `[0, 1]`.
    pub fn new(min_p: f32) -> Result<Self, Error> {
        if !(0.0..=1.0).contains(&min_p) {
            return Err(Error::invalid("min_p", "in [0, 1]", min_p));
        }
        Ok(MinP { min_p, min_tokens_to_keep: 1, top: Vec::new() })
    }

    /// Keeps at least `n` tokens (transformers' `min_tokens_to_keep`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `n == 0`.
    pub fn min_tokens_to_keep(mut self, n: usize) -> Result<Self, Error> {
        self.min_tokens_to_keep = super::checked_min_tokens_to_keep(n)?;
        Ok(self)
    }

    /// The `min_p` parameter.
    pub fn min_p(&self) -> f32 {
        self.min_p
    }
}

impl LogitsProcessor for MinP {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        if self.min_p == 0.0 {
            return Ok(());
        }
        let Some(softmax) = Softmax::of(scores) else {
            return Ok(());
        };
        let p_max = softmax.prob(softmax.max());
        let floor = ProbFloor::new(softmax, self.min_p * p_max);
        let keep = self.min_tokens_to_keep;
        if keep > 1 {
            let mut passing = 0usize;
            scores.for_each_live(|_, x| passing += usize::from(floor.admits(x)));
            if passing < keep {
                top_n(scores, keep, &mut self.top);
                scores.set_live(self.top.iter().map(|e| e.1), true);
                return Ok(());
            }
        }
        scores.retain(|_, x| floor.admits(x));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::testing::{logits, processed, survivors};
    use crate::processors::TopK;
    use crate::{LogitsProcessorExt, TokenId};

    const NEG: f32 = f32::NEG_INFINITY;

    fn min_p(p: f32) -> MinP {
        MinP::new(p).unwrap()
    }

    // Expected sets: by hand (floor = min_p · p_max) and confirmed with
    // transformers 5.24's `MinPLogitsWarper` on the same f32 logits.

    #[test]
    fn llama_cpp_goldens() {
        // p_max = 0.4: floors 0.096, 0.104, 0.204, 0.304.
        let row = logits(&[0.1, 0.2, 0.3, 0.4]);
        assert_eq!(survivors(&mut min_p(0.24), &row), [0, 1, 2, 3]);
        assert_eq!(survivors(&mut min_p(0.26), &row), [1, 2, 3]);
        assert_eq!(survivors(&mut min_p(0.51), &row), [2, 3]);
        assert_eq!(survivors(&mut min_p(0.76), &row), [3]);
        let out = processed(&mut min_p(0.51), &row);
        let z = f64::from(out[2]).exp() + f64::from(out[3]).exp();
        assert!((f64::from(out[2]).exp() / z - 3.0 / 7.0).abs() < 1e-5);
    }

    #[test]
    fn the_threshold_is_inclusive() {
        // F40: 0.25 is exactly 0.5 · 0.5 and stays.
        assert_eq!(survivors(&mut min_p(0.5), &logits(&[0.5, 0.25, 0.25])), [0, 1, 2]);
        assert_eq!(survivors(&mut min_p(0.5), &[0.0, -std::f32::consts::LN_2]), [0, 1]);
    }

    #[test]
    fn zero_is_a_no_op_and_one_keeps_the_maximal_ties() {
        let row = [1.0, 3.0, 3.0, 2.0, NEG];
        let mut live = Vec::new();
        let mut out = row;
        let mut scores = Scores::new(&mut out, &mut live);
        min_p(0.0).process(&Context::empty(), &mut scores).unwrap();
        assert!(!scores.is_truncated());
        assert_eq!(survivors(&mut min_p(1.0), &row), [1, 2]);
    }

    #[test]
    fn min_tokens_to_keep_takes_the_best_ranked() {
        let row = logits(&[0.1, 0.2, 0.3, 0.4]);
        let mut p = min_p(0.76).min_tokens_to_keep(2).unwrap();
        assert_eq!(survivors(&mut p, &row), [2, 3]);
        // Equal scores: the higher id ranks first.
        let mut p = min_p(0.9).min_tokens_to_keep(2).unwrap();
        assert_eq!(survivors(&mut p, &[5.0, 1.0, 1.0, 1.0]), [0, 3]);
        // Never more than the finite tokens, never a masked one.
        let mut p = min_p(0.9).min_tokens_to_keep(4).unwrap();
        assert_eq!(survivors(&mut p, &[NEG, 0.0, NEG, -50.0]), [1, 3]);
        // Enough tokens pass already: nothing more is added.
        let mut p = min_p(0.24).min_tokens_to_keep(2).unwrap();
        assert_eq!(survivors(&mut p, &row), [0, 1, 2, 3]);
    }

    #[test]
    fn extreme_logits() {
        // Probabilities 0.665, 0.245, 0.090.
        let row = [1000.0, 999.0, 998.0];
        assert_eq!(survivors(&mut min_p(0.9), &row), [0]);
        assert_eq!(survivors(&mut min_p(0.3), &row), [0, 1]);
        assert_eq!(survivors(&mut min_p(0.05), &row), [0, 1, 2]);
        assert_eq!(survivors(&mut min_p(1e-6), &[-3e38, 3e38, 0.0]), [1]);
    }

    #[test]
    fn all_masked_row_is_left_alone() {
        let row = [NEG; 3];
        assert_eq!(processed(&mut min_p(0.5), &row), row);
    }

    #[test]
    fn a_sorted_live_set_stays_sorted() {
        let row = [0.0, 3.0, 2.9, 1.0, -4.0];
        let mut out = row;
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut out, &mut live);
        TopK::new(4).unwrap().then(min_p(0.2)).process(&Context::empty(), &mut scores).unwrap();
        assert!(scores.is_sorted());
        // p ∝ e^3, e^2.9, e^1, e^0: e^1 / e^3 = 0.135 < 0.2.
        assert_eq!(scores.live_ids(), Some(&[1 as TokenId, 2][..]));
    }

    #[test]
    fn rejects_invalid_parameters() {
        for p in [-0.1, 1.05, f32::NAN] {
            assert!(matches!(MinP::new(p), Err(Error::InvalidParameter { name: "min_p", .. })));
        }
        assert!(min_p(0.1).min_tokens_to_keep(0).is_err());
    }
}
