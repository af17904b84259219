//! The x86-64 kernels: one body, instantiated for AVX2+FMA (8 lanes) and
//! for AVX-512 (16 lanes), chosen at run time (see [`super::KernelPath`]).
//!
//! Every dot product on a path is one vector accumulator, updated with a
//! fused multiply-add over the full vectors in order, then summed across
//! its lanes in a fixed order, then the scalar tail added in order. The
//! tiles below compute several such dot products at once (so each load
//! feeds several multiply-adds), but never change one dot product's
//! sequence of operations: a value does not depend on the tile it was
//! computed in, which keeps prompts and cached steps bit-identical.
//!
//! `unsafe` is needed for two things only: calling the
//! `#[target_feature]` functions (sound once the features are detected,
//! which every public function here asserts) and unaligned vector loads
//! through raw pointers (sound within the bounds each function asserts).

#![allow(unsafe_code)]
// The tiles index small const-size arrays in nested loops; iterators would
// hide the register blocking.
#![allow(clippy::needless_range_loop)]

use half::{bf16 as Bf16, f16 as F16};

use crate::matrix::Rows;

/// Shared body of both instruction sets. Each module defines `LANES`, the
/// vector type `V`, `zero`, `fma`, `load`, `reduce`, the `Elem` loads of
/// f16 and bf16, the feature string and the prefill tile.
macro_rules! kernels {
    (feature = $feat:literal, tile = ($tr:literal, $tc:literal)) => {
        /// A weight element: widened to f32 as it is loaded.
        trait Elem: Copy {
            /// Loads `LANES` elements at `p`, widened.
            ///
            /// # Safety
            ///
            /// The CPU has the module's features and `p..p + LANES` is
            /// readable.
            unsafe fn load(p: *const Self) -> V;
            fn widen(self) -> f32;
        }

        impl Elem for f32 {
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn load(p: *const Self) -> V {
                // SAFETY: forwarded from the caller.
                unsafe { load(p) }
            }
            #[inline]
            fn widen(self) -> f32 {
                self
            }
        }

        impl Elem for F16 {
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn load(p: *const Self) -> V {
                // SAFETY: forwarded from the caller.
                unsafe { load_f16(p) }
            }
            #[inline]
            fn widen(self) -> f32 {
                self.to_f32()
            }
        }

        impl Elem for Bf16 {
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn load(p: *const Self) -> V {
                // SAFETY: forwarded from the caller.
                unsafe { load_bf16(p) }
            }
            #[inline]
            fn widen(self) -> f32 {
                self.to_f32()
            }
        }

        /// `out[r][c] = Σ_i w[r·ws + i] · x[c·xs + i]` for `i < k`, one dot
        /// product per pair, each with the path's fixed sequence.
        ///
        /// # Safety
        ///
        /// The CPU has the module's features; `w` holds `(R-1)·ws + k`
        /// readable elements and `x` holds `(C-1)·xs + k`.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn tile<E: Elem, const R: usize, const C: usize>(
            w: *const E,
            ws: usize,
            x: *const f32,
            xs: usize,
            k: usize,
        ) -> [[f32; C]; R] {
            let full = k / LANES * LANES;
            let mut acc = [[zero(); C]; R];
            let mut i = 0;
            while i < full {
                let mut xv = [zero(); C];
                for c in 0..C {
                    // SAFETY: i + LANES <= k, within row c of x.
                    xv[c] = unsafe { load(x.add(c * xs + i)) };
                }
                for r in 0..R {
                    // SAFETY: i + LANES <= k, within row r of w.
                    let wv = unsafe { E::load(w.add(r * ws + i)) };
                    for c in 0..C {
                        acc[r][c] = fma(wv, xv[c], acc[r][c]);
                    }
                }
                i += LANES;
            }
            let mut out = [[0.0; C]; R];
            for r in 0..R {
                for c in 0..C {
                    let mut s = reduce(acc[r][c]);
                    for j in full..k {
                        // SAFETY: j < k, within row r of w and row c of x.
                        s += unsafe { (*w.add(r * ws + j)).widen() * *x.add(c * xs + j) };
                    }
                    out[r][c] = s;
                }
            }
            out
        }

        /// Writes a tile's outputs plus the biases.
        #[inline]
        fn store<const R: usize, const C: usize>(
            out: [[f32; C]; R],
            b: Option<&[f32]>,
            y: &mut [f32],
            ys: usize,
            t: usize,
            o: usize,
        ) {
            for r in 0..R {
                for c in 0..C {
                    y[(t + c) * ys + o + r] = match b {
                        Some(b) => out[r][c] + b[o + r],
                        None => out[r][c],
                    };
                }
            }
        }

        /// `y[t·ys + o] = Σ_i w[o·k + i] x[t·k + i] + b[o]`.
        ///
        /// # Safety
        ///
        /// The CPU has the module's features.
        #[target_feature(enable = $feat)]
        unsafe fn linear_impl<E: Elem>(
            x: &[f32],
            w: &[E],
            b: Option<&[f32]>,
            y: &mut [f32],
            ys: usize,
            k: usize,
        ) {
            assert!(k > 0 && w.len().is_multiple_of(k) && x.len().is_multiple_of(k));
            let (n_out, rows) = (w.len() / k, x.len() / k);
            assert!(b.is_none_or(|b| b.len() == n_out));
            assert!(rows == 0 || y.len() >= (rows - 1) * ys + n_out);
            let (wp, xp) = (w.as_ptr(), x.as_ptr());
            // SAFETY (every tile call below): the tile reads weight rows
            // o..o+R (< n_out, asserted above to be in `w`) and input rows
            // t..t+C (< rows, in `x`), k values each; the features are the
            // caller's.
            let mut o = 0;
            if rows == 1 {
                // A cached step: eight independent accumulators hide the
                // latency of the multiply-adds while the weights stream.
                while o + 8 <= n_out {
                    let out = unsafe { tile::<E, 8, 1>(wp.add(o * k), k, xp, k, k) };
                    store(out, b, y, ys, 0, o);
                    o += 8;
                }
            }
            while o + $tr <= n_out {
                let mut t = 0;
                while t + $tc <= rows {
                    let out = unsafe { tile::<E, $tr, $tc>(wp.add(o * k), k, xp.add(t * k), k, k) };
                    store(out, b, y, ys, t, o);
                    t += $tc;
                }
                while t < rows {
                    let out = unsafe { tile::<E, $tr, 1>(wp.add(o * k), k, xp.add(t * k), k, k) };
                    store(out, b, y, ys, t, o);
                    t += 1;
                }
                o += $tr;
            }
            while o < n_out {
                for t in 0..rows {
                    let out = unsafe { tile::<E, 1, 1>(wp.add(o * k), k, xp.add(t * k), k, k) };
                    store(out, b, y, ys, t, o);
                }
                o += 1;
            }
        }

        /// `out[j] = scale · q · keys[j]` (`keys` is `out.len() × q.len()`).
        ///
        /// # Safety
        ///
        /// The CPU has the module's features.
        #[target_feature(enable = $feat)]
        unsafe fn scores_impl(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
            let d = q.len();
            assert!(keys.len() >= out.len() * d);
            let (kp, qp) = (keys.as_ptr(), q.as_ptr());
            let mut j = 0;
            // SAFETY (both tile calls): keys j..j+R are within `keys`, as
            // asserted; `q` holds d values.
            while j + 4 <= out.len() {
                let dots = unsafe { tile::<f32, 4, 1>(kp.add(j * d), d, qp, d, d) };
                for r in 0..4 {
                    out[j + r] = dots[r][0] * scale;
                }
                j += 4;
            }
            while j < out.len() {
                out[j] = unsafe { tile::<f32, 1, 1>(kp.add(j * d), d, qp, d, d) }[0][0] * scale;
                j += 1;
            }
        }

        /// `out = Σ_j p[j] · values[j]` (`values` is `p.len() × out.len()`),
        /// added in the order of `j`.
        ///
        /// # Safety
        ///
        /// The CPU has the module's features.
        #[target_feature(enable = $feat)]
        unsafe fn weighted_sum_impl(p: &[f32], values: &[f32], out: &mut [f32]) {
            let d = out.len();
            assert!(values.len() >= p.len() * d);
            out.fill(0.0);
            let full = d / LANES * LANES;
            let (vp, op) = (values.as_ptr(), out.as_mut_ptr());
            let mut i = 0;
            while i < full {
                let mut acc = zero();
                for (j, &pj) in p.iter().enumerate() {
                    // SAFETY: j < p.len() and i + LANES <= d: within `values`.
                    acc = fma(splat(pj), unsafe { load(vp.add(j * d + i)) }, acc);
                }
                // SAFETY: i + LANES <= d = out.len().
                unsafe { store_v(op.add(i), acc) };
                i += LANES;
            }
            for i in full..d {
                out[i] =
                    p.iter().enumerate().fold(0.0, |s, (j, &pj)| pj.mul_add(values[j * d + i], s));
            }
        }

        /// See [`super::linear`].
        pub(crate) fn linear(
            x: &[f32],
            w: Rows<'_>,
            b: Option<&[f32]>,
            y: &mut [f32],
            ys: usize,
            k: usize,
        ) {
            assert!(available(), concat!("the CPU lacks ", $feat));
            // SAFETY: the features were detected just above.
            unsafe {
                match w {
                    Rows::F32(w) => linear_impl(x, w, b, y, ys, k),
                    Rows::F16(w) => linear_impl(x, w, b, y, ys, k),
                    Rows::Bf16(w) => linear_impl(x, w, b, y, ys, k),
                }
            }
        }

        /// See [`super::scores`].
        pub(crate) fn scores(q: &[f32], keys: &[f32], scale: f32, out: &mut [f32]) {
            assert!(available(), concat!("the CPU lacks ", $feat));
            // SAFETY: the features were detected just above.
            unsafe { scores_impl(q, keys, scale, out) }
        }

        /// See [`super::weighted_sum`].
        pub(crate) fn weighted_sum(p: &[f32], values: &[f32], out: &mut [f32]) {
            assert!(available(), concat!("the CPU lacks ", $feat));
            // SAFETY: the features were detected just above.
            unsafe { weighted_sum_impl(p, values, out) }
        }
    };
}

/// AVX2 with FMA and F16C: 8 lanes, 16 registers (a 4 × 3 prefill tile:
/// 12 accumulators, 3 inputs, 1 weight).
pub(crate) mod avx2 {
    use std::arch::x86_64::*;

    use super::*;

    const LANES: usize = 8;
    type V = __m256;

    /// AVX2, FMA and F16C, as every x86-64 CPU with AVX2 since 2013 has.
    pub(crate) fn available() -> bool {
        is_x86_feature_detected!("avx2")
            && is_x86_feature_detected!("fma")
            && is_x86_feature_detected!("f16c")
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn zero() -> V {
        _mm256_setzero_ps()
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn splat(a: f32) -> V {
        _mm256_set1_ps(a)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn fma(a: V, b: V, c: V) -> V {
        _mm256_fmadd_ps(a, b, c)
    }

    /// # Safety
    ///
    /// 8 floats readable at `p`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load(p: *const f32) -> V {
        // SAFETY: the caller's.
        unsafe { _mm256_loadu_ps(p) }
    }

    /// # Safety
    ///
    /// 8 floats writable at `p`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn store_v(p: *mut f32, v: V) {
        // SAFETY: the caller's.
        unsafe { _mm256_storeu_ps(p, v) }
    }

    /// # Safety
    ///
    /// 8 halves readable at `p`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_f16(p: *const F16) -> V {
        // SAFETY: the caller's (16 bytes).
        _mm256_cvtph_ps(unsafe { _mm_loadu_si128(p.cast()) })
    }

    /// # Safety
    ///
    /// 8 bfloat16 readable at `p`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load_bf16(p: *const Bf16) -> V {
        // SAFETY: the caller's (16 bytes). bf16 is the top half of an f32.
        let halves = unsafe { _mm_loadu_si128(p.cast()) };
        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(halves)))
    }

    /// The lanes' sum: the upper 128 bits onto the lower, then pairs.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn reduce(v: V) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
    }

    kernels!(feature = "avx2,fma,f16c", tile = (4, 3));
}

/// AVX-512 (F): 16 lanes, 32 registers (a 4 × 4 prefill tile).
pub(crate) mod avx512 {
    use std::arch::x86_64::*;

    use super::*;

    const LANES: usize = 16;
    type V = __m512;

    /// AVX-512 Foundation (which includes the f16 → f32 conversion).
    pub(crate) fn available() -> bool {
        is_x86_feature_detected!("avx512f")
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn zero() -> V {
        _mm512_setzero_ps()
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn splat(a: f32) -> V {
        _mm512_set1_ps(a)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn fma(a: V, b: V, c: V) -> V {
        _mm512_fmadd_ps(a, b, c)
    }

    /// # Safety
    ///
    /// 16 floats readable at `p`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(p: *const f32) -> V {
        // SAFETY: the caller's.
        unsafe { _mm512_loadu_ps(p) }
    }

    /// # Safety
    ///
    /// 16 floats writable at `p`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store_v(p: *mut f32, v: V) {
        // SAFETY: the caller's.
        unsafe { _mm512_storeu_ps(p, v) }
    }

    /// # Safety
    ///
    /// 16 halves readable at `p`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load_f16(p: *const F16) -> V {
        // SAFETY: the caller's (32 bytes).
        _mm512_cvtph_ps(unsafe { _mm256_loadu_si256(p.cast()) })
    }

    /// # Safety
    ///
    /// 16 bfloat16 readable at `p`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load_bf16(p: *const Bf16) -> V {
        // SAFETY: the caller's (32 bytes). bf16 is the top half of an f32.
        let halves = unsafe { _mm256_loadu_si256(p.cast()) };
        _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(halves)))
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn reduce(v: V) -> f32 {
        _mm512_reduce_add_ps(v)
    }

    kernels!(feature = "avx512f", tile = (4, 4));
}
