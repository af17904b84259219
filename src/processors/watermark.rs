//! The green-list watermark of Kirchenbauer et al. (2023), as transformers'
//! `WatermarkLogitsProcessor` applies it.

use crate::processors::logit_bias::add_bias;
use crate::watermark::{SeedingScheme, WatermarkConfig};
use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// How many of the best candidates selfhash tries (transformers' fixed 40).
const SELFHASH_CANDIDATES: usize = 40;

/// Adds `δ` to the scores of a pseudo-random "green" fraction `γ` of the
/// vocabulary, chosen afresh at each position from the tokens before it
/// (Kirchenbauer et al. 2023, "A Watermark for Large Language Models";
/// transformers' `WatermarkLogitsProcessor`, configured by its
/// `WatermarkingConfig`). Text generated with it holds more green tokens
/// than chance, which [`WatermarkDetector`](crate::watermark::WatermarkDetector)
/// measures without the model.
///
/// # Semantics
///
/// With `t` the sequence so far (prompt and generated tokens):
/// - when `t` holds fewer than `context_width` tokens, the row is left
///   unchanged (transformers logs a warning and does the same);
/// - [`SeedingScheme::LeftHash`]: every token of the green list after `t`
///   ([`WatermarkConfig`] gives the list exactly) gets `x + δ`;
/// - [`SeedingScheme::SelfHash`]: the 40 live tokens of highest score
///   (ties: the lower id first; transformers' unstable sort leaves ties
///   undefined) are tried, and each one that is in the green list of `t`
///   followed by itself gets `x + δ`; no other token changes.
///
/// A `-inf` score stays `-inf`; finite sums saturate at `±f32::MAX`. The
/// processor keeps no state between positions.
///
/// # Errors
///
/// [`Error::VocabSizeMismatch`] when the row's length is not the
/// configuration's vocabulary size.
///
/// # Performance
///
/// LeftHash: `⌊V · γ⌋` MT19937 draws and swaps, then one add per green
/// token (about 12 000 draws for GPT-2 at `γ = 0.25`); no allocation after
/// the first row. SelfHash: a selection of the 40 best, then up to 40 ×
/// `⌊V · γ⌋` draws (each candidate's membership follows its own position
/// through the swaps, with no memory), as in transformers; building the
/// configuration draws selfhash's table of 1 000 003 entries once.
///
/// # Example
///
/// ```
/// use decoding::processors::Watermark;
/// use decoding::watermark::WatermarkConfig;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let config = WatermarkConfig::new(8)?.with_greenlist_ratio(0.5)?.with_bias(1.5)?;
/// let mut watermark = Watermark::new(config);
/// let mut row = vec![0.0f32; 8];
/// let mut live = Vec::new();
/// let ctx = Context::new(&[3, 5], 1)?;
/// watermark.process(&ctx, &mut Scores::new(&mut row, &mut live))?;
/// // Half of the vocabulary is green after token 5.
/// assert_eq!(row.iter().filter(|&&x| x == 1.5).count(), 4);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Watermark {
    config: WatermarkConfig,
    /// The permutation's working memory (the identity between rows).
    scratch: Vec<u32>,
    green: Vec<u32>,
    /// Selfhash: the candidate windows and the best candidates.
    window: Vec<TokenId>,
    best: Vec<(f32, TokenId)>,
}

impl Watermark {
    /// The processor of `config`.
    pub fn new(config: WatermarkConfig) -> Self {
        Watermark {
            config,
            scratch: Vec::new(),
            green: Vec::new(),
            window: Vec::new(),
            best: Vec::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &WatermarkConfig {
        &self.config
    }
}

impl LogitsProcessor for Watermark {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let vocab_size = self.config.vocab_size();
        if scores.vocab_size() != vocab_size {
            return Err(Error::VocabSizeMismatch {
                expected: vocab_size,
                actual: scores.vocab_size(),
            });
        }
        let tokens = ctx.tokens();
        let width = self.config.context_width();
        if tokens.len() < width {
            return Ok(());
        }
        let delta = self.config.bias();
        match self.config.seeding_scheme() {
            SeedingScheme::LeftHash => {
                self.config.green_list(tokens, &mut self.scratch, &mut self.green);
                let values = scores.values_mut();
                for &id in &self.green {
                    let x = &mut values[id as usize];
                    *x = add_bias(*x, delta);
                }
            }
            SeedingScheme::SelfHash => {
                let best = &mut self.best;
                best.clear();
                scores.for_each_live(|id, x| best.push((x, id)));
                // Highest score first, ties by the lower id.
                let order = |a: &(f32, TokenId), b: &(f32, TokenId)| {
                    b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
                };
                if best.len() > SELFHASH_CANDIDATES {
                    best.select_nth_unstable_by(SELFHASH_CANDIDATES - 1, order);
                    best.truncate(SELFHASH_CANDIDATES);
                }
                // The context part of each candidate's window.
                let window = &mut self.window;
                window.clear();
                window.extend_from_slice(&tokens[tokens.len().saturating_sub(width)..]);
                let values = scores.values_mut();
                for &(_, id) in best.iter() {
                    window.push(id);
                    if self.config.is_green(window, id) {
                        let x = &mut values[id as usize];
                        *x = add_bias(*x, delta);
                    }
                    window.pop();
                }
            }
        }
        Ok(())
    }
}
