//! The crate's error type.

use crate::TokenId;

/// Everything that can go wrong while building or running a decoding pipeline.
///
/// Parameter errors are returned by constructors (`TopP::new(1.5)`), so a
/// pipeline that exists is a valid one. Row errors are returned while a step
/// is processed or sampled; they name the offending index so that a bad
/// model output can be traced.
///
/// Messages are lowercase, carry no trailing period, and say what was
/// expected and what was found.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A constructor or configuration received a value outside its domain.
    #[error("{name} must be {expected}, got {value}")]
    InvalidParameter {
        /// The parameter, spelled as in `generation_config.json` where it exists there.
        name: &'static str,
        /// The allowed domain, in words (for example `"in [0, 1]"`).
        expected: &'static str,
        /// The rejected value, formatted.
        value: String,
    },
    /// A logit was NaN or `+inf`. `-inf` is the mask value and is valid.
    #[error("logit at index {index} is {value}; logits must be finite or -inf")]
    InvalidLogit {
        /// Position of the first offending entry in the row.
        index: usize,
        /// The offending value.
        value: f32,
    },
    /// The row has no entries at all.
    #[error("the logits row is empty")]
    EmptyRow,
    /// Every entry of the row is `-inf`: there is nothing to choose from.
    #[error("every token is masked: no candidate is left to sample")]
    AllMasked,
    /// A constrained-decoding callback (see
    /// [`AllowedTokens`](crate::processors::AllowedTokens)) allowed no token
    /// at all: the constraint cannot be satisfied at this step.
    #[error("the allowed-tokens constraint allows no token at this step")]
    NoAllowedToken,
    /// A grammar constraint's engine failed during a step (see
    /// `structured::Constraint`, feature `structured`): a token outside the
    /// grammar in the history, or a parser that gave up.
    #[error("the grammar engine failed: {message}")]
    Constraint {
        /// The engine's message.
        message: String,
    },
    /// A row or a buffer does not have the vocabulary size it must have.
    #[error("vocabulary size mismatch: expected {expected}, got {actual}")]
    VocabSizeMismatch {
        /// The size the pipeline or model was built for.
        expected: usize,
        /// The size received.
        actual: usize,
    },
    /// A token id (in a history, a bias map or a ban list) is not below the
    /// vocabulary size of the row it applies to.
    #[error("token id {id} is out of range for a vocabulary of {vocab_size} tokens")]
    TokenOutOfRange {
        /// The offending id.
        id: TokenId,
        /// The vocabulary size of the row.
        vocab_size: usize,
    },
    /// A batch whose parts disagree on the number of rows.
    #[error("batch size mismatch: {rows} rows of logits, {what} has {actual}")]
    BatchSizeMismatch {
        /// Number of rows of logits.
        rows: usize,
        /// Which other part of the batch disagrees.
        what: &'static str,
        /// Its length.
        actual: usize,
    },
    /// An `ndarray` view that is not laid out contiguously in memory.
    #[error("the logits view must be contiguous in standard (row-major) order")]
    NonContiguous,
    /// A configuration document (a `generation_config.json` file, a request
    /// body) could not be read or is not well-formed JSON. A value of the
    /// wrong type or outside its range is an [`Error::InvalidParameter`]
    /// naming the field instead.
    #[error("cannot load {what}: {message}")]
    Load {
        /// What was being loaded: a path, or the kind of document.
        what: String,
        /// Why it failed, as the reader or the parser reports it.
        message: String,
    },
}

impl Error {
    /// Builds an [`Error::InvalidParameter`].
    pub(crate) fn invalid(
        name: &'static str,
        expected: &'static str,
        value: impl std::fmt::Display,
    ) -> Self {
        Error::InvalidParameter { name, expected, value: value.to_string() }
    }
}

/// Shorthand for results whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
