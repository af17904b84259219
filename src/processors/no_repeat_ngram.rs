//! N-gram blocking.

use crate::{Context, Error, LogitsProcessor, Scores};

/// Bans every token that would repeat an n-gram already present in the
/// history.
///
/// Matches Hugging Face transformers' `NoRepeatNGramLogitsProcessor`
/// (`no_repeat_ngram_size`) for decoder-only models: the history is
/// [`Context::tokens`], prompt included.
///
/// - With fewer than `n` tokens in the history, nothing is banned.
/// - Otherwise the last `n - 1` tokens form the current prefix. For every
///   window of `n` consecutive history tokens whose first `n - 1` tokens
///   equal that prefix, the window's last token is banned (`-inf`).
/// - `n = 1` bans every token of the history.
/// - History ids not below the row's vocabulary size take part in the
///   matching but are never written (transformers ignores them as well: a
///   token the head cannot produce needs no ban).
/// - Only scores are set to `-inf`; nothing else changes.
///
/// # Errors
///
/// [`NoRepeatNGram::new`] rejects `n = 0` (to disable n-gram blocking,
/// leave it out of the pipeline). `process` never fails.
///
/// # Performance
///
/// No state and no allocation. Each step scans the history once for the
/// positions holding the prefix's last token and compares the rest of the
/// prefix only there: `O(L)` for a history of `L` tokens in the typical
/// case, `O(L · n)` in the worst case (a history made of one repeated
/// token). The cost does not depend on the vocabulary size.
///
/// # Example
///
/// ```
/// use decoding::processors::NoRepeatNGram;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let history = [1, 2, 3, 1, 2];
/// let mut row = vec![0.0; 5];
/// let mut live = Vec::new();
/// NoRepeatNGram::new(3)?.process(&Context::prompt_only(&history), &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row, [0.0, 0.0, 0.0, f32::NEG_INFINITY, 0.0]); // [1, 2, 3] may not repeat
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoRepeatNGram {
    n: usize,
}

impl NoRepeatNGram {
    /// Blocks repeated n-grams of size `n >= 1`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] (`no_repeat_ngram_size`) when `n == 0`.
    pub fn new(n: usize) -> Result<Self, Error> {
        if n == 0 {
            return Err(Error::invalid(
                "no_repeat_ngram_size",
                "at least 1 (leave it out to disable n-gram blocking)",
                n,
            ));
        }
        Ok(NoRepeatNGram { n })
    }

    /// The n-gram size.
    pub fn n(&self) -> usize {
        self.n
    }
}

impl LogitsProcessor for NoRepeatNGram {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let tokens = ctx.tokens();
        let (n, len) = (self.n, tokens.len());
        if len < n {
            return Ok(());
        }
        // Borrow the row only to write a ban, so that a step that bans
        // nothing keeps the live set's sorted mark.
        let mut ban = |id: u32| {
            if let Some(s) = scores.values_mut().get_mut(id as usize) {
                *s = f32::NEG_INFINITY;
            }
        };
        if n == 1 {
            tokens.iter().for_each(|&id| ban(id));
            return Ok(());
        }
        let prefix = &tokens[len - (n - 1)..];
        let last = prefix[n - 2];
        // Window i covers tokens[i..i + n]; its prefix ends at j = i + n - 2.
        for (i, &t) in tokens[n - 2..len - 1].iter().enumerate() {
            if t == last && tokens[i..i + n - 2] == prefix[..n - 2] {
                ban(tokens[i + n - 1]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    fn run(n: usize, history: &[u32], v: usize) -> Vec<f32> {
        let mut out = vec![0.0; v];
        let mut live = Vec::new();
        NoRepeatNGram::new(n)
            .unwrap()
            .process(&Context::prompt_only(history), &mut Scores::new(&mut out, &mut live))
            .unwrap();
        out
    }

    #[test]
    fn bans_the_completion_of_a_seen_ngram() {
        // Checked against transformers' NoRepeatNGramLogitsProcessor.
        assert_eq!(run(3, &[1, 2, 3, 1, 2], 5), [0.0, 0.0, 0.0, NEG, 0.0]);
        assert_eq!(run(2, &[1, 2, 3, 1, 2], 5), [0.0, 0.0, 0.0, NEG, 0.0]);
    }

    #[test]
    fn bans_every_continuation_seen_after_the_prefix() {
        // After [4]: 1, 2 and 3 have all followed 4.
        assert_eq!(run(2, &[4, 1, 4, 2, 4, 3, 4], 5), [0.0, NEG, NEG, NEG, 0.0]);
        // A prefix of the same token repeated: windows overlap.
        assert_eq!(run(3, &[0, 0, 0, 0], 2), [NEG, 0.0]);
    }

    #[test]
    fn short_histories_ban_nothing() {
        assert_eq!(run(3, &[1, 1], 2), [0.0, 0.0]);
        assert_eq!(run(1, &[], 2), [0.0, 0.0]);
        // Exactly n tokens: one window, which is not followed by the prefix.
        assert_eq!(run(2, &[0, 1], 2), [0.0, 0.0]);
        assert_eq!(run(2, &[1, 1], 2), [0.0, NEG]);
    }

    #[test]
    fn unigrams_ban_the_whole_history() {
        assert_eq!(run(1, &[2, 0, 2], 4), [NEG, 0.0, NEG, 0.0]);
    }

    #[test]
    fn ids_beyond_the_vocabulary_match_but_are_not_written() {
        assert_eq!(run(2, &[9, 9], 3), [0.0, 0.0, 0.0]);
        assert_eq!(run(2, &[9, 9, 2, 9], 3), [0.0, 0.0, NEG]);
    }

    #[test]
    fn a_step_that_bans_nothing_keeps_the_sorted_mark() {
        let mut row = vec![3.0, 2.0, 1.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        scores.sort_live();
        let mut p = NoRepeatNGram::new(2).unwrap();
        p.process(&Context::prompt_only(&[0, 1]), &mut scores).unwrap();
        assert!(scores.is_sorted());
        p.process(&Context::prompt_only(&[0, 1, 0]), &mut scores).unwrap();
        assert!(!scores.is_sorted());
        scores.densify();
        assert_eq!(row, [3.0, NEG, 1.0]);
    }

    #[test]
    fn rejects_zero() {
        match NoRepeatNGram::new(0) {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "no_repeat_ngram_size"),
            other => panic!("{other:?}"),
        }
    }
}
