//! Top-H (entropy-bounded) truncation.

use crate::math::{Entry, top_n};
use crate::{Context, Error, LogitsProcessor, Scores};

/// How many of the best live tokens top-H considers.
const CANDIDATES: usize = 100;

/// Entropy-bounded truncation: keeps the most probable tokens while the
/// entropy they account for stays within `top_h` times the entropy of the
/// distribution.
///
/// Matches Hugging Face transformers' `TopHLogitsWarper` (`top_h`):
///
/// 1. Only the 100 highest-ranked live tokens are candidates (score
///    descending, the higher id first among equal scores); every other token
///    is removed.
/// 2. The candidates' scores are renormalized on their own: `q_i` is their
///    softmax and `H = -Σ q_i ln q_i` its entropy.
/// 3. Walking the candidates in rank order, token `i` is kept while the
///    cumulative entropy `Σ_{j <= i} -q_j ln q_j` is at most `f32(top_h) · H`
///    (in f32). The first token is always kept, so at least one survives.
///
/// - A candidate whose probability rounds to 0 in f32 is removed, with
///   everything after it (in transformers its term is `0 · ln 0 = NaN`,
///   which fails the test); such tokens carry no mass.
/// - `top_h = 1` keeps every candidate of nonzero probability: top-H then
///   reduces to a top-100 that does not keep ties beyond the 100th token.
///   (transformers computes `H` in f32 but sums the terms in f64, so at
///   `top_h = 1` it may drop the last candidate or two through rounding;
///   here the total and `H` are the same sum.)
/// - There is no `min_tokens_to_keep` (transformers has none).
/// - **Numerics**: `q_i` and the sums in f64 from `exp(x - max)` (f32), the
///   cumulative entropy and `H` rounded to f32 for the comparison.
/// - Masked tokens are never revived; a row where every live token is masked
///   is left as it is.
///
/// The survivors become the live set, sorted (see [`Scores`]).
///
/// # Errors
///
/// [`TopH::new`] rejects NaN and values outside `(0, 1]`.
///
/// # Performance
///
/// One pass with a 100-entry heap (none on a sorted live set), then work on
/// the 100 candidates only. No allocation once the heap has grown.
///
/// # Example
///
/// ```
/// use decoding::processors::TopH;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// // A dominant token: adding any other token's entropy term to its own
/// // passes 0.3 · H, so it alone survives.
/// let mut row = vec![5.0, 1.0, 1.0, 0.5];
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// TopH::new(0.3)?.process(&Context::empty(), &mut scores)?;
/// assert_eq!(scores.live_ids(), Some(&[0][..]));
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TopH {
    top_h: f32,
    top: Vec<Entry>,
}

impl TopH {
    /// Top-H with `0 < top_h <= 1`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `top_h` is NaN or outside `(0, 1]`.
    pub fn new(top_h: f32) -> Result<Self, Error> {
        if !(top_h > 0.0 && top_h <= 1.0) {
            return Err(Error::invalid("top_h", "in (0, 1]", top_h));
        }
        Ok(TopH { top_h, top: Vec::new() })
    }

    /// The `top_h` parameter.
    pub fn top_h(&self) -> f32 {
        self.top_h
    }
}

impl LogitsProcessor for TopH {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        top_n(scores, CANDIDATES, &mut self.top);
        let top = &self.top;
        let Some(&(m, _)) = top.first() else {
            return Ok(());
        };
        let weight = |x: f32| f64::from((x - m).exp());
        let z: f64 = top.iter().map(|e| weight(e.0)).sum();
        let ln_z = z.ln();
        // -q ln q of one candidate (0 for q = 0).
        let term = |x: f32| {
            let w = weight(x);
            if w > 0.0 { -(w / z) * (f64::from(x - m) - ln_z) } else { 0.0 }
        };
        let entropy: f64 = top.iter().map(|e| term(e.0)).sum();
        let tau = (entropy.max(0.0) as f32) * self.top_h;

        let mut n = 1;
        let mut cum = term(m);
        for (i, &(x, _)) in top.iter().enumerate().skip(1) {
            if (weight(x) / z) as f32 == 0.0 {
                break;
            }
            cum += term(x);
            if cum as f32 > tau {
                break;
            }
            n = i + 1;
        }
        scores.set_live(self.top[..n].iter().map(|e| e.1), true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::testing::{logits, processed, survivors};

    const NEG: f32 = f32::NEG_INFINITY;

    fn top_h(h: f32) -> TopH {
        TopH::new(h).unwrap()
    }

    // Expected sets: by hand (cumulative -q ln q against top_h · H), and
    // confirmed with transformers 5.24's `TopHLogitsWarper` where its order
    // among equal scores does not matter.

    #[test]
    fn verified_against_transformers() {
        // Terms 0.367, 0.361, 0.322, 0.230; H = 1.280.
        let row = logits(&[0.4, 0.3, 0.2, 0.1]);
        assert_eq!(survivors(&mut top_h(0.5), &row), [0]); // 0.728 > 0.640
        assert_eq!(survivors(&mut top_h(0.9), &row), [0, 1, 2]); // 1.050 <= 1.152 < 1.280
        assert_eq!(survivors(&mut top_h(0.3), &[5.0, 1.0, 1.0, 0.5]), [0]);
        // Uniform over 4: terms ln4/4 = 0.347 each; 0.6 · H = 0.832 admits 2.
        assert_eq!(survivors(&mut top_h(0.6), &[0.0; 4]), [2, 3]);
    }

    #[test]
    fn ties_follow_the_rank_order() {
        // 0.3 · H = 0.416 admits one token: the highest id among equals.
        assert_eq!(survivors(&mut top_h(0.3), &[0.0; 4]), [3]);
    }

    #[test]
    fn only_the_best_hundred_are_candidates() {
        let row = vec![0.0f32; 150];
        assert_eq!(survivors(&mut top_h(1.0), &row), (50..150).collect::<Vec<_>>());
        // Distinct scores, shuffled: the best 100 survive at top_h = 1, where
        // the cumulative entropy of all candidates equals H. (transformers
        // keeps 99 here: its f32 H falls just below its f64-summed total.)
        let row: Vec<f32> = (0..150).map(|i| ((i * 37) % 150) as f32 * 0.01).collect();
        let kept = survivors(&mut top_h(1.0), &row);
        assert_eq!(kept.len(), 100);
        assert!(kept.iter().all(|&id| row[id as usize] >= 0.495));
    }

    #[test]
    fn zero_probability_candidates_are_removed() {
        // e^-200 is 0 in f32.
        assert_eq!(survivors(&mut top_h(1.0), &[0.0, -200.0, -1.0]), [0, 2]);
    }

    #[test]
    fn masks_and_extremes() {
        assert_eq!(processed(&mut top_h(0.5), &[NEG; 3]), [NEG; 3]);
        assert_eq!(survivors(&mut top_h(1.0), &[NEG, 0.0, NEG, 0.0]), [1, 3]);
        assert_eq!(survivors(&mut top_h(1.0), &[-3e38, 3e38, 0.0]), [1]);
        assert_eq!(survivors(&mut top_h(0.9), &[1000.0, 999.0, 998.0]), [0, 1]);
    }

    #[test]
    fn survivors_are_sorted() {
        let row = logits(&[0.1, 0.3, 0.2, 0.4]);
        let mut out = row.clone();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut out, &mut live);
        top_h(0.9).process(&Context::empty(), &mut scores).unwrap();
        assert!(scores.is_sorted());
        assert_eq!(scores.live_ids(), Some(&[3, 1, 2][..]));
    }

    #[test]
    fn rejects_invalid_parameters() {
        for h in [0.0, -0.1, 1.5, f32::NAN] {
            assert!(matches!(TopH::new(h), Err(Error::InvalidParameter { name: "top_h", .. })));
        }
        assert!(TopH::new(1.0).is_ok());
    }
}
