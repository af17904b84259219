//! The portable kernels: plain Rust loops that the compiler vectorises for
//! any target (SSE2 on the x86-64 baseline, NEON on AArch64). They are the
//! fallback on CPUs without AVX2 and the reference the other paths are
//! tested against.

use half::{bf16, f16};

use crate::matrix::Rows;

/// Lanes of the dot-product accumulator: four 128-bit vectors, which the
/// compiler keeps in registers on the portable x86-64 baseline and on
/// AArch64.
const LANES: usize = 16;

/// A weight element, widened to f32 as it is read.
pub(crate) trait Widen: Copy {
    fn widen(self) -> f32;
}

impl Widen for f32 {
    #[inline]
    fn widen(self) -> f32 {
        self
    }
}

impl Widen for f16 {
    #[inline]
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

impl Widen for bf16 {
    #[inline]
    fn widen(self) -> f32 {
        self.to_f32()
    }
}

/// `Σ w[i] x[i]`, with 16 interleaved partial sums (so the loop vectorises
/// into four 4-wide accumulators and streams memory), added in order at the
/// end, then the tail.
///
/// `w` and `x` must have the same length. (The shape of this loop, the
/// final `sum` included, is what lets the compiler emit full-width vector
/// loads on the portable x86-64 baseline.)
#[inline]
pub(crate) fn dot<E: Widen>(w: &[E], x: &[f32]) -> f32 {
    debug_assert_eq!(w.len(), x.len());
    let mut acc = [0.0f32; LANES];
    let (cw, cx) = (w.chunks_exact(LANES), x.chunks_exact(LANES));
    let (tw, tx) = (cw.remainder(), cx.remainder());
    for (a, b) in cw.zip(cx) {
        for i in 0..LANES {
            acc[i] += a[i].widen() * b[i];
        }
    }
    let mut tail = 0.0f32;
    for (a, b) in tw.iter().zip(tx) {
        tail += a.widen() * b;
    }
    acc.iter().sum::<f32>() + tail
}

fn linear_impl<E: Widen>(
    x: &[f32],
    w: &[E],
    b: Option<&[f32]>,
    y: &mut [f32],
    ys: usize,
    k: usize,
) {
    let n_out = w.len() / k;
    for (o, w_row) in w.chunks_exact(k).enumerate() {
        let bias = b.map_or(0.0, |b| b[o]);
        for (t, x_row) in x.chunks_exact(k).enumerate() {
            let d = dot(w_row, x_row);
            y[t * ys + o] = if b.is_some() { d + bias } else { d };
        }
    }
    debug_assert!(n_out == 0 || b.is_none_or(|b| b.len() == n_out));
}

/// See [`super::linear`]. The loop runs over the weight rows once, so a
/// single-row call (the cached step) streams the matrix from memory exactly
/// once, and a multi-row call reuses each weight row from cache for every
/// input row.
pub(crate) fn linear(
    x: &[f32],
    w: Rows<'_>,
    b: Option<&[f32]>,
    y: &mut [f32],
    ys: usize,
    k: usize,
) {
    match w {
        Rows::F32(w) => linear_impl(x, w, b, y, ys, k),
        Rows::F16(w) => linear_impl(x, w, b, y, ys, k),
        Rows::Bf16(w) => linear_impl(x, w, b, y, ys, k),
    }
}

/// See [`super::scores`].
pub(crate) fn scores(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
    for (score, k) in out.iter_mut().zip(keys.chunks_exact(q.len())) {
        *score = dot(k, q) * scale;
    }
}

/// See [`super::weighted_sum`].
pub(crate) fn weighted_sum(p: &[f32], values: &[f32], out: &mut [f32]) {
    out.fill(0.0);
    for (&pj, v) in p.iter().zip(values.chunks_exact(out.len())) {
        for (o, vi) in out.iter_mut().zip(v) {
            *o += pj * vi;
        }
    }
}
