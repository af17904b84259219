//! Lengths, model calls, EOS and options.

use decoding::processors::Temperature;
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    Error, FinishReason, GenerateError, GenerateOptions, Generator, LogprobMode, Pipeline, TokenId,
};

use crate::models::{Bigram, FixedRow, Recorder, Script, vocab};

fn greedy(options: GenerateOptions) -> Generator<Pipeline, Greedy> {
    Generator::new(Pipeline::new(), Greedy, options)
}

#[test]
fn max_new_tokens_zero_calls_the_model_zero_times() {
    let mut model = Recorder::new(Bigram::pattern(8));
    let mut generator = greedy(GenerateOptions::new(0));
    let out = generator.generate(&mut model, &[1, 2]).unwrap();
    assert!(out.tokens.is_empty());
    assert_eq!(out.finish_reason, FinishReason::Length);
    assert!(model.calls.forwards.is_empty());

    let table = vocab(&["a", "b", "c", "d", "e", "f", "g", "h"]);
    let out = generator.generate_text(&mut model, &table, &[1]).unwrap();
    assert_eq!(out.text.as_deref(), Some(""));
    assert_eq!(generator.stream(&mut model, &[1]).unwrap().count(), 0);
    assert!(model.calls.forwards.is_empty());
}

#[test]
fn max_new_tokens_one_calls_the_model_once() {
    let mut model = Recorder::new(Bigram::pattern(8));
    let out = greedy(GenerateOptions::new(1)).generate(&mut model, &[1, 2, 3]).unwrap();
    assert_eq!(out.tokens.len(), 1);
    assert_eq!(out.finish_reason, FinishReason::Length);
    assert_eq!(model.calls.forwards, [vec![1, 2, 3]]);
}

#[test]
fn the_model_is_fed_only_new_tokens_and_not_after_the_last() {
    let mut model = Recorder::new(Bigram::pattern(11));
    let mut generator = Generator::new(
        Pipeline::new().with(Temperature::new(0.9).unwrap()),
        Categorical::new(),
        GenerateOptions::builder(6).seed(3).build().unwrap(),
    );
    let out = generator.generate(&mut model, &[4, 5, 6]).unwrap();
    assert_eq!(out.tokens.len(), 6);
    let mut expected: Vec<Vec<TokenId>> = vec![vec![4, 5, 6]];
    expected.extend(out.tokens[..5].iter().map(|&t| vec![t]));
    assert_eq!(model.calls.forwards, expected);
    assert_eq!(model.calls.resets, 1);

    // A second run resets the model and starts from its prompt again.
    let again = generator.generate(&mut model, &[4, 5, 6]).unwrap();
    assert_eq!(again, out);
    assert_eq!(model.calls.resets, 2);
    assert_eq!(model.calls.forwards[6], [4, 5, 6]);
}

#[test]
fn empty_prompt_is_an_error_and_calls_nothing() {
    let mut model = Recorder::new(Bigram::pattern(8));
    let mut generator = greedy(GenerateOptions::new(3));
    assert!(matches!(generator.generate(&mut model, &[]), Err(GenerateError::EmptyPrompt)));
    assert!(matches!(generator.stream(&mut model, &[]), Err(GenerateError::EmptyPrompt)));
    assert!(model.calls.forwards.is_empty());
    assert!(generator.generated().is_empty());
}

#[test]
fn every_eos_id_stops_and_is_kept() {
    let options = GenerateOptions::builder(10).eos_tokens([3, 9]).build().unwrap();
    let out = greedy(options.clone()).generate(&mut Script::new(12, &[5, 7, 3, 1]), &[0]).unwrap();
    assert_eq!(out.tokens, [5, 7, 3]);
    assert_eq!(out.finish_reason, FinishReason::Eos { token: 3 });
    let out = greedy(options).generate(&mut Script::new(12, &[9, 3]), &[0]).unwrap();
    assert_eq!(out.tokens, [9]);
    assert_eq!(out.finish_reason, FinishReason::Eos { token: 9 });
}

#[test]
fn the_eos_text_is_not_decoded() {
    let table = vocab(&["a", "b", "<eos>"]);
    let options = GenerateOptions::builder(10).eos_token(2).build().unwrap();
    let out = greedy(options).generate_text(&mut Script::new(3, &[0, 1, 2]), &table, &[0]).unwrap();
    assert_eq!(out.tokens, [0, 1, 2]);
    assert_eq!(out.text.as_deref(), Some("ab"));
}

#[test]
fn min_new_tokens_masks_eos_until_reached() {
    // EOS (id 0) is always the favourite; id 1 the runner-up.
    let row = vec![5.0, 1.0, 0.5, -1.0];
    let options = GenerateOptions::builder(10).eos_token(0).min_new_tokens(2).build().unwrap();
    let out = greedy(options).generate(&mut FixedRow(row.clone()), &[3]).unwrap();
    assert_eq!(out.tokens, [1, 1, 0]);
    assert_eq!(out.finish_reason, FinishReason::Eos { token: 0 });

    let options = GenerateOptions::builder(10).eos_token(0).build().unwrap();
    let out = greedy(options).generate(&mut FixedRow(row), &[3]).unwrap();
    assert_eq!(out.tokens, [0]);
}

#[test]
fn min_new_tokens_equal_to_max_never_ends_on_eos() {
    let options = GenerateOptions::builder(4).eos_token(0).min_new_tokens(4).build().unwrap();
    let out = greedy(options).generate(&mut FixedRow(vec![5.0, 1.0]), &[1]).unwrap();
    assert_eq!(out.tokens, [1, 1, 1, 1]);
    assert_eq!(out.finish_reason, FinishReason::Length);
}

#[test]
fn min_new_tokens_with_eos_as_the_only_candidate_is_an_error() {
    let row = vec![0.0, f32::NEG_INFINITY, f32::NEG_INFINITY];
    let options = GenerateOptions::builder(5).eos_token(0).min_new_tokens(1).build().unwrap();
    let err = greedy(options).generate(&mut FixedRow(row), &[1]).unwrap_err();
    assert!(matches!(err, GenerateError::Decoding { step: 0, source: Error::AllMasked }));
}

#[test]
fn inconsistent_options_are_rejected() {
    let invalid = |r: Result<GenerateOptions, Error>, name: &str| match r {
        Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
        other => panic!("expected an invalid {name}, got {other:?}"),
    };
    invalid(GenerateOptions::builder(2).min_new_tokens(3).build(), "min_new_tokens");
    invalid(GenerateOptions::builder(2).stop_string("").build(), "stop_strings");
    invalid(GenerateOptions::builder(2).stop_strings(["a", ""]).build(), "stop_strings");
    invalid(GenerateOptions::builder(2).stop_sequence(vec![]).build(), "stop_sequences");
    invalid(GenerateOptions::builder(2).vocab_size(0).build(), "vocab_size");
    invalid(GenerateOptions::builder(2).top_logprobs(3).build(), "top_logprobs");
    assert_eq!(
        GenerateOptions::builder(2).vocab_size(10).eos_token(10).build(),
        Err(Error::TokenOutOfRange { id: 10, vocab_size: 10 })
    );
    // The boundaries are fine.
    let ok = GenerateOptions::builder(2)
        .min_new_tokens(2)
        .vocab_size(10)
        .eos_token(9)
        .logprobs(LogprobMode::Raw)
        .top_logprobs(3)
        .build()
        .unwrap();
    assert_eq!(ok.to_builder().max_new_tokens(5).build().unwrap().max_new_tokens(), 5);
    assert_eq!(GenerateOptions::new(7).seed(), None);
}

#[test]
fn stop_sequence_stops_and_keeps_its_ids() {
    let options = GenerateOptions::builder(10).stop_sequence(vec![2, 3]).build().unwrap();
    let out = greedy(options).generate(&mut Script::new(5, &[1, 2, 1, 2, 3, 4]), &[0]).unwrap();
    assert_eq!(out.tokens, [1, 2, 1, 2, 3]);
    assert_eq!(out.finish_reason, FinishReason::StopSequence { index: 0 });
}

#[test]
fn stop_sequences_match_generated_ids_only() {
    // The prompt ends with 2; generating 3 does not complete [2, 3].
    let options = GenerateOptions::builder(3).stop_sequence(vec![2, 3]).build().unwrap();
    let out = greedy(options).generate(&mut Script::new(5, &[3, 1, 1]), &[2]).unwrap();
    assert_eq!(out.tokens, [3, 1, 1]);
    assert_eq!(out.finish_reason, FinishReason::Length);
}

#[test]
fn the_longest_matching_stop_sequence_wins() {
    let options = GenerateOptions::builder(10)
        .stop_sequence(vec![3])
        .stop_sequence(vec![2, 3])
        .build()
        .unwrap();
    let table = vocab(&["a", "b", "c", "d"]);
    let out = greedy(options).generate_text(&mut Script::new(4, &[0, 2, 3]), &table, &[0]).unwrap();
    assert_eq!(out.finish_reason, FinishReason::StopSequence { index: 1 });
    assert_eq!(out.text.as_deref(), Some("a"));
}

#[test]
fn a_huge_max_new_tokens_is_not_reserved_in_full() {
    // usize::MAX would overflow a reservation; the run must just work.
    let options = GenerateOptions::builder(usize::MAX).eos_token(2).build().unwrap();
    let out = greedy(options).generate(&mut Script::new(3, &[1, 1, 2]), &[0]).unwrap();
    assert_eq!(out.tokens, [1, 1, 2]);
}
