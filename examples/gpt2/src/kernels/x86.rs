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

use crate::config::Activation;
use crate::matrix::Rows;

/// The part of a row (in values) that a blocked product runs its tiles
/// through before the next part (see `blocked`), and the longest row that
/// is not blocked: 768 f32 values of six weight rows and four input rows
/// are 30 KiB, within a 32–48 KiB first-level data cache. Measured on a
/// 3072-long product (AVX-512): 384 and 1536 were slower.
const BLOCK_K: usize = 768;

/// The input rows a blocked product copies into its packed streams at
/// once (a prompt chunk, 128 rows, in one go).
const BLOCK_ROWS: usize = 128;

std::thread_local! {
    /// The packed input rows of a blocked product, kept between calls (one
    /// buffer per thread).
    static PACKED: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

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

        /// Continues the tile's accumulators over `i` in `from..to` (both
        /// multiples of `LANES`): `acc[r][c] += w[r·ws + i..] · x[c·xs + i..]`
        /// one full vector at a time, in order, the path's fixed sequence
        /// whether `0..full` is run at once or in consecutive parts.
        ///
        /// # Safety
        ///
        /// The CPU has the module's features; `w` holds `(R-1)·ws + to`
        /// readable elements and `x` holds `(C-1)·xs + to`.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn accumulate<E: Elem, const R: usize, const C: usize>(
            acc: &mut [[V; C]; R],
            w: *const E,
            ws: usize,
            x: *const f32,
            xs: usize,
            from: usize,
            to: usize,
        ) {
            let mut i = from;
            while i < to {
                let mut xv = [zero(); C];
                for c in 0..C {
                    // SAFETY: i + LANES <= to, within row c of x.
                    xv[c] = unsafe { load(x.add(c * xs + i)) };
                }
                for r in 0..R {
                    // SAFETY: i + LANES <= to, within row r of w.
                    let wv = unsafe { E::load(w.add(r * ws + i)) };
                    for c in 0..C {
                        acc[r][c] = fma(wv, xv[c], acc[r][c]);
                    }
                }
                i += LANES;
            }
        }

        /// The dot products from finished accumulators: each summed across
        /// its lanes, then the scalar tail `full..k` added in order.
        ///
        /// # Safety
        ///
        /// The CPU has the module's features; `w` holds `(R-1)·ws + k`
        /// readable elements and `x` holds `(C-1)·xs + k`.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn finish<E: Elem, const R: usize, const C: usize>(
            acc: &[[V; C]; R],
            w: *const E,
            ws: usize,
            x: *const f32,
            xs: usize,
            k: usize,
        ) -> [[f32; C]; R] {
            let full = k / LANES * LANES;
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
            let mut acc = [[zero(); C]; R];
            // SAFETY: the caller's bounds, with k >= full.
            unsafe {
                accumulate(&mut acc, w, ws, x, xs, 0, k / LANES * LANES);
                finish(&acc, w, ws, x, xs, k)
            }
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
            if k > BLOCK_K && rows >= $tc {
                // Long rows (the MLP's second product): blocked, see below.
                // SAFETY: the features are the caller's.
                o = unsafe { blocked::<E>(x, w, b, y, ys, k) };
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

        /// Continues the tile's accumulators (or, when `first`, starts them
        /// from zero) over `steps` full vectors:
        /// the weights from `R` rows `ws` apart, the inputs packed (for
        /// each step, the `C` input vectors one after the other). The same
        /// multiply-adds in the same order as [`accumulate`] on the rows
        /// the inputs were copied from. With `next`, the same part of the
        /// rows at `next` is prefetched into the second-level cache.
        ///
        /// # Safety
        ///
        /// The CPU has the module's features; `w` holds `(R-1)·ws +
        /// steps·LANES` readable elements and `x` holds `steps·C·LANES`.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn accumulate_packed<E: Elem, const R: usize, const C: usize>(
            acc: &mut [[V; C]; R],
            w: *const E,
            ws: usize,
            x: *const f32,
            steps: usize,
            first: bool,
            next: Option<*const E>,
        ) {
            let mut sums = if first { [[zero(); C]; R] } else { *acc };
            for s in 0..steps {
                if let Some(next) = next {
                    for r in 0..R {
                        // The same part of the next weight block, on its
                        // way from memory while this one is computed (a
                        // prefetch reads nothing and cannot fault).
                        let p = next.wrapping_add(r * ws + s * LANES);
                        _mm_prefetch::<_MM_HINT_T1>(p.cast());
                    }
                }
                let mut xv = [zero(); C];
                for c in 0..C {
                    // SAFETY: s < steps, within the packed inputs.
                    xv[c] = unsafe { load(x.add((s * C + c) * LANES)) };
                }
                for r in 0..R {
                    // SAFETY: s < steps, within row r of the weights.
                    let wv = unsafe { E::load(w.add(r * ws + s * LANES)) };
                    for c in 0..C {
                        sums[r][c] = fma(wv, xv[c], sums[r][c]);
                    }
                }
            }
            *acc = sums;
        }

        /// The full `$tr`-row blocks of weights against every input row
        /// when the rows are longer than [`BLOCK_K`] (the MLP's second
        /// product: 3072 long in GPT-2 124M); returns the first weight row
        /// left to the caller. A tile's operands over a whole row no longer
        /// fit the first-level cache then, nor a prompt's inputs the
        /// second, so: up to [`BLOCK_ROWS`] input rows are first copied
        /// into one contiguous stream per tile of `$tc` rows (read in
        /// order, which the hardware prefetches well); then, for each block
        /// of `$tr` weight rows, `GROUP` tiles at a time run along `k` in
        /// [`BLOCK_K`]-long parts, so that one part of the weight rows
        /// stays in the first level while those tiles pass; while the last
        /// group passes, the same part of the next block is prefetched. The accumulators are kept across the parts and each
        /// dot product is finished after the last one: the same sequence
        /// of operations as [`tile`] over the whole row, so the same bits
        /// as a cached step.
        ///
        /// # Safety
        ///
        /// The CPU has the module's features.
        #[target_feature(enable = $feat)]
        unsafe fn blocked<E: Elem>(
            x: &[f32],
            w: &[E],
            b: Option<&[f32]>,
            y: &mut [f32],
            ys: usize,
            k: usize,
        ) -> usize {
            const TILES: usize = BLOCK_ROWS / $tc;
            /// Tiles that run through a part of `k` together: their
            /// accumulators (8 × $tr × $tc vectors) stay in the first level.
            const GROUP: usize = 8;
            let (n_out, rows) = (w.len() / k, x.len() / k);
            let (o_end, t_end) = (n_out / $tr * $tr, rows / $tc * $tc);
            let steps = k / LANES;
            let (wp, xp) = (w.as_ptr(), x.as_ptr());
            PACKED.with_borrow_mut(|x_pack| {
                x_pack.resize(TILES * steps * $tc * LANES, 0.0);
                let mut accs = [[[zero(); $tc]; $tr]; GROUP];
                let mut t0 = 0;
                while t0 < t_end {
                    let tiles = ((t_end - t0) / $tc).min(TILES);
                    for n in 0..tiles {
                        for s in 0..steps {
                            for c in 0..$tc {
                                let from = (t0 + n * $tc + c) * k + s * LANES;
                                let to = ((n * steps + s) * $tc + c) * LANES;
                                x_pack[to..to + LANES].copy_from_slice(&x[from..from + LANES]);
                            }
                        }
                    }
                    let mut o = 0;
                    while o < o_end {
                        for g in (0..tiles).step_by(GROUP) {
                            let accs = &mut accs[..(tiles - g).min(GROUP)];
                            let mut s0 = 0;
                            while s0 < steps {
                                let s1 = (s0 + BLOCK_K / LANES).min(steps);
                                for (n, acc) in (g..).zip(accs.iter_mut()) {
                                    // SAFETY: steps s0..s1 are within
                                    // weight rows o..o+$tr < n_out (k long,
                                    // in `w`) and within tile n's packed
                                    // inputs (sized for `steps` above).
                                    unsafe {
                                        accumulate_packed(
                                            acc,
                                            wp.add(o * k + s0 * LANES),
                                            k,
                                            x_pack.as_ptr().add((n * steps + s0) * $tc * LANES),
                                            s1 - s0,
                                            s0 == 0,
                                            (n == g && g + GROUP >= tiles).then(|| {
                                                wp.wrapping_add((o + $tr) * k + s0 * LANES)
                                            }),
                                        )
                                    };
                                }
                                s0 = s1;
                            }
                            for (n, acc) in (g..).zip(accs.iter()) {
                                let t = t0 + n * $tc;
                                // SAFETY: weight rows o..o+$tr < n_out and
                                // input rows t..t+$tc < rows, k values
                                // each, within `w` and `x` (their lengths
                                // are multiples of k, asserted by the
                                // caller).
                                let out =
                                    unsafe { finish(acc, wp.add(o * k), k, xp.add(t * k), k, k) };
                                store(out, b, y, ys, t, o);
                            }
                        }
                        o += $tr;
                    }
                    t0 += tiles * $tc;
                }
            });
            // The input rows past the last full tile, one at a time.
            for t in t_end..rows {
                let mut o = 0;
                while o < o_end {
                    // SAFETY: as above.
                    let out = unsafe { tile::<E, $tr, 1>(wp.add(o * k), k, xp.add(t * k), k, k) };
                    store(out, b, y, ys, t, o);
                    o += $tr;
                }
            }
            o_end
        }

        /// `out[j] = scale · q · keys[j]` (`keys` is `out.len() × q.len()`).
        /// When `q.len()` is a multiple of `LANES`, `LANES` keys at a time
        /// are summed across their lanes together ([`reduce_many`], the
        /// same additions as [`reduce`] on each): a key's score is the same
        /// bits whichever keys surround it.
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
            // SAFETY (every tile and accumulation): keys j..j+R are within
            // `keys`, as asserted; `q` holds d values; the stores write
            // out[j..j+LANES], within `out`.
            if d % LANES == 0 {
                while j + LANES <= out.len() {
                    // As `tile::<f32, LANES, 1>` accumulates, the sums left
                    // in vectors.
                    let mut acc = [zero(); LANES];
                    let mut i = 0;
                    while i < d {
                        let qv = unsafe { load(qp.add(i)) };
                        for r in 0..LANES {
                            acc[r] = fma(unsafe { load(kp.add((j + r) * d + i)) }, qv, acc[r]);
                        }
                        i += LANES;
                    }
                    let sums = reduce_many(acc);
                    unsafe { store_v(out.as_mut_ptr().add(j), mul(sums, splat(scale))) };
                    j += LANES;
                }
            }
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

        /// `out[c·LANES..]` for `c < G` (`G` vectors of the output, which
        /// starts at `v`'s first column): two sums, of the even and of the
        /// odd `j`, each in the order of `j`, then added.
        ///
        /// # Safety
        ///
        /// The CPU has the module's features; `v` holds `p.len()` rows
        /// `d` apart of `G·LANES` readable values, and `out` `G·LANES`
        /// writable ones.
        #[inline]
        #[target_feature(enable = $feat)]
        unsafe fn weighted_group<const G: usize>(
            p: &[f32],
            v: *const f32,
            d: usize,
            out: *mut f32,
        ) {
            let (mut even, mut odd) = ([zero(); G], [zero(); G]);
            let pairs = p.len() / 2;
            for n in 0..pairs {
                let j = 2 * n;
                let (pe, po) = (splat(p[j]), splat(p[j + 1]));
                for c in 0..G {
                    // SAFETY: rows j, j + 1 < p.len(), columns within G·LANES.
                    unsafe {
                        even[c] = fma(pe, load(v.add(j * d + c * LANES)), even[c]);
                        odd[c] = fma(po, load(v.add((j + 1) * d + c * LANES)), odd[c]);
                    }
                }
            }
            if p.len() % 2 == 1 {
                let j = p.len() - 1;
                for c in 0..G {
                    // SAFETY: row j < p.len().
                    even[c] = fma(splat(p[j]), unsafe { load(v.add(j * d + c * LANES)) }, even[c]);
                }
            }
            for c in 0..G {
                // SAFETY: within the G·LANES values of `out`.
                unsafe { store_v(out.add(c * LANES), add(even[c], odd[c])) };
            }
        }

        /// `out = Σ_j p[j] · values[j]` (`values` is `p.len() × out.len()`):
        /// each full vector of `out` as two interleaved sums (even and odd
        /// `j`, each in order, then added), four vectors at a time so that
        /// each `p[j]` feeds several multiply-adds; the columns past the
        /// last full vector in the order of `j`.
        ///
        /// # Safety
        ///
        /// The CPU has the module's features.
        #[target_feature(enable = $feat)]
        unsafe fn weighted_sum_impl(p: &[f32], values: &[f32], out: &mut [f32]) {
            let d = out.len();
            assert!(values.len() >= p.len() * d);
            let full = d / LANES * LANES;
            let (vp, op) = (values.as_ptr(), out.as_mut_ptr());
            let mut i = 0;
            // SAFETY (both groups): columns i..i+G·LANES <= full <= d of
            // the p.len() rows of `values` and of `out`.
            while i + 4 * LANES <= full {
                unsafe { weighted_group::<4>(p, vp.add(i), d, op.add(i)) };
                i += 4 * LANES;
            }
            while i < full {
                unsafe { weighted_group::<1>(p, vp.add(i), d, op.add(i)) };
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

        /// See [`super::activate`]: the same operations, compiled for the
        /// module's vectors.
        pub(crate) fn activate(kind: Activation, x: &mut [f32]) {
            #[target_feature(enable = $feat)]
            fn imp(kind: Activation, x: &mut [f32]) {
                super::super::activate_in(kind, x)
            }
            assert!(available(), concat!("the CPU lacks ", $feat));
            // SAFETY: the features were detected just above.
            unsafe { imp(kind, x) }
        }

        /// See [`super::softmax`]: the same operations, compiled for the
        /// module's vectors.
        pub(crate) fn softmax(x: &mut [f32]) {
            #[target_feature(enable = $feat)]
            fn imp(x: &mut [f32]) {
                super::super::softmax_in(x)
            }
            assert!(available(), concat!("the CPU lacks ", $feat));
            // SAFETY: the features were detected just above.
            unsafe { imp(x) }
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

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn add(a: V, b: V) -> V {
        _mm256_add_ps(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn mul(a: V, b: V) -> V {
        _mm256_mul_ps(a, b)
    }

    /// The lanes' sum: the upper 128 bits onto the lower, then the upper
    /// pair onto the lower, then the two left.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn reduce(v: V) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
    }

    /// Lane `i` of the result is [`reduce`]`(v[i])`, the same additions,
    /// for eight vectors at once: each step adds the halves of two
    /// vectors' partial sums in one instruction (7 additions instead of
    /// 24).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn reduce_many(v: [V; 8]) -> V {
        // [a.low b.low] + [a.high b.high], then pairs and single lanes
        // within each 128-bit half (as the AVX-512 version). Taken in this
        // order (slot 2m + h holds vector 4h + m), the sums come out in
        // the natural one.
        let halves = |a: V, b: V| {
            _mm256_add_ps(
                _mm256_permute2f128_ps::<0x20>(a, b),
                _mm256_permute2f128_ps::<0x31>(a, b),
            )
        };
        let (a, b) = (halves(v[0], v[4]), halves(v[1], v[5]));
        let (c, e) = (halves(v[2], v[6]), halves(v[3], v[7]));
        let f = _mm256_add_ps(_mm256_shuffle_ps::<0x44>(a, b), _mm256_shuffle_ps::<0xEE>(a, b));
        let g = _mm256_add_ps(_mm256_shuffle_ps::<0x44>(c, e), _mm256_shuffle_ps::<0xEE>(c, e));
        _mm256_add_ps(_mm256_shuffle_ps::<0x88>(f, g), _mm256_shuffle_ps::<0xDD>(f, g))
    }

    kernels!(feature = "avx2,fma,f16c", tile = (4, 3));
}

/// AVX-512 (F): 16 lanes, 32 registers (a 6 × 4 prefill tile: 24
/// accumulators, four input vectors and one weight vector; measured faster
/// than 4 × 4, 4 × 6 and 8 × 3 on a 256-token prompt).
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
    fn add(a: V, b: V) -> V {
        _mm512_add_ps(a, b)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn mul(a: V, b: V) -> V {
        _mm512_mul_ps(a, b)
    }

    /// The lanes' sum: the upper 256 bits onto the lower, then the upper
    /// 128 onto the lower, then the upper pair onto the lower, then the
    /// two left.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn reduce(v: V) -> f32 {
        let high = _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v)));
        let s = _mm256_add_ps(_mm512_castps512_ps256(v), high);
        let s = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps::<1>(s));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_add_ss(s, _mm_shuffle_ps::<1>(s, s)))
    }

    /// Lane `i` of the result is [`reduce`]`(v[i])`, the same additions,
    /// for sixteen vectors at once: each step adds the halves of two
    /// vectors' partial sums in one instruction (15 additions instead of
    /// 64).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn reduce_many(v: [V; 16]) -> V {
        // Each step adds, lane by lane, one half of two vectors' partial
        // sums to the other half: [a₀ a₁ b₀ b₁] + [a₂ a₃ b₂ b₃] in 128-bit
        // blocks, then [a₀ a₂ b₀ b₂] + [a₁ a₃ b₁ b₃], then the same with
        // pairs of lanes within each block, then single lanes. Taken in
        // this order (slot 4m + b holds vector 4b + m), the sums come out
        // in the natural one.
        let h0 = halves(v[0], v[4]);
        let h1 = halves(v[8], v[12]);
        let h2 = halves(v[1], v[5]);
        let h3 = halves(v[9], v[13]);
        let h4 = halves(v[2], v[6]);
        let h5 = halves(v[10], v[14]);
        let h6 = halves(v[3], v[7]);
        let h7 = halves(v[11], v[15]);
        let q0 = quarters(h0, h1);
        let q1 = quarters(h2, h3);
        let q2 = quarters(h4, h5);
        let q3 = quarters(h6, h7);
        let f = _mm512_add_ps(_mm512_shuffle_ps::<0x44>(q0, q1), _mm512_shuffle_ps::<0xEE>(q0, q1));
        let g = _mm512_add_ps(_mm512_shuffle_ps::<0x44>(q2, q3), _mm512_shuffle_ps::<0xEE>(q2, q3));
        _mm512_add_ps(_mm512_shuffle_ps::<0x88>(f, g), _mm512_shuffle_ps::<0xDD>(f, g))
    }

    /// `[a₀ a₁ b₀ b₁] + [a₂ a₃ b₂ b₃]` in 128-bit blocks.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn halves(a: V, b: V) -> V {
        _mm512_add_ps(_mm512_shuffle_f32x4::<0x44>(a, b), _mm512_shuffle_f32x4::<0xEE>(a, b))
    }

    /// `[a₀ a₂ b₀ b₂] + [a₁ a₃ b₁ b₃]` in 128-bit blocks.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn quarters(a: V, b: V) -> V {
        _mm512_add_ps(_mm512_shuffle_f32x4::<0x88>(a, b), _mm512_shuffle_f32x4::<0xDD>(a, b))
    }

    kernels!(feature = "avx512f", tile = (6, 4));
}
