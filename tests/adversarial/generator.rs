//! The generator's edges (F48–F56): length 0, empty prompts, models that
//! change their vocabulary, return NaN or fail, stop strings across token
//! boundaries, split UTF-8 characters, padded vocabularies, log-probability
//! kinds and minimum lengths.

use std::fmt;

use decoding::processors::{Temperature, TopK};
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    Error, FinishReason, GenerateError, GenerateOptions, Generator, LanguageModel, LogprobMode,
    Pipeline, TokenId,
};

use crate::common::*;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Failed(usize);

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "call {} failed", self.0)
    }
}

impl std::error::Error for Failed {}

/// What the model does at one call.
#[derive(Debug, Clone)]
enum Call {
    /// The given token scores 10, every other 0.
    Emit(TokenId),
    /// Writes this row.
    Row(Vec<f32>),
    /// Fails.
    Fail,
    /// Reports this vocabulary size for the call.
    Vocab(usize),
}

/// A scripted model that records what it was fed.
#[derive(Debug, Clone)]
struct Scripted {
    vocab: usize,
    calls: Vec<Call>,
    fed: Vec<Vec<TokenId>>,
}

impl Scripted {
    fn new(vocab: usize, calls: Vec<Call>) -> Self {
        Scripted { vocab, calls, fed: Vec::new() }
    }

    fn emitting(vocab: usize, tokens: &[TokenId]) -> Self {
        Scripted::new(vocab, tokens.iter().map(|&t| Call::Emit(t)).collect())
    }
}

impl LanguageModel for Scripted {
    type Error = Failed;
    fn vocab_size(&self) -> usize {
        match self.calls.get(self.fed.len()) {
            Some(Call::Vocab(n)) => *n,
            _ => self.vocab,
        }
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Failed> {
        let call = self.fed.len();
        self.fed.push(tokens.to_vec());
        match self.calls.get(call) {
            Some(Call::Fail) => return Err(Failed(call)),
            Some(Call::Row(r)) => logits.copy_from_slice(r),
            Some(Call::Emit(t)) => {
                logits.fill(0.0);
                logits[*t as usize] = 10.0;
            }
            _ => logits.fill(0.0),
        }
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.fed.clear();
        Ok(())
    }
}

fn pieces(p: &[&str]) -> Vec<Vec<u8>> {
    p.iter().map(|s| s.as_bytes().to_vec()).collect()
}

fn greedy_gen(options: GenerateOptions) -> Generator<Pipeline, Greedy> {
    Generator::new(Pipeline::new(), Greedy, options)
}

/// Runs greedily with text, one-shot and streamed; returns the run and the
/// streamed chunks (checking that they agree).
fn run_text(
    vocab: &[Vec<u8>],
    script: &[TokenId],
    options: GenerateOptions,
) -> (decoding::Generation, Vec<String>) {
    let v = vocab.len();
    let mut g = greedy_gen(options);
    let out = g.generate_text(&mut Scripted::emitting(v, script), &vocab, &[0]).unwrap();
    let mut model = Scripted::emitting(v, script);
    let chunks: Vec<String> =
        g.stream_text(&mut model, &vocab, &[0]).unwrap().map(|s| s.unwrap().text).collect();
    assert_eq!(chunks.concat(), out.text.clone().unwrap());
    (out, chunks)
}

#[test]
fn f48_max_new_tokens_zero_returns_nothing_and_never_calls_the_model() {
    // transformers#28579 emitted one token.
    let mut model = Scripted::emitting(4, &[1, 2, 3]);
    let out = greedy_gen(GenerateOptions::new(0)).generate(&mut model, &[1, 2]).unwrap();
    assert_eq!(out.tokens, [] as [TokenId; 0]);
    assert_eq!(out.finish_reason, FinishReason::Length);
    assert!(model.fed.is_empty());
    let mut g = greedy_gen(GenerateOptions::new(0));
    assert_eq!(g.stream(&mut model, &[1]).unwrap().count(), 0);
    assert!(model.fed.is_empty());
}

#[test]
fn f49_an_empty_prompt_is_an_error_and_a_bos_prompt_is_fed_first() {
    let mut model = Scripted::emitting(4, &[1, 2]);
    let r = greedy_gen(GenerateOptions::new(2)).generate(&mut model, &[]);
    assert!(matches!(r, Err(GenerateError::EmptyPrompt)));
    assert!(model.fed.is_empty());
    let out = greedy_gen(GenerateOptions::new(2)).generate(&mut model, &[3]).unwrap();
    assert_eq!(out.tokens, [1, 2]);
    assert_eq!(model.fed, [vec![3], vec![1]]);
}

#[test]
fn f50_a_model_whose_vocabulary_changes_is_a_logits_length_error_at_that_step() {
    let calls = vec![Call::Emit(1), Call::Emit(2), Call::Emit(3), Call::Vocab(4)];
    let mut model = Scripted::new(5, calls);
    let mut g = greedy_gen(GenerateOptions::new(10));
    match g.generate(&mut model, &[0]) {
        Err(GenerateError::LogitsLength { step: 3, expected: 5, actual: 4 }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(g.generated(), [1, 2, 3]);
}

#[test]
fn f51_nan_from_the_model_at_step_3_is_an_error_naming_step_and_index() {
    let mut bad = vec![0.0; 6];
    bad[4] = f32::NAN;
    let calls = vec![Call::Emit(1), Call::Emit(2), Call::Emit(3), Call::Row(bad)];
    let mut g = Generator::new(Pipeline::new(), Categorical::new(), GenerateOptions::new(10));
    let r = g.generate(&mut Scripted::new(6, calls), &[0]);
    match r {
        Err(GenerateError::Decoding {
            step: 3,
            source: Error::InvalidLogit { index: 4, value },
        }) => {
            assert!(value.is_nan())
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(g.generated().len(), 3);
}

#[test]
fn f51_a_fully_masked_row_from_the_model_is_all_masked_never_token_0() {
    let calls = vec![Call::Emit(1), Call::Row(vec![NEG; 4])];
    for greedy in [true, false] {
        let r = if greedy {
            greedy_gen(GenerateOptions::new(5)).generate(&mut Scripted::new(4, calls.clone()), &[0])
        } else {
            Generator::new(Pipeline::new(), Categorical::new(), GenerateOptions::new(5))
                .generate(&mut Scripted::new(4, calls.clone()), &[0])
        };
        assert!(
            matches!(r, Err(GenerateError::Decoding { step: 1, source: Error::AllMasked })),
            "{r:?}"
        );
    }
}

#[test]
fn f51_a_model_failure_is_returned_with_its_step_and_the_tokens_before_it() {
    let calls = vec![Call::Emit(1), Call::Emit(2), Call::Fail];
    let mut g = greedy_gen(GenerateOptions::new(10));
    match g.generate(&mut Scripted::new(4, calls), &[0]) {
        Err(GenerateError::Model { step: 2, source: Failed(2) }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(g.generated(), [1, 2]);
}

#[test]
fn f52_a_stop_string_split_across_tokens_is_never_streamed() {
    // vllm#3574.
    let vocab = pieces(&["", "DEF", "G", "HI", "J", "K"]);
    let options = GenerateOptions::builder(10).stop_string("DEFGHIJ").build().unwrap();
    let (out, chunks) = run_text(&vocab, &[1, 2, 3, 4, 5], options);
    assert_eq!(out.text.as_deref(), Some(""));
    assert_eq!(out.finish_reason, FinishReason::StopString { index: 0 });
    assert_eq!(chunks, ["", "", "", ""]);
}

#[test]
fn f52_a_double_newline_stop_across_two_tokens() {
    let vocab = pieces(&["", "a", "\n", "b"]);
    let options = GenerateOptions::builder(10).stop_string("\n\n").build().unwrap();
    let (out, _) = run_text(&vocab, &[1, 2, 2, 3], options);
    assert_eq!(out.text.as_deref(), Some("a"));
    assert_eq!(out.tokens, [1, 2, 2]);
}

#[test]
fn f52_a_stop_string_in_the_prompt_does_not_stop_the_run() {
    let vocab = pieces(&["STOP", "a", "b"]);
    let options = GenerateOptions::builder(3).stop_string("STOP").build().unwrap();
    let mut g = greedy_gen(options);
    let out = g.generate_text(&mut Scripted::emitting(3, &[1, 2, 1]), &vocab, &[0, 0]).unwrap();
    assert_eq!(out.text.as_deref(), Some("aba"));
    assert_eq!(out.finish_reason, FinishReason::Length);
}

#[test]
fn f52_a_stop_string_inside_one_token_cuts_the_text_there() {
    let vocab = pieces(&["", "ab</s>cd"]);
    let options = GenerateOptions::builder(5).stop_string("</s>").build().unwrap();
    let (out, _) = run_text(&vocab, &[1, 1], options);
    assert_eq!(out.text.as_deref(), Some("ab"));
    assert_eq!(out.tokens, [1]);
}

#[test]
fn f52_the_earliest_stop_string_wins() {
    let vocab = pieces(&["", "x", "a", "b"]);
    let options = GenerateOptions::builder(5).stop_strings(["b", "ab"]).build().unwrap();
    let (out, _) = run_text(&vocab, &[1, 2, 3], options);
    assert_eq!(out.text.as_deref(), Some("x"));
    assert_eq!(out.finish_reason, FinishReason::StopString { index: 1 });
}

#[test]
fn f52_an_empty_stop_string_or_sequence_is_an_error() {
    let r = GenerateOptions::builder(5).stop_string("").build();
    assert_invalid(r, "stop_strings");
    let r = GenerateOptions::builder(5).stop_sequence(Vec::new()).build();
    assert_invalid(r, "stop_sequences");
}

#[test]
fn f52_a_pending_stop_prefix_is_flushed_when_the_length_limit_ends_the_run() {
    let vocab = pieces(&["", "x", "DE"]);
    let options = GenerateOptions::builder(2).stop_string("DEF").build().unwrap();
    let (out, chunks) = run_text(&vocab, &[1, 2, 2], options);
    assert_eq!(out.text.as_deref(), Some("xDE"));
    assert_eq!(out.finish_reason, FinishReason::Length);
    assert_eq!(chunks, ["x", "DE"]);
}

#[test]
fn f52_a_stop_string_completed_by_the_final_replacement_character_is_cut() {
    // "a" then an incomplete character: at the length limit the character
    // is flushed as U+FFFD, which completes the stop string "a\u{FFFD}".
    let vocab = vec![Vec::new(), b"a".to_vec(), vec![0xE2, 0x82]];
    let options = GenerateOptions::builder(2).stop_string("a\u{FFFD}").build().unwrap();
    let (out, chunks) = run_text(&vocab, &[1, 2], options);
    assert_eq!(out.text.as_deref(), Some(""));
    assert_eq!(out.finish_reason, FinishReason::StopString { index: 0 });
    assert_eq!(chunks, ["", ""]);
}

#[test]
fn f53_a_character_split_across_tokens_is_streamed_whole() {
    let vocab = vec![Vec::new(), vec![0xE2, 0x82], vec![0xAC]];
    let (out, chunks) = run_text(&vocab, &[1, 2], GenerateOptions::new(2));
    assert_eq!(chunks, ["", "€"]);
    assert_eq!(out.text.as_deref(), Some("€"));
}

#[test]
fn f54_padded_vocabulary_ids_are_never_generated() {
    // A head of 50304 rows for 50277 tokens, the padding scoring 100.
    let mut row = vec![0.0f32; 50304];
    row[50300] = 100.0;
    row[17] = 1.0;
    let options = GenerateOptions::builder(8).vocab_size(50277).seed(3).build().unwrap();
    for greedy in [true, false] {
        let out = if greedy {
            greedy_gen(options.clone()).generate(&mut Fixed(row.clone()), &[1]).unwrap()
        } else {
            Generator::new(Pipeline::new(), Categorical::new(), options.clone())
                .generate(&mut Fixed(row.clone()), &[1])
                .unwrap()
        };
        assert!(out.tokens.iter().all(|&t| t < 50277), "{:?}", out.tokens);
        if greedy {
            assert!(out.tokens.iter().all(|&t| t == 17));
        }
    }
    // A tokenizer larger than the model is an error before any call.
    let mut model = Scripted::emitting(4, &[1]);
    let options = GenerateOptions::builder(8).vocab_size(5).build().unwrap();
    let r = greedy_gen(options).generate(&mut model, &[1]);
    assert!(matches!(r, Err(GenerateError::VocabMismatch { model: 4, tokenizer: 5 })));
    assert!(model.fed.is_empty());
}

#[test]
fn f55_raw_and_processed_logprobs_are_natural_logs_of_the_right_distribution() {
    // logits [0, ln 3]: raw p(1) = 3/4; at T = 0.5, p(1) = 9/10.
    let row = vec![0.0, 3f32.ln()];
    let options = GenerateOptions::builder(1).logprobs(LogprobMode::Both).build().unwrap();
    let run = |pipeline: Pipeline| {
        let out = Generator::new(pipeline, Greedy, options.clone())
            .generate(&mut Fixed(row.clone()), &[0])
            .unwrap();
        let lp = out.logprobs.unwrap()[0].clone();
        assert_eq!(lp.token, 1);
        (lp.raw.unwrap(), lp.processed.unwrap())
    };
    let (raw, processed) = run(Pipeline::new());
    assert!((f64::from(raw) - 0.75f64.ln()).abs() < 1e-6, "{raw}");
    assert!((raw - processed).abs() < 1e-6);
    let (raw, processed) = run(Pipeline::new().with(Temperature::new(0.5).unwrap()));
    assert!((f64::from(raw) - 0.75f64.ln()).abs() < 1e-6);
    assert!((f64::from(processed) - 0.9f64.ln()).abs() < 1e-6, "{processed}");
    let (_, processed) = run(Pipeline::new().with(TopK::new(1).unwrap()));
    assert_eq!(processed, 0.0);
}

#[test]
fn f56_min_new_tokens_masks_eos_until_reached() {
    // EOS (token 3) is always the favourite.
    let options = GenerateOptions::builder(10).min_new_tokens(2).eos_token(3).build().unwrap();
    let out =
        greedy_gen(options).generate(&mut Scripted::emitting(4, &[3, 3, 3, 3]), &[0]).unwrap();
    assert_eq!(out.tokens.len(), 3);
    assert!(!out.tokens[..2].contains(&3));
    assert_eq!(out.finish_reason, FinishReason::Eos { token: 3 });
}

#[test]
fn f56_min_new_tokens_above_max_new_tokens_is_an_error() {
    let r = GenerateOptions::builder(3).min_new_tokens(4).eos_token(1).build();
    assert_invalid(r, "min_new_tokens");
}

#[test]
fn f56_an_eos_id_outside_the_tokenizer_vocabulary_is_an_error() {
    let r = GenerateOptions::builder(3).vocab_size(10).eos_token(10).build();
    assert_eq!(r, Err(Error::TokenOutOfRange { id: 10, vocab_size: 10 }));
}

#[test]
fn f56_eos_masking_that_empties_the_row_is_all_masked() {
    // The model only allows EOS; min_new_tokens forbids it.
    let mut row = vec![NEG; 4];
    row[3] = 0.0;
    let options = GenerateOptions::builder(5).min_new_tokens(1).eos_token(3).build().unwrap();
    let r = greedy_gen(options).generate(&mut Fixed(row), &[0]);
    assert!(matches!(r, Err(GenerateError::Decoding { step: 0, source: Error::AllMasked })));
}

#[test]
fn f56_an_unknown_token_for_the_detokenizer_is_an_error_naming_it() {
    let vocab = pieces(&["a", "b"]);
    let mut g = greedy_gen(GenerateOptions::new(3));
    let r = g.generate_text(&mut Scripted::emitting(4, &[1, 3]), &vocab, &[0]);
    assert!(matches!(r, Err(GenerateError::UnknownToken { step: 1, token: 3 })), "{r:?}");
    assert_eq!(g.generated(), [1]);
}
