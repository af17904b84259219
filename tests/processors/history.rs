//! Property tests of the history-based processors (penalties, bias, bans).
//!
//! Each property compares a processor with an oracle written from the
//! definition (sets and counts, recomputed from scratch for every case),
//! and checks the universal rules: no NaN, no `+inf`, a masked token stays
//! masked, and the same result on a truncated live set as on the dense row.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use decoding::processors::{
    BadWords, LogitBias, MinNewTokens, NoRepeatNGram, PresenceFrequencyPenalty, RepetitionPenalty,
    SequenceBias, SuppressTokens, SuppressTokensAtBegin,
};
use decoding::{Context, LogitsProcessor, Scores, TokenId};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::common::apply;

const NEG: f32 = f32::NEG_INFINITY;

/// One step: a row, a history (prompt then generated) and a live mask.
#[derive(Debug, Clone)]
struct Case {
    row: Vec<f32>,
    history: Vec<TokenId>,
    prompt_len: usize,
    keep: Vec<bool>,
}

impl Case {
    fn ctx(&self) -> Context<'_> {
        Context::new(&self.history, self.prompt_len).unwrap()
    }

    fn vocab(&self) -> u32 {
        self.row.len() as u32
    }
}

/// Finite scores in [-50, 50] with exact ties and zeros, and `-inf` masks.
fn score() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -50.0f32..50.0,
        2 => Just(NEG),
        1 => Just(0.0f32),
        1 => (-3i32..=3).prop_map(|x| x as f32),
    ]
}

/// Rows of 1 to 32 tokens; histories drawn from a small alphabet (so that
/// tokens and n-grams repeat) that also reaches past the vocabulary, with
/// the odd arbitrary id.
fn case() -> impl Strategy<Value = Case> {
    (1usize..=32)
        .prop_flat_map(|v| {
            let id = prop_oneof![9 => 0..(v as u32 + 2), 1 => any::<u32>()];
            (
                prop::collection::vec(score(), v),
                prop::collection::vec(id, 0..48),
                prop::collection::vec(any::<bool>(), v),
                any::<Index>(),
            )
        })
        .prop_map(|(row, history, keep, at)| {
            let prompt_len = at.index(history.len() + 1);
            Case { row, history, prompt_len, keep }
        })
}

/// A case whose history stays inside a tiny alphabet, so n-grams repeat.
fn repetitive_case() -> impl Strategy<Value = Case> {
    (case(), 1u32..=4, prop::collection::vec(any::<u32>(), 0..48)).prop_map(|(mut c, k, raw)| {
        let k = k.min(c.vocab() + 1);
        c.history = raw.iter().map(|x| x % k).collect();
        c.prompt_len = c.prompt_len.min(c.history.len());
        c
    })
}

/// Ids of the row's vocabulary.
fn ids_below(v: u32, max_len: usize) -> impl Strategy<Value = Vec<TokenId>> {
    prop::collection::vec(0..v, 0..max_len)
}

fn bits(row: &[f32]) -> Vec<u32> {
    row.iter().map(|x| x.to_bits()).collect()
}

/// No NaN, no `+inf`, and every masked input stays masked.
fn check_universal(input: &[f32], output: &[f32]) -> Result<(), TestCaseError> {
    prop_assert_eq!(input.len(), output.len());
    for (i, (&x, &y)) in input.iter().zip(output).enumerate() {
        prop_assert!(!y.is_nan(), "NaN at {}", i);
        prop_assert!(y != f32::INFINITY, "+inf at {}", i);
        if x == NEG {
            prop_assert_eq!(y, NEG, "masked token {} revived", i);
        }
    }
    Ok(())
}

/// Runs `p` on the case's live set (stale garbage in the removed slots) and
/// a fresh copy on the dense row with `-inf` at the removed tokens: both
/// must give the same processed row, bit for bit.
fn check_truncated_equals_dense<P: LogitsProcessor>(
    make: impl Fn() -> P,
    c: &Case,
) -> Result<(), TestCaseError> {
    let dense: Vec<f32> =
        c.row.iter().zip(&c.keep).map(|(&x, &k)| if k { x } else { NEG }).collect();
    let expected = apply(&mut make(), &c.ctx(), &dense);

    let mut row: Vec<f32> =
        c.row.iter().zip(&c.keep).map(|(&x, &k)| if k { x } else { 7.5 }).collect();
    let mut live = Vec::new();
    let mut scores = Scores::new(&mut row, &mut live);
    let ids = (0..c.vocab()).filter(|&i| c.keep[i as usize]);
    scores.set_live(ids, false);
    make().process(&c.ctx(), &mut scores).expect("processor failed");
    scores.densify();
    prop_assert_eq!(bits(&row), bits(&expected));
    Ok(())
}

/// The distinct history ids below the vocabulary size.
fn distinct(history: &[TokenId], v: u32) -> HashSet<TokenId> {
    history.iter().copied().filter(|&t| t < v).collect()
}

fn theta() -> impl Strategy<Value = f32> {
    prop_oneof![1 => Just(1.0f32), 4 => 1.0001f32..20.0, 2 => 0.05f32..1.0]
}

proptest! {
    #[test]
    fn repetition_penalty_matches_the_rule_on_each_distinct_seen_token(c in case(), t in theta()) {
        let out = apply(&mut RepetitionPenalty::new(t).unwrap(), &c.ctx(), &c.row);
        check_universal(&c.row, &out)?;
        let seen = distinct(&c.history, c.vocab());
        for (i, (&x, &y)) in c.row.iter().zip(&out).enumerate() {
            let expected = if seen.contains(&(i as u32)) {
                if x < 0.0 { x * t } else { x / t }
            } else {
                x
            };
            prop_assert_eq!(y.to_bits(), expected.to_bits(), "token {}", i);
        }
        check_truncated_equals_dense(|| RepetitionPenalty::new(t).unwrap(), &c)?;
    }

    #[test]
    fn repetition_penalty_of_one_is_the_identity(c in case()) {
        let out = apply(&mut RepetitionPenalty::new(1.0).unwrap(), &c.ctx(), &c.row);
        prop_assert_eq!(bits(&out), bits(&c.row));
    }

    #[test]
    fn repetition_penalty_lowers_seen_tokens_against_unseen_ones(c in case(), t in 1.0001f32..20.0) {
        let out = apply(&mut RepetitionPenalty::new(t).unwrap(), &c.ctx(), &c.row);
        let seen = distinct(&c.history, c.vocab());
        for (i, (&x, &y)) in c.row.iter().zip(&out).enumerate() {
            if seen.contains(&(i as u32)) {
                prop_assert!(y <= x, "token {}: {} -> {}", i, x, y);
                prop_assert_eq!(y.signum() * x.signum() >= 0.0, true, "sign of {} changed", i);
                if x.abs() >= f32::MIN_POSITIVE && x.is_finite() {
                    prop_assert!(y < x, "token {}: {} -> {}", i, x, y);
                }
            } else {
                prop_assert_eq!(y.to_bits(), x.to_bits(), "unseen token {} changed", i);
            }
        }
        // Hence p(seen) / p(unseen) never increases.
        for (i, (&xi, &yi)) in c.row.iter().zip(&out).enumerate() {
            for (j, (&xj, &yj)) in c.row.iter().zip(&out).enumerate() {
                if seen.contains(&(i as u32)) && !seen.contains(&(j as u32)) && xi > NEG && xj > NEG {
                    prop_assert!(f64::from(yi) - f64::from(yj) <= f64::from(xi) - f64::from(xj));
                }
            }
        }
    }

    #[test]
    fn repetition_penalty_counts_each_token_once(c in case(), t in theta(), times in 1usize..4) {
        // The history repeated `times` times versus its first occurrences.
        let mut first = Vec::new();
        for &id in &c.history {
            if !first.contains(&id) {
                first.push(id);
            }
        }
        let repeated: Vec<TokenId> = (0..times).flat_map(|_| c.history.iter().copied()).collect();
        let a = apply(&mut RepetitionPenalty::new(t).unwrap(), &Context::prompt_only(&repeated), &c.row);
        let b = apply(&mut RepetitionPenalty::new(t).unwrap(), &Context::prompt_only(&first), &c.row);
        prop_assert_eq!(bits(&a), bits(&b));
    }

    #[test]
    fn repetition_penalty_reused_across_steps_is_stateless(a in case(), b in case(), t in theta()) {
        // One processor over two unrelated steps gives what fresh ones give.
        let mut p = RepetitionPenalty::new(t).unwrap();
        let first = apply(&mut p, &a.ctx(), &a.row);
        let second = apply(&mut p, &b.ctx(), &b.row);
        prop_assert_eq!(bits(&first), bits(&apply(&mut RepetitionPenalty::new(t).unwrap(), &a.ctx(), &a.row)));
        prop_assert_eq!(bits(&second), bits(&apply(&mut RepetitionPenalty::new(t).unwrap(), &b.ctx(), &b.row)));
    }

    #[test]
    fn presence_frequency_penalty_matches_the_openai_definition(
        c in case(),
        presence in -2.0f32..=2.0,
        frequency in -2.0f32..=2.0,
    ) {
        let out = apply(&mut PresenceFrequencyPenalty::new(presence, frequency).unwrap(), &c.ctx(), &c.row);
        check_universal(&c.row, &out)?;
        let generated = c.ctx().generated();
        for (i, (&x, &y)) in c.row.iter().zip(&out).enumerate() {
            let count = generated.iter().filter(|&&t| t as usize == i).count();
            let expected = if count > 0 { (x - frequency * count as f32) - presence } else { x };
            prop_assert_eq!(y.to_bits(), expected.to_bits(), "token {} (count {})", i, count);
        }
        check_truncated_equals_dense(|| PresenceFrequencyPenalty::new(presence, frequency).unwrap(), &c)?;
    }

    #[test]
    fn presence_frequency_penalty_ignores_the_prompt(
        c in case(),
        other_prompt in prop::collection::vec(0u32..40, 0..20),
        presence in -2.0f32..=2.0,
        frequency in -2.0f32..=2.0,
    ) {
        let generated = c.ctx().generated().to_vec();
        let swapped: Vec<TokenId> = other_prompt.iter().chain(&generated).copied().collect();
        let ctx = Context::new(&swapped, other_prompt.len()).unwrap();
        let a = apply(&mut PresenceFrequencyPenalty::new(presence, frequency).unwrap(), &c.ctx(), &c.row);
        let b = apply(&mut PresenceFrequencyPenalty::new(presence, frequency).unwrap(), &ctx, &c.row);
        prop_assert_eq!(bits(&a), bits(&b));
    }

    #[test]
    fn presence_frequency_penalty_of_zero_is_the_identity(c in case()) {
        let out = apply(&mut PresenceFrequencyPenalty::new(0.0, 0.0).unwrap(), &c.ctx(), &c.row);
        prop_assert_eq!(bits(&out), bits(&c.row));
    }

    #[test]
    fn logit_bias_adds_to_listed_tokens_only(
        (c, biases) in case().prop_flat_map(|c| {
            let v = c.vocab();
            let bias = prop_oneof![4 => -10.0f32..10.0, 1 => Just(NEG), 1 => Just(0.0f32)];
            (Just(c), prop::collection::btree_map(0..v, bias, 0..8))
        }),
    ) {
        let make = || LogitBias::new(biases.iter().map(|(&id, &b)| (id, b))).unwrap();
        let out = apply(&mut make(), &c.ctx(), &c.row);
        check_universal(&c.row, &out)?;
        for (i, (&x, &y)) in c.row.iter().zip(&out).enumerate() {
            let expected = match biases.get(&(i as u32)) {
                Some(&b) => x + b,
                None => x,
            };
            prop_assert_eq!(y.to_bits(), expected.to_bits(), "token {}", i);
        }
        check_truncated_equals_dense(make, &c)?;
    }

    #[test]
    fn sequence_bias_biases_exactly_the_completions(
        (c, seqs) in case().prop_flat_map(|c| {
            let v = c.vocab();
            // Small alphabet so that prefixes match; integer biases so that
            // sums are exact in any order.
            let k = v.min(4);
            let seq = prop::collection::vec(0..k, 1..4);
            let bias = prop_oneof![5 => (-8i32..=8).prop_map(|b| b as f32), 1 => Just(NEG)];
            (Just(c), prop::collection::btree_map(seq, bias, 0..8))
        }),
    ) {
        let c = Case { history: c.history.iter().map(|&t| t % 4).collect(), ..c };
        let make = || SequenceBias::new(seqs.iter().map(|(s, &b)| (s.clone(), b))).unwrap();
        let out = apply(&mut make(), &c.ctx(), &c.row);
        check_universal(&c.row, &out)?;
        // The biases that apply to a token are summed, then added once.
        let mut totals: BTreeMap<TokenId, f32> = BTreeMap::new();
        for (seq, &b) in &seqs {
            let (last, prefix) = seq.split_last().unwrap();
            if c.history.ends_with(prefix) {
                *totals.entry(*last).or_insert(0.0) += b;
            }
        }
        let mut expected = c.row.clone();
        for (&t, &total) in &totals {
            expected[t as usize] += total;
        }
        prop_assert_eq!(bits(&out), bits(&expected));
        check_truncated_equals_dense(make, &c)?;
    }

    #[test]
    fn no_repeat_ngram_bans_exactly_the_repeating_completions(c in repetitive_case(), n in 1usize..=4) {
        let out = apply(&mut NoRepeatNGram::new(n).unwrap(), &c.ctx(), &c.row);
        check_universal(&c.row, &out)?;
        let h = &c.history;
        for (t, (&x, &y)) in c.row.iter().zip(&out).enumerate() {
            // Appending t would create an n-gram that already occurs.
            let banned = h.len() >= n && {
                let mut gram: Vec<TokenId> = h[h.len() + 1 - n..].to_vec();
                gram.push(t as TokenId);
                h.windows(n).any(|w| w == gram.as_slice())
            };
            let expected = if banned { NEG } else { x };
            prop_assert_eq!(y.to_bits(), expected.to_bits(), "token {} (banned: {})", t, banned);
        }
        check_truncated_equals_dense(|| NoRepeatNGram::new(n).unwrap(), &c)?;
    }

    #[test]
    fn no_repeat_ngram_never_panics_on_arbitrary_histories(c in case(), n in 1usize..=6) {
        let out = apply(&mut NoRepeatNGram::new(n).unwrap(), &c.ctx(), &c.row);
        check_universal(&c.row, &out)?;
    }

    #[test]
    fn bad_words_ban_exactly_the_completions(
        (c, seqs, eos) in case().prop_flat_map(|c| {
            let k = c.vocab().min(4);
            let seq = prop::collection::vec(0..k, 1..4);
            (Just(c), prop::collection::vec(seq, 0..8), ids_below(k, 3))
        }),
    ) {
        let c = Case { history: c.history.iter().map(|&t| t % 4).collect(), ..c };
        let make = || BadWords::new(seqs.iter().cloned(), &eos).unwrap();
        let out = apply(&mut make(), &c.ctx(), &c.row);
        check_universal(&c.row, &out)?;
        let mut banned = BTreeSet::new();
        for seq in &seqs {
            if seq.len() == 1 && eos.contains(&seq[0]) {
                continue;
            }
            let (last, prefix) = seq.split_last().unwrap();
            if c.history.ends_with(prefix) {
                banned.insert(*last);
            }
        }
        for (t, (&x, &y)) in c.row.iter().zip(&out).enumerate() {
            let expected = if banned.contains(&(t as u32)) { NEG } else { x };
            prop_assert_eq!(y.to_bits(), expected.to_bits(), "token {}", t);
        }
        check_truncated_equals_dense(make, &c)?;
    }

    #[test]
    fn suppression_and_min_new_tokens_ban_only_their_ids(
        (c, ids, min) in case().prop_flat_map(|c| {
            let v = c.vocab();
            (Just(c), prop::collection::vec(0..v, 1..6), 0usize..6)
        }),
    ) {
        let listed: BTreeSet<TokenId> = ids.iter().copied().collect();
        let generated = c.ctx().generated().len();
        let rows = [
            (apply(&mut SuppressTokens::new(ids.clone()), &c.ctx(), &c.row), true),
            (apply(&mut SuppressTokensAtBegin::new(ids.clone()), &c.ctx(), &c.row), generated == 0),
            (apply(&mut MinNewTokens::new(min, ids.clone()).unwrap(), &c.ctx(), &c.row), generated < min),
        ];
        for (out, active) in rows {
            check_universal(&c.row, &out)?;
            for (t, (&x, &y)) in c.row.iter().zip(&out).enumerate() {
                let expected = if active && listed.contains(&(t as u32)) { NEG } else { x };
                prop_assert_eq!(y.to_bits(), expected.to_bits(), "token {}", t);
            }
        }
        check_truncated_equals_dense(|| SuppressTokens::new(ids.clone()), &c)?;
        check_truncated_equals_dense(|| SuppressTokensAtBegin::new(ids.clone()), &c)?;
        check_truncated_equals_dense(|| MinNewTokens::new(min, ids.clone()).unwrap(), &c)?;
    }

    #[test]
    fn configured_ids_beyond_the_vocabulary_are_errors_not_panics(c in case(), extra in 0u32..1000) {
        let bad = c.vocab() + extra;
        let expected = decoding::Error::TokenOutOfRange { id: bad, vocab_size: c.row.len() };
        let mut processors: Vec<Box<dyn LogitsProcessor>> = vec![
            Box::new(LogitBias::new([(0, 1.0), (bad, 1.0)]).unwrap()),
            Box::new(SequenceBias::new([(vec![bad, 0], 1.0)]).unwrap()),
            Box::new(BadWords::new([vec![0, bad]], &[]).unwrap()),
            Box::new(SuppressTokens::new([bad, 0])),
            Box::new(SuppressTokensAtBegin::new([bad])),
            Box::new(MinNewTokens::new(3, [0, bad]).unwrap()),
        ];
        for p in processors.iter_mut() {
            let mut row = c.row.clone();
            let mut live = Vec::new();
            let result = p.process(&c.ctx(), &mut Scores::new(&mut row, &mut live));
            prop_assert_eq!(result, Err(expected.clone()), "{:?}", p);
            prop_assert_eq!(bits(&row), bits(&c.row), "{:?} touched the row", p);
        }
    }
}

#[test]
fn a_pipeline_of_history_processors_in_the_vllm_order() {
    // Repetition first, then presence/frequency, as documented.
    // Token 0: 4 / 2 = 2, then 2 - 0.5·2 - 1 = 0. Token 1 (prompt only):
    // -1 · 2 = -2. Token 2 (generated once): 3 / 2 = 1.5, then 1.5 - 0.5 - 1 = 0.
    let history = [1, 0, 2, 0];
    let ctx = Context::new(&history, 1).unwrap();
    let mut chain =
        (RepetitionPenalty::new(2.0).unwrap(), PresenceFrequencyPenalty::new(1.0, 0.5).unwrap());
    assert_eq!(apply(&mut chain, &ctx, &[4.0, -1.0, 3.0, 5.0]), [0.0, -2.0, 0.0, 5.0]);
}

#[test]
fn bans_commute_and_intersect() {
    let history = [1, 2, 3, 1, 2];
    let ctx = Context::prompt_only(&history);
    let row = [0.5, 1.0, 1.5, 2.0, 2.5];
    let a = || NoRepeatNGram::new(3).unwrap();
    let b = || BadWords::new([vec![2, 4], vec![0]], &[]).unwrap();
    let ab = apply(&mut (a(), b()), &ctx, &row);
    let ba = apply(&mut (b(), a()), &ctx, &row);
    assert_eq!(bits(&ab), bits(&ba));
    assert_eq!(ab, [NEG, 1.0, 1.5, NEG, NEG]);
    // Bans are idempotent.
    assert_eq!(bits(&apply(&mut (a(), b(), a(), b()), &ctx, &row)), bits(&ab));
}
