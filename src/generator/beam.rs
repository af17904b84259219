//! Beam search through the generator: the `num_beams` best continuations by
//! summed log-probability, scored and stopped as transformers does.

use super::Generator;
use super::batch::{BatchInput, BatchSpan};
use super::beam_model::BeamLanguageModel;
use super::beam_options::{BeamSearch, EarlyStopping};
use crate::{
    Context, DecodingRng, Error, FinishReason, GenerateError, GenerateOptions, LogitsProcessor,
    Scores, TokenId, rng_from_seed,
};

/// transformers' stand-in for an impossible score: added to the candidates
/// that may not continue or may not be kept.
const FAR: f32 = -1.0e9;

/// Hypotheses are reserved up to this many tokens when a search starts.
const RESERVE_CAP: usize = 1 << 16;

/// Candidates are scanned in blocks of this many tokens.
const BLOCK: usize = 64;

/// One finished hypothesis of a beam search.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BeamHypothesis {
    /// The generated ids (the prompt is not included). An EOS id or a stop
    /// sequence that ended the hypothesis is included.
    pub tokens: Vec<TokenId>,
    /// The score the search gave each token: its log-probability after the
    /// processors (transformers' transition scores). They sum, in order and
    /// in f32, to the hypothesis' unpenalized score.
    pub token_scores: Vec<f32>,
    /// The hypothesis' score: the sum of `token_scores` divided by
    /// `tokens.len() ^ length_penalty` (transformers' `sequences_scores`).
    pub score: f32,
    /// Why the hypothesis ended.
    pub finish_reason: FinishReason,
}

/// A running beam or a finished hypothesis under construction.
#[derive(Debug, Default)]
struct Beam {
    /// Prompt, then generated ids.
    tokens: Vec<TokenId>,
    token_scores: Vec<f32>,
    score: f32,
}

impl Beam {
    /// Makes this beam a copy of `other`, in the buffers it has.
    fn copy_from(&mut self, other: &Beam) {
        self.tokens.clone_from(&other.tokens);
        self.token_scores.clone_from(&other.token_scores);
        self.score = other.score;
    }

    /// This beam's parent extended by `token` of score `x`.
    fn extend_from(&mut self, parent: &Beam, token: TokenId, x: f32) {
        self.tokens.clone_from(&parent.tokens);
        self.tokens.push(token);
        self.token_scores.clone_from(&parent.token_scores);
        self.token_scores.push(x);
    }
}

/// A continuation: beam `beam` extended by `token`, of accumulated score
/// `value`.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    value: f32,
    beam: usize,
    token: TokenId,
    /// The token's own (processed) score.
    x: f32,
    /// It ends its hypothesis (EOS, stop sequence or length limit).
    hits: bool,
}

/// The best `k` candidates offered so far, highest value first; among equal
/// values the one offered first ranks first.
fn offer(top: &mut Vec<Candidate>, k: usize, c: Candidate) {
    if top.len() == k && !(top.last().is_some_and(|last| c.value > last.value)) {
        return;
    }
    let at = top.partition_point(|t| t.value >= c.value);
    if top.len() == k {
        top.pop();
    }
    top.insert(at, c);
}

/// Indices of the `n` largest `values` (highest first, ties: lower index
/// first), into `order`.
fn best_indices(values: &[f32], n: usize, order: &mut Vec<usize>) {
    order.clear();
    order.extend(0..values.len());
    // The index breaks ties, so the unstable sort (which does not
    // allocate) gives the stable order.
    order.sort_unstable_by(|&a, &b| values[b].total_cmp(&values[a]).then(a.cmp(&b)));
    order.truncate(n);
}

impl<P: LogitsProcessor, S> Generator<P, S> {
    /// Beam search from `prompt`: the `num_beams` best continuations by
    /// summed log-probability, as transformers'
    /// `generate(num_beams=..., do_sample=False)` computes them, best first.
    ///
    /// # The step
    ///
    /// Every step, each running beam's row of scores becomes
    /// log-probabilities (`log_softmax`, over the tokenizer's vocabulary when
    /// [`GenerateOptionsBuilder::vocab_size`] is set); while fewer than
    /// `min_new_tokens` tokens are generated the EOS ids are masked; then the
    /// generator's processor runs on it with the beam's own context (so
    /// repetition penalties and n-gram blocking see each beam's history), and
    /// the beam's running score is added. Of all `num_beams × V`
    /// continuations, the best `K = max(2, 1 + #EOS ids) × num_beams` are
    /// kept (ties: lower beam, then lower id; with beam sampling, `K` are
    /// drawn instead, see [`BeamSearch`]). A continuation *ends* when its
    /// token is an EOS id, it completes a stop sequence, or it reaches
    /// `max_new_tokens`. The best `num_beams` continuations that do not end
    /// become the running beams (the model is
    /// [`reorder`](BeamLanguageModel::reorder)ed to them); those among the
    /// first `num_beams` of the `K` that end are scored
    /// `sum / length^length_penalty` and compete for the `num_beams` slots
    /// of finished hypotheses. The search stops when every continuation
    /// ends, or as [`EarlyStopping`] decides. At the first step every beam
    /// is the prompt; beams other than the first start at `-1e9`, so that
    /// they do not repeat the first beam's choices.
    ///
    /// All of it is transformers' arithmetic, in f32, including its `-1e9`
    /// stand-ins for impossible scores. `examples/gpt2/tests/beam_search.rs`
    /// checks the hypotheses and their scores against transformers on a tiny
    /// GPT-2 (90 cases: 2 to 6 beams, 20 tokens, length penalties from -0.5
    /// to 2, the three early-stopping rules, one to four EOS ids).
    ///
    /// # What is used
    ///
    /// From the generator's [`GenerateOptions`]: `max_new_tokens`,
    /// `min_new_tokens`, the EOS ids, the stop sequences and `vocab_size`.
    /// The sampler is not used; the seed only by beam sampling
    /// ([`BeamSearch::with_sampling`]): beam search itself is deterministic.
    /// Log-probabilities are not recorded ([`BeamHypothesis::token_scores`]
    /// holds each token's score instead). The processor is
    /// [`reset`](LogitsProcessor::reset) at the start and never told the
    /// chosen tokens ([`LogitsProcessor::accept`]): processors that depend
    /// on it (mirostat) do not apply to beams; those that read the context
    /// do.
    ///
    /// `max_new_tokens = 0` returns one empty hypothesis of score 0 without
    /// calling the model.
    ///
    /// # Performance
    ///
    /// A search sets up its buffers once (the beams are reserved for
    /// `max_new_tokens` tokens); its steps allocate nothing
    /// (`tests/allocations.rs`), given a model whose `reorder` does not (the
    /// default for a `Vec` of models clones). A step costs, per beam, the
    /// model's row, a `log_softmax` (one pass of exponentials), the
    /// processors, the check of the processed row (fused with its maximum;
    /// a row that a truncation left with stale slots is written out in
    /// full, [`Scores::checked_dense`]), and one scan for the best
    /// continuations that skips whole blocks of the row unable to enter
    /// them.
    ///
    /// # Errors
    ///
    /// [`GenerateError::EmptyPrompt`], [`GenerateError::VocabMismatch`],
    /// [`GenerateError::BatchTooLarge`] (the model holds fewer sequences
    /// than beams, or `num_beams` rows of `V` scores exceed the address
    /// space) and [`GenerateError::Unsupported`] (stop strings) before the
    /// first step; then the model's errors ([`GenerateError::Model`]), a
    /// change of its vocabulary size ([`GenerateError::LogitsLength`]), and
    /// [`GenerateError::Decoding`] for NaN or `+inf` scores (the model's,
    /// or a processor's: each processed row is checked as a sampler checks
    /// it, [`Error::InvalidLogit`] naming the token), a processor's error,
    /// or a beam whose every token is masked. The step of an error is the
    /// number of tokens the beams had.
    ///
    /// # Example
    ///
    /// A bigram model over four tokens, where beam search finds the
    /// sequence greedy decoding misses:
    ///
    /// ```
    /// use decoding::{BeamSearch, GenerateOptions, Generator, LanguageModel, Pipeline, TokenId};
    /// use decoding::sampler::Greedy;
    ///
    /// /// After 0: 1 (p = 0.6) or 2 (0.4). After 1: anything (0.25 each).
    /// /// After 2: 3 (p = 0.9).
    /// #[derive(Clone, Default)]
    /// struct Bigram { last: TokenId }
    ///
    /// impl LanguageModel for Bigram {
    ///     type Error = std::convert::Infallible;
    ///     fn vocab_size(&self) -> usize { 4 }
    ///     fn forward(&mut self, tokens: &[TokenId], _position: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
    ///         self.last = *tokens.last().unwrap_or(&self.last);
    ///         let p: [f64; 4] = match self.last {
    ///             0 => [0.0, 0.6, 0.4, 0.0],
    ///             2 => [0.1 / 3.0, 0.1 / 3.0, 0.1 / 3.0, 0.9],
    ///             _ => [0.25; 4],
    ///         };
    ///         for (l, p) in logits.iter_mut().zip(p) { *l = p.ln() as f32; }
    ///         Ok(())
    ///     }
    ///     fn reset(&mut self) -> Result<(), Self::Error> { self.last = 0; Ok(()) }
    /// }
    ///
    /// let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(2));
    /// assert_eq!(generator.generate(&mut Bigram::default(), &[0])?.tokens, [1, 0]);
    /// let mut beams = vec![Bigram::default(); 2];
    /// let best = generator.beam_search(&mut beams, &[0], &BeamSearch::new(2)?)?;
    /// assert_eq!(best[0].tokens, [2, 3]); // 0.4 × 0.9 = 0.36 > 0.6 × 0.25
    /// assert!((best[0].score - (0.36f32).ln() / 2.0).abs() < 1e-6);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// [`GenerateOptionsBuilder::vocab_size`]: crate::GenerateOptionsBuilder::vocab_size
    pub fn beam_search<B>(
        &mut self,
        model: &mut B,
        prompt: &[TokenId],
        search: &BeamSearch,
    ) -> Result<Vec<BeamHypothesis>, GenerateError<B::Error>>
    where
        B: BeamLanguageModel + ?Sized,
    {
        let options = &self.options;
        if prompt.is_empty() {
            return Err(GenerateError::EmptyPrompt);
        }
        if !options.stop_strings().is_empty() {
            return Err(GenerateError::Unsupported { what: "stop strings in beam search" });
        }
        if let Some(what) = beam_unsupported(options, self.seq.criterion.is_some()) {
            return Err(GenerateError::Unsupported { what });
        }
        let nb = search.num_beams();
        let capacity = model.max_sequences();
        if capacity < nb {
            return Err(GenerateError::BatchTooLarge { sequences: nb, capacity });
        }
        let v = model.vocab_size();
        if let Some(n) = options.vocab_size() {
            if v < n {
                return Err(GenerateError::VocabMismatch { model: v, tokenizer: n });
            }
        }
        // The beams' rows are one buffer of `num_beams × V` scores.
        let most = (isize::MAX as usize / std::mem::size_of::<f32>()) / v.max(1);
        if nb > most {
            return Err(GenerateError::BatchTooLarge { sequences: nb, capacity: most });
        }
        self.processor.reset();
        if options.max_new_tokens() == 0 {
            let empty = BeamHypothesis {
                tokens: Vec::new(),
                token_scores: Vec::new(),
                score: 0.0,
                finish_reason: FinishReason::Length,
            };
            return Ok(vec![empty]);
        }
        for j in 0..nb {
            model.reset_sequence(j).map_err(|source| GenerateError::Model { step: 0, source })?;
        }
        let mut run = Run::new(options, search, prompt, v);
        let processor = &mut self.processor;
        loop {
            let step = run.generated_len();
            run.feed(model)?;
            run.expand(processor).map_err(|source| GenerateError::Decoding { step, source })?;
            let parents = run.select();
            model.reorder(parents).map_err(|source| GenerateError::Model { step, source })?;
            if !run.goes_on() {
                break;
            }
        }
        Ok(run.into_hypotheses())
    }
}

/// The state of one beam search.
struct Run<'o> {
    options: &'o GenerateOptions,
    search: &'o BeamSearch,
    prompt_len: usize,
    /// The model's row width.
    v: usize,
    /// The candidates kept per step.
    k: usize,
    running: Vec<Beam>,
    next: Vec<Beam>,
    /// The finished-hypothesis slots (`done[i]` tells a real one from a
    /// placeholder).
    slots: Vec<Beam>,
    done: Vec<bool>,
    next_slots: Vec<Beam>,
    next_done: Vec<bool>,
    /// The model's rows, `num_beams × v`.
    rows: Vec<f32>,
    live: Vec<TokenId>,
    top: Vec<Candidate>,
    parents: Vec<usize>,
    values: Vec<f32>,
    order: Vec<usize>,
    /// Whether a running beam may still beat the worst finished one.
    improvable: bool,
    /// Whether every kept candidate of the latest step ended.
    all_ended: bool,
    tokens: Vec<TokenId>,
    spans: Vec<BatchSpan>,
    /// Beam sampling: the processed rows of the step (`fed × n`, each
    /// written out by [`Scores::checked_dense`]), the weights of every
    /// continuation, and the draws.
    processed: Vec<f32>,
    weights: Vec<f32>,
    rng: DecodingRng,
}

impl<'o> Run<'o> {
    fn new(
        options: &'o GenerateOptions,
        search: &'o BeamSearch,
        prompt: &[TokenId],
        v: usize,
    ) -> Self {
        let nb = search.num_beams();
        let k = 2.max(1 + options.eos_tokens().len()).saturating_mul(nb);
        // Room for the longest hypothesis, so that steps do not grow them
        // (within a bound on the whole reservation: beyond it, hypotheses
        // grow as they are generated).
        let room = options.max_new_tokens().min(RESERVE_CAP / nb);
        let fresh = |score: f32| {
            let mut tokens = Vec::with_capacity(prompt.len() + room);
            tokens.extend_from_slice(prompt);
            Beam { tokens, token_scores: Vec::with_capacity(room), score }
        };
        let beams = |first: f32, rest: f32| -> Vec<Beam> {
            (0..nb).map(|j| fresh(if j == 0 { first } else { rest })).collect()
        };
        Run {
            options,
            search,
            prompt_len: prompt.len(),
            v,
            k,
            running: beams(0.0, FAR),
            next: beams(0.0, 0.0),
            slots: beams(FAR, FAR),
            done: vec![false; nb],
            next_slots: beams(FAR, FAR),
            next_done: vec![false; nb],
            rows: vec![0.0; nb * v],
            live: Vec::new(),
            top: Vec::with_capacity(k + 1),
            parents: vec![0; nb],
            values: Vec::with_capacity(nb + k),
            order: Vec::with_capacity(nb + k),
            improvable: true,
            all_ended: false,
            tokens: Vec::with_capacity(prompt.len().max(nb)),
            spans: Vec::with_capacity(nb),
            processed: Vec::with_capacity(if search.samples() { nb * v } else { 0 }),
            weights: Vec::with_capacity(if search.samples() { nb * v } else { 0 }),
            rng: rng_from_seed(options.seed().unwrap_or_else(crate::fresh_seed)),
        }
    }

    /// Tokens generated by every running beam.
    fn generated_len(&self) -> usize {
        self.running[0].tokens.len() - self.prompt_len
    }

    /// Calls the model: the prompt into sequence 0 at the first step (every
    /// beam is the prompt then), each beam's last token afterwards.
    fn feed<B: BeamLanguageModel + ?Sized>(
        &mut self,
        model: &mut B,
    ) -> Result<(), GenerateError<B::Error>> {
        let step = self.generated_len();
        let actual = model.vocab_size();
        if actual != self.v {
            return Err(GenerateError::LogitsLength { step, expected: self.v, actual });
        }
        self.tokens.clear();
        self.spans.clear();
        if step == 0 {
            self.tokens.extend_from_slice(&self.running[0].tokens);
            self.spans.push(BatchSpan {
                sequence: 0,
                position: 0,
                start: 0,
                end: self.tokens.len(),
            });
        } else {
            for (j, beam) in self.running.iter().enumerate() {
                let position = beam.tokens.len() - 1;
                self.tokens.push(beam.tokens[position]);
                self.spans.push(BatchSpan { sequence: j, position, start: j, end: j + 1 });
            }
        }
        let width = self.spans.len() * self.v;
        let input = BatchInput::new(&self.tokens, &self.spans);
        model
            .forward_batch(&input, &mut self.rows[..width])
            .map_err(|source| GenerateError::Model { step, source })
    }

    /// Turns each fed row into processed log-probabilities and keeps the
    /// best `k` continuations of all beams.
    ///
    /// Each row is read, once processed, only through
    /// [`Scores::checked_dense`]: the live set's scores with every removed
    /// token at `-inf`, checked for NaN and `+inf` as a sampler checks them.
    /// The buffer itself is never read after processing.
    fn expand<P: LogitsProcessor + ?Sized>(&mut self, processor: &mut P) -> Result<(), Error> {
        let o = self.options;
        let step = self.generated_len();
        let n = o.vocab_size().unwrap_or(self.v).min(self.v);
        let last = step + 1 >= o.max_new_tokens();
        let samples = self.search.samples();
        // At the first step every beam is the prompt: one row, for all.
        let fed = if step == 0 { 1 } else { self.running.len() };
        let Run { rows, live, running, top, processed, k, v, prompt_len, .. } = self;
        let (k, v, prompt_len) = (*k, *v, *prompt_len);
        top.clear();
        processed.clear();
        for r in 0..fed {
            let mut scores = Scores::new(&mut rows[r * v..r * v + n], live);
            if running[r].score == f32::NEG_INFINITY {
                // A dead beam (kept only to fill the width when fewer
                // continuations had a finite score) has no continuation of
                // finite score: its row is not processed, so a processor
                // never sees a history it ruled out (a grammar constraint
                // would reject it).
                scores.values_mut().fill(f32::NEG_INFINITY);
            } else {
                log_softmax(scores.values_mut())?;
                o.mask_early_eos(step, scores.values_mut());
                processor.process(&Context::new(&running[r].tokens, prompt_len)?, &mut scores)?;
            }
            let row = scores.checked_dense()?;
            if samples {
                processed.extend_from_slice(row);
                continue;
            }
            let beams = if step == 0 { 0..running.len() } else { r..r + 1 };
            for j in beams {
                let beam = &running[j];
                let ends = |token| last || ends(o, prompt_len, beam, token);
                if !scan(top, k, row, j, beam.score, ends) && beam.score > f32::NEG_INFINITY {
                    // A processor masked every token of this (live) beam.
                    return Err(Error::AllMasked);
                }
            }
        }
        if samples {
            self.sample_candidates(n, step, last)?;
        }
        self.all_ended = self.top.iter().all(|c| c.hits);
        Ok(())
    }

    /// Beam sampling: `k` continuations of all beams drawn without
    /// replacement, each draw proportional to `exp(score)` among those not
    /// drawn yet (inverse CDF in (beam, token) order over f64 sums of f32
    /// weights `exp(score - max)`, one uniform per draw; a draw whose scan
    /// runs out because the running total drifted is scanned again against
    /// the exact remaining sum), then ranked by
    /// score (ties: the earlier draw first). When fewer than `k` have a
    /// nonzero weight, the rest are the first zero-weight ones in order.
    fn sample_candidates(&mut self, n: usize, step: usize, last: bool) -> Result<(), Error> {
        self.weights.clear();
        let mut m = f32::NEG_INFINITY;
        for (j, beam) in self.running.iter().enumerate() {
            let r = if step == 0 { 0 } else { j };
            let row = &self.processed[r * n..(r + 1) * n];
            let row_max = crate::math::max(row);
            let s = beam.score;
            if row_max == f32::NEG_INFINITY && s > f32::NEG_INFINITY {
                return Err(Error::AllMasked);
            }
            m = m.max(row_max + s);
            self.weights.extend(row.iter().map(|&x| x + s));
        }
        // When every continuation scores -inf (beams whose running score is
        // -inf), `m` is -inf too: every weight is 0, not NaN.
        for w in &mut self.weights {
            *w = if *w == f32::NEG_INFINITY { 0.0 } else { crate::math::exp(*w - m) };
        }
        // Drawn continuations are marked -1.
        let remaining = |weights: &[f32]| -> f64 {
            weights.iter().filter(|&&w| w > 0.0).map(|&w| f64::from(w)).sum()
        };
        let scan = |weights: &[f32], target: f64| -> Option<usize> {
            let mut acc = 0.0f64;
            for (i, &w) in weights.iter().enumerate() {
                if w > 0.0 {
                    acc += f64::from(w);
                    if acc > target {
                        return Some(i);
                    }
                }
            }
            None
        };
        let mut total = remaining(&self.weights);
        self.top.clear();
        for _ in 0..self.k.min(self.weights.len()) {
            let u = crate::unit_f64(&mut self.rng);
            // The running total only shrinks by subtraction; when rounding
            // lets the scan run out, it is summed again and the same draw
            // scanned again, so the draw stays exact.
            let mut pick = scan(&self.weights, u * total);
            if pick.is_none() {
                total = remaining(&self.weights);
                pick = scan(&self.weights, u * total);
            }
            // Nothing of nonzero weight left: the first continuation not
            // drawn yet.
            let Some(i) = pick.or_else(|| self.weights.iter().position(|&w| w >= 0.0)) else {
                break;
            };
            total = (total - f64::from(self.weights[i].max(0.0))).max(0.0);
            self.weights[i] = -1.0;
            let (j, id) = (i / n, i % n);
            let beam = &self.running[j];
            let r = if step == 0 { 0 } else { j };
            let x = self.processed[r * n + id];
            let token = id as TokenId;
            let hits = last || ends(self.options, self.prompt_len, beam, token);
            self.top.push(Candidate { value: x + beam.score, beam: j, token, x, hits });
        }
        // Insertion sort: stable, no allocation, `k` is small.
        for i in 1..self.top.len() {
            let mut at = i;
            while at > 0 && self.top[at - 1].value < self.top[at].value {
                self.top.swap(at - 1, at);
                at -= 1;
            }
        }
        Ok(())
    }

    /// Chooses the next running beams and updates the finished slots;
    /// returns the parents of the new running beams.
    fn select(&mut self) -> &[usize] {
        let nb = self.search.num_beams();
        let step = self.generated_len();
        let lp = self.search.length_penalty();

        // The best candidates that do not end continue.
        self.values.clear();
        self.values.extend(self.top.iter().map(|c| if c.hits { c.value + FAR } else { c.value }));
        best_indices(&self.values, nb, &mut self.order);
        // `k >= 2 nb` candidates are kept, and a step has `nb · V >= nb`.
        debug_assert_eq!(self.order.len(), nb);
        for (j, &c) in self.order.iter().enumerate() {
            let cand = self.top[c];
            self.next[j].extend_from(&self.running[cand.beam], cand.token, cand.x);
            self.next[j].score = self.values[c];
            self.parents[j] = if step == 0 { 0 } else { cand.beam };
        }

        // Those of the first `nb` that end compete for the slots.
        let length = (step + 1) as f64;
        let penalty = length.powf(f64::from(lp)) as f32;
        let full =
            self.search.early_stopping() == EarlyStopping::Done && self.done.iter().all(|&d| d);
        self.values.clear();
        self.values.extend(self.slots.iter().map(|s| s.score));
        for (c, cand) in self.top.iter().enumerate() {
            // An extreme penalty (`length^length_penalty` overflowing to
            // infinity) would make `-inf / inf` NaN: it scores -inf.
            let mut value = cand.value / penalty;
            if value.is_nan() {
                value = f32::NEG_INFINITY;
            }
            if full {
                value += FAR;
            }
            if !self.improvable {
                value += FAR;
            }
            if !(cand.hits && c < nb) {
                value += FAR;
            }
            self.values.push(value);
        }
        best_indices(&self.values, nb, &mut self.order);
        for (i, &m) in self.order.iter().enumerate() {
            if m < nb {
                self.next_slots[i].copy_from(&self.slots[m]);
                self.next_done[i] = self.done[m];
            } else {
                let c = m - nb;
                let cand = self.top[c];
                self.next_slots[i].extend_from(&self.running[cand.beam], cand.token, cand.x);
                self.next_slots[i].score = self.values[m];
                self.next_done[i] = cand.hits && c < nb;
            }
        }
        std::mem::swap(&mut self.slots, &mut self.next_slots);
        std::mem::swap(&mut self.done, &mut self.next_done);
        std::mem::swap(&mut self.running, &mut self.next);

        // Can a running beam still beat the worst finished hypothesis?
        let generated = step + 1;
        let best_length = match self.search.early_stopping() {
            EarlyStopping::Never if lp > 0.0 => self.options.max_new_tokens(),
            _ => generated,
        };
        let best = self.running[0].score / (best_length as f64).powf(f64::from(lp)) as f32;
        let worst = self.slots.iter().map(|s| s.score).fold(f32::INFINITY, f32::min);
        let beatable = self.done.iter().any(|&d| best > if d { worst } else { FAR });
        self.improvable &= beatable;
        &self.parents
    }

    /// Whether the search takes another step.
    fn goes_on(&self) -> bool {
        let full =
            self.search.early_stopping() == EarlyStopping::Done && self.done.iter().all(|&d| d);
        self.improvable && !full && !self.all_ended
    }

    fn into_hypotheses(self) -> Vec<BeamHypothesis> {
        let prompt_len = self.prompt_len;
        let o = self.options;
        let n = self.search.num_return_sequences();
        self.slots
            .into_iter()
            .take(n)
            .map(|mut slot| {
                let tokens = slot.tokens.split_off(prompt_len);
                let finish_reason = finish_reason(o, &tokens);
                BeamHypothesis {
                    tokens,
                    token_scores: slot.token_scores,
                    score: slot.score,
                    finish_reason,
                }
            })
            .collect()
    }
}

/// Whether `beam` extended by `token` ends (EOS or stop sequence).
fn ends(o: &GenerateOptions, prompt_len: usize, beam: &Beam, token: TokenId) -> bool {
    if o.eos_tokens().contains(&token) {
        return true;
    }
    let generated = &beam.tokens[prompt_len..];
    o.stop_sequences().iter().any(|seq| {
        seq.split_last().is_some_and(|(&end, head)| end == token && generated.ends_with(head))
    })
}

/// Offers beam `j`'s continuations (running score `s`, processed row `row`)
/// to the best `k` kept in `top`; `ends(token)` says whether a continuation
/// ends its hypothesis. Returns whether the row has a token above `-inf`.
///
/// Adding `s` is monotone (also after rounding), so a block whose best value
/// cannot pass the threshold is skipped whole: after the first blocks almost
/// every block is.
fn scan(
    top: &mut Vec<Candidate>,
    k: usize,
    row: &[f32],
    j: usize,
    s: f32,
    ends: impl Fn(TokenId) -> bool,
) -> bool {
    let floor = |top: &Vec<Candidate>| {
        if top.len() == k { top[k - 1].value } else { f32::NEG_INFINITY }
    };
    let mut threshold = floor(top);
    let mut row_max = f32::NEG_INFINITY;
    for (b, block) in row.chunks(BLOCK).enumerate() {
        let block_max = crate::math::max(block);
        row_max = row_max.max(block_max);
        if top.len() == k && !(block_max + s > threshold) {
            continue;
        }
        for (i, &x) in block.iter().enumerate() {
            let value = x + s;
            if value > threshold || top.len() < k {
                let token = (b * BLOCK + i) as TokenId;
                let hits = ends(token);
                offer(top, k, Candidate { value, beam: j, token, x, hits });
                threshold = floor(top);
            }
        }
    }
    row_max > f32::NEG_INFINITY
}

/// Checks a row (NaN and `+inf` are errors, as everywhere in the crate) and
/// turns it into log-probabilities in place, with
/// [`LogSoftmax`](crate::processors::LogSoftmax)'s
/// arithmetic: `(x - max) - ln Σ exp(x_j - max)`, the maximum found by the
/// same pass as the check. A row without a finite score is
/// [`Error::AllMasked`].
fn log_softmax(row: &mut [f32]) -> Result<(), Error> {
    let m = crate::math::max_checked(row)?;
    if m == f32::NEG_INFINITY {
        return Err(Error::AllMasked);
    }
    let ln_z = crate::math::sum_exp(row, m).ln() as f32;
    for x in row.iter_mut() {
        *x = (*x - m) - ln_z;
    }
    Ok(())
}

/// Why a hypothesis with these generated ids ended.
fn finish_reason(o: &GenerateOptions, tokens: &[TokenId]) -> FinishReason {
    match tokens.last() {
        Some(&token) if o.eos_tokens().contains(&token) => FinishReason::Eos { token },
        _ => match super::stop::match_sequence(tokens, o.stop_sequences()) {
            Some((index, _)) => FinishReason::StopSequence { index },
            None => FinishReason::Length,
        },
    }
}

/// What beam search does not do of the options (it keeps hypotheses, not
/// one sequence's steps), or a stopping criterion set on the generator.
fn beam_unsupported(options: &GenerateOptions, criterion: bool) -> Option<&'static str> {
    if options.prompt_logprobs().is_some() {
        Some("prompt log-probabilities in beam search")
    } else if options.output_scores() || options.output_logits() {
        Some("rows of scores (output_scores, output_logits) in beam search")
    } else if options.max_time().is_some() {
        Some("a time limit in beam search")
    } else if criterion {
        Some("a stopping criterion in beam search")
    } else {
        None
    }
}
