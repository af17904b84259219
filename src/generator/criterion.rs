//! Custom stopping: a criterion the generator asks after every token
//! (transformers' `StoppingCriteria`), and the clock of `max_time`.

use std::fmt;
use std::sync::Arc;
use std::time::Instant;

use crate::Context;

/// A stopping rule of your own, asked after every generated token
/// (transformers' `StoppingCriteria`): it sees the tokens so far (the
/// prompt and the generated ones, the token just generated last) and the
/// text decoded so far, and says whether the run stops there. The run then
/// ends with [`FinishReason::Criterion`](crate::FinishReason::Criterion),
/// keeping that token; see [`GenerateOptions`](crate::GenerateOptions) for
/// where it comes among the stop conditions.
///
/// Set one with [`Generator::set_stopping_criterion`](crate::Generator::set_stopping_criterion).
/// A closure `FnMut(&Context<'_>, Option<&str>) -> bool` is one.
///
/// # Example
///
/// Stop once the generated tokens sum to 10 or more:
///
/// ```
/// use decoding::sampler::Greedy;
/// use decoding::{Context, FinishReason, GenerateOptions, Generator, LanguageModel, Pipeline, TokenId};
///
/// # struct Count;
/// # impl LanguageModel for Count {
/// #     type Error = std::convert::Infallible;
/// #     fn vocab_size(&self) -> usize { 8 }
/// #     fn forward(&mut self, t: &[TokenId], _: usize, row: &mut [f32]) -> Result<(), Self::Error> {
/// #         row.fill(0.0);
/// #         row[(*t.last().unwrap() as usize + 1) % 8] = 1.0;
/// #         Ok(())
/// #     }
/// #     fn reset(&mut self) -> Result<(), Self::Error> { Ok(()) }
/// # }
/// // A model that counts up: 3, 4, 5, ...
/// let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(16));
/// generator.set_stopping_criterion(|ctx: &Context<'_>, _text: Option<&str>| {
///     ctx.generated().iter().sum::<TokenId>() >= 10
/// });
/// let out = generator.generate(&mut Count, &[2])?;
/// assert_eq!(out.tokens, [3, 4, 5]); // 3 + 4 + 5 = 12
/// assert_eq!(out.finish_reason, FinishReason::Criterion);
/// # Ok::<(), decoding::GenerateError<std::convert::Infallible>>(())
/// ```
pub trait StoppingCriterion {
    /// Whether the run stops after the token just generated (the last of
    /// `tokens.generated()`). `text` is the generated text decoded so far
    /// (`None` for a run without a detokenizer), including text a stream
    /// still holds back, before any stop-string cut.
    fn should_stop(&mut self, tokens: &Context<'_>, text: Option<&str>) -> bool;

    /// Called when a run starts, for a criterion that keeps state across
    /// the tokens of a run. The default does nothing.
    fn reset(&mut self) {}
}

impl<F> StoppingCriterion for F
where
    F: FnMut(&Context<'_>, Option<&str>) -> bool,
{
    fn should_stop(&mut self, tokens: &Context<'_>, text: Option<&str>) -> bool {
        self(tokens, text)
    }
}

/// The generator's stopping criterion, boxed.
pub(crate) struct Criterion(pub(crate) Box<dyn StoppingCriterion + Send>);

impl fmt::Debug for Criterion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoppingCriterion")
    }
}

/// Where a run reads the time: [`Instant::now`], or the generator's own
/// clock.
#[derive(Clone, Default)]
pub(crate) struct Clock(Option<Arc<dyn Fn() -> Instant + Send + Sync>>);

impl Clock {
    pub(crate) fn new(clock: Arc<dyn Fn() -> Instant + Send + Sync>) -> Self {
        Clock(Some(clock))
    }

    pub(crate) fn now(&self) -> Instant {
        match &self.0 {
            Some(clock) => clock(),
            None => Instant::now(),
        }
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Clock(custom)" } else { "Clock(Instant::now)" })
    }
}
