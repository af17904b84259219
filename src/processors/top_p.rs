//! Top-p (nucleus) truncation.

use crate::math::{
    Entry, MassHistogram, Softmax, finite_ids, first_stop, gather_between, mask_after_bucket,
    mostly_masked, rank_desc, sort_ranked, split_at_bucket, wide_before,
};
use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Candidates sorted and walked one by one before a walk switches to
/// selections.
const FIRST_ROUND: usize = 256;

/// Live sets up to this size skip the histogram.
const SMALL_LIVE_SET: usize = 256;

/// A nucleus of at least one in this many tokens of a dense row is cut in
/// place, the row left dense.
const WIDE: usize = 3;

/// Nuclei up to this size are handed on sorted.
const SORTED_SURVIVORS: usize = 1024;

/// Keeps the smallest set of most probable live tokens whose probability
/// mass reaches `p` (nucleus sampling), and at least `min_tokens_to_keep`.
///
/// Matches Hugging Face transformers' `TopPLogitsWarper` on the processed
/// row. Rank the live tokens by score, highest first, the **higher id first
/// among equal scores** (transformers' ascending sort read backwards). The
/// token at rank `i` carries the tail mass `T_i`: its own probability plus
/// that of every token ranked after it. It is removed when
///
/// ```text
/// f32(T_i) <= f32(1 - p)   and   i >= min_tokens_to_keep
/// ```
///
/// so a token survives while the mass ranked strictly above it is below
/// `p`: the token that crosses `p` is kept. For `[0.5, 0.3, 0.2]` and
/// `p = 0.8`, the last token's tail is 0.2, which is not above
/// `f32(1 - 0.8) = 0.2`, so two tokens survive.
///
/// - **Numerics** (as transformers on CPU): probabilities are the softmax of
///   the live scores, `exp(x - max)` in f32 over a normalizer summed in f64;
///   tail masses are accumulated in f64 and rounded to f32 before the
///   comparison. `1 - p` is computed in f64 from the decimal value `p`
///   prints as (`0.8`, as a configuration file holds it), then rounded to
///   f32, as transformers computes it from a Python float. When a tail
///   equals `1 - p` up to rounding, the verdict hangs on the last bit of the
///   f32 exponential, here as in transformers, and the two may differ.
/// - **`p = 1`** is an exact no-op (transformers' `generate` does not add
///   top-p then).
/// - **`p = 0`**, and any `p` below about `6e-8` (where `f32(1 - p) = 1`),
///   keeps exactly `min_tokens_to_keep` tokens: the argmax by default.
/// - Masked tokens (`-inf`) are never revived; a row where every live token
///   is masked is left as it is.
///
/// The survivors become the live set. It is marked sorted (see [`Scores`])
/// when the input live set was sorted or when at most 1024 tokens survive;
/// a larger nucleus is handed on unsorted rather than paying for its sort.
/// A nucleus of about a third of a dense row or more is cut in place
/// instead: `-inf` is written over the removed tokens and the row stays
/// dense (the same processed row), since the dense passes that follow cost
/// less than a long list of ids.
///
/// # Errors
///
/// [`TopP::new`] rejects NaN and values outside `[0, 1]`;
/// [`TopP::min_tokens_to_keep`] rejects 0.
///
/// # Performance
///
/// Never sorts the vocabulary, and its cost does not grow with the
/// nucleus. On a sorted live set (after top-k) it walks the survivors of
/// the previous stage directly. Otherwise, after the maximum, **one pass**
/// computes the normalizer `z` (vectorized exponentials) and, from the same
/// weights, a histogram of the probability mass in 2048 buckets of `max -
/// x`, each 1/64 wide (tokens below `max - 31.99`, lighter than `1.3e-14` of
/// the maximum, share a catch-all). Walking the buckets from the top finds
/// the one where the tail falls to `1 - p`: every token above it is kept
/// without being ranked, and **one more pass** (a vectorizable comparison)
/// collects those tokens and the boundary bucket's (or, for a wide nucleus
/// of a dense row, judged from 1024 evenly spaced scores, writes `-inf`
/// over the tokens below the boundary bucket with vectorized selects). Only the boundary
/// bucket is ranked and walked, by selections when it is large (a row of
/// ties) and sorted when it is small. A bucket is a monotone function of
/// the score, so scores whose differences to the maximum collide share one
/// and lose nothing. A mostly masked row (three quarters or more of 64
/// probes at `-inf`) first drops its masked tokens in a branch-free pass, so the
/// exponentials run over the live tokens only. The rare cut the buckets do
/// not resolve (inside the catch-all, for `p` within about `1e-12` of 1, or
/// a `min_tokens_to_keep` beyond the nucleus), and live sets of at most 256
/// tokens, take a walk over the candidates above the bound `f32(1 - p) /
/// (n - 1)` on the probability (a token below it cannot be in the nucleus,
/// since everything ranked after it weighs less than `1 - p`). No
/// allocation once the buffers have grown.
///
/// # Example
///
/// ```
/// use decoding::processors::TopP;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// // Probabilities 0.5, 0.3, 0.15, 0.05.
/// let mut row: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// TopP::new(0.6)?.process(&Context::empty(), &mut scores)?;
/// assert_eq!(scores.live_ids(), Some(&[0, 1][..])); // 0.5 < 0.6, so 0.3 is kept too
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct TopP {
    p: f32,
    /// `f32(1 - p)`, `1 - p` taken in f64 from the decimal value of `p`.
    threshold: f32,
    min_tokens_to_keep: usize,
    histogram: MassHistogram,
    /// The tokens of the buckets above the boundary bucket.
    above: Vec<TokenId>,
    /// The boundary bucket.
    edge: Vec<Entry>,
    /// The finite tokens of a mostly masked row.
    finite: Vec<TokenId>,
    candidates: Vec<Entry>,
}

impl TopP {
    /// Top-p with `0 <= p <= 1` and `min_tokens_to_keep = 1`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `p` is NaN or outside `[0, 1]`.
    pub fn new(p: f32) -> Result<Self, Error> {
        if !(0.0..=1.0).contains(&p) {
            return Err(Error::invalid("top_p", "in [0, 1]", p));
        }
        let threshold = (1.0 - decimal_value(p)) as f32;
        Ok(TopP {
            p,
            threshold,
            min_tokens_to_keep: 1,
            histogram: MassHistogram::default(),
            above: Vec::new(),
            edge: Vec::new(),
            finite: Vec::new(),
            candidates: Vec::new(),
        })
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

    /// The `p` parameter.
    pub fn p(&self) -> f32 {
        self.p
    }
}

/// The f64 value of the shortest decimal that rounds to `x`: `0.8f32` gives
/// `0.8`, not `0.800000011920929`.
fn decimal_value(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

impl LogitsProcessor for TopP {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let keep = self.min_tokens_to_keep;
        let n_live = scores.live_len();
        if self.p >= 1.0 || n_live <= keep {
            return Ok(());
        }
        let threshold = self.threshold;

        if scores.is_sorted() {
            let Some(softmax) = Softmax::of(scores) else {
                return Ok(());
            };
            let z = softmax.sum();
            let removed = |prefix: f64| ((z - prefix) / z) as f32 <= threshold;
            let values = scores.values();
            let ids = scores.live_ids().unwrap_or(&[]);
            let mut prefix = 0.0f64;
            let mut n = ids.len();
            for (i, &id) in ids.iter().enumerate() {
                if i >= keep && removed(prefix) {
                    n = i;
                    break;
                }
                prefix += softmax.weight(values[id as usize]);
            }
            scores.rewrite_live(|_, live| {
                live.truncate(n);
                true
            });
            return Ok(());
        }

        // A mostly masked row (a grammar mask, a padded vocabulary) drops its
        // masked tokens first, so that the passes below touch live tokens
        // only. A masked token outside the live set scores `-inf` as it did
        // inside it: the processed row is unchanged.
        if !scores.is_truncated() && mostly_masked(scores.values()) {
            let n = finite_ids(scores.values(), &mut self.finite);
            scores.set_live(self.finite[..n].iter().copied(), false);
            if scores.live_len() <= keep {
                return Ok(());
            }
        }
        let n_live = scores.live_len();

        if n_live <= SMALL_LIVE_SET {
            if let Some(softmax) = Softmax::of(scores) {
                self.walk_above(scores, &softmax, threshold, keep);
            }
            return Ok(());
        }

        // The normalizer's pass fills the mass histogram too.
        let m = scores.max();
        if m == f32::NEG_INFINITY {
            return Ok(());
        }
        let z = self.histogram.fill(scores, m);
        let Some(softmax) = Softmax::from_parts(m, z) else {
            return Ok(());
        };
        let removed = |prefix: f64| ((z - prefix) / z) as f32 <= threshold;
        // The boundary bucket: the first whose mass makes the next token's
        // tail fall to the threshold. Everything in the buckets before it is
        // kept (its prefix is lower), so only this bucket is ranked.
        let mut before = 0.0f64;
        let mut boundary = None;
        for (b, &w) in self.histogram.masses().iter().enumerate() {
            if removed(before + w) {
                boundary = Some(b);
                break;
            }
            before += w;
        }
        if let Some(bucket) = boundary {
            // A wide nucleus (a third of a dense row or more) is cut in
            // place: the tokens after the boundary bucket are set to `-inf`
            // and the row stays dense. Every weight is at most 1 (within
            // an ulp), so the buckets before the boundary hold at least
            // `before` tokens: with `before` above the quota, the token
            // after the bucket is removed whatever the walk finds.
            if !scores.is_truncated()
                && before >= 1.01 * keep as f64
                && wide_before(scores.values(), m, bucket, WIDE)
            {
                let edge = &mut self.edge;
                let base = mask_after_bucket(scores.values_mut(), m, bucket, edge);
                let n = first_stop(
                    edge,
                    FIRST_ROUND,
                    rank_desc,
                    |e| softmax.weight(e.0),
                    |i, above, _| base + i >= keep && removed(before + above),
                );
                let values = scores.values_mut();
                for e in &edge[n..] {
                    values[e.1 as usize] = f32::NEG_INFINITY;
                }
                return Ok(());
            }
            let base = split_at_bucket(scores, m, bucket, &mut self.above, &mut self.edge);
            let n = first_stop(
                &mut self.edge,
                FIRST_ROUND,
                rank_desc,
                |e| softmax.weight(e.0),
                |i, above, _| base + i >= keep && removed(before + above),
            );
            // Unless the quota reaches past the bucket (then the token after
            // it stays too, and the walk below settles the count), the token
            // after the bucket is removed: its prefix is the mass through
            // the bucket.
            if n < self.edge.len() || base + n >= keep {
                // The bucket's survivors after the others, in one slice.
                let total = base + n;
                if self.above.len() < total {
                    self.above.resize(total, 0);
                }
                for (slot, e) in self.above[base..total].iter_mut().zip(&self.edge) {
                    *slot = e.1;
                }
                let ids = &self.above[..total];
                if total <= SORTED_SURVIVORS {
                    let values = scores.values();
                    let buf = &mut self.candidates;
                    buf.clear();
                    buf.extend(ids.iter().map(|&id| (values[id as usize], id)));
                    sort_ranked(buf);
                    scores.set_live(buf.iter().map(|e| e.1), true);
                } else {
                    scores.set_live(ids.iter().copied(), false);
                }
                return Ok(());
            }
        }
        // The cut lies among the tokens below `max - 32` (a `p` within about
        // 1e-12 of 1 on a long row), or the quota reaches past the nucleus.
        self.walk_above(scores, &softmax, threshold, keep);
        Ok(())
    }
}

impl TopP {
    /// The nucleus among the live tokens above the bound
    /// `f32(1 - p) / (n - 1)` on the probability, which holds it, located
    /// by [`first_stop`]: the path of small live sets and of the rare
    /// nucleus the buckets do not resolve.
    fn walk_above(
        &mut self,
        scores: &mut Scores<'_>,
        softmax: &Softmax,
        threshold: f32,
        keep: usize,
    ) {
        let z = softmax.sum();
        let removed = |prefix: f64| ((z - prefix) / z) as f32 <= threshold;
        // A token of weight w with w / z < threshold / (n_live - 1) has a
        // tail below the threshold, so it and everything after it go: the
        // nucleus lies at or above `bound` (loosened by a margin, and never
        // excluding the maximum).
        let n_live = scores.live_len();
        let bound = (f64::from(threshold) * z / (n_live - 1) as f64).ln() - 1e-3;
        let bound = bound.min(0.0) as f32;
        let buffer = &mut self.candidates;
        gather_between(scores, softmax.max(), bound, f32::INFINITY, buffer);
        if buffer.len() < keep {
            // Fewer finite tokens than the quota: all of them compete.
            buffer.clear();
            scores.for_each_live(|id, x| {
                if x > f32::NEG_INFINITY {
                    buffer.push((x, id));
                }
            });
        }
        let n = first_stop(
            buffer,
            FIRST_ROUND,
            rank_desc,
            |e| softmax.weight(e.0),
            |i, before, _| i >= keep && removed(before),
        );
        // Small nuclei are handed on sorted; large ones are not sorted.
        let sorted = n <= SORTED_SURVIVORS;
        if sorted && n > FIRST_ROUND {
            buffer[FIRST_ROUND..n].sort_unstable_by(rank_desc);
        }
        scores.set_live(buffer[..n].iter().map(|e| e.1), sorted);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::testing::{logits, processed, survivors};
    use crate::processors::TopK;
    use crate::{LogitsProcessorExt, TokenId};

    const NEG: f32 = f32::NEG_INFINITY;

    fn top_p(p: f32) -> TopP {
        TopP::new(p).unwrap()
    }

    // Expected sets below were obtained by running transformers 5.24's
    // `TopPLogitsWarper` on the same f32 logits, or derived by hand where
    // stated.

    #[test]
    fn boundaries_verified_against_transformers() {
        let row = logits(&[0.5, 0.3, 0.2]);
        assert_eq!(survivors(&mut top_p(0.8), &row), [0, 1]);
        assert_eq!(survivors(&mut top_p(0.79), &row), [0, 1]);
        assert_eq!(survivors(&mut top_p(0.81), &row), [0, 1, 2]);
        assert_eq!(survivors(&mut top_p(0.5), &row), [0]);
        assert_eq!(survivors(&mut top_p(0.0), &row), [0]);
    }

    #[test]
    fn keeps_the_token_that_crosses_p() {
        // F31: 0.5 < 0.6, so 0.3 is needed. F32: 0.4 + 0.3 < 0.8, so 0.2 too.
        assert_eq!(survivors(&mut top_p(0.6), &logits(&[0.5, 0.3, 0.15, 0.05])), [0, 1]);
        assert_eq!(survivors(&mut top_p(0.8), &logits(&[0.4, 0.3, 0.2, 0.1])), [0, 1, 2]);
    }

    #[test]
    fn negative_zero_ties_with_zero() {
        // -0.0 and 0.0 are equal scores: the higher id ranks first, as for
        // any tie (found by the reference property test).
        assert_eq!(survivors(&mut top_p(0.5), &[0.0, -0.0]), [1]);
        assert_eq!(survivors(&mut top_p(0.5), &[-0.0, 0.0]), [1]);
        let mut row = vec![-0.0f32; 300];
        row[7] = 0.0;
        row[299] = 1e-45;
        // 1e-45 - 0 rounds to a weight of 1 like the rest: the first round
        // holds token 299, then ids 298, 297, ... regardless of the sign.
        let kept = survivors(&mut top_p(0.1), &row);
        assert_eq!(kept, (270..300).collect::<Vec<TokenId>>());
    }

    #[test]
    fn dyadic_boundary_and_the_tie_rule() {
        // F33: masses 0.5, 0.75, 0.875, 1. The two 0.125 tokens tie: the
        // higher id ranks first, so token 3 survives and token 2 goes.
        let row = logits(&[0.5, 0.25, 0.125, 0.125]);
        assert_eq!(survivors(&mut top_p(0.75 - 1e-4), &row), [0, 1]);
        assert_eq!(survivors(&mut top_p(0.75 + 1e-4), &row), [0, 1, 3]);
        assert_eq!(survivors(&mut top_p(0.5), &logits(&[0.4, 0.3, 0.3])), [0, 2]);
        assert_eq!(survivors(&mut top_p(0.5), &[1.0; 4]), [2, 3]);
        assert_eq!(survivors(&mut top_p(0.6), &[1.0; 4]), [1, 2, 3]);
    }

    #[test]
    fn llama_cpp_goldens() {
        let row = logits(&[0.1, 0.2, 0.3, 0.4]);
        let out = processed(&mut top_p(0.7), &row);
        let kept: Vec<f64> = out.iter().filter(|x| x.is_finite()).map(|&x| f64::from(x)).collect();
        let z: f64 = kept.iter().map(|x| x.exp()).sum();
        assert_eq!(kept.len(), 2);
        assert!((kept[0].exp() / z - 3.0 / 7.0).abs() < 1e-5);
        assert!((kept[1].exp() / z - 4.0 / 7.0).abs() < 1e-5);
        assert_eq!(survivors(&mut top_p(0.8), &row), [1, 2, 3]);
        assert_eq!(processed(&mut top_p(1.0), &row), row);
        assert_eq!(survivors(&mut top_p(0.0), &row), [3]);
    }

    #[test]
    fn min_tokens_to_keep() {
        let mut p = top_p(0.1).min_tokens_to_keep(3).unwrap();
        assert_eq!(survivors(&mut p, &logits(&[0.9, 0.05, 0.03, 0.02])), [0, 1, 2]);
        let mut p = top_p(0.1).min_tokens_to_keep(10).unwrap();
        let row = logits(&[0.4, 0.3, 0.2, 0.1]);
        assert_eq!(processed(&mut p, &row), row);
        // Masked tokens are not revived to fill the quota.
        let mut p = top_p(0.1).min_tokens_to_keep(3).unwrap();
        assert_eq!(survivors(&mut p, &[NEG, 1.0, NEG, 0.0, NEG]), [1, 3]);
    }

    #[test]
    fn p_one_is_an_exact_no_op() {
        // F27: an f32 running sum over this row ends near 0.998; p = 1 must
        // still keep everything, and leave the row untouched.
        let mut row = vec![0.0f32; 151_936];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        top_p(1.0).process(&Context::empty(), &mut scores).unwrap();
        assert!(!scores.is_truncated());
    }

    #[test]
    fn large_flat_vocabulary_needs_an_f64_tail() {
        // F35: 151936 equal logits, p = 0.5. Tokens rank by id descending;
        // the one at rank i has tail (151936 - i) / 151936, removed once
        // that is at most 0.5: exactly 75968 survive (transformers: 75968).
        let row = vec![0.0f32; 151_936];
        let kept = survivors(&mut top_p(0.5), &row);
        assert_eq!(kept.len(), 75_968);
        assert_eq!(kept[0], 151_936 - 75_968); // the higher ids survive
    }

    #[test]
    fn tiny_p_keeps_the_argmax() {
        // F29: f32(1 - 1e-8) = 1, so only the protected token survives.
        assert_eq!(survivors(&mut top_p(1e-8), &logits(&[0.3, 0.3, 0.4])), [2]);
    }

    #[test]
    fn extreme_logits() {
        assert_eq!(survivors(&mut top_p(0.9), &[1000.0, 999.0, 998.0]), [0, 1]);
        assert_eq!(survivors(&mut top_p(0.9), &[NEG, 1000.0, NEG, 999.0, 998.0]), [1, 3]);
        assert_eq!(survivors(&mut top_p(0.7), &[-1000.0, -1001.0]), [0]);
        // Scores so far apart that x - max overflows.
        assert_eq!(survivors(&mut top_p(0.5), &[-3e38, 3e38, 0.0]), [1]);
        let mut p = top_p(0.5).min_tokens_to_keep(3).unwrap();
        assert_eq!(survivors(&mut p, &[-3e38, 3e38, 0.0]), [0, 1, 2]);
    }

    #[test]
    fn all_masked_row_is_left_alone() {
        let row = [NEG; 5];
        assert_eq!(processed(&mut top_p(0.5), &row), row);
    }

    #[test]
    fn after_top_k_the_sorted_live_set_is_walked() {
        // F37: top-k 2 leaves 0.4 and 0.35, renormalized to 0.533 and 0.467;
        // top-p 0.9 keeps both.
        let row = logits(&[0.4, 0.35, 0.25]);
        let mut chain = TopK::new(2).unwrap().then(top_p(0.9));
        assert_eq!(survivors(&mut chain, &row), [0, 1]);
        let mut chain = TopK::new(2).unwrap().then(top_p(0.5));
        assert_eq!(survivors(&mut chain, &row), [0]);
    }

    #[test]
    fn sorted_and_dense_paths_agree() {
        let row: Vec<f32> =
            (0..3000).map(|i| ((i * 7919 % 3000) as f32 * 0.01).sin() * 4.0).collect();
        for p in [0.0, 0.3, 0.9, 0.99, 0.999_99] {
            let dense = survivors(&mut top_p(p), &row);
            let mut out = row.clone();
            let mut live = Vec::new();
            let mut scores = Scores::new(&mut out, &mut live);
            scores.sort_live();
            top_p(p).process(&Context::empty(), &mut scores).unwrap();
            assert!(scores.is_sorted());
            let mut via_sorted: Vec<TokenId> = scores.live_ids().unwrap().to_vec();
            via_sorted.sort_unstable();
            assert_eq!(dense, via_sorted, "p = {p}");
        }
    }

    #[test]
    fn a_wide_nucleus_matches_the_closed_form() {
        // Scores -0.001·rank, ids scattered: probabilities r^rank with
        // r = e^-0.001, so the first n ranks hold (1 - r^n) / (1 - r^V). The
        // nucleus for p = 0.9 spans about 2300 ranks: several sort rounds
        // (a fifth of the row: not wide enough to be cut in place).
        const V: usize = 12_000;
        let mut row = vec![0.0f32; V];
        for rank in 0..V {
            row[rank * 7919 % V] = -0.001 * rank as f32;
        }
        let r = (-0.001f64).exp();
        let total = 1.0 - r.powi(V as i32);
        let n = (1..=V).find(|&n| (1.0 - r.powi(n as i32)) / total >= 0.9).unwrap();
        let mut p = top_p(0.9);
        let mut out = row.clone();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut out, &mut live);
        p.process(&Context::empty(), &mut scores).unwrap();
        // More than 1024 survivors: handed on unsorted.
        assert!(scores.is_truncated() && !scores.is_sorted());
        let mut ids = scores.live_ids().unwrap().to_vec();
        ids.sort_unstable();
        let mut expected: Vec<TokenId> = (0..n).map(|rank| (rank * 7919 % V) as TokenId).collect();
        expected.sort_unstable();
        assert_eq!(ids, expected);
        // A smaller nucleus (p = 0.5: about 690 ranks) comes out in rank order.
        let n = (1..=V).find(|&n| (1.0 - r.powi(n as i32)) / total >= 0.5).unwrap();
        let mut out = row.clone();
        let mut scores = Scores::new(&mut out, &mut live);
        top_p(0.5).process(&Context::empty(), &mut scores).unwrap();
        assert!(scores.is_sorted());
        let ids = scores.live_ids().unwrap();
        assert_eq!(ids.len(), n);
        for (rank, &id) in ids.iter().enumerate() {
            assert_eq!(id as usize, rank * 7919 % V);
        }
    }

    #[test]
    fn nuclei_beyond_the_first_round_match_the_closed_form() {
        // Scores -a·rank on scattered ids: the first n ranks hold
        // (1 - r^n) / (1 - r^V) with r = e^-a. Nuclei from a few hundred to
        // most of the vocabulary take the second round, with one or several
        // cuts; a live set (every id but the multiples of 7) takes it too.
        const V: usize = 30_000;
        for a in [0.02f32, 0.003, 0.0004, 0.00005] {
            let mut row = vec![0.0f32; V];
            for rank in 0..V {
                row[rank * 7919 % V] = -a * rank as f32;
            }
            let r = (-f64::from(a)).exp();
            let total = 1.0 - r.powi(V as i32);
            for p in [0.5, 0.9, 0.99] {
                let n = (1..=V).find(|&n| (1.0 - r.powi(n as i32)) / total >= p).unwrap();
                let mut expected: Vec<TokenId> =
                    (0..n).map(|rank| (rank * 7919 % V) as TokenId).collect();
                expected.sort_unstable();
                assert_eq!(survivors(&mut top_p(p as f32), &row), expected, "a = {a}, p = {p}");
            }
            // On a live set: the same rule among the live tokens.
            let live_ranks: Vec<usize> =
                (0..V).filter(|&rank| (rank * 7919 % V) % 7 != 0).collect();
            let weights: Vec<f64> = live_ranks.iter().map(|&k| r.powi(k as i32)).collect();
            let z: f64 = weights.iter().sum();
            let mut acc = 0.0;
            let n = weights.iter().position(|w| {
                acc += w;
                acc / z >= 0.9
            });
            let mut expected: Vec<TokenId> = live_ranks[..=n.unwrap()]
                .iter()
                .map(|&rank| (rank * 7919 % V) as TokenId)
                .collect();
            expected.sort_unstable();
            let mut out = row.clone();
            let mut live = Vec::new();
            let mut scores = Scores::new(&mut out, &mut live);
            scores.retain(|id, _| id % 7 != 0);
            top_p(0.9).process(&Context::empty(), &mut scores).unwrap();
            let mut ids = scores.live_ids().unwrap().to_vec();
            ids.sort_unstable();
            assert_eq!(ids, expected, "live set, a = {a}");
        }
    }

    /// The naive nucleus of a dense row, as documented: a full sort (score
    /// descending, the higher id first), weights `exp(x - max)` in f32, tails
    /// summed in f64 from the bottom, `f32(tail) <= f32(1 - p)` removes.
    fn naive_nucleus(row: &[f32], p: f64) -> Vec<TokenId> {
        let m = row.iter().copied().fold(NEG, f32::max);
        let mut order: Vec<TokenId> = (0..row.len() as TokenId).collect();
        order.sort_by(|&a, &b| row[b as usize].total_cmp(&row[a as usize]).then(b.cmp(&a)));
        let w: Vec<f64> = order.iter().map(|&i| f64::from((row[i as usize] - m).exp())).collect();
        let z: f64 = w.iter().sum();
        let threshold = (1.0 - p) as f32;
        let mut tail = z;
        let mut n = order.len();
        for (i, &wi) in w.iter().enumerate() {
            if i >= 1 && ((tail / z) as f32) <= threshold {
                n = i;
                break;
            }
            tail -= wi;
        }
        order.truncate(n);
        order
    }

    #[test]
    fn scores_that_collide_after_subtracting_the_maximum_are_not_lost() {
        // Issue 13, defect 3: x0 = 1, xi = i·1e-11. Every xi - 1 rounds to
        // -1 in f32, so the 999 small tokens weigh the same, yet they rank by
        // score. The nucleus for p = 0.5 is x0 and the 499 best of them
        // (transformers: 500 tokens, mass 0.5009); the second round used to
        // compare the rounded difference and kept 256 (mass 0.257).
        let row: Vec<f32> =
            std::iter::once(1.0).chain((1..1000).map(|i| i as f32 * 1e-11)).collect();
        let kept = survivors(&mut top_p(0.5), &row);
        let mut expected: Vec<TokenId> = std::iter::once(0).chain(501..1000).collect();
        expected.sort_unstable();
        assert_eq!(kept.len(), 500);
        assert_eq!(kept, expected);
        let z = 1f64.exp() + 999.0;
        let mass = (1f64.exp() + 499.0) / z;
        assert!((mass - 0.5009).abs() < 1e-4, "{mass}");
    }

    #[test]
    fn consecutive_floats_keep_a_prefix_of_the_ranking() {
        // Issue 13, defect 3: x0 = 10 and 3000 consecutive f32 values from
        // 3.0; their differences to 10 collide in pairs. The kept set must be
        // the best tokens by score, as many as the documented walk keeps.
        let row: Vec<f32> = std::iter::once(10.0)
            .chain((0..3000u32).map(|j| f32::from_bits(3.0f32.to_bits() + j)))
            .collect();
        for p in [0.5, 0.9, 0.99] {
            let kept = survivors(&mut top_p(p as f32), &row);
            let mut expected = naive_nucleus(&row, p);
            expected.sort_unstable();
            assert_eq!(kept, expected, "p = {p}");
            // Past the first round of 256 candidates: the second round ran.
            assert!(kept.len() > 256, "p = {p}: {}", kept.len());
        }
    }

    /// `naive_nucleus` in id order, finite tokens only.
    fn naive_kept(row: &[f32], p: f64) -> Vec<TokenId> {
        let mut kept: Vec<TokenId> =
            naive_nucleus(row, p).into_iter().filter(|&id| row[id as usize] > NEG).collect();
        kept.sort_unstable();
        kept
    }

    /// Ids scattered over `0..n` (a bijection, as 7919 is prime to `n`).
    fn scattered(n: usize, score: impl Fn(usize) -> f32) -> Vec<f32> {
        let mut row = vec![0.0f32; n];
        for rank in 0..n {
            row[rank * 7919 % n] = score(rank);
        }
        row
    }

    #[test]
    fn scores_on_bucket_edges_and_one_ulp_off_them() {
        // The histogram's buckets are 1/64 wide along max - x, centred on
        // the multiples of 1/64: scores on every multiple of 1/128 (the
        // centres and the edges), and one ulp above and below, on both
        // sides of the boundary bucket; every cut matches the naive walk.
        let up = |x: f32, ulps: i32| {
            // One step away from zero is `bits + 1` for either sign.
            let away = if x > 0.0 { ulps } else { -ulps };
            if x == 0.0 {
                f32::from_bits(1) * ulps as f32
            } else {
                f32::from_bits((x.to_bits() as i32 + away) as u32)
            }
        };
        let row = scattered(6000, |rank| {
            let edge = 4.0 - (rank / 3) as f32 / 128.0;
            match rank % 3 {
                0 => up(edge, 1),
                1 => edge,
                _ => up(edge, -1),
            }
        });
        for p in [0.1, 0.5, 0.9, 0.97, 0.999] {
            let kept = survivors(&mut top_p(p as f32), &row);
            assert_eq!(kept, naive_kept(&row, p), "p = {p}");
        }
    }

    #[test]
    fn all_equal_rows_cut_at_exact_masses() {
        // 1000 equal scores: the tail at rank i is exactly (1000 - i)/1000,
        // so for p = 0.5 the tail of rank 500 equals f32(1 - p) and that
        // token goes (the mass is exactly p): the 500 highest ids stay.
        let row = vec![2.5f32; 1000];
        for (p, n) in [(0.5f32, 500usize), (0.25, 250), (0.75, 750), (0.9, 900), (0.001, 1)] {
            let kept = survivors(&mut top_p(p), &row);
            let want: Vec<TokenId> = (1000 - n as TokenId..1000).collect();
            assert_eq!(kept, want, "p = {p}");
        }
        // A whole row in one bucket, long enough to need the galloping walk.
        let row = vec![-1.0f32; 40_000];
        let kept = survivors(&mut top_p(0.3), &row);
        assert_eq!(kept, (28_000..40_000).collect::<Vec<TokenId>>());
    }

    #[test]
    fn masked_lanes_never_count() {
        // 40% of the row masked (the masked lanes go through the
        // histogram's catch-all), and 95% masked (the masked tokens are
        // dropped first).
        for (every, masked) in [(5usize, 2usize), (20, 19)] {
            let row =
                scattered(
                    20_000,
                    |rank| {
                        if rank % every < masked { NEG } else { -0.002 * rank as f32 }
                    },
                );
            for p in [0.2, 0.9, 0.99] {
                let kept = survivors(&mut top_p(p as f32), &row);
                assert!(kept.iter().all(|&id| row[id as usize] > NEG));
                assert_eq!(kept, naive_kept(&row, p), "every = {every}, p = {p}");
            }
        }
        // Fewer finite tokens than the quota: all of them, no masked one.
        let row = scattered(5000, |rank| if rank < 3 { rank as f32 } else { NEG });
        let mut p = top_p(0.5).min_tokens_to_keep(10).unwrap();
        let mut want: Vec<TokenId> = (0..3).map(|rank| (rank * 7919 % 5000) as TokenId).collect();
        want.sort_unstable();
        assert_eq!(survivors(&mut p, &row), want);
    }

    #[test]
    fn a_wide_nucleus_of_a_dense_row_is_cut_in_place() {
        // Scores spread over [-1, 1]: top-p 0.9 keeps most of the row,
        // which stays dense with -inf over the removed tokens (masked ones
        // among them); the same tokens as the naive walk.
        let mut row = scattered(20_000, |rank| 1.0 - rank as f32 / 10_000.0);
        for (i, x) in row.iter_mut().enumerate() {
            if i % 5 == 3 {
                *x = NEG;
            }
        }
        for (p, dense) in [(0.2, false), (0.9, true), (0.999, true)] {
            let mut out = row.clone();
            let mut live = Vec::new();
            let mut scores = Scores::new(&mut out, &mut live);
            top_p(p as f32).process(&Context::empty(), &mut scores).unwrap();
            assert_eq!(!scores.is_truncated(), dense, "p = {p}");
            scores.densify();
            let kept: Vec<TokenId> =
                (0..out.len() as TokenId).filter(|&id| out[id as usize] > NEG).collect();
            assert_eq!(kept, naive_kept(&row, p), "p = {p}");
            for &id in &kept {
                assert_eq!(out[id as usize], row[id as usize]);
            }
        }
    }

    #[test]
    fn a_quota_beyond_the_nucleus_is_filled_in_rank_order() {
        // One dominant token: the nucleus is that token alone, the quota
        // of 500 keeps the 499 next best as well.
        let row = scattered(3000, |rank| if rank == 0 { 30.0 } else { -0.001 * rank as f32 });
        let mut p = top_p(0.9).min_tokens_to_keep(500).unwrap();
        let mut want: Vec<TokenId> = (0..500).map(|rank| (rank * 7919 % 3000) as TokenId).collect();
        want.sort_unstable();
        assert_eq!(survivors(&mut p, &row), want);
    }

    #[test]
    fn rejects_invalid_parameters() {
        for p in [-0.1, 1.5, f32::NAN, f32::INFINITY] {
            assert!(matches!(TopP::new(p), Err(Error::InvalidParameter { name: "top_p", .. })));
        }
        assert!(TopP::new(0.0).is_ok() && TopP::new(1.0).is_ok());
        assert!(matches!(
            top_p(0.5).min_tokens_to_keep(0),
            Err(Error::InvalidParameter { name: "min_tokens_to_keep", .. })
        ));
    }

    #[test]
    fn threshold_is_taken_from_the_decimal_value() {
        // 1 - 0.8 in f64 is 0.19999999999999996, which rounds to f32 0.2;
        // from the f32 0.800000011920929 it would round to 0.19999999.
        assert_eq!(top_p(0.8).threshold, 0.2f32);
        assert_eq!(top_p(0.0).threshold, 1.0);
        assert_eq!(top_p(1.0).threshold, 0.0);
    }
}
