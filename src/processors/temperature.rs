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
    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let t = self.t;
        if t == 0.0 {
            if let Some((id, _)) = scores.argmax() {
                scores.set_live([id], true);
            }
            return Ok(());
        }
        if t == 1.0 {
            return Ok(());
        }
        if t < 1.0 {
            // x / t overflows iff |x| > t * f32::MAX.
            let limit = t * f32::MAX;
            let mut max_abs = 0.0f32;
            scores.for_each_live(|_, x| {
                if x > f32::NEG_INFINITY {
                    max_abs = max_abs.max(x.abs());
                }
            });
            if max_abs > limit {
                let m = scores.max();
                scores.scale_live(|x| (x - m) / t);
                return Ok(());
            }
        }
        scores.scale_live(|x| x / t);
        Ok(())
    }
}
