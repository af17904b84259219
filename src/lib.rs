//! Text-generation decoding strategies for any language model.
//!
//! `decoding` turns a model's next-token scores (logits) into tokens. One
//! decoding step, and the loop around it:
//!
//! ```text
//!                 prompt
//!                   │
//!                   ▼
//!   ┌──▶ LanguageModel::forward(tokens new since the last call, their position)
//!   │               │ logits: &mut [f32]
//!   │               ▼
//!   │    Scores: the dense row + the live set of survivors
//!   │               │
//!   │               ▼
//!   │    LogitsProcessor stages (a Pipeline: penalties, temperature, top-k, top-p, ...)
//!   │               │
//!   │               ▼
//!   │    Sampler (Greedy | Categorical) ──▶ Sampled { token, logprob }
//!   │               │
//!   │               ▼
//!   └─── Generator state: history, processors' accept, stop checks ──▶ Generation
//! ```
//!
//! 1. A [`LanguageModel`] writes one row of logits for the tokens appended
//!    since its last call (the whole prompt at first), told the position of
//!    the first of them, so a KV-cached model does only new work;
//!    [`PrefixCache`] keeps that cache across runs (a chat turn feeds only
//!    its new tokens).
//! 2. The row becomes [`Scores`]: the dense row plus a *live set*. A
//!    truncation (top-k, top-p, min-p, ...) records its survivors instead
//!    of writing `-inf` over the vocabulary, so every later stage and the
//!    sampler touch only the survivors. [`Pipeline::process`] writes the
//!    full processed row back (the row transformers would hold);
//!    [`Pipeline::sample`] never does.
//! 3. Each [`LogitsProcessor`] transforms the scores in place, seeing the
//!    token history ([`Context`]: prompt + generated). Processors are object
//!    safe (`Box<dyn LogitsProcessor>`), compose statically
//!    ([`LogitsProcessorExt::then`], tuples, `Option`) and at run time
//!    ([`Pipeline`]), and may carry state ([`LogitsProcessor::accept`],
//!    [`LogitsProcessor::reset`]).
//! 4. A [`Sampler`] chooses the token: [`sampler::Greedy`] (ties → lowest
//!    id) or [`sampler::Categorical`] (inverse CDF over f64 block sums, one
//!    uniform per token scaled by the actual total, never a token of
//!    probability 0). Both return the token's log-probability under the
//!    processed distribution ([`Sampled`]).
//! 5. The [`Generator`] appends the token, tells the processors
//!    ([`LogitsProcessor::accept`]), checks the stop conditions (EOS ids,
//!    stop sequences and strings, lengths) and feeds the token back; or
//!    runs [`Generator::beam_search`] (for a [`BeamLanguageModel`]) or
//!    [`Generator::generate_speculative`] (a draft model proposes, the
//!    target verifies; for [`RewindableModel`]s) or
//!    [`Generator::generate_prompt_lookup`] (the draft is copied from the
//!    text itself, [`PromptLookup`]).
//!
//! **Errors** are one `thiserror` enum, [`Error`] (and [`GenerateError`],
//! which adds the model's own error and the step). Parameters are checked
//! when a processor is built (`TopP::new(1.5)` is an error); NaN or `+inf`
//! logits, an empty row and an all-masked row are errors naming the index,
//! never a panic and never a silent token 0. **Reproducible**:
//! [`rng_from_seed`] is ChaCha8 (`rand::rngs::ChaCha8Rng`) with `rand_core`'s
//! portable `seed_from_u64`; a seed fixes the tokens on every platform
//! (pinned by `tests/sampling.rs::value_stability`).
//!
//! # Module map
//!
//! | where | what |
//! |---|---|
//! | [`processors`] | the processors, one per file, and the table of their exact semantics |
//! | [`sampler`] | [`Sampler`], [`sampler::Greedy`], [`sampler::Categorical`] |
//! | `scores`, `context` | [`Scores`] (row + live set), [`Context`] (the token history) |
//! | `processor`, `chain`, `pipeline` | [`LogitsProcessor`] and its static ([`Chain`]) and run-time ([`Pipeline`]) composition; with the default feature `ndarray`, batches of rows (`process_batch`, `sample_batch`, `sample_batch_mut`) |
//! | `model`, `prefix_cache` | [`LanguageModel`], [`RewindableModel`], [`PrefixCache`] (a KV cache kept across runs) |
//! | `guidance` | [`ClassifierFreeGuidance`]: a conditional and an unconditional model combined into one guided model |
//! | `generator` | [`Generator`], its options, outputs, stop rules, streaming, batches, beam search and the speculative decoding loop |
//! | [`watermark`] | the green-list watermark's configuration and detector (the processor is [`processors::Watermark`]) |
//! | `speculative_acceptance` | [`speculative_accept`]: the acceptance rule of speculative sampling on its own, for engines that run their own loop |
//! | [`config`] | pipelines built from `generation_config.json` (exactly as transformers builds them), OpenAI-style requests, llama.cpp chains |
//! | `rng` | [`rng_from_seed`], the portable seeded generator |
//! | `token_bytes` (feature `serde`) | `TokenBytes`: the bytes of every token of a Hugging Face `tokenizer.json`, a [`Detokenizer`]; with the feature `tokenizers`, `Detokenizer` for `tokenizers::Tokenizer` |
//! | `structured` (feature `structured`) | structured outputs: JSON Schema, regex, grammar and choice constraints through llguidance (`docs/structured-outputs.md`) |
//! | `math` | the shared kernels, one file per concern: `reduce` (maxima, the argmax, the row check), `exp`, `softmax`, `rank` (the rank order of live tokens), `select` (top-n and candidate gathering), `heap` (the heap repairs of the bounded selections) |
//!
//! Beyond the API docs: `docs/generation.md` (the loop, beam search and
//! speculative decoding), `docs/guarantees.md` (the promises and the tests
//! that hold them) and `docs/benchmarks.md` (methods and figures), in the
//! repository.
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
//! # Imports
//!
//! Import the items you use by name from the crate root, and the
//! processors from [`processors`]:
//!
//! ```
//! use decoding::processors::{Temperature, TopP};
//! use decoding::sampler::Greedy;
//! use decoding::{GenerateOptions, Generator, Pipeline};
//!
//! let pipeline = Pipeline::new().with(Temperature::new(0.7)?).with(TopP::new(0.9)?);
//! let generator = Generator::new(pipeline, Greedy, GenerateOptions::new(16));
//! assert_eq!(generator.options().max_new_tokens(), 16);
//! # Ok::<(), decoding::Error>(())
//! ```
//!
//! Two names meet names of crates often used next to this one:
//!
//! - **`Context`** (the token history a processor sees) and
//!   `anyhow::Context` (a trait, needed only in scope for its
//!   `.context(..)` method): import anyhow's anonymously,
//!   `use anyhow::Context as _;`, and both work. The name stays: it is what
//!   every processor receives, transformers and vLLM call the same thing
//!   the input ids or the context, and the type may carry more than the
//!   ids later (a "history" would not). Renaming it would break every
//!   processor written against the crate for a clash one `as _` removes.
//! - **`LogitsProcessor`** (this crate's trait) and candle's
//!   `candle_transformers::generation::LogitsProcessor` (a sampler struct):
//!   in a candle program that uses both, refer to candle's by path or
//!   import it renamed (`use candle_transformers::generation::LogitsProcessor
//!   as CandleSampler;`).
//!
//! # Randomness
//!
//! The RNG crate of the public API is re-exported as [`decoding::rand`](crate::rand):
//! the API speaks **`rand` 0.10** (`&mut dyn rand::Rng` in
//! [`Sampler::sample`], [`Pipeline::sample`], ...). Use `decoding::rand`
//! rather than your own `rand` dependency, which may be another version
//! (candle depends on `rand` 0.9, whose `Rng` is a different trait):
//!
//! ```
//! use decoding::rand::Rng; // the trait of the version the API takes
//!
//! let mut rng = decoding::rng_from_seed(7);
//! let _: u64 = rng.next_u64();
//! ```
//!
//! A run's generator is [`DecodingRng`] (ChaCha8), seeded with the options'
//! seed or, when none is given, with a fresh seed from the operating system
//! ([`fresh_seed`]); the seed used is reported in [`Generation::seed`], so
//! any run can be replayed, and a given seed gives the same tokens on every
//! platform. The samplers draw with their own inverse CDF rather than
//! `rand_distr`'s weighted distributions: **one uniform per token** (so a
//! stream position maps to a step, and batching or a different vocabulary
//! size does not shift the stream), over the live set only, scaled by the
//! actual total so that **a masked or zero-probability token is never
//! drawn**, with f64 block sums; and its arithmetic is the crate's own, so
//! the tokens of a seed do not change with another crate's release
//! (**portable streams**). `rand_distr::WeightedIndex` would build a table
//! per step (an allocation and a pass over the whole vocabulary) and fix
//! none of these.

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
mod guidance;
pub(crate) mod math;
mod model;
mod pipeline;
mod prefix_cache;
mod processor;
mod rng;
mod scores;
mod speculative_acceptance;
#[cfg(feature = "serde")]
mod token_bytes;

pub mod config;
pub mod processors;
pub mod sampler;
#[cfg(feature = "structured")]
pub mod structured;
pub mod watermark;

/// The `rand` crate (0.10) whose traits the API takes (`&mut dyn
/// rand::Rng`): use this path, not a `rand` dependency of another version.
pub use rand;

pub use self::chain::Chain;
pub use self::context::Context;
pub use self::error::{Error, Result};
pub use self::generator::{
    BatchEntry, BatchInput, BatchLanguageModel, BatchResults, BatchSequence, BatchSpan,
    BeamHypothesis, BeamLanguageModel, BeamSearch, Choice, Choices, Detokenizer, EarlyStopping,
    FinishReason, GenerateError, GenerateOptions, GenerateOptionsBuilder, Generation, Generator,
    LogprobMode, Step, Stream, TokenLogprobs, TopLogprob, UnknownToken, generate_batch,
};
pub use self::generator::{
    LookupMatch, PromptLookup, SpeculativeOptions, SpeculativeStats, StoppingCriterion,
    Verification,
};
pub use self::guidance::{ClassifierFreeGuidance, GuidanceError};
pub use self::model::{LanguageModel, RewindableModel};
pub use self::pipeline::Pipeline;
pub use self::prefix_cache::PrefixCache;
pub use self::processor::{LogitsProcessor, LogitsProcessorExt};
pub use self::rng::{DecodingRng, fresh_seed, rng_from_seed, unit_f64};
pub use self::sampler::{Sampled, Sampler};
pub use self::scores::Scores;
pub use self::speculative_acceptance::{Speculation, speculative_accept};
#[cfg(feature = "serde")]
pub use self::token_bytes::{MAX_TOKENIZER_VOCAB, TokenBytes, TokenizerError};

/// A token id, as tokenizers and model heads number them.
pub type TokenId = u32;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The examples of `docs/generation.md`, compiled and run as doc tests.
#[doc = include_str!("../docs/generation.md")]
#[cfg(doctest)]
pub struct GenerationGuideDoctests;
