//! Several samples of one prompt in one call (vLLM's and OpenAI's `n` and
//! `best_of`), sharing the prompt's forward pass.

use crate::{
    Error, GenerateError, Generation, Generator, LanguageModel, LogitsProcessor, LogprobMode,
    PrefixCache, RewindableModel, Sampler, TokenId,
};

/// How many samples of a prompt [`Generator::generate_choices`] returns
/// (`n`) out of how many it draws (`best_of`, at least `n`; vLLM's and
/// OpenAI's parameters of the same names).
///
/// # Example
///
/// ```
/// use decoding::Choices;
///
/// let choices = Choices::new(2)?.with_best_of(5)?;
/// assert_eq!((choices.n(), choices.best_of()), (2, 5));
/// assert!(Choices::new(3)?.with_best_of(2).is_err());
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Choices {
    n: usize,
    best_of: usize,
}

impl Choices {
    /// `n` samples, all returned.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `n` when it is 0.
    pub fn new(n: usize) -> Result<Self, Error> {
        if n == 0 {
            return Err(Error::invalid("n", "at least 1", n));
        }
        Ok(Choices { n, best_of: n })
    }

    /// Draws `best_of` samples and returns the `n` of highest cumulative
    /// log-probability.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `best_of` when it is below `n`.
    pub fn with_best_of(mut self, best_of: usize) -> Result<Self, Error> {
        if best_of < self.n {
            return Err(Error::invalid("best_of", "at least n", best_of));
        }
        self.best_of = best_of;
        Ok(self)
    }

    /// The samples returned.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The samples drawn.
    pub fn best_of(&self) -> usize {
        self.best_of
    }
}

/// One sample of [`Generator::generate_choices`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Choice {
    /// Which draw it was (`0..best_of`): its seed is the options' seed plus
    /// this index.
    pub index: usize,
    /// The run.
    pub generation: Generation,
    /// The sum of the generated tokens' processed log-probabilities (under
    /// the distribution each was drawn from), in f64.
    pub cumulative_logprob: f64,
}

/// A borrowed model, so that a [`PrefixCache`] can wrap it for one call.
struct Borrowed<'a, M: ?Sized>(&'a mut M);

impl<M: LanguageModel + ?Sized> LanguageModel for Borrowed<'_, M> {
    type Error = M::Error;
    fn vocab_size(&self) -> usize {
        self.0.vocab_size()
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.0.forward(tokens, position, logits)
    }
    fn forward_all(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.0.forward_all(tokens, position, logits)
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.0.reset()
    }
}

impl<M: RewindableModel + ?Sized> RewindableModel for Borrowed<'_, M> {
    fn rewind(&mut self, len: usize) -> Result<(), Self::Error> {
        self.0.rewind(len)
    }
}

impl<P: LogitsProcessor, S: Sampler> Generator<P, S> {
    /// Draws [`Choices::best_of`] samples of `prompt` and returns
    /// [`Choices::n`] of them: all, in draw order, when `best_of == n`;
    /// else the `n` of highest [`Choice::cumulative_logprob`] (ties: the
    /// earlier draw first), best first, as vLLM's `best_of` ranks them.
    ///
    /// Draw `i` is exactly [`Generator::generate`] with the options' seed
    /// plus `i` (wrapping; with no seed, each draw gets a fresh one): the
    /// same tokens, finish reason and text. Log-probabilities are recorded
    /// as the options ask; the processed ones are computed in any case for
    /// the ranking, and left out of the output when not asked for.
    ///
    /// # Sharing the prompt
    ///
    /// The model is driven through a [`PrefixCache`]: the first draw feeds
    /// the whole prompt, every later draw rewinds to the prompt and feeds
    /// only its last token to get the first row again, so the prompt's
    /// forward pass is computed once (when the options ask for prompt
    /// log-probabilities, every draw scores the prompt in full).
    ///
    /// # Errors
    ///
    /// Those of [`Generator::generate`]; after an error the options are
    /// restored and the draws so far are dropped.
    ///
    /// # Example
    ///
    /// ```
    /// use decoding::sampler::Categorical;
    /// use decoding::{Choices, GenerateOptions, Generator, LanguageModel, Pipeline, RewindableModel, TokenId};
    ///
    /// /// Every token equally likely.
    /// #[derive(Debug)]
    /// struct Flat;
    ///
    /// impl LanguageModel for Flat {
    ///     type Error = std::convert::Infallible;
    ///     fn vocab_size(&self) -> usize { 16 }
    ///     fn forward(&mut self, _: &[TokenId], _: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
    ///         logits.fill(0.0);
    ///         Ok(())
    ///     }
    ///     fn reset(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// }
    ///
    /// impl RewindableModel for Flat {
    ///     fn rewind(&mut self, _: usize) -> Result<(), Self::Error> { Ok(()) }
    /// }
    ///
    /// let options = GenerateOptions::builder(4).seed(7).build()?;
    /// let mut generator = Generator::new(Pipeline::new(), Categorical::new(), options);
    /// let choices = generator.generate_choices(&mut Flat, &[0], &Choices::new(3)?)?;
    /// assert_eq!(choices.len(), 3);
    /// assert_ne!(choices[0].generation.tokens, choices[1].generation.tokens);
    /// // Four tokens of probability 1/16 each.
    /// assert!((choices[0].cumulative_logprob - 4.0 * (1.0f64 / 16.0).ln()).abs() < 1e-5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn generate_choices<M>(
        &mut self,
        model: &mut M,
        prompt: &[TokenId],
        choices: &Choices,
    ) -> Result<Vec<Choice>, GenerateError<M::Error>>
    where
        M: RewindableModel + ?Sized,
    {
        let original = self.options.clone();
        let asked = original.logprobs();
        let mode = match asked {
            None | Some(LogprobMode::Processed) => LogprobMode::Processed,
            Some(_) => LogprobMode::Both,
        };
        let mut cache = PrefixCache::new(Borrowed(model));
        let mut out = Vec::with_capacity(choices.best_of().min(1 << 12));
        for index in 0..choices.best_of() {
            let mut b = original.to_builder().logprobs(mode);
            if let Some(seed) = original.seed() {
                b = b.seed(seed.wrapping_add(index as u64));
            }
            let run = match b.build() {
                Ok(options) => {
                    self.options = options;
                    self.generate(&mut cache, prompt)
                }
                Err(source) => Err(GenerateError::Decoding { step: 0, source }),
            };
            let mut generation = match run {
                Ok(generation) => generation,
                Err(e) => {
                    self.options = original;
                    return Err(e);
                }
            };
            let records = generation.logprobs.iter().flatten();
            let cumulative_logprob =
                records.map(|r| r.processed.map_or(0.0, f64::from)).sum::<f64>();
            match asked {
                None => generation.logprobs = None,
                Some(LogprobMode::Raw) => {
                    for r in generation.logprobs.iter_mut().flatten() {
                        r.processed = None;
                        r.processed_top.clear();
                    }
                }
                Some(_) => {}
            }
            out.push(Choice { index, generation, cumulative_logprob });
        }
        self.options = original;
        if choices.best_of() > choices.n() {
            out.sort_by(|a, b| {
                b.cumulative_logprob.total_cmp(&a.cumulative_logprob).then(a.index.cmp(&b.index))
            });
            out.truncate(choices.n());
        }
        Ok(out)
    }
}
