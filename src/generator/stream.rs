//! `Stream`: a run as an iterator of steps, for printing tokens as they come.

use std::fmt;
use std::iter::FusedIterator;

use super::Generator;
use crate::{
    Detokenizer, FinishReason, GenerateError, LanguageModel, LogitsProcessor, Sampler, Step,
    TokenId, TokenLogprobs,
};

/// A run that yields each [`Step`] as soon as it is produced. Built by
/// [`Generator::stream`] and [`Generator::stream_text`].
///
/// It yields exactly the tokens that [`Generator::generate`] returns with
/// the same options (both drive the same step), and the concatenation of
/// the steps' `text` is the text `generate_text` returns. Text that may
/// still turn into a stop string or a stop sequence, and incomplete UTF-8
/// characters, are held back until they are resolved, so nothing of a stop
/// string is ever printed.
///
/// The last step carries the [`FinishReason`]. After it, or after an error,
/// the iterator returns `None`.
///
/// # Example
///
/// ```
/// use decoding::sampler::Greedy;
/// use decoding::{GenerateOptions, Generator, LanguageModel, Pipeline, TokenId};
///
/// /// Prefers `previous + 1`.
/// struct Counter { vocab: usize, last: TokenId }
///
/// impl LanguageModel for Counter {
///     type Error = std::convert::Infallible;
///     fn vocab_size(&self) -> usize { self.vocab }
///     fn forward(&mut self, tokens: &[TokenId], _position: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
///         self.last = *tokens.last().unwrap_or(&self.last);
///         logits.fill(0.0);
///         logits[(self.last as usize + 1) % self.vocab] = 5.0;
///         Ok(())
///     }
///     fn reset(&mut self) -> Result<(), Self::Error> { self.last = 0; Ok(()) }
/// }
///
/// let vocab = ["a", "b", "c", "d", "\n"];
/// let options = GenerateOptions::builder(10).stop_string("d\n").build()?;
/// let mut generator = Generator::new(Pipeline::new(), Greedy, options);
/// let mut model = Counter { vocab: 5, last: 0 };
/// let mut printed = String::new();
/// for step in generator.stream_text(&mut model, &vocab, &[0])? {
///     printed.push_str(&step?.text); // a CLI would print and flush here
/// }
/// assert_eq!(printed, "bc");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Stream<'a, M: ?Sized, P, S> {
    pub(super) generator: &'a mut Generator<P, S>,
    pub(super) model: &'a mut M,
    pub(super) detokenizer: Option<&'a dyn Detokenizer>,
}

impl<M: ?Sized, P, S> Stream<'_, M, P, S> {
    /// The ids generated so far.
    pub fn generated(&self) -> &[TokenId] {
        self.generator.generated()
    }

    /// The seed of this run's random number generator: the options' seed,
    /// or the fresh one drawn for this run. Passing it back as the seed
    /// replays the run.
    pub fn seed(&self) -> u64 {
        self.generator.seed()
    }

    /// Why the run stopped, once it has.
    pub fn finish_reason(&self) -> Option<FinishReason> {
        self.generator.finish_reason()
    }

    /// The prompt's log-probabilities, when
    /// [`GenerateOptionsBuilder::prompt_logprobs`](crate::GenerateOptionsBuilder::prompt_logprobs)
    /// asked for them: `None` before the first step (which scores them), as
    /// [`Generation::prompt_logprobs`](crate::Generation::prompt_logprobs)
    /// after.
    pub fn prompt_logprobs(&self) -> Option<&[TokenLogprobs]> {
        let scored = self.generator.prompt_logprobs();
        (self.generator.options().prompt_logprobs().is_some() && !scored.is_empty())
            .then_some(scored)
    }
}

impl<M, P, S> Iterator for Stream<'_, M, P, S>
where
    M: LanguageModel + ?Sized,
    P: LogitsProcessor,
    S: Sampler,
{
    type Item = Result<Step, GenerateError<M::Error>>;

    fn next(&mut self) -> Option<Self::Item> {
        let outcome = self.generator.advance(&mut *self.model, self.detokenizer)?;
        Some(outcome.map(|o| Step {
            index: o.index,
            token: o.token,
            text: self.generator.seq.text_slice(o.text).to_owned(),
            logprobs: o.logprobs,
            scores: o.scores,
            logits: o.logits,
            finish_reason: o.finish,
        }))
    }
}

impl<M, P, S> FusedIterator for Stream<'_, M, P, S>
where
    M: LanguageModel + ?Sized,
    P: LogitsProcessor,
    S: Sampler,
{
}

impl<M: ?Sized, P, S> fmt::Debug for Stream<'_, M, P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stream")
            .field("generated", &self.generated())
            .field("finish_reason", &self.finish_reason())
            .field("has_detokenizer", &self.detokenizer.is_some())
            .finish_non_exhaustive()
    }
}
