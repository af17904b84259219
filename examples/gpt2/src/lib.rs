//! GPT-2 for the `decoding` crate: a pure-Rust forward pass with a KV cache,
//! GPT-2's exact byte-level BPE tokenizer, and the loader for Hugging Face
//! model directories.
//!
//! - [`Gpt2`] implements [`decoding::LanguageModel`]: feed it new tokens, it
//!   writes the next position's logits, one position of work per generated
//!   token.
//! - [`Config`] and [`Weights`] read `config.json` and `model.safetensors`
//!   (the published `openai-community/gpt2` key layout and the one
//!   `save_pretrained` writes; f32, f16 or bf16, 16-bit files kept in 16
//!   bits; any GPT-2 size).
//! - The matrix products and attention run on the widest [`KernelPath`]
//!   the CPU has (AVX-512, AVX2+FMA, or portable), chosen at run time.
//! - [`Tokenizer`] encodes and decodes exactly as GPT-2's tokenizer does,
//!   from `tokenizer.json`, `vocab.json` + `merges.txt`, or a built-in copy.
//! - [`lookup`] finds a model directory: an explicit path, the Hugging Face
//!   cache, or the small model bundled with this example.
//!
//! # Example
//!
//! ```no_run
//! use decoding::LanguageModel;
//! use gpt2::{Gpt2, Tokenizer};
//!
//! let dir = std::path::Path::new("path/to/gpt2");
//! let mut model = Gpt2::from_dir(dir)?;
//! let tokenizer = Tokenizer::from_dir(dir)?.map_or_else(Tokenizer::gpt2, Ok)?;
//! let prompt = tokenizer.encode("My favourite movie is")?;
//! let mut logits = vec![0.0; model.vocab_size()];
//! model.forward(&prompt, 0, &mut logits)?; // the prompt starts at position 0
//! # Ok::<(), gpt2::Gpt2Error>(())
//! ```

#![deny(missing_docs)]
// `unsafe` only in `kernels::x86`, for the run-time-dispatched SIMD
// kernels (each use has a `// SAFETY:` comment); denied everywhere else.
#![deny(unsafe_code)]

mod beams;
pub mod cli;
pub mod config;
pub mod demo;
mod error;
mod kernels;
pub mod lookup;
pub mod matrix;
pub mod model;
pub mod tokenizer;
pub mod weights;
mod workers;

pub use self::beams::Gpt2Beams;
pub use self::config::{Activation, Config};
pub use self::error::{Gpt2Error, Result};
pub use self::kernels::KernelPath;
pub use self::matrix::{Dtype, Matrix};
pub use self::model::Gpt2;
pub use self::tokenizer::Tokenizer;
pub use self::weights::Weights;
