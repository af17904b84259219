//! `StructuredError`: why a vocabulary or a constraint could not be built.

use super::GbnfErrorKind;
use crate::TokenId;

/// Why a [`TokenVocabulary`](super::TokenVocabulary) or a
/// [`Constraint`](super::Constraint) could not be built.
///
/// Every problem of the inputs is found at construction: a constraint that
/// exists can mask its first step. Errors while generating (a vocabulary
/// that cannot continue the grammar, a row smaller than the vocabulary) are
/// [`Error`](crate::Error)s of the step, like every other processor's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StructuredError {
    /// The JSON Schema is not valid JSON, or not a schema the engine
    /// understands (a keyword of the wrong type, a dangling `$ref`, ...).
    #[error("invalid JSON schema: {message}")]
    InvalidSchema {
        /// The parser's or the schema compiler's message.
        message: String,
    },
    /// The JSON Schema uses a feature the engine does not implement
    /// (`oneOf` without coercion, some keywords of recent drafts, ...).
    #[error("unsupported JSON schema feature: {message}")]
    Unsupported {
        /// What is unsupported, as the schema compiler names it.
        message: String,
    },
    /// The regular expression does not parse.
    #[error("invalid regex: {message}")]
    InvalidRegex {
        /// The regex parser's message.
        message: String,
    },
    /// The regular expression is empty (it would only allow an empty
    /// output, which is never what a caller means).
    #[error("the regex is empty")]
    EmptyRegex,
    /// The Lark-like grammar does not parse or is inconsistent.
    #[error("invalid grammar: {message}")]
    InvalidGrammar {
        /// The grammar compiler's message.
        message: String,
    },
    /// A GBNF grammar (llama.cpp's format) is malformed: where, and what is
    /// wrong (see [`Grammar::gbnf`](super::Grammar::gbnf)).
    #[error("invalid GBNF grammar at line {line}, column {column}: {kind}")]
    InvalidGbnf {
        /// The line of the problem, from 1.
        line: usize,
        /// Its column, in characters from 1.
        column: usize,
        /// What is wrong.
        kind: GbnfErrorKind,
    },
    /// A choice constraint was given no string to choose from.
    #[error("a choice needs at least one string")]
    EmptyChoice,
    /// The constraint can produce no output at all from this vocabulary:
    /// no token can start it (for example a schema whose constraints
    /// contradict each other, or characters no token spells).
    #[error("the constraint cannot be satisfied: {message}")]
    Unsatisfiable {
        /// What the engine reported.
        message: String,
    },
    /// A tokenizer description (a `tokenizer.json` file) could not be read.
    #[error("invalid tokenizer: {message}")]
    Tokenizer {
        /// What is wrong with it.
        message: String,
    },
    /// No end-of-sequence token was given: the grammar needs one to say
    /// where an output may end.
    #[error("an end-of-sequence token id is needed")]
    NoEosToken,
    /// An end-of-sequence id is not below the vocabulary size.
    #[error(
        "end-of-sequence token id {id} is out of range for a vocabulary of {vocab_size} tokens"
    )]
    EosOutOfRange {
        /// The id.
        id: TokenId,
        /// The vocabulary size.
        vocab_size: usize,
    },
    /// The vocabulary is empty or larger than the engine supports.
    #[error("vocabulary size must be in [1, {max}], got {vocab_size}")]
    VocabSize {
        /// The size given.
        vocab_size: usize,
        /// The largest supported size.
        max: usize,
    },
    /// The model has fewer scores per position than the tokenizer has
    /// tokens (a model row may be larger: the padded ids are never allowed).
    #[error("the model's vocabulary ({model}) is smaller than the tokenizer's ({tokenizer})")]
    VocabMismatch {
        /// The model's vocabulary size.
        model: usize,
        /// The tokenizer's.
        tokenizer: usize,
    },
}
