//! Parity with Hugging Face transformers on the fixtures written by
//! `scripts/make_parity_fixtures.py`: last-position logits within 1e-4,
//! identical greedy ids, and KV-cached runs bit-identical to uncached ones.

use decoding::LanguageModel;
use gpt2::{Gpt2, Tokenizer};

#[path = "common/parity_fixture.rs"]
mod parity_fixture;

use parity_fixture::{data, expected_logits, fixture, max_abs_diff};

/// The first maximum, as torch's argmax picks it.
fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in row.iter().enumerate() {
        if x > row[best] {
            best = i;
        }
    }
    best as u32
}

/// Greedy decoding with the cache: the prompt once, then one token a step.
/// Returns the ids and every step's logits.
fn greedy_cached(model: &mut Gpt2, prompt: &[u32], steps: usize) -> (Vec<u32>, Vec<Vec<f32>>) {
    model.reset().unwrap();
    let mut logits = vec![0.0; model.vocab_size()];
    model.forward(prompt, 0, &mut logits).unwrap();
    let (mut ids, mut rows) = (Vec::new(), Vec::new());
    for _ in 0..steps {
        let next = argmax(&logits);
        rows.push(logits.clone());
        ids.push(next);
        if ids.len() < steps {
            model.forward(&[next], prompt.len() + ids.len() - 1, &mut logits).unwrap();
        }
    }
    (ids, rows)
}

#[test]
fn tiny_gpt2_in_the_published_layout_matches_transformers() {
    let fixture = fixture();
    let mut model = Gpt2::from_dir(&data().join("tiny-gpt2")).unwrap();
    assert_eq!(model.vocab_size(), 50257);
    let tokenizer = Tokenizer::gpt2().unwrap();
    assert!(fixture.tiny_gpt2.cases.len() >= 5);
    for (i, case) in fixture.tiny_gpt2.cases.iter().enumerate() {
        assert_eq!(tokenizer.encode(&case.prompt).unwrap(), case.prompt_ids, "{:?}", case.prompt);

        model.reset().unwrap();
        let mut logits = vec![0.0; model.vocab_size()];
        model.forward(&case.prompt_ids, 0, &mut logits).unwrap();
        let diff = max_abs_diff(&logits, &expected_logits(i));
        assert!(diff < 1e-4, "prompt {i}: last-position logits differ by {diff}");

        let steps = case.greedy_ids.len();
        assert!(steps >= 32);
        let (ids, rows) = greedy_cached(&mut model, &case.prompt_ids, steps);
        assert_eq!(ids, case.greedy_ids, "prompt {i}: greedy ids");
        for (step, (row, &top)) in rows.iter().zip(&case.greedy_top_logits).enumerate() {
            let got = row[ids[step] as usize];
            assert!((got - top).abs() < 1e-4, "prompt {i} step {step}: top logit {got} vs {top}");
        }
    }
}

#[test]
fn cached_and_uncached_runs_are_bit_identical() {
    let fixture = fixture();
    let mut model = Gpt2::from_dir(&data().join("tiny-gpt2")).unwrap();
    let case = &fixture.tiny_gpt2.cases[1];
    let (ids, cached_rows) = greedy_cached(&mut model, &case.prompt_ids, 36);
    let mut logits = vec![0.0; model.vocab_size()];
    let mut sequence = case.prompt_ids.clone();
    for (step, cached) in cached_rows.iter().enumerate() {
        // The whole prefix again, from an empty cache.
        model.reset().unwrap();
        model.forward(&sequence, 0, &mut logits).unwrap();
        assert_eq!(&logits, cached, "step {step}");
        sequence.push(ids[step]);
    }
    // Fed in uneven pieces (tests/kernel_paths.rs crosses the prefill chunk).
    model.reset().unwrap();
    model.forward(&sequence[..45], 0, &mut logits).unwrap();
    let mut pieces = logits.clone();
    model.reset().unwrap();
    for (i, part) in sequence[..45].chunks(7).enumerate() {
        model.forward(part, 7 * i, &mut pieces).unwrap();
    }
    assert_eq!(logits, pieces);
}

#[test]
fn threads_do_not_change_the_logits() {
    let fixture = fixture();
    let case = &fixture.tiny_gpt2.cases[0];
    let mut one = Gpt2::from_dir(&data().join("tiny-gpt2")).unwrap();
    let mut three = Gpt2::from_dir(&data().join("tiny-gpt2")).unwrap().with_threads(3).unwrap();
    let (ids_one, rows_one) = greedy_cached(&mut one, &case.prompt_ids, 8);
    let (ids_three, rows_three) = greedy_cached(&mut three, &case.prompt_ids, 8);
    assert_eq!(ids_one, ids_three);
    assert_eq!(rows_one, rows_three);
}

#[test]
fn save_pretrained_layout_matches_transformers() {
    let fixture = fixture();
    let saved = &fixture.tiny_gpt2_saved;
    let mut model = Gpt2::from_dir(&data().join("tiny-gpt2-saved")).unwrap();
    assert_eq!(model.vocab_size(), 1000);
    assert!(model.config().scale_attn_by_inverse_layer_idx);
    assert_eq!(model.config().n_inner, 40);
    let mut logits = vec![0.0; model.vocab_size()];
    model.forward(&saved.prompt_ids, 0, &mut logits).unwrap();
    let diff = max_abs_diff(&logits, &saved.last_logits);
    assert!(diff < 1e-4, "logits differ by {diff}");
    let (ids, _) = greedy_cached(&mut model, &saved.prompt_ids, saved.greedy_ids.len());
    assert_eq!(ids, saved.greedy_ids);
}

#[test]
fn the_generator_reproduces_transformers_greedy_ids_and_text() {
    use decoding::sampler::Greedy;
    use decoding::{FinishReason, GenerateOptions, Generator, Pipeline};

    let fixture = fixture();
    let mut model = Gpt2::from_dir(&data().join("tiny-gpt2")).unwrap();
    let tokenizer = Tokenizer::gpt2().unwrap();
    for case in &fixture.tiny_gpt2.cases {
        let options = GenerateOptions::builder(case.greedy_ids.len())
            .vocab_size(tokenizer.vocab_size())
            .build()
            .unwrap();
        let mut generator = Generator::new(Pipeline::new(), Greedy::new(), options);
        let out = generator.generate_text(&mut model, &tokenizer, &case.prompt_ids).unwrap();
        assert_eq!(out.tokens, case.greedy_ids, "{:?}", case.prompt);
        assert_eq!(out.finish_reason, FinishReason::Length);
        assert_eq!(out.text.unwrap(), tokenizer.decode(&case.greedy_ids).unwrap());
    }
}

#[test]
fn threads_do_not_change_the_logits_of_prompts_and_batched_beams() {
    use decoding::{BatchInput, BatchLanguageModel, BatchSpan};
    use gpt2::Gpt2Beams;

    // The bundled model's MLP is 256 wide: wide enough for its products to
    // be split across threads, for a prompt (several rows at once) and for
    // a batched beam step (one row per beam), as well as for single steps.
    let dir = gpt2::lookup::bundled_dir();
    let prompt = [3666u32, 12507, 3807, 318, 11, 290, 262, 1110, 13];
    let run = |threads: usize| {
        let mut model = Gpt2::from_dir(&dir).unwrap().with_threads(threads).unwrap();
        assert!(model.config().n_inner >= 256);
        let v = model.vocab_size();
        let mut rows = vec![0.0; v];
        model.forward(&prompt, 0, &mut rows).unwrap();
        let mut step = vec![0.0; v];
        model.forward(&[262], prompt.len(), &mut step).unwrap();
        rows.extend_from_slice(&step);

        let mut beams =
            Gpt2Beams::new(Gpt2::from_dir(&dir).unwrap().with_threads(threads).unwrap(), 3);
        let mut scratch = vec![0.0; v];
        for s in 0..3 {
            let spans = [BatchSpan { sequence: s, position: 0, start: 0, end: prompt.len() - s }];
            beams.forward_batch(&BatchInput::new(&prompt, &spans), &mut scratch).unwrap();
        }
        let next = [11u32, 290, 262];
        let spans: Vec<BatchSpan> = (0..3)
            .map(|s| BatchSpan { sequence: s, position: prompt.len() - s, start: s, end: s + 1 })
            .collect();
        let mut batched = vec![0.0; 3 * v];
        beams.forward_batch(&BatchInput::new(&next, &spans), &mut batched).unwrap();
        rows.extend_from_slice(&batched);
        rows
    };
    let one = run(1);
    for threads in [2, 3] {
        let many = run(threads);
        assert!(
            one.iter().zip(&many).all(|(a, b)| a.to_bits() == b.to_bits()),
            "{threads} threads changed the logits"
        );
    }
}
