//! Eta (entropy-adaptive probability floor) truncation.

use super::epsilon_cutoff::cut_below;
use crate::math::{Entry, softmax_entropy};
use crate::{Context, Error, LogitsProcessor, Scores};

/// Removes the live tokens whose probability is below
/// `η = min(ε, √ε · e^(-H))`, `H` being the entropy of the distribution,
/// except the `min_tokens_to_keep` best-scoring ones (and every token tied
/// with them).
///
/// Matches Hugging Face transformers' `EtaLogitsWarper` (`eta_cutoff`)
/// **as its code computes it**: `√ε · e^(-H)`, not the `√(ε · e^(-H))` its
/// documentation states. For probabilities `[0.4, 0.3, 0.2, 0.1]` and
/// `ε = 0.3`, `η = min(0.3, 0.548 · e^(-1.280)) = 0.152`, so the 0.2 token
/// is kept (the documented formula would give 0.289 and remove it).
///
/// With `p_i` the softmax of the live scores and `s_k` the `k`-th highest
/// live score (`k = min_tokens_to_keep`), a token is removed when
///
/// ```text
/// p_i < η   and   x_i < s_k
/// ```
///
/// - `H` is the Shannon entropy (nats) of the softmax of the live scores,
///   with `0 · ln 0 = 0` for masked tokens; `η` is computed in f32 from
///   `f32(ε)` and `f32(H)`.
/// - The protection is by score with **ties kept**, as for
///   [`EpsilonCutoff`](super::EpsilonCutoff); a token exactly at `η` is
///   kept; when fewer than `k` live scores are finite, nothing is removed.
/// - Masked tokens are never revived; a row where every live token is masked
///   is left as it is.
///
/// The survivors keep the order of the live set (a sorted live set stays
/// sorted).
///
/// # Errors
///
/// [`EtaCutoff::new`] rejects NaN and values outside `(0, 1)`, as
/// transformers does; [`EtaCutoff::min_tokens_to_keep`] rejects 0.
///
/// # Performance
///
/// No sort: one pass for the maximum, one for the normalizer and the
/// entropy together, one comparison pass that collects the survivors (plus
/// a `k`-entry heap pass when `min_tokens_to_keep > 1`). No allocation once
/// the buffers have grown.
///
/// # Example
///
/// ```
/// use decoding::processors::EtaCutoff;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let mut row: Vec<f32> = [0.4f32, 0.3, 0.2, 0.1].iter().map(|p| p.ln()).collect();
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// EtaCutoff::new(0.3)?.process(&Context::empty(), &mut scores)?;
/// assert_eq!(scores.live_ids(), Some(&[0, 1, 2][..]));
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct EtaCutoff {
    epsilon: f32,
    sqrt_epsilon: f32,
    min_tokens_to_keep: usize,
    top: Vec<Entry>,
}

impl EtaCutoff {
    /// The cutoff `0 < ε < 1`, with `min_tokens_to_keep = 1`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `ε` is NaN or outside `(0, 1)`.
    pub fn new(epsilon: f32) -> Result<Self, Error> {
        if !(epsilon > 0.0 && epsilon < 1.0) {
            return Err(Error::invalid("eta_cutoff", "in (0, 1)", epsilon));
        }
        Ok(EtaCutoff {
            epsilon,
            sqrt_epsilon: epsilon.sqrt(),
            min_tokens_to_keep: 1,
            top: Vec::new(),
        })
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

impl LogitsProcessor for EtaCutoff {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let Some((softmax, entropy)) = softmax_entropy(scores) else {
            return Ok(());
        };
        let eta = self.epsilon.min(self.sqrt_epsilon * (-(entropy as f32)).exp());
        cut_below(scores, softmax, eta, self.min_tokens_to_keep, &mut self.top);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::testing::{logits, processed, survivors};

    const NEG: f32 = f32::NEG_INFINITY;

    fn eta(e: f32) -> EtaCutoff {
        EtaCutoff::new(e).unwrap()
    }

    // Expected sets: by hand, and confirmed with transformers 5.24's
    // `EtaLogitsWarper` on the same f32 logits.

    #[test]
    fn follows_the_code_not_the_docstring() {
        // H = 1.2799: √0.3 · e^-H = 0.152 keeps 0.2 (√(0.3 · e^-H) = 0.289
        // would not).
        assert_eq!(survivors(&mut eta(0.3), &logits(&[0.4, 0.3, 0.2, 0.1])), [0, 1, 2]);
    }

    #[test]
    fn verified_against_transformers() {
        // H = 0.4459: η = min(ε, √ε · 0.640).
        let row = logits(&[0.9, 0.05, 0.03, 0.02]);
        assert_eq!(survivors(&mut eta(0.1), &row), [0]); // η = 0.1 > 0.05
        assert_eq!(survivors(&mut eta(0.5), &row), [0]);
        let mut p = eta(0.5).min_tokens_to_keep(2).unwrap();
        assert_eq!(survivors(&mut p, &row), [0, 1]);
        // Uniform over 4: η = min(0.1, 0.316 · 0.25) = 0.079 < 0.25.
        assert_eq!(survivors(&mut eta(0.1), &[0.0; 4]), [0, 1, 2, 3]);
        // H = 1.0332, e^-H = 0.356: η = min(0.3, 0.195) removes 0.1 and
        // 0.05; η = min(0.06, 0.087) removes 0.05 only.
        let row = logits(&[0.6, 0.25, 0.1, 0.05]);
        assert_eq!(survivors(&mut eta(0.3), &row), [0, 1]);
        assert_eq!(survivors(&mut eta(0.06), &row), [0, 1, 2]);
    }

    #[test]
    fn masks_and_extremes() {
        assert_eq!(processed(&mut eta(0.3), &[NEG; 4]), [NEG; 4]);
        assert_eq!(survivors(&mut eta(0.3), &[NEG, 0.0, NEG, 0.0]), [1, 3]);
        assert_eq!(survivors(&mut eta(0.3), &[-3e38, 3e38, 0.0]), [1]);
        // Probabilities 0.665, 0.245, 0.090; H = 0.832; η = min(0.2, 0.194) = 0.194.
        assert_eq!(survivors(&mut eta(0.2), &[1000.0, 999.0, 998.0]), [0, 1]);
    }

    #[test]
    fn rejects_invalid_parameters() {
        for e in [0.0, 1.0, -0.1, 2.0, f32::NAN] {
            assert!(matches!(
                EtaCutoff::new(e),
                Err(Error::InvalidParameter { name: "eta_cutoff", .. })
            ));
        }
        assert!(eta(0.1).min_tokens_to_keep(0).is_err());
    }
}
