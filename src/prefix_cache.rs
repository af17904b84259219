//! `PrefixCache`: a model wrapper that keeps the KV cache across runs and
//! feeds only what differs from what the model already holds.

use crate::{LanguageModel, RewindableModel, TokenId};

/// Keeps a [`RewindableModel`]'s cache from one run to the next.
///
/// Every run of a [`Generator`](crate::Generator) starts with
/// [`LanguageModel::reset`] and feeds the whole prompt. Wrapped in a
/// `PrefixCache`, the reset only marks the next call as the start of a new
/// sequence; that call then compares its tokens with the ones the model
/// holds, [rewinds](RewindableModel::rewind) the model to the longest common
/// prefix, and feeds only the rest. A chat turn that extends the previous
/// conversation (the previous prompt, the previous answer, the new message)
/// costs only the new tokens; a prompt that shares a system prompt with the
/// previous run reuses that part.
///
/// The output does not change: the model sees the same tokens at the same
/// positions as without the wrapper (tested against unwrapped runs). At
/// least one token is always fed, since the next row is computed from it:
/// a prompt equal to what the model holds rewinds one token and feeds it
/// again.
///
/// The wrapper tracks the ids it fed, so the model must not be driven
/// directly in between (drive it through the wrapper, or call
/// [`PrefixCache::forget`]).
///
/// # Example
///
/// ```
/// use decoding::sampler::Greedy;
/// use decoding::{GenerateOptions, Generator, LanguageModel, Pipeline, PrefixCache, RewindableModel, TokenId};
///
/// /// Counts the tokens it is fed; predicts `sum of history mod 8`.
/// #[derive(Default)]
/// struct Summing { held: Vec<TokenId>, fed: usize }
/// impl LanguageModel for Summing {
///     type Error = std::convert::Infallible;
///     fn vocab_size(&self) -> usize { 8 }
///     fn forward(&mut self, tokens: &[TokenId], position: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
///         assert_eq!(position, self.held.len());
///         self.held.extend_from_slice(tokens);
///         self.fed += tokens.len();
///         logits.fill(0.0);
///         logits[self.held.iter().sum::<u32>() as usize % 8] = 1.0;
///         Ok(())
///     }
///     fn reset(&mut self) -> Result<(), Self::Error> { self.held.clear(); Ok(()) }
/// }
/// impl RewindableModel for Summing {
///     fn rewind(&mut self, len: usize) -> Result<(), Self::Error> { self.held.truncate(len); Ok(()) }
/// }
///
/// let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(3));
/// let mut model = PrefixCache::new(Summing::default());
/// let first = generator.generate(&mut model, &[1, 2, 3])?;
/// // The next turn: the whole conversation so far, then a new message.
/// let mut turn = vec![1, 2, 3];
/// turn.extend(&first.tokens);
/// turn.extend([4, 5]);
/// let second = generator.generate(&mut model, &turn)?;
/// assert_eq!(model.reused(), 5); // the first prompt and two of its answer's tokens
/// // The same tokens as a fresh model gives.
/// assert_eq!(second.tokens, generator.generate(&mut Summing::default(), &turn)?.tokens);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct PrefixCache<M> {
    model: M,
    /// The ids the model holds, in order.
    held: Vec<TokenId>,
    /// A reset was asked for: the next call starts a new sequence.
    restart: bool,
    /// Tokens the latest sequence start did not have to feed.
    reused: usize,
}

impl<M: RewindableModel> PrefixCache<M> {
    /// Wraps a model that holds nothing yet (or whose state is unknown: the
    /// first run resets it).
    pub fn new(model: M) -> Self {
        PrefixCache { model, held: Vec::new(), restart: true, reused: 0 }
    }

    /// The ids the model holds.
    pub fn held(&self) -> &[TokenId] {
        &self.held
    }

    /// How many tokens the latest start of a sequence reused from the cache
    /// instead of feeding them.
    pub fn reused(&self) -> usize {
        self.reused
    }

    /// Forgets what the model holds, so the next sequence starts with a real
    /// reset (for a model that was driven directly in between). A model
    /// error does this too: after one, the model's state is unknown.
    pub fn forget(&mut self) {
        self.held.clear();
    }

    /// The wrapped model.
    pub fn get_ref(&self) -> &M {
        &self.model
    }

    /// Unwraps the model.
    pub fn into_inner(self) -> M {
        self.model
    }

    /// Starts a new sequence whose first call feeds `tokens`: rewinds the
    /// model to the longest prefix it shares with what it holds (leaving at
    /// least one token to feed) and returns how many tokens are reused.
    fn restart(&mut self, tokens: &[TokenId]) -> Result<usize, M::Error> {
        let common = self.held.iter().zip(tokens).take_while(|(a, b)| a == b).count();
        let keep = common.min(tokens.len().saturating_sub(1));
        if keep == 0 {
            self.model.reset()?;
        } else if keep < self.held.len() {
            self.model.rewind(keep)?;
        }
        self.held.truncate(keep);
        Ok(keep)
    }
}

impl<M: RewindableModel> LanguageModel for PrefixCache<M> {
    type Error = M::Error;

    fn vocab_size(&self) -> usize {
        self.model.vocab_size()
    }

    fn forward(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        let skip = if self.restart && position == 0 {
            let skip = self.restart(tokens).inspect_err(|_| self.forget())?;
            self.restart = false;
            self.reused = skip;
            skip
        } else {
            0
        };
        let start = self.held.len();
        self.held.extend_from_slice(&tokens[skip..]);
        self.model.forward(&tokens[skip..], start, logits).inspect_err(|_| self.forget())
    }

    fn forward_all(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        if self.restart && position == 0 {
            // A sequence that starts with rows for every position: no reuse.
            self.held.clear();
            self.model.reset()?;
            self.restart = false;
            self.reused = 0;
        }
        let start = self.held.len();
        self.held.extend_from_slice(tokens);
        self.model.forward_all(tokens, start, logits).inspect_err(|_| self.forget())
    }

    /// Marks the next call as the start of a new sequence; the model itself
    /// is rewound (or reset) then, as far as the new sequence needs.
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.restart = true;
        Ok(())
    }
}

impl<M: RewindableModel> RewindableModel for PrefixCache<M> {
    fn rewind(&mut self, len: usize) -> Result<(), Self::Error> {
        if len < self.held.len() {
            self.held.truncate(len);
            self.model.rewind(len).inspect_err(|_| self.forget())?;
        }
        Ok(())
    }
}
