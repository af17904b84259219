//! Criterion benchmarks of every processor, the samplers and the common
//! chains, at three vocabulary sizes, next to the physical floor measured
//! in the same group: one pass for the maximum plus one pass of
//! `Σ exp(x - max)` over the same row.
//!
//! The floor is `benches/common/floor.rs`, the same as the peer
//! comparison's. Run with `cargo bench --bench processors`, or one group:
//! `cargo bench --bench processors -- 'shapes/'`; `docs/benchmarks.md`
//! quotes the medians as multiples of the floor.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use decoding::processors::{
    AllowedTokens, Argmax, BadWords, Dry, DynamicTemperature, EpsilonCutoff, EtaCutoff, LogSoftmax,
    LogitBias, MinNewTokens, MinP, MirostatV2, NoRepeatNGram, PresenceFrequencyPenalty,
    RepetitionPenalty, SuppressTokens, Temperature, TokenBitmask, TopH, TopK, TopNSigma, TopP,
    Typical, Xtc,
};
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    Context, DecodingRng, LogitsProcessor, Pipeline, Sampler, Scores, TokenId, rng_from_seed,
};

#[path = "common/data.rs"]
mod data;
#[path = "common/floor.rs"]
mod floor;

use data::{flat, history, logits, masked, sorted};
use floor::floor;

const VOCABS: [usize; 3] = [50_257, 128_256, 151_936];

fn bench_processor(
    c: &mut Criterion,
    group: &str,
    row: &[f32],
    ctx: &Context<'_>,
    name: &str,
    p: &mut dyn LogitsProcessor,
) {
    let mut g = c.benchmark_group(group);
    let mut live = Vec::new();
    g.bench_function(name, |b| {
        b.iter_batched_ref(
            || row.to_vec(),
            |buf| {
                let mut scores = Scores::new(buf, &mut live);
                p.process(ctx, &mut scores).unwrap();
                black_box(scores.live_len());
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn bench_chain(
    c: &mut Criterion,
    group: &str,
    row: &[f32],
    ctx: &Context<'_>,
    name: &str,
    pipeline: &mut Pipeline,
    sampler: &mut dyn Sampler,
) {
    let mut rng: DecodingRng = rng_from_seed(1);
    let mut g = c.benchmark_group(group);
    g.bench_function(name, |b| {
        b.iter_batched_ref(
            || row.to_vec(),
            |buf| black_box(pipeline.sample(ctx, buf, sampler, &mut rng).unwrap()),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

fn all(c: &mut Criterion) {
    for v in VOCABS {
        let row = logits(v);
        let hist = history(v, 512);
        let ctx = Context::new(&hist, 256).unwrap();
        let group = format!("V={v}");
        {
            let mut g = c.benchmark_group(&group);
            g.bench_with_input(BenchmarkId::new("floor", "max+sumexp"), &row, |b, r| {
                b.iter(|| floor(black_box(r)))
            });
            g.finish();
        }
        let bias: Vec<(TokenId, f32)> = (0..100).map(|i| ((i * 97) as TokenId, 1.5)).collect();
        let bad: Vec<Vec<TokenId>> = (0..50).map(|i| vec![hist[i], hist[i + 1]]).collect();
        let mut processors: Vec<(&str, Box<dyn LogitsProcessor>)> = vec![
            ("temperature 0.8", Box::new(Temperature::new(0.8).unwrap())),
            ("top_k 50", Box::new(TopK::new(50).unwrap())),
            ("top_p 0.9", Box::new(TopP::new(0.9).unwrap())),
            ("min_p 0.05", Box::new(MinP::new(0.05).unwrap())),
            ("typical 0.9", Box::new(Typical::new(0.9).unwrap())),
            ("epsilon 3e-4", Box::new(EpsilonCutoff::new(3e-4).unwrap())),
            ("eta 3e-4", Box::new(EtaCutoff::new(3e-4).unwrap())),
            ("top_h 0.4", Box::new(TopH::new(0.4).unwrap())),
            ("argmax", Box::new(Argmax::new())),
            ("log_softmax", Box::new(LogSoftmax::new())),
            ("repetition_penalty 1.3 (512 tokens)", Box::new(RepetitionPenalty::new(1.3).unwrap())),
            (
                "presence 0.5 + frequency 0.5 (256 generated)",
                Box::new(PresenceFrequencyPenalty::new(0.5, 0.5).unwrap()),
            ),
            ("logit_bias (100 tokens)", Box::new(LogitBias::new(bias).unwrap())),
            ("no_repeat_ngram 3 (512 tokens)", Box::new(NoRepeatNGram::new(3).unwrap())),
            ("bad_words (50 pairs)", Box::new(BadWords::new(bad, &[0]).unwrap())),
            ("suppress_tokens (100)", Box::new(SuppressTokens::new(0..100))),
            ("min_new_tokens 1000", Box::new(MinNewTokens::new(1000, [0]).unwrap())),
            ("top_n_sigma 1", Box::new(TopNSigma::new(1.0).unwrap())),
            ("xtc 1.0 0.1", Box::new(Xtc::new(1.0, 0.1, 1).unwrap())),
            ("dynatemp 0.8 ± 0.5", Box::new(DynamicTemperature::new(0.8, 0.5, 1.0).unwrap())),
            ("mirostat_v2 5 0.1", Box::new(MirostatV2::new(5.0, 0.1).unwrap())),
            ("dry 0.8 1.75 2 (512 tokens)", Box::new(Dry::new(0.8, 1.75, 2).unwrap())),
            (
                "allowed_tokens (every 7th)",
                Box::new(AllowedTokens::new(|_: &Context<'_>, mask: &mut TokenBitmask| {
                    (0..mask.vocab_size() as TokenId).step_by(7).try_for_each(|id| mask.insert(id))
                })),
            ),
        ];
        for (name, p) in processors.iter_mut() {
            bench_processor(c, &group, &row, &ctx, name, p.as_mut());
        }
        let t = || Temperature::new(0.8).unwrap();
        let chains: Vec<(&str, Pipeline, Box<dyn Sampler>)> = vec![
            ("greedy", Pipeline::new(), Box::new(Greedy::new())),
            ("temperature -> sample", Pipeline::new().with(t()), Box::new(Categorical::new())),
            (
                "top_k 50 -> temperature -> sample",
                Pipeline::new().with(TopK::new(50).unwrap()).with(t()),
                Box::new(Categorical::new()),
            ),
            (
                "top_p 0.9 -> temperature -> sample",
                Pipeline::new().with(TopP::new(0.9).unwrap()).with(t()),
                Box::new(Categorical::new()),
            ),
            (
                "top_k 50 -> top_p 0.9 -> temperature -> sample",
                Pipeline::new()
                    .with(TopK::new(50).unwrap())
                    .with(TopP::new(0.9).unwrap())
                    .with(t()),
                Box::new(Categorical::new()),
            ),
            (
                "min_p 0.05 -> temperature -> sample",
                Pipeline::new().with(MinP::new(0.05).unwrap()).with(t()),
                Box::new(Categorical::new()),
            ),
            (
                "penalties -> top_p 0.9 -> sample",
                Pipeline::new()
                    .with(RepetitionPenalty::new(1.3).unwrap())
                    .with(PresenceFrequencyPenalty::new(0.5, 0.5).unwrap())
                    .with(TopP::new(0.9).unwrap()),
                Box::new(Categorical::new()),
            ),
        ];
        for (name, mut pipeline, mut sampler) in chains {
            bench_chain(c, &group, &row, &ctx, name, &mut pipeline, sampler.as_mut());
        }
    }
}

/// Single stages on the row shapes that defeat easy paths, at V = 128256,
/// next to the floor of the standard row: large k, rows in ascending order,
/// a flat row, a high temperature, masked rows; then the low and high
/// temperature and flat rows at V = 256000, next to their own floor.
fn shapes(c: &mut Criterion) {
    let v = 128_256;
    let standard = logits(v);
    let ctx = Context::empty();
    let group = "shapes";
    {
        let mut g = c.benchmark_group(group);
        g.bench_function("floor", |b| b.iter(|| floor(black_box(&standard))));
        g.finish();
    }
    let ascending = sorted(&standard, true);
    let descending = sorted(&standard, false);
    let hot: Vec<f32> = standard.iter().map(|x| x / 1.5).collect();
    let flat = flat(v);
    let m90 = masked(&standard, 0.9, f32::NEG_INFINITY);
    let top_k = |k| TopK::new(k).unwrap();
    let top_p = || TopP::new(0.9).unwrap();
    let rows: Vec<(&str, &[f32], Box<dyn LogitsProcessor>)> = vec![
        ("top_k 50", &standard, Box::new(top_k(50))),
        ("top_k 1000", &standard, Box::new(top_k(1000))),
        ("top_k 5000", &standard, Box::new(top_k(5000))),
        ("top_k 50 (ascending row)", &ascending, Box::new(top_k(50))),
        ("top_k 50 (descending row)", &descending, Box::new(top_k(50))),
        ("top_k 5000 (ascending row)", &ascending, Box::new(top_k(5000))),
        ("top_p 0.9 (row / 1.5)", &hot, Box::new(top_p())),
        ("top_p 0.9 (flat row)", &flat, Box::new(top_p())),
        ("top_p 0.9 (90% at -inf)", &m90, Box::new(top_p())),
        ("temperature 0.25 (90% at -inf)", &m90, Box::new(Temperature::new(0.25).unwrap())),
    ];
    for (name, row, mut p) in rows {
        bench_processor(c, group, row, &ctx, name, p.as_mut());
    }
    let m90f = masked(&standard, 0.9, -60.0);
    let t = |t| Temperature::new(t).unwrap();
    let sample = || Box::new(Categorical::new());
    let chains: Vec<(&str, &[f32], Pipeline)> = vec![
        ("90% at -inf: T 0.8 -> sample", &m90, Pipeline::new().with(t(0.8))),
        ("90% at -60: T 0.8 -> sample", &m90f, Pipeline::new().with(t(0.8))),
        (
            "90% at -inf: T 0.8 -> top_p 0.9 -> sample",
            &m90,
            Pipeline::new().with(t(0.8)).with(top_p()),
        ),
        ("T 0.25 -> sample", &standard, Pipeline::new().with(t(0.25))),
        ("T 1.5 -> top_p 0.9 -> sample", &standard, Pipeline::new().with(t(1.5)).with(top_p())),
        ("flat: top_p 0.9 -> sample", &flat, Pipeline::new().with(top_p())),
        (
            "T 0.8 -> top_k 1000 -> sample",
            &standard,
            Pipeline::new().with(t(0.8)).with(top_k(1000)),
        ),
        (
            "ascending: T 0.8 -> top_k 50 -> sample",
            &ascending,
            Pipeline::new().with(t(0.8)).with(top_k(50)),
        ),
    ];
    for (name, row, mut pipeline) in chains {
        bench_chain(c, group, row, &ctx, name, &mut pipeline, sample().as_mut());
    }
    // A vocabulary of 256000 (Gemma), next to the floor of its own standard
    // row.
    let wide = 256_000;
    let standard_wide = logits(wide);
    let flat_wide = data::flat(wide);
    {
        let mut g = c.benchmark_group(group);
        g.bench_function("floor (V=256000)", |b| b.iter(|| floor(black_box(&standard_wide))));
        g.finish();
    }
    let chains: Vec<(&str, &[f32], Pipeline)> = vec![
        ("V=256000: T 0.25 -> sample", &standard_wide, Pipeline::new().with(t(0.25))),
        (
            "V=256000: T 1.5 -> top_p 0.9 -> sample",
            &standard_wide,
            Pipeline::new().with(t(1.5)).with(top_p()),
        ),
        ("V=256000 flat: top_p 0.9 -> sample", &flat_wide, Pipeline::new().with(top_p())),
    ];
    for (name, row, mut pipeline) in chains {
        bench_chain(c, group, row, &ctx, name, &mut pipeline, sample().as_mut());
    }
    // The floor again at the end: how far the machine's load moved it.
    let mut g = c.benchmark_group(group);
    g.bench_function("floor (end)", |b| b.iter(|| floor(black_box(&standard))));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30);
    targets = all, shapes
}
criterion_main!(benches);
