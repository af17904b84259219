//! Categorical sampling: one draw from the softmax of the processed scores.

use crate::math;
use crate::rng::unit_f64;
use crate::sampler::{Sampled, Sampler};
use crate::{Error, Scores, TokenId};

/// Entries per block of the cumulative sums.
const BLOCK: usize = 1024;

/// Draws one token from `softmax(scores)` by inverse transform sampling.
///
/// # Algorithm
///
/// 1. `m` = the maximum live score; `w_i = exp(x_i - m)` in f32 (so the
///    largest weight is exactly 1 and nothing overflows), with the crate's
///    vectorized exponential (within 1 ulp of the exact value).
/// 2. The weights are summed in f64, block by block (1024 entries a block,
///    in live-set order, or id order before truncation; a dense row with
///    three quarters or more of 64 evenly spaced scores at `-inf` is read as the
///    list of its finite tokens, in id order); `total` is the sum of the
///    block sums.
/// 3. One uniform `u` in `[0, 1)` ([`unit_f64`]: 53 bits of one
///    `next_u64`), scaled by the actual total: `target = u * total`.
/// 4. The chosen token is the first (in the same order) whose inclusive
///    cumulative weight exceeds `target` (strictly). The walk skips whole
///    blocks by their sums, then re-sums one block.
///
/// So `u = 0` returns the first token of positive weight, never a masked
/// one, and `u → 1` returns the last token of positive weight, never an
/// index past the end. If rounding leaves the target unmatched at the end of
/// a block, the last positive-weight token of that block is chosen. A
/// token whose weight is 0 (masked, or `exp` underflowed) is never returned.
///
/// # Errors
///
/// [`Error::EmptyRow`], [`Error::InvalidLogit`], [`Error::AllMasked`].
///
/// # Performance
///
/// Two passes over the live scores plus one block: the maximum (which also
/// checks for NaN and `+inf`), then the block sums, which the compiler
/// vectorizes; the walk re-evaluates one block only. On a mostly masked
/// dense row one branch-free pass lists the finite tokens first, and the
/// exponentials run over them only. No allocation once the buffers have
/// grown.
///
/// # Example
///
/// ```
/// use decoding::sampler::{Categorical, Sampler};
/// use decoding::{rng_from_seed, Scores};
///
/// let mut row = vec![f32::NEG_INFINITY, 0.0, 0.0];
/// let mut live = Vec::new();
/// let scores = Scores::new(&mut row, &mut live);
/// let step = Categorical::new().sample(&scores, &mut rng_from_seed(1))?;
/// assert!(step.token == 1 || step.token == 2);
/// assert!((step.logprob - 0.5f32.ln()).abs() < 1e-6);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct Categorical {
    block_sums: Vec<f64>,
    /// The finite tokens of a mostly masked row.
    finite: Vec<TokenId>,
}

impl Categorical {
    /// A categorical sampler.
    pub fn new() -> Self {
        Self::default()
    }

    /// The draw with a given uniform `u` in `[0, 1)`: what
    /// [`Sampler::sample`] does after taking `u` from the random source.
    /// Exposed so that the boundary draws can be tested directly.
    ///
    /// # Errors
    ///
    /// As [`Sampler::sample`], plus [`Error::InvalidParameter`] when `u` is
    /// not in `[0, 1)`.
    pub fn sample_with_uniform(&mut self, scores: &Scores<'_>, u: f64) -> Result<Sampled, Error> {
        if !(0.0..1.0).contains(&u) {
            return Err(Error::invalid("u", "in [0, 1)", u));
        }
        let m = scores.checked_max()?;
        if m == f32::NEG_INFINITY {
            return Err(Error::AllMasked);
        }
        let values = scores.values();
        // A mostly masked dense row (a grammar mask, a padded vocabulary) is
        // walked through the ids of its finite tokens, in id order: the
        // exponentials then run over those only.
        let mut live = scores.live_ids();
        if live.is_none() && math::mostly_masked(values) {
            let n = math::finite_ids(values, &mut self.finite);
            live = Some(&self.finite[..n]);
        }
        self.block_sums.clear();
        match live {
            Some(ids) => self
                .block_sums
                .extend(ids.chunks(BLOCK).map(|block| math::sum_exp_ids(values, block, m))),
            None => {
                self.block_sums.extend(values.chunks(BLOCK).map(|block| math::sum_exp(block, m)))
            }
        }
        let total: f64 = self.block_sums.iter().sum();
        let target = u * total;
        let (token, x) = match live {
            Some(ids) => self.walk(target, ids.len(), |i| (ids[i], values[ids[i] as usize]), m),
            None => self.walk(target, values.len(), |i| (i as TokenId, values[i]), m),
        };
        // From the score, not from its weight: a weight that is subnormal in
        // f32 has lost most of its bits, its score has not.
        let logprob = (f64::from(x - m) - total.ln()) as f32;
        Ok(Sampled { token, logprob })
    }

    /// Returns the chosen token and its score `x`.
    /// `n` is the number of entries `at` can be asked for.
    fn walk(
        &self,
        target: f64,
        n: usize,
        at: impl Fn(usize) -> (TokenId, f32),
        m: f32,
    ) -> (TokenId, f32) {
        // Skip whole blocks; stop at the block where the target falls.
        let mut cum = 0.0f64;
        let mut last_positive = 0;
        let mut found = None;
        for (b, &s) in self.block_sums.iter().enumerate() {
            if s > 0.0 {
                last_positive = b;
                if cum + s > target {
                    found = Some(b);
                    break;
                }
            }
            cum += s;
        }
        // Rounding can put the target at or past the total: then the last
        // block with mass is walked to its last positive token.
        let block = found.unwrap_or(last_positive);
        if found.is_none() {
            cum = f64::NEG_INFINITY;
        }
        let mut chosen = (at(block * BLOCK).0, f32::NEG_INFINITY);
        for i in block * BLOCK..((block + 1) * BLOCK).min(n) {
            let (id, x) = at(i);
            let w = f64::from(math::exp(x - m));
            if w > 0.0 {
                chosen = (id, x);
                cum += w;
                if cum > target {
                    break;
                }
            }
        }
        chosen
    }
}

impl Sampler for Categorical {
    fn sample(&mut self, scores: &Scores<'_>, rng: &mut dyn rand::Rng) -> Result<Sampled, Error> {
        let u = unit_f64(rng);
        self.sample_with_uniform(scores, u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;
    const U_MAX: f64 = 1.0 - 1.0 / (1u64 << 53) as f64;

    fn draw(row: &[f32], u: f64) -> Result<Sampled, Error> {
        let mut row = row.to_vec();
        let mut live = Vec::new();
        Categorical::new().sample_with_uniform(&Scores::new(&mut row, &mut live), u)
    }

    #[test]
    fn u_zero_never_returns_a_masked_token() {
        assert_eq!(draw(&[NEG, 0.0, 0.0], 0.0).unwrap().token, 1);
        assert_eq!(draw(&[NEG, NEG, 0.0], 0.0).unwrap().token, 2);
    }

    #[test]
    fn u_near_one_returns_the_last_positive_token() {
        assert_eq!(draw(&[0.0, 0.0, NEG], U_MAX).unwrap().token, 1);
        assert_eq!(draw(&[NEG, 0.0, NEG], U_MAX).unwrap().token, 1);
        let flat = vec![0.0; 50257];
        let t = draw(&flat, U_MAX).unwrap().token;
        assert!(t >= 50255, "{t}");
    }

    #[test]
    fn boundaries_hold_across_blocks_of_masked_tokens() {
        // Whole leading and trailing blocks masked.
        let mut row = vec![NEG; 5000];
        row[2100] = 1.0;
        row[2101] = 1.0;
        row[3000] = 0.0;
        assert_eq!(draw(&row, 0.0).unwrap().token, 2100);
        assert_eq!(draw(&row, U_MAX).unwrap().token, 3000);
        // Weight 2e/(2e+1) lies before token 3000.
        let w = 1f64.exp();
        let split = 2.0 * w / (2.0 * w + 1.0);
        assert_eq!(draw(&row, split - 1e-6).unwrap().token, 2101);
        assert_eq!(draw(&row, split + 1e-6).unwrap().token, 3000);
    }

    #[test]
    fn one_hot_rows_always_give_the_hot_token() {
        for u in [0.0, 0.5, U_MAX] {
            assert_eq!(draw(&[NEG, 0.0, NEG], u).unwrap().token, 1);
        }
    }

    #[test]
    fn inverse_cdf_is_monotone_in_u() {
        let row: Vec<f32> = (0..3000).map(|i| ((i * 7919) % 13) as f32 * 0.3).collect();
        let mut last = 0;
        for k in 0..2000 {
            let t = draw(&row, k as f64 / 2000.0).unwrap().token;
            assert!(t >= last);
            last = t;
        }
    }

    #[test]
    fn logprob_is_the_log_softmax_of_the_chosen_token() {
        // softmax([1000, 999, 998]) = softmax([2, 1, 0]).
        let z = 1.0 + (-1f64).exp() + (-2f64).exp();
        let s = draw(&[1000.0, 999.0, 998.0], 0.0).unwrap();
        assert_eq!(s.token, 0);
        assert!((f64::from(s.logprob) - (-z.ln())).abs() < 1e-6);
        let s = draw(&[1000.0, 999.0, 998.0], U_MAX).unwrap();
        assert_eq!(s.token, 2);
        assert!((f64::from(s.logprob) - (-2.0 - z.ln())).abs() < 1e-6);
    }

    #[test]
    fn bad_rows_are_errors() {
        assert_eq!(draw(&[], 0.5), Err(Error::EmptyRow));
        assert_eq!(draw(&[NEG, NEG], 0.5), Err(Error::AllMasked));
        assert!(matches!(draw(&[0.0, f32::NAN], 0.5), Err(Error::InvalidLogit { index: 1, .. })));
        assert!(matches!(
            draw(&[f32::INFINITY, 0.0], 0.5),
            Err(Error::InvalidLogit { index: 0, .. })
        ));
        assert!(matches!(draw(&[0.0], 1.0), Err(Error::InvalidParameter { name: "u", .. })));
        assert!(matches!(draw(&[0.0], -0.1), Err(Error::InvalidParameter { .. })));
    }

    #[test]
    fn a_mostly_masked_row_draws_as_the_list_of_its_finite_tokens() {
        // 10% of the row finite: the same draws, bit for bit, as the row
        // truncated to its finite tokens in id order.
        let row: Vec<f32> = (0..5000)
            .map(|i| if i % 10 == 7 { (i as f32 * 0.37).sin() * 4.0 } else { NEG })
            .collect();
        let finite: Vec<TokenId> = (0..5000).filter(|&i| row[i as usize] > NEG).collect();
        let mut c = Categorical::new();
        for k in 0..500 {
            let u = f64::from(k) / 500.0;
            let dense = draw(&row, u).unwrap();
            let mut buf = row.clone();
            let mut live = Vec::new();
            let mut scores = Scores::new(&mut buf, &mut live);
            scores.set_live(finite.iter().copied(), false);
            let listed = c.sample_with_uniform(&scores, u).unwrap();
            assert_eq!(dense.token, listed.token, "u = {u}");
            assert_eq!(dense.logprob.to_bits(), listed.logprob.to_bits(), "u = {u}");
        }
        // A NaN among the masked tokens is still an error.
        let mut bad = row.clone();
        bad[100] = f32::NAN;
        assert!(matches!(draw(&bad, 0.5), Err(Error::InvalidLogit { index: 100, .. })));
    }

    #[test]
    fn a_truncated_live_set_is_walked_in_live_order() {
        let mut row = vec![5.0, 0.0, 0.0, 5.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        scores.set_live([2, 1], false);
        let mut c = Categorical::new();
        assert_eq!(c.sample_with_uniform(&scores, 0.0).unwrap().token, 2);
        assert_eq!(c.sample_with_uniform(&scores, U_MAX).unwrap().token, 1);
        let s = c.sample_with_uniform(&scores, 0.25).unwrap();
        assert!((s.logprob - 0.5f32.ln()).abs() < 1e-6);
    }
}
