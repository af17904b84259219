//! The bundled default model is a real language model: its held-out
//! perplexity, computed here through the example's own loader and forward
//! pass, matches what the training script reported and is far below a
//! unigram baseline.

use std::path::PathBuf;

use decoding::LanguageModel;
use gpt2::Gpt2;
use gpt2::lookup::bundled_dir;

fn heldout() -> serde_json::Value {
    let path: PathBuf = bundled_dir().join("heldout.json");
    let text = std::fs::read_to_string(&path).expect("heldout.json is committed with the model");
    serde_json::from_str(&text).unwrap()
}

/// `ln p(token)` under the softmax of `logits`, in f64.
fn log_prob(logits: &[f32], token: usize) -> f64 {
    let m = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let z: f64 = logits.iter().map(|&x| (x as f64 - m).exp()).sum();
    logits[token] as f64 - m - z.ln()
}

#[test]
fn heldout_perplexity_matches_the_training_report_and_beats_unigram() {
    let data = heldout();
    let reported = data["perplexity"].as_f64().unwrap();
    let unigram = data["unigram_perplexity"].as_f64().unwrap();
    let windows = data["windows"].as_array().unwrap();

    let mut model = Gpt2::from_dir(&bundled_dir()).expect("the bundled model loads");
    let mut logits = vec![0.0f32; model.vocab_size()];
    let mut nll = 0.0f64;
    let mut predicted = 0usize;
    for window in windows {
        let ids: Vec<u32> = window
            .as_array()
            .or_else(|| window["ids"].as_array())
            .expect("a window is a list of ids")
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        model.reset().unwrap();
        for i in 0..ids.len() - 1 {
            // Incremental: one new token per call, the KV cache holds the rest.
            model.forward(&ids[i..=i], i, &mut logits).unwrap();
            nll -= log_prob(&logits, ids[i + 1] as usize);
            predicted += 1;
        }
    }
    assert_eq!(predicted as u64, data["predicted_tokens"].as_u64().unwrap());
    let perplexity = (nll / predicted as f64).exp();
    eprintln!(
        "held-out perplexity {perplexity:.4} (training script {reported:.4}, unigram {unigram:.2})"
    );
    let relative = (perplexity - reported).abs() / reported;
    assert!(relative < 0.01, "perplexity {perplexity:.4}, training script reported {reported:.4}");
    assert!(perplexity < unigram / 3.0, "perplexity {perplexity:.1} vs unigram {unigram:.1}");
}
