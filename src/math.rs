//! Numeric kernels shared by processors and samplers.
//!
//! Reductions are written over fixed-width lanes so that the compiler can
//! vectorize them on the baseline target; each one documents its summation
//! order, because the order decides the last bits of a result.

use crate::{Error, TokenId};

const LANES: usize = 16;

/// Maximum of a row, `-inf` for an empty row. NaN entries are ignored
/// (rows are validated before this is called).
pub(crate) fn max(row: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; LANES];
    let mut chunks = row.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a = if x > *a { x } else { *a };
        }
    }
    let mut m = f32::NEG_INFINITY;
    for &x in acc.iter().chain(chunks.remainder()) {
        if x > m {
            m = x;
        }
    }
    m
}

/// Checks that no entry is NaN or `+inf`, naming the first offender.
pub(crate) fn check_row(row: &[f32]) -> Result<(), Error> {
    if row.is_empty() {
        return Err(Error::EmptyRow);
    }
    // Fast vectorizable scan: `x - x` is 0 for finite x, NaN for NaN and
    // ±inf. -inf is the mask value, so re-check offenders precisely.
    let mut chunks = row.chunks_exact(LANES);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut bad = false;
        for &x in chunk {
            bad |= (x - x) != 0.0;
        }
        if bad {
            if let Some(e) = first_invalid(chunk, base) {
                return Err(e);
            }
        }
        base += LANES;
    }
    match first_invalid(chunks.remainder(), base) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn first_invalid(chunk: &[f32], base: usize) -> Option<Error> {
    chunk
        .iter()
        .position(|&x| x.is_nan() || x == f32::INFINITY)
        .map(|i| Error::InvalidLogit { index: base + i, value: chunk[i] })
}

/// `Σ exp(x - m)` over a row, exponentials in f32, accumulated in f64 lanes.
pub(crate) fn sum_exp(row: &[f32], m: f32) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut chunks = row.chunks_exact(8);
    for chunk in &mut chunks {
        for (a, &x) in acc.iter_mut().zip(chunk) {
            *a += f64::from((x - m).exp());
        }
    }
    let mut s: f64 = chunks.remainder().iter().map(|&x| f64::from((x - m).exp())).sum();
    for a in acc {
        s += a;
    }
    s
}

/// `Σ exp(x_id - m)` over the listed ids, in list order, accumulated in f64.
pub(crate) fn sum_exp_ids(row: &[f32], ids: &[TokenId], m: f32) -> f64 {
    ids.iter().map(|&id| f64::from((row[id as usize] - m).exp())).sum()
}

/// The softmax normalizer of the live scores: `(max, Σ exp(x - max))`.
/// `max` is `-inf` (and the sum 0) when no live score is finite.
pub(crate) fn normalizer(scores: &crate::Scores<'_>) -> (f32, f64) {
    let m = scores.max();
    if m == f32::NEG_INFINITY {
        return (m, 0.0);
    }
    let sum = match scores.live_ids() {
        Some(ids) => sum_exp_ids(scores.values(), ids, m),
        None => sum_exp(scores.values(), m),
    };
    (m, sum)
}

/// Shannon entropy (nats) of the softmax of the live scores, with `0·log 0 = 0`.
pub(crate) fn entropy(scores: &crate::Scores<'_>) -> f64 {
    let (m, z) = normalizer(scores);
    if z == 0.0 {
        return 0.0;
    }
    let log_z = z.ln();
    let mut h = 0.0f64;
    scores.for_each_live(|_, x| {
        if x > f32::NEG_INFINITY {
            let lp = f64::from(x - m) - log_z;
            h -= lp.exp() * lp;
        }
    });
    h
}
