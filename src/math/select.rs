//! Selection of the highest-ranked live tokens, and candidate gathering.

use std::cmp::Ordering;

use super::heap::sift_down;
use super::{Entry, LANES, rank_desc};
use crate::{Scores, TokenId};

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
                    sift_down_ranked(out, i);
                }
            }
        } else if rank_desc(&(x, id), &out[0]) == Ordering::Less {
            out[0] = (x, id);
            sift_down_ranked(out, 0);
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
/// Two methods, both `O(V)`:
///
/// - For `n <= 256`, one pass with a running threshold: an `n`-entry
///   min-heap of values holds the `n` highest scores seen so far, its root
///   is the running threshold, and a token is kept as a candidate when it
///   scores at least the threshold at the time it is seen. On a dense row
///   the pass tests 16 scores at a time against the threshold with a
///   vectorizable comparison and looks at single tokens only in the rare
///   chunk that holds a candidate: on a row in no particular order about
///   `n·(1 + ln(V/n))` tokens enter the heap. A row whose order defeats the
///   running threshold (ascending scores, where every token enters) is
///   detected when more than `8n + 1024` tokens entered, and handed to the
///   second method.
/// - Otherwise, a threshold estimated from a sample ([`sampled_top`]): the
///   cost does not depend on `n` nor on the order of the row.
///
/// `scratch` and `out` are scratch buffers, reused.
pub(crate) fn top_candidates(
    scores: &Scores<'_>,
    n: usize,
    scratch: &mut Vec<f32>,
    out: &mut Vec<Entry>,
) -> f32 {
    debug_assert!(n >= 1);
    if n <= HEAP_LIMIT {
        if let Some(t) = heap_top(scores, n, scratch, out) {
            return t;
        }
    }
    sampled_top(scores, n, scratch, out)
}

/// Largest `n` selected with the running-threshold heap.
const HEAP_LIMIT: usize = 256;

/// Entries of the sample that [`sampled_top`] estimates its threshold from.
const SAMPLE: usize = 1024;

/// The running-threshold method of [`top_candidates`]; `None` when the
/// order of the row made too many tokens enter the heap.
fn heap_top(
    scores: &Scores<'_>,
    n: usize,
    heap: &mut Vec<f32>,
    out: &mut Vec<Entry>,
) -> Option<f32> {
    let budget = 8 * n + 1024;
    let mut sel =
        Selection { n, heap, out, threshold: f32::NEG_INFINITY, bound: (4 * n).max(256), budget };
    sel.heap.clear();
    sel.out.clear();
    match scores.live_ids() {
        Some(ids) => {
            let values = scores.values();
            for &id in ids {
                sel.offer(values[id as usize], id);
                if sel.budget == 0 {
                    return None;
                }
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
                    if sel.budget == 0 {
                        return None;
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
    Some(threshold)
}

/// [`top_candidates`] by an estimated threshold, whatever `n` and the order
/// of the row:
///
/// 1. `SAMPLE` (1024) live scores, evenly spaced along the live set, give
///    an estimate `t` that `n` tokens score at least: the sample's entry of
///    rank `S·q + 4·√(S·q) + 4` (from the top), with `q = n / live` the
///    fraction sought, four standard deviations below the expected rank.
/// 2. One pass gathers every live token scoring at least `t` (8 scores at a
///    time tested with a vectorizable comparison, hits gathered
///    branch-free). About `live · rank / S` tokens: a few times `n`, or a
///    few hundred for a small `n`.
/// 3. When at least `n` were gathered, `τ` is the `n`-th of them, found by
///    a selection (`select_nth_unstable`, linear); otherwise the estimate
///    was too high (a row built against the sample's spacing) and every
///    live token is gathered instead, which is still linear.
///
/// The result is exact in every case: the estimate only decides how many
/// tokens the selection looks at.
pub(crate) fn sampled_top(
    scores: &Scores<'_>,
    n: usize,
    sample: &mut Vec<f32>,
    out: &mut Vec<Entry>,
) -> f32 {
    let values = scores.values();
    let ids = scores.live_ids();
    let live = scores.live_len();
    out.clear();
    if live < n {
        gather_at_least(values, ids, f32::NEG_INFINITY, out);
        return f32::NEG_INFINITY;
    }
    // 1. The estimate.
    let s = SAMPLE.min(live);
    sample.clear();
    match ids {
        Some(ids) => sample.extend((0..s).map(|i| values[ids[i * live / s] as usize])),
        None => sample.extend((0..s).map(|i| values[i * live / s])),
    }
    let expected = s as f64 * n as f64 / live as f64;
    let rank = (expected + 4.0 * expected.sqrt() + 4.0).ceil() as usize;
    let t = if rank >= s {
        f32::NEG_INFINITY
    } else {
        *sample.select_nth_unstable_by(rank - 1, |a, b| b.total_cmp(a)).1
    };
    // 2. The candidates.
    gather_at_least(values, ids, t, out);
    if out.len() < n {
        out.clear();
        gather_at_least(values, ids, f32::NEG_INFINITY, out);
    }
    // 3. The n-th highest of them.
    let tau = out.select_nth_unstable_by(n - 1, |a, b| b.0.total_cmp(&a.0)).1.0;
    out.retain(|e| e.0 >= tau);
    tau
}

/// Appends to `out` every live token scoring at least `t`, in live-set
/// order. On a dense row, 8 scores at a time are tested with a
/// vectorizable comparison; a chunk with a hit is gathered branch-free.
fn gather_at_least(values: &[f32], ids: Option<&[TokenId]>, t: f32, out: &mut Vec<Entry>) {
    if let Some(ids) = ids {
        out.extend(ids.iter().map(|&id| (values[id as usize], id)).filter(|e| e.0 >= t));
        return;
    }
    const CHUNK: usize = 8;
    let mut count = out.len();
    let mut chunks = values.chunks_exact(CHUNK);
    for (c, chunk) in chunks.by_ref().enumerate() {
        let mut hit = false;
        for &x in chunk {
            hit |= x >= t;
        }
        if hit {
            if out.len() < count + CHUNK {
                out.resize(count + CHUNK, (0.0, 0));
            }
            for (i, &x) in chunk.iter().enumerate() {
                out[count] = (x, (c * CHUNK + i) as TokenId);
                count += usize::from(x >= t);
            }
        }
    }
    out.truncate(count);
    let base = values.len() - chunks.remainder().len();
    for (i, &x) in chunks.remainder().iter().enumerate() {
        if x >= t {
            out.push((x, (base + i) as TokenId));
        }
    }
}

/// Collects into `out` (cleared first) every live token with
/// `cut <= x - m` and `x < below`, in live-set order (id order before
/// truncation). The upper bound is a score, not a difference: scores below
/// `below` whose differences to `m` round to the same value are still told
/// apart from those at `below`.
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
    let inside = |x: f32| x - m >= cut && x < below;
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

/// Whether most of a row is masked (`-inf`), judged from 64 evenly spaced
/// entries (three quarters or more of them): then a pass that drops the
/// masked tokens first pays for itself. (At half, the list of ids cost more
/// than the dense pass it replaced: 0.94 against 0.81 F for temperature →
/// sample on a row half masked, V = 128256, `benches/peers`.)
pub(crate) fn mostly_masked(values: &[f32]) -> bool {
    const PROBES: usize = 64;
    if values.len() < 4 * PROBES {
        return false;
    }
    let step = values.len() / PROBES;
    let masked = (0..PROBES).filter(|&i| values[i * step] == f32::NEG_INFINITY).count();
    4 * masked >= 3 * PROBES
}

/// Writes to the front of `out` the ids of the entries of `values` above
/// `-inf`, in id order, and returns how many (the length of `out` may be
/// larger: the buffer keeps its size from call to call, so that it is never
/// refilled). Branch-free: every chunk of 8 ids is written, and the count
/// advances for the finite entries only.
pub(crate) fn finite_ids(values: &[f32], out: &mut Vec<TokenId>) -> usize {
    const CHUNK: usize = 8;
    if out.len() < values.len() + CHUNK {
        out.resize(values.len() + CHUNK, 0);
    }
    let mut count = 0;
    let mut chunks = values.chunks_exact(CHUNK);
    for (c, chunk) in chunks.by_ref().enumerate() {
        let dst = &mut out[count..count + CHUNK];
        let mut n = 0;
        for (i, &x) in chunk.iter().enumerate() {
            dst[n] = (c * CHUNK + i) as TokenId;
            n += usize::from(x > f32::NEG_INFINITY);
        }
        count += n;
    }
    let base = values.len() - chunks.remainder().len();
    for (i, &x) in chunks.remainder().iter().enumerate() {
        out[count] = (base + i) as TokenId;
        count += usize::from(x > f32::NEG_INFINITY);
    }
    count
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
    /// Tokens that may still enter before the row counts as adversarial.
    budget: usize,
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
        self.budget = self.budget.saturating_sub(1);
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

/// Restores the min-heap order of values (the lowest at the root) below `i`.
fn sift_down_min(heap: &mut [f32], i: usize) {
    sift_down(heap, i, |a, b| a < b);
}

/// Restores, below `i`, the heap order in which the lowest-ranked entry is
/// at the root ([`rank_desc`]).
fn sift_down_ranked(heap: &mut [Entry], i: usize) {
    sift_down(heap, i, |a, b| rank_desc(&a, &b) == Ordering::Greater);
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

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
            // The sampled positions (every 20th of 20480) hold the highest
            // scores, so the estimate from the sample is too high for a
            // large n and every token is gathered instead.
            (0..20_480).map(|i| if i % 20 == 0 { 100.0 } else { (i % 7) as f32 }).collect(),
            // ... and here they hold the lowest.
            (0..20_480).map(|i| if i % 20 == 0 { -1.0 } else { (i % 7) as f32 }).collect(),
            (0..20_000).map(|i| ((i * 7919 % 19_997) as f32).sqrt()).collect(),
        ];
        let mut heap = Vec::new();
        let mut out = Vec::new();
        for row in &rows {
            let mut values = row.clone();
            let all: Vec<TokenId> = (0..values.len() as TokenId).collect();
            let some: Vec<TokenId> = all.iter().copied().filter(|id| id % 5 != 1).collect();
            for n in [1usize, 2, 7, 50, 256, 257, 1000, 4000, 10_000] {
                let mut live = Vec::new();
                let mut scores = Scores::new(&mut values, &mut live);
                let t = top_candidates(&scores, n, &mut heap, &mut out);
                let mut got: Vec<TokenId> = out.iter().map(|e| e.1).collect();
                got.sort_unstable();
                assert_eq!((t, got), naive_candidates(row, &all, n), "dense, n = {n}");
                assert!(out.iter().all(|e| e.0 == row[e.1 as usize]));

                let t = sampled_top(&scores, n, &mut heap, &mut out);
                let mut got: Vec<TokenId> = out.iter().map(|e| e.1).collect();
                got.sort_unstable();
                assert_eq!((t, got), naive_candidates(row, &all, n), "dense, sampled, n = {n}");

                scores.set_live(some.iter().copied(), false);
                let t = top_candidates(&scores, n, &mut heap, &mut out);
                let mut got: Vec<TokenId> = out.iter().map(|e| e.1).collect();
                got.sort_unstable();
                assert_eq!((t, got), naive_candidates(row, &some, n), "live set, n = {n}");
                let t = sampled_top(&scores, n, &mut heap, &mut out);
                let mut got: Vec<TokenId> = out.iter().map(|e| e.1).collect();
                got.sort_unstable();
                assert_eq!((t, got), naive_candidates(row, &some, n), "live set, sampled, n = {n}");
            }
        }
    }

    #[test]
    fn finite_ids_and_mostly_masked() {
        for n in [0usize, 7, 8, 9, 300, 1000, 4099] {
            for every in [1usize, 2, 3, 10] {
                let finite = |i: usize| i % every == every - 1;
                let row: Vec<f32> =
                    (0..n).map(|i| if finite(i) { i as f32 } else { NEG }).collect();
                let mut out = vec![99];
                let count = finite_ids(&row, &mut out);
                out.truncate(count);
                let want: Vec<TokenId> =
                    (0..n).filter(|&i| finite(i)).map(|i| i as TokenId).collect();
                assert_eq!(out, want, "n = {n}, every = {every}");
                // Nothing or 90% masked (short rows are never judged).
                if every == 1 || every == 10 {
                    assert_eq!(mostly_masked(&row), n >= 256 && every == 10, "n = {n}");
                }
            }
        }
        // Masks without a period (which evenly spaced probes could alias):
        // a row is mostly masked from three quarters on, not at half.
        for (fraction, want) in [(0.5, false), (0.6, false), (0.9, true), (0.99, true)] {
            let mut state = 0x9e37_79b9_7f4a_7c15u64;
            let row: Vec<f32> = (0..50_000)
                .map(|i| {
                    state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    let u = (state >> 11) as f64 / (1u64 << 53) as f64;
                    if u < fraction { NEG } else { i as f32 }
                })
                .collect();
            assert_eq!(mostly_masked(&row), want, "{fraction} masked");
        }
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
}
