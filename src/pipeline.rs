//! `Pipeline`: a run-time list of processors, with the buffers a step needs.

use std::fmt;

use ndarray::ArrayViewMut1;

use crate::{Context, Error, LogitsProcessor, Sampled, Sampler, Scores, TokenId};

/// An ordered, run-time list of boxed processors: what a configuration
/// file or a request builds.
///
/// A pipeline owns the scratch buffer of the live set, so that processing a
/// step allocates nothing once the buffer has grown. Its `Display` prints the
/// order, one stage per `->`.
///
/// # Order
///
/// Stages run in the order they were pushed. Order matters: temperature
/// before top-p is not top-p before temperature. Hugging Face transformers
/// applies penalties, then temperature, then the truncations
/// (top-k, top-p, min-p, typical, epsilon, eta).
///
/// # Example
///
/// ```
/// use decoding::processors::{Temperature, TopK, TopP};
/// use decoding::sampler::Categorical;
/// use decoding::{rng_from_seed, Context, Pipeline};
///
/// let mut pipeline = Pipeline::new()
///     .with(Temperature::new(0.7)?)
///     .with(TopK::new(50)?)
///     .with(TopP::new(0.9)?);
/// let mut logits = vec![0.5, 2.0, -1.0, 1.5];
/// let mut rng = rng_from_seed(42);
/// let step = pipeline.sample(&Context::empty(), &mut logits, &mut Categorical::new(), &mut rng)?;
/// assert!(step.token == 1 || step.token == 3);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Default)]
pub struct Pipeline {
    stages: Vec<Box<dyn LogitsProcessor + Send>>,
    live: Vec<TokenId>,
}

impl Pipeline {
    /// An empty pipeline (the identity).
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a stage.
    pub fn push(&mut self, stage: impl LogitsProcessor + Send + 'static) {
        self.stages.push(Box::new(stage));
    }

    /// Appends an already boxed stage.
    pub fn push_boxed(&mut self, stage: Box<dyn LogitsProcessor + Send>) {
        self.stages.push(stage);
    }

    /// Appends a stage, builder style.
    pub fn with(mut self, stage: impl LogitsProcessor + Send + 'static) -> Self {
        self.push(stage);
        self
    }

    /// Number of stages.
    pub fn len(&self) -> usize {
        self.stages.len()
    }

    /// Whether the pipeline has no stage.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// The stages, in order.
    pub fn stages(&self) -> &[Box<dyn LogitsProcessor + Send>] {
        &self.stages
    }

    /// Checks the row, runs every stage and writes the processed row back in
    /// full (removed tokens become `-inf`): the row Hugging Face
    /// transformers' processor list would produce.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyRow`], [`Error::InvalidLogit`] for NaN or `+inf` input,
    /// or a stage's error.
    pub fn process(&mut self, ctx: &Context<'_>, logits: &mut [f32]) -> Result<(), Error> {
        let mut scores = Scores::new(logits, &mut self.live);
        scores.check_finite()?;
        run_stages(&mut self.stages, ctx, &mut scores)?;
        scores.densify();
        Ok(())
    }

    /// [`Pipeline::process`] on an `ndarray` view.
    ///
    /// # Errors
    ///
    /// [`Error::NonContiguous`] when the view is not contiguous, otherwise as
    /// [`Pipeline::process`].
    pub fn process_array(
        &mut self,
        ctx: &Context<'_>,
        mut logits: ArrayViewMut1<'_, f32>,
    ) -> Result<(), Error> {
        let row = logits.as_slice_mut().ok_or(Error::NonContiguous)?;
        self.process(ctx, row)
    }

    /// Checks the row, runs every stage, then lets `sampler` choose a token
    /// from the processed scores. The row is left partly processed (slots of
    /// removed tokens are stale); nothing is written back in full, so this is
    /// the fast path of a decoding loop.
    ///
    /// Stages are *not* told the chosen token; call [`Pipeline::accept`]
    /// once the token is committed to the sequence.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::process`], plus the sampler's errors
    /// ([`Error::AllMasked`] when processing left nothing to choose).
    pub fn sample(
        &mut self,
        ctx: &Context<'_>,
        logits: &mut [f32],
        sampler: &mut dyn Sampler,
        rng: &mut dyn rand::Rng,
    ) -> Result<Sampled, Error> {
        let mut scores = Scores::new(logits, &mut self.live);
        scores.check_finite()?;
        run_stages(&mut self.stages, ctx, &mut scores)?;
        sampler.sample(&scores, rng)
    }

    /// Tells every stage which token was chosen.
    pub fn accept(&mut self, token: TokenId) {
        for stage in &mut self.stages {
            stage.accept(token);
        }
    }

    /// Resets every stage for a new sequence.
    pub fn reset(&mut self) {
        for stage in &mut self.stages {
            stage.reset();
        }
    }
}

fn run_stages(
    stages: &mut [Box<dyn LogitsProcessor + Send>],
    ctx: &Context<'_>,
    scores: &mut Scores<'_>,
) -> Result<(), Error> {
    for stage in stages.iter_mut() {
        stage.process(ctx, scores)?;
    }
    Ok(())
}

/// A pipeline is itself a processor, so pipelines nest.
impl LogitsProcessor for Pipeline {
    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        run_stages(&mut self.stages, ctx, scores)
    }
    fn accept(&mut self, token: TokenId) {
        Pipeline::accept(self, token)
    }
    fn reset(&mut self) {
        Pipeline::reset(self)
    }
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.stages.iter()).finish()
    }
}

/// Prints the stages in order, separated by `->` (`identity` when empty).
impl fmt::Display for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stages.is_empty() {
            return f.write_str("identity");
        }
        for (i, stage) in self.stages.iter().enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            write!(f, "{stage:?}")?;
        }
        Ok(())
    }
}

impl<P: LogitsProcessor + Send + 'static> FromIterator<P> for Pipeline {
    fn from_iter<I: IntoIterator<Item = P>>(iter: I) -> Self {
        let mut pipeline = Pipeline::new();
        for p in iter {
            pipeline.push(p);
        }
        pipeline
    }
}

impl Extend<Box<dyn LogitsProcessor + Send>> for Pipeline {
    fn extend<I: IntoIterator<Item = Box<dyn LogitsProcessor + Send>>>(&mut self, iter: I) {
        self.stages.extend(iter);
    }
}
