//! Beam search through the generator against transformers'
//! `generate(num_beams=...)` on the tiny GPT-2, with the fixtures written by
//! `scripts/make_beam_fixtures.py`: the same hypotheses, in the same order,
//! with the same scores.

use std::path::{Path, PathBuf};

use decoding::processors::{NoRepeatNGram, RepetitionPenalty};
use decoding::sampler::Greedy;
use decoding::{
    BeamSearch, EarlyStopping, FinishReason, GenerateOptions, Generator, LanguageModel, Pipeline,
};
use gpt2::{Gpt2, Gpt2Beams};
use serde::Deserialize;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

#[derive(Deserialize)]
struct Fixture {
    cases: Vec<Case>,
}

#[derive(Deserialize, Debug)]
struct Case {
    prompt_ids: Vec<u32>,
    num_beams: usize,
    max_new_tokens: usize,
    length_penalty: f32,
    early_stopping: serde_json::Value,
    num_return_sequences: usize,
    eos: Vec<u32>,
    min_new_tokens: usize,
    repetition_penalty: Option<f32>,
    no_repeat_ngram_size: Option<usize>,
    hypotheses: Vec<Hypothesis>,
}

#[derive(Deserialize, Debug)]
struct Hypothesis {
    tokens: Vec<u32>,
    score: f32,
}

fn fixture() -> Fixture {
    let text = std::fs::read_to_string(data().join("beam_search.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn early_stopping(value: &serde_json::Value) -> EarlyStopping {
    match value {
        serde_json::Value::Bool(false) => EarlyStopping::Heuristic,
        serde_json::Value::Bool(true) => EarlyStopping::Done,
        serde_json::Value::String(s) if s == "never" => EarlyStopping::Never,
        other => panic!("unexpected early_stopping {other}"),
    }
}

fn search(case: &Case) -> BeamSearch {
    BeamSearch::new(case.num_beams)
        .unwrap()
        .with_length_penalty(case.length_penalty)
        .unwrap()
        .with_early_stopping(early_stopping(&case.early_stopping))
        .with_num_return_sequences(case.num_return_sequences)
        .unwrap()
}

fn generator(case: &Case) -> Generator<Pipeline, Greedy> {
    let options = GenerateOptions::builder(case.max_new_tokens)
        .min_new_tokens(case.min_new_tokens)
        .eos_tokens(case.eos.iter().copied())
        .build()
        .unwrap();
    let mut pipeline = Pipeline::new();
    if let Some(p) = case.repetition_penalty {
        pipeline.push(RepetitionPenalty::new(p).unwrap());
    }
    if let Some(n) = case.no_repeat_ngram_size {
        pipeline.push(NoRepeatNGram::new(n).unwrap());
    }
    Generator::new(pipeline, Greedy, options)
}

fn tiny() -> Gpt2 {
    Gpt2::from_dir(&data().join("tiny-gpt2")).unwrap()
}

#[test]
fn beam_search_matches_transformers() {
    let fixture = fixture();
    assert!(fixture.cases.len() >= 60, "{} cases", fixture.cases.len());
    let mut beams = Gpt2Beams::new(tiny(), 6);
    let mut finished_early = 0;
    for (i, case) in fixture.cases.iter().enumerate() {
        let out = generator(case).beam_search(&mut beams, &case.prompt_ids, &search(case)).unwrap();
        assert_eq!(out.len(), case.hypotheses.len(), "case {i}: {case:?}");
        for (rank, (got, want)) in out.iter().zip(&case.hypotheses).enumerate() {
            assert_eq!(got.tokens, want.tokens, "case {i}, hypothesis {rank}: {case:?}");
            let tolerance = 1e-4 * want.score.abs().max(1.0);
            assert!(
                (got.score - want.score).abs() <= tolerance,
                "case {i}, hypothesis {rank}: score {} vs {}",
                got.score,
                want.score
            );
            // The score is the penalized sum of the per-token scores.
            let sum: f32 = got.token_scores.iter().sum();
            let length = got.tokens.len() as f64;
            let penalized = sum / length.powf(f64::from(case.length_penalty)) as f32;
            assert!(
                (penalized - got.score).abs() <= tolerance,
                "case {i}: {penalized} vs {}",
                got.score
            );
            match got.finish_reason {
                FinishReason::Eos { token } => {
                    assert_eq!(got.tokens.last(), Some(&token));
                    assert!(case.eos.contains(&token));
                    if got.tokens.len() < case.max_new_tokens {
                        finished_early += 1;
                    }
                }
                FinishReason::Length => assert_eq!(got.tokens.len(), case.max_new_tokens),
                other => panic!("case {i}: unexpected {other:?}"),
            }
        }
    }
    // The fixtures exercise hypotheses that end before the length limit.
    assert!(finished_early >= 50, "{finished_early} hypotheses finished early");
}

#[test]
fn the_early_stopping_rules_and_length_penalties_give_different_results() {
    // Guards the fixture's power: the settings it varies change the answer.
    let fixture = fixture();
    let distinct = |pick: &dyn Fn(&Case) -> bool| {
        let mut seen: Vec<Vec<Vec<u32>>> = Vec::new();
        for case in fixture.cases.iter().filter(|c| pick(c)) {
            let tokens: Vec<Vec<u32>> = case.hypotheses.iter().map(|h| h.tokens.clone()).collect();
            if !seen.contains(&tokens) {
                seen.push(tokens);
            }
        }
        seen.len()
    };
    let prompt = &fixture.cases[0].prompt_ids;
    let many_eos = |c: &Case| &c.prompt_ids == prompt && c.eos.len() >= 3 && c.num_beams == 4;
    assert!(distinct(&|c| many_eos(c) && c.length_penalty == 1.0) >= 2);
    assert!(distinct(&|c| many_eos(c) && c.early_stopping == serde_json::json!(true)) >= 2);
}

#[test]
fn beam_search_with_one_model_per_beam_gives_the_same_hypotheses() {
    // The crate's default beam model (a Vec of models, cloned on reorder)
    // against the example's shared-weights one, on a toy model is covered
    // in the crate; here the point is that `Gpt2Beams` reorders right: a
    // search re-run from scratch on fresh models gives the same answer.
    let fixture = fixture();
    let case = fixture.cases.iter().find(|c| c.eos.len() >= 3).unwrap();
    let first = generator(case)
        .beam_search(&mut Gpt2Beams::new(tiny(), 4), &case.prompt_ids, &search(case))
        .unwrap();
    let mut reused = Gpt2Beams::new(tiny(), 8);
    let other = &fixture.cases[0];
    generator(other).beam_search(&mut reused, &other.prompt_ids, &search(other)).unwrap();
    let again = generator(case).beam_search(&mut reused, &case.prompt_ids, &search(case)).unwrap();
    assert_eq!(first, again);
}

#[test]
fn a_hypothesis_is_what_the_model_scores_it() {
    // Recompute a hypothesis' token scores with a plain forward pass:
    // log_softmax of the model's logits at each position.
    let fixture = fixture();
    let case = &fixture.cases[0];
    let out = generator(case)
        .beam_search(&mut Gpt2Beams::new(tiny(), 4), &case.prompt_ids, &search(case))
        .unwrap();
    let mut model = tiny();
    let mut logits = vec![0.0; model.vocab_size()];
    for hypothesis in &out {
        model.reset().unwrap();
        model.forward(&case.prompt_ids, 0, &mut logits).unwrap();
        for (k, (&token, &score)) in
            hypothesis.tokens.iter().zip(&hypothesis.token_scores).enumerate()
        {
            let m = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let z: f64 = logits.iter().map(|&x| f64::from(x - m).exp()).sum();
            let expected = f64::from(logits[token as usize] - m) - z.ln();
            assert!((f64::from(score) - expected).abs() < 1e-5, "token {k}: {score} vs {expected}");
            model.forward(&[token], case.prompt_ids.len() + k, &mut logits).unwrap();
        }
    }
}

#[test]
fn too_few_caches_is_an_error() {
    let fixture = fixture();
    let case = &fixture.cases[0];
    let err = generator(case)
        .beam_search(&mut Gpt2Beams::new(tiny(), 2), &case.prompt_ids, &search(case))
        .unwrap_err();
    assert!(
        matches!(err, decoding::GenerateError::BatchTooLarge { sequences: 4, capacity: 2 }),
        "{err}"
    );
}

#[test]
fn a_batched_step_gives_each_sequence_the_bits_of_a_lone_model() {
    use decoding::{BatchEntry, BatchLanguageModel};

    // Three sequences with different histories, then one token each in a
    // single batched call (one pass over the weights for all three).
    let histories: [&[u32]; 3] = [&[3666, 12507], &[464, 3290, 318, 257, 1332], &[50256]];
    let next = [3807u32, 11, 198];
    for threads in [1, 2] {
        let mut beams = Gpt2Beams::new(tiny().with_threads(threads).unwrap(), 3);
        let v = beams.vocab_size();
        let mut scratch = vec![0.0; v];
        let mut alone = Vec::new();
        for (i, history) in histories.iter().enumerate() {
            let mut model = tiny();
            model.forward(history, 0, &mut scratch).unwrap();
            let mut row = vec![0.0; v];
            model.forward(&[next[i]], history.len(), &mut row).unwrap();
            alone.push(row);
            // The prompts go in one at a time.
            let input = [BatchEntry { sequence: i, position: 0, tokens: history }];
            run_batch(&mut beams, &input, &mut scratch);
        }
        let input: Vec<BatchEntry<'_>> = (0..3)
            .map(|i| BatchEntry {
                sequence: i,
                position: histories[i].len(),
                tokens: std::slice::from_ref(&next[i]),
            })
            .collect();
        let mut rows = vec![0.0; 3 * v];
        run_batch(&mut beams, &input, &mut rows);
        for (i, want) in alone.iter().enumerate() {
            let got = &rows[i * v..(i + 1) * v];
            assert!(
                got.iter().zip(want).all(|(a, b)| a.to_bits() == b.to_bits()),
                "threads {threads}, sequence {i}: the batched row differs"
            );
        }
    }

    fn run_batch(beams: &mut Gpt2Beams, entries: &[BatchEntry<'_>], logits: &mut [f32]) {
        let mut tokens = Vec::new();
        let mut spans = Vec::new();
        for e in entries {
            let start = tokens.len();
            tokens.extend_from_slice(e.tokens);
            let (sequence, position, end) = (e.sequence, e.position, tokens.len());
            spans.push(decoding::BatchSpan { sequence, position, start, end });
        }
        let input = decoding::BatchInput::new(&tokens, &spans);
        beams.forward_batch(&input, logits).unwrap();
    }
}
