//! Temperature scaling.

use crate::{Context, Error, LogitsProcessor, Scores};

/// Divides every live score by the temperature `T`: `x -> x / T`.
///
/// Matches Hugging Face transformers' `TemperatureLogitsWarper`: an f32
/// division (not a multiplication by `1/T`), so `T = 0.7` turns `1.0` into
/// `1.4285715`. `T < 1` sharpens the distribution, `T > 1` flattens it.
///
/// - **`T = 0` means greedy**: the processor keeps only the highest live
///   score (the lowest id among ties, as [`Greedy`](crate::sampler::Greedy)
///   chooses), so any sampler after it is deterministic. transformers
///   rejects 0; vLLM, llama.cpp and candle treat it as greedy, as here.
/// - **Overflow**: when `T < 1` and some `|x| / T` would overflow f32, the
///   scores are shifted first, `x -> (x - max) / T`. The distribution is the
///   same (softmax is shift-invariant) and nothing becomes `+inf` or NaN;
///   transformers would produce `inf`/NaN there.
/// - `-inf` stays `-inf`.
///
/// # Errors
///
/// [`Temperature::new`] rejects NaN, negative and infinite values.
///
/// # Example
///
/// ```
/// use decoding::processors::Temperature;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let mut row = vec![1.0, 2.0, f32::NEG_INFINITY];
/// let mut live = Vec::new();
/// Temperature::new(0.5)?.process(&Context::empty(), &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row, [2.0, 4.0, f32::NEG_INFINITY]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Temperature {
    t: f32,
}

impl Temperature {
    /// A temperature `t >= 0` (finite). `0` means greedy.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] for NaN, negative or infinite `t`.
    pub fn new(t: f32) -> Result<Self, Error> {
        if !(t >= 0.0 && t.is_finite()) {
            return Err(Error::invalid("temperature", "finite and >= 0 (0 means greedy)", t));
        }
        Ok(Temperature { t })
    }

    /// The temperature.
    pub fn value(&self) -> f32 {
        self.t
    }
}

impl LogitsProcessor for Temperature {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let t = self.t;
        if t == 0.0 {
            keep_first_maximum(scores);
            return Ok(());
        }
        if t == 1.0 {
            return Ok(());
        }
        if t < 1.0 {
            // x / t overflows iff |x| > t * f32::MAX.
            let limit = t * f32::MAX;
            if live_max_abs(scores) > limit {
                let m = scores.max();
                scores.scale_live(|x| (x - m) / t);
                return Ok(());
            }
        }
        scores.scale_live(|x| x / t);
        Ok(())
    }
}

/// Temperature 0: keeps only the first maximum (greedy), as a sorted live
/// set of one. Shared with [`DynamicTemperature`](super::DynamicTemperature).
pub(super) fn keep_first_maximum(scores: &mut Scores<'_>) {
    if let Some((id, _)) = scores.argmax() {
        scores.set_live([id], true);
    }
}

/// The largest `|x|` over the live scores above `-inf` (0 for none): the
/// vectorized pass over a full row, a walk of the survivors otherwise.
/// Decides whether `x / t` could overflow.
pub(super) fn live_max_abs(scores: &Scores<'_>) -> f32 {
    match scores.live_ids() {
        None => crate::math::max_abs_finite(scores.values()),
        Some(_) => {
            let mut max_abs = 0.0f32;
            scores.for_each_live(|_, x| {
                if x > f32::NEG_INFINITY {
                    max_abs = max_abs.max(x.abs());
                }
            });
            max_abs
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    fn apply(t: f32, row: &[f32]) -> Vec<f32> {
        let mut out = row.to_vec();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut out, &mut live);
        Temperature::new(t).unwrap().process(&Context::empty(), &mut scores).unwrap();
        scores.densify();
        out
    }

    #[test]
    fn divides_in_f32_like_transformers() {
        // 1 / f32(0.7) rounded to f32, as torch computes `scores / 0.7` on fp32.
        assert_eq!(apply(0.7, &[1.0])[0], 1.0f32 / 0.7f32);
        assert_eq!(apply(0.7, &[1.0])[0], 1.4285715);
        assert_eq!(apply(2.0, &[3.0, -1.0, NEG]), [1.5, -0.5, NEG]);
    }

    #[test]
    fn one_is_the_identity() {
        let row = [0.1, -7.25, NEG, 1e30];
        assert_eq!(apply(1.0, &row), row);
    }

    #[test]
    fn zero_keeps_only_the_first_maximum() {
        assert_eq!(apply(0.0, &[1.0, 3.0, 3.0, 2.0]), [NEG, 3.0, NEG, NEG]);
        // An all-masked row is left for the sampler to report.
        assert_eq!(apply(0.0, &[NEG, NEG]), [NEG, NEG]);
    }

    #[test]
    fn rejects_nan_negative_and_infinite() {
        for t in [f32::NAN, -1.0, -0.0001, f32::INFINITY, f32::NEG_INFINITY] {
            let err = Temperature::new(t).unwrap_err();
            assert!(matches!(err, Error::InvalidParameter { name: "temperature", .. }), "{t}");
        }
        assert!(Temperature::new(-0.0).is_ok(), "-0.0 == 0 is greedy");
    }

    #[test]
    fn tiny_temperature_shifts_instead_of_overflowing() {
        let out = apply(1e-30, &[1e30, 0.0, -1e30, NEG]);
        assert_eq!(out[0], 0.0);
        assert!(out.iter().all(|x| !x.is_nan() && *x != f32::INFINITY), "{out:?}");
        assert_eq!(out[3], NEG);
        // Without overflow risk the plain division is kept.
        let out = apply(1e-6, &[1.0, 2.0, 3.0]);
        assert_eq!(out, [1.0 / 1e-6f32, 2.0 / 1e-6f32, 3.0 / 1e-6f32]);
    }

    #[test]
    fn works_on_the_live_set_only() {
        let mut row = vec![1.0, 2.0, 4.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        scores.set_live([2, 1], true);
        Temperature::new(0.5).unwrap().process(&Context::empty(), &mut scores).unwrap();
        assert!(scores.is_sorted());
        assert_eq!(row, [1.0, 4.0, 8.0]);
    }
}
