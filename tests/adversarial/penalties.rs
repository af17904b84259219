//! Penalties, biases and bans at and past their limits (F32–F37).

use decoding::processors::{
    BadWords, LogitBias, MinNewTokens, NoRepeatNGram, PresenceFrequencyPenalty, RepetitionPenalty,
    SequenceBias, SuppressTokens,
};
use decoding::sampler::Categorical;
use decoding::{Context, Error, Pipeline, rng_from_seed};

use crate::common::*;

fn rep(theta: f32, history: &[u32], row: &[f32]) -> Vec<f32> {
    apply(&mut RepetitionPenalty::new(theta).unwrap(), &Context::prompt_only(history), row)
}

#[test]
fn f32_repetition_penalty_multiplies_negative_logits() {
    // transformers#2302: dividing a negative logit would reward it.
    assert_eq!(rep(2.0, &[0, 1, 2], &[2.0, -2.0, 0.0, 1.0]), [1.0, -4.0, 0.0, 1.0]);
}

#[test]
fn f32_repetition_penalty_one_is_the_bitwise_identity() {
    let row = [2.0, -2.0, 0.0, 1e30, NEG, -0.0];
    let out = rep(1.0, &[0, 1, 2, 3, 4, 5], &row);
    let bits = |r: &[f32]| r.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&out), bits(&row));
}

#[test]
fn f33_a_repeated_token_is_penalized_once() {
    let row = [2.0, -2.0, 0.0, 1.0];
    assert_eq!(rep(2.0, &[0, 0, 0, 0], &row), rep(2.0, &[0], &row));
    assert_eq!(rep(2.0, &[0, 0, 0, 0], &row), [1.0, -2.0, 0.0, 1.0]);
}

#[test]
fn f32_repetition_penalty_outside_its_domain_is_an_error() {
    for t in [0.0, -1.0, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        assert_invalid(RepetitionPenalty::new(t), "repetition_penalty");
    }
}

#[test]
fn f32_repetition_penalty_below_one_rewards() {
    assert_eq!(rep(0.5, &[0, 1], &[2.0, -2.0, 3.0]), [4.0, -1.0, 3.0]);
}

#[test]
fn f32_llama_cpp_penalty_golden_vectors() {
    // Five equal probabilities; a penalty of 50 on the repeated tokens
    // (their logits ln 0.2 < 0 are multiplied by 50).
    let row = logits_of(&[0.2; 5]);
    assert_close(&softmax(&rep(50.0, &[0], &row)), &[0.0, 0.25, 0.25, 0.25, 0.25], 1e-5);
    assert_close(&softmax(&rep(50.0, &[0, 1, 2], &row)), &[0.0, 0.0, 0.0, 0.5, 0.5], 1e-5);
}

#[test]
fn f34_presence_and_frequency_penalties_count_generated_tokens_only() {
    // Prompt [0, 2], generated [0, 0, 1]: token 2 is in the prompt only.
    let history = [0, 2, 0, 0, 1];
    let ctx = Context::new(&history, 2).unwrap();
    let mut p = PresenceFrequencyPenalty::new(1.0, 0.5).unwrap();
    assert_eq!(apply(&mut p, &ctx, &[1.0, 1.0, 1.0]), [-1.0, -0.5, 1.0]);
}

#[test]
fn f34_presence_and_frequency_outside_minus_two_two_are_errors() {
    for x in [2.5, -2.5, f32::NAN, f32::INFINITY] {
        assert_invalid(PresenceFrequencyPenalty::new(x, 0.0), "presence_penalty");
        assert_invalid(PresenceFrequencyPenalty::new(0.0, x), "frequency_penalty");
    }
}

#[test]
fn f35_history_ids_outside_the_vocabulary_are_ignored_never_a_panic() {
    // Documented: a prompt may hold ids the head cannot produce.
    let row = [1.0, -1.0, 0.5];
    assert_eq!(rep(2.0, &[3 + 5, u32::MAX], &row), row);
    let history = [8, 8, u32::MAX];
    let ctx = Context::new(&history, 0).unwrap();
    let mut p = PresenceFrequencyPenalty::new(1.0, 1.0).unwrap();
    assert_eq!(apply(&mut p, &ctx, &row), row);
    let mut ngram = NoRepeatNGram::new(1).unwrap();
    assert_eq!(apply(&mut ngram, &Context::prompt_only(&history), &row), row);
}

#[test]
fn f36_a_minus_inf_bias_bans_the_token_for_every_seed() {
    let mut p = Pipeline::new().with(LogitBias::new([(3, NEG)]).unwrap());
    let mut sampler = Categorical::new();
    for seed in 0..2000 {
        let mut row = vec![0.0, 0.0, 0.0, 5.0];
        let s = p.sample(&Context::empty(), &mut row, &mut sampler, &mut rng_from_seed(seed));
        assert_ne!(s.unwrap().token, 3);
    }
}

#[test]
fn f36_a_nan_or_plus_inf_bias_is_an_error() {
    assert_invalid(LogitBias::new([(3, f32::NAN)]), "logit_bias");
    assert_invalid(LogitBias::new([(3, f32::INFINITY)]), "logit_bias");
    assert_invalid(LogitBias::new([(1, 1.0), (1, 2.0)]), "logit_bias");
}

#[test]
fn f36_a_bias_for_an_id_outside_the_vocabulary_is_token_out_of_range() {
    let r = try_apply(&mut LogitBias::new([(4, 1.0)]).unwrap(), &Context::empty(), &[0.0; 4]);
    assert_eq!(r, Err(Error::TokenOutOfRange { id: 4, vocab_size: 4 }));
    // Through a pipeline the row is left untouched.
    let mut row = vec![0.0, 1.0, 2.0, 3.0];
    let mut p = Pipeline::new().with(LogitBias::new([(0, 9.0), (4, 1.0)]).unwrap());
    let r = p.sample(&Context::empty(), &mut row, &mut Categorical::new(), &mut rng_from_seed(0));
    assert_eq!(r, Err(Error::TokenOutOfRange { id: 4, vocab_size: 4 }));
    assert_eq!(row, [0.0, 1.0, 2.0, 3.0]);
}

#[test]
fn f36_a_bias_on_a_masked_token_leaves_it_masked() {
    let mut b = LogitBias::new([(0, 5.0), (1, f32::MAX)]).unwrap();
    assert_eq!(apply(&mut b, &Context::empty(), &[NEG, NEG, 1.0]), [NEG, NEG, 1.0]);
}

#[test]
fn f36_a_huge_bias_saturates_instead_of_overflowing() {
    let mut b = LogitBias::new([(0, 3e38), (1, -3e38)]).unwrap();
    assert_eq!(apply(&mut b, &Context::empty(), &[3e38, -3e38, 0.0]), [f32::MAX, -f32::MAX, 0.0]);
}

#[test]
fn f37_ban_lists_with_ids_outside_the_vocabulary_are_token_out_of_range() {
    let row = [0.0; 3];
    let r = try_apply(&mut SuppressTokens::new([1, 3]), &Context::empty(), &row);
    assert_eq!(r, Err(Error::TokenOutOfRange { id: 3, vocab_size: 3 }));
    let r =
        try_apply(&mut SequenceBias::new([(vec![0, 7], 1.0)]).unwrap(), &Context::empty(), &row);
    assert_eq!(r, Err(Error::TokenOutOfRange { id: 7, vocab_size: 3 }));
    let r = try_apply(&mut MinNewTokens::new(2, [5]).unwrap(), &Context::empty(), &row);
    assert_eq!(r, Err(Error::TokenOutOfRange { id: 5, vocab_size: 3 }));
}

#[test]
fn f37_empty_ban_definitions_are_errors() {
    assert_invalid(BadWords::new([vec![]], &[]), "bad_words_ids");
    assert_invalid(SequenceBias::new([(vec![], 1.0)]), "sequence_bias");
    assert_invalid(NoRepeatNGram::new(0), "no_repeat_ngram_size");
    assert_invalid(MinNewTokens::new(3, []), "eos_token_id");
}
