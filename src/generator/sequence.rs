//! One sequence's run state and the decoding step shared by every driver
//! (single, streaming and batched), so that they produce the same tokens.

use std::ops::Range;
use std::time::Instant;

use super::criterion::{Clock, Criterion};
use super::detokenizer::{Detokenizer, UnknownToken};
use super::logprobs::{TopN, logprob, processed_normalizer, raw_normalizer};
use super::prompt_logprobs::score_prompt;
use super::stop;
use super::text::Text;
use crate::{
    Context, DecodingRng, FinishReason, GenerateError, GenerateOptions, Generation, LanguageModel,
    LogitsProcessor, Sampler, Scores, TokenId, TokenLogprobs, fresh_seed, rng_from_seed,
};

/// Output buffers are reserved up to this many tokens when a run starts;
/// longer runs grow them (amortized) past it.
const RESERVE_CAP: usize = 1 << 16;

/// What one step produced.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) index: usize,
    pub(crate) token: TokenId,
    /// Only when the run does not collect them itself (streaming).
    pub(crate) logprobs: Option<TokenLogprobs>,
    /// The text released by this step, as a byte range of the run's text.
    pub(crate) text: Range<usize>,
    pub(crate) finish: Option<FinishReason>,
    /// The processed and the raw row, when requested and not collected.
    pub(crate) scores: Option<Vec<f32>>,
    pub(crate) logits: Option<Vec<f32>>,
}

/// The state of one sequence's run, with the scratch buffers its steps reuse.
#[derive(Debug)]
pub(crate) struct Sequence {
    /// Prompt, then generated ids.
    tokens: Vec<TokenId>,
    prompt_len: usize,
    /// How many of `tokens` the model has been fed.
    fed: usize,
    rng: DecodingRng,
    /// The seed `rng` was built from (given, or fresh for this run).
    seed: u64,
    has_text: bool,
    text: Text,
    /// Whether log-probabilities are collected here (`generate`) or handed
    /// out with each step (streaming).
    collect: bool,
    logprobs: Vec<TokenLogprobs>,
    finish: Option<FinishReason>,
    failed: bool,
    live: Vec<TokenId>,
    raw: Vec<f32>,
    top: TopN,
    prompt_logprobs: Vec<TokenLogprobs>,
    /// The prompt's rows, a chunk at a time (prompt log-probabilities).
    prompt_rows: Vec<f32>,
    scores: Vec<Vec<f32>>,
    logits: Vec<Vec<f32>>,
    /// When the run reaches `max_time`, by `clock`.
    deadline: Option<Instant>,
    pub(crate) clock: Clock,
    pub(crate) criterion: Option<Criterion>,
}

impl Default for Sequence {
    fn default() -> Self {
        Sequence {
            tokens: Vec::new(),
            prompt_len: 0,
            fed: 0,
            rng: rng_from_seed(0),
            seed: 0,
            has_text: false,
            text: Text::default(),
            collect: false,
            logprobs: Vec::new(),
            finish: None,
            failed: false,
            live: Vec::new(),
            raw: Vec::new(),
            top: TopN::default(),
            prompt_logprobs: Vec::new(),
            prompt_rows: Vec::new(),
            scores: Vec::new(),
            logits: Vec::new(),
            deadline: None,
            clock: Clock::default(),
            criterion: None,
        }
    }
}

impl Sequence {
    /// Validates a new run and resets the state for it. `model_vocab` is the
    /// model's vocabulary size.
    pub(crate) fn start<E>(
        &mut self,
        options: &GenerateOptions,
        prompt: &[TokenId],
        has_detokenizer: bool,
        collect: bool,
        model_vocab: usize,
    ) -> Result<(), GenerateError<E>> {
        self.tokens.clear();
        self.prompt_len = 0;
        self.fed = 0;
        self.finish = None;
        self.failed = true;
        self.logprobs.clear();
        self.prompt_logprobs.clear();
        self.scores.clear();
        self.logits.clear();
        self.text.clear();
        if prompt.is_empty() {
            return Err(GenerateError::EmptyPrompt);
        }
        if !options.stop_strings().is_empty() && !has_detokenizer {
            return Err(GenerateError::MissingDetokenizer);
        }
        if let Some(n) = options.vocab_size() {
            if model_vocab < n {
                return Err(GenerateError::VocabMismatch { model: model_vocab, tokenizer: n });
            }
        }
        let max_new = options.max_new_tokens();
        let reserve = max_new.min(RESERVE_CAP);
        self.tokens.reserve(prompt.len() + reserve);
        self.tokens.extend_from_slice(prompt);
        self.prompt_len = prompt.len();
        self.seed = options.seed().unwrap_or_else(fresh_seed);
        self.rng = rng_from_seed(self.seed);
        self.has_text = has_detokenizer;
        self.collect = collect;
        if collect && options.logprobs().is_some() {
            self.logprobs.reserve(reserve);
        }
        if let Some(criterion) = &mut self.criterion {
            criterion.0.reset();
        }
        // A limit too far to represent is no limit.
        self.deadline = options.max_time().and_then(|limit| self.clock.now().checked_add(limit));
        self.failed = false;
        if max_new == 0 {
            self.finish = Some(FinishReason::Length);
        }
        Ok(())
    }

    /// Whether the run is over (finished or failed).
    pub(crate) fn is_over(&self) -> bool {
        self.finish.is_some() || self.failed
    }

    pub(crate) fn fail(&mut self) {
        self.failed = true;
    }

    /// The seed of this run's random number generator.
    pub(crate) fn seed(&self) -> u64 {
        self.seed
    }

    pub(crate) fn generated(&self) -> &[TokenId] {
        &self.tokens[self.prompt_len..]
    }

    pub(crate) fn generated_len(&self) -> usize {
        self.tokens.len() - self.prompt_len
    }

    pub(crate) fn finish_reason(&self) -> Option<FinishReason> {
        if self.failed { None } else { self.finish }
    }

    /// The ids the model has not seen yet: the prompt at the first step,
    /// then the last generated id.
    pub(crate) fn pending_input(&self) -> &[TokenId] {
        &self.tokens[self.fed..]
    }

    /// How many ids the model has been fed: the position of the first
    /// pending one.
    pub(crate) fn fed_len(&self) -> usize {
        self.fed
    }

    /// The run's random number generator, for draws a driver makes outside
    /// [`Sequence::step`] (speculative drafting).
    pub(crate) fn rng_mut(&mut self) -> &mut DecodingRng {
        &mut self.rng
    }

    pub(crate) fn mark_fed(&mut self) {
        self.fed = self.tokens.len();
    }

    pub(crate) fn text_slice(&self, range: Range<usize>) -> &str {
        self.text.as_str().get(range).unwrap_or_default()
    }

    /// Moves the run's result out (the state keeps the generated ids).
    pub(crate) fn take_generation(&mut self, options: &GenerateOptions) -> Generation {
        Generation {
            tokens: self.generated().to_vec(),
            finish_reason: self.finish.unwrap_or(FinishReason::Length),
            text: self.has_text.then(|| self.text.take()),
            logprobs: options.logprobs().map(|_| std::mem::take(&mut self.logprobs)),
            prompt_logprobs: options
                .prompt_logprobs()
                .map(|_| std::mem::take(&mut self.prompt_logprobs)),
            scores: options.output_scores().then(|| std::mem::take(&mut self.scores)),
            logits: options.output_logits().then(|| std::mem::take(&mut self.logits)),
            seed: self.seed,
        }
    }

    /// The prompt's log-probabilities, once the first step scored them.
    pub(crate) fn prompt_logprobs(&self) -> &[TokenLogprobs] {
        &self.prompt_logprobs
    }

    /// The first model call of a run that records prompt log-probabilities:
    /// the whole prompt through [`LanguageModel::forward_all`], in chunks,
    /// leaving the first step's scores in `row`. On error the run is over.
    pub(crate) fn feed_prompt_scored<M: LanguageModel + ?Sized>(
        &mut self,
        model: &mut M,
        options: &GenerateOptions,
        top_n: usize,
        row: &mut [f32],
    ) -> Result<(), GenerateError<M::Error>> {
        let n = options.vocab_size().unwrap_or(row.len()).min(row.len());
        let result = score_prompt(
            model,
            &self.tokens[..self.prompt_len],
            n,
            top_n,
            &mut self.prompt_rows,
            &mut self.top,
            row,
            &mut self.prompt_logprobs,
        );
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// One decoding step on the model's `row` of scores for the next
    /// position. On error the run is over and nothing was added.
    pub(crate) fn step<P, S, E>(
        &mut self,
        processor: &mut P,
        sampler: &mut S,
        options: &GenerateOptions,
        row: &mut [f32],
        detokenizer: Option<&dyn Detokenizer>,
    ) -> Result<Outcome, GenerateError<E>>
    where
        P: LogitsProcessor + ?Sized,
        S: Sampler + ?Sized,
    {
        let result = self.decide(processor, sampler, options, row, detokenizer);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn decide<P, S, E>(
        &mut self,
        processor: &mut P,
        sampler: &mut S,
        options: &GenerateOptions,
        row: &mut [f32],
        detokenizer: Option<&dyn Detokenizer>,
    ) -> Result<Outcome, GenerateError<E>>
    where
        P: LogitsProcessor + ?Sized,
        S: Sampler + ?Sized,
    {
        let step = self.generated_len();
        let decoding = |source| GenerateError::Decoding { step, source };
        // Padded vocabulary: ids >= n are not tokens; they are cut off.
        let n = options.vocab_size().unwrap_or(row.len()).min(row.len());
        let row = &mut row[..n];
        let top_n = options.top_logprobs();
        let want_raw = options.wants_raw();
        if want_raw || options.output_logits() {
            // The processors work in place, so the raw scores are kept aside.
            self.raw.clear();
            self.raw.extend_from_slice(row);
        }

        let ctx = Context::new(&self.tokens, self.prompt_len).map_err(decoding)?;
        let mut scores = Scores::new(row, &mut self.live);
        scores.check_finite().map_err(decoding)?;
        options.mask_early_eos(step, scores.values_mut());
        processor.process(&ctx, &mut scores).map_err(decoding)?;
        // The processed log-probability only when it is reported: greedy's
        // costs a pass of exponentials over the row.
        let (token, processed) = if options.wants_processed() {
            let sampled = sampler.sample(&scores, &mut self.rng).map_err(decoding)?;
            (sampled.token, Some(sampled.logprob))
        } else {
            (sampler.sample_token(&scores, &mut self.rng).map_err(decoding)?, None)
        };

        let mut record = None;
        if options.logprobs().is_some() {
            let mut r = TokenLogprobs { token, ..TokenLogprobs::default() };
            if options.wants_processed() {
                r.processed = processed;
                if top_n > 0 {
                    let norm = processed_normalizer(&scores);
                    r.processed_top = self.top.select(top_n, norm, |offer| {
                        scores.for_each_live(offer);
                    });
                }
            }
            if want_raw {
                let norm = raw_normalizer(&self.raw);
                r.raw = self.raw.get(token as usize).map(|&x| logprob(x, norm));
                if top_n > 0 {
                    let raw = &self.raw;
                    r.raw_top = self.top.select(top_n, norm, |offer| {
                        for (id, &x) in raw.iter().enumerate() {
                            offer(id as TokenId, x);
                        }
                    });
                }
            }
            record = Some(r);
        }
        // The processed row in full, once nothing reads the live set any more.
        let processed_row = options.output_scores().then(|| {
            scores.densify();
            scores.dense().map_or_else(Vec::new, <[f32]>::to_vec)
        });
        let raw_row = options.output_logits().then(|| self.raw.clone());

        // Text first: an unknown token fails the step before it is committed.
        let is_eos = options.eos_tokens().contains(&token);
        if self.has_text {
            if is_eos {
                self.text.push_silent();
            } else if let Some(d) = detokenizer {
                self.text
                    .push_token(d, token)
                    .map_err(|UnknownToken(token)| GenerateError::UnknownToken { step, token })?;
            }
        }

        self.tokens.push(token);
        processor.accept(token);

        let seqs = options.stop_sequences();
        let strings = options.stop_strings();
        let mut cut = None;
        let mut finish = if is_eos {
            Some(FinishReason::Eos { token })
        } else if let Some((index, start)) = stop::match_sequence(self.generated(), seqs) {
            cut = Some(self.text.token_start(start));
            Some(FinishReason::StopSequence { index })
        } else if let Some((start, index)) = self
            .has_text
            .then(|| stop::find_string(self.text.as_str(), self.text.token_start(step), strings))
            .flatten()
        {
            cut = Some(start);
            Some(FinishReason::StopString { index })
        } else if processor.is_complete() {
            Some(FinishReason::Constraint)
        } else if match &mut self.criterion {
            Some(criterion) => {
                let tokens = Context::new(&self.tokens, self.prompt_len).map_err(decoding)?;
                criterion.0.should_stop(&tokens, self.has_text.then(|| self.text.as_str()))
            }
            None => false,
        } {
            Some(FinishReason::Criterion)
        } else if self.deadline.is_some_and(|deadline| self.clock.now() >= deadline) {
            Some(FinishReason::Time)
        } else if step + 1 >= options.max_new_tokens() {
            Some(FinishReason::Length)
        } else {
            None
        };

        let text = if self.has_text {
            let upto = match (finish, cut) {
                (Some(_), Some(at)) => {
                    self.text.truncate(at);
                    at
                }
                (Some(_), None) => {
                    let before = self.text.len();
                    self.text.flush();
                    // The U+FFFD of an incomplete character flushed at the
                    // end can complete a stop string: it is cut too, and it
                    // ends the run in place of the length limit.
                    match stop::find_string(self.text.as_str(), before, strings) {
                        Some((start, index)) => {
                            self.text.truncate(start);
                            if finish == Some(FinishReason::Length) {
                                finish = Some(FinishReason::StopString { index });
                            }
                            start
                        }
                        None => self.text.len(),
                    }
                }
                (None, _) => {
                    let mut upto =
                        self.text.len() - stop::string_holdback(self.text.as_str(), strings);
                    let pending = stop::pending_sequence(self.generated(), seqs);
                    if pending > 0 {
                        upto = upto.min(self.text.token_start(step + 1 - pending));
                    }
                    upto
                }
            };
            self.text.release(upto)
        } else {
            0..0
        };

        self.finish = finish;
        let (mut processed_row, mut raw_row) = (processed_row, raw_row);
        if self.collect {
            if let Some(r) = record.take() {
                self.logprobs.push(r);
            }
            self.scores.extend(processed_row.take());
            self.logits.extend(raw_row.take());
        }
        Ok(Outcome {
            index: step,
            token,
            logprobs: record,
            text,
            finish,
            scores: processed_row,
            logits: raw_row,
        })
    }
}
