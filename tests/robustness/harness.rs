//! The "never panics, never lies" harness, shared by the fuzz targets
//! (`fuzz/fuzz_targets/*.rs` include this file) and by the property tests
//! and crash regressions of `tests/robustness`.
//!
//! Each entry point takes arbitrary bytes, decodes them into a complete
//! case (every byte string is a valid case, so the fuzzer never wastes an
//! input), runs the crate on it and asserts the crate's guarantees:
//!
//! - [`pipeline`]: a pipeline built from arbitrary parameters, applied to
//!   arbitrary f32 bit patterns, then sampled (greedy, seeded categorical,
//!   or categorical driven by an injected random source that returns edge
//!   words such as 0 and `u64::MAX`).
//! - [`generator`]: the generator driven by a model that returns arbitrary
//!   rows, fails, or changes its vocabulary, with arbitrary options, stop
//!   conditions and detokenizer, run one-shot, streamed and batched.
//! - [`strategies`]: beam search and speculative decoding (greedy and
//!   sampled verification) on the same kind of model, options and
//!   processors, with arbitrary beam settings and draft lengths.
//! - [`sizes`]: the same cases with huge sizes (`usize::MAX`, just past
//!   the bounds the crate documents, `2^40`, ...) for every size a user
//!   passes: lengths, beams, returned sequences, drafted tokens, top
//!   log-probabilities, the tokenizer's vocabulary, processor windows.
//!
//! The generator and strategies targets run every case twice, once with
//! [`Poison`] after each stage: it fills the slots outside the live set
//! with junk, which by the invariant of `Scores` changes nothing, so both
//! runs must agree exactly. A consumer that reads a stale slot instead of
//! the processed row (beam search once did) breaks the agreement.
//!
//! A violated guarantee is a panic with a message saying which.

// `fuzzing` is set by cargo-fuzz; `serde` is the crate's feature.
#![allow(dead_code, unexpected_cfgs)]

use std::fmt;

use decoding::processors::{
    Argmax, BadWords, EpsilonCutoff, EtaCutoff, LogSoftmax, LogitBias, MinNewTokens, MinP,
    NoRepeatNGram, PresenceFrequencyPenalty, RepetitionPenalty, SequenceBias, SuppressTokens,
    SuppressTokensAtBegin, Temperature, TopH, TopK, TopP, Typical,
};
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    BatchSequence, Context, Error, FinishReason, GenerateError, GenerateOptions, Generation,
    Generator, LanguageModel, LogitsProcessor, LogprobMode, Pipeline, Sampled, Sampler, TokenId,
    generate_batch, rng_from_seed,
};

// ------------------------------------------------------------ byte reader

/// Reads values from the fuzz input. Reading past the end cycles through
/// the input again (an empty input reads zeros), so every input decodes to
/// a complete case.
#[derive(Debug)]
pub struct Bytes<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bytes<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Bytes { data, pos: 0 }
    }

    pub fn u8(&mut self) -> u8 {
        if self.data.is_empty() {
            return 0;
        }
        let b = self.data[self.pos % self.data.len()];
        self.pos += 1;
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn u64(&mut self) -> u64 {
        u64::from(self.u32()) | (u64::from(self.u32()) << 32)
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        self.u16() as usize % n
    }

    /// A processor parameter: edge values, values on a grid, any bit pattern.
    pub fn param(&mut self) -> f32 {
        const EDGES: [f32; 28] = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.5,
            2.0,
            -2.0,
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            f32::MIN_POSITIVE,
            1e-45,
            1e-30,
            1e-8,
            1e30,
            f32::MAX,
            f32::MIN,
            f32::EPSILON,
            0.99999994,
            1.0000001,
            0.1,
            0.9,
            0.999,
            100.0,
            2.0000002,
            -2.0000002,
            1e6,
            0.25,
        ];
        match self.u8() % 4 {
            0 => EDGES[self.below(EDGES.len())],
            1 => f32::from(self.u8()) / 255.0,
            2 => f32::from_bits(self.u32()),
            _ => f32::from(self.u16()) / 1000.0 - 8.0,
        }
    }

    /// A logit: mostly moderate values with ties and masks, sometimes edge
    /// values (±1e30, ±f32::MAX, subnormals, NaN, ±inf), sometimes any bit
    /// pattern (NaN payloads, negative zero, ...).
    pub fn score(&mut self) -> f32 {
        const EDGES: [f32; 16] = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            1e30,
            -1e30,
            f32::MAX,
            f32::MIN,
            3e38,
            -3e38,
            1e-45,
            -1e-45,
            -0.0,
            88.7,
            -88.7,
            1000.0,
            -1000.0,
        ];
        match self.u8() % 10 {
            0..=3 => (f32::from(self.u8()) - 128.0) / 16.0,
            4 => f32::NEG_INFINITY,
            5 => f32::from(self.u8() % 3),
            6 => EDGES[self.below(EDGES.len())],
            7 => f32::from_bits(self.u32()),
            8 => f32::from(self.u16()) / 64.0 - 512.0,
            _ => f32::from(self.u8()) / -2.0,
        }
    }

    /// A token id: mostly in range for a vocabulary of `v`, sometimes just
    /// past it, sometimes anything.
    pub fn token(&mut self, v: usize) -> TokenId {
        match self.u8() % 8 {
            0 => self.u32(),
            1 => (v + self.below(3)) as TokenId,
            _ => self.below(v.max(1)) as TokenId,
        }
    }

    pub fn tokens(&mut self, v: usize, max_len: usize) -> Vec<TokenId> {
        let n = self.below(max_len + 1);
        (0..n).map(|_| self.token(v)).collect()
    }

    pub fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let n = self.below(max_len + 1);
        (0..n).map(|_| self.u8()).collect()
    }
}

// ------------------------------------------------------------ processors

/// One stage of a pipeline, as decoded (built twice: the pipeline's twin
/// must make the same choices).
#[derive(Debug, Clone)]
pub enum StageSpec {
    Temperature(f32),
    TopK(usize, usize),
    TopP(f32, usize),
    MinP(f32, usize),
    Typical(f32, usize),
    Epsilon(f32, usize),
    Eta(f32, usize),
    TopH(f32),
    Argmax,
    Repetition(f32),
    PresenceFrequency(f32, f32),
    LogitBias(Vec<(TokenId, f32)>),
    SequenceBias(Vec<(Vec<TokenId>, f32)>),
    NoRepeatNGram(usize),
    BadWords(Vec<Vec<TokenId>>, Vec<TokenId>),
    Suppress(Vec<TokenId>),
    SuppressAtBegin(Vec<TokenId>),
    MinNewTokens(usize, Vec<TokenId>),
    LogSoftmax,
}

impl StageSpec {
    pub fn decode(b: &mut Bytes<'_>, v: usize) -> StageSpec {
        let keep = |b: &mut Bytes<'_>| match b.u8() % 8 {
            0 => 0,
            1 => b.below(3000),
            2 => usize::MAX,
            _ => 1 + b.below(4),
        };
        let count = |b: &mut Bytes<'_>| match b.u8() % 8 {
            0 => 0,
            1 => usize::MAX,
            2 => v + b.below(5),
            _ => 1 + b.below(v.max(1) + 2),
        };
        match b.u8() % 19 {
            0 => StageSpec::Temperature(b.param()),
            1 => StageSpec::TopK(count(b), keep(b)),
            2 => StageSpec::TopP(b.param(), keep(b)),
            3 => StageSpec::MinP(b.param(), keep(b)),
            4 => StageSpec::Typical(b.param(), keep(b)),
            5 => StageSpec::Epsilon(b.param(), keep(b)),
            6 => StageSpec::Eta(b.param(), keep(b)),
            7 => StageSpec::TopH(b.param()),
            8 => StageSpec::Argmax,
            9 => StageSpec::Repetition(b.param()),
            10 => StageSpec::PresenceFrequency(b.param(), b.param()),
            11 => {
                let n = b.below(5);
                StageSpec::LogitBias((0..n).map(|_| (b.token(v), b.param())).collect())
            }
            12 => {
                let n = b.below(4);
                StageSpec::SequenceBias((0..n).map(|_| (b.tokens(v, 3), b.param())).collect())
            }
            13 => StageSpec::NoRepeatNGram(b.below(5)),
            14 => {
                let n = b.below(4);
                StageSpec::BadWords((0..n).map(|_| b.tokens(v, 3)).collect(), b.tokens(v, 2))
            }
            15 => StageSpec::Suppress(b.tokens(v, 4)),
            16 => StageSpec::SuppressAtBegin(b.tokens(v, 4)),
            17 => StageSpec::MinNewTokens(b.below(6), b.tokens(v, 2)),
            _ => StageSpec::LogSoftmax,
        }
    }

    /// The f32 parameters, to check that a NaN is never accepted.
    fn float_params(&self) -> Vec<f32> {
        match self {
            StageSpec::Temperature(x)
            | StageSpec::TopP(x, _)
            | StageSpec::MinP(x, _)
            | StageSpec::Typical(x, _)
            | StageSpec::Epsilon(x, _)
            | StageSpec::Eta(x, _)
            | StageSpec::TopH(x)
            | StageSpec::Repetition(x) => vec![*x],
            StageSpec::PresenceFrequency(a, c) => vec![*a, *c],
            StageSpec::LogitBias(v) => v.iter().map(|e| e.1).collect(),
            StageSpec::SequenceBias(v) => v.iter().map(|e| e.1).collect(),
            _ => Vec::new(),
        }
    }

    /// Builds the stage. A constructor may only fail with
    /// `InvalidParameter`, and must fail on every NaN parameter.
    pub fn build(&self) -> Option<Box<dyn LogitsProcessor + Send>> {
        fn boxed<P: LogitsProcessor + Send + 'static>(
            r: Result<P, Error>,
        ) -> Result<Box<dyn LogitsProcessor + Send>, Error> {
            r.map(|p| Box::new(p) as Box<dyn LogitsProcessor + Send>)
        }
        let built = match self.clone() {
            StageSpec::Temperature(t) => boxed(Temperature::new(t)),
            StageSpec::TopK(k, m) => boxed(TopK::new(k).and_then(|p| p.min_tokens_to_keep(m))),
            StageSpec::TopP(p, m) => boxed(TopP::new(p).and_then(|p| p.min_tokens_to_keep(m))),
            StageSpec::MinP(p, m) => boxed(MinP::new(p).and_then(|p| p.min_tokens_to_keep(m))),
            StageSpec::Typical(p, m) => {
                boxed(Typical::new(p).and_then(|p| p.min_tokens_to_keep(m)))
            }
            StageSpec::Epsilon(p, m) => {
                boxed(EpsilonCutoff::new(p).and_then(|p| p.min_tokens_to_keep(m)))
            }
            StageSpec::Eta(p, m) => boxed(EtaCutoff::new(p).and_then(|p| p.min_tokens_to_keep(m))),
            StageSpec::TopH(p) => boxed(TopH::new(p)),
            StageSpec::Argmax => boxed(Ok(Argmax::new())),
            StageSpec::Repetition(p) => boxed(RepetitionPenalty::new(p)),
            StageSpec::PresenceFrequency(a, c) => boxed(PresenceFrequencyPenalty::new(a, c)),
            StageSpec::LogitBias(v) => boxed(LogitBias::new(v)),
            StageSpec::SequenceBias(v) => boxed(SequenceBias::new(v)),
            StageSpec::NoRepeatNGram(n) => boxed(NoRepeatNGram::new(n)),
            StageSpec::BadWords(s, eos) => boxed(BadWords::new(s, &eos)),
            StageSpec::Suppress(ids) => boxed(Ok(SuppressTokens::new(ids))),
            StageSpec::SuppressAtBegin(ids) => boxed(Ok(SuppressTokensAtBegin::new(ids))),
            StageSpec::MinNewTokens(n, eos) => boxed(MinNewTokens::new(n, eos)),
            StageSpec::LogSoftmax => boxed(Ok(LogSoftmax::new())),
        };
        match built {
            Ok(p) => {
                let params = self.float_params();
                assert!(!params.iter().any(|x| x.is_nan()), "{self:?} accepted a NaN parameter");
                Some(p)
            }
            Err(Error::InvalidParameter { .. }) => None,
            Err(e) => panic!("{self:?}: a constructor failed with {e:?}, not InvalidParameter"),
        }
    }
}

/// Decodes up to `max` stages and builds the pipeline twice (for two
/// independent paths over the same processing).
pub fn decode_stages(b: &mut Bytes<'_>, v: usize, max: usize) -> Vec<StageSpec> {
    let n = b.below(max + 1);
    (0..n).map(|_| StageSpec::decode(b, v)).collect()
}

pub fn build_pipeline(specs: &[StageSpec]) -> Pipeline {
    let mut p = Pipeline::new();
    for s in specs {
        if let Some(stage) = s.build() {
            p.push_boxed(stage);
        }
    }
    p
}

/// [`build_pipeline`] with a [`Poison`] after every stage.
pub fn build_poisoned_pipeline(specs: &[StageSpec]) -> Pipeline {
    let mut p = Pipeline::new();
    for s in specs {
        if let Some(stage) = s.build() {
            p.push_boxed(stage);
            p.push(Poison);
        }
    }
    p
}

/// Fills every slot outside the live set with junk (`f32::MAX`, NaN,
/// `-f32::MAX`, `1e30` by turns), then restores the live set and its sorted
/// mark. A token outside the live set has the processed score `-inf`
/// whatever its slot holds, so this changes no processed score: a run with
/// it must equal a run without it, and a consumer that reads stale slots
/// (picking a poisoned token, or tripping on its NaN) does not.
#[derive(Debug)]
pub struct Poison;

impl LogitsProcessor for Poison {
    fn process(
        &mut self,
        _ctx: &Context<'_>,
        scores: &mut decoding::Scores<'_>,
    ) -> Result<(), Error> {
        const JUNK: [f32; 4] = [f32::MAX, f32::NAN, -f32::MAX, 1e30];
        let Some(ids) = scores.live_ids() else {
            return Ok(());
        };
        let ids = ids.to_vec();
        let sorted = scores.is_sorted();
        let mut live = vec![false; scores.vocab_size()];
        for &id in &ids {
            live[id as usize] = true;
        }
        for (i, x) in scores.values_mut().iter_mut().enumerate() {
            if !live[i] {
                *x = JUNK[i % JUNK.len()];
            }
        }
        scores.set_live(ids, sorted);
        Ok(())
    }
}

// ------------------------------------------------------------ random sources

/// A random source of fixed words, cycling: the way to reach the uniform
/// draw's edges through [`Sampler::sample`].
#[path = "../common/words.rs"]
mod words;
pub use words::Words;

// ------------------------------------------------------------ helpers

/// The first NaN or `+inf` of a row, as the crate must report it.
pub fn first_invalid(row: &[f32]) -> Option<(usize, f32)> {
    row.iter().position(|x| x.is_nan() || *x == f32::INFINITY).map(|i| (i, row[i]))
}

/// The error a row must produce before any processor runs, if any.
pub fn row_error(row: &[f32]) -> Option<Error> {
    if row.is_empty() {
        return Some(Error::EmptyRow);
    }
    first_invalid(row).map(|(index, value)| Error::InvalidLogit { index, value })
}

/// Error equality that compares NaN values by bits.
pub fn same_error(a: &Error, b: &Error) -> bool {
    match (a, b) {
        (
            Error::InvalidLogit { index: i, value: x },
            Error::InvalidLogit { index: j, value: y },
        ) => i == j && x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

/// The first maximum of a processed row (greedy's rule).
fn first_argmax(row: &[f32]) -> Option<usize> {
    let mut best: Option<usize> = None;
    for (i, &x) in row.iter().enumerate() {
        if x > f32::NEG_INFINITY && best.is_none_or(|b| x > row[b]) {
            best = Some(i);
        }
    }
    best
}

/// Checks one sampled token against the fully processed row.
fn check_sampled(s: &Sampled, dense: &[f32], greedy: bool, what: &str) {
    let t = s.token as usize;
    assert!(t < dense.len(), "{what}: token {t} out of range {}", dense.len());
    let m = dense.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let x = dense[t];
    assert!(x > f32::NEG_INFINITY, "{what}: token {t} has processed score -inf");
    let weight = (x - m).exp();
    assert!(weight > 0.0, "{what}: token {t} has processed probability 0 ({x} vs max {m})");
    if greedy {
        assert_eq!(Some(t), first_argmax(dense), "{what}: greedy is not the first maximum");
    }
    assert!(s.logprob.is_finite() && s.logprob <= 1e-6, "{what}: log-prob {}", s.logprob);
    // The log-probability is that of the token under the processed row.
    let z: f64 = dense.iter().map(|&y| f64::from((y - m).exp())).sum();
    let expected = f64::from(x - m) - z.ln();
    let tol = 1e-3 + 1e-5 * expected.abs();
    assert!(
        (f64::from(s.logprob) - expected).abs() <= tol,
        "{what}: log-prob {} but the processed row gives {expected}",
        s.logprob
    );
}

// ------------------------------------------------------------ target (a)

/// Fuzz target (a): a pipeline of arbitrary stages on an arbitrary row,
/// then a sampler.
pub fn pipeline(data: &[u8]) {
    let mut b = Bytes::new(data);
    let v = match b.u8() % 8 {
        0 => 0,
        1 => 1000 + b.below(3200),
        _ => b.below(64),
    };
    let row: Vec<f32> = (0..v).map(|_| b.score()).collect();
    let specs = decode_stages(&mut b, v, 6);
    let history = b.tokens(v, 12);
    let prompt_len = b.below(history.len() + 1);
    let ctx = Context::new(&history, prompt_len).expect("prompt_len <= len");
    let sampler_kind = b.u8() % 3;
    let seed = b.u64();
    let words = [
        match b.u8() % 4 {
            0 => 0,
            1 => u64::MAX,
            2 => u64::MAX >> 1,
            _ => b.u64(),
        },
        b.u64(),
    ];

    // Path 1: process, writing the whole processed row back.
    let mut dense = row.clone();
    let mut p1 = build_pipeline(&specs);
    let processed = p1.process(&ctx, &mut dense);

    // Path 2: the fast path, processing then sampling without writing back.
    let mut p2 = build_pipeline(&specs);
    let mut fast = row.clone();
    let mut rng = rng_from_seed(seed);
    let mut words_rng = Words::new(&words);
    let (sampled, greedy) = match sampler_kind {
        0 => (p2.sample(&ctx, &mut fast, &mut Greedy::new(), &mut rng), true),
        1 => (p2.sample(&ctx, &mut fast, &mut Categorical::new(), &mut rng), false),
        _ => (p2.sample(&ctx, &mut fast, &mut Categorical::new(), &mut words_rng), false),
    };

    if let Some(expected) = row_error(&row) {
        let e1 = processed.expect_err("a bad row was processed");
        let e2 = sampled.expect_err("a bad row was sampled");
        assert!(same_error(&e1, &expected), "process: {e1:?}, expected {expected:?}");
        assert!(same_error(&e2, &expected), "sample: {e2:?}, expected {expected:?}");
        return;
    }
    if let Err(e) = processed {
        assert!(
            matches!(e, Error::TokenOutOfRange { id, vocab_size } if id as usize >= vocab_size && vocab_size == v),
            "process failed on a valid row: {e:?}"
        );
        assert_eq!(sampled.expect_err("sample succeeded where process failed"), e);
        return;
    }
    for (i, (&x, &y)) in row.iter().zip(&dense).enumerate() {
        assert!(!y.is_nan() && y != f32::INFINITY, "processed score {i} is {y}");
        if x == f32::NEG_INFINITY {
            assert_eq!(y, f32::NEG_INFINITY, "masked token {i} was revived");
        }
    }
    if dense.iter().all(|&x| x == f32::NEG_INFINITY) {
        assert_eq!(sampled, Err(Error::AllMasked));
        return;
    }
    let s = sampled.unwrap_or_else(|e| panic!("sampling a row with candidates failed: {e:?}"));
    check_sampled(&s, &dense, greedy, "pipeline");

    // Sampling the written-back row agrees on what may be drawn.
    let mut live = Vec::new();
    let mut again = dense.clone();
    let scores = decoding::Scores::new(&mut again, &mut live);
    let s = if greedy {
        Greedy::new().sample(&scores, &mut rng_from_seed(seed))
    } else {
        Categorical::new().sample(&scores, &mut Words::new(&words))
    }
    .expect("sampling the processed row");
    check_sampled(&s, &dense, greedy, "dense row");

    // The batch path gives what the single path gave, seed for seed.
    #[cfg(feature = "ndarray")]
    if sampler_kind < 2 && v > 0 {
        let mut p3 = build_pipeline(&specs);
        let batch = ndarray::Array2::from_shape_vec((1, v), row.clone()).expect("shape");
        let mut out = Vec::new();
        let mut rngs = [rng_from_seed(seed)];
        let r = if greedy {
            p3.sample_batch(&[ctx], batch.view(), &mut Greedy::new(), &mut rngs, &mut out)
        } else {
            p3.sample_batch(&[ctx], batch.view(), &mut Categorical::new(), &mut rngs, &mut out)
        };
        r.expect("batch of one valid row");
        let mut p4 = build_pipeline(&specs);
        let mut single_row = row.clone();
        let single = if greedy {
            p4.sample(&ctx, &mut single_row, &mut Greedy::new(), &mut rng_from_seed(seed))
        } else {
            p4.sample(&ctx, &mut single_row, &mut Categorical::new(), &mut rng_from_seed(seed))
        };
        assert_eq!(out, vec![single.expect("single row")], "batch differs from single");
    }
}

// ------------------------------------------------------------ target (c)

/// The model's error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelFailed(pub usize);

impl fmt::Display for ModelFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "model call {} failed", self.0)
    }
}

impl std::error::Error for ModelFailed {}

/// What the model does at one call.
#[derive(Debug, Clone)]
pub enum Action {
    /// Writes this row (cycled to the vocabulary size; zeros if empty).
    Row(Vec<f32>),
    /// Fails.
    Fail,
    /// Reports another vocabulary size before this call.
    Resize(usize),
}

/// A model that plays a script of actions (cycled), recording every call.
#[derive(Debug, Clone)]
pub struct FuzzModel {
    pub vocab: usize,
    pub actions: Vec<Action>,
    pub calls: usize,
    pub forwards: Vec<Vec<TokenId>>,
    pub rows: Vec<Vec<f32>>,
}

impl FuzzModel {
    pub fn new(vocab: usize, actions: Vec<Action>) -> Self {
        FuzzModel { vocab, actions, calls: 0, forwards: Vec::new(), rows: Vec::new() }
    }

    fn action(&self, call: usize) -> Option<&Action> {
        if self.actions.is_empty() { None } else { Some(&self.actions[call % self.actions.len()]) }
    }

    /// The vocabulary the model reports before call `call`.
    pub fn vocab_at(&self, call: usize) -> usize {
        match self.action(call) {
            Some(Action::Resize(n)) => *n,
            _ => self.vocab,
        }
    }
}

impl LanguageModel for FuzzModel {
    type Error = ModelFailed;
    fn vocab_size(&self) -> usize {
        self.vocab_at(self.calls)
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), ModelFailed> {
        let call = self.calls;
        self.calls += 1;
        self.forwards.push(tokens.to_vec());
        match self.action(call).cloned() {
            Some(Action::Fail) => return Err(ModelFailed(call)),
            Some(Action::Row(r)) if !r.is_empty() => {
                for (i, x) in logits.iter_mut().enumerate() {
                    *x = r[i % r.len()];
                }
            }
            _ => logits.fill(0.0),
        }
        self.rows.push(logits.to_vec());
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.calls = 0;
        self.forwards.clear();
        self.rows.clear();
        Ok(())
    }
}

/// A decoded generator case.
#[derive(Debug, Clone)]
pub struct GenCase {
    pub model: FuzzModel,
    pub stages: Vec<StageSpec>,
    pub greedy: bool,
    pub builder: decoding::GenerateOptionsBuilder,
    pub pieces: Vec<Vec<u8>>,
    pub prompt: Vec<TokenId>,
    pub mode: u8,
}

impl GenCase {
    pub fn decode(data: &[u8]) -> GenCase {
        let mut b = Bytes::new(data);
        let v = match b.u8() % 16 {
            0 => 0,
            _ => 1 + b.below(24),
        };
        let n_actions = b.below(6);
        let actions = (0..n_actions)
            .map(|_| match b.u8() % 10 {
                0 => Action::Fail,
                1 => Action::Resize(b.below(v + 3)),
                _ => {
                    let len = 1 + b.below(v.max(1));
                    Action::Row((0..len).map(|_| b.score()).collect())
                }
            })
            .collect();
        let stages = decode_stages(&mut b, v, 3);
        let greedy = b.bool();

        let max_new = match b.u8() % 8 {
            0 => 0,
            _ => b.below(12),
        };
        let mut builder = GenerateOptions::builder(max_new).seed(b.u64());
        if b.bool() {
            builder = builder.min_new_tokens(b.below(6));
        }
        for _ in 0..b.below(3) {
            builder = builder.eos_token(b.token(v));
        }
        let pieces: Vec<Vec<u8>> = {
            let n = match b.u8() % 8 {
                0 => b.below(v + 1),
                _ => v,
            };
            (0..n)
                .map(|_| match b.u8() % 4 {
                    0 => b.bytes(4),
                    1 => vec![b"ab\n"[b.below(3)]],
                    2 => "é€😀".as_bytes()[..b.below(10)].to_vec(),
                    _ => vec![b'a' + b.u8() % 3],
                })
                .collect()
        };
        for _ in 0..b.below(3) {
            builder = builder.stop_sequence(b.tokens(v, 3));
        }
        for _ in 0..b.below(3) {
            // Stop strings made of pieces, so that they occur.
            let mut s = Vec::new();
            for _ in 0..b.below(3) + 1 {
                if let Some(p) = pieces.get(b.below(pieces.len().max(1))) {
                    s.extend_from_slice(p);
                }
            }
            let cut = b.below(s.len() + 1);
            let s = if b.bool() { &s[cut..] } else { &s[..] };
            builder = builder.stop_string(String::from_utf8_lossy(s).into_owned());
        }
        if b.u8() % 4 == 0 {
            builder = builder.vocab_size(b.below(v + 3));
        }
        match b.u8() % 4 {
            0 => builder = builder.logprobs(LogprobMode::Raw),
            1 => builder = builder.logprobs(LogprobMode::Processed),
            2 => builder = builder.logprobs(LogprobMode::Both),
            _ => {}
        }
        if b.bool() {
            builder = builder.top_logprobs(b.below(5));
        }
        let prompt = match b.u8() % 8 {
            0 => Vec::new(),
            _ => {
                let mut p = b.tokens(v, 4);
                p.push(b.token(v));
                p
            }
        };
        let mode = b.u8();
        GenCase { model: FuzzModel::new(v, actions), stages, greedy, builder, pieces, prompt, mode }
    }

    fn generator(&self, options: GenerateOptions) -> Generator<Pipeline, Box<dyn Sampler + Send>> {
        let sampler: Box<dyn Sampler + Send> =
            if self.greedy { Box::new(Greedy::new()) } else { Box::new(Categorical::new()) };
        Generator::new(build_pipeline(&self.stages), sampler, options)
    }

    /// [`GenCase::generator`] with a [`Poison`] after every stage: it must
    /// give exactly what the plain one gives.
    fn poisoned_generator(
        &self,
        options: GenerateOptions,
    ) -> Generator<Pipeline, Box<dyn Sampler + Send>> {
        let sampler: Box<dyn Sampler + Send> =
            if self.greedy { Box::new(Greedy::new()) } else { Box::new(Categorical::new()) };
        Generator::new(build_poisoned_pipeline(&self.stages), sampler, options)
    }
}

type GenResult = Result<Generation, GenerateError<ModelFailed>>;

/// Fuzz target (c): the generator driven by a model that returns arbitrary
/// rows and errors.
pub fn generator(data: &[u8]) {
    let case = GenCase::decode(data);
    let options = match case.builder.clone().build() {
        Ok(o) => o,
        Err(e) => {
            assert!(
                matches!(e, Error::InvalidParameter { .. } | Error::TokenOutOfRange { .. }),
                "options failed with {e:?}"
            );
            return;
        }
    };
    let with_text = case.mode & 1 == 1 || !options.stop_strings().is_empty();
    let pieces = &case.pieces;

    // One-shot run.
    let mut model = case.model.clone();
    let mut g = case.generator(options.clone());
    let result: GenResult = if with_text {
        g.generate_text(&mut model, pieces, &case.prompt)
    } else {
        g.generate(&mut model, &case.prompt)
    };
    let partial = g.generated().to_vec();
    check_run(&case, &options, &model, &result, &partial, with_text);

    // The stream yields the same tokens, text and outcome.
    let mut model2 = case.model.clone();
    // The stream runs the poisoned pipeline: it must agree all the same.
    let mut g2 = case.poisoned_generator(options.clone());
    let stream = if with_text {
        g2.stream_text(&mut model2, pieces, &case.prompt)
    } else {
        g2.stream(&mut model2, &case.prompt)
    };
    match stream {
        Err(e) => {
            let r = result.as_ref().expect_err("the stream failed to start, the run did not");
            assert_eq!(e.to_string(), r.to_string(), "start errors differ");
        }
        Ok(stream) => {
            let mut tokens = Vec::new();
            let mut text = String::new();
            let mut finish = None;
            let mut error = None;
            for (i, step) in stream.enumerate() {
                assert!(error.is_none(), "the stream went on after an error");
                assert!(finish.is_none(), "the stream went on after it finished");
                match step {
                    Ok(step) => {
                        assert_eq!(step.index, i);
                        tokens.push(step.token);
                        text.push_str(&step.text);
                        finish = step.finish_reason;
                    }
                    Err(e) => error = Some(e),
                }
            }
            match &result {
                Ok(out) => {
                    assert!(error.is_none(), "the stream failed, the run did not: {error:?}");
                    assert_eq!(tokens, out.tokens, "stream tokens");
                    if !out.tokens.is_empty() {
                        assert_eq!(finish, Some(out.finish_reason), "stream finish");
                    }
                    if with_text {
                        assert_eq!(Some(&text), out.text.as_ref(), "stream text");
                    }
                }
                Err(e) => {
                    let se = error.expect("the run failed, the stream did not");
                    assert_eq!(se.to_string(), e.to_string(), "stream error");
                    assert_eq!(se.step(), e.step());
                    assert_eq!(tokens, partial, "stream tokens before the error");
                }
            }
        }
    }

    // A batch of two equal sequences gives each the single run's result.
    if case.mode & 2 == 2 {
        let mut models = vec![case.model.clone(), case.model.clone()];
        let mut ga = case.generator(options.clone());
        let mut gb = case.generator(options.clone());
        let mut seqs =
            [BatchSequence::new(&mut ga, &case.prompt), BatchSequence::new(&mut gb, &case.prompt)];
        if with_text {
            let [a, b] = seqs;
            seqs = [a.with_detokenizer(pieces), b.with_detokenizer(pieces)];
        }
        match generate_batch(&mut models, &mut seqs) {
            Ok(results) => {
                assert_eq!(results.len(), 2);
                for r in &results {
                    match (r, &result) {
                        (Ok(x), Ok(y)) => assert_eq!(x, y, "batch result differs"),
                        (Err(x), Err(y)) => {
                            assert_eq!(x.to_string(), y.to_string(), "batch error differs")
                        }
                        (x, y) => panic!("batch {x:?} vs single {y:?}"),
                    }
                }
            }
            Err(e) => {
                // A model failure or a vocabulary change ends the batch; the
                // single run met the same one.
                let y = result.as_ref().expect_err("the batch failed, the single run did not");
                assert!(
                    matches!(e, GenerateError::Model { .. } | GenerateError::LogitsLength { .. }),
                    "batch failed with {e}"
                );
                assert_eq!(e.to_string(), y.to_string(), "batch error differs");
            }
        }
    }
}

/// The guarantees of one finished (or failed) run.
fn check_run(
    case: &GenCase,
    options: &GenerateOptions,
    model: &FuzzModel,
    result: &GenResult,
    partial: &[TokenId],
    with_text: bool,
) {
    let v0 = case.model.vocab_at(0);
    let n = options.vocab_size().unwrap_or(v0).min(v0);
    let eos = options.eos_tokens();
    // Exactly one model call per step, none after the last token.
    let steps_tried = model.forwards.len();
    match result {
        Ok(out) => {
            let tokens = &out.tokens;
            assert_eq!(partial, &tokens[..]);
            assert!(tokens.len() <= options.max_new_tokens(), "more than max_new_tokens");
            assert_eq!(steps_tried, tokens.len(), "model calls != tokens");
            for (i, &t) in tokens.iter().enumerate() {
                assert!((t as usize) < n, "token {t} at step {i} is not below {n}");
                let raw = model.rows[i][t as usize];
                assert!(raw > f32::NEG_INFINITY, "step {i}: token {t} was masked by the model");
                if i < options.min_new_tokens() {
                    assert!(!eos.contains(&t), "EOS {t} before min_new_tokens");
                }
                // No stop condition held before the last token.
                if i + 1 < tokens.len() {
                    assert!(!eos.contains(&t), "the run went on after EOS");
                    for s in options.stop_sequences() {
                        assert!(
                            !tokens[..=i].ends_with(s),
                            "the run went on after a stop sequence"
                        );
                    }
                }
            }
            // What the model was fed: the prompt, then each new token.
            for (i, fed) in model.forwards.iter().enumerate() {
                if i == 0 {
                    assert_eq!(fed, &case.prompt);
                } else {
                    assert_eq!(fed, &[tokens[i - 1]]);
                }
            }
            match out.finish_reason {
                FinishReason::Length => {
                    assert_eq!(tokens.len(), options.max_new_tokens(), "Length before the limit")
                }
                FinishReason::Eos { token } => {
                    assert_eq!(tokens.last(), Some(&token));
                    assert!(eos.contains(&token));
                }
                FinishReason::StopSequence { index } => {
                    assert!(tokens.ends_with(&options.stop_sequences()[index]))
                }
                FinishReason::StopString { index } => {
                    assert!(index < options.stop_strings().len());
                }
                _ => {}
            }
            if let Some(text) = &out.text {
                assert!(with_text);
                if !matches!(out.finish_reason, FinishReason::StopString { .. }) {
                    for s in options.stop_strings() {
                        assert!(!text.contains(s.as_str()), "{text:?} holds stop string {s:?}");
                    }
                }
            }
            if let Some(lps) = &out.logprobs {
                assert_eq!(lps.len(), tokens.len());
                for (i, (lp, &t)) in lps.iter().zip(tokens).enumerate() {
                    assert_eq!(lp.token, t);
                    if let Some(x) = lp.processed {
                        assert!(x.is_finite() && x <= 1e-6, "processed log-prob {x}");
                    }
                    if let Some(x) = lp.raw {
                        // The raw log-probability may be -inf only where
                        // it lies beyond f32's range (`x - max < -f32::MAX`):
                        // a token the processors revived from a raw
                        // probability of e^(-1e38) or so.
                        let row = &model.rows[i][..n];
                        let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                        let d = f64::from(row[t as usize]) - f64::from(m);
                        let beyond = d < -f64::from(f32::MAX);
                        assert!(
                            !x.is_nan() && x <= 1e-6 && (x.is_finite() || beyond),
                            "raw log-prob {x} for a raw score {d} below the maximum"
                        );
                    }
                    for top in [&lp.raw_top, &lp.processed_top] {
                        assert!(top.len() <= options.top_logprobs());
                        for w in top.windows(2) {
                            assert!(w[0].logprob >= w[1].logprob, "top log-probs out of order");
                        }
                        for e in top.iter() {
                            assert!(e.logprob <= 1e-6 && !e.logprob.is_nan());
                        }
                    }
                }
            }
        }
        Err(e) => {
            if let Some(step) = e.step() {
                assert_eq!(partial.len(), step, "tokens kept before the failing step");
                assert!(step < options.max_new_tokens().max(1));
            } else {
                assert!(partial.is_empty());
                assert_eq!(steps_tried, 0, "the model was called before a start error");
            }
            match e {
                GenerateError::EmptyPrompt => assert!(case.prompt.is_empty()),
                GenerateError::MissingDetokenizer => assert!(!with_text),
                GenerateError::VocabMismatch { model: m, tokenizer } => {
                    assert!(m < tokenizer);
                }
                GenerateError::LogitsLength { step, actual, expected } => {
                    assert_eq!(*actual, case.model.vocab_at(*step));
                    assert_eq!(*expected, v0);
                    assert_eq!(steps_tried, *step);
                }
                GenerateError::Model { step, source } => {
                    assert_eq!(source.0, *step);
                    assert_eq!(steps_tried, step + 1);
                }
                GenerateError::Decoding { step, source } => {
                    let row = &model.rows[*step][..n];
                    match row_error(row) {
                        Some(expected) => assert!(
                            same_error(source, &expected),
                            "step {step}: {source:?}, expected {expected:?}"
                        ),
                        None => assert!(
                            matches!(source, Error::AllMasked | Error::TokenOutOfRange { .. }),
                            "step {step}: unexpected {source:?} on a valid row"
                        ),
                    }
                }
                GenerateError::UnknownToken { token, .. } => {
                    assert!(with_text && (*token as usize) >= case.pieces.len());
                }
                other => panic!("unexpected error {other}"),
            }
        }
    }
}

// ------------------------------------------------------------ target (b)

/// Fuzz target (b): the configuration readers on arbitrary bytes (as text):
/// `generation_config.json`, an OpenAI-style request and a llama.cpp
/// sampler list. Whatever parses must build a plan or fail with a typed
/// error, write JSON that reads back to the same value, and the plan must
/// run on a row without breaking the pipeline guarantees.
#[cfg(any(feature = "serde", fuzzing))]
pub fn config(data: &[u8]) {
    use decoding::config::{
        GenerationConfig, HiddenDefaults, LlamaCppSampling, LlamaCppStage, OpenAiParams,
    };

    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let mut b = Bytes::new(data);

    let model = GenerationConfig::from_json(text);
    if let Ok(c) = &model {
        let again = GenerationConfig::from_json(&c.to_json())
            .unwrap_or_else(|e| panic!("to_json of {c:?} does not read back: {e}"));
        // Unsupported settings come back with the same keys (a list or an
        // object is written as its description, so the value may differ).
        let keys = |c: &GenerationConfig| c.unsupported.iter().map(|u| u.key).collect::<Vec<_>>();
        assert_eq!(keys(&again), keys(c), "unsupported settings round trip");
        let strip =
            |c: &GenerationConfig| GenerationConfig { unsupported: Vec::new(), ..c.clone() };
        assert_eq!(strip(&again), strip(c), "generation config round trip");
        let _ = c.validate();
        let _ = c.merge(c);
        for hidden in [HiddenDefaults::TRANSFORMERS, HiddenDefaults::TRANSFORMERS.without_top_k()] {
            if c.build_with(hidden).is_ok() {
                run_plan(|| c.build_with(hidden).expect("built once"), &mut b);
            }
        }
    }
    if let Ok(p) = OpenAiParams::from_json(text) {
        let _ = p.validate();
        let _ = p.to_generation_config();
        let base = model.unwrap_or_default();
        if p.build(&base).is_ok() {
            run_plan(|| p.build(&base).expect("built once"), &mut b);
        }
    }
    if let Ok(list) = LlamaCppStage::parse_list(text) {
        let s = LlamaCppSampling { samplers: list, ..LlamaCppSampling::default() };
        if s.build().is_ok() {
            run_plan(|| s.build().expect("built once"), &mut b);
        }
    }
}

/// Runs a plan (built twice: one for the fast path, one written back) on a
/// row decoded from the input, with the checks of [`pipeline`].
#[cfg(any(feature = "serde", fuzzing))]
fn run_plan(build: impl Fn() -> decoding::config::DecodingPlan, b: &mut Bytes<'_>) {
    let plan = build();
    assert!(!plan.to_string().is_empty());
    for prompt_len in [0, 1, 4096, usize::MAX] {
        let _ = plan.generate_options(prompt_len, 0);
    }
    let greedy = plan.is_greedy();
    let v = 1 + b.below(300);
    let row: Vec<f32> = (0..v).map(|_| b.score()).collect();
    let history = b.tokens(v, 8);
    let ctx = Context::new(&history, b.below(history.len() + 1)).expect("prompt_len <= len");
    let seed = b.u64();

    let (mut fast, mut sampler, _) = plan.into_parts();
    let mut buf = row.clone();
    let sampled = fast.sample(&ctx, &mut buf, &mut *sampler, &mut rng_from_seed(seed));
    let (mut twin, _, _) = build().into_parts();
    let mut dense = row.clone();
    let processed = twin.process(&ctx, &mut dense);
    if let Some(expected) = row_error(&row) {
        assert!(same_error(&sampled.expect_err("bad row sampled"), &expected));
        return;
    }
    match processed {
        Err(e) => {
            assert!(
                matches!(e, Error::TokenOutOfRange { .. }),
                "a plan failed on a valid row: {e:?}"
            );
            assert_eq!(sampled.expect_err("sample succeeded where process failed"), e);
        }
        Ok(()) => {
            for (i, (&x, &y)) in row.iter().zip(&dense).enumerate() {
                assert!(!y.is_nan() && y != f32::INFINITY, "processed score {i} is {y}");
                if x == f32::NEG_INFINITY {
                    assert_eq!(y, f32::NEG_INFINITY, "masked token {i} was revived");
                }
            }
            if dense.iter().all(|&x| x == f32::NEG_INFINITY) {
                assert_eq!(sampled, Err(Error::AllMasked));
            } else {
                let s = sampled.unwrap_or_else(|e| panic!("sampling failed: {e:?}"));
                check_sampled(&s, &dense, greedy, "plan");
            }
        }
    }
}

// ------------------------------------------------------------ strategies

/// Nothing to undo: the fuzz model's rows follow its calls, not positions.
impl decoding::RewindableModel for FuzzModel {
    fn rewind(&mut self, _len: usize) -> Result<(), ModelFailed> {
        Ok(())
    }
}

/// Fuzz target (d): beam search and speculative decoding on a model that
/// returns arbitrary rows, fails or changes its vocabulary, with arbitrary
/// processors, options, beam settings and draft lengths.
pub fn strategies(data: &[u8]) {
    let case = GenCase::decode(data);
    let Ok(options) = case.builder.clone().build() else {
        return; // Option errors are the generator target's business.
    };
    // The strategy's own settings come from the input read backwards.
    let rev: Vec<u8> = data.iter().rev().copied().collect();
    let mut b = Bytes::new(&rev);
    beam(&case, &options, &mut b);
    speculative(&case, &options, &mut b);
}

fn beam(case: &GenCase, options: &GenerateOptions, b: &mut Bytes<'_>) {
    let nb = 1 + b.below(4);
    let mut search = decoding::BeamSearch::new(nb).expect("1 to 4 beams are valid");
    let lp = if b.bool() { b.param() } else { f32::from(b.u8() % 5) / 2.0 - 1.0 };
    match search.with_length_penalty(lp) {
        Ok(s) => search = s,
        Err(e) => assert!(!lp.is_finite(), "length penalty {lp} refused: {e}"),
    }
    search = search.with_early_stopping(match b.u8() % 3 {
        0 => decoding::EarlyStopping::Heuristic,
        1 => decoding::EarlyStopping::Done,
        _ => decoding::EarlyStopping::Never,
    });
    search = search.with_sampling(b.bool());
    let nrs = 1 + b.below(nb + 1);
    match search.with_num_return_sequences(nrs) {
        Ok(s) => search = s,
        Err(_) => assert!(nrs > nb, "num_return_sequences {nrs} of {nb} refused"),
    }
    let mut generator = case.generator(options.clone());
    let mut models = vec![case.model.clone(); nb];
    let result = generator.beam_search(&mut models, &case.prompt, &search);
    let mut poisoned = case.poisoned_generator(options.clone());
    let mut models = vec![case.model.clone(); nb];
    let again = poisoned.beam_search(&mut models, &case.prompt, &search);
    assert_eq!(format!("{again:?}"), format!("{result:?}"), "stale slots changed a beam search");
    let v0 = case.model.vocab_at(0);
    let n = options.vocab_size().unwrap_or(v0).min(v0);
    let hypotheses = match result {
        Ok(h) => h,
        Err(e) => {
            match &e {
                GenerateError::EmptyPrompt => assert!(case.prompt.is_empty()),
                GenerateError::Unsupported { .. } => assert!(!options.stop_strings().is_empty()),
                GenerateError::VocabMismatch { .. }
                | GenerateError::LogitsLength { .. }
                | GenerateError::Model { .. }
                | GenerateError::Decoding { .. } => {}
                other => panic!("beam search failed with {other}"),
            }
            return;
        }
    };
    let max_new = options.max_new_tokens();
    let want = if max_new == 0 { 1 } else { search.num_return_sequences() };
    assert_eq!(hypotheses.len(), want, "hypotheses returned");
    for pair in hypotheses.windows(2) {
        assert!(pair[0].score >= pair[1].score, "hypotheses out of order (or a NaN score)");
    }
    let eos = options.eos_tokens();
    for h in &hypotheses {
        assert!(h.tokens.len() <= max_new, "a hypothesis longer than max_new_tokens");
        assert_eq!(h.tokens.len(), h.token_scores.len());
        for &t in &h.tokens {
            assert!((t as usize) < n, "token {t} is not below {n}");
        }
        if let FinishReason::Eos { token } = h.finish_reason {
            assert_eq!(h.tokens.last(), Some(&token));
            assert!(eos.contains(&token));
        }
        // The score is the penalized sum of the token scores, give or take
        // transformers' -1e9 stand-ins: `a` of them in the running sum (beams
        // that started as copies of the first one, continuations kept only
        // because too few others existed), `b` added after the penalty
        // (candidates that may not finish).
        if h.tokens.is_empty() || !h.score.is_finite() {
            continue;
        }
        let sum: f32 = h.token_scores.iter().sum();
        // As transformers: `length ** length_penalty` in f64, then f32.
        let penalty = (h.tokens.len() as f64).powf(f64::from(search.length_penalty())) as f32;
        if !sum.is_finite() || !penalty.is_normal() {
            continue;
        }
        let (sum, penalty, score) = (f64::from(sum), f64::from(penalty), f64::from(h.score));
        let explained = |a: f64, b: f64| {
            let expected = (sum - a * 1e9) / penalty - b * 1e9;
            let slack =
                1e-4 * expected.abs().max(sum.abs() / penalty).max(1.0) + (a / penalty + b) * 1e3;
            (score - expected).abs() <= slack
        };
        let stand_ins = (0..=max_new + 1)
            .flat_map(|a| (0..4).map(move |b| (a as f64, b as f64)))
            .find(|&(a, b)| explained(a, b));
        let Some((a, b)) = stand_ins else {
            panic!(
                "score {score} is not the penalized sum {sum} (penalty {penalty}) with stand-ins"
            );
        };
        // A hypothesis that met no stand-in respects the minimum length and
        // has no masked token.
        if a == 0.0 && b == 0.0 {
            assert!(h.token_scores.iter().all(|x| x.is_finite()), "a masked token");
            let early = &h.tokens[..options.min_new_tokens().min(h.tokens.len())];
            assert!(!early.iter().any(|t| eos.contains(t)), "EOS before min_new_tokens");
        }
    }
}

fn speculative(case: &GenCase, options: &GenerateOptions, b: &mut Bytes<'_>) {
    let k = 1 + b.below(5);
    let verification =
        if b.bool() { decoding::Verification::Greedy } else { decoding::Verification::Sampled };
    let spec = decoding::SpeculativeOptions::new(k, verification).expect("k >= 1 is valid");
    let target = case.model.clone();
    let mut draft = case.model.clone();
    // A draft that differs: its script shifted by one call.
    if !draft.actions.is_empty() {
        draft.actions.rotate_left(1);
    }
    let run = |mut generator: Generator<Pipeline, Box<dyn Sampler + Send>>| {
        let (mut target, mut draft) = (target.clone(), draft.clone());
        let pieces = &case.pieces;
        let result = if options.stop_strings().is_empty() {
            generator.generate_speculative(&mut target, &mut draft, &case.prompt, &spec)
        } else {
            generator.generate_speculative_text(
                &mut target,
                &mut draft,
                pieces,
                &case.prompt,
                &spec,
            )
        };
        (result, generator.speculative_stats())
    };
    let (result, stats) = run(case.generator(options.clone()));
    let again = run(case.poisoned_generator(options.clone()));
    assert_eq!(
        format!("{again:?}"),
        format!("{:?}", (&result, stats)),
        "stale slots changed a speculative run"
    );
    match result {
        Ok(out) => {
            let v0 = case.model.vocab_at(0);
            let n = options.vocab_size().unwrap_or(v0).min(v0);
            assert!(out.tokens.len() <= options.max_new_tokens());
            for &t in &out.tokens {
                assert!((t as usize) < n, "token {t} is not below {n}");
            }
            assert_eq!(stats.accepted + stats.corrections + stats.bonus, out.tokens.len());
            assert!(stats.accepted + stats.corrections <= stats.drafted);
            let eos = options.eos_tokens();
            if let Some((last, before)) = out.tokens.split_last() {
                assert!(!before.iter().any(|t| eos.contains(t)), "the run went on after EOS");
                if let FinishReason::Eos { token } = out.finish_reason {
                    assert_eq!(*last, token);
                }
            }
            let early = &out.tokens[..options.min_new_tokens().min(out.tokens.len())];
            assert!(!early.iter().any(|t| eos.contains(t)), "EOS before min_new_tokens");
        }
        Err(e) => match e {
            GenerateError::EmptyPrompt => assert!(case.prompt.is_empty()),
            GenerateError::VocabMismatch { .. }
            | GenerateError::DraftVocabMismatch { .. }
            | GenerateError::LogitsLength { .. }
            | GenerateError::Model { .. }
            | GenerateError::DraftModel { .. }
            | GenerateError::Decoding { .. }
            | GenerateError::UnknownToken { .. } => {}
            other => panic!("speculative decoding failed with {other}"),
        },
    }
}

// ------------------------------------------------------------ sizes

/// A size a user may pass: mostly huge (`usize::MAX` and its neighbours,
/// just past the bounds the crate documents, sizes whose products with a
/// vocabulary overflow), sometimes small.
fn size(b: &mut Bytes<'_>) -> usize {
    const HUGE: [usize; 10] = [
        usize::MAX,
        usize::MAX - 1,
        usize::MAX / 2 + 1,
        isize::MAX as usize,
        u32::MAX as usize,
        u32::MAX as usize + 1,
        1 << 40,
        decoding::BeamSearch::MAX_BEAMS,
        decoding::BeamSearch::MAX_BEAMS + 1,
        1 << 20,
    ];
    match b.u8() % 4 {
        0 => b.below(6),
        _ => HUGE[b.below(HUGE.len())],
    }
}

/// A model that holds any number of sequences: every sequence plays the
/// [`FuzzModel`]'s script in step (one action per call of the batch), so a
/// search of thousands of beams costs one row per beam and step.
#[derive(Debug)]
struct Unbounded {
    model: FuzzModel,
}

impl decoding::BatchLanguageModel for Unbounded {
    type Error = ModelFailed;
    fn vocab_size(&self) -> usize {
        LanguageModel::vocab_size(&self.model)
    }
    fn max_sequences(&self) -> usize {
        usize::MAX
    }
    fn forward_batch(
        &mut self,
        input: &decoding::BatchInput<'_>,
        logits: &mut [f32],
    ) -> Result<(), ModelFailed> {
        let v = LanguageModel::vocab_size(&self.model);
        let tokens: Vec<TokenId> = input.iter().flat_map(|e| e.tokens.iter().copied()).collect();
        let (first, rest) = logits.split_at_mut(v.min(logits.len()));
        let position = input.get(0).map_or(0, |e| e.position);
        self.model.forward(&tokens, position, first)?;
        for row in rest.chunks_mut(v.max(1)) {
            row.copy_from_slice(&first[..row.len()]);
        }
        Ok(())
    }
    fn reset_sequence(&mut self, _sequence: usize) -> Result<(), ModelFailed> {
        Ok(())
    }
}

impl decoding::BeamLanguageModel for Unbounded {
    fn reorder(&mut self, _parents: &[usize]) -> Result<(), ModelFailed> {
        Ok(())
    }
}

/// Fuzz target (e): every size a user passes, huge. The generator case of
/// [`generator`] gets huge lengths, a huge number of top log-probabilities
/// and a huge tokenizer vocabulary; beam search huge numbers of beams and
/// returned sequences (on a model of unbounded capacity); speculative
/// decoding a huge number of drafted tokens; processors huge windows and
/// `k`s. The model's script ends with a failure, so a run with a huge
/// length limit ends. Whatever a constructor accepts must run to a result
/// or a typed error: no panic, no capacity overflow, no allocation sized by
/// a request rather than by the work done.
pub fn sizes(data: &[u8]) {
    let mut case = GenCase::decode(data);
    case.model.actions.push(Action::Fail);
    let rev: Vec<u8> = data.iter().rev().copied().collect();
    let mut b = Bytes::new(&rev);
    let v = case.model.vocab;

    let mut builder = case.builder.clone();
    if b.bool() {
        builder = builder.max_new_tokens(size(&mut b));
    }
    if b.bool() {
        builder = builder.min_new_tokens(size(&mut b));
    }
    if b.bool() {
        builder = builder.logprobs(LogprobMode::Both).top_logprobs(size(&mut b));
    }
    if b.u8() % 4 == 0 {
        builder = builder.vocab_size(size(&mut b));
    }
    let options = match builder.build() {
        Ok(o) => o,
        Err(e) => {
            assert!(
                matches!(e, Error::InvalidParameter { .. } | Error::TokenOutOfRange { .. }),
                "options failed with {e:?}"
            );
            return;
        }
    };
    // Processors with huge sizes, after the case's own stages.
    let mut extra: Vec<Box<dyn LogitsProcessor + Send>> = Vec::new();
    for _ in 0..b.below(3) {
        let n = size(&mut b);
        let built: Result<Box<dyn LogitsProcessor + Send>, Error> = match b.u8() % 6 {
            0 => TopK::new(n)
                .and_then(|p| p.min_tokens_to_keep(size(&mut b)))
                .map(|p| Box::new(p) as _),
            1 => NoRepeatNGram::new(n).map(|p| Box::new(p) as _),
            2 => MinNewTokens::new(n, [b.token(v)]).map(|p| Box::new(p) as _),
            3 => decoding::processors::MinLength::new(n, [b.token(v)]).map(|p| Box::new(p) as _),
            4 => decoding::processors::WindowedPenalties::new(n, 1.1, 0.5, 0.5)
                .map(|p| Box::new(p) as _),
            _ => TopP::new(0.9).and_then(|p| p.min_tokens_to_keep(n)).map(|p| Box::new(p) as _),
        };
        match built {
            Ok(p) => extra.push(p),
            Err(e) => assert!(matches!(e, Error::InvalidParameter { .. }), "{e:?}"),
        }
    }
    let pipeline = |extra: &mut Vec<Box<dyn LogitsProcessor + Send>>| {
        let mut p = build_pipeline(&case.stages);
        p.extend(extra.drain(..));
        p
    };
    let sampler = || -> Box<dyn Sampler + Send> {
        if case.greedy { Box::new(Greedy::new()) } else { Box::new(Categorical::new()) }
    };
    let ok_or_typed = |what: &str, e: &GenerateError<ModelFailed>| match e {
        GenerateError::EmptyPrompt
        | GenerateError::MissingDetokenizer
        | GenerateError::VocabMismatch { .. }
        | GenerateError::LogitsLength { .. }
        | GenerateError::Model { .. }
        | GenerateError::Decoding { .. }
        | GenerateError::UnknownToken { .. }
        | GenerateError::DraftVocabMismatch { .. }
        | GenerateError::DraftModel { .. }
        | GenerateError::BatchTooLarge { .. }
        | GenerateError::Unsupported { .. } => {}
        other => panic!("{what} failed with {other}"),
    };

    // Plain generation.
    let mut generator = Generator::new(pipeline(&mut extra), sampler(), options.clone());
    let mut model = case.model.clone();
    let result = if case.pieces.is_empty() || options.stop_strings().is_empty() {
        generator.generate(&mut model, &case.prompt)
    } else {
        generator.generate_text(&mut model, &case.pieces, &case.prompt)
    };
    match &result {
        Ok(out) => assert!(out.tokens.len() <= options.max_new_tokens()),
        Err(e) => ok_or_typed("generate", e),
    }

    // Beam search: huge numbers of beams and returned sequences.
    let nb = size(&mut b);
    match decoding::BeamSearch::new(nb) {
        Err(e) => {
            assert!(nb == 0 || nb > decoding::BeamSearch::MAX_BEAMS, "{nb} beams refused: {e}");
            assert!(matches!(e, Error::InvalidParameter { name: "num_beams", .. }));
        }
        Ok(mut search) => {
            let nrs = size(&mut b);
            match search.with_num_return_sequences(nrs) {
                Ok(s) => search = s,
                Err(e) => {
                    assert!(nrs == 0 || nrs > nb, "{nrs} of {nb} refused");
                    assert!(matches!(e, Error::InvalidParameter { .. }));
                }
            }
            search = search.with_sampling(b.bool());
            let mut generator =
                Generator::new(build_pipeline(&case.stages), sampler(), options.clone());
            let mut model = Unbounded { model: case.model.clone() };
            match generator.beam_search(&mut model, &case.prompt, &search) {
                Ok(h) => {
                    assert!(!h.is_empty() && h.len() <= search.num_return_sequences());
                    for h in &h {
                        assert!(h.tokens.len() <= options.max_new_tokens());
                    }
                }
                Err(e) => ok_or_typed("beam search", &e),
            }
        }
    }

    // Speculative decoding: a huge number of drafted tokens.
    let k = size(&mut b);
    let verification =
        if b.bool() { decoding::Verification::Greedy } else { decoding::Verification::Sampled };
    match decoding::SpeculativeOptions::new(k, verification) {
        Err(e) => assert!(k == 0 && matches!(e, Error::InvalidParameter { .. }), "{e:?}"),
        Ok(spec) => {
            let mut generator =
                Generator::new(build_pipeline(&case.stages), sampler(), options.clone());
            let (mut target, mut draft) = (case.model.clone(), case.model.clone());
            let result = if options.stop_strings().is_empty() {
                generator.generate_speculative(&mut target, &mut draft, &case.prompt, &spec)
            } else {
                generator.generate_speculative_text(
                    &mut target,
                    &mut draft,
                    &case.pieces,
                    &case.prompt,
                    &spec,
                )
            };
            match &result {
                Ok(out) => assert!(out.tokens.len() <= options.max_new_tokens()),
                Err(e) => ok_or_typed("speculative decoding", e),
            }
        }
    }
}
