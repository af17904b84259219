//! The one error type of the GPT-2 example.

use std::path::PathBuf;

/// Everything that can go wrong while finding, loading or running GPT-2.
///
/// Every variant that concerns a file names it, and every variant that
/// concerns a tensor names the tensor, so a wrong or truncated download says
/// what is missing instead of panicking.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Gpt2Error {
    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A JSON file (`config.json`, `tokenizer.json`, `vocab.json`) is not
    /// valid JSON or lacks a required field.
    #[error("cannot parse {}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },

    /// `config.json` parsed but describes a model this example cannot run.
    #[error("{}: {message}", path.display())]
    Config {
        /// The configuration file (or `<config>` for one built in code).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// The weights file is not a readable safetensors file (a truncated
    /// download, a file of another format, a corrupt header).
    #[error("{}: not a valid safetensors file ({message})", path.display())]
    Safetensors {
        /// The weights file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// A tensor the configuration requires is absent from the weights file.
    #[error("{}: tensor `{name}` is missing{hint}", path.display())]
    MissingTensor {
        /// The weights file.
        path: PathBuf,
        /// The missing tensor, as it would be named in this file's layout.
        name: String,
        /// Extra context (for example, which key layout was detected).
        hint: String,
    },

    /// A tensor exists but has the wrong shape for the configuration.
    #[error(
        "{}: tensor `{name}` has shape {found:?}, the configuration needs {expected:?}",
        path.display()
    )]
    TensorShape {
        /// The weights file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The shape `config.json` implies.
        expected: Vec<usize>,
        /// The shape in the file.
        found: Vec<usize>,
    },

    /// A tensor is stored in a type other than f32, f16 or bf16.
    #[error("{}: tensor `{name}` is {dtype}; only F32, F16 and BF16 are supported", path.display())]
    TensorDtype {
        /// The weights file.
        path: PathBuf,
        /// The tensor.
        name: String,
        /// The stored type.
        dtype: String,
    },

    /// The weights file does not look like a GPT-2 checkpoint for this
    /// configuration (no embedding table, more layers than configured, ...).
    #[error("{}: {message}", path.display())]
    Layout {
        /// The weights file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// Tokenizer files are missing pieces or inconsistent.
    #[error("tokenizer {}: {message}", path.display())]
    Tokenizer {
        /// The file (or `<built-in>`).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },

    /// No model directory was found.
    #[error("{0}")]
    ModelNotFound(String),

    /// The sequence would exceed the model's context (`n_positions`).
    #[error("context overflow: {needed} positions needed, the model has {max}")]
    ContextOverflow {
        /// Positions the call would need.
        needed: usize,
        /// The model's `n_positions`.
        max: usize,
    },

    /// A call's position is not the number of positions the cache holds
    /// (the caller and the model disagree on the sequence so far).
    #[error("the new tokens start at position {position}, but the cache holds {cached}")]
    PositionMismatch {
        /// The position the caller passed.
        position: usize,
        /// The positions in the cache.
        cached: usize,
    },

    /// A token id is outside the model's or the tokenizer's vocabulary.
    #[error("token id {token} is outside the vocabulary of {vocab} tokens")]
    TokenOutOfRange {
        /// The token.
        token: u32,
        /// The vocabulary size.
        vocab: usize,
    },

    /// `forward` was called with no tokens on an empty cache.
    #[error("forward needs at least one token")]
    EmptyInput,

    /// A batched call or a reorder named a sequence that has no cache.
    #[error("sequence {sequence} out of range: the model holds {sequences} sequences")]
    SequenceOutOfRange {
        /// The sequence named.
        sequence: usize,
        /// How many the model holds.
        sequences: usize,
    },

    /// A kernel path was requested that this CPU cannot run.
    #[error("the {path} kernels need CPU features this machine lacks (available: {available})")]
    KernelUnavailable {
        /// The requested path's name.
        path: &'static str,
        /// The names of the paths this CPU can run.
        available: String,
    },

    /// The threads of [`Gpt2::with_threads`](crate::Gpt2::with_threads)
    /// could not be started.
    #[error("cannot start {threads} threads: {message}")]
    Threads {
        /// The threads asked for.
        threads: usize,
        /// What the operating system said.
        message: String,
    },

    /// The logits buffer passed to `forward` has the wrong length.
    #[error("logits buffer has {found} entries, the model's vocabulary has {expected}")]
    LogitsLength {
        /// `vocab_size()`.
        expected: usize,
        /// The buffer's length.
        found: usize,
    },
}

/// `Result` with [`Gpt2Error`].
pub type Result<T, E = Gpt2Error> = std::result::Result<T, E>;

pub(crate) fn io_error(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Gpt2Error {
    let path = path.into();
    move |source| Gpt2Error::Io { path, source }
}

pub(crate) fn json_error(path: impl Into<PathBuf>) -> impl FnOnce(serde_json::Error) -> Gpt2Error {
    let path = path.into();
    move |source| Gpt2Error::Json { path, source }
}
