//! Structured outputs: generation constrained to a JSON Schema, a regular
//! expression, a context-free grammar or a fixed choice of strings
//! (feature `structured`, built on the [`llguidance`] engine).
//!
//! Three steps:
//!
//! 1. a [`TokenVocabulary`] once per tokenizer: the bytes of every token,
//!    from a Hugging Face `tokenizer.json`
//!    ([`TokenVocabulary::from_tokenizer_json`]) or from any
//!    [`Detokenizer`](crate::Detokenizer)
//!    ([`TokenVocabulary::from_detokenizer`]);
//! 2. a [`Grammar`]: [`Grammar::json_schema`], [`Grammar::regex`],
//!    [`Grammar::lark`], [`Grammar::gbnf`] (llama.cpp's format, translated
//!    by [`gbnf_to_lark`]), [`Grammar::choice`];
//! 3. [`TokenVocabulary::constraint`] compiles it into a [`Constraint`], a
//!    [`LogitsProcessor`](crate::LogitsProcessor) to put first in the
//!    pipeline.
//!
//! The [`Generator`](crate::Generator) then never emits a token that breaks
//! the grammar, and stops with
//! [`FinishReason::Constraint`](crate::FinishReason::Constraint) when the
//! output is complete. Every problem of a grammar is a [`StructuredError`]
//! at compile time; no token able to continue is [`Error::NoAllowedToken`]
//! at the step.
//!
//! # Where constraints work
//!
//! - [`Generator::generate`](crate::Generator::generate) and streams: yes.
//! - [`generate_batch`](crate::generate_batch): yes, one constraint per
//!   sequence's generator (a different grammar for each if wanted).
//! - [`Generator::generate_speculative`](crate::Generator::generate_speculative):
//!   yes; the draft's rows are masked for the drafted tokens, the engine is
//!   rolled back when they are rejected, and the output follows the
//!   target's constrained distribution exactly (greedy verification gives
//!   plain constrained greedy's tokens).
//! - [`Generator::beam_search`](crate::Generator::beam_search): yes; each
//!   beam's row is masked for that beam's own tokens (the engine follows
//!   the beam being scored by rollback and replay). A beam ends only with
//!   an end-of-sequence id, so the vocabulary's EOS ids must be among the
//!   options' EOS ids.
//!
//! # Example
//!
//! ```
//! use decoding::sampler::Greedy;
//! use decoding::structured::{Grammar, TokenVocabulary};
//! use decoding::{FinishReason, GenerateOptions, Generator, LanguageModel, Pipeline, TokenId};
//!
//! /// A model that likes every token the same.
//! struct Flat;
//! impl LanguageModel for Flat {
//!     type Error = std::convert::Infallible;
//!     fn vocab_size(&self) -> usize { 6 }
//!     fn forward(&mut self, _: &[TokenId], _position: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
//!         logits.fill(0.0);
//!         Ok(())
//!     }
//!     fn reset(&mut self) -> Result<(), Self::Error> { Ok(()) }
//! }
//!
//! let tokens = ["{", "}", "\"a\"", ":", "1", "<eos>"];
//! let vocab = TokenVocabulary::from_detokenizer(&tokens, tokens.len(), &[5])?;
//! let schema = serde_json::json!({
//!     "type": "object",
//!     "properties": {"a": {"const": 1}},
//!     "required": ["a"],
//!     "additionalProperties": false
//! });
//! let constraint = vocab.constraint(&Grammar::json_schema(schema))?;
//! let options = GenerateOptions::builder(16).eos_token(5).build()?;
//! let mut generator = Generator::new(Pipeline::new().with(constraint), Greedy, options);
//! let out = generator.generate_text(&mut Flat, &tokens, &[0])?;
//! assert_eq!(out.text.as_deref(), Some("{\"a\":1}"));
//! assert_eq!(out.finish_reason, FinishReason::Constraint);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`Error::NoAllowedToken`]: crate::Error::NoAllowedToken

mod constraint;
mod error;
mod gbnf;
mod grammar;
mod vocabulary;

pub use self::constraint::Constraint;
pub use self::error::StructuredError;
pub use self::gbnf::{GbnfErrorKind, MAX_REPETITION, gbnf_to_lark};
pub use self::grammar::Grammar;
pub use self::vocabulary::{MAX_VOCAB_SIZE, TokenVocabulary};
