//! The data, the cases and the floor shared by the peer benchmark
//! (`benches/peers.rs`) and its report (`src/bin/report.rs`).
//!
//! Every sampler gets the same logits: one deterministic row per vocabulary
//! size, i.i.d. N(0, σ = 3) plus eight peaks (+14, +13, +12.5, ... +10) at
//! pseudo-random positions, from SplitMix64 and Box–Muller (std only).

/// The vocabulary sizes: GPT-2, Llama 3, Qwen 2.
pub const VOCABS: [usize; 3] = [50_257, 128_256, 151_936];

/// Temperature, top-k and top-p of every case.
pub const TEMPERATURE: f32 = 0.8;
/// The `k` of the top-k cases.
pub const TOP_K: usize = 50;
/// The `p` of the top-p cases.
pub const TOP_P: f32 = 0.9;

/// The benchmarked cases: (id, description, target as a multiple of the
/// floor). candle applies the temperature before any truncation, whatever
/// the case says, so its `d` and `d2` are the same computation (its
/// `Sampling::TopP`); `d2` is the order in which top-p sees the same
/// distribution in all three (Hugging Face transformers' order too).
pub const CASES: [(&str, &str, f64); 6] = [
    ("a", "greedy", 0.2),
    ("b", "temperature → sample", 1.0),
    ("c", "top-k 50 → temperature → sample", 0.4),
    ("d", "top-p 0.9 → temperature → sample", 1.5),
    ("d2", "temperature → top-p 0.9 → sample", 1.5),
    ("e", "top-k 50 → top-p 0.9 → temperature → sample", 0.5),
];

/// The samplers compared, as the benchmark ids name them.
pub const PEERS: [&str; 3] = ["decoding", "candle", "llm-samplers"];

#[path = "../../common/data.rs"]
mod data;

/// The logits of one vocabulary size (seeded by `v`).
pub use data::logits;

/// The floor `F`: one pass for the maximum and one pass of `Σ exp(x - max)`
/// with the standard library's (libm's) `f32::exp`: the least a sampler
/// that normalizes the whole row with libm pays. Both passes run over 16
/// independent lanes, so that neither is bound by the latency of a single
/// chain of `max` or `+` (the maximum vectorizes; `exp` stays a libm call
/// per entry).
pub fn floor(row: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = if x > *a { x } else { *a };
        }
    }
    let m = acc.iter().chain(chunks.remainder()).fold(f32::NEG_INFINITY, |a, &b| a.max(b));
    let mut sums = [0.0f32; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (s, &x) in sums.iter_mut().zip(chunk) {
            *s += (x - m).exp();
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|&x| (x - m).exp()).sum();
    sums.iter().sum::<f32>() + tail + m
}
