//! Log-probability bookkeeping: the raw normalizer and top-N selection.

use crate::math;
use crate::math::heap::{sift_down, sift_up};
use crate::{Error, Scores, TokenId, TokenLogprobs, TopLogprob};

/// `(max, ln Σ exp(x - max))` of a row: `log_softmax(x)_i = (x_i - max) - ln_sum`.
pub(crate) fn raw_normalizer(row: &[f32]) -> (f32, f64) {
    let m = math::max(row);
    if m == f32::NEG_INFINITY {
        return (m, f64::INFINITY);
    }
    (m, math::sum_exp(row, m).ln())
}

/// The processed normalizer of a step's live scores, as [`raw_normalizer`].
pub(crate) fn processed_normalizer(scores: &Scores<'_>) -> (f32, f64) {
    let (m, sum) = math::normalizer(scores);
    (m, sum.ln())
}

/// `x_i - max - ln_sum`, with the shift in f32 as the samplers compute it.
pub(crate) fn logprob(x: f32, (m, ln_sum): (f32, f64)) -> f32 {
    (f64::from(x - m) - ln_sum) as f32
}

/// The raw record of `token` in the model's `row`: its log-probability and
/// the `top_n` most likely tokens (see [`TokenLogprobs::from_raw_row`]).
pub(crate) fn raw_entry(
    row: &[f32],
    token: TokenId,
    top_n: usize,
    top: &mut TopN,
) -> Result<TokenLogprobs, Error> {
    math::check_row(row)?;
    let norm = raw_normalizer(row);
    let mut entry = TokenLogprobs {
        token,
        raw: row.get(token as usize).map(|&x| logprob(x, norm)),
        ..TokenLogprobs::default()
    };
    if top_n > 0 {
        entry.raw_top = top.select(top_n, norm, |offer| {
            for (id, &x) in row.iter().enumerate() {
                offer(id as TokenId, x);
            }
        });
    }
    Ok(entry)
}

/// A reusable bounded min-heap that keeps the `n` best `(score, id)` pairs:
/// higher score first, lower id first among ties. `O(V log n)` for `V`
/// offers, no sort of the vocabulary.
#[derive(Debug, Default)]
pub(crate) struct TopN {
    heap: Vec<(f32, TokenId)>,
}

/// Whether `a` ranks before `b`.
fn better(a: (f32, TokenId), b: (f32, TokenId)) -> bool {
    a.0 > b.0 || (a.0 == b.0 && a.1 < b.1)
}

impl TopN {
    /// The `n` best entries of `offers`, as log-probabilities under
    /// `normalizer`. Entries of score `-inf` (probability 0) are skipped.
    pub(crate) fn select(
        &mut self,
        n: usize,
        normalizer: (f32, f64),
        offers: impl FnOnce(&mut dyn FnMut(TokenId, f32)),
    ) -> Vec<TopLogprob> {
        let heap = &mut self.heap;
        heap.clear();
        if n == 0 {
            return Vec::new();
        }
        offers(&mut |id, x| {
            if x == f32::NEG_INFINITY {
                return;
            }
            let e = (x, id);
            if heap.len() < n {
                let last = heap.len();
                heap.push(e);
                sift_up(heap, last, worse);
            } else if better(e, heap[0]) {
                heap[0] = e;
                sift_down(heap, 0, worse);
            }
        });
        heap.sort_unstable_by(|&a, &b| {
            if better(a, b) {
                std::cmp::Ordering::Less
            } else if better(b, a) {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        });
        heap.iter()
            .map(|&(x, token)| TopLogprob { token, logprob: logprob(x, normalizer) })
            .collect()
    }
}

/// The heap order of [`TopN`]: the worst entry kept at the root.
fn worse(a: (f32, TokenId), b: (f32, TokenId)) -> bool {
    better(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selects_the_best_in_rank_order() {
        let row = [0.5f32, 3.0, f32::NEG_INFINITY, 3.0, -1.0, 2.0];
        let mut top = TopN::default();
        let got = top.select(3, (0.0, 0.0), |f| {
            for (i, &x) in row.iter().enumerate() {
                f(i as TokenId, x);
            }
        });
        let ids: Vec<TokenId> = got.iter().map(|t| t.token).collect();
        assert_eq!(ids, [1, 3, 5]);
        // Fewer finite entries than n: only those.
        let got = top.select(10, (0.0, 0.0), |f| {
            for (i, &x) in row.iter().enumerate() {
                f(i as TokenId, x);
            }
        });
        assert_eq!(got.len(), 5);
    }

    #[test]
    fn matches_a_full_sort() {
        // A deterministic pseudo-random row with many ties.
        let row: Vec<f32> = (0..997u32).map(|i| ((i * 7919) % 61) as f32 / 4.0).collect();
        let mut expected: Vec<(f32, TokenId)> =
            row.iter().enumerate().map(|(i, &x)| (x, i as TokenId)).collect();
        expected.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut top = TopN::default();
        for n in [1, 2, 17, 100] {
            let got = top.select(n, (0.0, 0.0), |f| {
                for (i, &x) in row.iter().enumerate() {
                    f(i as TokenId, x);
                }
            });
            let ids: Vec<TokenId> = got.iter().map(|t| t.token).collect();
            let want: Vec<TokenId> = expected[..n].iter().map(|e| e.1).collect();
            assert_eq!(ids, want, "n = {n}");
        }
    }
}
