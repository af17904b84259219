//! A fixed additive bias per token.

use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Adds a fixed bias to the score of each listed token: `s_id += bias`.
///
/// This is the OpenAI API's `logit_bias` and vLLM's per-request logit bias.
/// In Hugging Face transformers the same effect comes from
/// `SequenceBiasLogitsProcessor` with one-token sequences (see
/// [`SequenceBias`](crate::processors::SequenceBias) for the multi-token
/// form).
///
/// - **A bias of `-inf` bans** the token: its score becomes `-inf`.
/// - **A masked token stays masked**: any bias added to `-inf` leaves
///   `-inf` (never NaN, never a revival).
/// - **A finite bias never bans nor overflows**: the sum saturates at
///   `±f32::MAX`, so a finite score stays finite.
/// - **Each token may appear once**: a second bias for the same id is an
///   error rather than silently summed or overwritten (a JSON object, as
///   the OpenAI API takes, cannot hold the same key twice either).
/// - Unlike OpenAI (which rejects biases outside `[-100, 100]`), any
///   finite bias is accepted.
///
/// # Errors
///
/// [`LogitBias::new`] rejects NaN and `+inf` biases and repeated ids
/// ([`Error::InvalidParameter`] named `logit_bias`). `process` returns
/// [`Error::TokenOutOfRange`] when a listed id is not below the row's
/// vocabulary size, before touching the row.
///
/// # Performance
///
/// `O(n)` per step for `n` listed tokens, independent of the vocabulary
/// size; no allocation.
///
/// # Example
///
/// ```
/// use decoding::processors::LogitBias;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let mut row = vec![1.0, 2.0, 3.0, f32::NEG_INFINITY];
/// let mut live = Vec::new();
/// LogitBias::new([(0, 5.0), (2, f32::NEG_INFINITY), (3, 10.0)])?
///     .process(&Context::empty(), &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row, [6.0, 2.0, f32::NEG_INFINITY, f32::NEG_INFINITY]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LogitBias {
    /// `(id, bias)`, sorted by id, each id once.
    biases: Vec<(TokenId, f32)>,
}

impl LogitBias {
    /// A bias per token id. The biases must be finite or `-inf` (a ban).
    /// An empty list is the identity.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] (`logit_bias`) for a NaN or `+inf` bias
    /// or an id listed twice.
    pub fn new(biases: impl IntoIterator<Item = (TokenId, f32)>) -> Result<Self, Error> {
        let mut biases: Vec<(TokenId, f32)> = biases.into_iter().collect();
        for &(id, b) in &biases {
            if b.is_nan() || b == f32::INFINITY {
                return Err(Error::invalid(
                    "logit_bias",
                    "finite or -inf",
                    format_args!("{b} for token {id}"),
                ));
            }
        }
        biases.sort_unstable_by_key(|&(id, _)| id);
        if let Some(w) = biases.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(Error::invalid(
                "logit_bias",
                "one bias per token id",
                format_args!("token {} listed twice", w[0].0),
            ));
        }
        Ok(LogitBias { biases })
    }

    /// The biases, sorted by token id.
    pub fn biases(&self) -> &[(TokenId, f32)] {
        &self.biases
    }
}

/// `s + b` for a finite score and a finite or `-inf` bias, saturated at
/// `±f32::MAX` unless the bias is `-inf`; `-inf` scores stay `-inf`.
#[inline]
pub(crate) fn add_bias(s: f32, b: f32) -> f32 {
    if s == f32::NEG_INFINITY || b == f32::NEG_INFINITY {
        f32::NEG_INFINITY
    } else {
        (s + b).clamp(-f32::MAX, f32::MAX)
    }
}

impl LogitsProcessor for LogitBias {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let Some(&(max_id, _)) = self.biases.last() else {
            return Ok(());
        };
        let vocab_size = scores.vocab_size();
        if max_id as usize >= vocab_size {
            return Err(Error::TokenOutOfRange { id: max_id, vocab_size });
        }
        let values = scores.values_mut();
        for &(id, b) in &self.biases {
            let s = &mut values[id as usize];
            *s = add_bias(*s, b);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    fn run(biases: &[(TokenId, f32)], row: &[f32]) -> Result<Vec<f32>, Error> {
        let mut out = row.to_vec();
        let mut live = Vec::new();
        LogitBias::new(biases.iter().copied())?
            .process(&Context::empty(), &mut Scores::new(&mut out, &mut live))?;
        Ok(out)
    }

    #[test]
    fn adds_the_bias_of_each_listed_token() {
        assert_eq!(run(&[(2, -1.5), (0, 0.25)], &[1.0, 1.0, 1.0]).unwrap(), [1.25, 1.0, -0.5]);
    }

    #[test]
    fn minus_infinity_bans_and_masked_tokens_stay_masked() {
        assert_eq!(
            run(&[(0, NEG), (1, 5.0), (2, NEG)], &[3.0, NEG, NEG]).unwrap(),
            [NEG, NEG, NEG]
        );
    }

    #[test]
    fn finite_sums_saturate() {
        assert_eq!(run(&[(0, 3e38), (1, -3e38)], &[3e38, -3e38]).unwrap(), [f32::MAX, -f32::MAX]);
    }

    #[test]
    fn an_empty_list_is_the_identity() {
        assert_eq!(run(&[], &[1.0, NEG]).unwrap(), [1.0, NEG]);
    }

    #[test]
    fn ids_beyond_the_vocabulary_are_an_error_and_the_row_is_untouched() {
        let mut row = vec![1.0, 2.0];
        let mut live = Vec::new();
        let err = LogitBias::new([(0, 1.0), (2, 1.0)])
            .unwrap()
            .process(&Context::empty(), &mut Scores::new(&mut row, &mut live));
        assert_eq!(err, Err(Error::TokenOutOfRange { id: 2, vocab_size: 2 }));
        assert_eq!(row, [1.0, 2.0]);
    }

    #[test]
    fn rejects_nan_positive_infinity_and_repeated_ids() {
        for bad in
            [vec![(1, f32::NAN)], vec![(1, f32::INFINITY)], vec![(3, 1.0), (1, 0.0), (3, 1.0)]]
        {
            match LogitBias::new(bad.clone()) {
                Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "logit_bias"),
                other => panic!("{bad:?}: {other:?}"),
            }
        }
    }
}
