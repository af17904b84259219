//! `Chain`: two processors run one after the other, statically dispatched.

use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Runs `first`, then `second`. Built by
/// [`LogitsProcessorExt::then`](crate::LogitsProcessorExt::then); chains
/// nest, so `a.then(b).then(c)` runs `a`, `b`, `c` with no dynamic dispatch.
///
/// ```
/// use decoding::processors::{Temperature, TopK};
/// use decoding::{Context, LogitsProcessor, LogitsProcessorExt, Scores};
///
/// let mut chain = TopK::new(2)?.then(Temperature::new(0.5)?);
/// let mut row = vec![1.0, 3.0, 2.0];
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// chain.process(&Context::empty(), &mut scores)?;
/// scores.densify();
/// assert_eq!(row, [f32::NEG_INFINITY, 6.0, 4.0]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Chain<A, B> {
    first: A,
    second: B,
}

impl<A, B> Chain<A, B> {
    /// `first`, then `second`.
    pub fn new(first: A, second: B) -> Self {
        Chain { first, second }
    }

    /// The two halves.
    pub fn into_inner(self) -> (A, B) {
        (self.first, self.second)
    }
}

impl<A: LogitsProcessor, B: LogitsProcessor> LogitsProcessor for Chain<A, B> {
    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        self.first.process(ctx, scores)?;
        self.second.process(ctx, scores)
    }
    fn accept(&mut self, token: TokenId) {
        self.first.accept(token);
        self.second.accept(token);
    }
    fn reset(&mut self) {
        self.first.reset();
        self.second.reset();
    }
    fn is_complete(&self) -> bool {
        self.first.is_complete() || self.second.is_complete()
    }
    fn clone_boxed(&self) -> Option<Box<dyn LogitsProcessor + Send>> {
        Some(Box::new(Chain::new(self.first.clone_boxed()?, self.second.clone_boxed()?)))
    }
}
