//! The floor `F` every benchmark of the crate divides by, in one place so
//! that every table means the same `F`.

/// One pass for the maximum and one pass of `Σ exp(x - max)` with the
/// standard library's (libm's) `f32::exp`: the least a sampler that
/// normalizes the whole row with libm pays. Both passes run over 16
/// independent lanes, so that neither is bound by the latency of a single
/// chain of `max` or `+` (the maximum vectorizes; `exp` stays a libm call
/// per entry). A single serial chain (`fold(f32::max)`, `sum()`) measures
/// the latency of the chain instead, about 2.5× this on x86-64: the floor
/// of an earlier processors table was that one.
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
