//! The speculative decoding loop: a draft model proposes tokens, the target
//! model checks them all in one call. The rule that accepts or replaces
//! each drafted token is `speculative_acceptance`.

use super::detokenizer::Detokenizer;
use super::logprobs::{logprob, processed_normalizer};
use super::stop;
use crate::sampler::{Categorical, Greedy};
use crate::{
    Context, Error, GenerateError, GenerateOptions, Generation, Generator, LanguageModel,
    LogitsProcessor, PromptLookup, RewindableModel, Sampled, Sampler, Scores, Speculation, TokenId,
    speculative_accept,
};

/// Generated-token capacity reserved up front for the history buffer.
const RESERVE_CAP: usize = 1 << 16;

/// Drafted positions whose rows are sized up front; a run that drafts more
/// per round grows its row buffers as it drafts (the buffers follow what is
/// drafted, never the `k` or `max_new_tokens` asked for).
const ROWS_UP_FRONT: usize = 1 << 8;

/// How the target model checks the drafted tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verification {
    /// Speculative sampling (Leviathan et al. 2023, Algorithm 1): the draft
    /// token is drawn from the draft's processed distribution `q` and kept
    /// with probability `min(1, p/q)`, else replaced by a draw from
    /// `max(p - q, 0)` normalized ([`speculative_accept`]); a token after
    /// the last drafted one is drawn from `p`. Every emitted token follows
    /// the target's processed distribution `p` exactly: the law of plain
    /// generation with [`Categorical`].
    Sampled,
    /// Greedy verification: the draft proposes the argmax of its processed
    /// row; a drafted token is kept iff it is the argmax of the target's
    /// processed row (ties: the lowest id, as [`Greedy`]), else the target's
    /// argmax replaces it. The tokens are those of plain generation with
    /// [`Greedy`].
    Greedy,
}

/// The options of a speculative run: how many tokens the draft proposes per
/// round and how they are verified.
///
/// # Example
///
/// ```
/// use decoding::{SpeculativeOptions, Verification};
///
/// let options = SpeculativeOptions::new(4, Verification::Sampled)?;
/// assert_eq!(options.draft_tokens(), 4);
/// assert!(SpeculativeOptions::new(0, Verification::Greedy).is_err());
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpeculativeOptions {
    draft_tokens: usize,
    verification: Verification,
}

impl SpeculativeOptions {
    /// `draft_tokens` (`k`) tokens proposed per round, checked by
    /// `verification`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `draft_tokens` when it is 0.
    pub fn new(draft_tokens: usize, verification: Verification) -> Result<Self, Error> {
        if draft_tokens == 0 {
            return Err(Error::invalid("draft_tokens", "at least 1", draft_tokens));
        }
        Ok(SpeculativeOptions { draft_tokens, verification })
    }

    /// The number of tokens the draft proposes per round (`k`).
    pub fn draft_tokens(&self) -> usize {
        self.draft_tokens
    }

    /// How drafted tokens are checked.
    pub fn verification(&self) -> Verification {
        self.verification
    }
}

/// What a speculative run did, from
/// [`Generator::speculative_stats`].
///
/// Every emitted token is exactly one of: an **accepted** drafted token, a
/// **correction** (the target's token in place of a rejected draft), or a
/// **bonus** (a token chosen from the target's row with no draft to check:
/// after every drafted token of a round was accepted, or in a round with
/// nothing to draft because one token was left to generate). So
/// `accepted + corrections + bonus` is the number of generated tokens.
///
/// Drafted tokens after a rejected one, or after the token that ended the
/// run, are counted in `drafted` but neither accepted nor rejected, so
/// `accepted + corrections <= drafted`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SpeculativeStats {
    /// Draft-then-verify rounds (each ends with one target scoring).
    pub rounds: usize,
    /// Tokens proposed (by the draft model, or copied by a prompt lookup).
    pub drafted: usize,
    /// Drafted tokens kept.
    pub accepted: usize,
    /// Drafted tokens rejected and replaced by the target's choice.
    pub corrections: usize,
    /// Tokens chosen from the target's row with no draft to check.
    pub bonus: usize,
    /// Calls to the target model ([`LanguageModel::forward`] or
    /// [`LanguageModel::forward_all`]): one per round, plus one in the
    /// first round when the prompt has more than one token and something
    /// was drafted (the prompt is fed with `forward`, the drafts with
    /// `forward_all`, so no row is computed for the prompt's positions).
    ///
    /// [`LanguageModel::forward`]: crate::LanguageModel::forward
    /// [`LanguageModel::forward_all`]: crate::LanguageModel::forward_all
    pub target_calls: usize,
    /// Calls to the draft model (one per drafted token; none in prompt
    /// lookup).
    pub draft_calls: usize,
}

impl SpeculativeStats {
    /// `accepted / drafted`, or `None` when nothing was drafted.
    pub fn acceptance_rate(&self) -> Option<f64> {
        (self.drafted > 0).then(|| self.accepted as f64 / self.drafted as f64)
    }

    /// The tokens generated: `accepted + corrections + bonus`.
    pub fn emitted(&self) -> usize {
        self.accepted + self.corrections + self.bonus
    }
}

/// The buffers a speculative run reuses, kept in the [`Generator`]; empty
/// (no allocation) until the first speculative run.
#[derive(Debug, Default)]
pub(crate) struct SpeculativeScratch {
    /// Prompt, emitted tokens, then the round's drafted tokens.
    history: Vec<TokenId>,
    /// The target's rows of one round, `(k + 1) × V_target`.
    target_rows: Vec<f32>,
    /// The draft's rows of one round, `k × V_draft`; with sampled
    /// verification, written out in full once processed.
    draft_rows: Vec<f32>,
    /// The processed target row, dense, for the acceptance rule.
    dense: Vec<f32>,
    live: Vec<TokenId>,
    categorical: Categorical,
    stats: SpeculativeStats,
}

/// How far each model has been fed: the model holds `history[..fed]`.
#[derive(Debug, Clone, Copy)]
struct Fed {
    target: usize,
    draft: usize,
}

impl<P, S> Generator<P, S> {
    /// The statistics of the latest speculative run (so far, after an
    /// error); all zero before the first one.
    pub fn speculative_stats(&self) -> SpeculativeStats {
        self.speculative.stats
    }
}

impl<P: LogitsProcessor, S: Sampler> Generator<P, S> {
    /// Generates from `prompt` with speculative decoding: each round, the
    /// `draft` model proposes up to `k` tokens one by one, the `target`
    /// model scores all of them in one
    /// [`forward_all`](crate::LanguageModel::forward_all) call, and the drafted
    /// tokens are checked in order by `speculative`'s [`Verification`]
    /// rule. The first rejected one is replaced by the target's token and
    /// the round ends; when all are kept, one more token (the bonus) is
    /// chosen from the target's row after the last of them. Statistics:
    /// [`Generator::speculative_stats`].
    ///
    /// # What is generated
    ///
    /// The emitted tokens follow the target: with [`Verification::Greedy`]
    /// they are exactly those of [`Generator::generate`] with a [`Greedy`]
    /// sampler on `target` (for processors that are deterministic given
    /// their history and accepted tokens); with [`Verification::Sampled`]
    /// each token has exactly the distribution plain generation with
    /// [`Categorical`] draws it from (the tokens for a given seed differ).
    /// The generator's own sampler is **not** used: the verification rule
    /// decides every token.
    ///
    /// # Rows and the processor
    ///
    /// Both models' rows go through the generator's processor, each with
    /// the [`Context`] of its position: the draft's row for drafted
    /// position `j` sees the prompt, the emitted tokens and the `j` tokens
    /// drafted before it; the target's row for a position sees the prompt
    /// and the tokens emitted before it (drafted tokens checked so far are
    /// emitted ones). `min_new_tokens` masks the EOS ids of both rows for
    /// positions below it, and ids past
    /// [`GenerateOptionsBuilder::vocab_size`](crate::GenerateOptionsBuilder::vocab_size)
    /// are cut from both, as in plain generation.
    ///
    /// Target rows are processed one position at a time, each after
    /// [`accept`](LogitsProcessor::accept) of every earlier emitted token,
    /// and `accept` is called for exactly the emitted tokens, in order: a
    /// stateful processor (such as
    /// [`MirostatV2`](crate::processors::MirostatV2)) sees the same
    /// sequence of target rows and accepts as in plain generation, and
    /// target rows past a rejection are never processed. Draft rows are
    /// processed too, in the processor's state as of the last emitted token
    /// (`accept` is never called for a drafted token): for `MirostatV2` the
    /// draft rows of later drafted positions see a `μ` that has not moved
    /// for the earlier drafts. That only changes the draft's proposal
    /// distribution, which the acceptance rule accounts for (it uses the
    /// rows exactly as processed), so the output is unaffected; the
    /// acceptance rate may drop. A processor that consumes state in
    /// `process` itself ([`Xtc`](crate::processors::Xtc)'s own random
    /// stream) is called more often than in plain generation: its draws
    /// differ from a plain run's, but remain independent, so the output law
    /// holds while the tokens of a seed differ.
    ///
    /// # A round, exactly
    ///
    /// With `g` tokens generated so far, `r = max_new_tokens - g` left and
    /// `k` the options' [`draft_tokens`](SpeculativeOptions::draft_tokens):
    ///
    /// 1. **Draft** `m = min(k, r - 1)` tokens (so that the bonus never
    ///    overshoots the limit), stopping early after a drafted EOS id or a
    ///    drafted token that completes a stop sequence (nothing after it
    ///    could be emitted). Each call feeds the draft the tokens it has not
    ///    seen and reads one row; the token is the argmax of the processed
    ///    row ([`Verification::Greedy`]) or one draw from it
    ///    ([`Verification::Sampled`], as [`Categorical`] draws).
    /// 2. **Score**: the target is fed the tokens it has not seen followed
    ///    by the `m` drafted ones, and writes `m + 1` rows.
    /// 3. **Verify** positions `0..=m` in order; each emitted token goes
    ///    through the same commit as plain generation (text, `accept`, stop
    ///    conditions). The round ends at the first rejection or stop.
    /// 4. **Rewind** each model that holds tokens that were not kept, with
    ///    [`RewindableModel::rewind`], to the longest prefix of what it
    ///    holds that the emitted sequence shares. After the run each model
    ///    holds a prefix of the prompt and the generated tokens.
    ///
    /// # Random draws
    ///
    /// The run's random number generator is seeded from
    /// [`GenerateOptions::seed`] as for plain generation, so a seed fixes
    /// the tokens. With [`Verification::Sampled`], each round draws, in
    /// this order: one uniform per drafted token (step 1, in position
    /// order); then for each verified drafted token one uniform to accept
    /// it, plus one to resample when it is rejected; then one for the bonus
    /// token if there is one. [`Verification::Greedy`] draws nothing.
    ///
    /// # Stop conditions and output
    ///
    /// Every condition of [`GenerateOptions`] applies as in plain
    /// generation (EOS, stop sequences, stop strings with
    /// [`Generator::generate_speculative_text`], `max_new_tokens`,
    /// `min_new_tokens`); no token after a stop is emitted. Log-probabilities
    /// are recorded as in plain generation: raw ones from the target's row,
    /// processed ones under the target's processed distribution (for a
    /// drafted or resampled token, `log_softmax` of the processed target
    /// row at it).
    ///
    /// # Errors
    ///
    /// Those of [`Generator::generate`] (the target's errors are
    /// [`GenerateError::Model`]), and
    /// [`GenerateError::DraftVocabMismatch`] when the draft's vocabulary
    /// size differs from the target's (or, with
    /// [`GenerateOptionsBuilder::vocab_size`](crate::GenerateOptionsBuilder::vocab_size)
    /// set, is below it), [`GenerateError::DraftModel`] when the draft
    /// fails, [`GenerateError::LogitsLength`] when either model's
    /// vocabulary size changes during the run, and
    /// [`GenerateError::Decoding`] for a NaN or `+inf` score in a draft row
    /// or a processor's error on it.
    ///
    /// # Performance
    ///
    /// A round costs `m` draft calls and one (the first round: at most two)
    /// target calls for up to `m + 1` tokens. The row buffers
    /// (`(m + 1) × V` for the target, `m × V` for the draft) are kept in
    /// the generator and reused: after the first run, a round allocates
    /// nothing unless log-probabilities, text or boxed draft errors are
    /// involved. They are sized up front for up to 256 drafted tokens and
    /// grow with what is actually drafted beyond that, so a huge `k` or
    /// `max_new_tokens` costs nothing until tokens are drafted. Sampled verification costs two passes over each row for
    /// each verified token ([`speculative_accept`]).
    ///
    /// # Example
    ///
    /// A draft that agrees with the target keeps every token:
    ///
    /// ```
    /// use decoding::sampler::Greedy;
    /// use decoding::{
    ///     GenerateOptions, Generator, LanguageModel, Pipeline, RewindableModel,
    ///     SpeculativeOptions, TokenId, Verification,
    /// };
    ///
    /// /// After token `t`, token `t + 1` scores 3, the rest 0.
    /// #[derive(Debug)]
    /// struct Next { last: Option<TokenId> }
    ///
    /// impl LanguageModel for Next {
    ///     type Error = std::convert::Infallible;
    ///     fn vocab_size(&self) -> usize { 8 }
    ///     fn forward(&mut self, tokens: &[TokenId], _position: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
    ///         self.last = tokens.last().copied().or(self.last);
    ///         logits.fill(0.0);
    ///         if let Some(t) = self.last {
    ///             logits[(t as usize + 1) % 8] = 3.0;
    ///         }
    ///         Ok(())
    ///     }
    ///     fn reset(&mut self) -> Result<(), Self::Error> { self.last = None; Ok(()) }
    /// }
    ///
    /// impl RewindableModel for Next {
    ///     // The next call feeds the token that decides; nothing to undo.
    ///     fn rewind(&mut self, _len: usize) -> Result<(), Self::Error> { Ok(()) }
    /// }
    ///
    /// let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(6));
    /// let speculative = SpeculativeOptions::new(3, Verification::Greedy)?;
    /// let (mut target, mut draft) = (Next { last: None }, Next { last: None });
    /// let out = generator.generate_speculative(&mut target, &mut draft, &[0], &speculative)?;
    /// assert_eq!(out.tokens, [1, 2, 3, 4, 5, 6]);
    /// let stats = generator.speculative_stats();
    /// assert_eq!(stats.acceptance_rate(), Some(1.0));
    /// assert_eq!((stats.accepted, stats.bonus, stats.rounds), (4, 2, 2));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn generate_speculative<T, D>(
        &mut self,
        target: &mut T,
        draft: &mut D,
        prompt: &[TokenId],
        speculative: &SpeculativeOptions,
    ) -> Result<Generation, GenerateError<T::Error>>
    where
        T: RewindableModel + ?Sized,
        D: RewindableModel + ?Sized,
    {
        self.run_speculative(target, Drafter::Model(draft), None, prompt, speculative)
    }

    /// [`Generator::generate_speculative`], also decoding the generated text
    /// with `detokenizer` (needed for stop strings).
    ///
    /// # Errors
    ///
    /// As [`Generator::generate_speculative`], plus
    /// [`GenerateError::UnknownToken`].
    pub fn generate_speculative_text<T, D>(
        &mut self,
        target: &mut T,
        draft: &mut D,
        detokenizer: &dyn Detokenizer,
        prompt: &[TokenId],
        speculative: &SpeculativeOptions,
    ) -> Result<Generation, GenerateError<T::Error>>
    where
        T: RewindableModel + ?Sized,
        D: RewindableModel + ?Sized,
    {
        self.run_speculative(target, Drafter::Model(draft), Some(detokenizer), prompt, speculative)
    }

    /// Generates from `prompt` with prompt lookup decoding: speculative
    /// decoding as [`Generator::generate_speculative`] runs it, with the
    /// draft of each round copied from the text by `lookup` (see
    /// [`PromptLookup`]) instead of proposed by a draft model. Rounds in
    /// which nothing matches draft nothing and emit one token, as a plain
    /// step does. Statistics: [`Generator::speculative_stats`] (no draft
    /// calls).
    ///
    /// # What is generated
    ///
    /// With [`Verification::Greedy`], exactly the tokens of
    /// [`Generator::generate`] with a [`Greedy`] sampler (for processors
    /// that are deterministic given their history and accepted tokens);
    /// with [`Verification::Sampled`], exactly the tokens of
    /// [`Generator::generate`] with a [`Categorical`] sampler and the same
    /// seed: each position's token is one categorical draw from its
    /// processed target row, as in a plain run, and a drafted token is
    /// kept iff the draw equals it, so a round draws exactly what plain
    /// steps would. The generator's own sampler is not used. Stop conditions, `accept`
    /// calls, log-probabilities and rewinds of the target are as for
    /// [`Generator::generate_speculative`].
    ///
    /// # Errors
    ///
    /// Those of [`Generator::generate`] (the target's errors are
    /// [`GenerateError::Model`]).
    ///
    /// # Performance
    ///
    /// A round costs one lookup over the text (no allocation; see
    /// [`PromptLookup::lookup`]) and one target call for up to
    /// `draft_tokens + 1` tokens: on a text that repeats itself (a rewrite,
    /// an edit, code, a quoted document), several tokens per target call.
    ///
    /// # Example
    ///
    /// ```
    /// use decoding::sampler::Greedy;
    /// use decoding::{
    ///     GenerateOptions, Generator, LanguageModel, Pipeline, PromptLookup, RewindableModel,
    ///     TokenId, Verification,
    /// };
    ///
    /// /// After token `t`, token `(t + 1) % 4` scores 3, the rest 0.
    /// #[derive(Debug)]
    /// struct Cycle { last: Option<TokenId> }
    ///
    /// impl LanguageModel for Cycle {
    ///     type Error = std::convert::Infallible;
    ///     fn vocab_size(&self) -> usize { 8 }
    ///     fn forward(&mut self, tokens: &[TokenId], _position: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
    ///         self.last = tokens.last().copied().or(self.last);
    ///         logits.fill(0.0);
    ///         if let Some(t) = self.last {
    ///             logits[(t as usize + 1) % 4] = 3.0;
    ///         }
    ///         Ok(())
    ///     }
    ///     fn reset(&mut self) -> Result<(), Self::Error> { self.last = None; Ok(()) }
    /// }
    ///
    /// impl RewindableModel for Cycle {
    ///     fn rewind(&mut self, _len: usize) -> Result<(), Self::Error> { Ok(()) }
    /// }
    ///
    /// let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(8));
    /// let lookup = PromptLookup::new(4, 2, Verification::Greedy)?;
    /// // The prompt holds one period of the cycle: every draft is right.
    /// let out = generator.generate_prompt_lookup(&mut Cycle { last: None }, &[0, 1, 2, 3, 0], &lookup)?;
    /// assert_eq!(out.tokens, [1, 2, 3, 0, 1, 2, 3, 0]);
    /// let stats = generator.speculative_stats();
    /// assert_eq!((stats.rounds, stats.accepted, stats.draft_calls), (2, 6, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn generate_prompt_lookup<T>(
        &mut self,
        target: &mut T,
        prompt: &[TokenId],
        lookup: &PromptLookup,
    ) -> Result<Generation, GenerateError<T::Error>>
    where
        T: RewindableModel + ?Sized,
    {
        let speculative = lookup_options(lookup);
        self.run_speculative(target, Drafter::<NoDraft>::Lookup(lookup), None, prompt, &speculative)
    }

    /// [`Generator::generate_prompt_lookup`], also decoding the generated
    /// text with `detokenizer` (needed for stop strings).
    ///
    /// # Errors
    ///
    /// As [`Generator::generate_prompt_lookup`], plus
    /// [`GenerateError::UnknownToken`].
    pub fn generate_prompt_lookup_text<T>(
        &mut self,
        target: &mut T,
        detokenizer: &dyn Detokenizer,
        prompt: &[TokenId],
        lookup: &PromptLookup,
    ) -> Result<Generation, GenerateError<T::Error>>
    where
        T: RewindableModel + ?Sized,
    {
        let speculative = lookup_options(lookup);
        let drafter = Drafter::<NoDraft>::Lookup(lookup);
        self.run_speculative(target, drafter, Some(detokenizer), prompt, &speculative)
    }

    fn run_speculative<T, D>(
        &mut self,
        target: &mut T,
        mut draft: Drafter<'_, D>,
        detokenizer: Option<&dyn Detokenizer>,
        prompt: &[TokenId],
        speculative: &SpeculativeOptions,
    ) -> Result<Generation, GenerateError<T::Error>>
    where
        T: RewindableModel + ?Sized,
        D: RewindableModel + ?Sized,
    {
        self.speculative.stats = SpeculativeStats::default();
        let target_vocab = target.vocab_size();
        let draft_vocab = match &draft {
            Drafter::Model(model) => model.vocab_size(),
            Drafter::Lookup(_) => target_vocab,
        };
        self.refuse_prompt_logprobs("prompt log-probabilities in speculative decoding")?;
        self.prepare(target_vocab, prompt, detokenizer.is_some(), true)?;
        let (expected, fits) = match self.options.vocab_size() {
            Some(n) => (n, draft_vocab >= n),
            None => (target_vocab, draft_vocab == target_vocab),
        };
        if !fits {
            self.seq.fail();
            return Err(GenerateError::DraftVocabMismatch { expected, actual: draft_vocab });
        }
        if let Err(source) = target.reset() {
            self.seq.fail();
            return Err(GenerateError::Model { step: 0, source });
        }
        if let Drafter::Model(model) = &mut draft {
            if let Err(e) = model.reset() {
                self.seq.fail();
                return Err(GenerateError::DraftModel { step: 0, source: Box::new(e) });
            }
        }

        let max_new = self.options.max_new_tokens();
        let most = speculative.draft_tokens().min(max_new.saturating_sub(1)).min(ROWS_UP_FRONT);
        let scratch = &mut self.speculative;
        grow(&mut scratch.target_rows, (most + 1) * target_vocab);
        if let Drafter::Model(_) = draft {
            grow(&mut scratch.draft_rows, most * draft_vocab);
        }
        scratch.dense.clear();
        scratch.history.clear();
        scratch.history.reserve(prompt.len() + max_new.min(RESERVE_CAP) + most);
        scratch.history.extend_from_slice(prompt);

        let mut fed = Fed { target: 0, draft: 0 };
        let vocab = Vocab { target: target_vocab, draft: draft_vocab, row: expected };
        while !self.seq.is_over() {
            self.round(
                target,
                &mut draft,
                detokenizer,
                prompt.len(),
                speculative,
                vocab,
                &mut fed,
            )?;
        }
        Ok(self.seq.take_generation(&self.options))
    }

    /// One draft-score-verify-rewind round (see
    /// [`Generator::generate_speculative`]).
    #[allow(clippy::too_many_arguments)]
    fn round<T, D>(
        &mut self,
        target: &mut T,
        draft: &mut Drafter<'_, D>,
        detokenizer: Option<&dyn Detokenizer>,
        prompt_len: usize,
        speculative: &SpeculativeOptions,
        vocab: Vocab,
        fed: &mut Fed,
    ) -> Result<(), GenerateError<T::Error>>
    where
        T: RewindableModel + ?Sized,
        D: RewindableModel + ?Sized,
    {
        let Generator { processor, options, seq, speculative: scratch, .. } = self;
        let SpeculativeScratch {
            history,
            target_rows,
            draft_rows,
            dense,
            live,
            categorical,
            stats,
        } = scratch;
        let mode = speculative.verification();
        let generated = seq.generated_len();
        let base = prompt_len + generated;
        debug_assert_eq!(history.len(), base);

        let draft_vocab = match draft {
            Drafter::Model(model) => model.vocab_size(),
            Drafter::Lookup(_) => vocab.draft,
        };
        for (expected, actual) in [(vocab.target, target.vocab_size()), (vocab.draft, draft_vocab)]
        {
            if actual != expected {
                seq.fail();
                return Err(GenerateError::LogitsLength { step: generated, expected, actual });
            }
        }

        // 1. Draft.
        let budget =
            speculative.draft_tokens().min(options.max_new_tokens().saturating_sub(generated + 1));
        let mut drafted = 0;
        if let Drafter::Lookup(lookup) = draft {
            for i in lookup.find(history, budget) {
                let token = history[i];
                history.push(token);
                drafted += 1;
                stats.drafted += 1;
                if options.eos_tokens().contains(&token)
                    || stop::match_sequence(&history[prompt_len..], options.stop_sequences())
                        .is_some()
                {
                    break;
                }
            }
        }
        if let Drafter::Model(draft) = draft {
            while drafted < budget {
                let step = generated + drafted;
                grow(draft_rows, (drafted + 1) * vocab.draft);
                let row = &mut draft_rows[drafted * vocab.draft..(drafted + 1) * vocab.draft];
                if let Err(e) = draft.forward(&history[fed.draft..], fed.draft, row) {
                    seq.fail();
                    return Err(GenerateError::DraftModel { step, source: Box::new(e) });
                }
                stats.draft_calls += 1;
                fed.draft = history.len();
                let ctx = Context::new(history, prompt_len);
                let token = ctx.and_then(|ctx| {
                    let row = &mut row[..vocab.row];
                    draft_token(
                        processor,
                        options,
                        mode,
                        &ctx,
                        step,
                        row,
                        live,
                        categorical,
                        seq.rng_mut(),
                    )
                });
                let token = match token {
                    Ok(token) => token,
                    Err(source) => {
                        seq.fail();
                        return Err(GenerateError::Decoding { step, source });
                    }
                };
                history.push(token);
                drafted += 1;
                stats.drafted += 1;
                if options.eos_tokens().contains(&token)
                    || stop::match_sequence(&history[prompt_len..], options.stop_sequences())
                        .is_some()
                {
                    break;
                }
            }
        }

        // 2. Score: the rows after the last emitted token and after each
        // drafted one.
        let feed = &history[fed.target..];
        let lead = feed.len() - drafted;
        grow(target_rows, (drafted + 1) * vocab.target);
        let rows = &mut target_rows[..(drafted + 1) * vocab.target];
        let scored = if lead == 1 {
            stats.target_calls += 1;
            target.forward_all(feed, fed.target, rows)
        } else {
            // The prompt: only its last row is needed.
            let (first, rest) = rows.split_at_mut(vocab.target);
            stats.target_calls += 1;
            target.forward(&feed[..lead], fed.target, first).and_then(|()| {
                if drafted == 0 {
                    return Ok(());
                }
                stats.target_calls += 1;
                target.forward_all(&feed[lead..], fed.target + lead, rest)
            })
        };
        if let Err(source) = scored {
            seq.fail();
            return Err(GenerateError::Model { step: generated, source });
        }
        fed.target = history.len();

        // 3. Verify, committing each emitted token as plain generation does.
        for i in 0..=drafted {
            let proposal = (i < drafted).then(|| {
                // Only sampled verification reads a draft model's row, which
                // `draft_token` wrote out in full; a greedy draft row keeps
                // stale slots and is not handed on. A lookup's draft has no
                // row: it is a point mass.
                let row = match (mode, &*draft) {
                    (Verification::Sampled, Drafter::Model(_)) => {
                        Some(&draft_rows[i * vocab.draft..i * vocab.draft + vocab.row])
                    }
                    _ => None,
                };
                (history[base + i], row)
            });
            let mut verifier = Verifier {
                mode,
                draft: proposal,
                dense: &mut *dense,
                categorical: &mut *categorical,
                accepted: false,
            };
            let row = &mut target_rows[i * vocab.target..(i + 1) * vocab.target];
            let outcome = seq.step(processor, &mut verifier, options, row, detokenizer)?;
            let accepted = verifier.accepted;
            match proposal {
                Some(_) if accepted => stats.accepted += 1,
                Some(_) => stats.corrections += 1,
                None => stats.bonus += 1,
            }
            if outcome.finish.is_some() || !accepted {
                break;
            }
        }
        stats.rounds += 1;

        // 4. Rewind what was fed but not kept.
        let emitted = &seq.generated()[generated..];
        let kept =
            emitted.iter().zip(&history[base..base + drafted]).take_while(|(a, b)| a == b).count();
        history.truncate(base);
        history.extend_from_slice(emitted);
        let valid = base + kept;
        let step = seq.generated_len();
        if fed.target > valid {
            if let Err(source) = target.rewind(valid) {
                seq.fail();
                return Err(GenerateError::Model { step, source });
            }
            fed.target = valid;
        }
        if let Drafter::Model(draft) = draft {
            if fed.draft > valid {
                if let Err(e) = draft.rewind(valid) {
                    seq.fail();
                    return Err(GenerateError::DraftModel { step, source: Box::new(e) });
                }
                fed.draft = valid;
            }
        }
        Ok(())
    }
}

/// Where a round's drafted tokens come from.
enum Drafter<'a, D: ?Sized> {
    /// A draft model, fed and rewound as the target is.
    Model(&'a mut D),
    /// A copy from the text itself.
    Lookup(&'a PromptLookup),
}

/// The draft model type of a run without one.
enum NoDraft {}

impl LanguageModel for NoDraft {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        match *self {}
    }
    fn forward(&mut self, _: &[TokenId], _: usize, _: &mut [f32]) -> Result<(), Self::Error> {
        match *self {}
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        match *self {}
    }
}

impl RewindableModel for NoDraft {
    fn rewind(&mut self, _: usize) -> Result<(), Self::Error> {
        match *self {}
    }
}

/// Makes `buf` at least `len` long (the rows are written by the models
/// before they are read, so what the new entries hold does not matter).
fn grow(buf: &mut Vec<f32>, len: usize) {
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
}

/// The vocabulary sizes of a run: each model's, and the processed rows'
/// (the tokenizer's when set, else the target's).
#[derive(Debug, Clone, Copy)]
struct Vocab {
    target: usize,
    draft: usize,
    row: usize,
}

/// Processes a draft row in place and chooses the drafted token. With
/// sampled verification the row is left dense (every removed token `-inf`)
/// for the acceptance rule.
#[allow(clippy::too_many_arguments)]
fn draft_token<P: LogitsProcessor + ?Sized>(
    processor: &mut P,
    options: &GenerateOptions,
    mode: Verification,
    ctx: &Context<'_>,
    step: usize,
    row: &mut [f32],
    live: &mut Vec<TokenId>,
    categorical: &mut Categorical,
    rng: &mut dyn rand::Rng,
) -> Result<TokenId, Error> {
    let mut scores = Scores::new(row, live);
    scores.check_finite()?;
    options.mask_early_eos(step, scores.values_mut());
    processor.process(ctx, &mut scores)?;
    match mode {
        Verification::Greedy => Greedy.sample_token(&scores, rng),
        Verification::Sampled => {
            let token = categorical.sample_token(&scores, rng)?;
            scores.densify();
            Ok(token)
        }
    }
}

/// The "sampler" of a verified position: it decides the emitted token from
/// the processed target scores the generator's step hands it, so the
/// token is committed exactly as plain generation commits one.
#[derive(Debug)]
struct Verifier<'a> {
    mode: Verification,
    /// The drafted token and the dense processed draft row it came from
    /// (`None` for a draft with no row: a point mass, or a greedy draft);
    /// `None` for a bonus position.
    draft: Option<(TokenId, Option<&'a [f32]>)>,
    dense: &'a mut Vec<f32>,
    categorical: &'a mut Categorical,
    /// Whether the drafted token was kept.
    accepted: bool,
}

impl Verifier<'_> {
    /// Leviathan's rule on the dense processed target row.
    fn sampled(
        &mut self,
        scores: &Scores<'_>,
        token: TokenId,
        draft: &[f32],
        rng: &mut dyn rand::Rng,
    ) -> Result<TokenId, Error> {
        let dense = &mut *self.dense;
        dense.clear();
        dense.resize(scores.vocab_size(), f32::NEG_INFINITY);
        scores.for_each_live(|id, x| dense[id as usize] = x);
        Ok(match speculative_accept(dense, draft, token, rng)? {
            Speculation::Accepted => {
                self.accepted = true;
                token
            }
            Speculation::Rejected { resampled } => resampled,
        })
    }
}

impl Sampler for Verifier<'_> {
    fn sample(&mut self, scores: &Scores<'_>, rng: &mut dyn rand::Rng) -> Result<Sampled, Error> {
        match (self.mode, self.draft) {
            (Verification::Greedy, draft) => {
                let sampled = Greedy.sample(scores, rng)?;
                self.accepted = draft.is_some_and(|(t, _)| t == sampled.token);
                Ok(sampled)
            }
            (Verification::Sampled, None) => self.categorical.sample(scores, rng),
            (Verification::Sampled, Some((token, None))) => {
                // A point-mass draft: Leviathan's rule keeps it with
                // probability p(token), else draws from p without it; the
                // same law as one draw from p compared with it.
                let sampled = self.categorical.sample(scores, rng)?;
                self.accepted = sampled.token == token;
                Ok(sampled)
            }
            (Verification::Sampled, Some((token, Some(draft)))) => {
                let token = self.sampled(scores, token, draft, rng)?;
                let x = self.dense[token as usize];
                Ok(Sampled { token, logprob: logprob(x, processed_normalizer(scores)) })
            }
        }
    }

    fn sample_token(
        &mut self,
        scores: &Scores<'_>,
        rng: &mut dyn rand::Rng,
    ) -> Result<TokenId, Error> {
        match (self.mode, self.draft) {
            (Verification::Greedy, draft) => {
                let token = Greedy.sample_token(scores, rng)?;
                self.accepted = draft.is_some_and(|(t, _)| t == token);
                Ok(token)
            }
            (Verification::Sampled, None) => self.categorical.sample_token(scores, rng),
            (Verification::Sampled, Some((token, None))) => {
                let sampled = self.categorical.sample_token(scores, rng)?;
                self.accepted = sampled == token;
                Ok(sampled)
            }
            (Verification::Sampled, Some((token, Some(draft)))) => {
                self.sampled(scores, token, draft, rng)
            }
        }
    }
}

/// The speculative loop's options for prompt lookup: its tokens per draft
/// and its verification (both validated when the lookup was built).
fn lookup_options(lookup: &PromptLookup) -> SpeculativeOptions {
    SpeculativeOptions { draft_tokens: lookup.draft_tokens(), verification: lookup.verification() }
}
