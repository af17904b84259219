//! What a processor may see of the sequence being generated.

use crate::{Error, TokenId};

/// The token history of one sequence at one decoding step: the prompt
/// followed by the tokens generated so far.
///
/// Processors that depend on history (penalties, n-gram blocking, minimum
/// length) read it from here; a processor never keeps its own copy of the
/// sequence.
///
/// # Example
///
/// ```
/// use decoding::Context;
///
/// let tokens = [10, 11, 12, 13];
/// let ctx = Context::new(&tokens, 3)?;
/// assert_eq!(ctx.prompt(), &[10, 11, 12]);
/// assert_eq!(ctx.generated(), &[13]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Context<'a> {
    tokens: &'a [TokenId],
    prompt_len: usize,
}

impl<'a> Context<'a> {
    /// A history whose first `prompt_len` tokens are the prompt.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `prompt_len > tokens.len()`.
    pub fn new(tokens: &'a [TokenId], prompt_len: usize) -> Result<Self, Error> {
        if prompt_len > tokens.len() {
            return Err(Error::invalid(
                "prompt_len",
                "at most the number of tokens",
                format_args!("{prompt_len} for {} tokens", tokens.len()),
            ));
        }
        Ok(Context { tokens, prompt_len })
    }

    /// A history made only of a prompt (no token generated yet).
    pub fn prompt_only(tokens: &'a [TokenId]) -> Self {
        Context { tokens, prompt_len: tokens.len() }
    }

    /// An empty history.
    pub fn empty() -> Self {
        Context { tokens: &[], prompt_len: 0 }
    }

    /// Every token: prompt, then generated.
    pub fn tokens(&self) -> &'a [TokenId] {
        self.tokens
    }

    /// The prompt part.
    pub fn prompt(&self) -> &'a [TokenId] {
        &self.tokens[..self.prompt_len]
    }

    /// The generated part.
    pub fn generated(&self) -> &'a [TokenId] {
        &self.tokens[self.prompt_len..]
    }

    /// Number of tokens in the prompt.
    pub fn prompt_len(&self) -> usize {
        self.prompt_len
    }

    /// Total number of tokens (prompt + generated).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the history holds no token at all.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl Default for Context<'_> {
    fn default() -> Self {
        Context::empty()
    }
}
