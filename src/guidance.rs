//! Classifier-free guidance: a model whose rows are pushed away from an
//! unconditional context (transformers' `guidance_scale`,
//! `UnbatchedClassifierFreeGuidanceLogitsProcessor`).

use crate::{Error, LanguageModel, TokenId};

/// An error of a [`ClassifierFreeGuidance`] model.
#[derive(Debug, thiserror::Error)]
pub enum GuidanceError<E, F> {
    /// The conditional model failed.
    #[error("conditional model: {0}")]
    Conditional(#[source] E),
    /// The unconditional model failed.
    #[error("unconditional model: {0}")]
    Unconditional(#[source] F),
    /// The two models' rows differ in length.
    #[error("the unconditional model has {actual} scores per row, the conditional one {expected}")]
    VocabSizeMismatch {
        /// The conditional model's row length.
        expected: usize,
        /// The unconditional model's.
        actual: usize,
    },
}

/// Classifier-free guidance (Sanchez et al. 2023, "Stay on topic with
/// Classifier-Free Guidance"): a [`LanguageModel`] made of a conditional
/// model, which sees the prompt, and an unconditional one, which sees a
/// negative prompt (or only the prompt's last token) instead, both followed
/// by the generated tokens. Each row is
///
/// ```text
/// s · (log_softmax(cond) - log_softmax(uncond)) + log_softmax(uncond)
/// ```
///
/// with `s` the guidance scale: `s > 1` strengthens what the prompt adds
/// over the unconditional context, `s = 1` is the conditional model's
/// log-probabilities (the unconditional model is then never called), `s = 0`
/// the unconditional model's. Wrap the two models (two instances of the
/// same network, each with its own KV cache) and hand the wrapper to any
/// [`Generator`](crate::Generator) run: the guided row comes first, before
/// every processor, as transformers applies its processor first.
///
/// # Semantics, exactly (transformers 5.x)
///
/// - After [`reset`](LanguageModel::reset), the first call feeds the
///   conditional model the prompt, and the unconditional model the negative
///   prompt if one was given, else the last token of what the first call
///   fed (transformers' `input_ids[:, -1:]`). Every later call feeds both
///   models the same new tokens.
/// - `log_softmax` is computed as `(x - max) - ln Σ exp(x - max)` with
///   the sum in f64; the combination in f32. A score that is `-inf` in either
///   row is `-inf` in the result (transformers would produce a NaN where
///   both are `-inf`).
///
/// # Errors
///
/// [`ClassifierFreeGuidance::new`] checks the scale and the negative
/// prompt; calls return [`GuidanceError`].
///
/// # Example
///
/// ```
/// use decoding::sampler::Greedy;
/// use decoding::{ClassifierFreeGuidance, GenerateOptions, Generator, LanguageModel, Pipeline, TokenId};
///
/// /// After token `t`, prefers `t + 1` (score 2) and `t + 2` (score 1).
/// #[derive(Debug)]
/// struct Next { last: TokenId }
///
/// impl LanguageModel for Next {
///     type Error = std::convert::Infallible;
///     fn vocab_size(&self) -> usize { 8 }
///     fn forward(&mut self, tokens: &[TokenId], _: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
///         self.last = *tokens.last().unwrap();
///         logits.fill(0.0);
///         logits[(self.last as usize + 1) % 8] = 2.0;
///         logits[(self.last as usize + 2) % 8] = 1.0;
///         Ok(())
///     }
///     fn reset(&mut self) -> Result<(), Self::Error> { Ok(()) }
/// }
///
/// let mut guided = ClassifierFreeGuidance::new(Next { last: 0 }, Next { last: 0 }, 1.5, None)?;
/// let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(3));
/// let out = generator.generate(&mut guided, &[0])?;
/// // Both models agree here, so guidance changes nothing.
/// assert_eq!(out.tokens, [1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ClassifierFreeGuidance<M, U> {
    conditional: M,
    unconditional: U,
    scale: f32,
    negative_prompt: Option<Vec<TokenId>>,
    /// Tokens the unconditional model holds; `None` before the first call
    /// after a reset.
    held: Option<usize>,
    /// The unconditional model's row.
    row: Vec<f32>,
}

impl<M: LanguageModel, U: LanguageModel> ClassifierFreeGuidance<M, U> {
    /// Guides `conditional` by `unconditional` with `scale`; the
    /// unconditional context starts with `negative_prompt`, or with the
    /// prompt's last token when it is `None`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `guidance_scale` when it is not
    /// finite, or `negative_prompt` when it is empty;
    /// [`Error::VocabSizeMismatch`] when the models' rows differ in length.
    pub fn new(
        conditional: M,
        unconditional: U,
        scale: f32,
        negative_prompt: Option<Vec<TokenId>>,
    ) -> Result<Self, Error> {
        if !scale.is_finite() {
            return Err(Error::invalid("guidance_scale", "finite", scale));
        }
        if negative_prompt.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::invalid("negative_prompt", "at least one token", "[]"));
        }
        let (expected, actual) = (conditional.vocab_size(), unconditional.vocab_size());
        if expected != actual {
            return Err(Error::VocabSizeMismatch { expected, actual });
        }
        Ok(ClassifierFreeGuidance {
            conditional,
            unconditional,
            scale,
            negative_prompt,
            held: None,
            row: Vec::new(),
        })
    }

    /// The guidance scale.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The negative prompt, if any.
    pub fn negative_prompt(&self) -> Option<&[TokenId]> {
        self.negative_prompt.as_deref()
    }

    /// The two models, conditional first.
    pub fn into_inner(self) -> (M, U) {
        (self.conditional, self.unconditional)
    }
}

/// The row's maximum `m` and `ln Σ exp(x - m)` (the sum in f64), so that
/// `log_softmax(x) = (x - m) - that`: the subtraction of `m` is exact near
/// the top, whatever the row's offset.
fn log_normalizer(row: &[f32]) -> (f32, f32) {
    let max = row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
    if !max.is_finite() {
        return (max, 0.0);
    }
    let sum: f64 = row.iter().map(|&x| f64::from(x - max).exp()).sum();
    (max, sum.ln() as f32)
}

impl<M: LanguageModel, U: LanguageModel> LanguageModel for ClassifierFreeGuidance<M, U> {
    type Error = GuidanceError<M::Error, U::Error>;

    fn vocab_size(&self) -> usize {
        self.conditional.vocab_size()
    }

    fn forward(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.conditional.forward(tokens, position, logits).map_err(GuidanceError::Conditional)?;
        let (c_max, c_tail) = log_normalizer(logits);
        if self.scale == 1.0 {
            logits.iter_mut().for_each(|x| *x = (*x - c_max) - c_tail);
            return Ok(());
        }
        let (expected, actual) = (logits.len(), self.unconditional.vocab_size());
        if expected != actual {
            return Err(GuidanceError::VocabSizeMismatch { expected, actual });
        }
        self.row.resize(actual, 0.0);
        let (feed, at): (&[TokenId], usize) = match (self.held, &self.negative_prompt) {
            (Some(held), _) => (tokens, held),
            (None, Some(negative)) => (negative, 0),
            (None, None) => (tokens.last().map(std::slice::from_ref).unwrap_or(&[]), 0),
        };
        self.unconditional
            .forward(feed, at, &mut self.row)
            .map_err(GuidanceError::Unconditional)?;
        self.held = Some(at + feed.len());
        let (u_max, u_tail) = log_normalizer(&self.row);
        let s = self.scale;
        for (x, &u) in logits.iter_mut().zip(&self.row) {
            let (c, u) = ((*x - c_max) - c_tail, (u - u_max) - u_tail);
            *x = if c == f32::NEG_INFINITY || u == f32::NEG_INFINITY {
                f32::NEG_INFINITY
            } else {
                s * (c - u) + u
            };
        }
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Self::Error> {
        self.held = None;
        self.conditional.reset().map_err(GuidanceError::Conditional)?;
        self.unconditional.reset().map_err(GuidanceError::Unconditional)
    }
}
