//! Samplers: the terminal step that chooses one token from processed scores.
//!
//! [`Categorical`] draws with its own inverse CDF, not `rand_distr`: one
//! uniform per token (a seed's stream maps to steps, whatever the
//! vocabulary or batch), over the live set only and scaled by the actual
//! total (a masked or zero-probability token is never drawn), with
//! arithmetic the crate owns (the tokens of a seed do not move with another
//! crate's release). See the crate documentation, *Randomness*.

mod categorical;
mod greedy;

pub use self::categorical::Categorical;
pub use self::greedy::Greedy;

use crate::{Error, Scores, TokenId};

/// A chosen token and its log-probability under the processed distribution
/// (the softmax of the scores the sampler saw, natural log).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampled {
    /// The chosen token.
    pub token: TokenId,
    /// `ln p(token)` under the softmax of the processed scores.
    pub logprob: f32,
}

/// Chooses one token from a step's processed [`Scores`].
///
/// The random source is passed in (never owned), as `&mut dyn rand::Rng`, so
/// the trait is object safe and the caller decides the algorithm and the
/// seed. A deterministic sampler does not touch it.
///
/// # Errors
///
/// Every sampler returns [`Error::EmptyRow`] for a row of length 0,
/// [`Error::AllMasked`] when no live score is finite, and
/// [`Error::InvalidLogit`] when a live score is NaN or `+inf` (which a
/// processor can produce, for example a bias that overflows).
pub trait Sampler: std::fmt::Debug {
    /// Chooses a token.
    fn sample(&mut self, scores: &Scores<'_>, rng: &mut dyn rand::Rng) -> Result<Sampled, Error>;

    /// Chooses a token without its log-probability: always the token that
    /// [`Sampler::sample`] would choose from the same random state, drawing
    /// the same random numbers, with the same errors.
    ///
    /// The default calls [`Sampler::sample`]. A sampler whose
    /// log-probability costs extra work overrides it:
    /// [`Greedy`] skips the pass of exponentials its log-probability needs.
    ///
    /// # Errors
    ///
    /// As [`Sampler::sample`].
    fn sample_token(
        &mut self,
        scores: &Scores<'_>,
        rng: &mut dyn rand::Rng,
    ) -> Result<TokenId, Error> {
        self.sample(scores, rng).map(|s| s.token)
    }
}

impl<S: Sampler + ?Sized> Sampler for &mut S {
    fn sample(&mut self, scores: &Scores<'_>, rng: &mut dyn rand::Rng) -> Result<Sampled, Error> {
        (**self).sample(scores, rng)
    }
    fn sample_token(
        &mut self,
        scores: &Scores<'_>,
        rng: &mut dyn rand::Rng,
    ) -> Result<TokenId, Error> {
        (**self).sample_token(scores, rng)
    }
}

impl<S: Sampler + ?Sized> Sampler for Box<S> {
    fn sample(&mut self, scores: &Scores<'_>, rng: &mut dyn rand::Rng) -> Result<Sampled, Error> {
        (**self).sample(scores, rng)
    }
    fn sample_token(
        &mut self,
        scores: &Scores<'_>,
        rng: &mut dyn rand::Rng,
    ) -> Result<TokenId, Error> {
        (**self).sample_token(scores, rng)
    }
}
