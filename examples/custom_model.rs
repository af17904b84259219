//! The `Generator` over a model of your own.
//!
//! The model here is a word-level bigram model counted from a short text:
//! small enough to read in a minute, but it has what the generator
//! asks of any model: a vocabulary size, a `forward` that is fed only the
//! tokens appended since its last call and their position (a transformer would
//! extend its KV cache there) and writes the next position's logits, and a `reset`. The
//! run streams text as it is produced, stops at a stop string, and reports
//! each token's log-probability.
//!
//! ```sh
//! cargo run --example custom_model
//! ```

use std::convert::Infallible;

use decoding::processors::{RepetitionPenalty, Temperature, TopP};
use decoding::sampler::Categorical;
use decoding::{GenerateOptions, Generator, LanguageModel, LogprobMode, Pipeline, TokenId};

const TEXT: &str = "the cat sat on the mat. the dog sat on the log. \
                    the cat saw the dog. the dog saw the cat on the mat.";

/// Next-word log-probabilities from bigram counts (lightly smoothed, so every word stays possible).
struct Bigram {
    /// `log_probs[a][b]`: log P(next = b | current = a).
    log_probs: Vec<Vec<f32>>,
    /// The model's whole state: the last token it was fed (its "cache").
    last: Option<TokenId>,
}

impl Bigram {
    fn train(ids: &[TokenId], vocab: usize) -> Self {
        let mut counts = vec![vec![0.05f64; vocab]; vocab];
        for pair in ids.windows(2) {
            counts[pair[0] as usize][pair[1] as usize] += 1.0;
        }
        let log_probs = counts
            .iter()
            .map(|row| {
                let total: f64 = row.iter().sum();
                row.iter().map(|c| (c / total).ln() as f32).collect()
            })
            .collect();
        Bigram { log_probs, last: None }
    }
}

impl LanguageModel for Bigram {
    type Error = Infallible;

    fn vocab_size(&self) -> usize {
        self.log_probs.len()
    }

    fn forward(
        &mut self,
        tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        // Only the new tokens arrive: the whole prompt first, then one token
        // per step. A bigram needs only the last one.
        self.last = tokens.last().copied().or(self.last);
        match self.last {
            Some(t) => logits.copy_from_slice(&self.log_probs[t as usize]),
            None => logits.fill(0.0),
        }
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Self::Error> {
        self.last = None;
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The tokenizer: one token per distinct word (with its leading space)
    // and one for the full stop.
    let words = |s: &str| -> Vec<String> {
        s.split_whitespace()
            .flat_map(|w| {
                let word = format!(" {}", w.trim_end_matches('.'));
                let stop = w.ends_with('.').then(|| ".".to_string());
                std::iter::once(word).chain(stop)
            })
            .collect()
    };
    let mut pieces = words(TEXT);
    pieces.sort_unstable();
    pieces.dedup();
    let encode = |s: &str| -> Vec<TokenId> {
        words(s).iter().map(|w| pieces.binary_search(w).expect("a known word") as TokenId).collect()
    };
    // The detokenizer: the text of each token (a `Vec` or an array of
    // strings or byte strings is one).

    let mut model = Bigram::train(&encode(TEXT), pieces.len());
    let pipeline = Pipeline::new()
        .with(RepetitionPenalty::new(1.1)?)
        .with(Temperature::new(0.8)?)
        .with(TopP::new(0.95)?);
    let options = GenerateOptions::builder(40)
        .stop_string(".")
        .logprobs(LogprobMode::Processed)
        .seed(3)
        .build()?;
    let mut generator = Generator::new(pipeline, Categorical::new(), options);

    let prompt = "the dog";
    print!("{prompt}");
    let mut logprob_sum = 0.0;
    let mut finish = None;
    for step in generator.stream_text(&mut model, &pieces, &encode(prompt))? {
        let step = step?;
        print!("{}", step.text); // held back while it may become the stop string
        logprob_sum += step.logprobs.and_then(|l| l.processed).unwrap_or(0.0);
        finish = step.finish_reason;
    }
    println!("\n\nstopped: {finish:?}; total log-probability {logprob_sum:.2}");

    // The same options and seed give the same tokens, as a whole this time.
    let again = generator.generate_text(&mut model, &pieces, &encode(prompt))?;
    println!("again:  {prompt}{}", again.text.unwrap_or_default());
    Ok(())
}
