//! Benchmarking a sampler in isolation, on your own rows of logits.
//!
//! Times a few processor chains and samplers on the rows you give, next to
//! the floor measured in the same run (one pass for the maximum plus one
//! pass of `Σ exp(x - max)`, as in `benches/processors.rs`: about what an
//! exact sampler of the full row must do), and
//! prints each as a multiple of the floor, with the CPU it ran on.
//!
//! ```sh
//! # rows shaped like a language model's (N(0, 3) plus eight peaks):
//! cargo run --release --example sampler_benchmark -- --vocab 151936
//! # your own rows: raw little-endian f32, `vocab` values per row
//! # (numpy: `logits.astype("<f4").tofile("rows.f32")`)
//! cargo run --release --example sampler_benchmark -- --vocab 50257 --rows rows.f32
//! ```
//!
//! The crate's criterion benches (`cargo bench --bench processors`) do the
//! same with criterion's statistics; this example is the quick version for
//! a row of your own model.

use std::hint::black_box;
use std::time::{Duration, Instant};

use decoding::processors::{MinP, Temperature, TopK, TopP};
use decoding::sampler::{Categorical, Greedy};
use decoding::{Context, Pipeline, Sampler, rng_from_seed};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut vocab = 50257usize;
    let mut path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--vocab" => vocab = args.next().ok_or("--vocab needs a number")?.parse()?,
            "--rows" => path = Some(args.next().ok_or("--rows needs a path")?),
            other => {
                return Err(format!("unknown argument {other:?} (--vocab N, --rows PATH)").into());
            }
        }
    }
    if vocab == 0 {
        return Err("--vocab must be at least 1".into());
    }
    let rows = match &path {
        Some(p) => read_rows(p, vocab)?,
        None => (0..8).map(|i| synthetic_row(vocab, i)).collect(),
    };
    println!("{} rows of {vocab} logits ({})", rows.len(), path.as_deref().unwrap_or("synthetic"));
    println!("CPU: {}; {}", cpu_model(), instruction_sets());

    let floor = measure(&rows, |row| {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        row.iter().map(|&x| (x - max).exp()).sum::<f32>()
    });
    println!("\n{:<44} {:>12} {:>10}", "case", "median", "x floor");
    report("floor: max + sum of exp", floor, floor);

    let cases: Vec<(&str, Pipeline, Box<dyn Sampler>)> = vec![
        ("greedy", Pipeline::new(), Box::new(Greedy::new())),
        ("categorical", Pipeline::new(), Box::new(Categorical::new())),
        (
            "temperature 0.8 -> categorical",
            Pipeline::new().with(Temperature::new(0.8)?),
            Box::new(Categorical::new()),
        ),
        (
            "top-k 50 -> temperature 0.8 -> categorical",
            Pipeline::new().with(TopK::new(50)?).with(Temperature::new(0.8)?),
            Box::new(Categorical::new()),
        ),
        (
            "temperature 0.8 -> top-p 0.9 -> categorical",
            Pipeline::new().with(Temperature::new(0.8)?).with(TopP::new(0.9)?),
            Box::new(Categorical::new()),
        ),
        (
            "min-p 0.05 -> temperature 0.8 -> categorical",
            Pipeline::new().with(MinP::new(0.05)?).with(Temperature::new(0.8)?),
            Box::new(Categorical::new()),
        ),
    ];
    let ctx = Context::empty();
    let mut rng = rng_from_seed(0);
    for (name, mut pipeline, mut sampler) in cases {
        // The processors work in place: each call samples from a fresh copy
        // of the row (the copy is part of the timing, as it would be in a
        // loop that keeps the model's output).
        let mut work = Vec::with_capacity(vocab);
        let mut failure = None;
        let time = measure(&rows, |row| {
            work.clear();
            work.extend_from_slice(row);
            match pipeline.sample_token(&ctx, &mut work, sampler.as_mut(), &mut rng) {
                Ok(token) => token,
                Err(e) => {
                    failure.get_or_insert(e);
                    0
                }
            }
        });
        if let Some(e) = failure {
            return Err(format!("{name}: {e}").into());
        }
        report(name, time, floor);
    }
    Ok(())
}

/// The median time of one call of `f` on one row, over 31 rounds of every
/// row (after a warm-up round).
fn measure<T>(rows: &[Vec<f32>], mut f: impl FnMut(&[f32]) -> T) -> Duration {
    for row in rows {
        black_box(f(black_box(row)));
    }
    let mut times: Vec<Duration> = (0..31)
        .map(|_| {
            let start = Instant::now();
            for row in rows {
                black_box(f(black_box(row)));
            }
            start.elapsed() / rows.len() as u32
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

fn report(name: &str, time: Duration, floor: Duration) {
    let ratio = time.as_secs_f64() / floor.as_secs_f64();
    println!("{name:<44} {:>9.1} µs {ratio:>10.3}", time.as_secs_f64() * 1e6);
}

/// Rows of raw little-endian f32, `vocab` values each.
fn read_rows(path: &str, vocab: usize) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error>> {
    let bytes = std::fs::read(path)?;
    let row_bytes = vocab * 4;
    if bytes.is_empty() || bytes.len() % row_bytes != 0 {
        return Err(format!(
            "{path}: {} bytes is not a whole number of rows of {vocab} f32 ({row_bytes} bytes)",
            bytes.len()
        )
        .into());
    }
    Ok(bytes
        .chunks_exact(row_bytes)
        .map(|row| {
            row.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
        })
        .collect())
}

/// N(0, 3) plus eight peaks, from SplitMix64 and Box–Muller: portable and
/// shaped like a language model's row.
fn synthetic_row(vocab: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut row: Vec<f32> = (0..vocab)
        .map(|_| {
            let (u1, u2) = (next().max(f64::MIN_POSITIVE), next());
            (3.0 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
        })
        .collect();
    for k in 0..8.min(vocab) {
        let i = (next() * vocab as f64) as usize % vocab;
        row[i] = 14.0 - k as f32;
    }
    row
}

/// The CPU's model name where the system says it (Linux), else the
/// architecture.
fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

/// The vector instruction sets this build may use (chosen at compile time;
/// `RUSTFLAGS="-C target-cpu=native"` enables the machine's own).
fn instruction_sets() -> String {
    let sets: Vec<&str> = [
        ("sse2", cfg!(target_feature = "sse2")),
        ("avx", cfg!(target_feature = "avx")),
        ("avx2", cfg!(target_feature = "avx2")),
        ("fma", cfg!(target_feature = "fma")),
        ("avx512f", cfg!(target_feature = "avx512f")),
        ("neon", cfg!(target_feature = "neon")),
    ]
    .into_iter()
    .filter_map(|(name, on)| on.then_some(name))
    .collect();
    if sets.is_empty() {
        "no vector extension in this build".into()
    } else {
        format!("build uses {}", sets.join(", "))
    }
}
