//! The goodness-of-fit machinery shared by the statistical tests
//! (`tests/statistics.rs`, `tests/sampling.rs`, the speculative-decoding
//! tests): the exact softmax, Pearson's statistic with merged small bins,
//! the critical value at α = 1e-6, and draws counted per token.
//!
//! Included with `#[path = ".../common/chi_square.rs"] mod chi_square;`.

// Each including crate uses a part of the helpers.
#![allow(dead_code)]

use decoding::sampler::Categorical;
use decoding::{Context, Pipeline, rng_from_seed};

/// Standard normal upper quantile at 1e-6 (one-sided), for the chi-square
/// approximation.
pub const Z_1E6: f64 = 4.753_424_308_822_899;

/// Upper 1e-6 quantile of the chi-square distribution with `df` degrees of
/// freedom (Wilson–Hilferty: `df (1 − 2/(9df) + z √(2/(9df)))³`, within
/// 0.1% for df ≥ 30; below, it errs on the large side, which only makes
/// the test more lenient there).
pub fn chi2_critical(df: usize) -> f64 {
    let k = df as f64;
    let a = 2.0 / (9.0 * k);
    k * (1.0 - a + Z_1E6 * a.sqrt()).powi(3)
}

/// The exact softmax of a row, in f64.
pub fn softmax(row: &[f32]) -> Vec<f64> {
    let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let w: Vec<f64> = row.iter().map(|&x| (f64::from(x) - f64::from(m)).exp()).collect();
    let z: f64 = w.iter().sum();
    w.into_iter().map(|x| x / z).collect()
}

/// Pearson's statistic and its degrees of freedom for `counts` against
/// `probs`: bins of expected count below 20 are merged (in order) until
/// they reach 20. `None` when a cell of probability 0 was drawn (naming it
/// on stderr).
pub fn chi2(counts: &[u64], probs: &[f64]) -> Option<(f64, usize)> {
    let n: u64 = counts.iter().sum();
    let mut bins: Vec<(f64, f64)> = Vec::new(); // (observed, expected)
    let mut pending = (0.0, 0.0);
    for (i, (&c, &p)) in counts.iter().zip(probs).enumerate() {
        if p == 0.0 {
            if c > 0 {
                eprintln!("cell {i} of probability 0 was drawn {c} times");
                return None;
            }
            continue;
        }
        let e = p * n as f64;
        if e >= 20.0 {
            bins.push((c as f64, e));
        } else {
            pending = (pending.0 + c as f64, pending.1 + e);
            if pending.1 >= 20.0 {
                bins.push(pending);
                pending = (0.0, 0.0);
            }
        }
    }
    if pending.1 > 0.0 {
        match bins.last_mut() {
            Some(last) => *last = (last.0 + pending.0, last.1 + pending.1),
            None => bins.push(pending),
        }
    }
    let stat = bins.iter().map(|&(o, e)| (o - e) * (o - e) / e).sum();
    Some((stat, bins.len().saturating_sub(1)))
}

/// `n` draws through `Pipeline::sample` (the fast path, which never writes
/// the processed row back) from a fresh copy of `row` each time, with the
/// seeded generator of `seed`, counted per token.
pub fn draw(pipeline: &mut Pipeline, row: &[f32], n: u64, seed: u64) -> Vec<u64> {
    let mut counts = vec![0u64; row.len()];
    let mut rng = rng_from_seed(seed);
    let mut sampler = Categorical::new();
    let mut buf = row.to_vec();
    for _ in 0..n {
        buf.copy_from_slice(row);
        let s = pipeline.sample(&Context::empty(), &mut buf, &mut sampler, &mut rng).unwrap();
        counts[s.token as usize] += 1;
    }
    counts
}
