//! The generation loop: prompt ids, a model, a processor pipeline and a
//! sampler in; generated ids, text and log-probabilities out.

mod batch;
mod beam;
mod beam_model;
mod beam_options;
mod choices;
mod criterion;
mod detokenizer;
mod error;
mod logprobs;
mod options;
mod output;
mod prompt_logprobs;
mod prompt_lookup;
mod sequence;
mod speculative_decoding;
mod stop;
mod stream;
mod text;

pub use self::batch::{
    BatchEntry, BatchInput, BatchLanguageModel, BatchResults, BatchSequence, BatchSpan,
    generate_batch,
};
pub use self::beam::BeamHypothesis;
pub use self::beam_model::BeamLanguageModel;
pub use self::beam_options::{BeamSearch, EarlyStopping};
pub use self::choices::{Choice, Choices};
pub use self::criterion::StoppingCriterion;
pub use self::detokenizer::{Detokenizer, UnknownToken};
pub use self::error::GenerateError;
pub use self::options::{GenerateOptions, GenerateOptionsBuilder, LogprobMode};
pub use self::output::{FinishReason, Generation, Step, TokenLogprobs, TopLogprob};
pub use self::prompt_lookup::{LookupMatch, PromptLookup};
pub use self::speculative_decoding::{SpeculativeOptions, SpeculativeStats, Verification};
pub use self::stream::Stream;

use self::sequence::{Outcome, Sequence};
use crate::sampler::Categorical;
use crate::{LanguageModel, LogitsProcessor, Pipeline, Sampler, TokenId};

/// Drives a [`LanguageModel`]: feeds it the prompt, runs the processors and
/// the sampler on each row of scores it writes, appends the chosen token,
/// and repeats until a stop condition holds.
///
/// A generator owns its processor (usually a [`Pipeline`]), its sampler and
/// its [`GenerateOptions`]; the model is borrowed for one run. Each run
/// starts afresh: the model is [`reset`](LanguageModel::reset), the
/// processor is [`reset`](LogitsProcessor::reset), and the generator's own
/// random number generator is seeded from the options' seed. So the same
/// prompt and options give the same tokens, on every platform and whatever
/// other generators do in the same process.
///
/// # The loop
///
/// Step `i` (from 0) calls the model once: with the whole prompt at step 0,
/// then with the one token generated at step `i - 1` (the incremental
/// contract of [`LanguageModel`], so a KV-cached model does only new work).
/// The row it writes is processed in place (no copy), the sampler chooses a
/// token, the processor is told the token ([`LogitsProcessor::accept`]),
/// and the stop conditions are checked (see [`GenerateOptions`]). There is
/// no model call after the last token, and none at all when
/// `max_new_tokens` is 0.
///
/// # Empty prompts
///
/// An empty prompt is an error ([`GenerateError::EmptyPrompt`]): a model
/// cannot score a position after nothing. Put a BOS token in the prompt to
/// generate from scratch.
///
/// # Errors and partial output
///
/// Model, processor, sampler and detokenizer errors come back as a
/// [`GenerateError`] naming the step. The ids generated before it stay
/// available from [`Generator::generated`] until the next run.
///
/// # Performance
///
/// Once the buffers have grown (the first run), a step allocates nothing
/// unless log-probabilities, top-N alternatives or text were requested: the
/// row buffer, the live-set scratch and the id buffer (reserved for
/// `max_new_tokens` up front) are reused. Raw log-probabilities cost one
/// copy of the row per step plus one pass over it; top-N alternatives a
/// bounded heap (never a sort of the vocabulary).
///
/// # Example
///
/// Greedy generation, the loop every notebook writes by hand (encode, run
/// the model, take the last logits, argmax, append, repeat), with a toy
/// model whose favourite continuation of token `t` is `t + 1`:
///
/// ```
/// use decoding::sampler::Greedy;
/// use decoding::{GenerateOptions, Generator, LanguageModel, Pipeline, TokenId};
///
/// const VOCAB: [&str; 8] = ["My", " favourite", " movie", " is", " The", " Matrix", ",", " and"];
///
/// /// A bigram model: after token `t`, token `t + 1` scores 3, the rest 0.
/// struct Toy { last: Option<TokenId> }
///
/// impl LanguageModel for Toy {
///     type Error = std::convert::Infallible;
///     fn vocab_size(&self) -> usize { VOCAB.len() }
///     fn forward(&mut self, tokens: &[TokenId], _position: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
///         self.last = tokens.last().copied().or(self.last);
///         logits.fill(0.0);
///         if let Some(t) = self.last {
///             logits[(t as usize + 1) % VOCAB.len()] = 3.0;
///         }
///         Ok(())
///     }
///     fn reset(&mut self) -> Result<(), Self::Error> { self.last = None; Ok(()) }
/// }
///
/// let prompt = [0, 1, 2, 3]; // "My favourite movie is"
/// let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(4));
/// let out = generator.generate_text(&mut Toy { last: None }, &VOCAB, &prompt)?;
/// assert_eq!(out.tokens, [4, 5, 6, 7]);
/// assert_eq!(out.text.as_deref(), Some(" The Matrix, and"));
/// # Ok::<(), decoding::GenerateError<std::convert::Infallible>>(())
/// ```
#[derive(Debug)]
pub struct Generator<P = Pipeline, S = Categorical> {
    processor: P,
    sampler: S,
    options: GenerateOptions,
    /// The model's row of scores, reused from step to step.
    row: Vec<f32>,
    seq: Sequence,
    /// Speculative runs' buffers and statistics (empty until the first).
    speculative: speculative_decoding::SpeculativeScratch,
}

impl<P, S> Generator<P, S> {
    /// A generator with its processor, sampler and options.
    pub fn new(processor: P, sampler: S, options: GenerateOptions) -> Self {
        Generator {
            processor,
            sampler,
            options,
            row: Vec::new(),
            seq: Sequence::default(),
            speculative: Default::default(),
        }
    }

    /// The options.
    pub fn options(&self) -> &GenerateOptions {
        &self.options
    }

    /// Replaces the options for the next runs.
    pub fn set_options(&mut self, options: GenerateOptions) {
        self.options = options;
    }

    /// The processor.
    pub fn processor(&self) -> &P {
        &self.processor
    }

    /// The processor, mutably.
    pub fn processor_mut(&mut self) -> &mut P {
        &mut self.processor
    }

    /// The sampler.
    pub fn sampler(&self) -> &S {
        &self.sampler
    }

    /// The sampler, mutably.
    pub fn sampler_mut(&mut self) -> &mut S {
        &mut self.sampler
    }

    /// The processor, the sampler and the options.
    pub fn into_parts(self) -> (P, S, GenerateOptions) {
        (self.processor, self.sampler, self.options)
    }

    /// The ids generated by the latest run so far: all of them after it
    /// finished, those before the failing step after an error.
    pub fn generated(&self) -> &[TokenId] {
        self.seq.generated()
    }

    /// Why the latest run stopped (`None` while it runs or after an error).
    pub fn finish_reason(&self) -> Option<crate::FinishReason> {
        self.seq.finish_reason()
    }

    /// The seed of the latest run's random number generator (the options'
    /// seed, or the fresh one drawn for it; see [`GenerateOptions`]).
    pub fn seed(&self) -> u64 {
        self.seq.seed()
    }

    /// Sets the stopping criterion asked after every token of the next runs
    /// (replacing any earlier one); see [`StoppingCriterion`]. It is
    /// [reset](StoppingCriterion::reset) when a run starts.
    pub fn set_stopping_criterion(&mut self, criterion: impl StoppingCriterion + Send + 'static) {
        self.seq.criterion = Some(criterion::Criterion(Box::new(criterion)));
    }

    /// Removes the stopping criterion.
    pub fn clear_stopping_criterion(&mut self) {
        self.seq.criterion = None;
    }

    /// Sets the clock that
    /// [`GenerateOptionsBuilder::max_time`](crate::GenerateOptionsBuilder::max_time)
    /// is measured with (by default [`Instant::now`](std::time::Instant::now)):
    /// a run's time is `clock()` after a step minus `clock()` when the run
    /// started. A clock of your own makes a time limit testable, or counts
    /// something else than wall-clock time.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU64, Ordering};
    /// use std::time::{Duration, Instant};
    /// use decoding::sampler::Greedy;
    /// use decoding::{FinishReason, GenerateOptions, Generator, LanguageModel, Pipeline, TokenId};
    ///
    /// /// A model that takes 30 ms of the shared clock per call.
    /// struct Slow { millis: Arc<AtomicU64> }
    /// impl LanguageModel for Slow {
    ///     type Error = std::convert::Infallible;
    ///     fn vocab_size(&self) -> usize { 4 }
    ///     fn forward(&mut self, _: &[TokenId], _: usize, row: &mut [f32]) -> Result<(), Self::Error> {
    ///         self.millis.fetch_add(30, Ordering::SeqCst);
    ///         row.fill(0.0);
    ///         Ok(())
    ///     }
    ///     fn reset(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// }
    ///
    /// let millis = Arc::new(AtomicU64::new(0));
    /// let start = Instant::now();
    /// let options = GenerateOptions::builder(100).max_time(Duration::from_millis(100)).build()?;
    /// let mut generator = Generator::new(Pipeline::new(), Greedy, options);
    /// let clock = Arc::clone(&millis);
    /// generator.set_clock(Arc::new(move || start + Duration::from_millis(clock.load(Ordering::SeqCst))));
    /// let out = generator.generate(&mut Slow { millis }, &[0])?;
    /// assert_eq!(out.tokens.len(), 4); // 4 × 30 ms ≥ 100 ms
    /// assert_eq!(out.finish_reason, FinishReason::Time);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_clock(
        &mut self,
        clock: std::sync::Arc<dyn Fn() -> std::time::Instant + Send + Sync>,
    ) {
        self.seq.clock = criterion::Clock::new(clock);
    }

    /// The prompt log-probabilities of the latest run, once its first step
    /// scored them (empty before, and when they were not requested).
    pub(crate) fn prompt_logprobs(&self) -> &[crate::TokenLogprobs] {
        self.seq.prompt_logprobs()
    }

    /// [`GenerateError::Unsupported`] when the options ask for prompt
    /// log-probabilities of a driver that feeds the prompt its own way.
    pub(crate) fn refuse_prompt_logprobs<E>(
        &self,
        what: &'static str,
    ) -> Result<(), GenerateError<E>> {
        match self.options.prompt_logprobs() {
            Some(_) => Err(GenerateError::Unsupported { what }),
            None => Ok(()),
        }
    }
}

impl<P: LogitsProcessor, S: Sampler> Generator<P, S> {
    /// Generates from `prompt` until a stop condition holds.
    ///
    /// # Errors
    ///
    /// [`GenerateError::EmptyPrompt`], [`GenerateError::MissingDetokenizer`]
    /// (stop strings need [`Generator::generate_text`]),
    /// [`GenerateError::VocabMismatch`] before the first step; during a step,
    /// the model's error ([`GenerateError::Model`]), a processor's or the
    /// sampler's ([`GenerateError::Decoding`]: NaN or `+inf` scores, every
    /// token masked, ...) or [`GenerateError::LogitsLength`].
    pub fn generate<M>(
        &mut self,
        model: &mut M,
        prompt: &[TokenId],
    ) -> Result<crate::Generation, GenerateError<M::Error>>
    where
        M: LanguageModel + ?Sized,
    {
        self.run(model, None, prompt)
    }

    /// [`Generator::generate`], also decoding the generated text with
    /// `detokenizer` (needed for stop strings).
    ///
    /// # Errors
    ///
    /// As [`Generator::generate`], plus [`GenerateError::UnknownToken`].
    pub fn generate_text<M>(
        &mut self,
        model: &mut M,
        detokenizer: &dyn Detokenizer,
        prompt: &[TokenId],
    ) -> Result<crate::Generation, GenerateError<M::Error>>
    where
        M: LanguageModel + ?Sized,
    {
        self.run(model, Some(detokenizer), prompt)
    }

    /// A run as an iterator of steps (see [`Stream`]). The prompt is checked
    /// here; the model is first called by the first `next`.
    ///
    /// # Errors
    ///
    /// The checks of [`Generator::generate`] that happen before the first
    /// step. The iterator yields the errors of the steps.
    pub fn stream<'a, M>(
        &'a mut self,
        model: &'a mut M,
        prompt: &[TokenId],
    ) -> Result<Stream<'a, M, P, S>, GenerateError<M::Error>>
    where
        M: LanguageModel + ?Sized,
    {
        self.start(model, None, prompt, false)?;
        Ok(Stream { generator: self, model, detokenizer: None })
    }

    /// [`Generator::stream`] with text: each [`Step`] carries the text it
    /// releases.
    ///
    /// # Errors
    ///
    /// As [`Generator::stream`].
    pub fn stream_text<'a, M>(
        &'a mut self,
        model: &'a mut M,
        detokenizer: &'a dyn Detokenizer,
        prompt: &[TokenId],
    ) -> Result<Stream<'a, M, P, S>, GenerateError<M::Error>>
    where
        M: LanguageModel + ?Sized,
    {
        self.start(model, Some(detokenizer), prompt, false)?;
        Ok(Stream { generator: self, model, detokenizer: Some(detokenizer) })
    }

    fn run<M>(
        &mut self,
        model: &mut M,
        detokenizer: Option<&dyn Detokenizer>,
        prompt: &[TokenId],
    ) -> Result<crate::Generation, GenerateError<M::Error>>
    where
        M: LanguageModel + ?Sized,
    {
        self.start(model, detokenizer, prompt, true)?;
        while let Some(outcome) = self.advance(model, detokenizer) {
            outcome?;
        }
        Ok(self.seq.take_generation(&self.options))
    }

    /// Checks and resets everything for a run on `model`.
    fn start<M>(
        &mut self,
        model: &mut M,
        detokenizer: Option<&dyn Detokenizer>,
        prompt: &[TokenId],
        collect: bool,
    ) -> Result<(), GenerateError<M::Error>>
    where
        M: LanguageModel + ?Sized,
    {
        let vocab = model.vocab_size();
        self.prepare(vocab, prompt, detokenizer.is_some(), collect)?;
        if let Err(source) = model.reset() {
            self.seq.fail();
            return Err(GenerateError::Model { step: 0, source });
        }
        // The model writes the whole row at every call; no need to clear it.
        self.row.resize(vocab, 0.0);
        Ok(())
    }

    /// The model-independent part of [`Generator::start`] (batches reset
    /// their model per sequence).
    pub(crate) fn prepare<E>(
        &mut self,
        model_vocab: usize,
        prompt: &[TokenId],
        has_detokenizer: bool,
        collect: bool,
    ) -> Result<(), GenerateError<E>> {
        self.seq.start(&self.options, prompt, has_detokenizer, collect, model_vocab)?;
        self.processor.reset();
        Ok(())
    }

    /// Runs one step: `None` once the run is over.
    fn advance<M>(
        &mut self,
        model: &mut M,
        detokenizer: Option<&dyn Detokenizer>,
    ) -> Option<Result<Outcome, GenerateError<M::Error>>>
    where
        M: LanguageModel + ?Sized,
    {
        if self.seq.is_over() {
            return None;
        }
        let step = self.seq.generated_len();
        let actual = model.vocab_size();
        if actual != self.row.len() {
            self.seq.fail();
            return Some(Err(GenerateError::LogitsLength {
                step,
                expected: self.row.len(),
                actual,
            }));
        }
        let position = self.seq.fed_len();
        match self.options.prompt_logprobs() {
            Some(top_n) if position == 0 => {
                let fed = self.seq.feed_prompt_scored(model, &self.options, top_n, &mut self.row);
                if let Err(e) = fed {
                    return Some(Err(e));
                }
            }
            _ => {
                let input = self.seq.pending_input();
                if let Err(source) = model.forward(input, position, &mut self.row) {
                    self.seq.fail();
                    return Some(Err(GenerateError::Model { step, source }));
                }
            }
        }
        self.seq.mark_fed();
        Some(self.seq.step(
            &mut self.processor,
            &mut self.sampler,
            &self.options,
            &mut self.row,
            detokenizer,
        ))
    }

    /// Starts a run whose model calls the caller makes: a serving engine
    /// that decodes many runs in one batched model call per step (continuous
    /// batching), each run joining and leaving the batch on its own.
    ///
    /// The checks and the resets are [`Generator::stream`]'s (the processor
    /// is reset, the random number generator seeded from the options' seed),
    /// without a model: then, while [`Generator::is_running`], feed the model
    /// [`Generator::pending_input`] (the whole prompt first, then the last
    /// generated id) and hand the row of scores it writes to
    /// [`Generator::step_row`]. The tokens, text and log-probabilities are
    /// exactly those of [`Generator::stream_text`] on a model that writes
    /// the same rows, whatever else the caller's batch holds. `with_text`
    /// says whether the steps decode text (and so whether stop strings can
    /// apply); pass the same detokenizer to every step.
    ///
    /// # Errors
    ///
    /// As [`Generator::stream`]: [`GenerateError::EmptyPrompt`],
    /// [`GenerateError::MissingDetokenizer`] (stop strings without text),
    /// [`GenerateError::VocabMismatch`] (`vocab_size` is the model's).
    ///
    /// # Example
    ///
    /// ```
    /// use decoding::sampler::Categorical;
    /// use decoding::{GenerateOptions, Generator, LanguageModel, Pipeline, TokenId};
    ///
    /// /// Scores favour `last + 1`.
    /// struct Toy { last: TokenId }
    /// impl LanguageModel for Toy {
    ///     type Error = std::convert::Infallible;
    ///     fn vocab_size(&self) -> usize { 8 }
    ///     fn forward(&mut self, tokens: &[TokenId], _position: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
    ///         self.last = *tokens.last().unwrap_or(&self.last);
    ///         logits.fill(0.0);
    ///         logits[(self.last as usize + 1) % 8] = 2.0;
    ///         Ok(())
    ///     }
    ///     fn reset(&mut self) -> Result<(), Self::Error> { self.last = 0; Ok(()) }
    /// }
    ///
    /// let options = GenerateOptions::builder(6).seed(3).build()?;
    /// let mut generator = Generator::new(Pipeline::new(), Categorical::new(), options.clone());
    /// let mut model = Toy { last: 0 };
    /// let mut row = vec![0.0; 8];
    /// generator.begin::<std::convert::Infallible>(8, &[1, 2], false)?;
    /// let mut tokens = Vec::new();
    /// while generator.is_running() {
    ///     model.forward(generator.pending_input(), generator.pending_position(), &mut row)?;
    ///     tokens.push(generator.step_row::<std::convert::Infallible>(&mut row, None)?.token);
    /// }
    /// // The same tokens as the generator's own loop:
    /// let alone = Generator::new(Pipeline::new(), Categorical::new(), options)
    ///     .generate(&mut Toy { last: 0 }, &[1, 2])?;
    /// assert_eq!(tokens, alone.tokens);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn begin<E>(
        &mut self,
        vocab_size: usize,
        prompt: &[TokenId],
        with_text: bool,
    ) -> Result<(), GenerateError<E>> {
        self.refuse_prompt_logprobs("prompt log-probabilities in a run driven by `begin`")?;
        self.prepare(vocab_size, prompt, with_text, false)
    }

    /// Whether the run started by [`Generator::begin`] goes on (it has not
    /// finished and no step failed).
    pub fn is_running(&self) -> bool {
        !self.seq.is_over()
    }

    /// The ids the model has not been fed yet: the whole prompt before the
    /// first step, then the id the latest step generated.
    pub fn pending_input(&self) -> &[TokenId] {
        self.seq.pending_input()
    }

    /// The position of the first id of [`Generator::pending_input`] in the
    /// sequence (the number of ids the model has been fed): what
    /// [`LanguageModel::forward`] takes with them.
    pub fn pending_position(&self) -> usize {
        self.seq.fed_len()
    }

    /// One step of a run started by [`Generator::begin`], on the model's
    /// `row` of scores after [`Generator::pending_input`] (processed in
    /// place): the token, the text it releases, its log-probabilities when
    /// requested, and on the last step why the run stopped.
    ///
    /// # Errors
    ///
    /// A processor's or the sampler's error ([`GenerateError::Decoding`]),
    /// [`GenerateError::UnknownToken`] from the detokenizer; the run is over
    /// then. Stepping a run that is over is [`GenerateError::Decoding`] too.
    pub fn step_row<E>(
        &mut self,
        row: &mut [f32],
        detokenizer: Option<&dyn Detokenizer>,
    ) -> Result<Step, GenerateError<E>> {
        let step = self.seq.generated_len();
        if self.seq.is_over() {
            return Err(GenerateError::Decoding {
                step,
                source: crate::Error::invalid("step", "a step of a running run", "a finished run"),
            });
        }
        let o = self.step_on_row(row, detokenizer)?;
        Ok(Step {
            index: o.index,
            token: o.token,
            text: self.seq.text_slice(o.text).to_owned(),
            logprobs: o.logprobs,
            scores: o.scores,
            logits: o.logits,
            finish_reason: o.finish,
        })
    }

    /// One step of a batched run on a row the batch driver filled.
    pub(crate) fn step_on_row<E>(
        &mut self,
        row: &mut [f32],
        detokenizer: Option<&dyn Detokenizer>,
    ) -> Result<Outcome, GenerateError<E>> {
        self.seq.mark_fed();
        self.seq.step(&mut self.processor, &mut self.sampler, &self.options, row, detokenizer)
    }

    pub(crate) fn is_over(&self) -> bool {
        self.seq.is_over()
    }

    pub(crate) fn fail(&mut self) {
        self.seq.fail();
    }

    pub(crate) fn generated_len(&self) -> usize {
        self.seq.generated_len()
    }

    pub(crate) fn take_generation(&mut self) -> crate::Generation {
        self.seq.take_generation(&self.options)
    }
}
