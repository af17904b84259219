//! Prompt log-probabilities: each prompt token's log-probability under the
//! model given the tokens before it (vLLM's `prompt_logprobs`).

use super::logprobs::{TopN, raw_entry};
use crate::{GenerateError, LanguageModel, TokenId, TokenLogprobs};

/// Prompt positions scored per [`LanguageModel::forward_all`] call: the
/// buffer holds this many rows of the vocabulary, whatever the prompt's
/// length.
pub(crate) const PROMPT_CHUNK: usize = 16;

/// Feeds `prompt` (from position 0) in chunks through
/// [`LanguageModel::forward_all`], records the raw log-probability of each
/// prompt token after the first (and the `top_n` most likely tokens) in
/// `out`, one entry per prompt token (the first has none), and leaves the
/// row after the last prompt token in `last_row`: the first step's scores,
/// exactly as one [`LanguageModel::forward`] of the whole prompt writes
/// them for a model whose two methods agree.
///
/// `n` is the number of scores that are tokens (the options' vocabulary
/// size, or the row length).
#[allow(clippy::too_many_arguments)]
pub(crate) fn score_prompt<M: LanguageModel + ?Sized>(
    model: &mut M,
    prompt: &[TokenId],
    n: usize,
    top_n: usize,
    rows: &mut Vec<f32>,
    top: &mut TopN,
    last_row: &mut [f32],
    out: &mut Vec<TokenLogprobs>,
) -> Result<(), GenerateError<M::Error>> {
    let v = last_row.len();
    out.clear();
    out.reserve(prompt.len());
    out.push(TokenLogprobs { token: prompt[0], ..TokenLogprobs::default() });
    for (c, chunk) in prompt.chunks(PROMPT_CHUNK).enumerate() {
        let start = c * PROMPT_CHUNK;
        rows.resize(chunk.len() * v, 0.0);
        model
            .forward_all(chunk, start, rows)
            .map_err(|source| GenerateError::Model { step: 0, source })?;
        for (j, row) in rows.chunks_exact(v).enumerate() {
            let Some(&next) = prompt.get(start + j + 1) else {
                last_row.copy_from_slice(row);
                break;
            };
            let entry = raw_entry(&row[..n], next, top_n, top)
                .map_err(|source| GenerateError::Decoding { step: 0, source })?;
            out.push(entry);
        }
    }
    Ok(())
}
