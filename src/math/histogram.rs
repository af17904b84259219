//! The probability mass of the live tokens by score, in buckets of equal
//! width along `max - x`, filled by the normalizer's own pass: a cut by
//! mass (top-p) is located in it without sorting anything.

use super::{EXP_LANES, Entry, VisitWeights, sum_exp_ids_visit, sum_exp_visit};
use crate::{Scores, TokenId};

/// Buckets per unit of `max - x`: the weights within one bucket differ by
/// a factor of at most `e^(1/64)`, 1.6%.
const SCALE: f32 = 64.0;

/// Buckets along `max - x` in `[0, 32)`, the first and the last half as
/// wide as the others (see [`bucket_of`]). A token below `max - 31.99`
/// weighs less than `1.3e-14` of the maximum's weight and goes to a
/// catch-all.
pub(crate) const BUCKETS: usize = 2048;
const _: () = assert!(BUCKETS.is_power_of_two());

/// A score's bucket: `(max - x)·64` rounded to the nearest integer, or
/// `BUCKETS` (the catch-all) from `BUCKETS - 0.5` on (`-inf` among them).
/// Monotone: a higher score never has a higher bucket, so all of a bucket
/// ranks above all of a later one whatever the rounding, and scores whose
/// differences to the maximum collide share a bucket. Float arithmetic and
/// one integer subtraction only (adding `2^23` rounds a value of `[0,
/// 2048]` to an integer and leaves that integer in the low bits), so that 8
/// buckets are computed at once in vector registers. Every pass computes it
/// with this one function.
#[inline(always)]
fn bucket_of(x: f32, m: f32) -> u32 {
    const ROUND: f32 = 8_388_608.0; // 2^23
    let y = (m - x) * SCALE;
    // A comparison, not `min`: NaN (never produced by live scores) and
    // `+inf` go to the catch-all. `x <= m`, so `y >= 0`.
    let y = if y < BUCKETS as f32 { y } else { BUCKETS as f32 };
    (y + ROUND).to_bits() - ROUND.to_bits()
}

/// The slots of the histogram: `BUCKETS` buckets, one catch-all per lane,
/// rounded up to a power of two so that an index is masked, not checked.
const SLOTS: usize = (BUCKETS + EXP_LANES).next_power_of_two();

/// The masses of the live tokens in the buckets of [`bucket_of`], and the
/// normalizer summed in the same pass.
#[derive(Debug, Clone)]
pub(crate) struct MassHistogram {
    /// `BUCKETS` buckets, then one catch-all per lane of the pass (so that
    /// a run of masked tokens does not chain its additions on one slot),
    /// then unused slots up to `SLOTS`.
    masses: Box<[f64; SLOTS]>,
}

impl Default for MassHistogram {
    fn default() -> Self {
        MassHistogram { masses: Box::new([0.0; SLOTS]) }
    }
}

impl MassHistogram {
    /// Fills the buckets with the weights `exp(x - m)` of the live tokens
    /// (`m` the maximum live score, finite) and returns their sum `z`,
    /// bit for bit the normalizer of [`normalizer`](super::normalizer):
    /// the weights are those of its pass, summed in its order. No
    /// allocation once the buckets exist.
    pub(crate) fn fill(&mut self, scores: &Scores<'_>, m: f32) -> f64 {
        self.masses[..BUCKETS + EXP_LANES].fill(0.0);
        let add = &mut AddWeights { masses: &mut self.masses, m };
        match scores.live_ids() {
            Some(ids) => sum_exp_ids_visit(scores.values(), ids, m, add),
            None => sum_exp_visit(scores.values(), m, add),
        }
    }

    /// The masses of the buckets, highest scores first (the catch-all
    /// excluded).
    pub(crate) fn masses(&self) -> &[f64] {
        &self.masses[..BUCKETS]
    }
}

/// The histogram's share of the normalizer's pass.
struct AddWeights<'a> {
    masses: &'a mut [f64; SLOTS],
    m: f32,
}

impl VisitWeights for AddWeights<'_> {
    /// Adds 8 weights to their buckets: the slots first, 8 at a time in
    /// vector registers (lane `j`'s catch-all is `BUCKETS + j`), then the
    /// additions.
    #[inline(always)]
    fn visit(&mut self, x: &[f32; EXP_LANES], w: &[f32; EXP_LANES]) {
        let mut slot = [0u32; EXP_LANES];
        for (j, (s, &x)) in slot.iter_mut().zip(x).enumerate() {
            // The catch-all, `BUCKETS`, becomes `BUCKETS + j`.
            let b = bucket_of(x, self.m);
            *s = b + (b >> BUCKETS.trailing_zeros()) * j as u32;
        }
        for (&s, &w) in slot.iter().zip(w) {
            // `s < BUCKETS + EXP_LANES <= SLOTS`: the mask only spares the
            // bounds check.
            self.masses[s as usize & (SLOTS - 1)] += f64::from(w);
        }
    }
}

/// Splits the live tokens at `bucket`: the ids of the buckets before it
/// go to the front of `above`, in live-set order (id order before
/// truncation), and the tokens of `bucket` itself to `edge` (cleared
/// first); returns how many ids of `above` are valid (its length may be
/// larger: the buffer keeps its size from call to call, so that it is
/// never refilled). `m` is the maximum the buckets were filled with.
///
/// On a dense row, 8 scores at a time are tested with a vectorizable
/// comparison; a chunk holding a token at or above the bucket is written
/// branch-free into `above` (every lane written, the count advancing for
/// the tokens kept), and only a chunk holding a token of the bucket itself
/// is looked at lane by lane.
pub(crate) fn split_at_bucket(
    scores: &Scores<'_>,
    m: f32,
    bucket: usize,
    above: &mut Vec<TokenId>,
    edge: &mut Vec<Entry>,
) -> usize {
    debug_assert!(bucket < BUCKETS);
    edge.clear();
    // Signed, so that the comparisons vectorize on the baseline target
    // (buckets are at most `BUCKETS`).
    let at = bucket as i32;
    let values = scores.values();
    if let Some(ids) = scores.live_ids() {
        above.clear();
        for &id in ids {
            let x = values[id as usize];
            let b = bucket_of(x, m) as i32;
            if b < at {
                above.push(id);
            } else if b == at {
                edge.push((x, id));
            }
        }
        return above.len();
    }
    const CHUNK: usize = 8;
    if above.len() < values.len() + CHUNK {
        above.resize(values.len() + CHUNK, 0);
    }
    let mut count = 0;
    let mut chunks = values.chunks_exact(CHUNK);
    for (c, chunk) in chunks.by_ref().enumerate() {
        let mut b = [0i32; CHUNK];
        for (b, &x) in b.iter_mut().zip(chunk) {
            *b = bucket_of(x, m) as i32;
        }
        // Counts, not early exits: branch-free reductions.
        let (mut upto, mut before) = (0u32, 0u32);
        for &b in &b {
            upto += u32::from(b <= at);
            before += u32::from(b < at);
        }
        if upto != 0 {
            let base = c * CHUNK;
            let out = &mut above[count..count + CHUNK];
            let mut n = 0;
            for (i, &b) in b.iter().enumerate() {
                out[n] = (base + i) as TokenId;
                n += usize::from(b < at);
            }
            count += n;
            if upto > before {
                for (i, &b) in b.iter().enumerate() {
                    if b == at {
                        edge.push((chunk[i], (base + i) as TokenId));
                    }
                }
            }
        }
    }
    let base = values.len() - chunks.remainder().len();
    for (i, &x) in chunks.remainder().iter().enumerate() {
        let b = bucket_of(x, m) as i32;
        if b < at {
            above[count] = (base + i) as TokenId;
            count += 1;
        } else if b == at {
            edge.push((x, (base + i) as TokenId));
        }
    }
    count
}

/// The share of a dense row in the buckets before `bucket`, estimated from
/// 1024 evenly spaced scores: whether it is at least one in `at_least`.
pub(crate) fn wide_before(values: &[f32], m: f32, bucket: usize, at_least: usize) -> bool {
    const PROBES: usize = 1024;
    let n = PROBES.min(values.len());
    if n == 0 {
        return false;
    }
    let at = bucket as u32;
    let before = (0..n).filter(|&i| bucket_of(values[i * values.len() / n], m) < at).count();
    before * at_least >= n
}

/// [`split_at_bucket`] on a dense row, in place: every token of a bucket
/// after `bucket` is set to `-inf` (the row stays dense, and its processed
/// scores are those of the truncation), the tokens of `bucket` itself go to
/// `edge` (cleared first); returns the number of tokens before `bucket`.
/// One pass of vectorizable selects, no list of ids: the path of wide
/// nuclei, whose lists would cost more to write and to read than the dense
/// row.
pub(crate) fn mask_after_bucket(
    values: &mut [f32],
    m: f32,
    bucket: usize,
    edge: &mut Vec<Entry>,
) -> usize {
    debug_assert!(bucket < BUCKETS);
    edge.clear();
    let at = bucket as i32;
    const CHUNK: usize = 8;
    let base = values.len() - values.len() % CHUNK;
    let mut count = 0;
    let mut chunks = values.chunks_exact_mut(CHUNK);
    for (c, chunk) in chunks.by_ref().enumerate() {
        let mut b = [0i32; CHUNK];
        for (b, &x) in b.iter_mut().zip(chunk.iter()) {
            *b = bucket_of(x, m) as i32;
        }
        let (mut upto, mut before) = (0u32, 0u32);
        for &b in &b {
            upto += u32::from(b <= at);
            before += u32::from(b < at);
        }
        count += before as usize;
        if upto > before {
            for (i, &b) in b.iter().enumerate() {
                if b == at {
                    edge.push((chunk[i], (c * CHUNK + i) as TokenId));
                }
            }
        }
        // Bit masks, not a branch per lane: the compiler keeps the select
        // in vector registers.
        for (x, &b) in chunk.iter_mut().zip(&b) {
            let keep = 0u32.wrapping_sub(u32::from(b <= at));
            *x = f32::from_bits((x.to_bits() & keep) | (f32::NEG_INFINITY.to_bits() & !keep));
        }
    }
    for (i, x) in chunks.into_remainder().iter_mut().enumerate() {
        let b = bucket_of(*x, m) as i32;
        if b < at {
            count += 1;
        } else if b == at {
            edge.push((*x, (base + i) as TokenId));
        } else {
            *x = f32::NEG_INFINITY;
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::{exp, normalizer};

    const NEG: f32 = f32::NEG_INFINITY;

    /// The naive bucket of a score: `(m - x)·64` rounded to the nearest
    /// integer (ties to even), or `None` for the catch-all.
    fn naive_bucket(x: f32, m: f32) -> Option<usize> {
        let b = ((m - x) * 64.0).round_ties_even();
        (b < BUCKETS as f32).then_some(b as usize)
    }

    /// The next float below `x`.
    fn next_down(x: f32) -> f32 {
        if x > 0.0 {
            f32::from_bits(x.to_bits() - 1)
        } else if x == 0.0 {
            -f32::from_bits(1)
        } else {
            f32::from_bits(x.to_bits() + 1)
        }
    }

    fn rows() -> Vec<Vec<f32>> {
        let mut rows = vec![
            (0..5000).map(|i| ((i * 7919 % 4999) as f32 * 0.013).sin() * 20.0).collect(),
            vec![1.5; 300],
            // Exactly on bucket edges (half-way between two integer
            // positions: a tie of the rounding), and one ulp either side.
            (0..3000)
                .map(|i| {
                    let edge = 10.0 - ((i / 3) as f32 + 0.5) / 64.0;
                    match i % 3 {
                        0 => next_down(edge),
                        1 => edge,
                        _ => -next_down(-edge),
                    }
                })
                .collect(),
            (0..1000).map(|i| if i % 3 == 0 { NEG } else { -(i as f32) * 0.05 }).collect(),
            vec![3e38, -3e38, 0.0, NEG, -1e30, 3e38 - 1e32],
        ];
        // Consecutive floats: differences to the maximum collide.
        rows.push((0..2000u32).map(|j| f32::from_bits(3.0f32.to_bits() + j)).collect());
        rows
    }

    #[test]
    fn fill_sums_the_normalizer_and_buckets_every_weight() {
        let mut hist = MassHistogram::default();
        for mut row in rows() {
            let original = row.clone();
            let mut live = Vec::new();
            let mut scores = Scores::new(&mut row, &mut live);
            for pass in 0..2 {
                if pass == 1 {
                    // An unsorted live set: every id but the multiples of 3.
                    scores.retain(|id, _| id % 3 != 0);
                }
                let (m, z) = normalizer(&scores);
                let got = hist.fill(&scores, m);
                assert_eq!(got.to_bits(), z.to_bits(), "the normalizer, bit for bit");
                let mut want = vec![0.0f64; BUCKETS];
                scores.for_each_live(|_, x| {
                    if let Some(b) = naive_bucket(x, m) {
                        want[b] += f64::from(exp(x - m));
                    }
                });
                for (b, (&got, &want)) in hist.masses().iter().zip(&want).enumerate() {
                    assert!((got - want).abs() <= 1e-12 * z, "bucket {b}: {got} vs {want}");
                }
                // The bucket of the maximum holds at least its weight, 1.
                assert!(hist.masses()[0] >= 1.0);
                // Split at a few buckets: exactly the naive partition.
                for bucket in [0, 1, 63, 64, 100, 640, 1280, BUCKETS - 1] {
                    let (mut above, mut edge) = (Vec::new(), Vec::new());
                    let n = split_at_bucket(&scores, m, bucket, &mut above, &mut edge);
                    above.truncate(n);
                    let mut want_above = Vec::new();
                    let mut want_edge = Vec::new();
                    scores.for_each_live(|id, x| match naive_bucket(x, m) {
                        Some(b) if b < bucket => want_above.push(id),
                        Some(b) if b == bucket => want_edge.push((x, id)),
                        _ => {}
                    });
                    assert_eq!(above, want_above, "bucket {bucket}, pass {pass}");
                    assert_eq!(edge, want_edge, "bucket {bucket}, pass {pass}");
                    for &id in &above {
                        assert_eq!(scores.get(id), Some(original[id as usize]));
                    }
                }
            }
        }
    }

    #[test]
    fn a_higher_score_never_falls_in_a_later_bucket() {
        // Consecutive floats around the maximum and far below it.
        let m = 7.25f32;
        for start in [m, 6.0, 1e-40, -24.0, -24.8] {
            let (mut x, mut prev) = (start, bucket_of(start, m));
            for _ in 0..50_000 {
                x = next_down(x);
                let b = bucket_of(x, m);
                assert!(b >= prev, "{x}");
                assert_eq!(Some(b as usize), naive_bucket(x, m).or(Some(BUCKETS)), "{x}");
                prev = b;
            }
        }
        assert_eq!(bucket_of(m, m), 0);
        assert_eq!(bucket_of(NEG, m), BUCKETS as u32);
        assert_eq!(bucket_of(-3e38, 3e38), BUCKETS as u32);
    }
}
