//! Greedy decoding: the highest score wins.

use crate::math;
use crate::sampler::{Sampled, Sampler};
use crate::{Error, Scores, TokenId};

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
/// # Performance
///
/// The log-probability costs a pass of exponentials over the live scores,
/// more than the choice itself. [`Sampler::sample_token`] (and
/// [`Pipeline::sample_token`](crate::Pipeline::sample_token)) skips it: one
/// vectorized pass for the maximum (which also checks for NaN and `+inf`)
/// and a scan that stops at the first maximal token. The
/// [`Generator`](crate::Generator) takes that path unless processed
/// log-probabilities were requested.
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

/// The chosen token and the maximum live score.
fn choose(scores: &Scores<'_>) -> Result<(TokenId, f32), Error> {
    let m = scores.checked_max()?;
    if m == f32::NEG_INFINITY {
        return Err(Error::AllMasked);
    }
    let token = match scores.live_ids() {
        // The lowest id among the maxima, whatever the live-set order.
        Some(ids) => {
            let values = scores.values();
            ids.iter().copied().filter(|&id| values[id as usize] == m).min()
        }
        None => math::position_of(scores.values(), m).map(|i| i as TokenId),
    };
    // A finite maximum is held by some live token.
    token.map(|t| (t, m)).ok_or(Error::AllMasked)
}

impl Sampler for Greedy {
    fn sample(&mut self, scores: &Scores<'_>, _rng: &mut dyn rand::Rng) -> Result<Sampled, Error> {
        let (token, m) = choose(scores)?;
        // The maximum contributes exp(0) = 1 to the normalizer, so the
        // chosen token's log-probability is -ln(sum).
        let sum = match scores.live_ids() {
            Some(ids) => math::sum_exp_ids(scores.values(), ids, m),
            None => math::sum_exp(scores.values(), m),
        };
        Ok(Sampled { token, logprob: -sum.ln() as f32 })
    }

    fn sample_token(
        &mut self,
        scores: &Scores<'_>,
        _rng: &mut dyn rand::Rng,
    ) -> Result<TokenId, Error> {
        choose(scores).map(|(token, _)| token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    /// A random source that fails the test if it is ever used.
    struct VoidRng;
    impl rand::TryRng for VoidRng {
        type Error = std::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            panic!("greedy must not draw")
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            panic!("greedy must not draw")
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
            panic!("greedy must not draw")
        }
    }

    fn greedy(row: &[f32]) -> Result<Sampled, Error> {
        let mut row = row.to_vec();
        let mut live = Vec::new();
        Greedy::new().sample(&Scores::new(&mut row, &mut live), &mut VoidRng)
    }

    #[test]
    fn picks_the_maximum_and_the_lowest_id_among_ties() {
        assert_eq!(greedy(&[3.0, 3.0, 1.0]).unwrap().token, 0);
        assert_eq!(greedy(&[NEG, 5.0, NEG]).unwrap().token, 1);
        assert_eq!(greedy(&[-1.0, 2.0, 2.0]).unwrap().token, 1);
    }

    #[test]
    fn nan_anywhere_is_an_error_naming_its_index() {
        for (row, index) in
            [([f32::NAN, 1.0, 2.0], 0), ([1.0, f32::NAN, 2.0], 1), ([1.0, 2.0, f32::NAN], 2)]
        {
            assert!(
                matches!(greedy(&row), Err(Error::InvalidLogit { index: i, .. }) if i == index)
            );
        }
        assert!(matches!(greedy(&[1.0, f32::INFINITY]), Err(Error::InvalidLogit { index: 1, .. })));
    }

    #[test]
    fn empty_and_all_masked_rows_are_errors() {
        assert_eq!(greedy(&[]), Err(Error::EmptyRow));
        assert_eq!(greedy(&[NEG, NEG, NEG]), Err(Error::AllMasked));
    }

    #[test]
    fn reports_the_log_softmax_of_the_maximum() {
        // logits [0, ln 3]: p(1) = 0.75.
        let s = greedy(&[0.0, 3f32.ln()]).unwrap();
        assert_eq!(s.token, 1);
        assert!((s.logprob - 0.75f32.ln()).abs() < 1e-6);
    }
}
