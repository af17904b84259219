//! Helpers shared by the processor tests.

use decoding::{Context, LogitsProcessor, Scores};

/// Runs one processor on a copy of `row` and returns the processed dense row.
pub fn apply(p: &mut impl LogitsProcessor, ctx: &Context<'_>, row: &[f32]) -> Vec<f32> {
    let mut out = row.to_vec();
    let mut live = Vec::new();
    let mut scores = Scores::new(&mut out, &mut live);
    p.process(ctx, &mut scores).expect("processor failed");
    scores.densify();
    out
}
