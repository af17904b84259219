//! Speculative decoding against plain generation, with a target whose cost
//! is its weights, as a language model's decoding step is.
//!
//! The models are bandwidth-bound stand-ins: every call reads a weight
//! matrix once (target 16 MiB, draft 0.5 MiB, both past the caches) and
//! uses each weight row for every position of the call, so scoring five
//! positions costs about what scoring one does — the property speculative
//! decoding exploits. Their scores come from a bigram table (the draft's
//! optionally perturbed), so the acceptance rate is set by construction.
//!
//! - `plain/greedy`: 64 greedy tokens from the target alone.
//! - `speculative/agree/k=4`: the same 64 tokens, the draft always right.
//! - `speculative/partial/k=4`: a draft wrong after every even token
//!   (a quarter of the drafted tokens accepted).
//! - `rewrite/plain/greedy`: 64 greedy tokens after a prompt that holds
//!   them already (a text followed by its first token, as in "rewrite
//!   this text"); `rewrite/prompt-lookup/k=K`: the same tokens with prompt
//!   lookup decoding (no draft model), `K` tokens copied per round.
//!
//! The acceptance rate and the target calls of each are printed first.
//!
//! Run with `cargo bench --bench speculative`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use decoding::sampler::Greedy;
use decoding::{
    GenerateOptions, Generator, LanguageModel, Pipeline, PromptLookup, RewindableModel,
    SpeculativeOptions, TokenId, Verification,
};

const V: usize = 512;
const TOKENS: usize = 64;

/// A model whose call reads `weights` once; its scores are a bigram table.
struct WeightBound {
    weights: Vec<f32>,
    width: usize,
    /// Tokens fed since the reset.
    history: Vec<TokenId>,
    /// Every `wrong`-th previous token gets a different favourite (0: never).
    wrong: usize,
    sink: f32,
}

impl WeightBound {
    fn new(kib: usize, wrong: usize) -> Self {
        let width = 512;
        let n = kib * 1024 / 4;
        let weights = (0..n).map(|i| ((i * 7919) % 1013) as f32 * 1e-3).collect();
        WeightBound { weights, width, history: Vec::new(), wrong, sink: 0.0 }
    }

    fn row(&self, last: TokenId, out: &mut [f32]) {
        out.fill(0.0);
        let mut next = (last as usize * 31 + 7) % V;
        if self.wrong > 0 && last as usize % self.wrong == 0 {
            next = (next + 1) % V;
        }
        out[next] = 5.0;
    }

    /// One pass over the weights for `positions` inputs.
    fn read_weights(&mut self, positions: usize) {
        let mut acc = vec![0.0f32; positions];
        for row in self.weights.chunks_exact(self.width) {
            let s: f32 = row.iter().sum();
            for (p, a) in acc.iter_mut().enumerate() {
                *a += s * (p + 1) as f32;
            }
        }
        self.sink += acc.iter().sum::<f32>();
    }
}

impl LanguageModel for WeightBound {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        V
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.read_weights(1);
        self.history.extend_from_slice(tokens);
        self.row(*self.history.last().unwrap_or(&0), logits);
        Ok(())
    }

    fn forward_all(
        &mut self,
        tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.read_weights(tokens.len());
        for (&t, row) in tokens.iter().zip(logits.chunks_exact_mut(V)) {
            self.history.push(t);
            self.row(t, row);
        }
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.history.clear();
        Ok(())
    }
}

impl RewindableModel for WeightBound {
    fn rewind(&mut self, len: usize) -> Result<(), Self::Error> {
        self.history.truncate(len);
        Ok(())
    }
}

fn bench(c: &mut Criterion) {
    let prompt: [TokenId; 4] = [1, 2, 3, 4];
    let mut target = WeightBound::new(16 * 1024, 0);
    let mut group = c.benchmark_group(format!("V={V}"));
    let mut plain = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(TOKENS));
    group.bench_function("plain/greedy", |b| {
        b.iter(|| black_box(plain.generate(&mut target, black_box(&prompt)).unwrap()))
    });
    let k4 = SpeculativeOptions::new(4, Verification::Greedy).unwrap();
    for (name, wrong) in [("agree", 0), ("partial", 2)] {
        let mut draft = WeightBound::new(512, wrong);
        let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(TOKENS));
        let check = generator.generate_speculative(&mut target, &mut draft, &prompt, &k4).unwrap();
        assert_eq!(check.tokens, plain.generate(&mut target, &prompt).unwrap().tokens);
        let stats = generator.speculative_stats();
        eprintln!(
            "{name}: acceptance {:?}, {} target calls",
            stats.acceptance_rate(),
            stats.target_calls
        );
        group.bench_function(format!("speculative/{name}/k=4"), |b| {
            b.iter(|| {
                black_box(
                    generator
                        .generate_speculative(&mut target, &mut draft, black_box(&prompt), &k4)
                        .unwrap(),
                )
            })
        });
    }

    // A text of 64 tokens the target writes after token 1, then token 1
    // again: the target rewrites the text, which the lookup copies.
    let text = plain.generate(&mut target, &[1]).unwrap().tokens;
    let rewrite: Vec<TokenId> = [1].iter().chain(&text).chain(&[1]).copied().collect();
    let expected = plain.generate(&mut target, &rewrite).unwrap();
    assert_eq!(expected.tokens, text);
    group.bench_function("rewrite/plain/greedy", |b| {
        b.iter(|| black_box(plain.generate(&mut target, black_box(&rewrite)).unwrap()))
    });
    for k in [4, 8] {
        let lookup = PromptLookup::new(k, 2, Verification::Greedy).unwrap();
        let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(TOKENS));
        let check = generator.generate_prompt_lookup(&mut target, &rewrite, &lookup).unwrap();
        assert_eq!(check.tokens, expected.tokens);
        let stats = generator.speculative_stats();
        eprintln!(
            "rewrite, k = {k}: acceptance {:?}, {} target calls for {} tokens",
            stats.acceptance_rate(),
            stats.target_calls,
            stats.emitted()
        );
        group.bench_function(format!("rewrite/prompt-lookup/k={k}"), |b| {
            b.iter(|| {
                black_box(generator.generate_prompt_lookup(
                    &mut target,
                    black_box(&rewrite),
                    &lookup,
                ))
                .unwrap()
            })
        });
    }
    group.finish();
    black_box(target.sink);
}

criterion_group!(benches, bench);
criterion_main!(benches);
