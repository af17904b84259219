//! XTC ("exclude top choices").

use crate::math::{ProbFloor, Softmax};
use crate::{Context, DecodingRng, Error, LogitsProcessor, Scores, TokenId, rng_from_seed};

/// With probability `probability`, removes every token whose probability is
/// at least `threshold` **except the least probable of them**, provided at
/// least `min_keep` finite tokens remain.
///
/// The semantics of llama.cpp's `xtc` sampler (introduced in
/// text-generation-webui). With `p_i` the softmax of the live scores
/// (`exp(x - max)` in f32, the normalizer in f64, the quotient rounded to
/// f32) and `A = { i : p_i >= threshold }`:
///
/// ```text
/// u = one uniform draw in [0, 1) from the processor's own generator
/// if u < probability and |A| >= 2 and (#finite - (|A| - 1)) >= min_keep:
///     remove A \ { the least probable member of A }
/// ```
///
/// - The least probable member of `A` is its lowest score; among equal
///   scores, the **lowest id** (the last in the crate's rank order, score
///   descending then the higher id first).
/// - **`threshold > 0.5`** disables the processor (at most one token can
///   reach it); so do `probability = 0` and rows with fewer than two finite
///   live tokens. `probability = 1` always applies.
/// - One draw is taken per step in which the processor is enabled and at
///   least two finite tokens are live, whether or not it then removes
///   anything, so the stream of draws depends only on the rows.
/// - The generator is a [`DecodingRng`] seeded at construction;
///   [`LogitsProcessor::reset`] reseeds it with the same seed, so a sequence
///   restarted from the same history makes the same choices. It is separate
///   from the sampler's generator.
/// - Masked tokens are never revived; at least `min_keep` finite tokens (and
///   always one) remain when removal happens.
/// - There is no Hugging Face transformers equivalent.
///
/// # Errors
///
/// [`Xtc::new`] rejects a `probability` or `threshold` that is NaN or
/// outside `[0, 1]`; [`Xtc::min_keep`] rejects 0.
///
/// # Performance
///
/// No sort and no allocation: a maximum pass, a normalizer pass, a
/// counting pass, and a removal pass only when removal happens.
///
/// # Example
///
/// ```
/// use decoding::processors::Xtc;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// // p = 0.5, 0.3, 0.15, 0.05; threshold 0.1: tokens 0, 1, 2 reach it,
/// // the least probable of them (2) stays.
/// let mut row: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// Xtc::new(1.0, 0.1, 7)?.process(&Context::empty(), &mut scores)?;
/// assert_eq!(scores.live_ids(), Some(&[2, 3][..]));
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug)]
pub struct Xtc {
    probability: f32,
    threshold: f32,
    min_keep: usize,
    seed: u64,
    rng: DecodingRng,
}

impl Xtc {
    /// XTC with llama.cpp's `xtc_probability` and `xtc_threshold`, both in
    /// `[0, 1]`, `min_keep = 1`, and its generator seeded with `seed`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `xtc_probability` or
    /// `xtc_threshold` when it is NaN or outside `[0, 1]`.
    pub fn new(probability: f32, threshold: f32, seed: u64) -> Result<Self, Error> {
        if !(0.0..=1.0).contains(&probability) {
            return Err(Error::invalid("xtc_probability", "in [0, 1]", probability));
        }
        if !(0.0..=1.0).contains(&threshold) {
            return Err(Error::invalid("xtc_threshold", "in [0, 1]", threshold));
        }
        Ok(Xtc { probability, threshold, min_keep: 1, seed, rng: rng_from_seed(seed) })
    }

    /// Applies the removal only if at least `n` finite tokens remain
    /// (llama.cpp's `min_keep`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `n == 0`.
    pub fn min_keep(mut self, n: usize) -> Result<Self, Error> {
        if n == 0 {
            return Err(Error::invalid("min_keep", "at least 1", n));
        }
        self.min_keep = n;
        Ok(self)
    }

    /// The `xtc_probability` parameter.
    pub fn probability(&self) -> f32 {
        self.probability
    }

    /// The `xtc_threshold` parameter.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }
}

/// A copy at the same position of the same random stream (the generator
/// type has no `Clone`; its seed, stream and word position are copied).
impl Clone for Xtc {
    fn clone(&self) -> Self {
        use rand::SeedableRng;
        let mut rng = crate::DecodingRng::from_seed(self.rng.get_seed());
        rng.set_stream(self.rng.get_stream());
        rng.set_word_pos(self.rng.get_word_pos());
        Xtc { rng, ..*self }
    }
}

impl LogitsProcessor for Xtc {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        if self.probability == 0.0 || self.threshold > 0.5 {
            return Ok(());
        }
        let Some(softmax) = Softmax::of(scores) else {
            return Ok(());
        };
        let floor = ProbFloor::new(softmax, self.threshold);
        let mut finite = 0usize;
        let mut above = 0usize;
        // The least probable member of A: lowest score, lowest id among ties.
        let mut last: Option<(f32, TokenId)> = None;
        scores.for_each_live(|id, x| {
            if x > f32::NEG_INFINITY {
                finite += 1;
                if floor.admits(x) {
                    above += 1;
                    match last {
                        Some((lx, lid)) if x > lx || (x == lx && id > lid) => {}
                        _ => last = Some((x, id)),
                    }
                }
            }
        });
        if finite < 2 {
            return Ok(());
        }
        let u = crate::rng::unit_f64(&mut self.rng);
        if u >= f64::from(self.probability) {
            return Ok(());
        }
        let Some((_, keep_id)) = last else {
            return Ok(());
        };
        if above < 2 || finite - (above - 1) < self.min_keep {
            return Ok(());
        }
        scores.retain(|id, x| id == keep_id || (x > f32::NEG_INFINITY && !floor.admits(x)));
        Ok(())
    }

    fn reset(&mut self) {
        self.rng = rng_from_seed(self.seed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::testing::{logits, processed, survivors};

    const NEG: f32 = f32::NEG_INFINITY;

    fn xtc(p: f32, t: f32) -> Xtc {
        Xtc::new(p, t, 1).unwrap()
    }

    #[test]
    fn removes_the_top_choices_but_the_least_probable() {
        let row = logits(&[0.05, 0.5, 0.15, 0.3]);
        // A = {1, 3, 2} at 0.1; 2 (0.15) stays with the tail.
        assert_eq!(survivors(&mut xtc(1.0, 0.1), &row), [0, 2]);
        // A = {1, 3} at 0.2: 3 stays.
        assert_eq!(survivors(&mut xtc(1.0, 0.2), &row), [0, 2, 3]);
        // A = {1} at 0.4: fewer than two, nothing happens.
        assert_eq!(survivors(&mut xtc(1.0, 0.4), &row), [0, 1, 2, 3]);
        // threshold 0 puts every finite token in A: only the least probable stays.
        assert_eq!(survivors(&mut xtc(1.0, 0.0), &row), [0]);
    }

    #[test]
    fn the_threshold_is_inclusive_and_ties_keep_the_lowest_id() {
        // p = 0.25 each: all four reach 0.25; the lowest id stays.
        assert_eq!(survivors(&mut xtc(1.0, 0.25), &[0.0; 4]), [0]);
    }

    #[test]
    fn disabled_cases() {
        let row = logits(&[0.05, 0.5, 0.15, 0.3]);
        assert_eq!(survivors(&mut xtc(0.0, 0.1), &row), [0, 1, 2, 3]);
        assert_eq!(survivors(&mut xtc(1.0, 0.51), &[0.0, 0.0]), [0, 1]);
        assert_eq!(processed(&mut xtc(1.0, 0.1), &[NEG; 3]), [NEG; 3]);
        assert_eq!(processed(&mut xtc(1.0, 0.0), &[NEG, 2.0]), [NEG, 2.0]);
    }

    #[test]
    fn min_keep_blocks_the_removal() {
        // A = {1, 3, 2}: removal leaves 2 tokens.
        let row = logits(&[0.05, 0.5, 0.15, 0.3]);
        let mut p = xtc(1.0, 0.1).min_keep(2).unwrap();
        assert_eq!(survivors(&mut p, &row), [0, 2]);
        let mut p = xtc(1.0, 0.1).min_keep(3).unwrap();
        assert_eq!(survivors(&mut p, &row), [0, 1, 2, 3]);
    }

    #[test]
    fn masked_tokens_do_not_count_towards_min_keep() {
        // Finite: 0.5, 0.5 (both in A), one masked: removal leaves 1 finite.
        let row = [0.0, NEG, 0.0];
        assert_eq!(processed(&mut xtc(1.0, 0.3), &row), [0.0, NEG, NEG]);
        let mut p = xtc(1.0, 0.3).min_keep(2).unwrap();
        assert_eq!(processed(&mut p, &row), row);
    }

    #[test]
    fn applies_with_the_given_probability_and_reset_replays_the_draws() {
        let row = [0.0f32, 0.0, -5.0];
        let mut p = Xtc::new(0.3, 0.2, 42).unwrap();
        let runs: Vec<bool> = (0..2000).map(|_| survivors(&mut p, &row).len() < 3).collect();
        let hits = runs.iter().filter(|&&b| b).count();
        // Binomial(2000, 0.3): mean 600, sd 20.5; 6 sd either side.
        assert!((477..=723).contains(&hits), "{hits}");
        p.reset();
        let again: Vec<bool> = (0..2000).map(|_| survivors(&mut p, &row).len() < 3).collect();
        assert_eq!(runs, again);
    }

    #[test]
    fn rejects_invalid_parameters() {
        for v in [-0.1, 1.5, f32::NAN] {
            assert!(matches!(
                Xtc::new(v, 0.1, 0),
                Err(Error::InvalidParameter { name: "xtc_probability", .. })
            ));
            assert!(matches!(
                Xtc::new(0.5, v, 0),
                Err(Error::InvalidParameter { name: "xtc_threshold", .. })
            ));
        }
        assert!(xtc(0.5, 0.1).min_keep(0).is_err());
    }
}
