//! A processor pipeline on raw logits: no model, no generator, one row.
//!
//! Builds the chain a notebook would (repetition penalty, temperature, top-k,
//! top-p), prints each token's probability before and after it, then draws
//! tokens from the processed row with a few seeds.
//!
//! ```sh
//! cargo run --example pipeline_on_logits
//! ```

use decoding::processors::{RepetitionPenalty, Temperature, TopK, TopP};
use decoding::sampler::{Categorical, Greedy};
use decoding::{Context, Pipeline, rng_from_seed};

/// A made-up vocabulary and the scores a model might give after
/// "My favourite movie is".
const VOCAB: [&str; 10] =
    [" The", " a", " Star", " not", " my", " probably", " one", " Matrix", " the", " movie"];
const LOGITS: [f32; 10] = [4.1, 3.6, 2.9, 2.7, 2.5, 2.2, 1.9, 1.4, 1.2, 0.3];

fn main() -> Result<(), decoding::Error> {
    // Token 9 (" movie") is in the history, so the repetition penalty lowers it.
    let history = [3, 9];
    let ctx = Context::prompt_only(&history);

    let mut pipeline = Pipeline::new()
        .with(RepetitionPenalty::new(1.3)?)
        .with(Temperature::new(0.7)?)
        .with(TopK::new(6)?)
        .with(TopP::new(0.9)?);

    // `process` writes the whole processed row back, as transformers'
    // processor list would hold it: removed tokens are -inf.
    let mut processed = LOGITS;
    pipeline.process(&ctx, &mut processed)?;

    let before = softmax(&LOGITS);
    let after = softmax(&processed);
    println!("{:>10} {:>8} {:>8} {:>10}", "token", "logit", "p before", "p after");
    for (i, piece) in VOCAB.iter().enumerate() {
        println!(
            "{:>10} {:>8.2} {:>8.3} {:>10}",
            format!("{piece:?}"),
            LOGITS[i],
            before[i],
            if processed[i] == f32::NEG_INFINITY {
                "removed".to_string()
            } else {
                format!("{:.3}", after[i])
            }
        );
    }

    // `sample` processes and draws in one go, without writing the row back
    // (the fast path of a decoding loop). The row is consumed, so each draw
    // gets a fresh copy of the model's scores.
    let mut greedy = LOGITS;
    let best = pipeline.sample(&ctx, &mut greedy, &mut Greedy::new(), &mut rng_from_seed(0))?;
    println!("\ngreedy: {:?} (log-prob {:.3})", VOCAB[best.token as usize], best.logprob);
    for seed in 1..=5 {
        let mut row = LOGITS;
        let step =
            pipeline.sample(&ctx, &mut row, &mut Categorical::new(), &mut rng_from_seed(seed))?;
        println!("seed {seed}: {:?} (log-prob {:.3})", VOCAB[step.token as usize], step.logprob);
    }
    Ok(())
}

/// Probabilities in f64 (`-inf` gives 0).
fn softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f64> = row.iter().map(|&x| f64::from(x - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}
