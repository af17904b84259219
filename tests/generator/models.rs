//! Small deterministic models for driving the generator.

use std::fmt;

use decoding::{LanguageModel, TokenId};

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

#[path = "../common/toy_models.rs"]
mod toy_models;
pub use toy_models::{Bigram, FixedRow, Script};

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
