//! One decoding step's scores: a dense row plus the set of tokens still alive.

use crate::math::rank_ids_desc;
use crate::{Error, TokenId};

/// The scores of one decoding step, as the processors of a pipeline see them.
///
/// A `Scores` is a dense row of `V` logits (one per vocabulary entry) plus an
/// optional **live set**. Before any truncation every token is live. A
/// truncating processor (top-k, top-p, min-p, ...) does not write `-inf` over
/// the `V - k` tokens it removes; it records the `k` survivors as the live
/// set instead, so every later processor and the sampler touch `k` entries,
/// not `V`.
///
/// # The invariant
///
/// A token outside the live set has the processed score `-inf`, whatever
/// its slot in the row holds (the slot is stale and may be anything). A token
/// inside the live set has the score stored in its slot, which may itself be
/// `-inf` (a processor that bans one token writes `-inf` into the slot and
/// leaves the live set alone). [`Scores::densify`] writes the invariant out:
/// afterwards the row is exactly the processed row that Hugging Face
/// transformers would hold, with `-inf` at every removed token.
///
/// # Reading the processed row
///
/// Stale slots are not reachable through a `Scores`: every reader honours
/// the live set. [`Scores::get`], [`Scores::for_each_live`] (the live
/// `(id, score)` pairs), [`Scores::argmax`] and [`Scores::max`] read the
/// live tokens; [`Scores::dense`] hands out the row only while every token
/// is live; [`Scores::checked_dense`] writes the row out (densifying it) and
/// checks it, for consumers that need every token's score. A consumer that
/// owns the buffer reads it through one of these while the `Scores` lives,
/// never afterwards: the generator's beam search, speculative verification
/// and log-probabilities all do.
///
/// # Order of the live set
///
/// The live set may be marked **sorted**: ordered by score, highest first,
/// ties broken by the *higher* token id first (`-0.0` and `0.0` are equal
/// scores). (This mirrors transformers'
/// ascending sort read backwards; it decides which of two equal tokens
/// survives a top-p or typical cut.) Truncations that already have the
/// survivors in order mark the set sorted, which lets a later top-p skip its
/// own sort. Any processor that changes scores through
/// [`Scores::values_mut`] or [`Scores::for_each_live_mut`] clears the mark;
/// [`Scores::scale_live`], which preserves the order, keeps it.
///
/// # Example
///
/// ```
/// use decoding::Scores;
///
/// let mut row = vec![1.0, 5.0, 3.0, 2.0];
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// scores.retain(|_, x| x >= 2.5);
/// assert_eq!(scores.live_ids(), Some(&[1, 2][..]));
/// scores.densify();
/// assert_eq!(row, [f32::NEG_INFINITY, 5.0, 3.0, f32::NEG_INFINITY]);
/// ```
#[derive(Debug)]
pub struct Scores<'a> {
    values: &'a mut [f32],
    live: &'a mut Vec<TokenId>,
    truncated: bool,
    sorted: bool,
    /// The first id `>= V` a truncation tried to make live (not admitted;
    /// reported by every check).
    out_of_range: Option<TokenId>,
}

impl<'a> Scores<'a> {
    /// Wraps a row. `live` is a scratch buffer for the live set; it is
    /// cleared here, and reusing it from step to step avoids allocating once
    /// its capacity has grown.
    pub fn new(values: &'a mut [f32], live: &'a mut Vec<TokenId>) -> Self {
        live.clear();
        Scores { values, live, truncated: false, sorted: false, out_of_range: None }
    }

    /// The vocabulary size `V` (the length of the dense row).
    pub fn vocab_size(&self) -> usize {
        self.values.len()
    }

    /// Whether a truncation has restricted the live set.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// Whether the live set is truncated and ordered (see the type docs).
    pub fn is_sorted(&self) -> bool {
        self.truncated && self.sorted
    }

    /// The live token ids, or `None` when every token is live.
    pub fn live_ids(&self) -> Option<&[TokenId]> {
        self.truncated.then_some(&self.live[..])
    }

    /// Number of live tokens (`V` before any truncation).
    pub fn live_len(&self) -> usize {
        if self.truncated { self.live.len() } else { self.values.len() }
    }

    /// The raw row. Slots of tokens outside the live set are stale, so this
    /// is for the crate's own processors and samplers, which pair it with
    /// [`Scores::live_ids`]. Consumers read the processed row through the
    /// accessors that honour the live set (see the type docs).
    pub(crate) fn values(&self) -> &[f32] {
        self.values
    }

    /// The processed row as a slice, when every token is live (nothing was
    /// truncated): then each slot holds its token's processed score. `None`
    /// after a truncation; [`Scores::checked_dense`] writes the row out
    /// then.
    ///
    /// ```
    /// use decoding::Scores;
    ///
    /// let mut row = vec![1.0, 5.0, 3.0];
    /// let mut live = Vec::new();
    /// let mut scores = Scores::new(&mut row, &mut live);
    /// assert_eq!(scores.dense(), Some(&[1.0, 5.0, 3.0][..]));
    /// scores.retain(|_, x| x > 2.0);
    /// assert_eq!(scores.dense(), None);
    /// ```
    pub fn dense(&self) -> Option<&[f32]> {
        (!self.truncated).then_some(&*self.values)
    }

    /// The processed row, written out in full and checked: the one way a
    /// consumer that needs every token's score (beam search, an acceptance
    /// rule) reads a step. Every token outside the live set reads `-inf`
    /// (the row is [densified](Scores::densify) first when a truncation
    /// left stale slots), and the live scores are checked as a sampler
    /// checks them.
    ///
    /// # Errors
    ///
    /// As [`Scores::check_finite`]: [`Error::InvalidLogit`] for a NaN or
    /// `+inf` live score, [`Error::TokenOutOfRange`] when a truncation named
    /// an id `>= V`, [`Error::EmptyRow`] when `V = 0`. A row whose every
    /// score is `-inf` is not an error here.
    ///
    /// ```
    /// use decoding::Scores;
    ///
    /// let mut row = vec![1.0, 5.0, 3.0, f32::NAN];
    /// let mut live = Vec::new();
    /// let mut scores = Scores::new(&mut row, &mut live);
    /// scores.set_live([2, 1], true); // the stale NaN slot is not live
    /// assert_eq!(scores.checked_dense()?, &[f32::NEG_INFINITY, 5.0, 3.0, f32::NEG_INFINITY]);
    /// # Ok::<(), decoding::Error>(())
    /// ```
    pub fn checked_dense(&mut self) -> Result<&[f32], Error> {
        self.checked_max()?;
        self.densify();
        Ok(self.values)
    }

    /// The raw row, mutably, for processors that write scores by id.
    /// Writing the slot of a token outside the live set has no effect on its
    /// processed score, which stays `-inf`; writing a live slot clears the
    /// sorted mark. (What a slot outside the live set holds is stale: read
    /// scores with [`Scores::get`] or [`Scores::for_each_live`].)
    pub fn values_mut(&mut self) -> &mut [f32] {
        self.sorted = false;
        self.values
    }

    /// The processed score of one token: its slot if live, `-inf` otherwise.
    ///
    /// Costs `O(1)` before truncation and `O(live)` after; processors that
    /// read many tokens should iterate with [`Scores::for_each_live`].
    pub fn get(&self, id: TokenId) -> Option<f32> {
        let x = *self.values.get(id as usize)?;
        if !self.truncated || self.live.contains(&id) { Some(x) } else { Some(f32::NEG_INFINITY) }
    }

    /// Calls `f(id, score)` for every live token, in live-set order (or in
    /// id order before truncation).
    #[inline]
    pub fn for_each_live(&self, mut f: impl FnMut(TokenId, f32)) {
        if self.truncated {
            for &id in self.live.iter() {
                f(id, self.values[id as usize]);
            }
        } else {
            for (id, &x) in self.values.iter().enumerate() {
                f(id as TokenId, x);
            }
        }
    }

    /// Calls `f(id, &mut score)` for every live token. Clears the sorted mark.
    #[inline]
    pub fn for_each_live_mut(&mut self, mut f: impl FnMut(TokenId, &mut f32)) {
        self.sorted = false;
        if self.truncated {
            for &id in self.live.iter() {
                f(id, &mut self.values[id as usize]);
            }
        } else {
            for (id, x) in self.values.iter_mut().enumerate() {
                f(id as TokenId, x);
            }
        }
    }

    /// Applies an order-preserving map `x -> f(x)` to every live score and
    /// keeps the sorted mark. `f` must be monotonically non-decreasing;
    /// division by a positive temperature is the intended use.
    #[inline]
    pub fn scale_live(&mut self, f: impl Fn(f32) -> f32) {
        if self.truncated {
            for &id in self.live.iter() {
                let x = &mut self.values[id as usize];
                *x = f(*x);
            }
        } else {
            for x in self.values.iter_mut() {
                *x = f(*x);
            }
        }
    }

    /// Keeps only the live tokens for which `keep(id, score)` is true.
    /// Survivors keep their relative order, so a sorted live set stays sorted.
    pub fn retain(&mut self, mut keep: impl FnMut(TokenId, f32) -> bool) {
        if self.truncated {
            let values = &*self.values;
            self.live.retain(|&id| keep(id, values[id as usize]));
        } else {
            self.live.clear();
            for (id, &x) in self.values.iter().enumerate() {
                if keep(id as TokenId, x) {
                    self.live.push(id as TokenId);
                }
            }
            self.truncated = true;
            self.sorted = false;
        }
    }

    /// Replaces the live set by `ids`, which must be a subset of the current
    /// live set. `sorted` says whether `ids` is in the order described in
    /// the type docs.
    ///
    /// Truncating processors that compute their survivors themselves call
    /// this with their result.
    ///
    /// An id `>= V` is never admitted: it is left out, and the step fails
    /// with [`Error::TokenOutOfRange`] at its next check
    /// ([`Scores::check_finite`], [`Scores::checked_dense`], every sampler,
    /// [`Pipeline::process`](crate::Pipeline::process) and the generator),
    /// so a processor's bad id is a typed error, never a panic or a
    /// silently different live set.
    ///
    /// ```
    /// use decoding::{Error, Scores};
    ///
    /// let mut row = vec![1.0, 2.0, 3.0];
    /// let mut live = Vec::new();
    /// let mut scores = Scores::new(&mut row, &mut live);
    /// scores.set_live([2, 7], false);
    /// assert_eq!(scores.live_ids(), Some(&[2][..]));
    /// assert_eq!(scores.check_finite(), Err(Error::TokenOutOfRange { id: 7, vocab_size: 3 }));
    /// ```
    pub fn set_live(&mut self, ids: impl IntoIterator<Item = TokenId>, sorted: bool) {
        self.live.clear();
        self.live.extend(ids);
        self.admit_live();
        self.truncated = true;
        self.sorted = sorted;
    }

    /// Drops the live ids `>= V`, remembering the first for the checks.
    fn admit_live(&mut self) {
        let v = self.values.len();
        if let Some(&id) = self.live.iter().find(|&&id| id as usize >= v) {
            self.out_of_range.get_or_insert(id);
            self.live.retain(|&id| (id as usize) < v);
        }
    }

    /// The error a truncation's out-of-range id left, if any.
    pub(crate) fn fault(&self) -> Result<(), Error> {
        match self.out_of_range {
            Some(id) => Err(Error::TokenOutOfRange { id, vocab_size: self.values.len() }),
            None => Ok(()),
        }
    }

    /// Gives a truncating processor the live-set buffer to fill in place
    /// (for example by selecting from the current live ids). The closure
    /// receives the current live set (all ids `0..V` are materialized first
    /// when nothing was truncated yet) and returns whether the result is
    /// sorted. The result must be a subset of the ids it was given (an id
    /// `>= V` is handled as by [`Scores::set_live`]).
    pub fn rewrite_live(&mut self, f: impl FnOnce(&[f32], &mut Vec<TokenId>) -> bool) {
        if !self.truncated {
            self.live.clear();
            self.live.extend(0..self.values.len() as TokenId);
        }
        let sorted = f(self.values, self.live);
        self.admit_live();
        self.truncated = true;
        self.sorted = sorted;
    }

    /// Sorts the live set (see the type docs for the order) and marks it
    /// sorted. Materializes all `V` ids first if nothing was truncated.
    pub fn sort_live(&mut self) {
        if self.is_sorted() {
            return;
        }
        self.rewrite_live(|values, live| {
            live.sort_unstable_by(|&a, &b| rank_ids_desc(values, a, b));
            true
        });
    }

    /// Writes `-inf` into every slot outside the live set and forgets the
    /// live set, so that the row alone is the processed row.
    pub fn densify(&mut self) {
        if !self.truncated {
            return;
        }
        self.live.sort_unstable();
        let mut next = 0usize;
        for &id in self.live.iter() {
            self.values[next..id as usize].fill(f32::NEG_INFINITY);
            next = id as usize + 1;
        }
        self.values[next..].fill(f32::NEG_INFINITY);
        self.live.clear();
        self.truncated = false;
        self.sorted = false;
    }

    /// The highest live score and the lowest id that holds it, or `None`
    /// when every live score is `-inf` (or nothing is live).
    ///
    /// NaN scores are skipped; rows are validated before processing.
    pub fn argmax(&self) -> Option<(TokenId, f32)> {
        if !self.truncated {
            return crate::math::argmax(self.values).map(|(i, x)| (i as TokenId, x));
        }
        let mut best: Option<(TokenId, f32)> = None;
        self.for_each_live(|id, x| {
            if x > f32::NEG_INFINITY {
                match best {
                    Some((b, bx)) if x < bx || (x == bx && id > b) => {}
                    _ => best = Some((id, x)),
                }
            }
        });
        best
    }

    /// The maximum live score (`-inf` when none is finite).
    pub fn max(&self) -> f32 {
        if self.truncated {
            crate::math::max_ids(self.values, self.live).0
        } else {
            crate::math::max(self.values)
        }
    }

    /// The maximum live score (`-inf` when none is finite), checking in the
    /// same pass that no live score is NaN or `+inf`: what a sampler needs
    /// first, for the price of the maximum alone.
    ///
    /// # Errors
    ///
    /// As [`Scores::check_finite`].
    pub(crate) fn checked_max(&self) -> Result<f32, Error> {
        self.fault()?;
        if !self.truncated {
            return crate::math::max_checked(self.values);
        }
        if self.values.is_empty() {
            return Err(Error::EmptyRow);
        }
        let (m, flagged) = crate::math::max_ids(self.values, self.live);
        if flagged {
            self.check_finite()?;
        }
        Ok(m)
    }

    /// Checks that no live score is NaN or `+inf`.
    ///
    /// # Errors
    ///
    /// [`Error::TokenOutOfRange`] when a truncation named an id `>= V` (see
    /// [`Scores::set_live`]), [`Error::InvalidLogit`] naming the first
    /// offending index (in live-set order), [`Error::EmptyRow`] when
    /// `V = 0`.
    pub fn check_finite(&self) -> Result<(), Error> {
        self.fault()?;
        if self.values.is_empty() {
            return Err(Error::EmptyRow);
        }
        if self.truncated {
            for &id in self.live.iter() {
                let x = self.values[id as usize];
                if x.is_nan() || x == f32::INFINITY {
                    return Err(Error::InvalidLogit { index: id as usize, value: x });
                }
            }
            Ok(())
        } else {
            crate::math::check_row(self.values)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn a_new_scores_has_every_token_live() {
        let mut row = vec![1.0, 2.0, 3.0];
        let mut live = vec![7, 8];
        let scores = Scores::new(&mut row, &mut live);
        assert!(!scores.is_truncated());
        assert_eq!(scores.live_len(), 3);
        assert_eq!(scores.live_ids(), None);
        assert_eq!(scores.get(2), Some(3.0));
        assert_eq!(scores.get(3), None);
    }

    #[test]
    fn retain_then_densify_masks_exactly_the_removed_tokens() {
        let mut row = vec![0.5, -1.0, 4.0, 2.0, NEG];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        scores.retain(|_, x| x > 0.0);
        assert_eq!(scores.live_ids(), Some(&[0, 2, 3][..]));
        assert_eq!(scores.get(1), Some(NEG));
        scores.retain(|id, _| id != 2);
        assert_eq!(scores.live_ids(), Some(&[0, 3][..]));
        scores.densify();
        assert!(!scores.is_truncated());
        assert_eq!(row, [0.5, NEG, NEG, 2.0, NEG]);
    }

    #[test]
    fn writes_outside_the_live_set_do_not_revive_a_token() {
        let mut row = vec![1.0, 2.0, 3.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        scores.set_live([2], true);
        scores.values_mut()[0] = 100.0;
        assert_eq!(scores.argmax(), Some((2, 3.0)));
        assert_eq!(scores.max(), 3.0);
        scores.densify();
        assert_eq!(row, [NEG, NEG, 3.0]);
    }

    #[test]
    fn sort_live_orders_by_score_then_higher_id_first() {
        let mut row = vec![1.0, 3.0, 1.0, 2.0, 3.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        scores.sort_live();
        assert!(scores.is_sorted());
        assert_eq!(scores.live_ids(), Some(&[4, 1, 3, 2, 0][..]));
        scores.for_each_live_mut(|_, x| *x = -*x);
        assert!(!scores.is_sorted());
    }

    #[test]
    fn scale_live_keeps_the_sorted_mark_and_touches_only_live_slots() {
        let mut row = vec![1.0, 3.0, 2.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        scores.set_live([1, 2], true);
        scores.scale_live(|x| x * 2.0);
        assert!(scores.is_sorted());
        assert_eq!(scores.values(), &[1.0, 6.0, 4.0]);
    }

    #[test]
    fn argmax_prefers_the_lowest_id_among_ties_and_skips_masked() {
        let mut row = vec![NEG, 5.0, 5.0, 1.0];
        let mut live = Vec::new();
        let scores = Scores::new(&mut row, &mut live);
        assert_eq!(scores.argmax(), Some((1, 5.0)));
        let mut all_masked = vec![NEG; 3];
        let mut live = Vec::new();
        assert_eq!(Scores::new(&mut all_masked, &mut live).argmax(), None);
    }

    #[test]
    fn check_finite_names_the_first_bad_index() {
        let mut row = vec![0.0; 40];
        row[33] = f32::NAN;
        row[35] = f32::INFINITY;
        let mut live = Vec::new();
        let scores = Scores::new(&mut row, &mut live);
        assert!(matches!(scores.check_finite(), Err(Error::InvalidLogit { index: 33, .. })));
        let mut empty: Vec<f32> = Vec::new();
        let mut live = Vec::new();
        assert_eq!(Scores::new(&mut empty, &mut live).check_finite(), Err(Error::EmptyRow));
        let mut ok = vec![NEG, 1.0, -3.0];
        let mut live = Vec::new();
        assert_eq!(Scores::new(&mut ok, &mut live).check_finite(), Ok(()));
    }

    #[test]
    fn check_finite_on_a_truncated_set_ignores_dead_slots() {
        let mut row = vec![f32::NAN, 1.0, 2.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        scores.set_live([1, 2], false);
        assert_eq!(scores.check_finite(), Ok(()));
    }
}
