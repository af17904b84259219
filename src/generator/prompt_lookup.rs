//! Prompt lookup: the draft of speculative decoding taken from the text
//! itself, by matching its last n-gram earlier in the prompt and the
//! generated tokens (Saxena 2023, "Prompt Lookup Decoding"; transformers'
//! `prompt_lookup_num_tokens`, vLLM's `ngram` speculative method).

use std::ops::Range;

use crate::{Error, TokenId, Verification};

/// Which occurrence of the last n-gram a [`PromptLookup`] copies from when
/// it occurs several times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum LookupMatch {
    /// The earliest occurrence with a continuation (transformers'
    /// `PromptLookupCandidateGenerator`, vLLM's `ngram` proposer).
    #[default]
    First,
    /// The most recent occurrence with a continuation: in a text that
    /// repeats with variations, the latest variant.
    Latest,
}

/// The options of prompt lookup decoding
/// ([`Generator::generate_prompt_lookup`](crate::Generator::generate_prompt_lookup)):
/// speculative decoding whose draft is not a model but a copy of what
/// followed the last n-gram of the text the last time it occurred.
///
/// # The draft of a round, exactly
///
/// With `t` the prompt followed by the tokens emitted so far (`L` tokens)
/// and `b` the round's budget (at most [`draft_tokens`](Self::draft_tokens)):
/// for `n` from `min(max_ngram, L - 1)` down to `min_ngram`, the windows
/// `t[i..i + n]` equal to the suffix `t[L - n..]` with `i + n < L` (so
/// that something follows them) are candidates; the first size with a
/// candidate wins, and its candidate of smallest `i`
/// ([`LookupMatch::First`], transformers' rule) or largest `i`
/// ([`LookupMatch::Latest`]) gives the draft `t[i + n..min(i + n + b, L)]`.
/// No candidate: nothing is drafted and the round is one plain step.
/// Longer matches are tried first because they predict better; the
/// continuation may run into the suffix itself (a periodic text drafts its
/// own next period).
///
/// Unlike transformers, the draft is not cut before an EOS id: a drafted
/// EOS ends the draft (as with a draft model) and is verified like any
/// other token, which emits the same tokens. Transformers' optional
/// filtering of drafted tokens through the processors is not done either:
/// verification already rejects a token the processed target row forbids.
///
/// # Verification
///
/// The draft is deterministic given the text, a point mass on the drafted
/// token. [`Verification::Greedy`] keeps a drafted token iff it is the
/// argmax of the processed target row (the tokens of plain greedy
/// generation). [`Verification::Sampled`] draws the position's token from
/// the processed target row as plain generation does and keeps the drafted
/// one iff the draw equals it (Leviathan's rule for a point-mass draft:
/// kept with probability `p(x)`, else a draw from `p` without `x`): one
/// draw per emitted token, as in plain sampling, so a seed gives exactly
/// the tokens of plain generation with
/// [`Categorical`](crate::sampler::Categorical).
///
/// # Example
///
/// ```
/// use decoding::{LookupMatch, PromptLookup, Verification};
///
/// let lookup = PromptLookup::new(3, 2, Verification::Greedy)?;
/// // The last bigram (7, 8) occurred at the start: what followed it is copied.
/// assert_eq!(lookup.lookup(&[7, 8, 9, 10, 11, 7, 8], 3), &[9, 10, 11]);
/// // The last token 5 occurs twice earlier; the first occurrence is used
/// // by default, the latest on request.
/// assert_eq!(lookup.lookup(&[5, 1, 5, 2, 5], 1), &[1]);
/// let latest = lookup.with_match(LookupMatch::Latest);
/// assert_eq!(latest.lookup(&[5, 1, 5, 2, 5], 1), &[2]);
/// // Nothing to copy.
/// assert!(lookup.lookup(&[1, 2, 3], 3).is_empty());
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PromptLookup {
    draft_tokens: usize,
    max_ngram: usize,
    min_ngram: usize,
    verification: Verification,
    matching: LookupMatch,
}

impl PromptLookup {
    /// Up to `draft_tokens` tokens copied per round (transformers'
    /// `prompt_lookup_num_tokens`, default there 10) after a match of the
    /// last `max_ngram` tokens or fewer (transformers'
    /// `max_matching_ngram_size`, default 2), down to one token; drafted
    /// tokens are checked by `verification`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `draft_tokens` or `max_ngram`
    /// when it is 0.
    pub fn new(
        draft_tokens: usize,
        max_ngram: usize,
        verification: Verification,
    ) -> Result<Self, Error> {
        if draft_tokens == 0 {
            return Err(Error::invalid("draft_tokens", "at least 1", draft_tokens));
        }
        if max_ngram == 0 {
            return Err(Error::invalid("max_ngram", "at least 1", max_ngram));
        }
        Ok(PromptLookup {
            draft_tokens,
            max_ngram,
            min_ngram: 1,
            verification,
            matching: LookupMatch::First,
        })
    }

    /// The shortest n-gram matched (vLLM's `prompt_lookup_min`; 1 unless
    /// set): a match of fewer tokens drafts nothing.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `min_ngram` unless
    /// `1 <= min_ngram <= max_ngram`.
    pub fn with_min_ngram(mut self, min_ngram: usize) -> Result<Self, Error> {
        if min_ngram == 0 || min_ngram > self.max_ngram {
            return Err(Error::invalid("min_ngram", "in 1..=max_ngram", min_ngram));
        }
        self.min_ngram = min_ngram;
        Ok(self)
    }

    /// Which occurrence of the n-gram is copied from.
    pub fn with_match(mut self, matching: LookupMatch) -> Self {
        self.matching = matching;
        self
    }

    /// The most tokens drafted per round.
    pub fn draft_tokens(&self) -> usize {
        self.draft_tokens
    }

    /// The longest n-gram matched.
    pub fn max_ngram(&self) -> usize {
        self.max_ngram
    }

    /// The shortest n-gram matched.
    pub fn min_ngram(&self) -> usize {
        self.min_ngram
    }

    /// How drafted tokens are checked.
    pub fn verification(&self) -> Verification {
        self.verification
    }

    /// Which occurrence is copied from.
    pub fn matching(&self) -> LookupMatch {
        self.matching
    }

    /// The draft for the text `tokens`: at most `budget` tokens (see the
    /// type's docs for the rule), a slice of `tokens`; empty when nothing
    /// matches or `budget` is 0.
    ///
    /// # Performance
    ///
    /// No allocation; `O(L · n)` token comparisons at worst for a text of
    /// `L` tokens and `n = max_ngram`, usually one comparison per position
    /// and n-gram size (a window is compared only where its last token
    /// matches).
    pub fn lookup<'t>(&self, tokens: &'t [TokenId], budget: usize) -> &'t [TokenId] {
        &tokens[self.find(tokens, budget)]
    }

    /// Where [`PromptLookup::lookup`]'s draft lies in `tokens`.
    pub(crate) fn find(&self, tokens: &[TokenId], budget: usize) -> Range<usize> {
        let len = tokens.len();
        if budget == 0 || len < 2 || self.min_ngram > len - 1 {
            return 0..0;
        }
        let top = self.max_ngram.min(len - 1);
        for n in (self.min_ngram..=top).rev() {
            let suffix = &tokens[len - n..];
            let last = suffix[n - 1];
            // `end` is the index just past a window `tokens[end - n..end]`;
            // windows with something after them end at `end < len`.
            let matches = |&end: &usize| tokens[end - 1] == last && &tokens[end - n..end] == suffix;
            let found = match self.matching {
                LookupMatch::First => (n..len).find(matches),
                LookupMatch::Latest => (n..len).rev().find(matches),
            };
            if let Some(end) = found {
                return end..len.min(end.saturating_add(budget));
            }
        }
        0..0
    }
}
