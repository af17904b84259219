//! `decoding` against candle-transformers' `LogitsProcessor` and
//! llm-samplers' chain on identical logits, with the floor in the same run.
//!
//! Every measurement is end to end from `&[f32]`, what a decoding loop pays
//! per token: `decoding` copies the row into a reused buffer (its
//! processors work in place) and runs a `Pipeline`; candle builds its
//! `Tensor` with `Tensor::from_slice`; llm-samplers builds its `Logits`
//! with `Logits::try_from_iter`. Run with `cargo bench` in this directory,
//! then `cargo run --release --bin report` for the table.

use std::hint::black_box;
use std::time::Duration;

use candle_core::{Device, Tensor};
use candle_transformers::generation::{LogitsProcessor as CandleSampler, Sampling};
use criterion::{Criterion, criterion_group, criterion_main};
use decoding::processors::{Temperature, TopK, TopP};
use decoding::sampler::{Categorical, Greedy};
use decoding::{Context, Pipeline, Sampler, rng_from_seed};
use decoding_peers::{
    CASES, Chain, SHAPES, TEMPERATURE, TOP_K, TOP_P, VOCABS, floor, logits, shape_row,
};
use llm_samplers::prelude::{
    Logits, SampleGreedy, SampleRandDistrib, SampleTemperature, SampleTopK, SampleTopP,
    Sampler as _, SamplerChain, SimpleSamplerResources,
};
use rand08::SeedableRng;

/// The `decoding` pipeline and sampler of a case.
fn ours(case: &str) -> (Pipeline, Box<dyn Sampler>) {
    let t = || Temperature::new(TEMPERATURE).unwrap();
    let k = || TopK::new(TOP_K).unwrap();
    let p = || TopP::new(TOP_P).unwrap();
    match case {
        "a" => (Pipeline::new(), Box::new(Greedy::new())),
        "b" => (Pipeline::new().with(t()), Box::new(Categorical::new())),
        "c" => (Pipeline::new().with(k()).with(t()), Box::new(Categorical::new())),
        "d" => (Pipeline::new().with(p()).with(t()), Box::new(Categorical::new())),
        "d2" => (Pipeline::new().with(t()).with(p()), Box::new(Categorical::new())),
        _ => (Pipeline::new().with(k()).with(p()).with(t()), Box::new(Categorical::new())),
    }
}

/// candle's sampling mode of a case.
fn candle(case: &str) -> Sampling {
    let (temperature, k, p) = (f64::from(TEMPERATURE), TOP_K, f64::from(TOP_P));
    match case {
        "a" => Sampling::ArgMax,
        "b" => Sampling::All { temperature },
        "c" => Sampling::TopK { k, temperature },
        "d" | "d2" => Sampling::TopP { p, temperature },
        _ => Sampling::TopKThenTopP { k, p, temperature },
    }
}

/// llm-samplers' chain of a case.
fn llm_samplers(case: &str) -> SamplerChain {
    let chain = SamplerChain::new();
    let t = || SampleTemperature::new(TEMPERATURE);
    let k = || SampleTopK::new(TOP_K, 1);
    let p = || SampleTopP::new(TOP_P, 1);
    let d = SampleRandDistrib::new;
    match case {
        "a" => chain + SampleGreedy::new(),
        "b" => chain + t() + d(),
        "c" => chain + k() + t() + d(),
        "d" => chain + p() + t() + d(),
        "d2" => chain + t() + p() + d(),
        _ => chain + k() + p() + t() + d(),
    }
}

/// The three agree on the greedy token (a sanity check of the setup).
fn check_greedy(row: &[f32]) {
    let mut buf = row.to_vec();
    let (mut pipeline, mut sampler) = ours("a");
    let rng = &mut rng_from_seed(0);
    let a = pipeline.sample_token(&Context::empty(), &mut buf, &mut sampler, rng).unwrap();
    let tensor = Tensor::from_slice(row, row.len(), &Device::Cpu).unwrap();
    let b = CandleSampler::from_sampling(0, Sampling::ArgMax).sample(&tensor).unwrap();
    let mut res = SimpleSamplerResources::new(None, None);
    let mut l = Logits::try_from_iter(row.iter().copied()).unwrap();
    let c = llm_samplers("a").sample_token(&mut res, &mut l).unwrap().unwrap();
    assert!(a == b && b == c, "greedy tokens differ: {a}, {b}, {c}");
}

fn peers(c: &mut Criterion) {
    for v in VOCABS {
        let row = logits(v);
        check_greedy(&row);
        let mut g = c.benchmark_group(format!("V={v}"));
        g.bench_function("floor", |b| b.iter(|| floor(black_box(&row))));
        for (case, _, _) in CASES {
            // The floor right before each case: every ratio divides by the
            // floor measured next to it, so that a change of the machine's
            // load during the run moves both sides of the ratio.
            g.bench_function(format!("{case}/floor"), |b| b.iter(|| floor(black_box(&row))));
            let ctx = Context::empty();
            let (mut pipeline, mut sampler) = ours(case);
            let mut rng = rng_from_seed(1);
            let mut buf = vec![0.0f32; v];
            g.bench_function(format!("{case}/decoding"), |b| {
                b.iter(|| {
                    buf.copy_from_slice(black_box(&row));
                    pipeline.sample_token(&ctx, &mut buf, &mut sampler, &mut rng).unwrap()
                })
            });
            if case == "a" {
                // Greedy with the log-probability of the chosen token (one
                // more pass of exponentials), for reference.
                g.bench_function("a+logprob/decoding", |b| {
                    b.iter(|| {
                        buf.copy_from_slice(black_box(&row));
                        pipeline.sample(&ctx, &mut buf, &mut sampler, &mut rng).unwrap()
                    })
                });
            }
            let mut processor = CandleSampler::from_sampling(1, candle(case));
            g.bench_function(format!("{case}/candle"), |b| {
                b.iter(|| {
                    let t = Tensor::from_slice(black_box(&row[..]), v, &Device::Cpu).unwrap();
                    processor.sample(&t).unwrap()
                })
            });
            let mut chain = llm_samplers(case);
            let mut res = SimpleSamplerResources::new(
                Some(Box::new(rand08::rngs::StdRng::seed_from_u64(1))),
                Some(Vec::new()),
            );
            g.bench_function(format!("{case}/llm-samplers"), |b| {
                b.iter(|| {
                    let mut l = Logits::try_from_iter(black_box(&row).iter().copied()).unwrap();
                    chain.sample_token(&mut res, &mut l).unwrap()
                })
            });
        }
        g.bench_function("floor (end)", |b| b.iter(|| floor(black_box(&row))));
        g.finish();
    }
}

/// The `decoding` pipeline of a row shape: the temperature, then the chain.
fn ours_shape(temperature: f32, chain: Chain) -> Pipeline {
    let mut p = Pipeline::new();
    if temperature != 1.0 {
        p = p.with(Temperature::new(temperature).unwrap());
    }
    match chain {
        Chain::Sample => p,
        Chain::TopK(k) => p.with(TopK::new(k).unwrap()),
        Chain::TopP(q) => p.with(TopP::new(q).unwrap()),
    }
}

/// candle's sampling mode of a row shape.
fn candle_shape(temperature: f32, chain: Chain) -> Sampling {
    let temperature = f64::from(temperature);
    match chain {
        Chain::Sample => Sampling::All { temperature },
        Chain::TopK(k) => Sampling::TopK { k, temperature },
        Chain::TopP(p) => Sampling::TopP { p: f64::from(p), temperature },
    }
}

/// The row shapes against candle, each next to the floor of the standard
/// row of its vocabulary size, measured right before it.
fn shapes(c: &mut Criterion) {
    let mut g = c.benchmark_group("shapes");
    for (id, _, v, temperature, chain, _) in SHAPES {
        let standard = logits(v);
        let row = shape_row(id, v);
        g.bench_function(format!("{id}/floor"), |b| b.iter(|| floor(black_box(&standard))));
        let ctx = Context::empty();
        let mut pipeline = ours_shape(temperature, chain);
        let mut sampler = Categorical::new();
        let mut rng = rng_from_seed(1);
        let mut buf = vec![0.0f32; v];
        g.bench_function(format!("{id}/decoding"), |b| {
            b.iter(|| {
                buf.copy_from_slice(black_box(&row));
                pipeline.sample_token(&ctx, &mut buf, &mut sampler, &mut rng).unwrap()
            })
        });
        let mut processor = CandleSampler::from_sampling(1, candle_shape(temperature, chain));
        g.bench_function(format!("{id}/candle"), |b| {
            b.iter(|| {
                let t = Tensor::from_slice(black_box(&row[..]), v, &Device::Cpu).unwrap();
                processor.sample(&t).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20);
    targets = peers, shapes
}
criterion_main!(benches);
