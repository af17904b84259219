//! Dynamic (entropy-based) temperature.

use super::temperature::{keep_first_maximum, live_max_abs};
use crate::math::softmax_entropy;
use crate::{Context, Error, LogitsProcessor, Scores};

/// Divides every live score by a temperature chosen from the entropy of the
/// step: high where the model is unsure, low where it is confident.
///
/// The semantics of llama.cpp's `temp_ext` sampler ("DynaTemp", from
/// koboldcpp). With `T = temp`, `δ = dynatemp_range`, `e =
/// dynatemp_exponent`, `H` the Shannon entropy (nats) of the softmax of the
/// live scores and `N` the number of live tokens of finite score:
///
/// ```text
/// T_min = max(0, T - δ),   T_max = T + δ,   H_max = ln N
/// T_dyn = T_min + (T_max - T_min) · (H / H_max)^e
/// x -> x / T_dyn          (an f32 division, as Temperature)
/// ```
///
/// - `N` counts only finite live tokens (llama.cpp counts every candidate
///   it holds, masked ones included; a masked token carries no probability,
///   so it is left out of `H_max` here).
/// - `H / H_max` is clamped to `[0, 1]` against rounding; `0^0 = 1`, so
///   `e = 0` always gives `T_max`.
/// - **`δ = 0`** is a plain temperature `T`.
/// - **`N <= 1`** (`H_max = 0`): the row is left as it is (llama.cpp does
///   the same: with one candidate the temperature does not matter).
/// - **`T_dyn = 0`** means greedy, as for
///   [`Temperature`](crate::processors::Temperature): only the highest live
///   score (the lowest id among ties) is kept.
/// - **Overflow**: when some `|x| / T_dyn` would overflow f32, the scores
///   are shifted first, `x -> (x - max) / T_dyn`; the distribution is the
///   same and nothing becomes `+inf` or NaN. A finite score whose shifted
///   value would still overflow saturates at `f32::MIN`, so no finite
///   token becomes masked.
/// - `-inf` stays `-inf`; the live set and its order are kept.
/// - There is no Hugging Face transformers equivalent.
///
/// # Errors
///
/// [`DynamicTemperature::new`] rejects a `temp`, `dynatemp_range` or
/// `dynatemp_exponent` that is NaN, negative or infinite, and a
/// `dynatemp_range` whose sum with `temp` overflows f32 (`T_max` must be a
/// finite f32, so `T_dyn` is finite and `-inf` never becomes NaN).
///
/// # Performance
///
/// No allocation: a maximum pass, one entropy pass (which also counts the
/// finite tokens), and the division pass.
///
/// # Example
///
/// ```
/// use decoding::processors::DynamicTemperature;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// // A uniform row has H = H_max, so T_dyn = T + δ = 2.
/// let mut row = vec![1.0, 1.0, 1.0, 1.0];
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// DynamicTemperature::new(1.5, 0.5, 1.0)?.process(&Context::empty(), &mut scores)?;
/// assert_eq!(row, [0.5; 4]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DynamicTemperature {
    temp: f32,
    range: f32,
    exponent: f32,
}

impl DynamicTemperature {
    /// Dynamic temperature around `temp` within `±dynatemp_range`, shaped
    /// by `dynatemp_exponent` (llama.cpp's names; its defaults are a range
    /// of 0 and an exponent of 1).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the parameter that is NaN,
    /// negative or infinite, or `dynatemp_range` when `temp +
    /// dynatemp_range` exceeds `f32::MAX`.
    pub fn new(temp: f32, dynatemp_range: f32, dynatemp_exponent: f32) -> Result<Self, Error> {
        let ok = |x: f32| x >= 0.0 && x.is_finite();
        if !ok(temp) {
            return Err(Error::invalid("temp", "finite and >= 0", temp));
        }
        if !ok(dynatemp_range) {
            return Err(Error::invalid("dynatemp_range", "finite and >= 0", dynatemp_range));
        }
        if !ok(dynatemp_exponent) {
            return Err(Error::invalid("dynatemp_exponent", "finite and >= 0", dynatemp_exponent));
        }
        // T_max = temp + range must be a finite f32: an infinite T_dyn
        // would turn -inf into NaN (-inf / inf).
        if f64::from(temp) + f64::from(dynatemp_range) > f64::from(f32::MAX) {
            return Err(Error::invalid(
                "dynatemp_range",
                "at most f32::MAX - temp (temp + dynatemp_range must be a finite f32)",
                dynatemp_range,
            ));
        }
        Ok(DynamicTemperature { temp, range: dynatemp_range, exponent: dynatemp_exponent })
    }

    /// The temperature this step's scores call for, or `None` when fewer
    /// than two live tokens are finite (the row is then left alone).
    pub fn temperature_for(&self, scores: &Scores<'_>) -> Option<f32> {
        let (_, h) = softmax_entropy(scores)?;
        let mut n = 0usize;
        scores.for_each_live(|_, x| n += usize::from(x > f32::NEG_INFINITY));
        if n <= 1 {
            return None;
        }
        let t_min = f64::from((self.temp - self.range).max(0.0));
        let t_max = f64::from(self.temp) + f64::from(self.range);
        let ratio = (h / (n as f64).ln()).clamp(0.0, 1.0);
        Some((t_min + (t_max - t_min) * ratio.powf(f64::from(self.exponent))) as f32)
    }
}

impl LogitsProcessor for DynamicTemperature {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let Some(t) = self.temperature_for(scores) else {
            return Ok(());
        };
        if t == 0.0 {
            keep_first_maximum(scores);
            return Ok(());
        }
        if t == 1.0 {
            return Ok(());
        }
        if t < 1.0 && live_max_abs(scores) > t * f32::MAX {
            let m = scores.max();
            // A finite score stays finite: the far tail saturates at f32::MIN.
            scores.scale_live(|x| {
                let y = (x - m) / t;
                if y == f32::NEG_INFINITY && x > f32::NEG_INFINITY { f32::MIN } else { y }
            });
        } else {
            scores.scale_live(|x| x / t);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::testing::{logits, processed};

    const NEG: f32 = f32::NEG_INFINITY;

    fn dynatemp(t: f32, d: f32, e: f32) -> DynamicTemperature {
        DynamicTemperature::new(t, d, e).unwrap()
    }

    fn t_of(p: &DynamicTemperature, row: &[f32]) -> Option<f32> {
        let mut row = row.to_vec();
        let mut live = Vec::new();
        p.temperature_for(&Scores::new(&mut row, &mut live))
    }

    #[test]
    fn the_temperature_follows_the_normalized_entropy() {
        // p = (0.5, 0.25, 0.25): H = 1.5 ln 2 = 1.0397, H_max = ln 3 = 1.0986,
        // H / H_max = 0.94639.
        let row = logits(&[0.5, 0.25, 0.25]);
        let ratio = 1.5 * std::f64::consts::LN_2 / 3f64.ln();
        // T_min = 0.5, T_max = 1.5.
        let t = t_of(&dynatemp(1.0, 0.5, 1.0), &row).unwrap();
        assert!((f64::from(t) - (0.5 + ratio)).abs() < 1e-6, "{t}");
        let t = t_of(&dynatemp(1.0, 0.5, 2.0), &row).unwrap();
        assert!((f64::from(t) - (0.5 + ratio * ratio)).abs() < 1e-6, "{t}");
        // T_min clamps at 0: T = 0.2, δ = 0.5 gives [0, 0.7].
        let t = t_of(&dynatemp(0.2, 0.5, 1.0), &row).unwrap();
        assert!((f64::from(t) - 0.7 * ratio).abs() < 1e-6, "{t}");
        // e = 0: T_max.
        assert_eq!(t_of(&dynatemp(1.0, 0.5, 0.0), &row), Some(1.5));
    }

    #[test]
    fn extremes_of_the_entropy() {
        // Uniform: T_max; one dominant token (H ≈ 0): T_min.
        assert_eq!(t_of(&dynatemp(1.0, 0.5, 1.0), &[3.0; 5]), Some(1.5));
        let t = t_of(&dynatemp(1.0, 0.5, 1.0), &[0.0, -200.0, -200.0]).unwrap();
        assert!((t - 0.5).abs() < 1e-6);
        // Masked tokens do not count in N: two equal finite tokens are uniform.
        assert_eq!(t_of(&dynatemp(1.0, 0.5, 1.0), &[NEG, 2.0, NEG, 2.0]), Some(1.5));
        assert_eq!(t_of(&dynatemp(1.0, 0.5, 1.0), &[NEG, 2.0]), None);
        assert_eq!(t_of(&dynatemp(1.0, 0.5, 1.0), &[NEG; 2]), None);
    }

    #[test]
    fn divides_the_scores() {
        // Uniform over two finite tokens: T_dyn = 2.
        assert_eq!(processed(&mut dynatemp(1.5, 0.5, 1.0), &[1.0, NEG, 1.0]), [0.5, NEG, 0.5]);
        // Zero range is a plain temperature.
        assert_eq!(processed(&mut dynatemp(0.5, 0.0, 1.0), &[1.0, 3.0]), [2.0, 6.0]);
        // A single finite token is left alone.
        assert_eq!(processed(&mut dynatemp(0.5, 0.0, 1.0), &[7.0, NEG]), [7.0, NEG]);
    }

    #[test]
    fn zero_temperature_is_greedy_and_overflow_shifts() {
        assert_eq!(processed(&mut dynatemp(0.0, 0.0, 1.0), &[1.0, 3.0, 3.0]), [NEG, 3.0, NEG]);
        let out = processed(&mut dynatemp(0.5, 0.0, 1.0), &[3e38, 0.0]);
        assert_eq!(out, [0.0, f32::MIN]);
        // δ = 0 gives T_dyn = 0.5: shifted by the maximum, then divided.
        let out = processed(&mut dynatemp(0.5, 0.0, 1.0), &[3e38, 2e38, NEG]);
        assert_eq!(out, [0.0, (2e38f32 - 3e38) / 0.5, NEG]);
    }

    #[test]
    fn rejects_invalid_parameters() {
        for v in [-0.1, f32::NAN, f32::INFINITY] {
            let name = |r: Result<DynamicTemperature, Error>| match r {
                Err(Error::InvalidParameter { name, .. }) => name,
                _ => "",
            };
            assert_eq!(name(DynamicTemperature::new(v, 0.1, 1.0)), "temp");
            assert_eq!(name(DynamicTemperature::new(1.0, v, 1.0)), "dynatemp_range");
            assert_eq!(name(DynamicTemperature::new(1.0, 0.1, v)), "dynatemp_exponent");
        }
    }
}
