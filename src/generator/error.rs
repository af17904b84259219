//! `GenerateError`: what can go wrong while generating.

use crate::{Error, TokenId};

/// An error of a generation run. `E` is the model's own error type
/// ([`LanguageModel::Error`](crate::LanguageModel::Error)), returned unchanged.
///
/// # Partial output
///
/// Errors that happen during a step name the **step** (0 for the first
/// generated token). The tokens generated before that step stay available
/// from [`Generator::generated`](crate::Generator::generated) until the next
/// run starts (a stream has already yielded them); the failing step adds
/// nothing. After an error the run is over: a [`Stream`](crate::Stream)
/// yields `None`.
///
/// The source of `Model` and `Decoding` is exposed through
/// [`std::error::Error::source`], not repeated in the message.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GenerateError<E> {
    /// The prompt has no token. Prepend a BOS token to start from nothing.
    #[error("the prompt is empty (prepend a BOS token to generate from nothing)")]
    EmptyPrompt,
    /// Stop strings were configured but the run has no detokenizer.
    #[error("stop strings need a detokenizer")]
    MissingDetokenizer,
    /// The model has fewer scores than the tokenizer has tokens.
    #[error("the model's vocabulary ({model}) is smaller than the tokenizer's ({tokenizer})")]
    VocabMismatch {
        /// The model's vocabulary size.
        model: usize,
        /// The tokenizer's ([`GenerateOptionsBuilder::vocab_size`](crate::GenerateOptionsBuilder::vocab_size)).
        tokenizer: usize,
    },
    /// The model's vocabulary size changed during the run.
    #[error("the model's vocabulary size changed from {expected} to {actual} at step {step}")]
    LogitsLength {
        /// The step.
        step: usize,
        /// The size when the run started.
        expected: usize,
        /// The size reported at this step.
        actual: usize,
    },
    /// The model failed.
    #[error("the model failed at step {step}")]
    Model {
        /// The step.
        step: usize,
        /// The model's error.
        #[source]
        source: E,
    },
    /// A processor or the sampler failed (NaN or `+inf` logits, every token
    /// masked, a token id out of range, ...).
    #[error("decoding failed at step {step}")]
    Decoding {
        /// The step.
        step: usize,
        /// The processor's or sampler's error.
        #[source]
        source: Error,
    },
    /// The detokenizer does not know a generated token.
    #[error("the detokenizer does not know token {token} (step {step})")]
    UnknownToken {
        /// The step.
        step: usize,
        /// The token.
        token: TokenId,
    },
    /// The draft model of a speculative run cannot propose tokens for the
    /// target's vocabulary: without
    /// [`GenerateOptionsBuilder::vocab_size`](crate::GenerateOptionsBuilder::vocab_size),
    /// its vocabulary size differs from the target's; with it, the draft has
    /// fewer scores than that size.
    #[error("the draft model has {actual} scores per position where {expected} are needed")]
    DraftVocabMismatch {
        /// The target's vocabulary size, or the tokenizer's when set.
        expected: usize,
        /// The draft model's vocabulary size.
        actual: usize,
    },
    /// The draft model of a speculative run failed. Its error type may
    /// differ from the target's, so it is boxed.
    #[error("the draft model failed at step {step}")]
    DraftModel {
        /// The step: the first generated position the failing call was to
        /// score (or, for a failed rewind, the next step).
        step: usize,
        /// The draft model's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A batch has more sequences than the batched model can hold.
    #[error("a batch of {sequences} sequences exceeds the model's capacity of {capacity}")]
    BatchTooLarge {
        /// Sequences in the batch.
        sequences: usize,
        /// [`BatchLanguageModel::max_sequences`](crate::BatchLanguageModel::max_sequences).
        capacity: usize,
    },
    /// The decoding strategy does not support an option that was set (stop
    /// strings in a beam search, for example).
    #[error("{what} is not supported")]
    Unsupported {
        /// What is not supported.
        what: &'static str,
    },
}

impl<E> GenerateError<E> {
    /// The step at which the error happened, for errors that happen during
    /// a step.
    pub fn step(&self) -> Option<usize> {
        match *self {
            GenerateError::LogitsLength { step, .. }
            | GenerateError::Model { step, .. }
            | GenerateError::Decoding { step, .. }
            | GenerateError::UnknownToken { step, .. }
            | GenerateError::DraftModel { step, .. } => Some(step),
            _ => None,
        }
    }

    /// The model's error, if this is one.
    pub fn into_model_error(self) -> Option<E> {
        match self {
            GenerateError::Model { source, .. } => Some(source),
            _ => None,
        }
    }

    /// The crate's decoding error, if this is one.
    pub fn decoding_error(&self) -> Option<&Error> {
        match self {
            GenerateError::Decoding { source, .. } => Some(source),
            _ => None,
        }
    }
}
