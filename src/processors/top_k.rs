//! Top-k truncation.

use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Keeps the `k` highest-scoring live tokens, **and every token tied with
/// the k-th score** (so more than `k` may survive).
///
/// Matches Hugging Face transformers' `TopKLogitsWarper`:
/// `k_eff = min(max(k, min_tokens_to_keep), V)`; the threshold is the
/// `k_eff`-th largest score of the row (counting removed tokens as `-inf`);
/// tokens scoring below it are removed. When fewer than `k_eff` tokens are
/// live, nothing changes. llama.cpp, candle and llm-samplers keep exactly
/// `k` and break ties arbitrarily; this crate follows transformers.
///
/// The survivors become the live set, sorted (score descending, higher id
/// first among ties), so that a following top-p needs no sort.
///
/// # Errors
///
/// [`TopK::new`] rejects `k = 0` (to disable top-k, leave it out of the
/// pipeline) and [`TopK::min_tokens_to_keep`] rejects 0.
///
/// # Performance
///
/// One pass over the live scores with a `k`-entry min-heap (`O(V log k)`
/// worst case, `O(V)` typical), one pass to collect the survivors, and a
/// sort of the survivors only. No allocation once the buffers have grown.
///
/// # Example
///
/// ```
/// use decoding::processors::TopK;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let mut row = vec![3.0, 2.0, 2.0, 1.0];
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// TopK::new(2)?.process(&Context::empty(), &mut scores)?;
/// assert_eq!(scores.live_ids(), Some(&[0, 2, 1][..])); // the tie at 2.0 is kept
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    min_tokens_to_keep: usize,
    heap: Vec<f32>,
}

impl TopK {
    /// Top-k with `k >= 1` and `min_tokens_to_keep = 1`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `k == 0`.
    pub fn new(k: usize) -> Result<Self, Error> {
        if k == 0 {
            return Err(Error::invalid("top_k", "at least 1 (leave top-k out to disable it)", k));
        }
        Ok(TopK { k, min_tokens_to_keep: 1, heap: Vec::new() })
    }

    /// Keeps at least `n` tokens (transformers' `min_tokens_to_keep`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `n == 0`.
    pub fn min_tokens_to_keep(mut self, n: usize) -> Result<Self, Error> {
        if n == 0 {
            return Err(Error::invalid("min_tokens_to_keep", "at least 1", n));
        }
        self.min_tokens_to_keep = n;
        Ok(self)
    }

    /// The `k` parameter.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The `k_eff`-th largest live score, or `None` when at most `k_eff`
    /// tokens are live (top-k is then a no-op).
    fn threshold(&mut self, scores: &Scores<'_>, k: usize) -> Option<f32> {
        if scores.live_len() <= k {
            return None;
        }
        let heap = &mut self.heap;
        heap.clear();
        scores.for_each_live(|_, x| {
            if heap.len() < k {
                heap.push(x);
                if heap.len() == k {
                    heapify(heap);
                }
            } else if x > heap[0] {
                heap[0] = x;
                sift_down(heap, 0);
            }
        });
        Some(heap[0])
    }
}

impl LogitsProcessor for TopK {
    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let k = self.k.max(self.min_tokens_to_keep).min(scores.vocab_size());
        let Some(threshold) = self.threshold(scores, k) else {
            return Ok(());
        };
        if threshold == f32::NEG_INFINITY {
            // Fewer than k finite scores: transformers removes nothing.
            return Ok(());
        }
        scores.retain(|_, x| x >= threshold);
        scores.rewrite_live(|values, live| {
            sort_desc(values, live);
            true
        });
        Ok(())
    }
}

/// Sorts ids by score descending, higher id first among ties.
pub(crate) fn sort_desc(values: &[f32], ids: &mut [TokenId]) {
    ids.sort_unstable_by(|&a, &b| {
        values[b as usize].total_cmp(&values[a as usize]).then(b.cmp(&a))
    });
}

fn heapify(heap: &mut [f32]) {
    for i in (0..heap.len() / 2).rev() {
        sift_down(heap, i);
    }
}

/// Restores the min-heap property below `i`.
fn sift_down(heap: &mut [f32], mut i: usize) {
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

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    fn apply(p: &mut TopK, row: &[f32]) -> Vec<f32> {
        let mut out = row.to_vec();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut out, &mut live);
        p.process(&Context::empty(), &mut scores).unwrap();
        scores.densify();
        out
    }

    #[test]
    fn keeps_the_k_best() {
        let mut p = TopK::new(2).unwrap();
        assert_eq!(apply(&mut p, &[5.0, 4.0, 3.0, 2.0]), [5.0, 4.0, NEG, NEG]);
        assert_eq!(apply(&mut p, &[0.1, 0.5, 0.3]), [NEG, 0.5, 0.3]);
    }

    #[test]
    fn keeps_every_tie_with_the_kth_value() {
        let mut p = TopK::new(2).unwrap();
        assert_eq!(apply(&mut p, &[3.0, 2.0, 2.0, 1.0]), [3.0, 2.0, 2.0, NEG]);
        assert_eq!(apply(&mut p, &[1.0, 1.0, 1.0, 0.0]), [1.0, 1.0, 1.0, NEG]);
    }

    #[test]
    fn k_at_or_above_the_vocabulary_is_the_identity() {
        let row = [0.3, -2.0, NEG, 7.0];
        for k in [4, 5, 1000] {
            assert_eq!(apply(&mut TopK::new(k).unwrap(), &row), row);
        }
    }

    #[test]
    fn fewer_finite_scores_than_k_removes_nothing_and_revives_nothing() {
        let mut p = TopK::new(3).unwrap();
        assert_eq!(apply(&mut p, &[0.0, NEG, NEG, NEG]), [0.0, NEG, NEG, NEG]);
    }

    #[test]
    fn min_tokens_to_keep_raises_k() {
        let mut p = TopK::new(1).unwrap().min_tokens_to_keep(3).unwrap();
        assert_eq!(apply(&mut p, &[1.0, 4.0, 3.0, 2.0]), [NEG, 4.0, 3.0, 2.0]);
    }

    #[test]
    fn zero_is_rejected() {
        assert!(matches!(TopK::new(0), Err(Error::InvalidParameter { name: "top_k", .. })));
        assert!(TopK::new(1).unwrap().min_tokens_to_keep(0).is_err());
    }

    #[test]
    fn is_idempotent_and_sorts_its_survivors() {
        let mut p = TopK::new(3).unwrap();
        let row = [0.5, 9.0, 1.0, 7.0, 7.0, -3.0];
        let once = apply(&mut p, &row);
        assert_eq!(apply(&mut p, &once), once);
        let mut out = row.to_vec();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut out, &mut live);
        p.process(&Context::empty(), &mut scores).unwrap();
        assert!(scores.is_sorted());
        assert_eq!(scores.live_ids(), Some(&[1, 4, 3][..]));
    }

    #[test]
    fn on_a_truncated_set_selects_among_the_live_tokens() {
        let mut row = vec![10.0, 1.0, 3.0, 2.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        scores.set_live([1, 2, 3], false);
        TopK::new(2).unwrap().process(&Context::empty(), &mut scores).unwrap();
        assert_eq!(scores.live_ids(), Some(&[2, 3][..]));
    }
}
