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

#[path = "../../common/floor.rs"]
mod floor;

/// The logits of one vocabulary size (seeded by `v`).
pub use data::logits;
pub use floor::floor;

/// The stages after the temperature in a row shape's chain.
#[derive(Debug, Clone, Copy)]
pub enum Chain {
    /// Straight to the sampler.
    Sample,
    /// Top-k, then the sampler.
    TopK(usize),
    /// Top-p, then the sampler.
    TopP(f32),
}

/// A row shape that a real engine produces every step: (id, description,
/// vocabulary size, temperature, chain, target as a multiple of the floor).
pub type Shape = (&'static str, &'static str, usize, f32, Chain, f64);

/// The row shapes, beside the standard cases: masked rows, low and high
/// temperatures, a flat row, large k, rows in ascending and descending order.
pub const SHAPES: [Shape; 16] = [
    ("m50", "50% at -inf, T → sample", 128_256, 0.8, Chain::Sample, 0.8),
    ("m90", "90% at -inf, T → sample", 128_256, 0.8, Chain::Sample, 0.8),
    ("m99", "99% at -inf, T → sample", 128_256, 0.8, Chain::Sample, 0.8),
    ("m90f", "90% at -60 (finite mask), T → sample", 128_256, 0.8, Chain::Sample, 0.8),
    ("m90p", "90% at -inf, T → top-p 0.9 → sample", 128_256, 0.8, Chain::TopP(0.9), 1.0),
    ("t025", "T 0.25 → sample", 128_256, 0.25, Chain::Sample, 0.8),
    ("t025v", "T 0.25 → sample, V = 256000", 256_000, 0.25, Chain::Sample, 0.8),
    ("t15p", "T 1.5 → top-p 0.9 → sample", 128_256, 1.5, Chain::TopP(0.9), 1.5),
    ("t15pv", "T 1.5 → top-p 0.9 → sample, V = 256000", 256_000, 1.5, Chain::TopP(0.9), 1.5),
    ("flatp", "flat row N(0, 1), top-p 0.9 → sample", 128_256, 1.0, Chain::TopP(0.9), 2.0),
    ("flatpv", "flat row, top-p 0.9 → sample, V = 256000", 256_000, 1.0, Chain::TopP(0.9), 2.0),
    ("k1000", "T → top-k 1000 → sample", 128_256, 0.8, Chain::TopK(1000), 0.5),
    ("k5000", "T → top-k 5000 → sample", 128_256, 0.8, Chain::TopK(5000), 0.8),
    ("asc", "row sorted ascending, T → top-k 50 → sample", 128_256, 0.8, Chain::TopK(50), 0.5),
    ("desc", "row sorted descending, T → top-k 50 → sample", 128_256, 0.8, Chain::TopK(50), 0.5),
    ("ascp", "row sorted ascending, T → top-p 0.9 → sample", 128_256, 0.8, Chain::TopP(0.9), 1.5),
];

/// The logits of a row shape.
pub fn shape_row(id: &str, v: usize) -> Vec<f32> {
    let standard = logits(v);
    match id {
        "m50" => data::masked(&standard, 0.5, f32::NEG_INFINITY),
        "m90" | "m90p" => data::masked(&standard, 0.9, f32::NEG_INFINITY),
        "m99" => data::masked(&standard, 0.99, f32::NEG_INFINITY),
        "m90f" => data::masked(&standard, 0.9, -60.0),
        "flatp" | "flatpv" => data::flat(v),
        "asc" | "ascp" => data::sorted(&standard, true),
        "desc" => data::sorted(&standard, false),
        _ => standard,
    }
}
