//! The vectorizable exponential every softmax in the crate uses.

/// `e^x` in f32, accurate to 1 ulp wherever the result is at least
/// `e^-87.3 ≈ 1.2e-38` (checked against the correctly rounded value in the
/// tests), and exactly `0` below that: `0` for `x < -87.3` and for `-inf`
/// (flush to zero), `+inf` above about `88.72`, NaN for NaN.
///
/// No lane ever produces or consumes a subnormal float: the argument is
/// clamped at `-87.3` before the evaluation and the lanes below it are set
/// to 0 afterwards with a select. Subnormal arithmetic is many times slower
/// than normal arithmetic on x86-64, and masked rows (`-inf`, or a finite
/// mask such as `-60` once divided by a low temperature) would otherwise
/// fill the vector registers with subnormals. What is lost is a weight
/// below `1.2e-38` of the maximum's: invisible in any f64 sum of weights
/// that includes the maximum's `1`, never a token a sampler could draw.
///
/// Branch-free so that loops over it vectorize: `x = n·ln 2 + r` with `n`
/// the nearest integer to `x·log2(e)` (the 1.5·2^23 rounding trick) and
/// `|r| <= ln(2)/2` (`ln 2` split in two parts, so `n·ln2_hi` is exact);
/// `e^r = 1 + r + r²·P(r)` with a degree-5 polynomial fitted for relative
/// error (1.2e-9 on the interval, far below the f32 rounding); the result
/// is scaled by `2^n` in two steps, `2^(n/2)` then `2^(n - n/2)`, so that
/// neither factor leaves the normal range.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    let under = x < UNDERFLOW;
    // Comparisons, not `max`/`min`, so that a NaN stays NaN.
    let x = if under { UNDERFLOW } else { x };
    let x = if x > 89.0 { 89.0 } else { x };
    let (y, n) = reduced(x);
    let n1 = n >> 1;
    let n2 = n - n1;
    let s1 = f32::from_bits(((n1 + 127) as u32) << 23);
    let s2 = f32::from_bits(((n2 + 127) as u32) << 23);
    let e = y * s1 * s2;
    if under { 0.0 } else { e }
}

/// The shared core of [`exp`] and [`exp_nonpositive`]: `x = n·ln 2 + r`
/// with `|r| <= ln 2 / 2` (`ln 2` split in two parts so that `n·LN2_HI` is
/// exact), and the polynomial `y ≈ e^r`; `e^x = y · 2^n`.
#[inline(always)]
fn reduced(x: f32) -> (f32, i32) {
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23
    const LN2_HI: f32 = 0.693_359_4; // 355 / 512
    const LN2_LO: f32 = -2.121_944_4e-4; // ln 2 - LN2_HI
    let t = x * std::f32::consts::LOG2_E + ROUND;
    let nf = t - ROUND;
    let n = (t.to_bits() as i32).wrapping_sub(ROUND.to_bits() as i32);
    let r = x - nf * LN2_HI - nf * LN2_LO;
    let p = 1.982_591_2e-4f32;
    let p = p * r + 1.394_597_5e-3;
    let p = p * r + 8.333_431e-3;
    let p = p * r + 4.166_627e-2;
    let p = p * r + 1.666_666_6e-1;
    let p = p * r + 0.5;
    (p * (r * r) + r + 1.0, n)
}

/// [`exp`] for a non-positive argument (`x - max` in a softmax), bit for
/// bit the same result for every `x <= 0`, `-inf` and NaN, with one
/// multiplication less: for `-87.3 <= x <= 0` the scale `2^n` has
/// `-126 <= n <= 0`, a normal float, so the result is scaled in one step
/// (a multiplication by a power of two is exact while nothing leaves the
/// normal range, so one step and two agree). A positive `x` gives a
/// meaningless finite or infinite value; no caller passes one.
#[inline(always)]
pub(crate) fn exp_nonpositive(x: f32) -> f32 {
    let under = x < UNDERFLOW;
    let x = if under { UNDERFLOW } else { x };
    let (y, n) = reduced(x);
    let e = y * f32::from_bits((n.wrapping_add(127) as u32) << 23);
    if under { 0.0 } else { e }
}

/// The lowest argument of [`exp`] with a nonzero result: `e^-87.3` is
/// 1.22e-38, 3.8% above the smallest normal f32, so that the result stays
/// normal within the polynomial's 1 ulp.
pub(crate) const UNDERFLOW: f32 = -87.3;

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    /// Distance in units in the last place between two non-negative floats.
    fn ulps(a: f32, b: f32) -> u32 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn exp_is_within_one_ulp_of_the_correctly_rounded_value() {
        // Every 97th float of [-104, 89), against e^x in f64 rounded once.
        let mut worst = 0;
        for x in (0..u32::MAX / 97).map(|i| f32::from_bits(i * 97)) {
            for x in [x, -x] {
                if !(-104.0..89.0).contains(&x) {
                    continue;
                }
                let want = f64::from(x).exp() as f32;
                let got = exp(x);
                if x >= UNDERFLOW {
                    assert!(got >= f32::MIN_POSITIVE, "exp({x}) = {got} is subnormal");
                    worst = worst.max(ulps(got, want));
                } else {
                    assert_eq!(got, 0.0, "exp({x}) is flushed to zero");
                }
            }
        }
        assert!(worst <= 1, "{worst} ulp");
    }

    #[test]
    fn exp_nonpositive_is_exp_bit_for_bit() {
        // Every 7th float of [-104, 0] (both zeros included), then the
        // special values.
        let stop = (-104.0f32).to_bits();
        for bits in (0x8000_0000u32..=stop).step_by(7).chain([0, stop]) {
            let x = f32::from_bits(bits);
            assert_eq!(exp_nonpositive(x).to_bits(), exp(x).to_bits(), "{x}");
        }
        for x in [NEG, -1e30, -f32::MAX, UNDERFLOW, -0.0, 0.0, -f32::MIN_POSITIVE] {
            assert_eq!(exp_nonpositive(x).to_bits(), exp(x).to_bits(), "{x}");
        }
        assert!(exp_nonpositive(f32::NAN).is_nan());
    }

    #[test]
    fn exp_special_values() {
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(-0.0), 1.0);
        assert_eq!(exp(NEG), 0.0);
        assert_eq!(exp(-104.0), 0.0);
        assert_eq!(exp(-1e30), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        // The largest finite result; the smallest nonzero one, normal.
        assert!(exp(88.72).is_finite() && exp(88.73) == f32::INFINITY);
        assert!(exp(UNDERFLOW) >= f32::MIN_POSITIVE);
        assert_eq!(exp(f32::from_bits(UNDERFLOW.to_bits() + 1)), 0.0);
        assert_eq!(exp(-100.0), 0.0);
    }
}
