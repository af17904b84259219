//! The run-time-dispatched kernel paths (portable, AVX2+FMA, AVX-512) and
//! the 16-bit weights: every path this CPU runs, forced in turn, against
//! transformers' fixtures and against the portable reference; 16-bit
//! checkpoints kept in 16 bits against their exact widening.

use std::path::Path;

use decoding::LanguageModel;
use gpt2::{Config, Dtype, Gpt2, KernelPath, Weights};

#[path = "common/parity_fixture.rs"]
mod parity_fixture;

use parity_fixture::{data, expected_logits, fixture, max_abs_diff};

fn paths() -> Vec<KernelPath> {
    KernelPath::ALL.into_iter().filter(|p| p.is_available()).collect()
}

fn load(dir: &Path, dtype: Option<Dtype>, path: KernelPath) -> Gpt2 {
    let config = Config::from_file(&dir.join("config.json")).unwrap();
    let mut weights = Weights::from_file(&dir.join("model.safetensors"), &config).unwrap();
    if let Some(dtype) = dtype {
        weights = weights.converted(dtype);
    }
    Gpt2::new(config, weights).unwrap().with_kernels(path).unwrap()
}

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

/// The prompt's logits, then `steps` greedy ids with the cache.
fn greedy(model: &mut Gpt2, prompt: &[u32], steps: usize) -> (Vec<f32>, Vec<u32>) {
    model.reset().unwrap();
    let mut logits = vec![0.0; model.vocab_size()];
    model.forward(prompt, model.position(), &mut logits).unwrap();
    let first = logits.clone();
    let mut ids = Vec::new();
    while ids.len() < steps {
        ids.push(argmax(&logits));
        if ids.len() < steps {
            model.forward(&ids[ids.len() - 1..], model.position(), &mut logits).unwrap();
        }
    }
    (first, ids)
}

#[test]
fn every_path_matches_transformers_and_the_portable_reference() {
    let fixture = fixture();
    let dir = data().join("tiny-gpt2");
    let mut reference = load(&dir, None, KernelPath::Portable);
    for path in paths() {
        let mut model = load(&dir, None, path);
        assert_eq!(model.kernels(), path);
        for (i, case) in fixture.tiny_gpt2.cases.iter().enumerate() {
            let (logits, ids) = greedy(&mut model, &case.prompt_ids, case.greedy_ids.len());
            let (portable, _) = greedy(&mut reference, &case.prompt_ids, 1);
            let scale = portable.iter().fold(1.0f32, |m, v| m.max(v.abs()));
            let diff = max_abs_diff(&logits, &portable);
            assert!(diff <= 1e-5 * scale, "{path:?}, prompt {i}: {diff} from the portable path");
            let diff = max_abs_diff(&logits, &expected_logits(i));
            assert!(diff < 1e-4, "{path:?}, prompt {i}: {diff} from transformers");
            assert_eq!(ids, case.greedy_ids, "{path:?}, prompt {i}: greedy ids");
        }
        let saved = &fixture.tiny_gpt2_saved;
        let mut model = load(&data().join("tiny-gpt2-saved"), None, path);
        let (logits, ids) = greedy(&mut model, &saved.prompt_ids, saved.greedy_ids.len());
        let diff = max_abs_diff(&logits, &saved.last_logits);
        assert!(diff < 1e-4, "{path:?}, save_pretrained layout: {diff} from transformers");
        assert_eq!(ids, saved.greedy_ids, "{path:?}, save_pretrained layout");
    }
}

/// Prompts cross the prefill chunk (128 positions) and are fed whole, a
/// token at a time, and in uneven pieces: the same bits on every path.
#[test]
fn prompts_and_cached_steps_are_bit_identical_on_every_path() {
    let dir = gpt2::lookup::bundled_dir();
    let sequence: Vec<u32> = (0..200u32).map(|i| (i * 7919 + 13) % 50257).collect();
    for path in paths() {
        let mut model = load(&dir, None, path);
        assert!(model.max_positions() >= sequence.len());
        let v = model.vocab_size();
        let mut whole = vec![0.0; v];
        model.forward(&sequence, model.position(), &mut whole).unwrap();
        for piece in [1, 37, 129] {
            model.reset().unwrap();
            let mut logits = vec![0.0; v];
            for part in sequence.chunks(piece) {
                model.forward(part, model.position(), &mut logits).unwrap();
            }
            assert_eq!(logits, whole, "{path:?}, pieces of {piece}");
        }
    }
}

/// An f16 checkpoint stays in 16 bits (half the bytes per step) and gives
/// the same bits as the same weights widened to f32 at load: widening is
/// exact. The same holds for bf16.
#[test]
fn sixteen_bit_weights_give_the_bits_of_their_exact_widening() {
    let fixture = fixture();
    let dir = data().join("tiny-gpt2");
    let prompt = &fixture.tiny_gpt2.cases[2].prompt_ids;
    for path in paths() {
        let mut kept = load(&dir, None, path);
        assert_eq!(kept.weights().dtype(), Dtype::F16);
        let mut wide = load(&dir, Some(Dtype::F32), path);
        assert_eq!(
            wide.weights().bytes_per_step(),
            2 * kept.weights().bytes_per_step() - {
                // Biases stay f32 in both.
                let c = kept.config();
                4 * c.n_layer * (3 * c.n_embd + c.n_embd + c.n_inner + c.n_embd)
            }
        );
        assert_eq!(greedy(&mut kept, prompt, 8), greedy(&mut wide, prompt, 8), "{path:?}");

        let mut brain = load(&dir, Some(Dtype::Bf16), path);
        assert_eq!(brain.weights().dtype(), Dtype::Bf16);
        let config = brain.config().clone();
        let widened = brain.weights().clone().converted(Dtype::F32);
        let mut brain_wide = Gpt2::new(config, widened).unwrap().with_kernels(path).unwrap();
        assert_eq!(greedy(&mut brain, prompt, 8), greedy(&mut brain_wide, prompt, 8), "{path:?}");
    }
}

/// Narrowing f32 weights to 16 bits at load rounds them: the logits move by
/// the rounding (here within 0.02 for f16 and 0.2 for bf16 of the f32
/// model's, whose logits span about ±1), and on the fixture the greedy ids
/// stay transformers'.
#[test]
fn narrowing_f32_weights_rounds_the_logits_within_a_stated_tolerance() {
    let fixture = fixture();
    let saved = &fixture.tiny_gpt2_saved;
    let dir = data().join("tiny-gpt2-saved");
    for path in paths() {
        let mut full = load(&dir, None, path);
        assert_eq!(full.weights().dtype(), Dtype::F32);
        let (reference, _) = greedy(&mut full, &saved.prompt_ids, 1);
        for (dtype, tolerance) in [(Dtype::F16, 0.02), (Dtype::Bf16, 0.2)] {
            let mut narrow = load(&dir, Some(dtype), path);
            let (logits, _) = greedy(&mut narrow, &saved.prompt_ids, 1);
            let diff = max_abs_diff(&logits, &reference);
            assert!(diff > 0.0 && diff < tolerance, "{path:?} {dtype:?}: {diff}");
        }
    }
}
