//! Greedy decoding: the highest score wins.

use crate::sampler::{Sampled, Sampler};
use crate::{Error, Scores};

/// Chooses the live token with the highest processed score.
///
/// **Ties** go to the lowest token id (as `torch.argmax` does). The random
/// source is never touched. The reported log-probability is that of the
/// chosen token under the softmax of the processed scores, so greedy after a
/// temperature reports the tempered probability.
///
/// # Errors
///
/// [`Error::EmptyRow`], [`Error::InvalidLogit`] (NaN or `+inf` among the
/// live scores), [`Error::AllMasked`]. A NaN is an error wherever it is, so
/// greedy never returns a token chosen past a NaN.
///
/// # Example
///
/// ```
/// use decoding::sampler::{Greedy, Sampler};
/// use decoding::{rng_from_seed, Scores};
///
/// let mut row = vec![3.0, 3.0, 1.0];
/// let mut live = Vec::new();
/// let step = Greedy::new().sample(&Scores::new(&mut row, &mut live), &mut rng_from_seed(0))?;
/// assert_eq!(step.token, 0);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Greedy;

impl Greedy {
    /// The greedy sampler.
    pub fn new() -> Self {
        Greedy
    }
}

impl Sampler for Greedy {
    fn sample(&mut self, scores: &Scores<'_>, _rng: &mut dyn rand::Rng) -> Result<Sampled, Error> {
        scores.check_finite()?;
        let (token, _) = scores.argmax().ok_or(Error::AllMasked)?;
        // The maximum contributes exp(0) = 1 to the normalizer, so the
        // chosen token's log-probability is -ln(sum).
        let (_, sum) = crate::math::normalizer(scores);
        Ok(Sampled { token, logprob: -sum.ln() as f32 })
    }
}
