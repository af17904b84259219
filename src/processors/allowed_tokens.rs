//! Constrained decoding: a callback names the tokens allowed at each step.

use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// A set of token ids below a vocabulary size `V`, one bit per token in
/// 64-bit words (bit `id % 64` of word `id / 64`).
///
/// The layout is the one grammar engines fill (a `⌈V / 64⌉`-word bitmask),
/// and [`TokenBitmask::words_mut`] exposes it so an engine can write whole
/// words at once. Bits at or above `V` in the last word are ignored.
///
/// # Example
///
/// ```
/// use decoding::processors::TokenBitmask;
///
/// let mut mask = TokenBitmask::new(130);
/// mask.insert(3)?;
/// mask.insert(129)?;
/// assert!(mask.contains(129) && !mask.contains(4));
/// assert_eq!(mask.iter().collect::<Vec<_>>(), [3, 129]);
/// assert!(mask.insert(130).is_err());
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenBitmask {
    words: Vec<u64>,
    len: usize,
}

impl TokenBitmask {
    /// An empty set over a vocabulary of `vocab_size` tokens.
    pub fn new(vocab_size: usize) -> Self {
        TokenBitmask { words: vec![0; vocab_size.div_ceil(64)], len: vocab_size }
    }

    /// The vocabulary size `V`.
    pub fn vocab_size(&self) -> usize {
        self.len
    }

    /// Resizes to `vocab_size` tokens and empties the set, reusing the
    /// allocation.
    pub fn reset(&mut self, vocab_size: usize) {
        self.words.clear();
        self.words.resize(vocab_size.div_ceil(64), 0);
        self.len = vocab_size;
    }

    /// Empties the set.
    pub fn clear(&mut self) {
        self.words.fill(0);
    }

    /// Adds every token `0..V`.
    pub fn fill(&mut self) {
        self.words.fill(u64::MAX);
    }

    /// Adds `id`.
    ///
    /// # Errors
    ///
    /// [`Error::TokenOutOfRange`] when `id >= V`.
    pub fn insert(&mut self, id: TokenId) -> Result<(), Error> {
        if id as usize >= self.len {
            return Err(Error::TokenOutOfRange { id, vocab_size: self.len });
        }
        self.words[id as usize / 64] |= 1 << (id % 64);
        Ok(())
    }

    /// Removes `id` (nothing happens when it is absent or out of range).
    pub fn remove(&mut self, id: TokenId) {
        if (id as usize) < self.len {
            self.words[id as usize / 64] &= !(1 << (id % 64));
        }
    }

    /// Whether `id` is in the set (`false` for `id >= V`).
    #[inline]
    pub fn contains(&self, id: TokenId) -> bool {
        (id as usize) < self.len && self.words[id as usize / 64] >> (id % 64) & 1 == 1
    }

    /// The number of tokens in the set.
    pub fn count(&self) -> usize {
        self.iter_words().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set holds no token.
    pub fn is_empty(&self) -> bool {
        self.iter_words().all(|w| w == 0)
    }

    /// The tokens of the set, ascending. Costs `O(V / 64 + count)`.
    pub fn iter(&self) -> impl Iterator<Item = TokenId> + '_ {
        self.iter_words().enumerate().flat_map(|(i, mut w)| {
            std::iter::from_fn(move || {
                if w == 0 {
                    return None;
                }
                let bit = w.trailing_zeros();
                w &= w - 1;
                Some((i * 64) as TokenId + bit)
            })
        })
    }

    /// The words, `⌈V / 64⌉` of them.
    pub fn words(&self) -> &[u64] {
        &self.words
    }

    /// The words, mutably, for an engine that writes whole words. Bits at
    /// or above `V` are ignored by every query.
    pub fn words_mut(&mut self) -> &mut [u64] {
        &mut self.words
    }

    /// Loads a bitmask of 32-bit words (bit `id % 32` of word `id / 32`,
    /// the layout of llguidance, XGrammar and outlines), keeping only the
    /// tokens below `limit` (and below `V`): one pass over the words, no
    /// allocation.
    ///
    /// ```
    /// use decoding::processors::TokenBitmask;
    ///
    /// let mut mask = TokenBitmask::new(100);
    /// mask.load_u32_words(&[0b1010, 0, 1 << 2], 70);
    /// assert_eq!(mask.iter().collect::<Vec<_>>(), [1, 3, 66]);
    /// mask.load_u32_words(&[0b1010, 0, 1 << 2], 66);
    /// assert_eq!(mask.iter().collect::<Vec<_>>(), [1, 3]);
    /// ```
    pub fn load_u32_words(&mut self, words: &[u32], limit: usize) {
        let limit = limit.min(self.len);
        let full = limit / 64;
        let word = |i: usize| words.get(i).copied().unwrap_or(0) as u64;
        for (i, w) in self.words.iter_mut().enumerate() {
            *w = if i <= full { word(2 * i) | word(2 * i + 1) << 32 } else { 0 };
        }
        let tail = limit % 64;
        if let Some(w) = self.words.get_mut(full) {
            *w &= (1u64 << tail).wrapping_sub(1);
        }
    }

    /// Removes from the live set of `scores` every token not in the set:
    /// the masking step of every constraint. Allowed tokens keep their
    /// scores; the live set keeps its order.
    ///
    /// On a row that nothing has truncated yet, a set that allows more than
    /// half of the row bans the other tokens in place (their slots become
    /// `-inf`) and leaves the row whole, so that later stages and the
    /// sampler keep their dense paths; a smaller set becomes the live set.
    /// The processed row is the same either way. The cost is one pass over
    /// the set's words plus one write per removed token (or one push per
    /// allowed token), with no allocation once the live set's buffer has
    /// grown.
    ///
    /// # Errors
    ///
    /// [`Error::NoAllowedToken`] when the set is empty,
    /// [`Error::AllMasked`] when every token of the set is already masked
    /// (`-inf`, or outside the live set). A masked token is never revived.
    pub fn restrict(&self, scores: &mut Scores<'_>) -> Result<(), Error> {
        if self.is_empty() {
            return Err(Error::NoAllowedToken);
        }
        let v = scores.vocab_size();
        if scores.is_truncated() {
            scores.retain(|id, _| self.contains(id));
        } else if 2 * self.count() > v {
            return self.ban_others(scores.values_mut());
        } else {
            scores.set_live(self.iter().filter(|&id| (id as usize) < v), false);
        }
        let mut any_finite = false;
        scores.for_each_live(|_, x| any_finite |= x > f32::NEG_INFINITY);
        if !any_finite {
            return Err(Error::AllMasked);
        }
        Ok(())
    }

    /// Writes `-inf` over every slot of `row` whose token is not in the set
    /// (ids past the set's `V` included).
    ///
    /// # Errors
    ///
    /// [`Error::AllMasked`] when every allowed token of the row was `-inf`
    /// already.
    fn ban_others(&self, row: &mut [f32]) -> Result<(), Error> {
        let mut any_finite = false;
        for (i, allowed) in self.iter_words().enumerate() {
            let base = i * 64;
            let Some(slots) = row.get_mut(base..(base + 64).min(row.len())) else { break };
            let mut banned = !allowed;
            while banned != 0 {
                let bit = banned.trailing_zeros() as usize;
                match slots.get_mut(bit) {
                    Some(x) => *x = f32::NEG_INFINITY,
                    None => break,
                }
                banned &= banned - 1;
            }
            let mut kept = allowed;
            while kept != 0 && !any_finite {
                let bit = kept.trailing_zeros() as usize;
                any_finite = slots.get(bit).is_some_and(|&x| x > f32::NEG_INFINITY);
                kept &= kept - 1;
            }
        }
        let covered = (self.words.len() * 64).min(row.len());
        row[covered..].fill(f32::NEG_INFINITY);
        if any_finite { Ok(()) } else { Err(Error::AllMasked) }
    }

    /// The words with the bits at or above `V` cleared.
    fn iter_words(&self) -> impl Iterator<Item = u64> + '_ {
        let tail = self.len % 64;
        let last = self.words.len().wrapping_sub(1);
        self.words
            .iter()
            .enumerate()
            .map(move |(i, &w)| if i == last && tail != 0 { w & ((1u64 << tail) - 1) } else { w })
    }
}

/// Restricts each step to the tokens a callback allows: the hook through
/// which a grammar or schema engine constrains generation.
///
/// The equivalent of Hugging Face transformers'
/// `PrefixConstrainedLogitsProcessor` (`prefix_allowed_tokens_fn`), with the
/// allowed set handed over as a [`TokenBitmask`] instead of a list. At every
/// step the processor empties its bitmask (sized to the row's `V`), calls
///
/// ```text
/// allowed(ctx, &mut mask) -> Result<(), Error>
/// ```
///
/// and removes from the live set every token not in `mask`.
///
/// - **No allowed token** is an error, [`Error::NoAllowedToken`]: the
///   constraint is unsatisfiable here and sampling anything would break it.
/// - **Every allowed token already masked** (`-inf`, or removed by an
///   earlier truncation) is [`Error::AllMasked`]. transformers instead
///   resets the allowed tokens to a score of 0, reviving tokens an earlier
///   processor banned; this crate never revives a masked token.
/// - An error returned by the callback is passed through unchanged.
/// - A callback that [`reset`](TokenBitmask::reset)s the mask to another
///   vocabulary size is [`Error::VocabSizeMismatch`] (expected: the row's
///   `V`; actual: the mask's).
/// - Allowed tokens keep their scores; the live set keeps its order (a
///   sorted live set stays sorted).
///
/// # Errors
///
/// `process` returns [`Error::NoAllowedToken`], [`Error::AllMasked`],
/// [`Error::VocabSizeMismatch`], or the callback's error, as above.
///
/// # Performance
///
/// The bitmask is kept between steps: no allocation once it has grown.
/// Before any truncation the live set is built from the bitmask in
/// `O(V / 64 + allowed)`; after one, each live token is tested in `O(1)`.
///
/// # Example
///
/// ```
/// use decoding::processors::AllowedTokens;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// // Only even tokens may follow.
/// let mut even = AllowedTokens::new(|_ctx: &Context<'_>, mask: &mut decoding::processors::TokenBitmask| {
///     for id in (0..mask.vocab_size() as u32).step_by(2) {
///         mask.insert(id)?;
///     }
///     Ok(())
/// });
/// let mut row = vec![1.0, 5.0, 2.0, 4.0];
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// even.process(&Context::empty(), &mut scores)?;
/// assert_eq!(scores.live_ids(), Some(&[0, 2][..]));
/// # Ok::<(), decoding::Error>(())
/// ```
pub struct AllowedTokens<F> {
    allowed: F,
    mask: TokenBitmask,
}

impl<F> AllowedTokens<F>
where
    F: FnMut(&Context<'_>, &mut TokenBitmask) -> Result<(), Error>,
{
    /// The constraint given by `allowed`, which fills an empty bitmask with
    /// the tokens allowed after the history it is shown.
    pub fn new(allowed: F) -> Self {
        AllowedTokens { allowed, mask: TokenBitmask::default() }
    }
}

impl<F> std::fmt::Debug for AllowedTokens<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AllowedTokens").field("vocab_size", &self.mask.vocab_size()).finish()
    }
}

impl<F> LogitsProcessor for AllowedTokens<F>
where
    F: FnMut(&Context<'_>, &mut TokenBitmask) -> Result<(), Error>,
{
    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let v = scores.vocab_size();
        self.mask.reset(v);
        (self.allowed)(ctx, &mut self.mask)?;
        // The callback may `reset` the mask to another size: its ids would
        // not be the row's.
        if self.mask.vocab_size() != v {
            return Err(Error::VocabSizeMismatch { expected: v, actual: self.mask.vocab_size() });
        }
        self.mask.restrict(scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogitsProcessorExt;

    #[test]
    fn a_set_allowing_most_of_a_whole_row_bans_the_rest_in_place() {
        const NEG: f32 = f32::NEG_INFINITY;
        // 130 tokens: three words, the last one partial; all but 5 allowed.
        let v = 130;
        let mut mask = TokenBitmask::new(v);
        mask.fill();
        for id in [0, 63, 64, 100, 129] {
            mask.remove(id);
        }
        let mut row: Vec<f32> = (0..v).map(|i| i as f32).collect();
        row[1] = NEG;
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        mask.restrict(&mut scores).unwrap();
        assert!(!scores.is_truncated());
        for id in 0..v as TokenId {
            let want = if [0, 1, 63, 64, 100, 129].contains(&id) { NEG } else { id as f32 };
            assert_eq!(scores.get(id), Some(want), "token {id}");
        }
        // The same processed row as the live-set path gives.
        let mut sparse_row: Vec<f32> = (0..v).map(|i| i as f32).collect();
        sparse_row[1] = NEG;
        let mut live = Vec::new();
        let mut sparse = Scores::new(&mut sparse_row, &mut live);
        sparse.set_live(0..v as TokenId, false);
        mask.restrict(&mut sparse).unwrap();
        sparse.densify();
        assert_eq!(sparse_row, row);

        // A mask shorter than the row bans the ids past it.
        let mut short = TokenBitmask::new(70);
        short.fill();
        let mut row = vec![1.0; v];
        let mut live = Vec::new();
        short.restrict(&mut Scores::new(&mut row, &mut live)).unwrap();
        assert!(row[..70].iter().all(|&x| x == 1.0) && row[70..].iter().all(|&x| x == NEG));

        // Every allowed token already masked: AllMasked, never revived.
        let mut row = vec![NEG; v];
        row[0] = 5.0;
        let mut live = Vec::new();
        let err = mask.restrict(&mut Scores::new(&mut row, &mut live));
        assert_eq!(err, Err(Error::AllMasked));
    }
    use crate::processors::TopK;

    const NEG: f32 = f32::NEG_INFINITY;

    fn allow(
        ids: &'static [TokenId],
    ) -> impl FnMut(&Context<'_>, &mut TokenBitmask) -> Result<(), Error> {
        move |_, mask| ids.iter().try_for_each(|&id| mask.insert(id))
    }

    fn run(p: &mut impl LogitsProcessor, row: &[f32]) -> Result<Vec<f32>, Error> {
        let mut out = row.to_vec();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut out, &mut live);
        p.process(&Context::empty(), &mut scores)?;
        scores.densify();
        Ok(out)
    }

    #[test]
    fn bitmask_basics() {
        let mut m = TokenBitmask::new(70);
        assert_eq!(m.words().len(), 2);
        assert!(m.is_empty() && m.count() == 0);
        m.insert(0).unwrap();
        m.insert(63).unwrap();
        m.insert(64).unwrap();
        m.insert(69).unwrap();
        assert_eq!(m.iter().collect::<Vec<_>>(), [0, 63, 64, 69]);
        assert_eq!(m.count(), 4);
        m.remove(63);
        m.remove(1000);
        assert!(!m.contains(63) && m.contains(64) && !m.contains(70));
        assert_eq!(m.insert(70), Err(Error::TokenOutOfRange { id: 70, vocab_size: 70 }));
        // Stray bits past V written through words_mut are ignored.
        m.clear();
        m.words_mut()[1] = 1 << 10;
        assert!(m.is_empty() && !m.contains(74));
        m.fill();
        assert_eq!(m.count(), 70);
        assert_eq!(m.iter().last(), Some(69));
        m.reset(3);
        assert_eq!((m.vocab_size(), m.count()), (3, 0));
    }

    #[test]
    fn keeps_exactly_the_allowed_tokens() {
        let mut p = AllowedTokens::new(allow(&[1, 3]));
        assert_eq!(run(&mut p, &[1.0, 2.0, 3.0, 4.0]).unwrap(), [NEG, 2.0, NEG, 4.0]);
        // After a truncation: the intersection, in the live set's order.
        let mut chain = TopK::new(2).unwrap().then(AllowedTokens::new(allow(&[0, 2, 3])));
        let mut row = vec![1.0, 2.0, 3.0, 4.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        chain.process(&Context::empty(), &mut scores).unwrap();
        assert_eq!(scores.live_ids(), Some(&[3, 2][..]));
        assert!(scores.is_sorted());
    }

    #[test]
    fn empty_and_masked_allowed_sets_are_errors() {
        let mut none = AllowedTokens::new(allow(&[]));
        assert_eq!(run(&mut none, &[1.0, 2.0]), Err(Error::NoAllowedToken));
        // Allowed token 1 is already masked: not revived.
        let mut p = AllowedTokens::new(allow(&[1]));
        assert_eq!(run(&mut p, &[1.0, NEG, 3.0]), Err(Error::AllMasked));
        // Allowed token 0 was truncated away by top-k.
        let mut chain = TopK::new(1).unwrap().then(AllowedTokens::new(allow(&[0])));
        assert_eq!(run(&mut chain, &[1.0, 2.0]), Err(Error::AllMasked));
    }

    #[test]
    fn the_callback_sees_the_history_and_its_errors_pass_through() {
        let mut follow = AllowedTokens::new(|ctx: &Context<'_>, mask: &mut TokenBitmask| {
            let last = ctx.tokens().last().copied().unwrap_or(0);
            mask.insert(last + 1)
        });
        let history = [4];
        let mut row = vec![0.0; 6];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        follow.process(&Context::prompt_only(&history), &mut scores).unwrap();
        assert_eq!(scores.live_ids(), Some(&[5][..]));
        let history = [5];
        let mut scores = Scores::new(&mut row, &mut live);
        let err = follow.process(&Context::prompt_only(&history), &mut scores);
        assert_eq!(err, Err(Error::TokenOutOfRange { id: 6, vocab_size: 6 }));
    }
}
