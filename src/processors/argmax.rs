//! Keep only the maximum.

use crate::{Context, Error, LogitsProcessor, Scores};

/// Keeps only the highest-scoring live token, the **lowest id among ties**,
/// so that any sampler after it is deterministic.
///
/// This is greedy decoding expressed as a processor: what Hugging Face
/// transformers does with `do_sample=False` (`argmax` over the processed
/// scores, which picks the first maximum), and what
/// [`Greedy`](crate::sampler::Greedy) chooses. It is useful where a pipeline
/// must end in a sampler that draws, or to make greedy a configuration
/// choice rather than a code path.
///
/// - The survivor keeps its score; the result is a one-token live set
///   (sorted).
/// - A row where every live token is masked is left unchanged, so that the
///   sampler reports [`Error::AllMasked`].
///
/// # Performance
///
/// One pass over the live scores.
///
/// # Example
///
/// ```
/// use decoding::processors::Argmax;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let mut row = vec![1.0, 3.0, 3.0, f32::NEG_INFINITY];
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// Argmax::new().process(&Context::empty(), &mut scores)?;
/// assert_eq!(scores.live_ids(), Some(&[1][..]));
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Argmax;

impl Argmax {
    /// The processor.
    pub fn new() -> Self {
        Argmax
    }
}

impl LogitsProcessor for Argmax {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        if let Some((id, _)) = scores.argmax() {
            scores.set_live([id], true);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LogitsProcessorExt;
    use crate::math::testing::processed;
    use crate::processors::TopK;

    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn keeps_the_first_maximum_with_its_score() {
        assert_eq!(processed(&mut Argmax::new(), &[1.0, 3.0, 3.0, NEG]), [NEG, 3.0, NEG, NEG]);
        assert_eq!(processed(&mut Argmax::new(), &[-1e30, -3e38]), [-1e30, NEG]);
        assert_eq!(processed(&mut Argmax::new(), &[2.0; 5]), [2.0, NEG, NEG, NEG, NEG]);
    }

    #[test]
    fn all_masked_row_is_left_alone() {
        let mut row = [NEG; 3];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        Argmax::new().process(&Context::empty(), &mut scores).unwrap();
        assert!(!scores.is_truncated());
    }

    #[test]
    fn works_on_a_truncated_live_set() {
        let mut row = [1.0, 5.0, 5.0, 2.0];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        // Top-k ranks id 2 before id 1; the argmax is still the lowest id.
        TopK::new(2).unwrap().then(Argmax::new()).process(&Context::empty(), &mut scores).unwrap();
        assert_eq!(scores.live_ids(), Some(&[1][..]));
        assert!(scores.is_sorted());
    }
}
