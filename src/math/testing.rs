//! Helpers for the unit tests of the processors.

use crate::{Context, LogitsProcessor, Scores, TokenId};

/// Logits whose softmax is `probs`: `f32(ln p)`.
pub(crate) fn logits(probs: &[f64]) -> Vec<f32> {
    probs.iter().map(|p| p.ln() as f32).collect()
}

/// Runs `p` on a copy of `row`; returns the processed dense row.
pub(crate) fn processed(p: &mut impl LogitsProcessor, row: &[f32]) -> Vec<f32> {
    let mut out = row.to_vec();
    let mut live = Vec::new();
    let mut scores = Scores::new(&mut out, &mut live);
    p.process(&Context::empty(), &mut scores).expect("processing failed");
    scores.densify();
    out
}

/// The ids whose processed score is finite, ascending.
pub(crate) fn survivors(p: &mut impl LogitsProcessor, row: &[f32]) -> Vec<TokenId> {
    processed(p, row)
        .iter()
        .enumerate()
        .filter(|(_, x)| x.is_finite())
        .map(|(i, _)| i as TokenId)
        .collect()
}
