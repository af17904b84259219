//! Beam search's own cost per step, next to batched greedy decoding of the
//! same width.
//!
//! The model copies a fixed row of GPT-2's vocabulary size into each buffer
//! it is asked to fill (one `memcpy` per sequence and step, the same in both
//! benchmarks). `beam_search/4x32` runs a 4-beam search for 32 tokens (no
//! EOS, so every step runs); `greedy_batch/4x32` generates 32 tokens for 4
//! sequences with [`generate_batch`] and greedy decoding. Both call the
//! model once per step for 4 rows; the difference is what beam search adds:
//! a `log_softmax` of each row, the selection of the best `2 × 4`
//! continuations over `4 × V` candidates, and the reorder of the models'
//! states (here cheap clones).
//!
//! Run with `cargo bench --bench beam_search`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use decoding::sampler::Greedy;
use decoding::{
    BatchSequence, BeamSearch, GenerateOptions, Generator, LanguageModel, Pipeline, TokenId,
    generate_batch,
};

const V: usize = 50_257;
const BEAMS: usize = 4;
const TOKENS: usize = 32;

#[path = "common/data.rs"]
mod data;

use data::logits;

/// Writes its (shared) row at every call.
#[derive(Clone)]
struct Copying {
    row: std::sync::Arc<Vec<f32>>,
}

impl LanguageModel for Copying {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        self.row.len()
    }
    fn forward(
        &mut self,
        _tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        logits.copy_from_slice(&self.row);
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let model = Copying { row: std::sync::Arc::new(logits(V)) };
    let prompt: [TokenId; 4] = [1, 2, 3, 4];
    let mut group = c.benchmark_group(format!("V={V}"));

    let mut models = vec![model.clone(); BEAMS];
    let search = BeamSearch::new(BEAMS).unwrap();
    let mut beam = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(TOKENS));
    group.bench_function(format!("beam_search/{BEAMS}x{TOKENS}"), |b| {
        b.iter(|| black_box(beam.beam_search(&mut models, black_box(&prompt), &search).unwrap()))
    });

    let mut generators: Vec<_> = (0..BEAMS)
        .map(|_| Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(TOKENS)))
        .collect();
    group.bench_function(format!("greedy_batch/{BEAMS}x{TOKENS}"), |b| {
        b.iter(|| {
            let mut sequences: Vec<_> =
                generators.iter_mut().map(|g| BatchSequence::new(g, &prompt)).collect();
            black_box(generate_batch(&mut models, &mut sequences).unwrap())
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
