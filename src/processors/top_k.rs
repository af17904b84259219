//! Top-k truncation.

use crate::math::{Entry, sort_ranked, top_candidates};
use crate::{Context, Error, LogitsProcessor, Scores};

/// Keeps the `k` highest-scoring live tokens, **and every token tied with
/// the k-th score** (so more than `k` may survive).
///
/// Matches Hugging Face transformers' `TopKLogitsWarper`:
/// `k_eff = min(max(k, min_tokens_to_keep), V)`; the threshold is the
/// `k_eff`-th largest score of the row (counting removed tokens as `-inf`);
/// tokens scoring below it are removed. When fewer than `k_eff` tokens are
/// live, nothing changes. llama.cpp, candle and llm-samplers keep exactly
/// `k` and break ties arbitrarily; this crate follows transformers unless
/// [`TopK::exact`] asks for exactly `k`.
///
/// # Exactly k
///
/// [`TopK::exact`] keeps exactly `k_eff` tokens (llama.cpp's top-k, with a
/// documented tie break instead of an arbitrary one): every token scoring
/// above the `k_eff`-th score, then, among the tokens tied *at* that score,
/// the **lowest ids** until `k_eff` tokens are kept. So exact top-1 keeps
/// the token [`Greedy`](crate::sampler::Greedy) would choose. As in the
/// default mode, nothing changes when at most `k_eff` tokens are live or
/// fewer than `k_eff` are finite.
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
/// One pass over the live scores that collects the survivors as it goes: a
/// `k`-entry min-heap holds the running threshold, and on a full row 16
/// scores at a time are compared with it in vector registers, so the few
/// chunks that hold a candidate are the only ones looked at one by one
/// (`O(V)` expected, `O(V log k)` worst case). Then a sort of the survivors
/// only. No allocation once the buffers have grown.
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
    exact: bool,
    heap: Vec<f32>,
    survivors: Vec<Entry>,
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
        Ok(TopK { k, min_tokens_to_keep: 1, exact: false, heap: Vec::new(), survivors: Vec::new() })
    }

    /// Keeps at least `n` tokens (transformers' `min_tokens_to_keep`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `n == 0`.
    pub fn min_tokens_to_keep(mut self, n: usize) -> Result<Self, Error> {
        self.min_tokens_to_keep = super::checked_min_tokens_to_keep(n)?;
        Ok(self)
    }

    /// Keeps exactly `k` tokens, breaking ties at the boundary by the lowest
    /// id (see *Exactly k* above), as llama.cpp's top-k keeps exactly `k`.
    ///
    /// ```
    /// use decoding::processors::TopK;
    /// use decoding::{Context, LogitsProcessor, Scores};
    ///
    /// let mut row = vec![3.0, 2.0, 2.0, 1.0];
    /// let mut live = Vec::new();
    /// let mut scores = Scores::new(&mut row, &mut live);
    /// TopK::new(2)?.exact().process(&Context::empty(), &mut scores)?;
    /// assert_eq!(scores.live_ids(), Some(&[0, 1][..])); // the tie goes to id 1
    /// # Ok::<(), decoding::Error>(())
    /// ```
    pub fn exact(mut self) -> Self {
        self.exact = true;
        self
    }

    /// Whether exactly `k` tokens are kept ([`TopK::exact`]).
    pub fn is_exact(&self) -> bool {
        self.exact
    }

    /// The `k` parameter.
    pub fn k(&self) -> usize {
        self.k
    }

    /// The `k_eff`-th largest live score, or `None` when at most `k_eff`
    /// tokens are live (top-k is then a no-op). The live tokens scoring at
    /// least that much are left in `self.survivors`, in no order.
    fn threshold(&mut self, scores: &Scores<'_>, k: usize) -> Option<f32> {
        if scores.live_len() <= k {
            return None;
        }
        Some(top_candidates(scores, k, &mut self.heap, &mut self.survivors))
    }
}

impl LogitsProcessor for TopK {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let k = self.k.max(self.min_tokens_to_keep).min(scores.vocab_size());
        let Some(threshold) = self.threshold(scores, k) else {
            return Ok(());
        };
        if threshold == f32::NEG_INFINITY {
            // Fewer than k finite scores: transformers removes nothing.
            return Ok(());
        }
        sort_ranked(&mut self.survivors);
        if self.exact && self.survivors.len() > k {
            // The tied tokens sit at the end, higher id first: drop the
            // first `len - k` of them, so the lowest ids stay.
            let ties = self.survivors.iter().rev().take_while(|e| e.0 == threshold).count();
            let start = self.survivors.len() - ties;
            let extra = self.survivors.len() - k;
            self.survivors.drain(start..start + extra);
        }
        scores.set_live(self.survivors.iter().map(|e| e.1), true);
        Ok(())
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
    fn exact_keeps_k_tokens_and_the_lowest_ids_among_boundary_ties() {
        let mut p = TopK::new(2).unwrap().exact();
        assert!(p.is_exact());
        assert_eq!(apply(&mut p, &[3.0, 2.0, 2.0, 1.0]), [3.0, 2.0, NEG, NEG]);
        assert_eq!(apply(&mut p, &[1.0, 1.0, 1.0, 0.0]), [1.0, 1.0, NEG, NEG]);
        // Ties above the boundary are all kept; only the boundary is cut.
        let mut p = TopK::new(3).unwrap().exact();
        assert_eq!(apply(&mut p, &[5.0, 1.0, 5.0, 1.0, 1.0]), [5.0, 1.0, 5.0, NEG, NEG]);
        // Without ties it is the default top-k.
        let row = [0.5, 9.0, 1.0, 7.0, 6.0, -3.0];
        assert_eq!(apply(&mut p, &row), apply(&mut TopK::new(3).unwrap(), &row));
        // Exact top-1 keeps the token greedy chooses (the lowest id among the maxima).
        assert_eq!(apply(&mut TopK::new(1).unwrap().exact(), &[2.0, 4.0, 4.0]), [NEG, 4.0, NEG]);
    }

    #[test]
    fn exact_on_a_sorted_truncated_set_keeps_the_lowest_ids_and_stays_sorted() {
        let mut row = vec![2.0, 2.0, 9.0, 2.0, 2.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        scores.set_live([2, 4, 3, 1], true);
        TopK::new(3).unwrap().exact().process(&Context::empty(), &mut scores).unwrap();
        assert!(scores.is_sorted());
        assert_eq!(scores.live_ids(), Some(&[2, 3, 1][..]));
    }

    #[test]
    fn exact_ties_negative_zero_with_zero() {
        // -0.0 and 0.0 are equal scores: the lowest id among them stays.
        let mut p = TopK::new(1).unwrap().exact();
        assert_eq!(apply(&mut p, &[-0.0, 0.0, 0.0]), [-0.0, NEG, NEG]);
        let mut p = TopK::new(2).unwrap().exact();
        assert_eq!(apply(&mut p, &[0.0, 1.0, -0.0]), [0.0, 1.0, NEG]);
    }

    #[test]
    fn exact_with_min_tokens_to_keep_and_few_finite_scores() {
        let mut p = TopK::new(1).unwrap().min_tokens_to_keep(2).unwrap().exact();
        assert_eq!(apply(&mut p, &[1.0, 1.0, 1.0]), [1.0, 1.0, NEG]);
        let mut p = TopK::new(2).unwrap().exact();
        assert_eq!(apply(&mut p, &[0.0, NEG, NEG]), [0.0, NEG, NEG]);
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
