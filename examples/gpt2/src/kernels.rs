//! The numeric kernels of the forward pass.
//!
//! Every output value is computed by the same sequence of f32 operations
//! whatever the number of rows in the call: a position's numbers do not
//! depend on whether it arrived alone (a cached step) or inside a prompt
//! (a prefill). That is what makes KV-cached and uncached runs bit-identical.

use crate::config::Activation;

/// Lanes of the dot-product accumulator: four 128-bit vectors, which the
/// compiler keeps in registers on the portable x86-64 baseline and on
/// AArch64.
const LANES: usize = 16;

/// `Σ a[i] b[i]`, with 16 interleaved partial sums (so the loop vectorises
/// into four 4-wide accumulators and streams memory), added in order at the
/// end, then the tail.
///
/// `a` and `b` must have the same length. (The shape of this loop, the
/// final `sum` included, is what lets the compiler emit full-width vector
/// loads on the portable x86-64 baseline.)
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ta, tb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..LANES {
            acc[i] += x[i] * y[i];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ta.iter().zip(tb) {
        tail += x * y;
    }
    acc.iter().sum::<f32>() + tail
}

/// `y[t] = W x[t] + b` for every row `t`: `x` is `rows × in`, `w` is
/// `out × in` (row-major, one output per row), `y` is `rows × out`.
///
/// The loop runs over the weight rows once, so a single-row call (the
/// cached step) streams the matrix from memory exactly once, and a
/// multi-row call reuses each weight row from cache for every input row.
pub(crate) fn linear(x: &[f32], w: &[f32], b: &[f32], y: &mut [f32], n_in: usize) {
    let n_out = b.len();
    debug_assert_eq!(w.len(), n_out * n_in);
    let rows = x.len() / n_in;
    debug_assert_eq!(y.len(), rows * n_out);
    for (o, (w_row, bias)) in w.chunks_exact(n_in).zip(b).enumerate() {
        for (t, x_row) in x.chunks_exact(n_in).enumerate() {
            y[t * n_out + o] = dot(w_row, x_row) + bias;
        }
    }
}

/// `y[t] = W x[t] + b` over several threads, split by output rows; the
/// same values as [`linear`]. With several input rows, each thread writes
/// its outputs for every row into its own contiguous part of `tmp`
/// (`[output][row]`, at least `rows × n_out` entries), and they are then
/// copied into `y`.
pub(crate) fn linear_threaded(
    x: &[f32],
    w: &[f32],
    b: &[f32],
    y: &mut [f32],
    n_in: usize,
    threads: usize,
    tmp: &mut [f32],
) {
    let n_out = b.len();
    let rows = x.len() / n_in;
    if threads <= 1 || n_out < 256 || tmp.len() < rows * n_out {
        return linear(x, w, b, y, n_in);
    }
    let per = n_out.div_ceil(threads);
    if rows == 1 {
        // One input row: `y` is one row of outputs, so split it into chunks.
        std::thread::scope(|scope| {
            for ((y_part, w_part), b_part) in
                y.chunks_mut(per).zip(w.chunks(per * n_in)).zip(b.chunks(per))
            {
                scope.spawn(move || linear(x, w_part, b_part, y_part, n_in));
            }
        });
        return;
    }
    let tmp = &mut tmp[..rows * n_out];
    std::thread::scope(|scope| {
        for ((t_part, w_part), b_part) in
            tmp.chunks_mut(per * rows).zip(w.chunks(per * n_in)).zip(b.chunks(per))
        {
            scope.spawn(move || {
                for (o, (w_row, bias)) in w_part.chunks_exact(n_in).zip(b_part).enumerate() {
                    for (t, x_row) in x.chunks_exact(n_in).enumerate() {
                        t_part[o * rows + t] = dot(w_row, x_row) + bias;
                    }
                }
            });
        }
    });
    for (o, outputs) in tmp.chunks_exact(rows).enumerate() {
        for (t, &value) in outputs.iter().enumerate() {
            y[t * n_out + o] = value;
        }
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

/// Applies the MLP's activation in place.
pub(crate) fn activate(kind: Activation, x: &mut [f32]) {
    match kind {
        Activation::GeluTanh => {
            // √(2/π), as torch rounds it to f32.
            const K: f32 = 0.797_884_6;
            for v in x {
                let u = *v;
                *v = 0.5 * u * (1.0 + (K * (u + 0.044_715 * u * u * u)).tanh());
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

/// Softmax in place over `x`, stable (the maximum is subtracted first).
pub(crate) fn softmax(x: &mut [f32]) {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    let inv = 1.0 / sum;
    for v in x.iter_mut() {
        *v *= inv;
    }
}

/// `y += a · x`.
#[inline]
pub(crate) fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += a * xi;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_an_f64_sum_for_every_tail_length() {
        for n in 0..70 {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let exact: f64 = a.iter().zip(&b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
            assert!((f64::from(dot(&a, &b)) - exact).abs() < 1e-5, "n = {n}");
        }
    }

    #[test]
    fn linear_rows_do_not_depend_on_the_batch() {
        let (n_in, n_out) = (37, 11);
        let w: Vec<f32> =
            (0..n_in * n_out).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let b: Vec<f32> = (0..n_out).map(|i| i as f32 * 0.1).collect();
        let x: Vec<f32> = (0..3 * n_in).map(|i| ((i * 31) % 17) as f32 / 8.0 - 1.0).collect();
        let mut all = vec![0.0; 3 * n_out];
        linear(&x, &w, &b, &mut all, n_in);
        for t in 0..3 {
            let mut one = vec![0.0; n_out];
            linear(&x[t * n_in..(t + 1) * n_in], &w, &b, &mut one, n_in);
            assert_eq!(one, all[t * n_out..(t + 1) * n_out]);
            for o in 0..n_out {
                let exact: f32 =
                    (0..n_in).map(|i| w[o * n_in + i] * x[t * n_in + i]).sum::<f32>() + b[o];
                assert!((one[o] - exact).abs() < 1e-4);
            }
        }
        let mut threaded = vec![0.0; n_out];
        linear_threaded(&x[..n_in], &w, &b, &mut threaded, n_in, 3, &mut []);
        assert_eq!(threaded, all[..n_out]);
    }

    #[test]
    fn threaded_linear_is_bit_identical_on_large_outputs() {
        let (n_in, n_out) = (64, 1000);
        let w: Vec<f32> =
            (0..n_in * n_out).map(|i| ((i * 7919) % 101) as f32 / 50.0 - 1.0).collect();
        let b = vec![0.5; n_out];
        // One input row, then five (split by output rows through `tmp`).
        for rows in [1, 5] {
            let x: Vec<f32> = (0..rows * n_in).map(|i| (i % 97) as f32 / 64.0).collect();
            let mut one = vec![0.0; rows * n_out];
            let mut many = vec![0.0; rows * n_out];
            let mut tmp = vec![0.0; rows * n_out];
            linear(&x, &w, &b, &mut one, n_in);
            linear_threaded(&x, &w, &b, &mut many, n_in, 3, &mut tmp);
            assert!(one.iter().zip(&many).all(|(a, c)| a.to_bits() == c.to_bits()), "{rows} rows");
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
        activate(Activation::GeluTanh, &mut x);
        // 0.5 (1 + tanh(√(2/π) · 1.044715)) = 0.841192 (tanh approximation of Φ(1)).
        assert_eq!(x[0], 0.0);
        assert!((x[1] - 0.841_192).abs() < 1e-6, "{}", x[1]);
        assert!((x[2] + 0.158_808).abs() < 1e-6, "{}", x[2]);
        let mut x = [1.0, -1.0];
        activate(Activation::Gelu, &mut x);
        // Φ(1) = 0.841344746.
        assert!((x[0] - 0.841_344_7).abs() < 1e-6 && (x[1] + 0.158_655_25).abs() < 1e-6);
        let mut x = [-2.0, 2.0];
        activate(Activation::Relu, &mut x);
        assert_eq!(x, [0.0, 2.0]);
        let mut x = [0.0, 1.0];
        activate(Activation::Silu, &mut x);
        assert!((x[1] - 0.731_058_6).abs() < 1e-6);
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
        softmax(&mut x);
        assert_eq!(x, [0.5, 0.5, 0.0]);
    }
}
