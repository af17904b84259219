//! Small deterministic models for driving the generator.

use std::fmt;

use decoding::{LanguageModel, RewindableModel, TokenId};

/// A model's own error type: which call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelError {
    pub call: usize,
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "model call {} failed", self.call)
    }
}

impl std::error::Error for ModelError {}

/// Every forward call (the tokens fed) and the number of resets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calls {
    pub forwards: Vec<Vec<TokenId>>,
    /// The position passed with each call of `forwards`.
    pub positions: Vec<usize>,
    pub resets: usize,
}

/// Wraps a model and records every call made to it.
#[derive(Debug, Clone)]
pub struct Recorder<M> {
    pub inner: M,
    pub calls: Calls,
}

impl<M> Recorder<M> {
    pub fn new(inner: M) -> Self {
        Recorder { inner, calls: Calls::default() }
    }
}

impl<M: LanguageModel> LanguageModel for Recorder<M> {
    type Error = M::Error;
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.calls.forwards.push(tokens.to_vec());
        self.calls.positions.push(position);
        self.inner.forward(tokens, position, logits)
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.calls.resets += 1;
        self.inner.reset()
    }
}

/// A bigram table: the scores after token `t` are row `t` of the table. It
/// keeps the last token it was fed (its whole "cache").
#[derive(Debug, Clone)]
pub struct Bigram {
    pub table: Vec<Vec<f32>>,
    last: Option<TokenId>,
}

impl Bigram {
    pub fn new(table: Vec<Vec<f32>>) -> Self {
        Bigram { table, last: None }
    }

    /// A `v x v` table with a fixed, irregular pattern of scores in
    /// `[-2, 2]`: every row has a clear order but no token dominates.
    pub fn pattern(v: usize) -> Self {
        let table = (0..v)
            .map(|a| (0..v).map(|b| ((a * 7 + b * 13 + a * b) % 17) as f32 / 4.0 - 2.0).collect())
            .collect();
        Bigram::new(table)
    }

    pub fn row(&self, last: TokenId) -> &[f32] {
        &self.table[last as usize]
    }
}

impl LanguageModel for Bigram {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        self.table.len()
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.last = tokens.last().copied().or(self.last);
        let last = self.last.unwrap_or(0) as usize;
        logits.copy_from_slice(&self.table[last]);
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.last = None;
        Ok(())
    }
}

/// The bigram state is the last token fed; the call after a rewind always
/// feeds at least one token, which replaces it, so nothing is undone.
impl RewindableModel for Bigram {
    fn rewind(&mut self, _len: usize) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Emits a fixed script of tokens under greedy decoding: at its `i`-th call
/// since the last reset, token `script[i]` scores 10 and every other 0.
#[derive(Debug, Clone)]
pub struct Script {
    pub vocab: usize,
    pub script: Vec<TokenId>,
    pos: usize,
}

impl Script {
    pub fn new(vocab: usize, script: &[TokenId]) -> Self {
        Script { vocab, script: script.to_vec(), pos: 0 }
    }
}

impl LanguageModel for Script {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn forward(
        &mut self,
        _tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        logits.fill(0.0);
        if let Some(&t) = self.script.get(self.pos) {
            logits[t as usize] = 10.0;
        }
        self.pos += 1;
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.pos = 0;
        Ok(())
    }
}

/// Always writes the same row.
#[derive(Debug, Clone)]
pub struct FixedRow(pub Vec<f32>);

impl LanguageModel for FixedRow {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        self.0.len()
    }
    fn forward(
        &mut self,
        _tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        logits.copy_from_slice(&self.0);
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

impl RewindableModel for FixedRow {
    fn rewind(&mut self, _len: usize) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Writes a NaN into an otherwise fine row from its `from`-th call on
/// (0-based), and NaN everywhere when `from == 0`.
#[derive(Debug, Clone)]
pub struct NanFrom {
    pub vocab: usize,
    pub from: usize,
    calls: usize,
}

impl NanFrom {
    pub fn new(vocab: usize, from: usize) -> Self {
        NanFrom { vocab, from, calls: 0 }
    }
}

impl LanguageModel for NanFrom {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn forward(
        &mut self,
        _tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        if self.calls >= self.from {
            logits.fill(f32::NAN);
        } else {
            logits.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32 * 0.1);
        }
        self.calls += 1;
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.calls = 0;
        Ok(())
    }
}

/// Fails at its `fail_at`-th call (1-based) since the last reset; before
/// that it behaves as a [`Bigram::pattern`] model.
#[derive(Debug, Clone)]
pub struct FailOn {
    pub fail_at: usize,
    pub inner: Bigram,
    calls: usize,
}

impl FailOn {
    pub fn new(vocab: usize, fail_at: usize) -> Self {
        FailOn { fail_at, inner: Bigram::pattern(vocab), calls: 0 }
    }
}

impl LanguageModel for FailOn {
    type Error = ModelError;
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.calls += 1;
        if self.calls == self.fail_at {
            return Err(ModelError { call: self.calls });
        }
        match self.inner.forward(tokens, position, logits) {
            Ok(()) => Ok(()),
            Err(never) => match never {},
        }
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.calls = 0;
        match self.inner.reset() {
            Ok(()) => Ok(()),
            Err(never) => match never {},
        }
    }
}

/// A GPT-2-like padded head: `vocab` scores for `tokens` real tokens. The
/// padding rows hold a huge score at `hot` and NaN elsewhere, as untrained
/// rows may; real tokens get a gentle pattern.
#[derive(Debug, Clone)]
pub struct Padded {
    pub vocab: usize,
    pub tokens: usize,
    pub hot: usize,
}

impl LanguageModel for Padded {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn forward(
        &mut self,
        _tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        for (i, x) in logits.iter_mut().enumerate() {
            *x = if i < self.tokens { ((i * 31) % 97) as f32 / 50.0 } else { f32::NAN };
        }
        logits[self.hot] = 100.0;
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Reports a vocabulary one smaller from its `shrink_at`-th call (0-based).
#[derive(Debug, Clone)]
pub struct Shrinking {
    pub vocab: usize,
    pub shrink_at: usize,
    calls: usize,
}

impl Shrinking {
    pub fn new(vocab: usize, shrink_at: usize) -> Self {
        Shrinking { vocab, shrink_at, calls: 0 }
    }
}

impl LanguageModel for Shrinking {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        if self.calls >= self.shrink_at { self.vocab - 1 } else { self.vocab }
    }
    fn forward(
        &mut self,
        _tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        logits.fill(0.0);
        self.calls += 1;
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.calls = 0;
        Ok(())
    }
}

/// A detokenizer table from string pieces.
pub fn vocab(pieces: &[&str]) -> Vec<Vec<u8>> {
    pieces.iter().map(|p| p.as_bytes().to_vec()).collect()
}
