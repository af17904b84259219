//! Small deterministic models shared by the test crates: a bigram table
//! (the scores after a token depend on that token only), a model that
//! always writes the same row, and one that plays a script of tokens.
//!
//! Included with `#[path = ".../common/toy_models.rs"] mod toy_models;`.

#![allow(dead_code)]

use decoding::{LanguageModel, RewindableModel, TokenId};

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

    /// A `v x v` table in which token `t` is followed by `t + 1 + i`
    /// (mod `v`) with score `scores[i]`, every other token scoring 0: a
    /// model whose greedy run counts up.
    pub fn successor(v: usize, scores: &[f32]) -> Self {
        let table = (0..v)
            .map(|t| {
                let mut row = vec![0.0; v];
                for (i, &s) in scores.iter().enumerate() {
                    row[(t + 1 + i) % v] = s;
                }
                row
            })
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
