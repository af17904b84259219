//! The numeric kernels of the forward pass: matrix products and attention
//! on the [`KernelPath`] chosen at run time (portable, AVX2+FMA, AVX-512),
//! and LayerNorm, activations and softmax.
//!
//! On each path, every output value is computed by the same sequence of
//! f32 operations whatever the number of rows in the call: a position's
//! numbers do not depend on whether it arrived alone (a cached step) or
//! inside a prompt (a prefill). That is what makes KV-cached and uncached
//! runs bit-identical.

use crate::config::Activation;
use crate::matrix::Rows;
use crate::workers::Workers;

mod path;
mod portable;
#[cfg(target_arch = "x86_64")]
mod x86;

pub use self::path::KernelPath;

/// `y[t·ys + o] = W[o] · x[t] + b[o]` for every input row `t` and output
/// `o`: `x` is `rows × k`, `w` is `n_out × k` (row-major, one output per
/// row, in f32, f16 or bf16), `b` has `n_out` values (or none: no bias), and
/// row `t` of the output starts at `y[t·ys]`.
pub(crate) fn linear(
    path: KernelPath,
    x: &[f32],
    w: Rows<'_>,
    b: Option<&[f32]>,
    y: &mut [f32],
    ys: usize,
    k: usize,
) {
    match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => x86::avx512::linear(x, w, b, y, ys, k),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2Fma => x86::avx2::linear(x, w, b, y, ys, k),
        _ => portable::linear(x, w, b, y, ys, k),
    }
}

/// [`linear`] split by output rows across `workers`; the same values.
/// With several input rows, each thread writes its outputs for every row
/// into its own contiguous part of `tmp` (at least `rows × n_out`
/// entries), and they are then copied into `y` (`ys = n_out`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn linear_threaded(
    path: KernelPath,
    x: &[f32],
    w: Rows<'_>,
    b: Option<&[f32]>,
    y: &mut [f32],
    k: usize,
    workers: &Workers,
    tmp: &mut [f32],
) {
    let n_out = w.len() / k;
    let rows = x.len() / k;
    let threads = workers.count();
    if threads <= 1 || n_out < 256 || (rows > 1 && tmp.len() < rows * n_out) {
        return linear(path, x, w, b, y, n_out, k);
    }
    let per = n_out.div_ceil(threads);
    let part = |i: usize| {
        let (lo, hi) = (i * per, ((i + 1) * per).min(n_out));
        (w.slice(lo * k..hi * k), b.map(|b| &b[lo..hi]), hi - lo)
    };
    if rows == 1 {
        // One input row: `y` is one row of outputs, so split it into chunks.
        workers.run(y[..n_out].chunks_mut(per).enumerate().map(|(i, y_part)| {
            let (w, b, _) = part(i);
            move || linear(path, x, w, b, y_part, 0, k)
        }));
        return;
    }
    let tmp = &mut tmp[..rows * n_out];
    workers.run(tmp.chunks_mut(per * rows).enumerate().map(|(i, t_part)| {
        let (w, b, n) = part(i);
        move || linear(path, x, w, b, t_part, n, k)
    }));
    for (i, t_part) in tmp.chunks(per * rows).enumerate() {
        let n = part(i).2;
        for (t, outputs) in t_part.chunks_exact(n).enumerate() {
            y[t * n_out + i * per..t * n_out + i * per + n].copy_from_slice(outputs);
        }
    }
}

/// `out[j] = scale · (q · keys[j])`: one query against `out.len()` keys
/// (`keys` is `out.len() × q.len()`, row-major).
pub(crate) fn scores(path: KernelPath, q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
    match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => x86::avx512::scores(q, keys, scale, out),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2Fma => x86::avx2::scores(q, keys, scale, out),
        _ => portable::scores(q, keys, scale, out),
    }
}

/// `out = Σ_j p[j] · values[j]` (`values` is `p.len() × out.len()`,
/// row-major): in the order of `j` on the portable path; on the x86 paths
/// as two sums, of the even and of the odd `j` (each in order), then added.
pub(crate) fn weighted_sum(path: KernelPath, p: &[f32], values: &[f32], out: &mut [f32]) {
    match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => x86::avx512::weighted_sum(p, values, out),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2Fma => x86::avx2::weighted_sum(p, values, out),
        _ => portable::weighted_sum(p, values, out),
    }
}

/// LayerNorm of each row of `x` (`rows × gamma.len()`) into `y`, with the
/// biased variance, as `torch.nn.LayerNorm` computes it. The mean and the
/// variance are accumulated in f64.
pub(crate) fn layer_norm(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, y: &mut [f32]) {
    let n = gamma.len();
    for (x_row, y_row) in x.chunks_exact(n).zip(y.chunks_exact_mut(n)) {
        let mean = x_row.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
        let var = x_row
            .iter()
            .map(|&v| {
                let d = f64::from(v) - mean;
                d * d
            })
            .sum::<f64>()
            / n as f64;
        let inv = (1.0 / (var + f64::from(eps)).sqrt()) as f32;
        let mean = mean as f32;
        for (((out, &v), &g), &b) in y_row.iter_mut().zip(x_row).zip(gamma).zip(beta) {
            *out = (v - mean) * inv * g + b;
        }
    }
}

/// Applies the MLP's activation in place. Every path computes the same
/// element-wise operations (no fused multiply-adds), so the values are the
/// same bits on every path; the wider paths only run more lanes at once.
pub(crate) fn activate(path: KernelPath, kind: Activation, x: &mut [f32]) {
    match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => x86::avx512::activate(kind, x),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2Fma => x86::avx2::activate(kind, x),
        _ => activate_in(kind, x),
    }
}

/// The body of [`activate`], inlined into each path's compiled copy.
#[inline(always)]
pub(crate) fn activate_in(kind: Activation, x: &mut [f32]) {
    match kind {
        Activation::GeluTanh => {
            // √(2/π), as torch rounds it to f32.
            const K: f32 = 0.797_884_6;
            // 0.5·u·(1 + tanh z) = u·σ(2z) = u / (1 + e^(-2z)): the same
            // function, with no cancellation where tanh z is near -1, and
            // one branch-free exponential that the compiler vectorizes.
            for v in x {
                let u = *v;
                *v = u / (1.0 + exp(-2.0 * K * (u + 0.044_715 * u * u * u)));
            }
        }
        Activation::Gelu => {
            for v in x {
                let u = f64::from(*v);
                *v = (0.5 * u * (1.0 + erf(u / std::f64::consts::SQRT_2))) as f32;
            }
        }
        Activation::Relu => {
            for v in x {
                *v = v.max(0.0);
            }
        }
        Activation::Silu => {
            for v in x {
                *v /= 1.0 + (-*v).exp();
            }
        }
    }
}

/// The error function, to about 1e-15 (a Taylor series near 0, a continued
/// fraction for the complement further out); good far beyond f32.
pub(crate) fn erf(x: f64) -> f64 {
    let a = x.abs();
    let r = if a < 2.5 {
        // erf(x) = 2/√π Σ (-1)^n x^(2n+1) / (n! (2n+1))
        let mut term = a;
        let mut sum = a;
        let x2 = a * a;
        let mut n = 0.0;
        while term.abs() > 1e-17 * sum.abs() {
            n += 1.0;
            term *= -x2 / n;
            sum += term / (2.0 * n + 1.0);
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else if a < 6.0 {
        // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))), evaluated backwards.
        let mut f = a;
        for k in (1..60).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / (f * std::f64::consts::PI.sqrt())
    } else {
        1.0
    };
    r.copysign(x)
}

/// `e^x` in f32 without a call into libm, so that loops over it vectorize:
/// `x = n·ln 2 + r` with `|r| ≤ ln 2 / 2` (Cody–Waite, the rounding of
/// `n` by the 1.5·2²³ shift), `e^r` by its Taylor polynomial of degree 7
/// (truncation below 5·10⁻⁹ relative), times `2^n` built from its bits.
/// Within 2 ulp of the exact value on `[-87, 88]` (tested against f64);
/// below -87.3 it is 0 (`-inf` included), above 88 it stays at `e^88`;
/// NaN stays NaN.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that n·LN2_HI is exact for |n| < 2^9.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    const SHIFT: f32 = 12_582_912.0; // 1.5·2^23
    let c = x.clamp(-87.0, 88.0);
    let n = (c * LOG2_E + SHIFT) - SHIFT;
    let r = (c - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for coefficient in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        p = p * r + coefficient;
    }
    let scale = f32::from_bits(((n as i32 + 127) as u32) << 23);
    if x < -87.3 { 0.0 } else { p * scale }
}

/// Softmax in place over `x`, stable (the maximum is subtracted first);
/// the same bits on every path, as [`activate`].
pub(crate) fn softmax(path: KernelPath, x: &mut [f32]) {
    match path {
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx512 => x86::avx512::softmax(x),
        #[cfg(target_arch = "x86_64")]
        KernelPath::Avx2Fma => x86::avx2::softmax(x),
        _ => softmax_in(x),
    }
}

/// The body of [`softmax`], inlined into each path's compiled copy. The
/// exponentials are one loop (which vectorizes) and their sum another (in
/// order).
#[inline(always)]
pub(crate) fn softmax_in(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for v in x.iter_mut() {
        *v = exp(*v - max);
    }
    let sum = x.iter().fold(0.0f32, |s, v| s + v);
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use half::{bf16, f16};

    /// Deterministic values in [-1, 1) with no structure.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    fn available() -> Vec<KernelPath> {
        KernelPath::ALL.into_iter().filter(|p| p.is_available()).collect()
    }

    #[test]
    fn portable_dot_matches_an_f64_sum_for_every_tail_length() {
        for n in 0..70 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            assert!((f64::from(portable::dot(&a, &b)) - exact).abs() < 1e-5, "n = {n}");
        }
    }

    /// Every path, every tail length and tile edge: within 1e-5 of the
    /// portable reference (relative to the sum of |w·x| terms), each row
    /// the same bits alone as inside a batch, and 16-bit weights the same
    /// bits as their exact f32 widening.
    #[test]
    fn every_path_matches_the_portable_reference_and_is_batch_independent() {
        for path in available() {
            for k in [1, 5, 16, 31, 64, 77, 768] {
                let n_out = 37;
                let w = values(n_out * k, k as u64);
                let b = values(n_out, 7);
                let rows = 9;
                let x = values(rows * k, 3 + k as u64);
                let mut reference = vec![0.0; rows * n_out];
                linear(KernelPath::Portable, &x, Rows::F32(&w), Some(&b), &mut reference, n_out, k);
                let mut all = vec![0.0; rows * n_out];
                linear(path, &x, Rows::F32(&w), Some(&b), &mut all, n_out, k);
                for t in 0..rows {
                    for o in 0..n_out {
                        let (wr, xr) = (&w[o * k..(o + 1) * k], &x[t * k..(t + 1) * k]);
                        let exact: f64 = wr
                            .iter()
                            .zip(xr)
                            .map(|(a, c)| f64::from(*a) * f64::from(*c))
                            .sum::<f64>()
                            + f64::from(b[o]);
                        let scale: f64 =
                            wr.iter().zip(xr).map(|(a, c)| f64::from((a * c).abs())).sum::<f64>()
                                + 1.0;
                        let (got, want) = (all[t * n_out + o], reference[t * n_out + o]);
                        assert!(
                            (got - want).abs() as f64 <= 1e-5 * scale,
                            "{path:?} k={k} ({t},{o}): {got} vs {want}"
                        );
                        assert!((f64::from(got) - exact).abs() <= 1e-5 * scale, "{path:?} k={k}");
                    }
                    let mut one = vec![0.0; n_out];
                    linear(path, &x[t * k..(t + 1) * k], Rows::F32(&w), Some(&b), &mut one, 0, k);
                    assert_eq!(one, all[t * n_out..(t + 1) * n_out], "{path:?} k={k} row {t}");
                }
                for sub in 1..rows {
                    let mut part = vec![0.0; sub * n_out];
                    linear(path, &x[..sub * k], Rows::F32(&w), Some(&b), &mut part, n_out, k);
                    assert_eq!(part, all[..sub * n_out], "{path:?} k={k}, {sub} rows");
                }
                let halves: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
                let brains: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
                let wide_h: Vec<f32> = halves.iter().map(|v| v.to_f32()).collect();
                let wide_b: Vec<f32> = brains.iter().map(|v| v.to_f32()).collect();
                for (narrow, wide) in [(Rows::F16(&halves), wide_h), (Rows::Bf16(&brains), wide_b)]
                {
                    let (mut got, mut want) = (vec![0.0; rows * n_out], vec![0.0; rows * n_out]);
                    linear(path, &x, narrow, None, &mut got, n_out, k);
                    linear(path, &x, Rows::F32(&wide), None, &mut want, n_out, k);
                    assert_eq!(got, want, "{path:?} k={k}: {narrow:?}");
                }
            }
        }
    }

    /// Rows longer than the blocked products' part of `k`, and more input
    /// rows than one block of them: every row the same bits as alone, and
    /// within 1e-5 of the portable reference.
    #[test]
    fn blocked_products_match_single_rows() {
        let (k, n_out, rows) = (1601, 13, 150);
        let w = values(n_out * k, 21);
        let b = values(n_out, 22);
        let x = values(rows * k, 23);
        let mut reference = vec![0.0; rows * n_out];
        linear(KernelPath::Portable, &x, Rows::F32(&w), Some(&b), &mut reference, n_out, k);
        for path in available() {
            let mut all = vec![0.0; rows * n_out];
            linear(path, &x, Rows::F32(&w), Some(&b), &mut all, n_out, k);
            for t in 0..rows {
                let mut one = vec![0.0; n_out];
                linear(path, &x[t * k..(t + 1) * k], Rows::F32(&w), Some(&b), &mut one, 0, k);
                assert_eq!(one, all[t * n_out..(t + 1) * n_out], "{path:?} row {t}");
                for o in 0..n_out {
                    let scale: f64 = w[o * k..(o + 1) * k]
                        .iter()
                        .zip(&x[t * k..(t + 1) * k])
                        .map(|(a, c)| f64::from((a * c).abs()))
                        .sum();
                    let (got, want) = (all[t * n_out + o], reference[t * n_out + o]);
                    assert!((got - want).abs() as f64 <= 1e-5 * scale, "{path:?} ({t},{o})");
                }
            }
            let halves: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
            let wide: Vec<f32> = halves.iter().map(|v| v.to_f32()).collect();
            let (mut got, mut want) = (vec![0.0; rows * n_out], vec![0.0; rows * n_out]);
            linear(path, &x, Rows::F16(&halves), None, &mut got, n_out, k);
            linear(path, &x, Rows::F32(&wide), None, &mut want, n_out, k);
            assert_eq!(got, want, "{path:?}: f16");
        }
    }

    #[test]
    fn threaded_linear_is_bit_identical_on_large_outputs() {
        let (k, n_out) = (64, 1000);
        let w = values(k * n_out, 11);
        let b = values(n_out, 12);
        for path in available() {
            // One input row, then five (split by output rows through `tmp`).
            let workers = Workers::new(3).unwrap();
            for rows in [1, 5] {
                let x = values(rows * k, rows as u64);
                let mut one = vec![0.0; rows * n_out];
                let mut many = vec![0.0; rows * n_out];
                let mut tmp = vec![0.0; rows * n_out];
                linear(path, &x, Rows::F32(&w), Some(&b), &mut one, n_out, k);
                linear_threaded(
                    path,
                    &x,
                    Rows::F32(&w),
                    Some(&b),
                    &mut many,
                    k,
                    &workers,
                    &mut tmp,
                );
                assert!(
                    one.iter().zip(&many).all(|(a, c)| a.to_bits() == c.to_bits()),
                    "{path:?}, {rows} rows"
                );
            }
        }
    }

    #[test]
    fn attention_kernels_match_the_portable_reference() {
        for path in available() {
            for (d, n) in [(64, 1), (64, 7), (13, 9), (64, 300), (16, 40), (32, 17)] {
                let q = values(d, d as u64);
                let keys = values(n * d, 5);
                let (mut want, mut got) = (vec![0.0; n], vec![0.0; n]);
                scores(KernelPath::Portable, &q, &keys, 0.125, &mut want);
                scores(path, &q, &keys, 0.125, &mut got);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-5 * d as f32, "{path:?} d={d} n={n}: {g} vs {w}");
                }
                // Alone or among others, a key's score is the same bits.
                for j in 0..n {
                    let mut one = [0.0];
                    scores(path, &q, &keys[j * d..(j + 1) * d], 0.125, &mut one);
                    assert_eq!(one[0], got[j], "{path:?} d={d} n={n} key {j}");
                }
                let p = values(n, 9);
                let (mut want, mut got) = (vec![0.0; d], vec![0.0; d]);
                weighted_sum(KernelPath::Portable, &p, &keys, &mut want);
                weighted_sum(path, &p, &keys, &mut got);
                for (g, w) in got.iter().zip(&want) {
                    assert!((g - w).abs() <= 1e-5 * n as f32, "{path:?} d={d} n={n}: {g} vs {w}");
                }
            }
        }
    }

    #[test]
    fn the_best_path_is_available_and_names_round_trip() {
        assert!(KernelPath::best().is_available());
        for path in KernelPath::ALL {
            assert_eq!(KernelPath::parse(path.name()), Some(path));
        }
        #[cfg(target_arch = "x86_64")]
        if is_x86_feature_detected!("avx512f") {
            assert_eq!(KernelPath::best(), KernelPath::Avx512);
        }
    }

    #[test]
    fn layer_norm_gives_zero_mean_unit_variance() {
        let x = [1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 10.0];
        let mut y = [0.0; 8];
        layer_norm(&x, &[1.0; 4], &[0.0; 4], 0.0, &mut y);
        let s = 1.25f32.sqrt();
        for (got, want) in y[..4].iter().zip([-1.5 / s, -0.5 / s, 0.5 / s, 1.5 / s]) {
            assert!((got - want).abs() < 1e-6);
        }
        // A constant row is all zeros (the ε keeps it finite).
        layer_norm(&x, &[1.0; 4], &[0.5; 4], 1e-5, &mut y);
        assert_eq!(y[4..], [0.5; 4]);
    }

    #[test]
    fn activations_at_known_points() {
        let mut x = [0.0, 1.0, -1.0, 3.0];
        activate(KernelPath::Portable, Activation::GeluTanh, &mut x);
        // 0.5 (1 + tanh(√(2/π) · 1.044715)) = 0.841192 (tanh approximation of Φ(1)).
        assert_eq!(x[0], 0.0);
        assert!((x[1] - 0.841_192).abs() < 1e-6, "{}", x[1]);
        assert!((x[2] + 0.158_808).abs() < 1e-6, "{}", x[2]);
        let mut x = [1.0, -1.0];
        activate(KernelPath::Portable, Activation::Gelu, &mut x);
        // Φ(1) = 0.841344746.
        assert!((x[0] - 0.841_344_7).abs() < 1e-6 && (x[1] + 0.158_655_25).abs() < 1e-6);
        let mut x = [-2.0, 2.0];
        activate(KernelPath::Portable, Activation::Relu, &mut x);
        assert_eq!(x, [0.0, 2.0]);
        let mut x = [0.0, 1.0];
        activate(KernelPath::Portable, Activation::Silu, &mut x);
        assert!((x[1] - 0.731_058_6).abs() < 1e-6);
    }

    /// The wider paths' element-wise kernels are the portable ones run on
    /// more lanes: the same bits, for every length (vector tails included).
    #[test]
    fn elementwise_kernels_are_the_same_bits_on_every_path() {
        for n in [1, 7, 16, 33, 1000] {
            let x: Vec<f32> = values(n, n as u64).iter().map(|v| v * 12.0).collect();
            for kind in [Activation::GeluTanh, Activation::Gelu, Activation::Relu, Activation::Silu]
            {
                let mut want = x.clone();
                activate(KernelPath::Portable, kind, &mut want);
                for path in available() {
                    let mut got = x.clone();
                    activate(path, kind, &mut got);
                    let same = got.iter().zip(&want).all(|(a, b)| a.to_bits() == b.to_bits());
                    assert!(same, "{path:?} {kind:?} n={n}");
                }
            }
            let mut want = x.clone();
            softmax(KernelPath::Portable, &mut want);
            for path in available() {
                let mut got = x.clone();
                softmax(path, &mut got);
                assert_eq!(got, want, "{path:?} n={n}");
            }
        }
    }

    /// The distance in ulps between `got` and the exact `want`.
    fn ulps(got: f32, want: f64) -> f64 {
        let w = want as f32;
        let ulp = f64::from(f32::from_bits(w.abs().to_bits() + 1) - w.abs());
        (f64::from(got) - want).abs() / ulp
    }

    #[test]
    fn exp_is_within_two_ulp_and_saturates_at_the_ends() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x <= 88.0 {
            worst = worst.max(ulps(exp(x), f64::from(x).exp()));
            x += 0.013_7;
        }
        for x in [0.0, -0.0, 1e-8, -1e-8, 0.346_5, -0.346_5, 1.0, -1.0, 88.0, -87.0] {
            worst = worst.max(ulps(exp(x), f64::from(x).exp()));
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert!(exp(f32::NAN).is_nan());
        assert!(exp(1000.0).is_finite());
    }

    /// The GELU of the tanh approximation against `0.5·u·(1 + tanh z)` in
    /// f64, relative to the output's own size: within 4·10⁻⁶ where
    /// activations live (|u| ≤ 5), and within 2·10⁻⁵ further out on the
    /// negative side, where the output is about e^(-2z)·u with 2z up to
    /// 88; both bounds are set by the f32 rounding of z itself (about
    /// |2z|·2⁻²⁴ relative in e^(-2z)), not by the exponential; past the clamp of the
    /// exponential, within |u|·e⁻⁸⁸ absolutely.
    #[test]
    fn gelu_tanh_matches_its_f64_definition() {
        let (mut near, mut far) = (0.0f64, 0.0f64);
        let mut u = -30.0f32;
        while u <= 30.0 {
            let mut x = [u];
            activate(KernelPath::Portable, Activation::GeluTanh, &mut x);
            let w = f64::from(u);
            let z = (2.0 / std::f64::consts::PI).sqrt() * (w + 0.044_715 * w * w * w);
            // Written as w / (1 + e^(-2z)) where tanh z is so close to -1
            // that even f64 cancels.
            let want =
                if z > -5.0 { 0.5 * w * (1.0 + z.tanh()) } else { w / (1.0 + (-2.0 * z).exp()) };
            let err = (f64::from(x[0]) - want).abs();
            if -2.0 * z > 87.0 {
                assert!(err <= f64::from(u.abs()) * 1e-38, "gelu({u}) = {} for {want}", x[0]);
            } else if u.abs() <= 5.0 {
                near = near.max(err / want.abs().max(1e-30));
            } else {
                far = far.max(err / want.abs());
            }
            u += 0.001_9;
        }
        assert!(near <= 4e-6, "worst relative error for |u| <= 5: {near}");
        assert!(far <= 2e-5, "worst relative error further out: {far}");
    }

    #[test]
    fn erf_matches_tabulated_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (2.5, 0.999_593_047_982_555),
            (3.0, 0.999_977_909_503_001_4),
            (-1.5, -0.966_105_146_475_310_7),
        ] {
            assert!((erf(x) - want).abs() < 1e-13, "erf({x}) = {} ≠ {want}", erf(x));
        }
    }

    #[test]
    fn softmax_is_stable_and_normalised() {
        let mut x = [1000.0, 1000.0, f32::NEG_INFINITY];
        for path in available() {
            let mut x = x;
            softmax(path, &mut x);
            assert_eq!(x, [0.5, 0.5, 0.0]);
        }
        softmax(KernelPath::Portable, &mut x);
        assert_eq!(x, [0.5, 0.5, 0.0]);
    }
}
