//! Tokens that are never generated.

use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Sets the score of each listed token to `-inf` at every step.
///
/// Matches Hugging Face transformers' `SuppressTokensLogitsProcessor`
/// (`suppress_tokens`, used by Whisper), except for ids out of range:
/// transformers silently ignores a listed id that is not below the row's
/// vocabulary size; here it is an error, because a suppression that does
/// nothing is a configuration mistake that would otherwise go unnoticed.
///
/// Repeated ids are harmless; an empty list is the identity.
///
/// # Errors
///
/// `process` returns [`Error::TokenOutOfRange`] when a listed id is not
/// below the row's vocabulary size, before touching the row.
///
/// # Performance
///
/// `O(n)` per step for `n` distinct listed ids; no allocation.
///
/// # Example
///
/// ```
/// use decoding::processors::SuppressTokens;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let mut row = vec![1.0, 2.0, 3.0];
/// let mut live = Vec::new();
/// SuppressTokens::new([2, 0]).process(&Context::empty(), &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row, [f32::NEG_INFINITY, 2.0, f32::NEG_INFINITY]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuppressTokens {
    ids: BanList,
}

impl SuppressTokens {
    /// Suppresses the given ids.
    pub fn new(ids: impl IntoIterator<Item = TokenId>) -> Self {
        SuppressTokens { ids: BanList::new(ids) }
    }

    /// The suppressed ids, sorted and without repeats.
    pub fn ids(&self) -> &[TokenId] {
        self.ids.ids()
    }
}

impl LogitsProcessor for SuppressTokens {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        self.ids.check(scores.vocab_size())?;
        self.ids.ban(scores);
        Ok(())
    }
}

/// A sorted, repeat-free list of ids to set to `-inf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BanList {
    ids: Vec<TokenId>,
}

impl BanList {
    pub(crate) fn new(ids: impl IntoIterator<Item = TokenId>) -> Self {
        let mut ids: Vec<TokenId> = ids.into_iter().collect();
        ids.sort_unstable();
        ids.dedup();
        BanList { ids }
    }

    pub(crate) fn ids(&self) -> &[TokenId] {
        &self.ids
    }

    /// [`Error::TokenOutOfRange`] for the largest id when it is not below
    /// `vocab_size`.
    pub(crate) fn check(&self, vocab_size: usize) -> Result<(), Error> {
        match self.ids.last() {
            Some(&id) if id as usize >= vocab_size => {
                Err(Error::TokenOutOfRange { id, vocab_size })
            }
            _ => Ok(()),
        }
    }

    /// Writes `-inf` at every listed id; call [`BanList::check`] first.
    pub(crate) fn ban(&self, scores: &mut Scores<'_>) {
        let values = scores.values_mut();
        for &id in &self.ids {
            if let Some(s) = values.get_mut(id as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn bans_listed_tokens_at_every_step() {
        let mut p = SuppressTokens::new([1, 3, 1]);
        assert_eq!(p.ids(), [1, 3]);
        let mut live = Vec::new();
        for history in [&[][..], &[0, 2], &[1, 1, 1]] {
            let mut row = vec![0.5, 0.5, NEG, 0.5];
            p.process(&Context::prompt_only(history), &mut Scores::new(&mut row, &mut live))
                .unwrap();
            assert_eq!(row, [0.5, NEG, NEG, NEG]);
        }
    }

    #[test]
    fn an_empty_list_is_the_identity() {
        let mut row = vec![0.5, NEG];
        let mut live = Vec::new();
        SuppressTokens::new([])
            .process(&Context::empty(), &mut Scores::new(&mut row, &mut live))
            .unwrap();
        assert_eq!(row, [0.5, NEG]);
    }

    #[test]
    fn ids_beyond_the_vocabulary_are_an_error_and_the_row_is_untouched() {
        let mut row = vec![0.5, 0.5];
        let mut live = Vec::new();
        let err = SuppressTokens::new([0, 2])
            .process(&Context::empty(), &mut Scores::new(&mut row, &mut live));
        assert_eq!(err, Err(Error::TokenOutOfRange { id: 2, vocab_size: 2 }));
        assert_eq!(row, [0.5, 0.5]);
    }
}
