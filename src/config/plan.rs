//! `DecodingPlan`: what a configuration builds.

use std::fmt;

use crate::{
    BeamSearch, Error, GenerateOptions, Generator, LogitsProcessor, Pipeline, PromptLookup, Sampler,
};

/// How long a run may go.
///
/// transformers counts `max_new_tokens` after the prompt but `max_length`
/// from the start of the sequence, prompt included; which one applies
/// depends on what the configuration sets (see
/// [`GenerationConfig`](super::GenerationConfig), *Length*).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LengthLimit {
    /// At most this many generated tokens.
    NewTokens(usize),
    /// At most this many tokens in the whole sequence, prompt included.
    Total(usize),
}

impl LengthLimit {
    /// The most tokens a run may generate after a prompt of `prompt_len`
    /// tokens.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] (`max_length`) when a total limit leaves
    /// no room after the prompt, as transformers raises then.
    ///
    /// ```
    /// use decoding::config::LengthLimit;
    ///
    /// assert_eq!(LengthLimit::NewTokens(16).max_new_tokens(100)?, 16);
    /// assert_eq!(LengthLimit::Total(4096).max_new_tokens(96)?, 4000);
    /// assert!(LengthLimit::Total(10).max_new_tokens(10).is_err());
    /// # Ok::<(), decoding::Error>(())
    /// ```
    pub fn max_new_tokens(&self, prompt_len: usize) -> Result<usize, Error> {
        match *self {
            LengthLimit::NewTokens(n) => Ok(n),
            LengthLimit::Total(m) if prompt_len < m => Ok(m - prompt_len),
            LengthLimit::Total(m) => Err(Error::invalid(
                "max_length",
                "greater than the prompt length (or set max_new_tokens instead)",
                format_args!("{m} for a prompt of {prompt_len} tokens"),
            )),
        }
    }
}

/// A sampler that can move between threads, as a plan holds it.
pub type BoxedSampler = Box<dyn Sampler + Send>;

/// What building a configuration produces: the processor [`Pipeline`], the
/// [`Sampler`], the [`GenerateOptions`] of the run, the length limit and
/// the number of choices, plus a printable description of the order.
///
/// Built by [`GenerationConfig::build`](super::GenerationConfig::build),
/// [`OpenAiParams::build`](super::OpenAiParams::build) and
/// [`LlamaCppSampling::build`](super::LlamaCppSampling::build).
///
/// # The order is printable
///
/// [`DecodingPlan::stages`] lists the stages in the order they run, one
/// short label per stage (the processor's type and its parameters), and
/// `Display` prints them joined by `->`, then `=>` and the sampler:
///
/// ```text
/// RepetitionPenalty(1.05) -> Temperature(0.7) -> TopK(k=20) -> TopP(0.8) => Categorical
/// ```
///
/// # Several choices
///
/// [`DecodingPlan::n`] choices (OpenAI's `n`, transformers'
/// `num_return_sequences`) are independent runs of the same prompt: choice
/// `i` uses the seed `seed + i` (wrapping), so choices differ from one
/// another and each is reproducible. [`DecodingPlan::generate_options`]
/// gives the options of each.
///
/// # Example
///
/// ```
/// use decoding::config::{GenerationConfig, LengthLimit};
///
/// let config = GenerationConfig {
///     do_sample: Some(true),
///     temperature: Some(0.7),
///     top_k: Some(20),
///     top_p: Some(0.8),
///     repetition_penalty: Some(1.05),
///     max_new_tokens: Some(64),
///     ..GenerationConfig::default()
/// };
/// let plan = config.build()?;
/// assert_eq!(
///     plan.to_string(),
///     "RepetitionPenalty(1.05) -> Temperature(0.7) -> TopK(k=20) -> TopP(0.8) => Categorical"
/// );
/// assert_eq!(plan.length(), LengthLimit::NewTokens(64));
/// let options = plan.generate_options(12, 0)?;
/// assert_eq!(options.max_new_tokens(), 64);
/// # Ok::<(), decoding::Error>(())
/// ```
///
/// # One plan, many requests
///
/// A plan is `Clone`: build it once from the model's configuration, then
/// copy it per request (each copy has its own processor state) and set the
/// request's seed, length and stop strings in one call each:
///
/// ```
/// use decoding::config::GenerationConfig;
///
/// let shared = GenerationConfig { do_sample: Some(true), top_p: Some(0.9), ..Default::default() }
///     .build()?;
/// let request = shared.clone().with_seed(7).with_max_new_tokens(64).with_stop_strings(["\n\n"])?;
/// let options = request.generate_options(12, 0)?;
/// assert_eq!((options.seed(), options.max_new_tokens()), (Some(7), 64));
/// assert_eq!(options.stop_strings(), ["\n\n"]);
/// assert_eq!(shared.options().seed(), None); // the shared plan is unchanged
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug)]
pub struct DecodingPlan {
    pipeline: Pipeline,
    sampler: BoxedSampler,
    sampler_name: &'static str,
    options: GenerateOptions,
    length: LengthLimit,
    n: usize,
    stages: Vec<String>,
    beam_search: Option<BeamSearch>,
    guidance_scale: Option<f32>,
    prompt_lookup: Option<PromptLookup>,
    best_of: usize,
}

impl DecodingPlan {
    /// The beam search to run instead of sampling, when the configuration
    /// asks for one (transformers' `num_beams > 1`): run it with
    /// [`Generator::beam_search`] on a generator built from this plan (its
    /// pipeline and options; the sampler is not used).
    ///
    /// ```
    /// use decoding::config::GenerationConfig;
    /// use decoding::EarlyStopping;
    ///
    /// let config = GenerationConfig {
    ///     num_beams: Some(4),
    ///     length_penalty: Some(0.6),
    ///     early_stopping: Some(EarlyStopping::Done),
    ///     num_return_sequences: Some(2),
    ///     ..Default::default()
    /// };
    /// let plan = config.build()?;
    /// let search = plan.beam_search().expect("a beam search");
    /// assert_eq!((search.num_beams(), search.num_return_sequences()), (4, 2));
    /// assert_eq!(plan.to_string(), "identity => BeamSearch(num_beams=4, length_penalty=0.6, early_stopping=Done, num_return_sequences=2)");
    /// # Ok::<(), decoding::Error>(())
    /// ```
    pub fn beam_search(&self) -> Option<&BeamSearch> {
        self.beam_search.as_ref()
    }

    pub(crate) fn with_beam_search(mut self, search: BeamSearch) -> Self {
        self.beam_search = Some(search);
        self
    }

    /// The classifier-free guidance scale the configuration asks for
    /// (`guidance_scale`, unset when 1): the run wraps its conditional and
    /// unconditional models in a
    /// [`ClassifierFreeGuidance`](crate::ClassifierFreeGuidance) with it,
    /// since guidance needs a second model the plan does not hold.
    pub fn guidance_scale(&self) -> Option<f32> {
        self.guidance_scale
    }

    /// The prompt lookup decoding the configuration asks for
    /// (`prompt_lookup_num_tokens`, `max_matching_ngram_size`), verified
    /// greedily or by sampling as the plan's sampler: run it with
    /// [`Generator::generate_prompt_lookup`].
    pub fn prompt_lookup(&self) -> Option<&PromptLookup> {
        self.prompt_lookup.as_ref()
    }

    /// The samples to draw and return: [`DecodingPlan::n`] returned out of
    /// `best_of` drawn (OpenAI's and vLLM's `best_of`; `n` unless set), for
    /// [`Generator::generate_choices`](crate::Generator::generate_choices).
    pub fn choices(&self) -> crate::Choices {
        crate::Choices::new(self.n)
            .and_then(|c| c.with_best_of(self.best_of))
            .expect("a plan's n is at least 1 and its best_of at least n")
    }

    pub(crate) fn with_best_of(mut self, best_of: usize) -> Result<Self, Error> {
        if best_of < self.n || self.beam_search.is_some() && best_of > 1 {
            return Err(Error::invalid("best_of", "at least n, without beam search", best_of));
        }
        self.best_of = best_of;
        Ok(self)
    }

    pub(crate) fn with_guidance_scale(mut self, scale: Option<f32>) -> Self {
        self.guidance_scale = scale;
        self
    }

    pub(crate) fn with_prompt_lookup(mut self, lookup: Option<PromptLookup>) -> Self {
        self.prompt_lookup = lookup;
        self
    }

    /// The processors, in order.
    pub fn pipeline(&self) -> &Pipeline {
        &self.pipeline
    }

    /// The sampler.
    pub fn sampler(&self) -> &BoxedSampler {
        &self.sampler
    }

    /// Whether the sampler is greedy (no randomness).
    pub fn is_greedy(&self) -> bool {
        self.sampler_name == "Greedy"
    }

    /// The options of choice 0 for an empty prompt (for a
    /// [`LengthLimit::Total`] limit, `max_new_tokens` is the whole limit).
    /// Use [`DecodingPlan::generate_options`] for a given prompt.
    pub fn options(&self) -> &GenerateOptions {
        &self.options
    }

    /// Replaces the base options (to set a vocabulary size or another seed,
    /// for example); [`DecodingPlan::generate_options`] derives from them.
    pub fn set_options(&mut self, options: GenerateOptions) {
        self.options = options;
    }

    /// The plan with the request's seed (choice `i` uses `seed + i`); see
    /// [`GenerateOptions`] for what a seed fixes.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.options.set_seed(seed);
        self
    }

    /// The plan with a limit of `n` new tokens, whatever limit the
    /// configuration had (`max_new_tokens` or `max_length`).
    pub fn with_max_new_tokens(mut self, n: usize) -> Self {
        self.length = LengthLimit::NewTokens(n);
        self
    }

    /// The plan with the request's stop strings instead of the
    /// configuration's (an empty list removes them).
    ///
    /// # Errors
    ///
    /// As [`GenerateOptionsBuilder::build`](crate::GenerateOptionsBuilder::build):
    /// an empty stop string is an [`Error::InvalidParameter`].
    pub fn with_stop_strings<I>(mut self, strings: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.options =
            self.options.to_builder().clear_stop_strings().stop_strings(strings).build()?;
        Ok(self)
    }

    /// The length limit.
    pub fn length(&self) -> LengthLimit {
        self.length
    }

    /// The number of choices to generate per prompt (at least 1).
    pub fn n(&self) -> usize {
        self.n
    }

    /// One label per stage, in the order the stages run.
    pub fn stages(&self) -> &[String] {
        &self.stages
    }

    /// The options for choice `choice` (from 0) of a prompt of `prompt_len`
    /// tokens: `max_new_tokens` from the length limit, the seed advanced
    /// by `choice` (wrapping) when the plan has one (without, every run
    /// draws a fresh seed and reports it in its
    /// [`Generation::seed`](crate::Generation::seed)).
    ///
    /// # Errors
    ///
    /// As [`LengthLimit::max_new_tokens`]; [`Error::InvalidParameter`]
    /// (`n`) when `choice >= n`.
    pub fn generate_options(
        &self,
        prompt_len: usize,
        choice: usize,
    ) -> Result<GenerateOptions, Error> {
        if choice >= self.n {
            return Err(Error::invalid(
                "n",
                "greater than the choice index",
                format_args!("{} for choice {choice}", self.n),
            ));
        }
        let max_new_tokens = self.length.max_new_tokens(prompt_len)?;
        let mut b = self.options.to_builder().max_new_tokens(max_new_tokens);
        if let Some(seed) = self.options.seed() {
            b = b.seed(seed.wrapping_add(choice as u64));
        }
        b.build()
    }

    /// The pipeline, the sampler and the base options.
    pub fn into_parts(self) -> (Pipeline, BoxedSampler, GenerateOptions) {
        (self.pipeline, self.sampler, self.options)
    }

    /// A [`Generator`] for choice 0 of a prompt of `prompt_len` tokens.
    ///
    /// # Errors
    ///
    /// As [`DecodingPlan::generate_options`].
    pub fn into_generator(
        self,
        prompt_len: usize,
    ) -> Result<Generator<Pipeline, BoxedSampler>, Error> {
        let options = self.generate_options(prompt_len, 0)?;
        Ok(Generator::new(self.pipeline, self.sampler, options))
    }
}

/// A copy with its own processor state (every stage is copied with its
/// state).
impl Clone for DecodingPlan {
    fn clone(&self) -> Self {
        let pipeline = self
            .pipeline
            .try_clone()
            .expect("every stage of a plan is a Copyable, which copies itself");
        DecodingPlan {
            pipeline,
            sampler: sampler_named(self.sampler_name),
            sampler_name: self.sampler_name,
            options: self.options.clone(),
            length: self.length,
            n: self.n,
            stages: self.stages.clone(),
            beam_search: self.beam_search,
            guidance_scale: self.guidance_scale,
            prompt_lookup: self.prompt_lookup,
            best_of: self.best_of,
        }
    }
}

fn sampler_named(name: &str) -> BoxedSampler {
    if name == "Greedy" {
        Box::new(crate::sampler::Greedy::new())
    } else {
        Box::new(crate::sampler::Categorical::new())
    }
}

/// `stage -> stage -> ... => Sampler` (`identity` when there is no stage).
impl fmt::Display for DecodingPlan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(scale) = self.guidance_scale {
            write!(f, "ClassifierFreeGuidance({scale}) -> ")?;
        }
        if self.stages.is_empty() {
            f.write_str("identity")?;
        } else {
            f.write_str(&self.stages.join(" -> "))?;
        }
        match &self.beam_search {
            Some(b) => write!(
                f,
                " => BeamSearch(num_beams={}, length_penalty={}, early_stopping={:?}, num_return_sequences={}{})",
                b.num_beams(),
                b.length_penalty(),
                b.early_stopping(),
                b.num_return_sequences(),
                if b.samples() { ", sampled" } else { "" }
            )?,
            None => write!(f, " => {}", self.sampler_name)?,
        }
        if self.best_of > self.n {
            write!(f, " with Choices(n={}, best_of={})", self.n, self.best_of)?;
        }
        if let Some(l) = &self.prompt_lookup {
            write!(
                f,
                " with PromptLookup(num_tokens={}, max_ngram={})",
                l.draft_tokens(),
                l.max_ngram()
            )?;
        }
        Ok(())
    }
}

/// A stage of a plan: copies itself through `Clone` whether or not its
/// own `clone_boxed` does, so `Clone for DecodingPlan` cannot fail. It is
/// transparent otherwise (`Debug` included).
#[derive(Clone)]
struct Copyable<P>(P);

impl<P: fmt::Debug> fmt::Debug for Copyable<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<P: LogitsProcessor + Clone + Send + 'static> LogitsProcessor for Copyable<P> {
    fn process(
        &mut self,
        ctx: &crate::Context<'_>,
        scores: &mut crate::Scores<'_>,
    ) -> Result<(), Error> {
        self.0.process(ctx, scores)
    }
    fn accept(&mut self, token: crate::TokenId) {
        self.0.accept(token)
    }
    fn reset(&mut self) {
        self.0.reset()
    }
    fn is_complete(&self) -> bool {
        self.0.is_complete()
    }
    fn clone_boxed(&self) -> Option<Box<dyn LogitsProcessor + Send>> {
        Some(Box::new(self.clone()))
    }
}

/// Accumulates stages and their labels.
#[derive(Default)]
pub(crate) struct PlanBuilder {
    pipeline: Pipeline,
    stages: Vec<String>,
}

impl PlanBuilder {
    /// `Clone` so that the plan can copy its stages (see `Clone for
    /// DecodingPlan`).
    pub(crate) fn push(
        &mut self,
        stage: impl LogitsProcessor + Clone + Send + 'static,
        label: String,
    ) {
        self.pipeline.push(Copyable(stage));
        self.stages.push(label);
    }

    pub(crate) fn finish(
        self,
        greedy: bool,
        options: GenerateOptions,
        length: LengthLimit,
        n: usize,
    ) -> DecodingPlan {
        let sampler_name = if greedy { "Greedy" } else { "Categorical" };
        let sampler = sampler_named(sampler_name);
        DecodingPlan {
            pipeline: self.pipeline,
            sampler,
            sampler_name,
            options,
            length,
            n,
            stages: self.stages,
            beam_search: None,
            guidance_scale: None,
            prompt_lookup: None,
            best_of: n,
        }
    }
}
