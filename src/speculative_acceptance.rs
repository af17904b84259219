//! The acceptance rule of speculative sampling.

use crate::{Error, TokenId, unit_f64};

/// What [`speculative_accept`] decided about a drafted token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speculation {
    /// The drafted token stands.
    Accepted,
    /// The drafted token is rejected; `resampled` replaces it, and the
    /// drafted tokens after it are discarded.
    Rejected {
        /// The token drawn from the residual distribution.
        resampled: TokenId,
    },
}

/// Decides whether a token proposed by a draft model is kept, so that the
/// token finally emitted is distributed exactly as the target model's.
///
/// Speculative sampling (Leviathan et al. 2023, "Fast Inference from
/// Transformers via Speculative Decoding", Algorithm 1; Chen et al. 2023).
/// With `p` the softmax of `target` and `q` the softmax of `draft` (each
/// `exp(x - max) / Σ exp(x - max)` in f64), and `x` the drafted token, which
/// was drawn from `q`:
///
/// ```text
/// u = unit_f64(rng)                       (one draw, in [0, 1))
/// accept  iff  u < p(x) / q(x)            (always when p(x) >= q(x))
/// else    draw y from r(i) = max(p(i) - q(i), 0) / Σ_j max(p(j) - q(j), 0)
///         (inverse CDF in id order, one more draw) and return Rejected { y }
/// ```
///
/// Then `P(emit i) = q(i)·min(1, p(i)/q(i)) + P(reject)·r(i) = p(i)`.
///
/// - `target` and `draft` are the **processed** rows of the two models for
///   the same position (after the same pipeline: temperature, top-k, ...;
///   `-inf` for removed tokens), as [`Pipeline::process`] writes them back,
///   so `p` and `q` are the distributions actually sampled.
/// - When rounding leaves the residual without mass (`p = q` up to
///   rounding, where rejection has probability ~0), `y` is drawn from `p`.
/// - Draws: one on acceptance, two on rejection.
///
/// [`Pipeline::process`]: crate::Pipeline::process
///
/// # Errors
///
/// - [`Error::VocabSizeMismatch`] when the rows differ in length,
///   [`Error::EmptyRow`] when they are empty;
/// - [`Error::InvalidLogit`] for a NaN or `+inf` score in either row;
/// - [`Error::AllMasked`] when either row has no finite score;
/// - [`Error::TokenOutOfRange`] when `draft_token >= V`;
/// - [`Error::InvalidParameter`] naming `draft_token` when `q(x) = 0`: the
///   draft could not have proposed it.
///
/// # Performance
///
/// No allocation: a maximum and a normalizer pass per row, and on rejection
/// one pass for the residual mass and one (partial) pass to select.
///
/// # Example
///
/// ```
/// use decoding::{Speculation, rng_from_seed, speculative_accept};
///
/// // The target puts all its mass on token 1: a drafted 0 is always
/// // rejected and replaced by 1.
/// let target = [f32::NEG_INFINITY, 0.0, f32::NEG_INFINITY];
/// let draft = [0.0, 0.0, 0.0];
/// let mut rng = rng_from_seed(3);
/// assert_eq!(
///     speculative_accept(&target, &draft, 0, &mut rng)?,
///     Speculation::Rejected { resampled: 1 }
/// );
/// assert_eq!(speculative_accept(&target, &draft, 1, &mut rng)?, Speculation::Accepted);
/// # Ok::<(), decoding::Error>(())
/// ```
pub fn speculative_accept(
    target: &[f32],
    draft: &[f32],
    draft_token: TokenId,
    rng: &mut dyn rand::Rng,
) -> Result<Speculation, Error> {
    if target.len() != draft.len() {
        return Err(Error::VocabSizeMismatch { expected: target.len(), actual: draft.len() });
    }
    crate::math::check_row(target)?;
    crate::math::check_row(draft)?;
    let vocab_size = target.len();
    if draft_token as usize >= vocab_size {
        return Err(Error::TokenOutOfRange { id: draft_token, vocab_size });
    }
    let p = Dist::of(target)?;
    let q = Dist::of(draft)?;
    let x = draft_token as usize;
    let (px, qx) = (p.prob(target[x]), q.prob(draft[x]));
    if qx == 0.0 {
        return Err(Error::invalid(
            "draft_token",
            "a token of nonzero draft probability",
            draft_token,
        ));
    }
    let u = unit_f64(rng);
    if u < px / qx {
        return Ok(Speculation::Accepted);
    }
    let residual = |i: usize| (p.prob(target[i]) - q.prob(draft[i])).max(0.0);
    let total: f64 = (0..vocab_size).map(residual).sum();
    let resampled = if total > 0.0 {
        pick(vocab_size, total, unit_f64(rng), residual)
    } else {
        pick(vocab_size, 1.0, unit_f64(rng), |i| p.prob(target[i]))
    };
    Ok(Speculation::Rejected { resampled: resampled as TokenId })
}

/// A softmax evaluated on demand: `exp(x - max) / z`, all in f64.
#[derive(Clone, Copy)]
struct Dist {
    max: f64,
    z: f64,
}

impl Dist {
    fn of(row: &[f32]) -> Result<Dist, Error> {
        let m = crate::math::max(row);
        if m == f32::NEG_INFINITY {
            return Err(Error::AllMasked);
        }
        let max = f64::from(m);
        let z = row.iter().map(|&x| (f64::from(x) - max).exp()).sum();
        Ok(Dist { max, z })
    }

    fn prob(&self, x: f32) -> f64 {
        (f64::from(x) - self.max).exp() / self.z
    }
}

/// Inverse CDF in id order: the first `i` whose cumulative weight exceeds
/// `u · total`; the last token of positive weight when rounding runs past
/// the end.
fn pick(n: usize, total: f64, u: f64, weight: impl Fn(usize) -> f64) -> usize {
    let target = u * total;
    let mut acc = 0.0;
    let mut last = 0;
    for i in 0..n {
        let w = weight(i);
        if w > 0.0 {
            acc += w;
            last = i;
            if acc > target {
                return i;
            }
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng_from_seed;

    const NEG: f32 = f32::NEG_INFINITY;

    /// Upper 1e-6 quantile of chi-square with `df` degrees of freedom
    /// (Wilson–Hilferty; on the large side for small `df`, which only makes
    /// the test more lenient).
    fn chi2_critical(df: usize) -> f64 {
        const Z_1E6: f64 = 4.753_424_308_822_899;
        let k = df as f64;
        let a = 2.0 / (9.0 * k);
        k * (1.0 - a + Z_1E6 * a.sqrt()).powi(3)
    }

    fn softmax(row: &[f32]) -> Vec<f64> {
        let m = row.iter().copied().fold(NEG, f32::max);
        let w: Vec<f64> = row.iter().map(|&x| (f64::from(x) - f64::from(m)).exp()).collect();
        let z: f64 = w.iter().sum();
        w.into_iter().map(|w| w / z).collect()
    }

    /// Runs draft-then-verify `n` times and checks the emitted tokens
    /// against the target distribution with Pearson's chi-square at 1e-6.
    fn check_law(target: &[f32], draft: &[f32], n: usize, seed: u64) {
        let (p, q) = (softmax(target), softmax(draft));
        let mut rng = rng_from_seed(seed);
        let mut counts = vec![0u64; p.len()];
        for _ in 0..n {
            // The draft's own sample, by inverse CDF on q.
            let u = unit_f64(&mut rng);
            let x = pick(q.len(), 1.0, u, |i| q[i]);
            let out = match speculative_accept(target, draft, x as TokenId, &mut rng).unwrap() {
                Speculation::Accepted => x,
                Speculation::Rejected { resampled } => resampled as usize,
            };
            counts[out] += 1;
        }
        let mut stat = 0.0;
        let mut df = 0usize;
        for (i, (&c, &pi)) in counts.iter().zip(&p).enumerate() {
            if pi == 0.0 {
                assert_eq!(c, 0, "token {i} has target probability 0");
                continue;
            }
            let e = pi * n as f64;
            assert!(e >= 20.0, "toy distributions keep every bin large");
            stat += (c as f64 - e) * (c as f64 - e) / e;
            df += 1;
        }
        let critical = chi2_critical(df - 1);
        assert!(stat < critical, "chi2 = {stat} >= {critical} (df = {})", df - 1);
    }

    #[test]
    fn emitted_tokens_follow_the_target_distribution() {
        // Overlapping supports with tokens only one model allows.
        let target = [0.0f32, 1.0, -1.0, NEG, 0.5, 2.0];
        let draft = [1.5f32, 0.0, NEG, 0.0, 0.5, -1.0];
        check_law(&target, &draft, 200_000, 11);
        // Near-identical models: rejection is rare.
        let target = [0.0f32, 0.1, 0.2, 0.3];
        let draft = [0.0f32, 0.1, 0.2, 0.35];
        check_law(&target, &draft, 200_000, 12);
        // A confident draft against a flat target.
        let target = [0.0f32; 5];
        let draft = [4.0f32, 0.0, 0.0, 0.0, 0.0];
        check_law(&target, &draft, 200_000, 13);
    }

    #[test]
    fn acceptance_rate_is_min_of_one_and_the_ratio() {
        // p = (1/2, 1/2), q = (0.8, 0.2): token 0 is accepted with 0.625;
        // token 1 always.
        let target = [0.0f32, 0.0];
        let draft = [0.8f32.ln(), 0.2f32.ln()];
        let mut rng = rng_from_seed(5);
        let n = 100_000;
        let accepted = (0..n)
            .filter(|_| {
                speculative_accept(&target, &draft, 0, &mut rng).unwrap() == Speculation::Accepted
            })
            .count();
        // Binomial(1e5, 0.625): sd 153; 6 sd either side.
        assert!((61_582..=63_418).contains(&accepted), "{accepted}");
        for _ in 0..1000 {
            assert_eq!(speculative_accept(&target, &draft, 1, &mut rng), Ok(Speculation::Accepted));
        }
        // A rejected 0 can only be replaced by 1, the one token with p > q.
        for _ in 0..1000 {
            let s = speculative_accept(&target, &draft, 0, &mut rng).unwrap();
            assert!(matches!(s, Speculation::Accepted | Speculation::Rejected { resampled: 1 }));
        }
    }

    #[test]
    fn errors() {
        let mut rng = rng_from_seed(0);
        let r = |t: &[f32], d: &[f32], x| speculative_accept(t, d, x, &mut rng_from_seed(0));
        assert_eq!(
            r(&[0.0, 0.0], &[0.0], 0),
            Err(Error::VocabSizeMismatch { expected: 2, actual: 1 })
        );
        assert_eq!(r(&[], &[], 0), Err(Error::EmptyRow));
        assert!(matches!(
            r(&[0.0, f32::NAN], &[0.0, 0.0], 0),
            Err(Error::InvalidLogit { index: 1, .. })
        ));
        assert_eq!(r(&[NEG, NEG], &[0.0, 0.0], 0), Err(Error::AllMasked));
        assert_eq!(
            r(&[0.0, 0.0], &[0.0, 0.0], 2),
            Err(Error::TokenOutOfRange { id: 2, vocab_size: 2 })
        );
        assert!(matches!(
            speculative_accept(&[0.0, 0.0], &[0.0, NEG], 1, &mut rng),
            Err(Error::InvalidParameter { name: "draft_token", .. })
        ));
    }
}
