//! The `LogitsProcessor` trait and its blanket implementations.

use crate::{Chain, Context, Error, Scores, TokenId};

/// Transforms one decoding step's scores in place.
///
/// A processor sees the token history ([`Context`]) and the step's
/// [`Scores`]. It may change scores (temperature, penalties, bias), ban
/// tokens by writing `-inf`, or truncate the live set (top-k, top-p, ...).
/// Processors compose: statically with [`LogitsProcessorExt::then`] or a
/// tuple, and at run time with a [`Pipeline`](crate::Pipeline).
///
/// # Contract
///
/// - Input rows hold finite values and `-inf` (the mask); pipelines check
///   this before the first processor runs.
/// - A processor never revives a masked token: a token whose score is
///   `-inf` (or that is outside the live set) stays so.
/// - Truncating processors keep at least one finite token when one was
///   present on input (and at least `min_tokens_to_keep` where they have
///   that parameter).
/// - Parameters are validated by constructors; `process` fails only on
///   inputs that cannot be known at construction (a token id out of range
///   for this row's vocabulary, a history the processor cannot use).
///
/// # Stateful processors
///
/// `process` takes `&mut self`, so a processor may carry state across steps
/// (scratch buffers, a running statistic). [`LogitsProcessor::accept`] tells
/// it which token was chosen, and [`LogitsProcessor::reset`] starts a new
/// sequence. The trait is object safe: `Box<dyn LogitsProcessor>` works.
///
/// # Example
///
/// A processor that bans one token:
///
/// ```
/// use decoding::{Context, Error, LogitsProcessor, Scores};
///
/// #[derive(Debug)]
/// struct Ban(u32);
///
/// impl LogitsProcessor for Ban {
///     fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
///         if let Some(x) = scores.values_mut().get_mut(self.0 as usize) {
///             *x = f32::NEG_INFINITY;
///         }
///         Ok(())
///     }
/// }
///
/// let mut row = vec![0.0, 1.0, 2.0];
/// let mut live = Vec::new();
/// Ban(2).process(&Context::empty(), &mut Scores::new(&mut row, &mut live))?;
/// assert_eq!(row, [0.0, 1.0, f32::NEG_INFINITY]);
/// # Ok::<(), Error>(())
/// ```
pub trait LogitsProcessor: std::fmt::Debug {
    /// Processes one step's scores.
    ///
    /// # Errors
    ///
    /// Processor-specific; see each processor's documentation.
    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error>;

    /// Called with the token chosen at the step this processor just saw.
    /// Stateless processors ignore it.
    fn accept(&mut self, _token: TokenId) {}

    /// Forgets all per-sequence state, ready for a new prompt.
    fn reset(&mut self) {}

    /// A boxed copy of this processor (its parameters and its current
    /// state), or `None` when it cannot be copied. This is what makes a
    /// [`Pipeline`](crate::Pipeline) of boxed stages cloneable
    /// ([`Pipeline::try_clone`](crate::Pipeline::try_clone)) and a
    /// [`DecodingPlan`](crate::config::DecodingPlan) `Clone`, so a server
    /// builds a plan once and copies it per request.
    ///
    /// Every processor of the crate returns `Some` (except
    /// [`AllowedTokens`](crate::processors::AllowedTokens), whose callback
    /// may not be `Clone`). A processor of your own that is `Clone`
    /// implements it in one line:
    ///
    /// ```
    /// # use decoding::{Context, Error, LogitsProcessor, Scores};
    /// #[derive(Debug, Clone)]
    /// struct Ban(u32);
    ///
    /// impl LogitsProcessor for Ban {
    ///     fn process(&mut self, _: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
    ///         scores.values_mut()[self.0 as usize] = f32::NEG_INFINITY;
    ///         Ok(())
    ///     }
    ///     fn clone_boxed(&self) -> Option<Box<dyn LogitsProcessor + Send>> {
    ///         Some(Box::new(self.clone()))
    ///     }
    /// }
    ///
    /// let pipeline = decoding::Pipeline::new().with(Ban(2));
    /// assert!(pipeline.try_clone().is_some());
    /// ```
    fn clone_boxed(&self) -> Option<Box<dyn LogitsProcessor + Send>> {
        None
    }

    /// Whether the sequence is complete as far as this processor is
    /// concerned, after the tokens accepted so far: no token may follow (a
    /// grammar whose output has ended). The [`Generator`](crate::Generator)
    /// checks it after each accepted token and stops with
    /// [`FinishReason::Constraint`](crate::FinishReason::Constraint).
    /// Composites (tuples, chains, pipelines) are complete when any stage
    /// is. `false` for every processor that does not constrain structure.
    fn is_complete(&self) -> bool {
        false
    }
}

/// Combinators available on every [`LogitsProcessor`].
pub trait LogitsProcessorExt: LogitsProcessor + Sized {
    /// Runs `self`, then `next`: a statically dispatched chain.
    ///
    /// ```
    /// use decoding::processors::{Temperature, TopK};
    /// use decoding::LogitsProcessorExt;
    ///
    /// let chain = TopK::new(50)?.then(Temperature::new(0.7)?);
    /// # let _ = chain;
    /// # Ok::<(), decoding::Error>(())
    /// ```
    fn then<P: LogitsProcessor>(self, next: P) -> Chain<Self, P> {
        Chain::new(self, next)
    }
}

impl<P: LogitsProcessor> LogitsProcessorExt for P {}

impl<P: LogitsProcessor + ?Sized> LogitsProcessor for Box<P> {
    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        (**self).process(ctx, scores)
    }
    fn accept(&mut self, token: TokenId) {
        (**self).accept(token)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn clone_boxed(&self) -> Option<Box<dyn LogitsProcessor + Send>> {
        (**self).clone_boxed()
    }
    fn is_complete(&self) -> bool {
        (**self).is_complete()
    }
}

impl<P: LogitsProcessor + ?Sized> LogitsProcessor for &mut P {
    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        (**self).process(ctx, scores)
    }
    fn accept(&mut self, token: TokenId) {
        (**self).accept(token)
    }
    fn reset(&mut self) {
        (**self).reset()
    }
    fn is_complete(&self) -> bool {
        (**self).is_complete()
    }
}

/// `None` is the identity: an optional stage of a static chain.
impl<P: LogitsProcessor> LogitsProcessor for Option<P> {
    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        match self {
            Some(p) => p.process(ctx, scores),
            None => Ok(()),
        }
    }
    fn accept(&mut self, token: TokenId) {
        if let Some(p) = self {
            p.accept(token)
        }
    }
    fn reset(&mut self) {
        if let Some(p) = self {
            p.reset()
        }
    }
    fn is_complete(&self) -> bool {
        self.as_ref().is_some_and(|p| p.is_complete())
    }
    fn clone_boxed(&self) -> Option<Box<dyn LogitsProcessor + Send>> {
        match self {
            Some(p) => Some(Box::new(Some(p.clone_boxed()?))),
            None => Some(Box::new(())),
        }
    }
}

/// The empty chain: changes nothing.
impl LogitsProcessor for () {
    fn process(&mut self, _ctx: &Context<'_>, _scores: &mut Scores<'_>) -> Result<(), Error> {
        Ok(())
    }
    fn clone_boxed(&self) -> Option<Box<dyn LogitsProcessor + Send>> {
        Some(Box::new(()))
    }
}

/// `fn clone_boxed` for a processor that is `Clone + Send + 'static`.
macro_rules! clone_boxed {
    () => {
        fn clone_boxed(&self) -> Option<Box<dyn $crate::LogitsProcessor + Send>> {
            Some(Box::new(self.clone()))
        }
    };
}
pub(crate) use clone_boxed;

macro_rules! tuple_processor {
    ($($name:ident),+) => {
        /// A tuple runs its elements left to right.
        impl<$($name: LogitsProcessor),+> LogitsProcessor for ($($name,)+) {
            #[allow(non_snake_case)]
            fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
                let ($($name,)+) = self;
                $($name.process(ctx, scores)?;)+
                Ok(())
            }
            #[allow(non_snake_case)]
            fn accept(&mut self, token: TokenId) {
                let ($($name,)+) = self;
                $($name.accept(token);)+
            }
            #[allow(non_snake_case)]
            fn reset(&mut self) {
                let ($($name,)+) = self;
                $($name.reset();)+
            }
            #[allow(non_snake_case)]
            fn is_complete(&self) -> bool {
                let ($($name,)+) = self;
                false $(|| $name.is_complete())+
            }
        }
    };
}

tuple_processor!(A);
tuple_processor!(A, B);
tuple_processor!(A, B, C);
tuple_processor!(A, B, C, D);
tuple_processor!(A, B, C, D, E);
tuple_processor!(A, B, C, D, E, F);
tuple_processor!(A, B, C, D, E, F, G);
tuple_processor!(A, B, C, D, E, F, G, H);
