//! An additive bias on token sequences.

use std::ops::Range;

use crate::processors::logit_bias::add_bias;
use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Adds a bias to the token that would complete a given sequence.
///
/// Matches Hugging Face transformers' `SequenceBiasLogitsProcessor`:
///
/// - A **one-token** sequence `[t]` biases `t` at every step.
/// - A **longer** sequence `[p_1, …, p_k, t]` biases its last token `t`
///   only when the history ([`Context::tokens`], prompt included) ends
///   with `p_1, …, p_k`, that is when the next token can complete it. A
///   prefix longer than the history never matches.
/// - When several sequences bias the same token at one step, their
///   biases add. They are summed first, in transformers' order (the
///   one-token bias, then the longer sequences grouped by prefix length in
///   order of first appearance), and the sum is added to the score once, so
///   the result is bit for bit what transformers computes.
/// - **A bias of `-inf` bans** the completion; a masked (`-inf`) token
///   stays masked whatever the bias; a finite bias never bans nor
///   overflows (the result saturates at `±f32::MAX`).
/// - **Each sequence may appear once.** transformers silently keeps the
///   last bias of a repeated sequence; here it is an error. An empty list
///   is the identity (transformers rejects it).
///
/// # Errors
///
/// [`SequenceBias::new`] returns [`Error::InvalidParameter`]
/// (`sequence_bias`) for an empty sequence, a NaN or `+inf` bias, or a
/// sequence listed twice. `process` returns [`Error::TokenOutOfRange`] when
/// any id of any sequence is not below the row's vocabulary size (as
/// transformers raises), before touching the row.
///
/// # Performance
///
/// Per step, one comparison of each prefix with the end of the history:
/// `O(Σ prefix lengths)` in the worst case, independent of the history
/// length and of the vocabulary size. No allocation.
///
/// # Example
///
/// ```
/// use decoding::processors::SequenceBias;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let mut bias = SequenceBias::new([(vec![3], 1.0), (vec![0, 1, 2], -4.0)])?;
/// let mut live = Vec::new();
///
/// let mut row = vec![0.0; 4];
/// bias.process(&Context::prompt_only(&[5, 0, 1]), &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row, [0.0, 0.0, -4.0, 1.0]); // [0, 1] just occurred: 2 is biased
///
/// let mut row = vec![0.0; 4];
/// bias.process(&Context::prompt_only(&[0, 1, 5]), &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row, [0.0, 0.0, 0.0, 1.0]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SequenceBias {
    /// The prefixes of the multi-token sequences, concatenated.
    prefixes: Vec<TokenId>,
    /// The multi-token sequences, grouped by target, in summation order.
    entries: Vec<Entry>,
    /// One per distinct biased token, sorted by id.
    targets: Vec<Target>,
    /// The largest id of any sequence.
    max_id: Option<TokenId>,
}

#[derive(Debug, Clone, PartialEq)]
struct Entry {
    prefix: Range<usize>,
    bias: f32,
}

#[derive(Debug, Clone, PartialEq)]
struct Target {
    id: TokenId,
    /// The bias of the one-token sequence `[id]`, if listed.
    single: Option<f32>,
    /// The entries whose last token is `id`.
    entries: Range<usize>,
}

impl SequenceBias {
    /// A bias per token sequence. Biases must be finite or `-inf` (a ban).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] (`sequence_bias`) for an empty sequence,
    /// a NaN or `+inf` bias, or a sequence listed twice.
    pub fn new(sequences: impl IntoIterator<Item = (Vec<TokenId>, f32)>) -> Result<Self, Error> {
        Self::build(sequences, "sequence_bias", false)
    }

    /// Builds the matcher. With `merge_duplicates`, a repeated sequence
    /// keeps its first bias instead of being an error (bad-word lists,
    /// whose biases are all `-inf`).
    pub(crate) fn build(
        sequences: impl IntoIterator<Item = (Vec<TokenId>, f32)>,
        name: &'static str,
        merge_duplicates: bool,
    ) -> Result<Self, Error> {
        let mut list: Vec<(Vec<TokenId>, f32)> = Vec::new();
        for (seq, bias) in sequences {
            if seq.is_empty() {
                return Err(Error::invalid(
                    name,
                    "made of non-empty sequences",
                    "an empty sequence",
                ));
            }
            if bias.is_nan() || bias == f32::INFINITY {
                return Err(Error::invalid(
                    name,
                    "finite or -inf",
                    format_args!("{bias} for {seq:?}"),
                ));
            }
            list.push((seq, bias));
        }

        // Repeated sequences: an error, or keep the first occurrence.
        let mut order: Vec<usize> = (0..list.len()).collect();
        order.sort_by(|&a, &b| list[a].0.cmp(&list[b].0).then(a.cmp(&b)));
        let mut keep = vec![true; list.len()];
        for w in order.windows(2) {
            if list[w[0]].0 == list[w[1]].0 {
                if !merge_duplicates {
                    return Err(Error::invalid(
                        name,
                        "made of distinct sequences",
                        format_args!("{:?} listed twice", list[w[1]].0),
                    ));
                }
                keep[w[1]] = false;
            }
        }
        let list: Vec<(Vec<TokenId>, f32)> =
            list.into_iter().zip(keep).filter_map(|(e, k)| k.then_some(e)).collect();

        // transformers sums the longer sequences group by group, the groups
        // (by prefix length) in order of first appearance.
        let mut rank_of_len: Vec<usize> = Vec::new();
        let mut multi: Vec<(TokenId, usize, usize)> = Vec::new(); // (target, rank, index)
        for (i, (seq, _)) in list.iter().enumerate() {
            if seq.len() > 1 {
                let rank = match rank_of_len.iter().position(|&l| l == seq.len()) {
                    Some(r) => r,
                    None => {
                        rank_of_len.push(seq.len());
                        rank_of_len.len() - 1
                    }
                };
                multi.push((seq[seq.len() - 1], rank, i));
            }
        }
        multi.sort_by_key(|&(target, rank, i)| (target, rank, i));

        let mut ids: Vec<TokenId> = list.iter().map(|(seq, _)| seq[seq.len() - 1]).collect();
        ids.sort_unstable();
        ids.dedup();

        let mut singles: Vec<(TokenId, f32)> =
            list.iter().filter(|(seq, _)| seq.len() == 1).map(|(seq, b)| (seq[0], *b)).collect();
        singles.sort_unstable_by_key(|&(id, _)| id);

        let mut prefixes = Vec::new();
        let mut entries = Vec::with_capacity(multi.len());
        let mut targets = Vec::with_capacity(ids.len());
        let mut next = 0;
        for id in ids {
            let single = singles.binary_search_by_key(&id, |&(t, _)| t).ok().map(|i| singles[i].1);
            let first = entries.len();
            while next < multi.len() && multi[next].0 == id {
                let (seq, bias) = &list[multi[next].2];
                let start = prefixes.len();
                prefixes.extend_from_slice(&seq[..seq.len() - 1]);
                entries.push(Entry { prefix: start..prefixes.len(), bias: *bias });
                next += 1;
            }
            targets.push(Target { id, single, entries: first..entries.len() });
        }
        let max_id = list.iter().flat_map(|(seq, _)| seq.iter().copied()).max();
        Ok(SequenceBias { prefixes, entries, targets, max_id })
    }
}

impl LogitsProcessor for SequenceBias {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let Some(max_id) = self.max_id else {
            return Ok(());
        };
        let vocab_size = scores.vocab_size();
        if max_id as usize >= vocab_size {
            return Err(Error::TokenOutOfRange { id: max_id, vocab_size });
        }
        let history = ctx.tokens();
        for target in &self.targets {
            let mut applies = target.single.is_some();
            let mut banned = target.single == Some(f32::NEG_INFINITY);
            let mut total = match target.single {
                Some(b) if b > f32::NEG_INFINITY => b,
                _ => 0.0,
            };
            for entry in &self.entries[target.entries.clone()] {
                if history.ends_with(&self.prefixes[entry.prefix.clone()]) {
                    applies = true;
                    if entry.bias == f32::NEG_INFINITY {
                        banned = true;
                    } else {
                        total += entry.bias;
                    }
                }
            }
            if applies {
                let s = &mut scores.values_mut()[target.id as usize];
                *s = if banned {
                    f32::NEG_INFINITY
                } else {
                    add_bias(*s, total.clamp(-f32::MAX, f32::MAX))
                };
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    fn run(
        seqs: &[(&[TokenId], f32)],
        history: &[TokenId],
        row: &[f32],
    ) -> Result<Vec<f32>, Error> {
        let mut out = row.to_vec();
        let mut live = Vec::new();
        SequenceBias::new(seqs.iter().map(|&(s, b)| (s.to_vec(), b)))?
            .process(&Context::prompt_only(history), &mut Scores::new(&mut out, &mut live))?;
        Ok(out)
    }

    #[test]
    fn single_tokens_are_always_biased() {
        assert_eq!(run(&[(&[1], 2.0)], &[], &[0.0, 0.0]).unwrap(), [0.0, 2.0]);
        assert_eq!(run(&[(&[1], 2.0)], &[0, 0], &[0.0, 0.0]).unwrap(), [0.0, 2.0]);
    }

    #[test]
    fn longer_sequences_need_their_prefix_at_the_end_of_the_history() {
        let seqs: &[(&[TokenId], f32)] = &[(&[1, 2, 3], -1.0)];
        let row = [0.0; 4];
        assert_eq!(run(seqs, &[0, 1, 2], &row).unwrap(), [0.0, 0.0, 0.0, -1.0]);
        assert_eq!(run(seqs, &[1, 2, 0], &row).unwrap(), [0.0; 4]);
        assert_eq!(run(seqs, &[2], &row).unwrap(), [0.0; 4]);
        assert_eq!(run(seqs, &[], &row).unwrap(), [0.0; 4]);
        // The prefix may lie in the prompt.
        let history = [1, 2];
        let mut out = row.to_vec();
        let mut live = Vec::new();
        SequenceBias::new([(vec![1, 2, 3], -1.0)])
            .unwrap()
            .process(&Context::new(&history, 2).unwrap(), &mut Scores::new(&mut out, &mut live))
            .unwrap();
        assert_eq!(out, [0.0, 0.0, 0.0, -1.0]);
    }

    #[test]
    fn biases_on_one_token_add_up() {
        let seqs: &[(&[TokenId], f32)] =
            &[(&[2], 1.0), (&[1, 2], 0.5), (&[0, 1, 2], 0.25), (&[5, 2], 8.0)];
        assert_eq!(run(seqs, &[0, 1], &[0.0; 6]).unwrap(), [0.0, 0.0, 1.75, 0.0, 0.0, 0.0]);
        assert_eq!(run(seqs, &[3, 1], &[0.0; 6]).unwrap(), [0.0, 0.0, 1.5, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn sums_in_the_order_of_transformers() {
        // Groups by prefix length, in order of first appearance: [7, 7, 5]
        // puts length-3 sequences first, so 2 gets ((0 + 1) + 4) + 1e8 =
        // 100000008 in f32, where list order would give (1 + 1e8) + 4 = 1e8.
        // Both values were checked against transformers.
        let seqs: &[(&[TokenId], f32)] =
            &[(&[7, 7, 5], 0.0), (&[1, 2], 1e8), (&[0, 1, 2], 4.0), (&[2], 1.0)];
        assert_eq!(run(seqs, &[0, 1], &[0.0; 8]).unwrap()[2], 100_000_008.0);
        let seqs: &[(&[TokenId], f32)] = &[(&[1, 2], 1e8), (&[0, 1, 2], 4.0), (&[2], 1.0)];
        assert_eq!(run(seqs, &[0, 1], &[0.0; 8]).unwrap()[2], 100_000_000.0);
    }

    #[test]
    fn minus_infinity_bans_and_masks_stay() {
        let seqs: &[(&[TokenId], f32)] = &[(&[1, 2], NEG), (&[2], 3.0), (&[0], 1.0)];
        assert_eq!(run(seqs, &[1], &[NEG, 0.0, 0.0]).unwrap(), [NEG, 0.0, NEG]);
        assert_eq!(run(seqs, &[0], &[NEG, 0.0, 0.0]).unwrap(), [NEG, 0.0, 3.0]);
    }

    #[test]
    fn out_of_vocabulary_ids_anywhere_are_an_error() {
        let err = run(&[(&[7, 1], 1.0)], &[7], &[0.0, 0.0]);
        assert_eq!(err, Err(Error::TokenOutOfRange { id: 7, vocab_size: 2 }));
        let err = run(&[(&[2], 1.0)], &[], &[0.0, 0.0]);
        assert_eq!(err, Err(Error::TokenOutOfRange { id: 2, vocab_size: 2 }));
    }

    #[test]
    fn rejects_empty_sequences_bad_biases_and_repeats() {
        let cases: Vec<Vec<(Vec<TokenId>, f32)>> = vec![
            vec![(vec![], 1.0)],
            vec![(vec![1], f32::NAN)],
            vec![(vec![1, 2], f32::INFINITY)],
            vec![(vec![1, 2], 1.0), (vec![2], 1.0), (vec![1, 2], -1.0)],
        ];
        for case in cases {
            match SequenceBias::new(case.clone()) {
                Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "sequence_bias"),
                other => panic!("{case:?}: {other:?}"),
            }
        }
        assert!(SequenceBias::new(Vec::new()).is_ok());
    }
}
