//! Renormalization to log-probabilities.

use crate::math::Softmax;
use crate::{Context, Error, LogitsProcessor, Scores};

/// Replaces every live score by its log-probability under the softmax of
/// the live scores: `x -> (x - max) - ln Σ exp(x_j - max)`.
///
/// Matches Hugging Face transformers' `LogitNormalization`
/// (`renormalize_logits=True`), which applies `log_softmax` to the processed
/// row, usually as the last stage. Useful when the scores themselves are
/// returned (as log-probabilities) or fed to a beam search.
///
/// - Masked tokens (`-inf`) stay `-inf`; tokens outside the live set stay
///   removed, so the result is normalized over the survivors.
/// - **Numerics**: `max` and `x - max` in f32, the normalizer summed in f64
///   from f32 exponentials, its logarithm rounded to f32 and subtracted in
///   f32. A token so far below the maximum that `x - max` overflows f32
///   becomes `-inf` (its probability was already 0).
/// - The map is order preserving, so a sorted live set stays sorted.
/// - A row where every live token is masked is left unchanged, so that the
///   sampler reports [`Error::AllMasked`] (transformers would produce NaN).
///
/// # Performance
///
/// Three passes over the live scores (maximum, normalizer, rewrite).
///
/// # Example
///
/// ```
/// use decoding::processors::LogSoftmax;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let mut row = vec![0.0, 0.0, f32::NEG_INFINITY];
/// let mut live = Vec::new();
/// LogSoftmax::new().process(&Context::empty(), &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row, [-std::f32::consts::LN_2, -std::f32::consts::LN_2, f32::NEG_INFINITY]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogSoftmax;

impl LogSoftmax {
    /// The processor.
    pub fn new() -> Self {
        LogSoftmax
    }
}

impl LogitsProcessor for LogSoftmax {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let Some(softmax) = Softmax::of(scores) else {
            return Ok(());
        };
        let m = softmax.max();
        let ln_z = softmax.sum().ln() as f32;
        scores.scale_live(|x| (x - m) - ln_z);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogitsProcessorExt;
    use crate::math::testing::{logits, processed};
    use crate::processors::TopK;

    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn matches_the_log_probabilities() {
        // transformers: [-0.40760595, -1.4076059, -2.4076059].
        let out = processed(&mut LogSoftmax::new(), &[1000.0, 999.0, 998.0]);
        let z = 1.0 + (-1.0f64).exp() + (-2.0f64).exp();
        for (i, &x) in out.iter().enumerate() {
            let expected = -(i as f64) - z.ln();
            assert!((f64::from(x) - expected).abs() < 1e-6, "{x} vs {expected}");
        }
        let probs = [0.4, 0.3, 0.2, 0.1];
        let out = processed(&mut LogSoftmax::new(), &logits(&probs));
        for (x, p) in out.iter().zip(probs) {
            assert!((f64::from(*x) - f64::ln(p)).abs() < 1e-6);
        }
    }

    #[test]
    fn masks_stay_masked_and_an_all_masked_row_is_left_alone() {
        let out = processed(&mut LogSoftmax::new(), &[0.0, NEG, 0.0]);
        assert_eq!(out, [-std::f32::consts::LN_2, NEG, -std::f32::consts::LN_2]);
        assert_eq!(processed(&mut LogSoftmax::new(), &[NEG; 2]), [NEG; 2]);
    }

    #[test]
    fn renormalizes_over_the_survivors_and_keeps_the_order() {
        let mut row = [3.0, 1.0, 3.0, 2.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        let mut chain = TopK::new(2).unwrap().then(LogSoftmax::new());
        chain.process(&Context::empty(), &mut scores).unwrap();
        assert!(scores.is_sorted());
        scores.densify();
        assert_eq!(row, [-std::f32::consts::LN_2, NEG, -std::f32::consts::LN_2, NEG]);
    }

    #[test]
    fn is_idempotent_up_to_rounding() {
        let row = [0.3, -2.0, 7.5, 7.4, NEG, -40.0];
        let once = processed(&mut LogSoftmax::new(), &row);
        let twice = processed(&mut LogSoftmax::new(), &once);
        for (a, b) in once.iter().zip(&twice) {
            assert!(a == b || (a - b).abs() < 1e-6);
        }
    }
}
