//! Locally typical sampling.

use std::cmp::Ordering;

use crate::math::{Entry, first_stop, softmax_entropy};
use crate::{Context, Error, LogitsProcessor, Scores};

/// Candidates sorted and walked one by one before the walk switches to
/// selections.
const FIRST_ROUND: usize = 256;

/// Locally typical sampling: keeps the tokens whose surprisal `-ln p` is
/// closest to the entropy `H`, until their mass reaches `mass`.
///
/// Matches Hugging Face transformers' `TypicalLogitsWarper` (`typical_p`)
/// on the processed row:
///
/// 1. `ln p_i` is the log-softmax of the live scores and `H = -Σ p_i ln p_i`
///    (masked tokens contribute nothing); each finite token gets the
///    distance `δ_i = |-ln p_i - H|`.
/// 2. Tokens are ranked by `δ` ascending, the **lower id first** among equal
///    distances (transformers' ascending sort). The boundary is the first
///    rank at which the cumulative probability reaches `mass`
///    (`f32(cum) >= f32(mass)`); the crossing token is kept.
/// 3. Every token whose distance is at most the boundary's survives (**ties
///    with the boundary are kept**), and so do the `min_tokens_to_keep`
///    first-ranked, most typical tokens.
///
/// The most probable token is **not** necessarily kept: for probabilities
/// `[0.4, 0.3, 0.2, 0.1]` (`H = 1.28`, distances 0.36, 0.08, 0.33, 1.02)
/// and `mass = 0.45`, the survivors are the tokens of probability 0.3 and
/// 0.2.
///
/// - **`mass = 1`** is accepted and is an exact no-op (transformers rejects
///   it in the class and does not add the warper in `generate`).
/// - **Numerics** (as transformers on CPU): `ln p_i = (x_i - max) - f32(ln z)`
///   and `δ_i` in f32, with `H` summed in f64 and rounded to f32; the
///   cumulative mass is accumulated in f64 from `exp(x - max)` (f32) over
///   the f64 normalizer `z`. Two distances that differ only by rounding
///   (scores symmetric about the typical level) may be ordered differently
///   than in transformers, whose entropy is an f32 sum.
/// - Masked tokens are never revived; a row where every live token is masked
///   is left as it is.
///
/// The survivors become the live set, **not** sorted by score.
///
/// # Errors
///
/// [`Typical::new`] rejects NaN and values outside `(0, 1]`;
/// [`Typical::min_tokens_to_keep`] rejects 0.
///
/// # Performance
///
/// Never sorts the vocabulary: two passes for the maximum, the normalizer
/// and the entropy, one pass computing the distances, then a walk down the
/// distance ranking: the 256 most typical tokens are selected, sorted and
/// walked one by one; a boundary beyond them is located by selections around
/// pivots (galloping, then bisection) with partial sums of the weights. No
/// allocation once the buffer has grown.
///
/// # Example
///
/// ```
/// use decoding::processors::Typical;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let mut row: Vec<f32> = [0.4f32, 0.3, 0.2, 0.1].iter().map(|p| p.ln()).collect();
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// Typical::new(0.45)?.process(&Context::empty(), &mut scores)?;
/// scores.densify();
/// assert!(row[0] == f32::NEG_INFINITY && row[3] == f32::NEG_INFINITY);
/// assert!(row[1].is_finite() && row[2].is_finite());
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Typical {
    mass: f32,
    min_tokens_to_keep: usize,
    /// `(δ, id)` of the finite live tokens.
    ranked: Vec<Entry>,
}

impl Typical {
    /// Typical sampling with `0 < mass <= 1` (`1` is a no-op) and
    /// `min_tokens_to_keep = 1`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `mass` is NaN or outside `(0, 1]`.
    pub fn new(mass: f32) -> Result<Self, Error> {
        if !(mass > 0.0 && mass <= 1.0) {
            return Err(Error::invalid("typical_p", "in (0, 1] (1 is a no-op)", mass));
        }
        Ok(Typical { mass, min_tokens_to_keep: 1, ranked: Vec::new() })
    }

    /// Keeps at least the `n` most typical tokens (transformers'
    /// `min_tokens_to_keep`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `n == 0`.
    pub fn min_tokens_to_keep(mut self, n: usize) -> Result<Self, Error> {
        self.min_tokens_to_keep = super::checked_min_tokens_to_keep(n)?;
        Ok(self)
    }

    /// The `mass` parameter.
    pub fn mass(&self) -> f32 {
        self.mass
    }
}

/// Distance ascending, the lower id first among equal distances.
fn most_typical_first(a: &Entry, b: &Entry) -> Ordering {
    a.0.total_cmp(&b.0).then(a.1.cmp(&b.1))
}

impl LogitsProcessor for Typical {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let keep = self.min_tokens_to_keep;
        if self.mass >= 1.0 || scores.live_len() <= keep {
            return Ok(());
        }
        let Some((softmax, entropy)) = softmax_entropy(scores) else {
            return Ok(());
        };
        let m = softmax.max();
        let z = softmax.sum();
        let ln_z = z.ln() as f32;
        let h = entropy as f32;
        let mass = self.mass;
        let n_live = scores.live_len();

        // Candidates: with p_max = 1/z, every token of probability above
        // c = min((1 - mass) / n, z·e^(-2H)) is closer to H than any token
        // below c, and those above c weigh more than `mass`; so the tokens
        // below c (less a margin) rank after the boundary and go.
        let bound = ((1.0 - f64::from(mass) - 1e-6) / n_live as f64)
            .min(z * (-2.0 * entropy).exp())
            * (1.0 - 1e-3);
        let mut cut = if bound > 0.0 { (bound.ln() + z.ln()) as f32 } else { f32::NEG_INFINITY };

        let values = scores.values();
        let buffer = &mut self.ranked;
        if buffer.len() < n_live {
            buffer.resize(n_live, (0.0, 0));
        }
        let (count, boundary) = loop {
            // Branch-free gather of (distance, id) for the candidates.
            let mut count = 0;
            scores.for_each_live(|id, x| {
                let d = x - m;
                buffer[count] = ((-(d - ln_z) - h).abs(), id);
                count += usize::from(x > f32::NEG_INFINITY && d >= cut);
            });
            let all = cut == f32::NEG_INFINITY;
            if all && count <= keep {
                // Every finite token is protected.
                return Ok(());
            }
            if count > 0 {
                // The first rank whose cumulative mass reaches `mass`.
                let boundary = first_stop(
                    &mut buffer[..count],
                    FIRST_ROUND.max(keep),
                    most_typical_first,
                    |e| softmax.weight(values[e.1 as usize]),
                    |_, _, through| (through / z) as f32 >= mass,
                );
                if all {
                    // Rounding may keep the total below `mass`: then the
                    // boundary is the last rank.
                    break (count, boundary.min(count - 1));
                }
                if boundary < count && keep <= boundary + 1 {
                    break (count, boundary);
                }
            }
            // The bound did not hold up (rounding, or protection reaching
            // past the boundary): rank every finite token.
            cut = f32::NEG_INFINITY;
        };

        // `ranked[..head]` holds the first ranks, the first `keep` in order;
        // after it only the ties with the boundary's distance survive
        // (nothing after it is smaller).
        let ranked = &self.ranked[..count];
        let head = (boundary + 1).max(keep).min(count);
        let limit = ranked[boundary].0;
        scores.set_live(
            ranked[..head]
                .iter()
                .chain(ranked[head..].iter().filter(|e| e.0 <= limit))
                .map(|e| e.1),
            false,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::testing::{logits, processed, survivors};

    const NEG: f32 = f32::NEG_INFINITY;

    fn typical(mass: f32) -> Typical {
        Typical::new(mass).unwrap()
    }

    // Expected sets: derived by hand from the definition and confirmed with
    // transformers 5.24's `TypicalLogitsWarper` on the same f32 logits.

    #[test]
    fn verified_against_transformers() {
        // H = 1.2799; distances |-ln p - H|: 0.364, 0.076, 0.329, 1.023.
        // Most typical first: 0.3, 0.2, 0.4, 0.1 (cumulative 0.3, 0.5, 0.9, 1).
        let row = logits(&[0.4, 0.3, 0.2, 0.1]);
        // mass = 0.5 sits exactly on a cumulative mass: with these logits the
        // softmax puts 0.50000000240 on the first two, which rounds to 0.5 and
        // reaches it, as in transformers.
        assert_eq!(survivors(&mut typical(0.5), &row), [1, 2]);
        assert_eq!(survivors(&mut typical(0.45), &row), [1, 2]);
        assert_eq!(survivors(&mut typical(0.55), &row), [0, 1, 2]);
        assert_eq!(survivors(&mut typical(0.9), &row), [0, 1, 2]);
        assert_eq!(survivors(&mut typical(0.2), &row), [1]);
    }

    #[test]
    fn llama_cpp_goldens() {
        assert_eq!(survivors(&mut typical(0.5), &logits(&[0.97, 0.01, 0.01, 0.01])), [0]);
        // F30: the argmax is dropped; the three tied tokens are all kept.
        assert_eq!(survivors(&mut typical(0.5), &logits(&[0.4, 0.2, 0.2, 0.2])), [1, 2, 3]);
    }

    #[test]
    fn min_tokens_to_keep_protects_the_most_typical() {
        let row = logits(&[0.4, 0.3, 0.2, 0.1]);
        let mut p = typical(0.5).min_tokens_to_keep(3).unwrap();
        assert_eq!(survivors(&mut p, &row), [0, 1, 2]);
        let mut p = typical(0.5).min_tokens_to_keep(4).unwrap();
        assert_eq!(processed(&mut p, &row), row);
    }

    #[test]
    fn masked_tokens_give_no_nan() {
        // F43: H = ln 2, both finite tokens are exactly typical.
        let out = processed(&mut typical(0.5), &[0.0, 0.0, NEG]);
        assert_eq!(out, [0.0, 0.0, NEG]);
        assert_eq!(processed(&mut typical(0.5), &[NEG; 3]), [NEG; 3]);
    }

    #[test]
    fn extreme_logits() {
        // Probabilities 0.665, 0.245, 0.090: H = 0.832, distances 0.425,
        // 0.575, 1.575; the first alone reaches 0.5.
        assert_eq!(survivors(&mut typical(0.5), &[1000.0, 999.0, 998.0]), [0]);
        let out = processed(&mut typical(0.9), &[-3e38, 3e38, 0.0]);
        assert_eq!(out, [NEG, 3e38, NEG]);
    }

    #[test]
    fn mass_one_is_a_no_op() {
        let row = logits(&[0.4, 0.3, 0.2, 0.1]);
        let mut out = row.clone();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut out, &mut live);
        typical(1.0).process(&Context::empty(), &mut scores).unwrap();
        assert!(!scores.is_truncated());
    }

    #[test]
    fn a_wide_typical_set() {
        // 3000 tokens in three levels: 1000 at 0, 1000 at -1, 1000 at -2.
        // Masses 0.665, 0.245, 0.090 per level; H = 0.832 + ln 1000 = 7.740;
        // distances of the levels (their -ln p = ln 1000 + 0.408, 1.408,
        // 2.408): 0.424, 0.576, 1.576. The first level holds 0.665 >= 0.6.
        let row: Vec<f32> = (0..3000).map(|i| -((i % 3) as f32)).collect();
        let kept = survivors(&mut typical(0.6), &row);
        assert_eq!(kept, (0..3000).step_by(3).collect::<Vec<_>>());
        let kept = survivors(&mut typical(0.8), &row);
        assert_eq!(kept.len(), 2000);
    }

    #[test]
    fn a_dominant_token_over_a_wide_tail() {
        // p = 0.626 for the first token, H = 3.06: the first token is the
        // most typical, then the tail from its highest scores down.
        // Expected sets from transformers on the same row.
        let row: Vec<f32> = std::iter::once(8.0)
            .chain((1..1000).map(|i| ((i * 37) % 100) as f32 * 0.04 - 2.0))
            .collect();
        for (mass, n, lowest) in [(0.3, 1, 8.0), (0.6, 1, 8.0), (0.9, 321, 0.72), (0.95, 481, 0.08)]
        {
            let kept = survivors(&mut typical(mass), &row);
            assert_eq!(kept.len(), n, "mass {mass}");
            assert_eq!(kept[0], 0);
            let min = kept.iter().map(|&i| row[i as usize]).fold(f32::INFINITY, f32::min);
            assert!((min - lowest).abs() < 1e-5, "mass {mass}: lowest kept {min}");
        }
    }

    #[test]
    fn rejects_invalid_parameters() {
        for m in [0.0, -0.1, 1.5, f32::NAN] {
            assert!(matches!(
                Typical::new(m),
                Err(Error::InvalidParameter { name: "typical_p", .. })
            ));
        }
        assert!(typical(0.5).min_tokens_to_keep(0).is_err());
    }
}
