//! The generator's own cost per token, next to the sampling it drives.
//!
//! The model costs nothing: it writes its row once per run (at the prompt
//! call) and returns immediately afterwards, so no copy of the row is
//! counted. The processors used leave the row's values untouched, so the
//! row stays the same from step to step. Each `generate/...` benchmark
//! reports the time per generated token (a run of 64 tokens, divided by
//! 64); the `sample/...` benchmark next to it is the bare
//! `Pipeline::sample_token` call on the same row with the same processors
//! (what the generator calls when no log-probabilities are requested). The
//! difference is the generator's overhead per token. A last pair at a
//! 64-token vocabulary, where sampling is nearly free, shows that overhead
//! in absolute terms.
//!
//! Run with `cargo bench --bench generator`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use decoding::processors::TopK;
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    Context, GenerateOptions, Generator, LanguageModel, Pipeline, Sampler, TokenId, rng_from_seed,
};

const V: usize = 50_257;
const TOKENS: usize = 64;

#[path = "common/data.rs"]
mod data;

use data::logits;

/// A model that costs nothing: it writes its row at the first call of a
/// run and leaves the caller's buffer alone afterwards.
struct Free {
    row: Vec<f32>,
    fresh: bool,
}

impl LanguageModel for Free {
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
        if self.fresh {
            logits.copy_from_slice(&self.row);
            self.fresh = false;
        }
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.fresh = true;
        Ok(())
    }
}

fn pair<S: Sampler + Clone + 'static>(
    c: &mut Criterion,
    v: usize,
    name: &str,
    pipeline: impl Fn() -> Pipeline,
    sampler: S,
) {
    let row = logits(v);
    let mut group = c.benchmark_group(format!("V={v}"));
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));

    // The bare call the generator wraps.
    let prompt: Vec<TokenId> = vec![1, 2, 3, 4];
    let mut p = pipeline();
    let mut s = sampler.clone();
    let mut rng = rng_from_seed(1);
    let mut buf = row.clone();
    group.bench_function(format!("sample/{name}"), |b| {
        b.iter(|| {
            let ctx = Context::prompt_only(&prompt);
            black_box(p.sample_token(&ctx, black_box(&mut buf), &mut s, &mut rng).ok())
        })
    });

    // The generator: per token of a 64-token run.
    let mut generator = Generator::new(pipeline(), sampler, GenerateOptions::new(TOKENS));
    let mut model = Free { row: row.clone(), fresh: true };
    group.bench_function(format!("generate/{name}"), |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                black_box(generator.generate(&mut model, &prompt).ok());
            }
            start.elapsed() / TOKENS as u32
        })
    });
    group.finish();
}

fn generator(c: &mut Criterion) {
    pair(c, V, "categorical", Pipeline::new, Categorical::new());
    pair(
        c,
        V,
        "top_k_50_categorical",
        || Pipeline::new().with(TopK::new(50).unwrap()),
        Categorical::new(),
    );
    pair(c, V, "greedy", Pipeline::new, Greedy);
    // A tiny vocabulary makes the sampling nearly free, so the difference
    // shows the generator's absolute overhead per token.
    pair(c, 64, "greedy", Pipeline::new, Greedy);
}

criterion_group!(benches, generator);
criterion_main!(benches);
