//! Epsilon (absolute probability floor) truncation.

use crate::math::{Entry, ProbFloor, Softmax, top_n};
use crate::{Context, Error, LogitsProcessor, Scores};

/// Removes the live tokens whose probability is below `ε`, except the
/// `min_tokens_to_keep` best-scoring ones (and every token tied with them).
///
/// Matches Hugging Face transformers' `EpsilonLogitsWarper`
/// (`epsilon_cutoff`). With `p_i` the softmax of the live scores and `s_k`
/// the `k`-th highest live score (`k = min_tokens_to_keep`), a token is
/// removed when
///
/// ```text
/// p_i < f32(ε)   and   x_i < s_k
/// ```
///
/// - The protection is by score with **ties kept**: every token scoring
///   `s_k` or more survives, so more than `min_tokens_to_keep` tokens may be
///   protected. When fewer than `k` live scores are finite, nothing is
///   removed.
/// - A token exactly at `ε` is kept.
/// - **Numerics**: `p_i = exp(x_i - max) / z`, the exponential in f32, the
///   normalizer summed in f64, the quotient rounded to f32.
/// - Masked tokens are never revived; a row where every live token is masked
///   is left as it is.
///
/// The survivors keep the order of the live set (a sorted live set stays
/// sorted).
///
/// # Errors
///
/// [`EpsilonCutoff::new`] rejects NaN and values outside `(0, 1)`, as
/// transformers does; [`EpsilonCutoff::min_tokens_to_keep`] rejects 0.
///
/// # Performance
///
/// No sort: one pass for the maximum, one for the normalizer, one comparison
/// pass that collects the survivors; for `min_tokens_to_keep > 1`, one more
/// pass with a `k`-entry heap. No allocation once the buffers have grown.
///
/// # Example
///
/// ```
/// use decoding::processors::EpsilonCutoff;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// // Probabilities 0.4, 0.3, 0.2, 0.1: 0.1 is below ε = 0.15.
/// let mut row: Vec<f32> = [0.4f32, 0.3, 0.2, 0.1].iter().map(|p| p.ln()).collect();
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// EpsilonCutoff::new(0.15)?.process(&Context::empty(), &mut scores)?;
/// assert_eq!(scores.live_ids(), Some(&[0, 1, 2][..]));
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct EpsilonCutoff {
    epsilon: f32,
    min_tokens_to_keep: usize,
    top: Vec<Entry>,
}

impl EpsilonCutoff {
    /// The cutoff `0 < ε < 1`, with `min_tokens_to_keep = 1`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `ε` is NaN or outside `(0, 1)`.
    pub fn new(epsilon: f32) -> Result<Self, Error> {
        if !(epsilon > 0.0 && epsilon < 1.0) {
            return Err(Error::invalid("epsilon_cutoff", "in (0, 1)", epsilon));
        }
        Ok(EpsilonCutoff { epsilon, min_tokens_to_keep: 1, top: Vec::new() })
    }

    /// Protects the `n` best-scoring tokens (transformers'
    /// `min_tokens_to_keep`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `n == 0`.
    pub fn min_tokens_to_keep(mut self, n: usize) -> Result<Self, Error> {
        self.min_tokens_to_keep = super::checked_min_tokens_to_keep(n)?;
        Ok(self)
    }

    /// The `ε` parameter.
    pub fn epsilon(&self) -> f32 {
        self.epsilon
    }
}

impl LogitsProcessor for EpsilonCutoff {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let Some(softmax) = Softmax::of(scores) else {
            return Ok(());
        };
        cut_below(scores, softmax, self.epsilon, self.min_tokens_to_keep, &mut self.top);
        Ok(())
    }
}

/// Removes the tokens with `prob < floor` that score below the `keep`-th
/// highest live score (shared with [`EtaCutoff`](super::EtaCutoff)).
pub(super) fn cut_below(
    scores: &mut Scores<'_>,
    softmax: Softmax,
    floor: f32,
    keep: usize,
    top: &mut Vec<Entry>,
) {
    let protected = if keep == 1 {
        softmax.max()
    } else {
        top_n(scores, keep, top);
        if top.len() < keep {
            // Fewer finite scores than `keep`: all of them are protected.
            return;
        }
        top[keep - 1].0
    };
    let floor = ProbFloor::new(softmax, floor);
    scores.retain(|_, x| x >= protected || floor.admits(x));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogitsProcessorExt;
    use crate::math::testing::{logits, processed, survivors};
    use crate::processors::TopK;

    const NEG: f32 = f32::NEG_INFINITY;

    fn epsilon(e: f32) -> EpsilonCutoff {
        EpsilonCutoff::new(e).unwrap()
    }

    // Expected sets: by hand, and confirmed with transformers 5.24's
    // `EpsilonLogitsWarper` on the same f32 logits.

    #[test]
    fn verified_against_transformers() {
        let row = logits(&[0.4, 0.3, 0.2, 0.1]);
        assert_eq!(survivors(&mut epsilon(0.15), &row), [0, 1, 2]);
        assert_eq!(survivors(&mut epsilon(0.5), &row), [0]);
        let mut p = epsilon(0.5).min_tokens_to_keep(2).unwrap();
        assert_eq!(survivors(&mut p, &row), [0, 1]);
    }

    #[test]
    fn protection_keeps_ties_with_the_kth_score() {
        let mut p = epsilon(0.5).min_tokens_to_keep(2).unwrap();
        assert_eq!(survivors(&mut p, &[2.0, 1.0, 1.0, 0.0]), [0, 1, 2]);
        // Every token ties with the maximum: all protected.
        assert_eq!(survivors(&mut epsilon(0.9), &[1.0; 4]), [0, 1, 2, 3]);
    }

    #[test]
    fn fewer_finite_tokens_than_protected_is_a_no_op() {
        let row = logits(&[0.4, 0.3, 0.2, 0.1]);
        let mut p = epsilon(0.3).min_tokens_to_keep(5).unwrap();
        assert_eq!(processed(&mut p, &row), row);
        let row = [NEG, 1.0, 0.0, NEG];
        let mut p = epsilon(0.5).min_tokens_to_keep(3).unwrap();
        assert_eq!(processed(&mut p, &row), row);
    }

    #[test]
    fn extreme_logits_and_masks() {
        // Probabilities 0.665, 0.245, 0.090.
        assert_eq!(survivors(&mut epsilon(0.2), &[1000.0, 999.0, 998.0]), [0, 1]);
        assert_eq!(survivors(&mut epsilon(0.2), &[NEG, 1000.0, NEG, 999.0, 998.0]), [1, 3]);
        assert_eq!(survivors(&mut epsilon(1e-30), &[-3e38, 3e38, 0.0]), [1]);
        assert_eq!(processed(&mut epsilon(0.5), &[NEG; 3]), [NEG; 3]);
    }

    #[test]
    fn a_sorted_live_set_stays_sorted() {
        let row = logits(&[0.4, 0.3, 0.2, 0.1]);
        let mut out = row.clone();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut out, &mut live);
        let mut chain = TopK::new(3).unwrap().then(epsilon(0.3));
        chain.process(&Context::empty(), &mut scores).unwrap();
        assert!(scores.is_sorted());
        // Renormalized over the top 3: 0.444, 0.333, 0.222.
        assert_eq!(scores.live_ids(), Some(&[0, 1][..]));
    }

    #[test]
    fn rejects_invalid_parameters() {
        for e in [0.0, 1.0, -0.1, f32::NAN] {
            assert!(matches!(
                EpsilonCutoff::new(e),
                Err(Error::InvalidParameter { name: "epsilon_cutoff", .. })
            ));
        }
        assert!(epsilon(0.1).min_tokens_to_keep(0).is_err());
    }
}
