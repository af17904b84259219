//! `GenerateOptions`: how long a run may go, when it stops, what it records.

use std::time::Duration;

use crate::{Error, TokenId};

/// Which log-probabilities a run records for every generated token.
///
/// - **Raw**: `log_softmax` of the model's scores, before any processor
///   (restricted to the tokenizer's vocabulary when
///   [`GenerateOptionsBuilder::vocab_size`] is set, and before the
///   `min_new_tokens` EOS mask). This is what the model believes, and what
///   vLLM reports by default (`raw_logprobs`).
/// - **Processed**: the log-probability under the distribution the sampler
///   actually drew from (after the whole processor pipeline), as the
///   [`Sampler`](crate::Sampler) reports it. A greedy run reports the
///   tempered, truncated probability here.
///
/// Both use the natural logarithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogprobMode {
    /// Raw log-probabilities only.
    Raw,
    /// Processed log-probabilities only.
    Processed,
    /// Both kinds.
    Both,
}

impl LogprobMode {
    /// Whether raw log-probabilities are recorded.
    pub fn raw(self) -> bool {
        matches!(self, LogprobMode::Raw | LogprobMode::Both)
    }

    /// Whether processed log-probabilities are recorded.
    pub fn processed(self) -> bool {
        matches!(self, LogprobMode::Processed | LogprobMode::Both)
    }
}

/// The validated options of a generation run.
///
/// Built with [`GenerateOptions::builder`] (everything) or
/// [`GenerateOptions::new`] (only a length limit). A value that exists is a
/// consistent one: [`GenerateOptionsBuilder::build`] rejects contradictions.
///
/// # Stop conditions
///
/// After each generated token the generator checks, in this order, and the
/// first that holds ends the run:
///
/// 1. the token is one of the **EOS ids** ([`FinishReason::Eos`]). The EOS
///    token is part of the generated ids; its text is not decoded;
/// 2. the generated ids end with one of the **stop sequences**
///    ([`FinishReason::StopSequence`]). Its ids are part of the generated
///    ids; the text is cut where the sequence's first token began;
/// 3. the generated text contains one of the **stop strings**
///    ([`FinishReason::StopString`]). Matching runs on the decoded text of
///    the generated tokens only (never the prompt), so a stop string that
///    spans several tokens is found. The text is cut where the stop string
///    begins (the stop string is not part of it); when several occur, the
///    one that starts first wins, then the one listed first. The ids keep
///    every generated token, including the one that completed the match;
/// 4. the processor's constraint is complete
///    ([`FinishReason::Constraint`]: a grammar whose output has ended, see
///    [`LogitsProcessor::is_complete`](crate::LogitsProcessor::is_complete));
/// 5. the generator's **stopping criterion** says stop
///    ([`FinishReason::Criterion`]; see
///    [`Generator::set_stopping_criterion`](crate::Generator::set_stopping_criterion));
/// 6. the run has taken **`max_time`** or longer since it started
///    ([`FinishReason::Time`], measured by the generator's clock,
///    [`Generator::set_clock`](crate::Generator::set_clock)); the token of
///    that step is kept, as transformers' `MaxTimeCriteria` keeps it;
/// 7. `max_new_tokens` tokens were generated ([`FinishReason::Length`]).
///
/// `max_new_tokens = 0` is valid: the run calls the model zero times and
/// returns no token.
///
/// # Minimum length
///
/// While fewer than `min_new_tokens` tokens are generated, every EOS id is
/// masked (`-inf`) before the processors run, as transformers'
/// `MinNewTokensLengthLogitsProcessor` does. Stop sequences and stop strings
/// are not affected.
///
/// # Padded vocabularies
///
/// [`GenerateOptionsBuilder::vocab_size`] gives the tokenizer's vocabulary
/// size `n`. When the model reports more scores than `n` (GPT-2 heads padded
/// to 50304 rows for 50257 tokens), ids `>= n` are cut off the row before any
/// processor runs: the same as masking them with `-inf`, so they are never
/// generated, never checked for NaN, and never counted in a log-probability.
/// A model with fewer than `n` scores is an error
/// ([`GenerateError::VocabMismatch`](crate::GenerateError::VocabMismatch)).
///
/// # Seed
///
/// Each run seeds its own [`DecodingRng`](crate::DecodingRng) with
/// [`rng_from_seed`](crate::rng_from_seed)`(seed)` when it starts.
///
/// - **A given seed is exact**: the same seed, model scores and options
///   give the same tokens, on every platform and in every build (ChaCha8
///   with a portable seed expansion; see [`DecodingRng`](crate::DecodingRng)).
/// - **No seed means a fresh one per run**, from the operating system
///   ([`fresh_seed`](crate::fresh_seed)), so two unseeded requests do not
///   get the same "random" answer.
/// - **The seed used is reported** in [`Generation::seed`](crate::Generation::seed)
///   (and [`Stream::seed`](crate::Stream::seed)): pass it back with
///   [`GenerateOptionsBuilder::seed`] to replay the run token for token.
///
/// # Example
///
/// ```
/// use decoding::{GenerateOptions, LogprobMode};
///
/// let options = GenerateOptions::builder(64)
///     .min_new_tokens(4)
///     .eos_token(50256)
///     .stop_string("\n\n")
///     .logprobs(LogprobMode::Both)
///     .top_logprobs(5)
///     .seed(1234)
///     .build()?;
/// assert_eq!(options.max_new_tokens(), 64);
/// assert!(GenerateOptions::builder(4).min_new_tokens(5).build().is_err());
/// # Ok::<(), decoding::Error>(())
/// ```
///
/// [`FinishReason::Eos`]: crate::FinishReason::Eos
/// [`FinishReason::StopSequence`]: crate::FinishReason::StopSequence
/// [`FinishReason::StopString`]: crate::FinishReason::StopString
/// [`FinishReason::Length`]: crate::FinishReason::Length
/// [`FinishReason::Constraint`]: crate::FinishReason::Constraint
/// [`FinishReason::Criterion`]: crate::FinishReason::Criterion
/// [`FinishReason::Time`]: crate::FinishReason::Time
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateOptions {
    max_new_tokens: usize,
    min_new_tokens: usize,
    eos: Vec<TokenId>,
    stop_sequences: Vec<Vec<TokenId>>,
    stop_strings: Vec<String>,
    seed: Option<u64>,
    vocab_size: Option<usize>,
    logprobs: Option<LogprobMode>,
    top_logprobs: usize,
    prompt_logprobs: Option<usize>,
    output_scores: bool,
    output_logits: bool,
    max_time: Option<Duration>,
}

impl GenerateOptions {
    /// Options that only limit the length: no EOS, no stop condition, no
    /// log-probabilities, a fresh seed per run.
    pub fn new(max_new_tokens: usize) -> Self {
        GenerateOptions {
            max_new_tokens,
            min_new_tokens: 0,
            eos: Vec::new(),
            stop_sequences: Vec::new(),
            stop_strings: Vec::new(),
            seed: None,
            vocab_size: None,
            logprobs: None,
            top_logprobs: 0,
            prompt_logprobs: None,
            output_scores: false,
            output_logits: false,
            max_time: None,
        }
    }

    /// A builder, starting from [`GenerateOptions::new`].
    pub fn builder(max_new_tokens: usize) -> GenerateOptionsBuilder {
        GenerateOptionsBuilder { options: GenerateOptions::new(max_new_tokens) }
    }

    /// Sets the seed (no other option depends on it, so nothing to check).
    pub(crate) fn set_seed(&mut self, seed: u64) {
        self.seed = Some(seed);
    }

    /// A builder holding these options, to change some of them.
    pub fn to_builder(&self) -> GenerateOptionsBuilder {
        GenerateOptionsBuilder { options: self.clone() }
    }

    /// The most tokens a run generates.
    pub fn max_new_tokens(&self) -> usize {
        self.max_new_tokens
    }

    /// The number of tokens generated before an EOS id may be.
    pub fn min_new_tokens(&self) -> usize {
        self.min_new_tokens
    }

    /// The EOS ids.
    pub fn eos_tokens(&self) -> &[TokenId] {
        &self.eos
    }

    /// The stop sequences of token ids.
    pub fn stop_sequences(&self) -> &[Vec<TokenId>] {
        &self.stop_sequences
    }

    /// The stop strings.
    pub fn stop_strings(&self) -> &[String] {
        &self.stop_strings
    }

    /// The seed of the run's random number generator, or `None` when each
    /// run draws a fresh one (reported in [`Generation::seed`](crate::Generation::seed)).
    pub fn seed(&self) -> Option<u64> {
        self.seed
    }

    /// The tokenizer's vocabulary size, when set.
    pub fn vocab_size(&self) -> Option<usize> {
        self.vocab_size
    }

    /// The log-probabilities recorded, if any.
    pub fn logprobs(&self) -> Option<LogprobMode> {
        self.logprobs
    }

    /// How many alternatives are recorded per token (0: none).
    pub fn top_logprobs(&self) -> usize {
        self.top_logprobs
    }

    /// Whether the prompt's log-probabilities are recorded, and with how
    /// many alternatives per prompt token (`Some(0)`: the tokens' own only).
    pub fn prompt_logprobs(&self) -> Option<usize> {
        self.prompt_logprobs
    }

    /// Whether every step's processed row of scores is recorded.
    pub fn output_scores(&self) -> bool {
        self.output_scores
    }

    /// Whether every step's raw row of scores (the model's) is recorded.
    pub fn output_logits(&self) -> bool {
        self.output_logits
    }

    /// The wall-clock limit of a run, if any.
    pub fn max_time(&self) -> Option<Duration> {
        self.max_time
    }

    /// Masks every EOS id (`-inf`) of the row of step `step` (0 for the
    /// first generated token) while fewer than `min_new_tokens` are
    /// generated: the rule of *Minimum length*, shared by every strategy.
    pub(crate) fn mask_early_eos(&self, step: usize, values: &mut [f32]) {
        if step < self.min_new_tokens {
            for &eos in &self.eos {
                if let Some(x) = values.get_mut(eos as usize) {
                    *x = f32::NEG_INFINITY;
                }
            }
        }
    }

    pub(crate) fn wants_raw(&self) -> bool {
        self.logprobs.is_some_and(LogprobMode::raw)
    }

    pub(crate) fn wants_processed(&self) -> bool {
        self.logprobs.is_some_and(LogprobMode::processed)
    }
}

/// Builds [`GenerateOptions`]; [`GenerateOptionsBuilder::build`] validates.
///
/// Setters take and return the builder by value, so they chain. Setters
/// named in the singular (`eos_token`, `stop_string`, ...) add one entry;
/// the plural ones add several.
#[derive(Debug, Clone)]
pub struct GenerateOptionsBuilder {
    options: GenerateOptions,
}

impl GenerateOptionsBuilder {
    /// The most tokens a run generates (0: none, and no model call).
    pub fn max_new_tokens(mut self, n: usize) -> Self {
        self.options.max_new_tokens = n;
        self
    }

    /// EOS ids are masked until `n` tokens are generated (default 0).
    pub fn min_new_tokens(mut self, n: usize) -> Self {
        self.options.min_new_tokens = n;
        self
    }

    /// Adds an EOS id.
    pub fn eos_token(mut self, id: TokenId) -> Self {
        self.options.eos.push(id);
        self
    }

    /// Adds several EOS ids (models such as Llama 3 have more than one).
    pub fn eos_tokens(mut self, ids: impl IntoIterator<Item = TokenId>) -> Self {
        self.options.eos.extend(ids);
        self
    }

    /// Adds a stop sequence of token ids.
    pub fn stop_sequence(mut self, ids: impl Into<Vec<TokenId>>) -> Self {
        self.options.stop_sequences.push(ids.into());
        self
    }

    /// Adds a stop string (needs a detokenizer at generation time).
    pub fn stop_string(mut self, s: impl Into<String>) -> Self {
        self.options.stop_strings.push(s.into());
        self
    }

    /// Removes the stop strings added so far (to replace those of options
    /// from [`GenerateOptions::to_builder`]).
    pub fn clear_stop_strings(mut self) -> Self {
        self.options.stop_strings.clear();
        self
    }

    /// Adds several stop strings.
    pub fn stop_strings<I>(mut self, strings: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.options.stop_strings.extend(strings.into_iter().map(Into::into));
        self
    }

    /// The seed (by default, a fresh one per run); all 64 bits matter.
    pub fn seed(mut self, seed: u64) -> Self {
        self.options.seed = Some(seed);
        self
    }

    /// The tokenizer's vocabulary size: model scores for ids `>= n` are cut
    /// off (see [`GenerateOptions`], *Padded vocabularies*).
    pub fn vocab_size(mut self, n: usize) -> Self {
        self.options.vocab_size = Some(n);
        self
    }

    /// Records log-probabilities of the given kind for every token.
    pub fn logprobs(mut self, mode: LogprobMode) -> Self {
        self.options.logprobs = Some(mode);
        self
    }

    /// Records the `n` most likely tokens of every step, of each kind that
    /// [`GenerateOptionsBuilder::logprobs`] enables (0: none).
    pub fn top_logprobs(mut self, n: usize) -> Self {
        self.options.top_logprobs = n;
        self
    }

    /// Records each prompt token's log-probability under the model given the
    /// tokens before it, with the `top_n` most likely tokens of each of
    /// those positions (vLLM's `prompt_logprobs`; 0: the prompt tokens'
    /// own only), in [`Generation::prompt_logprobs`](crate::Generation::prompt_logprobs).
    ///
    /// They are *raw* log-probabilities (`log_softmax` of the model's
    /// scores, restricted to [`GenerateOptionsBuilder::vocab_size`] when it
    /// is set; no processor has a say on the prompt), the scores of
    /// perplexity and of ranking prompts. The first prompt token has none
    /// (nothing before it to condition on).
    ///
    /// The model scores every prompt position: the run feeds the prompt
    /// through [`LanguageModel::forward_all`](crate::LanguageModel::forward_all)
    /// in chunks of 16 positions (a buffer of 16 rows, whatever the prompt's
    /// length), instead of one [`forward`](crate::LanguageModel::forward);
    /// the first step then samples from the last of those rows. Recorded by
    /// [`Generator::generate`](crate::Generator::generate),
    /// [`Generator::generate_text`](crate::Generator::generate_text) and the
    /// streams ([`Stream::prompt_logprobs`](crate::Stream::prompt_logprobs));
    /// the other drivers (batches, beam search, speculative decoding,
    /// [`Generator::begin`](crate::Generator::begin)) feed the prompt their
    /// own way and refuse these options
    /// ([`GenerateError::Unsupported`](crate::GenerateError::Unsupported)).
    ///
    /// ```
    /// use decoding::sampler::Greedy;
    /// use decoding::{GenerateOptions, Generator, LanguageModel, Pipeline, TokenId};
    ///
    /// /// After token `t`, token `t + 1` scores 2, the rest 0.
    /// struct Next(TokenId);
    /// impl LanguageModel for Next {
    ///     type Error = std::convert::Infallible;
    ///     fn vocab_size(&self) -> usize { 4 }
    ///     fn forward(&mut self, t: &[TokenId], _: usize, row: &mut [f32]) -> Result<(), Self::Error> {
    ///         self.0 = *t.last().unwrap();
    ///         row.fill(0.0);
    ///         row[(self.0 as usize + 1) % 4] = 2.0;
    ///         Ok(())
    ///     }
    ///     fn reset(&mut self) -> Result<(), Self::Error> { Ok(()) }
    /// }
    ///
    /// let options = GenerateOptions::builder(1).prompt_logprobs(1).build()?;
    /// let out = Generator::new(Pipeline::new(), Greedy, options).generate(&mut Next(0), &[0, 1, 3])?;
    /// let prompt = out.prompt_logprobs.unwrap();
    /// let p_likely = (2f64.exp() / (2f64.exp() + 3.0)).ln() as f32; // 1 after 0
    /// let p_other = (1.0 / (2f64.exp() + 3.0)).ln() as f32; // 3 after 1
    /// assert_eq!(prompt[0].raw, None);
    /// assert!((prompt[1].raw.unwrap() - p_likely).abs() < 1e-6);
    /// assert!((prompt[2].raw.unwrap() - p_other).abs() < 1e-6);
    /// assert_eq!(prompt[2].raw_top[0].token, 2); // what was likely after 1
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn prompt_logprobs(mut self, top_n: usize) -> Self {
        self.options.prompt_logprobs = Some(top_n);
        self
    }

    /// Records every step's processed row of scores: the row the sampler
    /// drew from, after every processor, with `-inf` at every token a
    /// processor removed (transformers' `output_scores`), in
    /// [`Generation::scores`](crate::Generation::scores) and
    /// [`Step::scores`](crate::Step::scores). One row of the vocabulary per
    /// step, copied: opt-in.
    pub fn output_scores(mut self, on: bool) -> Self {
        self.options.output_scores = on;
        self
    }

    /// Records every step's raw row of scores, as the model wrote it
    /// (restricted to [`GenerateOptionsBuilder::vocab_size`] when it is
    /// set; transformers' `output_logits`), in
    /// [`Generation::logits`](crate::Generation::logits) and
    /// [`Step::logits`](crate::Step::logits). One row per step: opt-in.
    pub fn output_logits(mut self, on: bool) -> Self {
        self.options.output_logits = on;
        self
    }

    /// A wall-clock limit (transformers' `max_time`): after each step, the
    /// run ends with [`FinishReason::Time`](crate::FinishReason::Time) when
    /// `limit` or more has passed since it started. The token of that step
    /// is kept. The time is read from the generator's clock
    /// ([`Generator::set_clock`](crate::Generator::set_clock), by default
    /// [`Instant::now`](std::time::Instant::now)). A limit of zero ends the
    /// run after its first token.
    pub fn max_time(mut self, limit: Duration) -> Self {
        self.options.max_time = Some(limit);
        self
    }

    /// Checks the options and returns them.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `min_new_tokens > max_new_tokens`, a
    /// stop string or a stop sequence is empty, `vocab_size` is 0, or
    /// `top_logprobs > 0` without [`GenerateOptionsBuilder::logprobs`];
    /// [`Error::TokenOutOfRange`] when an EOS id is not below `vocab_size`.
    pub fn build(self) -> Result<GenerateOptions, Error> {
        let o = self.options;
        if o.min_new_tokens > o.max_new_tokens {
            return Err(Error::invalid(
                "min_new_tokens",
                "at most max_new_tokens",
                format_args!("{} > {}", o.min_new_tokens, o.max_new_tokens),
            ));
        }
        if let Some(i) = o.stop_strings.iter().position(String::is_empty) {
            return Err(Error::invalid(
                "stop_strings",
                "non-empty strings",
                format_args!("\"\" at index {i}"),
            ));
        }
        if let Some(i) = o.stop_sequences.iter().position(Vec::is_empty) {
            return Err(Error::invalid(
                "stop_sequences",
                "non-empty sequences",
                format_args!("[] at index {i}"),
            ));
        }
        if let Some(n) = o.vocab_size {
            if n == 0 {
                return Err(Error::invalid("vocab_size", "at least 1", n));
            }
            if let Some(&id) = o.eos.iter().find(|&&id| id as usize >= n) {
                return Err(Error::TokenOutOfRange { id, vocab_size: n });
            }
        }
        if o.top_logprobs > 0 && o.logprobs.is_none() {
            return Err(Error::invalid(
                "top_logprobs",
                "0 unless logprobs are enabled",
                o.top_logprobs,
            ));
        }
        Ok(o)
    }
}
