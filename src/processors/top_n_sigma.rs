//! Top-nσ truncation.

use crate::{Context, Error, LogitsProcessor, Scores};

/// Keeps the live tokens whose score is within `n` standard deviations of
/// the maximum: `x >= max - n·σ`.
///
/// The statistic of llama.cpp's `top_n_sigma` sampler (Tang et al. 2024,
/// "Top-nσ: Not All Logits Are You Need"). Over the live tokens of finite
/// score, with `N` their number,
///
/// ```text
/// mean = Σ x / N,   σ = sqrt(Σ (x - mean)² / N)      (population σ)
/// keep x  iff  x >= max - n·σ
/// ```
///
/// evaluated in f64, so scores of any f32 magnitude neither overflow nor
/// lose the comparison. The threshold is on logits, not probabilities: the
/// processor is unaffected by a temperature applied before it only through
/// the scale of `σ`, which is the point of the method.
///
/// - The maximum and its ties always survive (`σ >= 0`); a token exactly at
///   the threshold is **kept**.
/// - **`n = 0`** keeps the maximum and its exact ties. (llama.cpp treats
///   `n <= 0` as "disabled"; here a disabled top-nσ is simply not added to
///   the pipeline.)
/// - Masked tokens are never revived and take no part in the statistics; a
///   row with no finite live score is left as it is.
/// - There is no Hugging Face transformers equivalent.
///
/// The survivors keep the order of the live set (a sorted live set stays
/// sorted).
///
/// # Errors
///
/// [`TopNSigma::new`] rejects NaN, negative and infinite `n`.
///
/// # Performance
///
/// No sort and no allocation of its own: one pass for the maximum, mean and
/// count, one for the variance, one that keeps the survivors.
///
/// # Example
///
/// ```
/// use decoding::processors::TopNSigma;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// // mean 2, σ = sqrt(2), max 4: n = 1 keeps x >= 4 - 1.414.
/// let mut row = vec![0.0, 1.0, 2.0, 3.0, 4.0];
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// TopNSigma::new(1.0)?.process(&Context::empty(), &mut scores)?;
/// assert_eq!(scores.live_ids(), Some(&[3, 4][..]));
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopNSigma {
    n: f32,
}

impl TopNSigma {
    /// Top-nσ with a finite `n >= 0` (llama.cpp's `top_n_sigma`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `top_n_sigma` for NaN, negative or
    /// infinite `n`.
    pub fn new(n: f32) -> Result<Self, Error> {
        if !(n >= 0.0 && n.is_finite()) {
            return Err(Error::invalid("top_n_sigma", "finite and >= 0", n));
        }
        Ok(TopNSigma { n })
    }

    /// The `n` parameter.
    pub fn n(&self) -> f32 {
        self.n
    }
}

impl LogitsProcessor for TopNSigma {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let mut count = 0usize;
        let mut sum = 0.0f64;
        let mut max = f32::NEG_INFINITY;
        scores.for_each_live(|_, x| {
            if x > f32::NEG_INFINITY {
                count += 1;
                sum += f64::from(x);
                max = max.max(x);
            }
        });
        if count <= 1 {
            return Ok(());
        }
        let mean = sum / count as f64;
        let mut sq = 0.0f64;
        scores.for_each_live(|_, x| {
            if x > f32::NEG_INFINITY {
                let d = f64::from(x) - mean;
                sq += d * d;
            }
        });
        let sigma = (sq / count as f64).sqrt();
        let threshold = f64::from(max) - f64::from(self.n) * sigma;
        scores.retain(|_, x| f64::from(x) >= threshold && x > f32::NEG_INFINITY);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::testing::{processed, survivors};

    const NEG: f32 = f32::NEG_INFINITY;

    fn sigma(n: f32) -> TopNSigma {
        TopNSigma::new(n).unwrap()
    }

    #[test]
    fn keeps_scores_within_n_sigma_of_the_maximum() {
        // 0..=4: mean 2, variance (4+1+0+1+4)/5 = 2, σ = 1.4142.
        let row = [0.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(survivors(&mut sigma(1.0), &row), [3, 4]); // >= 2.586
        assert_eq!(survivors(&mut sigma(2.0), &row), [2, 3, 4]); // >= 1.172
        assert_eq!(survivors(&mut sigma(3.0), &row), [0, 1, 2, 3, 4]); // >= -0.243
        assert_eq!(survivors(&mut sigma(0.0), &[1.0, 3.0, 3.0, 2.0]), [1, 2]);
    }

    #[test]
    fn the_threshold_is_inclusive() {
        // [0, 2]: mean 1, σ = 1; n = 2 puts the threshold at exactly 0.
        assert_eq!(survivors(&mut sigma(2.0), &[0.0, 2.0]), [0, 1]);
        assert_eq!(survivors(&mut sigma(1.999), &[0.0, 2.0]), [1]);
    }

    #[test]
    fn masked_tokens_are_ignored_and_stay_masked() {
        // Finite scores 0, 2 only: σ = 1, n = 1 keeps x >= 1.
        let row = [NEG, 0.0, NEG, 2.0];
        assert_eq!(processed(&mut sigma(1.0), &row), [NEG, NEG, NEG, 2.0]);
        assert_eq!(processed(&mut sigma(1.0), &[NEG; 3]), [NEG; 3]);
        assert_eq!(processed(&mut sigma(0.0), &[NEG, 5.0]), [NEG, 5.0]);
    }

    #[test]
    fn extreme_magnitudes_do_not_overflow() {
        // mean 0, σ = sqrt(2/3)·3e38: n = 1 keeps x >= 3e38 - 2.449e38.
        assert_eq!(survivors(&mut sigma(1.0), &[-3e38, 3e38, 0.0]), [1]);
        assert_eq!(survivors(&mut sigma(2.0), &[-3e38, 3e38, 0.0]), [1, 2]);
    }

    #[test]
    fn rejects_invalid_parameters() {
        for n in [-0.1, f32::NAN, f32::INFINITY] {
            assert!(matches!(
                TopNSigma::new(n),
                Err(Error::InvalidParameter { name: "top_n_sigma", .. })
            ));
        }
    }
}
