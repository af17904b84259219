//! Selection of the highest-ranked live tokens, and candidate gathering.

use std::cmp::Ordering;

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
