//! Numeric kernels shared by processors and samplers.
//!
//! Reductions are written over fixed-width lanes so that the compiler can
//! vectorize them on the baseline target; each one documents its summation
//! order, because the order decides the last bits of a result.

use std::cmp::Ordering;

use crate::{Error, Scores, TokenId};

const LANES: usize = 16;

/// Maximum of a row, `-inf` for an empty row. NaN entries are ignored
/// (rows are validated before this is called).
pub(crate) fn max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = if x > *a { x } else { *a };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for &x in acc.iter().chain(chunks.remainder()) {
        if x > m {
            m = x;
        }
    }
    m
}

/// Checks that no entry is NaN or `+inf`, naming the first offender.
pub(crate) fn check_row(row: &[f32]) -> Result<(), Error> {
    if row.is_empty() {
        return Err(Error::EmptyRow);
    }
    // Vectorizable scan, one flag per chunk; the offender is located only
    // when a chunk is flagged.
    let mut chunks = row.chunks_exact(LANES);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut bad = false;
        for &x in chunk {
            bad |= x.is_nan() | (x == f32::INFINITY);
        }
        if bad {
            if let Some(e) = first_invalid(chunk, base) {
                return Err(e);
            }
        }
        base += LANES;
    }
    match first_invalid(chunks.remainder(), base) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn first_invalid(chunk: &[f32], base: usize) -> Option<Error> {
    chunk
        .iter()
        .position(|&x| x.is_nan() || x == f32::INFINITY)
        .map(|i| Error::InvalidLogit { index: base + i, value: chunk[i] })
}

/// `Σ exp(x - m)` over a row, exponentials in f32, accumulated in f64 lanes.
pub(crate) fn sum_exp(row: &[f32], m: f32) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = row.chunks_exact(8);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a += f64::from((x - m).exp());
        }
    }
    let mut s: f64 = chunks.remainder().iter().map(|&x| f64::from((x - m).exp())).sum();
    for a in acc {
        s += a;
    }
    s
}

/// `Σ exp(x_id - m)` over the listed ids, in list order, accumulated in f64.
pub(crate) fn sum_exp_ids(row: &[f32], ids: &[TokenId], m: f32) -> f64 {
    ids.iter().map(|&id| f64::from((row[id as usize] - m).exp())).sum()
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
            let w = f64::from(d.exp());
            z += w;
            s += w * f64::from(d);
        }
    });
    let h = (z.ln() - s / z).max(0.0);
    Some((Softmax { max: m, sum: z }, h))
}

/// A live entry, `(score, id)`, as the truncations sort them.
pub(crate) type Entry = (f32, TokenId);

/// The crate's rank order of live tokens (see [`Scores`]): score
/// descending, the higher id first among equal scores.
#[inline]
pub(crate) fn rank_desc(a: &Entry, b: &Entry) -> Ordering {
    b.0.total_cmp(&a.0).then(b.1.cmp(&a.1))
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
        f64::from((x - self.max).exp())
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

/// Fills `out` with the `n` highest-ranked live tokens of finite score, in
/// rank order ([`rank_desc`]); fewer when fewer are finite.
///
/// Reads a sorted live set directly; otherwise one pass with an `n`-entry
/// heap whose root is the lowest-ranked entry kept so far, then a sort of
/// the `n` entries.
pub(crate) fn top_n(scores: &Scores<'_>, n: usize, out: &mut Vec<Entry>) {
    out.clear();
    if n == 0 {
        return;
    }
    if scores.is_sorted() {
        let values = scores.values();
        let ids = scores.live_ids().unwrap_or(&[]);
        out.extend(
            ids.iter()
                .map(|&id| (values[id as usize], id))
                .take_while(|e| e.0 > f32::NEG_INFINITY)
                .take(n),
        );
        return;
    }
    scores.for_each_live(|id, x| {
        if x == f32::NEG_INFINITY {
            return;
        }
        if out.len() < n {
            out.push((x, id));
            if out.len() == n {
                for i in (0..n / 2).rev() {
                    sift_down(out, i);
                }
            }
        } else if rank_desc(&(x, id), &out[0]) == Ordering::Less {
            out[0] = (x, id);
            sift_down(out, 0);
        }
    });
    out.sort_unstable_by(rank_desc);
}

/// Restores, below `i`, the heap order in which a parent ranks after (or
/// with) its children.
fn sift_down(heap: &mut [Entry], mut i: usize) {
    let n = heap.len();
    loop {
        let l = 2 * i + 1;
        if l >= n {
            return;
        }
        let r = l + 1;
        let c = if r < n && rank_desc(&heap[r], &heap[l]) == Ordering::Greater { r } else { l };
        if rank_desc(&heap[c], &heap[i]) == Ordering::Greater {
            heap.swap(c, i);
            i = c;
        } else {
            return;
        }
    }
}

/// Extends a sorted prefix: given `buf[..start]` already holding, in order,
/// the `start` first elements of `buf` under `cmp`, makes `buf[..end]` hold
/// the `end` first. Costs a selection over `buf[start..]` and a sort of
/// `end - start` elements, so a walk that stops early never sorts the rest.
pub(crate) fn sort_next<T>(
    buf: &mut [T],
    start: usize,
    end: usize,
    mut cmp: impl FnMut(&T, &T) -> Ordering,
) {
    let len = buf.len();
    let end = end.min(len);
    if start >= end {
        return;
    }
    if end < len {
        buf[start..].select_nth_unstable_by(end - start - 1, &mut cmp);
    }
    buf[start..end].sort_unstable_by(cmp);
}

/// Walks `buf` in the order `cmp` to the first rank at which a monotone
/// stopping rule holds, sorting as little of `buf` as it can.
///
/// `stop(i, before, through)` is asked about rank `i`, where `before` is the
/// total `weight` of the ranks above `i` and `through = before + weight(i)`;
/// once it holds for a rank it must hold for every later one. Returns the
/// first rank where it holds, or `buf.len()` when none does.
///
/// Afterwards `buf[..r]` holds exactly the `r` first ranks, for the returned
/// `r`, and `buf[..head.min(r)]` holds them in order; nothing is promised
/// about the order after `head`.
///
/// The first `head` ranks are selected, sorted and walked one by one (most
/// walks end there). Beyond them, the boundary is bracketed by galloping
/// (pivots 4, 16, 64, ... times `head` further) and then bisected, with a
/// selection at each pivot and the weights of the ranks above it summed, so
/// a boundary far down the ranking costs a few selections, not a sort; the
/// last `head` ranks of the bracket are sorted and walked.
pub(crate) fn first_stop<T>(
    buf: &mut [T],
    head: usize,
    cmp: impl Fn(&T, &T) -> Ordering + Copy,
    weight: impl Fn(&T) -> f64,
    stop: impl Fn(usize, f64, f64) -> bool,
) -> usize {
    let len = buf.len();
    let head = head.max(1);
    let walk = |buf: &[T], from: usize, to: usize, mut before: f64| {
        for (i, entry) in buf.iter().enumerate().take(to).skip(from) {
            let through = before + weight(entry);
            if stop(i, before, through) {
                return (Some(i), before);
            }
            before = through;
        }
        (None, before)
    };
    let first = head.min(len);
    sort_next(buf, 0, first, cmp);
    let (found, mut before) = walk(buf, 0, first, 0.0);
    if let Some(i) = found {
        return i;
    }
    // The answer lies in [lo, hi]: everything in buf[..lo] ranks above
    // buf[lo..hi], which ranks above buf[hi..]; `before` weighs buf[..lo].
    let (mut lo, mut hi) = (first, len);
    let mut step = Some(4 * head);
    while hi - lo > head {
        let mid = match step {
            Some(s) => (lo + s).min(hi - 1),
            None => lo + (hi - lo) / 2,
        };
        buf[lo..hi].select_nth_unstable_by(mid - lo, cmp);
        let above = before + buf[lo..mid].iter().map(&weight).sum::<f64>();
        let through = above + weight(&buf[mid]);
        if stop(mid, above, through) {
            hi = mid;
            step = None;
        } else {
            before = through;
            lo = mid + 1;
            step = step.map(|s| s.saturating_mul(4));
        }
    }
    buf[lo..hi].sort_unstable_by(cmp);
    walk(buf, lo, hi, before).0.unwrap_or(hi)
}

/// Helpers for the unit tests of the processors.
#[cfg(test)]
pub(crate) mod testing {
    use crate::{Context, LogitsProcessor, Scores, TokenId};

    /// Logits whose softmax is `probs`: `f32(ln p)`.
    pub(crate) fn logits(probs: &[f64]) -> Vec<f32> {
        probs.iter().map(|p| p.ln() as f32).collect()
    }

    /// Runs `p` on a copy of `row`; returns the processed dense row.
    pub(crate) fn processed(p: &mut impl LogitsProcessor, row: &[f32]) -> Vec<f32> {
        let mut out = row.to_vec();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut out, &mut live);
        p.process(&Context::empty(), &mut scores).expect("processing failed");
        scores.densify();
        out
    }

    /// The ids whose processed score is finite, ascending.
    pub(crate) fn survivors(p: &mut impl LogitsProcessor, row: &[f32]) -> Vec<TokenId> {
        processed(p, row)
            .iter()
            .enumerate()
            .filter(|(_, x)| x.is_finite())
            .map(|(i, _)| i as TokenId)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

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

    #[test]
    fn top_n_ranks_by_score_then_higher_id() {
        let mut row = vec![1.0, 3.0, NEG, 3.0, 2.0, 1.0, 0.0];
        let mut live = Vec::new();
        let scores = Scores::new(&mut row, &mut live);
        let mut out = Vec::new();
        top_n(&scores, 4, &mut out);
        assert_eq!(out, [(3.0, 3), (3.0, 1), (2.0, 4), (1.0, 5)]);
        top_n(&scores, 100, &mut out);
        assert_eq!(out.len(), 6); // the masked token is never returned
        top_n(&scores, 0, &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn top_n_reads_a_sorted_live_set() {
        let mut row = vec![1.0, 3.0, NEG, 3.0, 2.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        scores.sort_live();
        let mut out = Vec::new();
        top_n(&scores, 2, &mut out);
        assert_eq!(out, [(3.0, 3), (3.0, 1)]);
        top_n(&scores, 10, &mut out);
        assert_eq!(out, [(3.0, 3), (3.0, 1), (2.0, 4), (1.0, 0)]);
    }

    #[test]
    fn first_stop_finds_the_boundary_a_full_walk_finds() {
        // Weights 1..=n in a scrambled order, ranked by weight descending;
        // stop where the mass before a rank reaches a target.
        for n in [1usize, 5, 300, 2000, 20_000] {
            let items: Vec<u32> = (0..n as u32).map(|i| (i * 7919 + 13) % n as u32 + 1).collect();
            let total = n as f64 * (n as f64 + 1.0) / 2.0;
            for frac in [0.0, 0.01, 0.3, 0.9, 0.999, 1.0, 2.0] {
                let target = total * frac;
                // Naive: sort everything, walk.
                let mut sorted = items.clone();
                sorted.sort_unstable_by(|a, b| b.cmp(a));
                let mut before = 0.0;
                let mut expected = n;
                for (i, &w) in sorted.iter().enumerate() {
                    if before >= target {
                        expected = i;
                        break;
                    }
                    before += f64::from(w);
                }
                let mut buf = items.clone();
                let got = first_stop(
                    &mut buf,
                    16,
                    |a, b| b.cmp(a),
                    |&w| f64::from(w),
                    |_, before, _| before >= target,
                );
                assert_eq!(got, expected, "n = {n}, frac = {frac}");
                let mut head = buf[..got].to_vec();
                head.sort_unstable_by(|a, b| b.cmp(a));
                assert_eq!(head, sorted[..got], "the first ranks, n = {n}, frac = {frac}");
                assert_eq!(buf[..got.min(16)], sorted[..got.min(16)], "the head in order");
            }
        }
    }

    #[test]
    fn sort_next_extends_a_sorted_prefix() {
        let mut buf: Vec<u32> = (0..1000).map(|i| (i * 7919) % 1000).collect();
        sort_next(&mut buf, 0, 10, |a, b| a.cmp(b));
        assert_eq!(buf[..10], (0..10).collect::<Vec<_>>()[..]);
        sort_next(&mut buf, 10, 50, |a, b| a.cmp(b));
        assert_eq!(buf[..50], (0..50).collect::<Vec<_>>()[..]);
        sort_next(&mut buf, 50, 5000, |a, b| a.cmp(b));
        assert_eq!(buf, (0..1000).collect::<Vec<_>>());
    }
}
