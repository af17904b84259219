//! Softmax normalizers, the entropy, and the probability of one score.

use super::exp;
use super::exp::exp_nonpositive;
use crate::{Scores, TokenId};

/// Lanes of the exponential sums.
pub(crate) const EXP_LANES: usize = 8;

/// `Σ exp(x - m)` over a row ([`exp`] in f32, every term added in f64).
///
/// Summation order: 8 lanes; lane `j` accumulates the entries `j, j + 8,
/// ...` in f64; the lanes are added in order, then the tail (fewer than 8
/// entries) one by one. Each chunk's eight exponentials are computed into
/// an f32 array before they are widened and added, which keeps the
/// exponentials vectorized.
pub(crate) fn sum_exp(row: &[f32], m: f32) -> f64 {
    sum_exp_visit(row, m, &mut ())
}

/// What a pass of exponentials hands its scores and weights to, 8 at a
/// time; `()` ignores them.
pub(crate) trait VisitWeights {
    /// Called once per chunk, in order.
    fn visit(&mut self, x: &[f32; EXP_LANES], w: &[f32; EXP_LANES]);
}

impl VisitWeights for () {
    #[inline(always)]
    fn visit(&mut self, _: &[f32; EXP_LANES], _: &[f32; EXP_LANES]) {}
}

/// [`sum_exp`], handing the scores and weights to `visit` as well, 8 at a
/// time (the last chunk padded with `-inf` scores of weight 0): the same
/// sum, bit for bit, for a pass that needs the weights for something else
/// too.
#[inline(always)]
pub(crate) fn sum_exp_visit(row: &[f32], m: f32, visit: &mut impl VisitWeights) -> f64 {
    let mut acc = [0.0f64; EXP_LANES];
    let mut chunks = row.chunks_exact(EXP_LANES);
    for chunk in &mut chunks {
        let mut x = [0.0f32; EXP_LANES];
        x.copy_from_slice(chunk);
        let w = exp_lanes(x, m);
        for (a, &w) in acc.iter_mut().zip(&w) {
            *a += f64::from(w);
        }
        visit.visit(&x, &w);
    }
    let mut total = 0.0f64;
    for a in acc {
        total += a;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut x = [f32::NEG_INFINITY; EXP_LANES];
        let mut w = [0.0f32; EXP_LANES];
        for ((x, w), &t) in x.iter_mut().zip(&mut w).zip(tail) {
            *x = t;
            *w = exp(t - m);
            total += f64::from(*w);
        }
        visit.visit(&x, &w);
    }
    total
}

/// `Σ exp(x_id - m)` over the listed ids, accumulated in f64 in the order
/// of [`sum_exp`] with the list in place of the row: 8 lanes, lane `j`
/// accumulating the ids at positions `j, j + 8, ...` of the list; the lanes
/// added in order, then the tail one by one. So the ids `0..n` give the sum
/// of the row's first `n` scores bit for bit.
///
/// The scores of 8 ids at a time are gathered into an array and their
/// exponentials computed there, which vectorizes; the 8 independent
/// accumulators keep the additions off a single chain of dependent adds.
pub(crate) fn sum_exp_ids(row: &[f32], ids: &[TokenId], m: f32) -> f64 {
    sum_exp_ids_visit(row, ids, m, &mut ())
}

/// [`sum_exp_ids`], handing the scores and weights to `visit` as well, 8
/// at a time (the last chunk padded with `-inf` scores of weight 0): the
/// same sum, bit for bit.
#[inline(always)]
pub(crate) fn sum_exp_ids_visit(
    row: &[f32],
    ids: &[TokenId],
    m: f32,
    visit: &mut impl VisitWeights,
) -> f64 {
    let mut acc = [0.0f64; EXP_LANES];
    let mut chunks = ids.chunks_exact(EXP_LANES);
    for chunk in &mut chunks {
        let mut x = [f32::NEG_INFINITY; EXP_LANES];
        for (x, &id) in x.iter_mut().zip(chunk) {
            *x = row[id as usize];
        }
        let w = exp_lanes(x, m);
        for (a, &w) in acc.iter_mut().zip(&w) {
            *a += f64::from(w);
        }
        visit.visit(&x, &w);
    }
    let mut total = 0.0f64;
    for a in acc {
        total += a;
    }
    let tail = chunks.remainder();
    if !tail.is_empty() {
        let mut x = [f32::NEG_INFINITY; EXP_LANES];
        let mut w = [0.0f32; EXP_LANES];
        for ((x, w), &id) in x.iter_mut().zip(&mut w).zip(tail) {
            *x = row[id as usize];
            *w = exp(*x - m);
            total += f64::from(*w);
        }
        visit.visit(&x, &w);
    }
    total
}

/// `exp(x - m)` for 8 scores at once, each at most `m`: [`exp`]'s
/// results, bit for bit, by [`exp_nonpositive`].
#[inline]
pub(crate) fn exp_lanes(x: [f32; EXP_LANES], m: f32) -> [f32; EXP_LANES] {
    let mut w = [0.0f32; EXP_LANES];
    for (w, &x) in w.iter_mut().zip(&x) {
        *w = exp_nonpositive(x - m);
    }
    w
}

/// The softmax normalizer of the live scores: `(max, Σ exp(x - max))`.
/// `max` is `-inf` (and the sum 0) when no live score is finite.
pub(crate) fn normalizer(scores: &Scores<'_>) -> (f32, f64) {
    let m = scores.max();
    if m == f32::NEG_INFINITY {
        return (m, 0.0);
    }
    let sum = match scores.live_ids() {
        Some(ids) => sum_exp_ids(scores.values(), ids, m),
        None => sum_exp(scores.values(), m),
    };
    (m, sum)
}

/// The softmax of the live scores and its Shannon entropy in nats, or
/// `None` when no live score is finite.
///
/// One pass after the maximum: with `d = x - max` and `w = exp(d)` (f32),
/// `H = ln Σw - Σ(w·d) / Σw`, both sums in f64. Masked tokens contribute
/// nothing (`0·ln 0 = 0`), so the result is never NaN; it is clamped at 0
/// against rounding.
pub(crate) fn softmax_entropy(scores: &Scores<'_>) -> Option<(Softmax, f64)> {
    let m = scores.max();
    if m == f32::NEG_INFINITY {
        return None;
    }
    let mut z = 0.0f64;
    let mut s = 0.0f64;
    scores.for_each_live(|_, x| {
        let d = x - m;
        if d > f32::NEG_INFINITY {
            let w = f64::from(exp(d));
            z += w;
            s += w * f64::from(d);
        }
    });
    let h = (z.ln() - s / z).max(0.0);
    Some((Softmax { max: m, sum: z }, h))
}

/// The softmax of the live scores, as the truncations evaluate it: with
/// `m` the maximum live score and `z = Σ exp(x - m)` (exponentials in f32,
/// sum in f64), a token's weight is `exp(x - m)` and its probability is
/// `f32(weight / z)`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Softmax {
    max: f32,
    sum: f64,
}

impl Softmax {
    /// The softmax of the live scores, or `None` when none is finite.
    pub(crate) fn of(scores: &Scores<'_>) -> Option<Self> {
        let (max, sum) = normalizer(scores);
        Self::from_parts(max, sum)
    }

    /// The softmax of a maximum and a normalizer computed elsewhere (in the
    /// order [`normalizer`] sums), or `None` when the maximum is `-inf`.
    pub(crate) fn from_parts(max: f32, sum: f64) -> Option<Self> {
        (max > f32::NEG_INFINITY).then_some(Softmax { max, sum })
    }

    /// The maximum live score.
    pub(crate) fn max(&self) -> f32 {
        self.max
    }

    /// The normalizer `z = Σ exp(x - max)`.
    pub(crate) fn sum(&self) -> f64 {
        self.sum
    }

    /// `exp(x - max)`, the unnormalized probability (0 for `-inf`).
    #[inline]
    pub(crate) fn weight(&self, x: f32) -> f64 {
        f64::from(exp(x - self.max))
    }

    /// The probability of a token scoring `x`, rounded to f32.
    #[inline]
    pub(crate) fn prob(&self, x: f32) -> f32 {
        (self.weight(x) / self.sum) as f32
    }
}

/// The test `prob(x) >= t` of one [`Softmax`], made cheap: it compares
/// `x - max` with two precomputed bounds and evaluates the probability only
/// for scores within a narrow band around the boundary, so a pass over the
/// vocabulary costs one subtraction and one comparison per token, yet the
/// verdict is exactly that of `prob(x) >= t`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProbFloor {
    softmax: Softmax,
    t: f32,
    lo: f32,
    hi: f32,
}

impl ProbFloor {
    /// The floor `t` under `softmax`. `t <= 0` admits every token,
    /// including masked ones (whose probability, 0, is not below `t`).
    pub(crate) fn new(softmax: Softmax, t: f32) -> Self {
        if t.is_nan() || t <= 0.0 {
            let neg = f32::NEG_INFINITY;
            return ProbFloor { softmax, t, lo: neg, hi: neg };
        }
        // prob(x) = t where x - max = ln(t·z). The exponential and the two
        // roundings move the true boundary by a few 1e-7 at most, except
        // where exp(x - max) is subnormal and loses relative precision: the
        // band is widened there to the whole subnormal range.
        let at = (f64::from(t) * softmax.sum).ln();
        let margin = if at > -80.0 { 1e-3 } else { 32.0 };
        ProbFloor { softmax, t, lo: (at - margin) as f32, hi: (at + margin) as f32 }
    }

    /// Whether `prob(x) >= t`.
    #[inline]
    pub(crate) fn admits(&self, x: f32) -> bool {
        let d = x - self.softmax.max;
        d >= self.hi || (d >= self.lo && self.softmax.prob(x) >= self.t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::{max, testing};

    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn sum_exp_matches_an_f64_reference() {
        for n in [0usize, 1, 7, 8, 9, 1000, 50_257] {
            let row: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1013) as f32 - 900.0) / 37.0).collect();
            let m = max(&row);
            let want: f64 = row.iter().map(|&x| (f64::from(x) - f64::from(m)).exp()).sum();
            let got = sum_exp(&row, m);
            assert!((got - want).abs() <= 1e-6 * want, "n = {n}: {got} vs {want}");
            // The ids `0..n` sum in the row's order, bit for bit; any list
            // sums to the reference too.
            let ids: Vec<TokenId> = (0..n as TokenId).collect();
            assert_eq!(sum_exp_ids(&row, &ids, m).to_bits(), got.to_bits(), "n = {n}");
            let odd: Vec<TokenId> = ids.iter().rev().copied().filter(|i| i % 3 != 0).collect();
            let want: f64 =
                odd.iter().map(|&i| (f64::from(row[i as usize]) - f64::from(m)).exp()).sum();
            let got = sum_exp_ids(&row, &odd, m);
            assert!((got - want).abs() <= 1e-6 * want, "n = {n}: {got} vs {want}");
        }
    }

    #[test]
    fn entropy_of_uniform_and_of_a_point_mass() {
        let mut row = vec![2.0, 2.0, 2.0, 2.0, NEG];
        let mut live = Vec::new();
        let scores = Scores::new(&mut row, &mut live);
        let (softmax, h) = softmax_entropy(&scores).unwrap();
        assert!((h - 4f64.ln()).abs() < 1e-12, "{h}");
        assert_eq!(softmax.max(), 2.0);
        assert_eq!(softmax.sum(), 4.0);

        let mut row = vec![0.0, NEG, -1e30];
        let scores = Scores::new(&mut row, &mut live);
        assert_eq!(softmax_entropy(&scores).unwrap().1, 0.0);

        let mut row = vec![NEG, NEG];
        assert!(softmax_entropy(&Scores::new(&mut row, &mut live)).is_none());
    }

    #[test]
    fn entropy_matches_the_definition() {
        // p = (0.4, 0.3, 0.2, 0.1): H = -Σ p ln p = 1.279854...
        let probs = [0.4f64, 0.3, 0.2, 0.1];
        let expected: f64 = probs.iter().map(|p| -p * p.ln()).sum();
        let mut row = testing::logits(&probs);
        let mut live = Vec::new();
        let (_, h) = softmax_entropy(&Scores::new(&mut row, &mut live)).unwrap();
        assert!((h - expected).abs() < 1e-6, "{h} vs {expected}");
    }

    #[test]
    fn prob_floor_agrees_with_the_direct_test() {
        let mut row: Vec<f32> = (0..2000).map(|i| (i as f32 * 0.37).sin() * 20.0).collect();
        row[7] = -1e30;
        row[8] = NEG;
        let mut live = Vec::new();
        let scores = Scores::new(&mut row, &mut live);
        let softmax = Softmax::of(&scores).unwrap();
        let values = scores.values().to_vec();
        for &x in &values {
            // Floors exactly at a token's probability and one ulp either side.
            let p = softmax.prob(x);
            for t in [p, f32::from_bits(p.to_bits() + 1), f32::from_bits(p.to_bits().max(1) - 1)] {
                let floor = ProbFloor::new(softmax, t);
                for &y in values.iter().step_by(97).chain([x].iter()) {
                    assert_eq!(floor.admits(y), softmax.prob(y) >= t, "x={y} t={t}");
                }
            }
        }
        // A floor of 0 admits everything, masked tokens included.
        assert!(ProbFloor::new(softmax, 0.0).admits(NEG));
    }
}
