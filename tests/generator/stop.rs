//! Stop strings, stop sequences and the generated text.

use decoding::sampler::Greedy;
use decoding::{
    FinishReason, GenerateError, GenerateOptions, Generation, Generator, Pipeline, TokenId,
};

use crate::models::{Script, vocab};

/// Runs `script` (ids into `pieces`) greedily with `options`, both ways, and
/// checks that the stream agrees with the one-shot run. Returns the run and
/// the text released by each step.
fn run(
    pieces: &[Vec<u8>],
    script: &[TokenId],
    options: GenerateOptions,
) -> (Generation, Vec<String>) {
    let v = pieces.len();
    let mut generator = Generator::new(Pipeline::new(), Greedy, options);
    let out = generator.generate_text(&mut Script::new(v, script), &pieces, &[0]).unwrap();
    let mut chunks = Vec::new();
    let mut tokens = Vec::new();
    let mut finish = None;
    for step in generator.stream_text(&mut Script::new(v, script), &pieces, &[0]).unwrap() {
        let step = step.unwrap();
        tokens.push(step.token);
        chunks.push(step.text);
        finish = step.finish_reason;
    }
    assert_eq!(tokens, out.tokens, "stream tokens");
    assert_eq!(finish, Some(out.finish_reason), "stream finish reason");
    assert_eq!(chunks.concat(), out.text.clone().unwrap(), "stream text");
    (out, chunks)
}

fn stops(max: usize, strings: &[&str]) -> GenerateOptions {
    GenerateOptions::builder(max).stop_strings(strings.iter().copied()).build().unwrap()
}

#[test]
fn stop_string_split_across_tokens_is_never_streamed() {
    // vllm#3574: "DEF", "G", "HI" were streamed before "J" completed the stop.
    let pieces = vocab(&["DEF", "G", "HI", "J", "K"]);
    let (out, chunks) = run(&pieces, &[0, 1, 2, 3, 4], stops(10, &["DEFGHIJ"]));
    assert_eq!(out.text.as_deref(), Some(""));
    assert_eq!(out.tokens, [0, 1, 2, 3]);
    assert_eq!(out.finish_reason, FinishReason::StopString { index: 0 });
    assert_eq!(chunks, ["", "", "", ""]);
}

#[test]
fn text_before_a_split_stop_string_is_streamed_as_soon_as_it_is_safe() {
    let pieces = vocab(&["x", "DEF", "G", "HI", "J"]);
    let (out, chunks) = run(&pieces, &[0, 1, 2, 3, 4], stops(10, &["DEFGHIJ"]));
    assert_eq!(out.text.as_deref(), Some("x"));
    assert_eq!(chunks, ["x", "", "", "", ""]);
}

#[test]
fn a_prefix_that_does_not_complete_is_released() {
    // "DEFG" then "X": the held "DEFG" was not a stop after all.
    let pieces = vocab(&["DEF", "G", "X", "Y"]);
    let (out, chunks) = run(&pieces, &[0, 1, 2, 3], stops(4, &["DEFGHIJ"]));
    assert_eq!(out.text.as_deref(), Some("DEFGXY"));
    assert_eq!(chunks, ["", "", "DEFGX", "Y"]);
    assert_eq!(out.finish_reason, FinishReason::Length);
}

#[test]
fn double_newline() {
    let pieces = vocab(&["a", "\n", "b"]);
    let (out, chunks) = run(&pieces, &[0, 1, 1, 2], stops(10, &["\n\n"]));
    assert_eq!(out.text.as_deref(), Some("a"));
    assert_eq!(out.tokens, [0, 1, 1]);
    assert_eq!(chunks, ["a", "", ""]);
}

#[test]
fn stop_string_inside_one_token() {
    let pieces = vocab(&["ab</s>cd", "z"]);
    let (out, _) = run(&pieces, &[0, 1], stops(10, &["</s>"]));
    assert_eq!(out.text.as_deref(), Some("ab"));
    assert_eq!(out.tokens, [0]);
}

#[test]
fn the_earliest_starting_stop_string_wins() {
    let pieces = vocab(&["x", "a", "b", "ab"]);
    // One token "ab": both "ab" and "b" complete at once.
    let (out, _) = run(&pieces, &[0, 3], stops(10, &["b", "ab"]));
    assert_eq!(out.text.as_deref(), Some("x"));
    assert_eq!(out.finish_reason, FinishReason::StopString { index: 1 });
    // Token by token: "a" is held back as a prefix of "ab", then "b" completes both.
    let (out, chunks) = run(&pieces, &[0, 1, 2], stops(10, &["ab", "b"]));
    assert_eq!(out.text.as_deref(), Some("x"));
    assert_eq!(out.finish_reason, FinishReason::StopString { index: 0 });
    assert_eq!(chunks, ["x", "", ""]);
}

#[test]
fn a_stop_string_in_the_prompt_does_not_stop() {
    let pieces = vocab(&["STOP", "a", "b"]);
    let options = stops(2, &["STOP"]);
    let mut generator = Generator::new(Pipeline::new(), Greedy, options);
    let out = generator.generate_text(&mut Script::new(3, &[1, 2]), &pieces, &[0, 0]).unwrap();
    assert_eq!(out.text.as_deref(), Some("ab"));
    assert_eq!(out.finish_reason, FinishReason::Length);
}

#[test]
fn a_stop_string_spanning_prompt_and_generated_text_does_not_stop() {
    // Matching runs on the generated text only.
    let pieces = vocab(&["ST", "OP", "c"]);
    let mut generator = Generator::new(Pipeline::new(), Greedy, stops(2, &["STOP"]));
    let out = generator.generate_text(&mut Script::new(3, &[1, 2]), &pieces, &[0]).unwrap();
    assert_eq!(out.text.as_deref(), Some("OPc"));
}

#[test]
fn held_back_text_is_flushed_when_the_length_runs_out() {
    let pieces = vocab(&["x", "a", "b"]);
    let (out, chunks) = run(&pieces, &[0, 1, 2], stops(3, &["abc"]));
    assert_eq!(out.text.as_deref(), Some("xab"));
    assert_eq!(out.finish_reason, FinishReason::Length);
    assert_eq!(chunks, ["x", "", "ab"]);
}

#[test]
fn held_back_text_is_flushed_at_eos() {
    let pieces = vocab(&["x", "a", "<eos>"]);
    let options = GenerateOptions::builder(10).stop_string("ab").eos_token(2).build().unwrap();
    let (out, chunks) = run(&pieces, &[0, 1, 2], options);
    assert_eq!(out.text.as_deref(), Some("xa"));
    assert_eq!(chunks, ["x", "", "a"]);
}

#[test]
fn utf8_split_across_tokens() {
    let pieces = vec![vec![0xE2, 0x82], vec![0xAC], b"!".to_vec()];
    let (out, chunks) = run(&pieces, &[0, 1, 2], GenerateOptions::new(3));
    assert_eq!(out.text.as_deref(), Some("€!"));
    assert_eq!(chunks, ["", "€", "!"]);
    assert!(!out.text.unwrap().contains('\u{FFFD}'));
}

#[test]
fn an_incomplete_character_at_the_end_becomes_one_replacement() {
    let pieces = vec![b"a".to_vec(), vec![0xF0, 0x9F, 0x98]];
    let (out, chunks) = run(&pieces, &[0, 1], GenerateOptions::new(2));
    assert_eq!(out.text.as_deref(), Some("a\u{FFFD}"));
    assert_eq!(chunks, ["a", "\u{FFFD}"]);
}

#[test]
fn invalid_bytes_are_replaced_where_lossy_decoding_replaces_them() {
    let pieces = vec![b"a\xFF".to_vec(), vec![0xC3], vec![0xA9, 0xFE], b"z".to_vec()];
    let (out, _) = run(&pieces, &[0, 1, 2, 3], GenerateOptions::new(4));
    let all: Vec<u8> = pieces.concat();
    assert_eq!(out.text.unwrap(), String::from_utf8_lossy(&all));
}

#[test]
fn stop_string_across_a_split_character() {
    let pieces = vec![b"x".to_vec(), vec![0xE2, 0x82], vec![0xAC], b"!".to_vec()];
    let (out, chunks) = run(&pieces, &[0, 1, 2, 3], stops(10, &["\u{20AC}!"]));
    assert_eq!(out.text.as_deref(), Some("x"));
    assert_eq!(chunks, ["x", "", "", ""]);
}

#[test]
fn stop_sequence_text_is_cut_and_held_back() {
    let pieces = vocab(&["a", "<|im", "_end|>"]);
    let options = GenerateOptions::builder(10).stop_sequence(vec![1, 2]).build().unwrap();
    let (out, chunks) = run(&pieces, &[0, 1, 2, 0], options);
    assert_eq!(out.tokens, [0, 1, 2]);
    assert_eq!(out.text.as_deref(), Some("a"));
    assert_eq!(chunks, ["a", "", ""]);
    assert_eq!(out.finish_reason, FinishReason::StopSequence { index: 0 });
}

#[test]
fn a_broken_stop_sequence_prefix_is_released() {
    let pieces = vocab(&["a", "<|im", "_end|>"]);
    let options = GenerateOptions::builder(3).stop_sequence(vec![1, 2]).build().unwrap();
    let (out, chunks) = run(&pieces, &[0, 1, 0], options);
    assert_eq!(out.text.as_deref(), Some("a<|ima"));
    assert_eq!(chunks, ["a", "", "<|ima"]);
}

#[test]
fn stop_strings_need_a_detokenizer() {
    let mut generator = Generator::new(Pipeline::new(), Greedy, stops(3, &["x"]));
    let err = generator.generate(&mut Script::new(3, &[1]), &[0]).unwrap_err();
    assert!(matches!(err, GenerateError::MissingDetokenizer));
    assert!(generator.stream(&mut Script::new(3, &[1]), &[0]).is_err());
}

#[test]
fn an_unknown_token_is_an_error_after_the_tokens_before_it() {
    let pieces = vocab(&["a", "b"]);
    let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(5));
    let err = generator.generate_text(&mut Script::new(4, &[1, 0, 3]), &pieces, &[0]).unwrap_err();
    assert!(matches!(err, GenerateError::UnknownToken { step: 2, token: 3 }));
    assert_eq!(generator.generated(), [1, 0]);
    assert_eq!(generator.finish_reason(), None);
}
