//! Aggregate throughput and per-request latency of the server under 1, 4, 8
//! and 16 concurrent clients, in one run, on a GPT-2 of the 124M shape with
//! random weights (made in memory; nothing is downloaded or written).
//!
//! ```text
//! cargo bench -p gpt2-server --bench throughput -- [--tokens 32] [--requests 3]
//!     [--threads N] [--levels 1,4,8,16] [--model DIR]
//! ```
//!
//! Each of `c` clients sends `--requests` completions one after the other
//! (`--tokens` new tokens each, `ignore_eos`, sampled with its own seed) over
//! loopback TCP; a level's aggregate is all the generated tokens over its
//! wall time, and a request's latency is from sending it to its last byte.
//! `--model DIR` runs a model directory (the real GPT-2) instead.

use std::sync::Arc;
use std::time::{Duration, Instant};

use decoding::config::{EosTokenId, GenerationConfig};
use gpt2::{Config, Gpt2, Tokenizer, Weights};
use gpt2_server::{Limits, Served, Server, ServerConfig};
use safetensors::{Dtype, tensor::TensorView};
use serde_json::json;

struct Args {
    tokens: usize,
    requests: usize,
    threads: usize,
    levels: Vec<usize>,
    model: Option<std::path::PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        tokens: 32,
        requests: 3,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        levels: vec![1, 4, 8, 16],
        model: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--tokens" => a.tokens = value().parse().expect("--tokens N"),
            "--requests" => a.requests = value().parse().expect("--requests N"),
            "--threads" => a.threads = value().parse().expect("--threads N"),
            "--levels" => {
                a.levels = value().split(',').map(|s| s.parse().expect("--levels 1,4,8")).collect()
            }
            "--model" => a.model = Some(value().into()),
            _ => {} // cargo bench passes `--bench`
        }
    }
    a
}

/// A uniform draw in `[-a, a]` from a fixed xorshift stream.
fn fill(n: usize, a: f32, state: &mut u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 4);
    for _ in 0..n {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let u = (*state >> 40) as f32 / (1u64 << 24) as f32;
        out.extend_from_slice(&((2.0 * u - 1.0) * a).to_le_bytes());
    }
    out
}

/// GPT-2 124M's shape with random weights (std ≈ 0.02), through the
/// example's own safetensors loader.
fn random_124m() -> Gpt2 {
    let c = Config::default();
    let (v, e, f, p) = (c.vocab_size, c.n_embd, c.n_inner, c.n_positions);
    let mut shapes: Vec<(String, Vec<usize>, f32)> =
        vec![("wte.weight".into(), vec![v, e], 0.035), ("wpe.weight".into(), vec![p, e], 0.035)];
    for i in 0..c.n_layer {
        let h = format!("h.{i}.");
        for (name, shape, a) in [
            ("ln_1.weight", vec![e], -1.0),
            ("ln_1.bias", vec![e], 0.0),
            ("attn.c_attn.weight", vec![e, 3 * e], 0.035),
            ("attn.c_attn.bias", vec![3 * e], 0.0),
            ("attn.c_proj.weight", vec![e, e], 0.035),
            ("attn.c_proj.bias", vec![e], 0.0),
            ("ln_2.weight", vec![e], -1.0),
            ("ln_2.bias", vec![e], 0.0),
            ("mlp.c_fc.weight", vec![e, f], 0.035),
            ("mlp.c_fc.bias", vec![f], 0.0),
            ("mlp.c_proj.weight", vec![f, e], 0.035),
            ("mlp.c_proj.bias", vec![e], 0.0),
        ] {
            shapes.push((format!("{h}{name}"), shape, a));
        }
    }
    shapes.push(("ln_f.weight".into(), vec![e], -1.0));
    shapes.push(("ln_f.bias".into(), vec![e], 0.0));
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let data: Vec<(String, Vec<usize>, Vec<u8>)> = shapes
        .into_iter()
        .map(|(name, shape, a)| {
            let n = shape.iter().product();
            // `a < 0`: a LayerNorm scale, all ones.
            let bytes = if a < 0.0 { 1f32.to_le_bytes().repeat(n) } else { fill(n, a, &mut state) };
            (name, shape, bytes)
        })
        .collect();
    let views = data.iter().map(|(name, shape, bytes)| {
        (name.clone(), TensorView::new(Dtype::F32, shape.clone(), bytes).expect("a tensor"))
    });
    let file = safetensors::serialize(views, None).expect("serialized");
    drop(data);
    let weights = Weights::from_bytes(&file, "random-124m".as_ref(), &c).expect("loaded");
    Gpt2::new(c, weights).expect("a model")
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = args();
    let served = match &args.model {
        Some(dir) => Served::from_dir(dir).expect("the model loads"),
        None => Served {
            model: random_124m(),
            tokenizer: Tokenizer::gpt2().expect("GPT-2's tokenizer"),
            generation: GenerationConfig {
                eos_token_id: Some(EosTokenId::One(50256)),
                ..GenerationConfig::default()
            },
        },
    };
    let slots = args.levels.iter().copied().max().unwrap_or(1);
    let config = ServerConfig {
        slots,
        queue: 4 * slots,
        threads: args.threads,
        limits: Limits { max_sequences: slots, ..ServerConfig::default().limits },
        ..ServerConfig::default()
    };
    let server = Server::start("127.0.0.1:0".parse().unwrap(), served, config).await.unwrap();
    let url = format!("http://{}/v1/completions", server.addr());
    let http = reqwest::Client::new();
    let body = |seed: usize| {
        json!({"model": "gpt2", "prompt": "The history of the city begins with",
            "max_tokens": args.tokens, "ignore_eos": true, "temperature": 0.8, "seed": seed})
    };
    // Warm-up.
    http.post(&url).json(&body(0)).send().await.unwrap().text().await.unwrap();

    println!(
        "{} new tokens per request, {} requests per client, {} model threads, slots {slots}",
        args.tokens, args.requests, args.threads
    );
    println!("| concurrent | requests | tokens/s (aggregate) | vs 1 | p50 latency | p99 latency |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut base = None;
    for &c in &args.levels {
        let start = Instant::now();
        let tasks: Vec<_> = (0..c)
            .map(|client| {
                let (http, url) = (http.clone(), url.clone());
                let bodies: Vec<_> =
                    (0..args.requests).map(|r| body(1 + client * args.requests + r)).collect();
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    for b in bodies {
                        let t = Instant::now();
                        let r: serde_json::Value =
                            http.post(&url).json(&b).send().await.unwrap().json().await.unwrap();
                        let tokens = r["usage"]["completion_tokens"].as_u64().expect("usage");
                        out.push((t.elapsed(), tokens));
                    }
                    out
                })
            })
            .collect();
        let mut latencies = Vec::new();
        let mut tokens = 0;
        for t in tasks {
            for (latency, n) in t.await.unwrap() {
                latencies.push(latency);
                tokens += n;
            }
        }
        let wall = start.elapsed().as_secs_f64();
        latencies.sort();
        let rate = tokens as f64 / wall;
        let base_rate = *base.get_or_insert(rate);
        println!(
            "| {c} | {} | {rate:.1} | {:.2}x | {:.2} s | {:.2} s |",
            latencies.len(),
            rate / base_rate,
            percentile(&latencies, 0.5).as_secs_f64(),
            percentile(&latencies, 0.99).as_secs_f64(),
        );
    }
    let server = Arc::new(server);
    drop(server);
}
