//! The batching engine: one thread owns the model and advances every active
//! sequence with one batched forward step.
//!
//! # Continuous batching
//!
//! The engine holds up to `slots` sequences, each on its own KV cache of a
//! [`Gpt2Beams`] (the GPT-2 example's batched model). Every iteration it
//!
//! 1. admits waiting sequences into free slots (a request that arrives
//!    while others decode joins at the next step);
//! 2. drops the sequences whose client went away (their slots are free at
//!    once);
//! 3. runs the model: each newly admitted sequence's prompt on its own
//!    cache, then one batched decoding step for all the others (each weight
//!    read once for all of them);
//! 4. hands each sequence its row of scores: its own [`Generator`] (its
//!    pipeline, sampler, seed, stop conditions) chooses the token
//!    ([`Generator::step_row`]), and the step goes to the request's channel;
//!    a finished sequence frees its slot.
//!
//! The model's rows are the bits a lone run gets (the example's batched step
//! is bit-identical to its single-sequence step), and each sequence's
//! generator is the same state machine as a lone run's, so a seeded request
//! gets the same tokens whatever else is in the batch.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use decoding::config::BoxedSampler;
use decoding::{
    BatchInput, BatchLanguageModel, BatchSpan, Generator, Pipeline, Step, TokenId, TokenLogprobs,
};
use gpt2::{Gpt2, Gpt2Beams, Tokenizer};
use tokio::sync::mpsc;

/// One sequence's generator: the request's pipeline and sampler.
pub type SequenceGenerator = Generator<Pipeline, BoxedSampler>;

/// A request: its sequences (one per prompt and choice) and the channel its
/// steps go to.
#[derive(Debug)]
pub struct Job {
    /// The sequences, decoded independently.
    pub sequences: Vec<JobSequence>,
    /// Where the steps go; dropping the receiver cancels the request.
    pub events: mpsc::UnboundedSender<Event>,
}

/// One sequence of a [`Job`].
#[derive(Debug)]
pub struct JobSequence {
    /// Its choice index in the response.
    pub choice: usize,
    /// The prompt's ids (not empty).
    pub prompt: Arc<[TokenId]>,
    /// Its generator (options, pipeline, sampler).
    pub generator: SequenceGenerator,
    /// The prompt's log-probabilities are wanted (`echo` with `logprobs`),
    /// with this many alternatives per token.
    pub prompt_logprobs: Option<usize>,
}

/// What the engine reports to a request.
#[derive(Debug)]
pub enum Event {
    /// The log-probabilities of choice `choice`'s prompt tokens, before its
    /// first step (only when [`JobSequence::prompt_logprobs`] asks): one
    /// record per prompt token, the first with no log-probability (nothing
    /// predicts it).
    Prompt {
        /// The choice index.
        choice: usize,
        /// The records, in prompt order.
        records: Vec<TokenLogprobs>,
    },
    /// A step of choice `choice`; `step.finish_reason` is set on its last.
    Step {
        /// The choice index.
        choice: usize,
        /// The step.
        step: Step,
    },
    /// Choice `choice` failed (a model or decoding error); it is over.
    Failed {
        /// The choice index.
        choice: usize,
        /// What went wrong.
        message: String,
    },
}

/// Counters the engine keeps (read by `/health` and the tests).
#[derive(Debug, Default)]
pub struct Stats {
    /// Sequences holding a slot.
    pub active: AtomicUsize,
    /// Requests accepted but not yet taken in by the engine.
    pub queued: AtomicUsize,
    /// Sequences dropped because their client went away.
    pub cancelled: AtomicU64,
    /// Sequences that ran to a finish reason.
    pub completed: AtomicU64,
    /// Batched steps run.
    pub steps: AtomicU64,
    /// Tokens generated.
    pub tokens: AtomicU64,
}

/// Why a job was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// The queue is full.
    QueueFull,
    /// The engine has stopped.
    Stopped,
}

/// The handle the HTTP side submits jobs through.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    jobs: mpsc::Sender<Job>,
    stats: Arc<Stats>,
    slots: usize,
}

impl EngineHandle {
    /// Queues a job, or says why not (never waits).
    pub fn submit(&self, job: Job) -> Result<(), Rejected> {
        // Counted first: the engine may take the job before `try_send` returns.
        self.stats.queued.fetch_add(1, Ordering::SeqCst);
        self.jobs.try_send(job).map_err(|e| {
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            match e {
                mpsc::error::TrySendError::Full(_) => Rejected::QueueFull,
                mpsc::error::TrySendError::Closed(_) => Rejected::Stopped,
            }
        })
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Number of slots (sequences decoded together at most).
    pub fn slots(&self) -> usize {
        self.slots
    }
}

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Sequences decoded together at most (KV caches held).
    pub slots: usize,
    /// Requests waiting for a slot at most; more are refused.
    pub queue: usize,
    /// A pause after every batched step (none by default; tests use it to
    /// keep sequences in flight).
    pub step_delay: Option<Duration>,
}

/// Starts the engine thread with `model` (its threads already set) and
/// `tokenizer`. The thread ends once every handle is dropped and the
/// sequences in flight are done.
///
/// # Errors
///
/// The thread could not be spawned.
pub fn spawn(
    model: Gpt2,
    tokenizer: Arc<Tokenizer>,
    config: &EngineConfig,
) -> std::io::Result<(EngineHandle, std::thread::JoinHandle<()>)> {
    let slots = config.slots.max(1);
    let (tx, rx) = mpsc::channel(config.queue.max(1));
    let stats = Arc::new(Stats::default());
    let engine = Engine::new(Gpt2Beams::new(model, slots), tokenizer, stats.clone(), config);
    let thread =
        std::thread::Builder::new().name("decode-engine".into()).spawn(move || engine.run(rx))?;
    Ok((EngineHandle { jobs: tx, stats, slots }, thread))
}

/// A sequence holding a slot.
struct Active {
    slot: usize,
    choice: usize,
    generator: SequenceGenerator,
    events: mpsc::UnboundedSender<Event>,
    prompt_logprobs: Option<usize>,
}

/// Prompt positions scored per model call when a prompt's
/// log-probabilities are wanted (the rows are read as they come).
const PROMPT_ROWS: usize = 32;

struct Engine {
    model: Gpt2Beams,
    tokenizer: Arc<Tokenizer>,
    stats: Arc<Stats>,
    step_delay: Option<Duration>,
    free: Vec<usize>,
    waiting: VecDeque<(JobSequence, mpsc::UnboundedSender<Event>)>,
    active: Vec<Active>,
    /// Row of the logits buffer for each active sequence.
    rows: Vec<usize>,
    logits: Vec<f32>,
    tokens: Vec<TokenId>,
    spans: Vec<BatchSpan>,
    /// Active sequences that fed the decoding step, in row order.
    decoding: Vec<usize>,
    /// Rows of a prompt whose log-probabilities are wanted (allocated on
    /// first use).
    prompt_rows: Vec<f32>,
}

impl Engine {
    fn new(
        model: Gpt2Beams,
        tokenizer: Arc<Tokenizer>,
        stats: Arc<Stats>,
        config: &EngineConfig,
    ) -> Self {
        let slots = model.max_sequences();
        let v = model.vocab_size();
        Engine {
            model,
            tokenizer,
            stats,
            step_delay: config.step_delay,
            free: (0..slots).rev().collect(),
            waiting: VecDeque::new(),
            active: Vec::with_capacity(slots),
            rows: Vec::with_capacity(slots),
            logits: vec![0.0; slots * v],
            tokens: Vec::new(),
            spans: Vec::with_capacity(slots),
            decoding: Vec::with_capacity(slots),
            prompt_rows: Vec::new(),
        }
    }

    fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        loop {
            if !self.admit(&mut jobs) {
                return;
            }
            self.drop_cancelled();
            self.stats.active.store(self.active.len(), Ordering::SeqCst);
            if self.active.is_empty() {
                continue;
            }
            self.forward();
            self.sample();
            self.stats.active.store(self.active.len(), Ordering::SeqCst);
            self.stats.steps.fetch_add(1, Ordering::Relaxed);
            if let Some(pause) = self.step_delay {
                std::thread::sleep(pause);
            }
        }
    }

    /// Fills free slots from the waiting sequences and the queue; blocks
    /// while nothing is active. `false` once the queue is closed and
    /// nothing is left to do.
    fn admit(&mut self, jobs: &mut mpsc::Receiver<Job>) -> bool {
        while !self.free.is_empty() {
            if let Some((seq, events)) = self.waiting.pop_front() {
                self.start(seq, events);
                continue;
            }
            let job = if self.active.is_empty() {
                match jobs.blocking_recv() {
                    Some(job) => job,
                    None => return false,
                }
            } else {
                match jobs.try_recv() {
                    Ok(job) => job,
                    Err(_) => break,
                }
            };
            self.stats.queued.fetch_sub(1, Ordering::SeqCst);
            for seq in job.sequences {
                self.waiting.push_back((seq, job.events.clone()));
            }
        }
        true
    }

    fn start(&mut self, mut seq: JobSequence, events: mpsc::UnboundedSender<Event>) {
        if events.is_closed() {
            self.stats.cancelled.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let v = self.model.vocab_size();
        if let Err(e) = seq.generator.begin::<Infallible>(v, &seq.prompt, true) {
            let _ = events.send(Event::Failed { choice: seq.choice, message: e.to_string() });
            return;
        }
        let Some(slot) = self.free.pop() else { return };
        if let Err(e) = self.model.reset_sequence(slot) {
            self.free.push(slot);
            let _ = events.send(Event::Failed { choice: seq.choice, message: e.to_string() });
            return;
        }
        if seq.prompt_logprobs.is_some() && seq.prompt.len() == 1 {
            // A one-token prompt: nothing predicts its token.
            let records = vec![unpredicted(seq.prompt[0])];
            let _ = events.send(Event::Prompt { choice: seq.choice, records });
        }
        self.active.push(Active {
            slot,
            choice: seq.choice,
            generator: seq.generator,
            events,
            prompt_logprobs: seq.prompt_logprobs,
        });
    }

    fn drop_cancelled(&mut self) {
        let (free, stats) = (&mut self.free, &self.stats);
        self.active.retain(|a| {
            let gone = a.events.is_closed();
            if gone {
                free.push(a.slot);
                stats.cancelled.fetch_add(1, Ordering::Relaxed);
            }
            !gone
        });
    }

    /// Runs the model for every active sequence: the one-token entries in
    /// one batched step, each prompt on its own. Fills `rows`; a sequence
    /// whose model call failed gets `usize::MAX` and is failed in
    /// [`Engine::sample`].
    fn forward(&mut self) {
        let v = self.model.vocab_size();
        self.tokens.clear();
        self.spans.clear();
        self.decoding.clear();
        self.rows.clear();
        self.rows.resize(self.active.len(), usize::MAX);
        for (i, a) in self.active.iter().enumerate() {
            let pending = a.generator.pending_input();
            if pending.len() == 1 {
                let start = self.tokens.len();
                self.tokens.push(pending[0]);
                let position = a.generator.pending_position();
                self.spans.push(BatchSpan { sequence: a.slot, position, start, end: start + 1 });
                self.decoding.push(i);
            }
        }
        let batch = self.decoding.len();
        if batch > 0 {
            let input = BatchInput::new(&self.tokens, &self.spans);
            if self.model.forward_batch(&input, &mut self.logits[..batch * v]).is_ok() {
                for (row, &i) in self.decoding.iter().enumerate() {
                    self.rows[i] = row;
                }
            }
        }
        let mut row = batch;
        for i in 0..self.active.len() {
            let a = &self.active[i];
            let pending = a.generator.pending_input();
            if pending.len() > 1 {
                let ok = if a.prompt_logprobs.is_some() {
                    self.prompt_with_logprobs(i, row)
                } else {
                    let position = a.generator.pending_position();
                    let span =
                        [BatchSpan { sequence: a.slot, position, start: 0, end: pending.len() }];
                    let input = BatchInput::new(pending, &span);
                    let out = &mut self.logits[row * v..(row + 1) * v];
                    self.model.forward_batch(&input, out).is_ok()
                };
                if ok {
                    self.rows[i] = row;
                }
                row += 1;
            }
        }
    }

    /// Runs active sequence `i`'s prompt [`PROMPT_ROWS`] positions at a
    /// time with the logits of every position, sends the prompt's
    /// log-probabilities (the crate's raw record of each token in the row
    /// before it, [`TokenLogprobs::from_raw_row`]: the numbers a run with
    /// prompt log-probabilities gets) and leaves the last row in logits
    /// row `row`: the bits the plain prompt step gives. `false` when the
    /// model failed.
    fn prompt_with_logprobs(&mut self, i: usize, row: usize) -> bool {
        let v = self.model.vocab_size();
        let a = &self.active[i];
        let top = a.prompt_logprobs.unwrap_or(0);
        let prompt = a.generator.pending_input();
        let start = a.generator.pending_position();
        if self.prompt_rows.is_empty() {
            self.prompt_rows = vec![0.0; PROMPT_ROWS * v];
        }
        let mut records = Vec::with_capacity(prompt.len());
        records.push(unpredicted(prompt[0]));
        for (c, piece) in prompt.chunks(PROMPT_ROWS).enumerate() {
            let rows = &mut self.prompt_rows[..piece.len() * v];
            let position = start + c * PROMPT_ROWS;
            if self.model.forward_all_sequence(a.slot, piece, position, rows).is_err() {
                return false;
            }
            for (j, scores) in rows.chunks_exact(v).enumerate() {
                match prompt.get(c * PROMPT_ROWS + j + 1) {
                    Some(&next) => match TokenLogprobs::from_raw_row(scores, next, top) {
                        Ok(record) => records.push(record),
                        // A non-finite row: the sequence fails (as its
                        // first step would).
                        Err(_) => return false,
                    },
                    None => self.logits[row * v..(row + 1) * v].copy_from_slice(scores),
                }
            }
        }
        let _ = a.events.send(Event::Prompt { choice: a.choice, records });
        true
    }

    /// Each sequence's step on its row; finished and failed ones free their
    /// slots.
    fn sample(&mut self) {
        let v = self.model.vocab_size();
        let tokenizer: &Tokenizer = &self.tokenizer;
        let mut i = 0;
        let mut index = 0;
        while i < self.active.len() {
            let row = self.rows[index];
            index += 1;
            let a = &mut self.active[i];
            // A sequence that ends is counted out of the active ones before
            // its last event goes out: a client that has read its end never
            // sees its slot still held.
            let over = if row == usize::MAX {
                let message = "the model failed on this sequence".to_string();
                self.stats.active.fetch_sub(1, Ordering::SeqCst);
                let _ = a.events.send(Event::Failed { choice: a.choice, message });
                true
            } else {
                let logits = &mut self.logits[row * v..(row + 1) * v];
                match a.generator.step_row::<Infallible>(logits, Some(tokenizer)) {
                    Ok(step) => {
                        self.stats.tokens.fetch_add(1, Ordering::Relaxed);
                        let done = step.finish_reason.is_some();
                        if done {
                            self.stats.completed.fetch_add(1, Ordering::Relaxed);
                            self.stats.active.fetch_sub(1, Ordering::SeqCst);
                        }
                        // A closed channel is dropped at the next iteration.
                        let _ = a.events.send(Event::Step { choice: a.choice, step });
                        done
                    }
                    Err(e) => {
                        let message = e.to_string();
                        self.stats.active.fetch_sub(1, Ordering::SeqCst);
                        let _ = a.events.send(Event::Failed { choice: a.choice, message });
                        true
                    }
                }
            };
            if over {
                let a = self.active.remove(i);
                self.free.push(a.slot);
            } else {
                i += 1;
            }
        }
    }
}

/// The record of a token with no log-probability (a prompt's first).
fn unpredicted(token: TokenId) -> TokenLogprobs {
    let mut record = TokenLogprobs::default();
    record.token = token;
    record
}
