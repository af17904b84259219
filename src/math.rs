//! Numeric kernels shared by processors and samplers.
//!
//! Reductions are written over fixed-width lanes so that the compiler can
//! vectorize them on the baseline target (SSE2 on x86-64, no
//! `target-cpu=native`); each one documents its summation order, because the
//! order decides the last bits of a result.
//!
//! Every softmax in the crate takes its exponentials from [`exp`], a
//! branch-free polynomial that the compiler vectorizes, instead of the
//! scalar `f32::exp` of the platform's libm.

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

/// The maximum of a row after checking it: one pass computes the maximum
/// and a flag for NaN or `+inf`; only a flagged row is scanned again, to
/// name the first offender. `-inf` for a row of `-inf` only.
///
/// # Errors
///
/// [`Error::EmptyRow`], or [`Error::InvalidLogit`] naming the first NaN or
/// `+inf` entry (exactly as [`check_row`]).
pub(crate) fn max_checked(row: &[f32]) -> Result<f32, Error> {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut flagged = false;
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = if x > *a { x } else { *a };
        }
        // `!(x <= MAX)` holds for NaN and +inf only.
        let mut bad = false;
        for &x in chunk {
            bad |= !(x <= f32::MAX);
        }
        flagged |= bad;
    }
    let mut m = f32::NEG_INFINITY;
    for &x in acc.iter().chain(chunks.remainder()) {
        flagged |= !(x <= f32::MAX);
        if x > m {
            m = x;
        }
    }
    if flagged || row.is_empty() {
        check_row(row)?;
    }
    Ok(m)
}

/// The first index holding exactly `x` (never a NaN), scanning 64 entries
/// at a time with a vectorizable test and locating the hit only inside the
/// chunk that has one.
pub(crate) fn position_of(row: &[f32], x: f32) -> Option<usize> {
    const CHUNK: usize = 64;
    let mut chunks = row.chunks_exact(CHUNK);
    for (c, chunk) in chunks.by_ref().enumerate() {
        let mut hit = false;
        for &y in chunk {
            hit |= y == x;
        }
        if hit {
            return chunk.iter().position(|&y| y == x).map(|i| c * CHUNK + i);
        }
    }
    let base = row.len() - chunks.remainder().len();
    chunks.remainder().iter().position(|&y| y == x).map(|i| base + i)
}

/// The highest entry that is not NaN and above `-inf`, and the lowest index
/// holding it: a maximum pass, then a scan that stops at the first match.
pub(crate) fn argmax(row: &[f32]) -> Option<(usize, f32)> {
    let m = max(row);
    if m == f32::NEG_INFINITY {
        return None;
    }
    position_of(row, m).map(|i| (i, m))
}

/// The largest `|x|` over the entries above `-inf` (0 for none; NaN
/// entries are ignored).
pub(crate) fn max_abs_finite(row: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            let y = if x > f32::NEG_INFINITY { x.abs() } else { 0.0 };
            *a = if y > *a { y } else { *a };
        }
    }
    let mut m = 0.0f32;
    for &x in acc.iter().chain(chunks.remainder()) {
        let y = if x > f32::NEG_INFINITY { x.abs() } else { 0.0 };
        if y > m {
            m = y;
        }
    }
    m
}

/// `e^x` in f32, accurate to 1 ulp over the whole normal range (checked
/// against the correctly rounded value in the tests), with gradual
/// underflow into the subnormals and `0` below about `-103.97` as libm's
/// `expf`; `+inf` above about `88.72`, `0` for `-inf`, NaN for NaN.
///
/// Branch-free so that loops over it vectorize: `x = n·ln 2 + r` with `n`
/// the nearest integer to `x·log2(e)` (the 1.5·2^23 rounding trick) and
/// `|r| <= ln(2)/2` (`ln 2` split in two parts, so `n·ln2_hi` is exact);
/// `e^r = 1 + r + r²·P(r)` with a degree-5 polynomial fitted for relative
/// error (1.2e-9 on the interval, far below the f32 rounding); the result
/// is scaled by `2^n` in two steps, `2^(n/2)` then `2^(n - n/2)`, so that
/// neither factor leaves the normal range.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23
    const LN2_HI: f32 = 0.693_359_4; // 355 / 512
    const LN2_LO: f32 = -2.121_944_4e-4; // ln 2 - LN2_HI
    // Comparisons, not `max`/`min`, so that a NaN stays NaN.
    let x = if x < -104.0 { -104.0 } else { x };
    let x = if x > 89.0 { 89.0 } else { x };
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let nf = t - ROUND;
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = x - nf * LN2_HI - nf * LN2_LO;
    let p = 1.982_591_2e-4f32;
    let p = p * r + 1.394_597_5e-3;
    let p = p * r + 8.333_431e-3;
    let p = p * r + 4.166_627e-2;
    let p = p * r + 1.666_666_6e-1;
    let p = p * r + 0.5;
    let y = p * (r * r) + r + 1.0;
    let n1 = n >> 1;
    let n2 = n - n1;
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    y * s1 * s2
}

/// Checks that no entry is NaN or `+inf`, naming the first offender.
pub(crate) fn check_row(row: &[f32]) -> Result<(), Error> {
    if row.is_empty() {
        return Err(Error::EmptyRow);
    }
    // Vectorizable scan, one flag per 64 entries (`!(x <= MAX)` holds for
    // NaN and +inf only); the offender is located only in a flagged chunk.
    const CHUNK: usize = 64;
    let mut chunks = row.chunks_exact(CHUNK);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut bad = false;
        for &x in chunk {
            bad |= !(x <= f32::MAX);
        }
        if bad {
            if let Some(e) = first_invalid(chunk, base) {
                return Err(e);
            }
        }
        base += CHUNK;
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

/// Lanes of the exponential sums.
const EXP_LANES: usize = 8;

/// `Σ exp(x - m)` over a row ([`exp`] in f32, every term added in f64).
///
/// Summation order: 8 lanes; lane `j` accumulates the entries `j, j + 8,
/// ...` in f64; the lanes are added in order, then the tail (fewer than 8
/// entries) one by one. Each chunk's eight exponentials are computed into
/// an f32 array before they are widened and added, which keeps the
/// exponentials vectorized.
pub(crate) fn sum_exp(row: &[f32], m: f32) -> f64 {
    let mut acc = [0.0f64; EXP_LANES];
    let mut chunks = row.chunks_exact(EXP_LANES);
    for chunk in &mut chunks {
        let mut w = [0.0f32; EXP_LANES];
        for (w, &x) in w.iter_mut().zip(chunk) {
            *w = exp(x - m);
        }
        for (a, &w) in acc.iter_mut().zip(&w) {
            *a += f64::from(w);
        }
    }
    let mut total = 0.0f64;
    for a in acc {
        total += a;
    }
    for &x in chunks.remainder() {
        total += f64::from(exp(x - m));
    }
    total
}

/// `Σ exp(x_id - m)` over the listed ids, in list order, accumulated in f64.
pub(crate) fn sum_exp_ids(row: &[f32], ids: &[TokenId], m: f32) -> f64 {
    ids.iter().map(|&id| f64::from(exp(row[id as usize] - m))).sum()
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

/// The live tokens scoring at least `τ`, the `n`-th highest live score
/// (so every token tied with it too), in no particular order; returns `τ`,
/// which is `-inf` when fewer than `n` tokens are live (and then every live
/// token is returned). `n` must be at least 1. `-inf` scores count as
/// scores: they are returned when `τ = -inf`.
///
/// One pass with a running threshold: an `n`-entry min-heap of values holds
/// the `n` highest scores seen so far, its root is the running threshold,
/// and a token is kept as a candidate when it scores at least the threshold
/// at the time it is seen; the candidates are compacted against the current
/// threshold whenever they outgrow their bound. On a dense row the pass
/// tests 16 scores at a time against the threshold with a vectorizable
/// comparison and looks at single tokens only in the rare chunk that holds
/// a candidate. Costs `O(V)` plus `O(n log n · log(V/n))` expected on
/// unordered input. `heap` and `out` are scratch buffers, reused.
pub(crate) fn top_candidates(
    scores: &Scores<'_>,
    n: usize,
    heap: &mut Vec<f32>,
    out: &mut Vec<Entry>,
) -> f32 {
    debug_assert!(n >= 1);
    let mut sel = Selection { n, heap, out, threshold: f32::NEG_INFINITY, bound: (4 * n).max(256) };
    sel.heap.clear();
    sel.out.clear();
    match scores.live_ids() {
        Some(ids) => {
            let values = scores.values();
            for &id in ids {
                sel.offer(values[id as usize], id);
            }
        }
        None => {
            let mut chunks = scores.values().chunks_exact(LANES);
            let mut base = 0;
            for chunk in &mut chunks {
                let t = sel.threshold;
                let mut hit = false;
                for &x in chunk {
                    hit |= x >= t;
                }
                if hit {
                    for (i, &x) in chunk.iter().enumerate() {
                        if x >= sel.threshold {
                            sel.take(x, (base + i) as TokenId);
                        }
                    }
                }
                base += LANES;
            }
            for (i, &x) in chunks.remainder().iter().enumerate() {
                sel.offer(x, (base + i) as TokenId);
            }
        }
    }
    let threshold = sel.threshold;
    sel.out.retain(|e| e.0 >= threshold);
    threshold
}

/// Collects into `out` (cleared first) every live token with
/// `cut <= x - m < below`, in live-set order (id order before truncation).
///
/// On a dense row, 8 scores at a time are tested with a vectorizable
/// comparison; a chunk with a hit is gathered branch-free (every entry is
/// written, the count advances only for the tokens kept). No allocation
/// once `out` has grown.
pub(crate) fn gather_between(
    scores: &Scores<'_>,
    m: f32,
    cut: f32,
    below: f32,
    out: &mut Vec<Entry>,
) {
    out.clear();
    let values = scores.values();
    let inside = |x: f32| {
        let d = x - m;
        d >= cut && d < below
    };
    if let Some(ids) = scores.live_ids() {
        out.extend(ids.iter().map(|&id| (values[id as usize], id)).filter(|e| inside(e.0)));
        return;
    }
    const CHUNK: usize = 8;
    let mut count = 0;
    let mut chunks = values.chunks_exact(CHUNK);
    for (c, chunk) in chunks.by_ref().enumerate() {
        let mut hit = false;
        for &x in chunk {
            hit |= inside(x);
        }
        if hit {
            if out.len() < count + CHUNK {
                out.resize(count + CHUNK, (0.0, 0));
            }
            for (i, &x) in chunk.iter().enumerate() {
                out[count] = (x, (c * CHUNK + i) as TokenId);
                count += usize::from(inside(x));
            }
        }
    }
    out.truncate(count);
    let base = values.len() - chunks.remainder().len();
    for (i, &x) in chunks.remainder().iter().enumerate() {
        if inside(x) {
            out.push((x, (base + i) as TokenId));
        }
    }
}

/// The state of [`top_candidates`].
struct Selection<'s> {
    n: usize,
    heap: &'s mut Vec<f32>,
    out: &'s mut Vec<Entry>,
    /// The `n`-th highest score so far (`-inf` until `n` were seen).
    threshold: f32,
    /// Candidates held before the next compaction.
    bound: usize,
}

impl Selection<'_> {
    #[inline]
    fn offer(&mut self, x: f32, id: TokenId) {
        if x >= self.threshold {
            self.take(x, id);
        }
    }

    /// Keeps a token that scores at least the running threshold.
    #[inline(never)]
    fn take(&mut self, x: f32, id: TokenId) {
        self.out.push((x, id));
        let heap = &mut *self.heap;
        if heap.len() < self.n {
            heap.push(x);
            if heap.len() == self.n {
                for i in (0..self.n / 2).rev() {
                    sift_down_min(heap, i);
                }
                self.threshold = heap[0];
            }
        } else if x > heap[0] {
            heap[0] = x;
            sift_down_min(heap, 0);
            self.threshold = heap[0];
        }
        if self.out.len() > self.bound {
            let t = self.threshold;
            self.out.retain(|e| e.0 >= t);
            // Many ties at the threshold survive a compaction: grow the
            // bound so that compactions stay amortized O(1) per candidate.
            self.bound = self.bound.max(2 * self.out.len());
        }
    }
}

/// Restores the min-heap order (a parent at most its children) below `i`.
fn sift_down_min(heap: &mut [f32], mut i: usize) {
    let n = heap.len();
    loop {
        let l = 2 * i + 1;
        if l >= n {
            return;
        }
        let r = l + 1;
        let c = if r < n && heap[r] < heap[l] { r } else { l };
        if heap[c] < heap[i] {
            heap.swap(c, i);
            i = c;
        } else {
            return;
        }
    }
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

    /// Distance in units in the last place between two non-negative floats.
    fn ulps(a: f32, b: f32) -> u32 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn exp_is_within_one_ulp_of_the_correctly_rounded_value() {
        // Every 97th float of [-104, 89), against e^x in f64 rounded once.
        let mut worst = 0;
        for x in (0..u32::MAX / 97).map(|i| f32::from_bits(i * 97)) {
            for x in [x, -x] {
                if !(-104.0..89.0).contains(&x) {
                    continue;
                }
                let want = f64::from(x).exp() as f32;
                let got = exp(x);
                if want >= f32::MIN_POSITIVE && want.is_finite() {
                    worst = worst.max(ulps(got, want));
                } else {
                    // Gradual underflow: within one step of the subnormal grid.
                    assert!(ulps(got, want) <= 1, "exp({x}) = {got}, want {want}");
                }
            }
        }
        assert!(worst <= 1, "{worst} ulp");
    }

    #[test]
    fn exp_special_values() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(NEG), 0.0);
        assert_eq!(exp(-104.0), 0.0);
        assert_eq!(exp(-1e30), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        // The largest finite result and the smallest subnormal one.
        assert!(exp(88.72).is_finite() && exp(88.73) == f32::INFINITY);
        assert!(exp(-103.9) > 0.0 && exp(-103.9) < f32::MIN_POSITIVE);
    }

    #[test]
    fn sum_exp_matches_an_f64_reference() {
        for n in [0usize, 1, 7, 8, 9, 1000, 50_257] {
            let row: Vec<f32> = (0..n).map(|i| ((i * 7919 % 1013) as f32 - 900.0) / 37.0).collect();
            let m = max(&row);
            let want: f64 = row.iter().map(|&x| (f64::from(x) - f64::from(m)).exp()).sum();
            let got = sum_exp(&row, m);
            assert!((got - want).abs() <= 1e-6 * want, "n = {n}: {got} vs {want}");
        }
    }

    #[test]
    fn max_checked_finds_the_maximum_and_the_first_offender() {
        for n in [1usize, 15, 16, 17, 100, 1000] {
            let mut row: Vec<f32> = (0..n).map(|i| (i * 37 % 101) as f32 - 50.0).collect();
            let want = row.iter().copied().fold(NEG, f32::max);
            assert_eq!(max_checked(&row), Ok(want));
            for bad in [f32::NAN, f32::INFINITY] {
                for at in [0, n / 2, n - 1] {
                    row[at] = bad;
                    if at + 1 < n {
                        row[n - 1] = f32::NAN; // a later offender is not reported
                    }
                    assert!(
                        matches!(max_checked(&row), Err(Error::InvalidLogit { index, .. }) if index == at),
                        "n = {n}, at = {at}"
                    );
                    row = (0..n).map(|i| (i * 37 % 101) as f32 - 50.0).collect();
                }
            }
        }
        assert_eq!(max_checked(&[]), Err(Error::EmptyRow));
        assert_eq!(max_checked(&[NEG; 40]), Ok(NEG));
        assert_eq!(max_checked(&[NEG, -3e38, NEG]), Ok(-3e38));
    }

    #[test]
    fn argmax_returns_the_lowest_index_of_the_maximum() {
        for n in [1usize, 63, 64, 65, 200, 5000] {
            for at in [0, n / 3, n - 1] {
                let mut row: Vec<f32> = (0..n).map(|i| (i % 17) as f32).collect();
                row[at] = 100.0;
                row[n - 1] = 100.0; // a later tie
                assert_eq!(argmax(&row), Some((at, 100.0)), "n = {n}, at = {at}");
                row[at] = f32::NAN; // NaN is skipped, never chosen
                let mut want: Option<(usize, f32)> = None;
                for (i, &x) in row.iter().enumerate() {
                    if x > want.map_or(NEG, |w| w.1) {
                        want = Some((i, x));
                    }
                }
                assert_eq!(argmax(&row), want, "n = {n}, NaN at {at}");
            }
        }
        assert_eq!(argmax(&[NEG, NEG]), None);
        assert_eq!(argmax(&[]), None);
        assert_eq!(position_of(&[1.0, 2.0, 2.0], 2.0), Some(1));
        assert_eq!(position_of(&[1.0, 2.0], 3.0), None);
    }

    #[test]
    fn max_abs_finite_ignores_masks() {
        assert_eq!(max_abs_finite(&[NEG, -5.0, 3.0]), 5.0);
        assert_eq!(max_abs_finite(&[NEG; 33]), 0.0);
        let mut row = vec![1.0f32; 100];
        row[77] = -3e38;
        row[78] = NEG;
        assert_eq!(max_abs_finite(&row), 3e38);
    }

    /// The naive top candidates: the `n`-th highest live score and every
    /// live token at or above it (all live tokens when fewer than `n`).
    fn naive_candidates(values: &[f32], live: &[TokenId], n: usize) -> (f32, Vec<TokenId>) {
        let mut xs: Vec<f32> = live.iter().map(|&id| values[id as usize]).collect();
        xs.sort_by(|a, b| b.total_cmp(a));
        let t = if xs.len() >= n { xs[n - 1] } else { NEG };
        let mut ids: Vec<TokenId> =
            live.iter().copied().filter(|&id| values[id as usize] >= t).collect();
        ids.sort_unstable();
        (t, ids)
    }

    #[test]
    fn top_candidates_matches_a_full_sort() {
        let rows: Vec<Vec<f32>> = vec![
            (0..5000).map(|i| ((i * 7919 % 4999) as f32 * 0.013).sin() * 9.0).collect(),
            (0..3000).map(|i| (i % 7) as f32).collect(), // heavy ties at every level
            (0..2000).map(|i| i as f32).collect(),       // increasing: many compactions
            (0..2000).map(|i| -(i as f32)).collect(),    // decreasing
            vec![1.5; 4000],                             // one tie across the row
            (0..300).map(|i| if i % 3 == 0 { NEG } else { (i % 11) as f32 }).collect(),
            vec![NEG; 50],
            vec![2.0; 5],
        ];
        let mut heap = Vec::new();
        let mut out = Vec::new();
        for row in &rows {
            let mut values = row.clone();
            let all: Vec<TokenId> = (0..values.len() as TokenId).collect();
            let some: Vec<TokenId> = all.iter().copied().filter(|id| id % 5 != 1).collect();
            for n in [1usize, 2, 7, 50, 256, 4000, 10_000] {
                let mut live = Vec::new();
                let mut scores = Scores::new(&mut values, &mut live);
                let t = top_candidates(&scores, n, &mut heap, &mut out);
                let mut got: Vec<TokenId> = out.iter().map(|e| e.1).collect();
                got.sort_unstable();
                assert_eq!((t, got), naive_candidates(row, &all, n), "dense, n = {n}");
                assert!(out.iter().all(|e| e.0 == row[e.1 as usize]));

                scores.set_live(some.iter().copied(), false);
                let t = top_candidates(&scores, n, &mut heap, &mut out);
                let mut got: Vec<TokenId> = out.iter().map(|e| e.1).collect();
                got.sort_unstable();
                assert_eq!((t, got), naive_candidates(row, &some, n), "live set, n = {n}");
            }
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
