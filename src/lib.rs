//! Text-generation decoding strategies for any language model.
//!
//! `decoding` turns a model's next-token scores (logits) into tokens. It
//! provides:
//!
//! - [`LogitsProcessor`]: one step's score transformation (temperature,
//!   top-k, top-p, min-p, typical, penalties, biases, bans, ...), composable
//!   statically ([`LogitsProcessorExt::then`], tuples) or at run time
//!   ([`Pipeline`]). See [`processors`] for the full list and how each maps
//!   to Hugging Face transformers.
//! - [`Sampler`]: the terminal choice ([`sampler::Greedy`],
//!   [`sampler::Categorical`]), with the log-probability of the chosen token.
//! - [`Scores`]: the step representation. Truncations shrink a live set
//!   instead of masking the whole vocabulary, so later stages work only on
//!   the survivors.
//! - [`Generator`]: the generation loop over any [`LanguageModel`] (fed
//!   only the new tokens, so a KV cache does incremental work), with stop
//!   conditions, streaming, log-probabilities and batches
//!   ([`generate_batch`]); [`Generator::beam_search`] (transformers'
//!   beam search, for a [`BeamLanguageModel`]) and
//!   [`Generator::generate_speculative`] (a draft model proposes, the target
//!   verifies; for [`RewindableModel`]s).
//! - [`speculative_accept`]: the acceptance rule of speculative sampling on
//!   its own, for engines that run their own loop.
//! - A portable seeded RNG ([`rng_from_seed`]) so a seed fixes the tokens
//!   on every platform.
//! - [`config`]: pipelines built from a model's `generation_config.json`
//!   (exactly as transformers builds them), from OpenAI-style request
//!   parameters, or as a llama.cpp-style chain.
//!
//! # Quick start
//!
//! ```
//! use decoding::processors::{Temperature, TopK, TopP};
//! use decoding::sampler::Categorical;
//! use decoding::{rng_from_seed, Context, Pipeline};
//!
//! let mut pipeline = Pipeline::new()
//!     .with(Temperature::new(0.8)?)
//!     .with(TopK::new(50)?)
//!     .with(TopP::new(0.95)?);
//! let mut sampler = Categorical::new();
//! let mut rng = rng_from_seed(1234);
//!
//! let history = [15496, 11, 616];           // the prompt's token ids
//! let mut logits = vec![-10.0f32; 50257];   // the model's next-token scores
//! logits[318] = 5.0;
//! logits[373] = 4.0;
//! let step = pipeline.sample(&Context::prompt_only(&history), &mut logits, &mut sampler, &mut rng)?;
//! assert!(step.token == 318 || step.token == 373);
//! # Ok::<(), decoding::Error>(())
//! ```
//!
//! # Bad input
//!
//! Parameters are checked when a processor is built. NaN or `+inf` logits,
//! an empty row and a row where every token is masked are errors
//! ([`Error`]), never a panic and never a silent token 0.

#![deny(missing_docs)]
#![warn(missing_debug_implementations, unreachable_pub)]
#![forbid(unsafe_code)]
// Negated comparisons (`!(p > 0.0)`) are how this crate rejects NaN along
// with out-of-range values; the lint's suggested rewrite would let NaN through.
#![allow(clippy::neg_cmp_op_on_partial_ord)]
#![doc(test(attr(deny(warnings))))]

mod chain;
mod context;
mod error;
mod generator;
pub(crate) mod math;
mod model;
mod pipeline;
mod processor;
mod rng;
mod scores;
mod speculative;

pub mod config;
pub mod processors;
pub mod sampler;

pub use self::chain::Chain;
pub use self::context::Context;
pub use self::error::{Error, Result};
pub use self::generator::{
    BatchEntry, BatchInput, BatchLanguageModel, BatchResults, BatchSequence, BeamHypothesis,
    BeamLanguageModel, BeamSearch, DEFAULT_SEED, Detokenizer, EarlyStopping, FinishReason,
    GenerateError, GenerateOptions, GenerateOptionsBuilder, Generation, Generator, LogprobMode,
    Step, Stream, TokenLogprobs, TopLogprob, UnknownToken, generate_batch,
};
pub use self::generator::{SpeculativeOptions, SpeculativeStats, Verification};
pub use self::model::{LanguageModel, RewindableModel};
pub use self::pipeline::Pipeline;
pub use self::processor::{LogitsProcessor, LogitsProcessorExt};
pub use self::rng::{DecodingRng, rng_from_seed, unit_f64};
pub use self::sampler::{Sampled, Sampler};
pub use self::scores::Scores;
pub use self::speculative::{Speculation, speculative_accept};

/// A token id, as tokenizers and model heads number them.
pub type TokenId = u32;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
