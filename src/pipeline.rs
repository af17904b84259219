//! `Pipeline`: a run-time list of processors, with the buffers a step needs.

use std::fmt;

use crate::{Context, Error, LogitsProcessor, Sampled, Sampler, Scores, TokenId};

#[cfg(feature = "ndarray")]
mod rows;

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
    /// A batch row's copy (feature `ndarray`).
    #[cfg(feature = "ndarray")]
    row: Vec<f32>,
}

impl Pipeline {
    /// A copy of the pipeline, every stage copied with
    /// [`LogitsProcessor::clone_boxed`] (parameters and current state), or
    /// `None` when a stage cannot be copied. Every processor of the crate
    /// can, except [`AllowedTokens`](crate::processors::AllowedTokens).
    ///
    /// ```
    /// use decoding::processors::{Temperature, TopK};
    /// use decoding::{Context, Pipeline};
    ///
    /// let template = Pipeline::new().with(Temperature::new(0.7)?).with(TopK::new(2)?);
    /// let mut per_request = template.try_clone().expect("built-in stages copy");
    /// let mut row = vec![1.0, 3.0, 2.0];
    /// per_request.process(&Context::empty(), &mut row)?;
    /// assert_eq!(template.len(), per_request.len());
    /// # Ok::<(), decoding::Error>(())
    /// ```
    pub fn try_clone(&self) -> Option<Pipeline> {
        let stages = self.stages.iter().map(|s| s.clone_boxed()).collect::<Option<Vec<_>>>()?;
        Some(Pipeline { stages, ..Pipeline::default() })
    }

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
    /// a stage's error, or [`Error::TokenOutOfRange`] when a stage named an
    /// id `>= V` as a survivor ([`Scores::set_live`]).
    pub fn process(&mut self, ctx: &Context<'_>, logits: &mut [f32]) -> Result<(), Error> {
        let mut scores = Scores::new(logits, &mut self.live);
        scores.check_finite()?;
        run_stages(&mut self.stages, ctx, &mut scores)?;
        scores.fault()?;
        scores.densify();
        Ok(())
    }

    /// Checks the row, runs every stage, then lets `sampler` choose a token
    /// from the processed scores. The row is left partly processed (slots of
    /// removed tokens are stale); nothing is written back in full, so this is
    /// the fast path of a decoding loop.
    ///
    /// Stages are *not* told the chosen token; call [`Pipeline::accept`]
    /// once the token is committed to the sequence.
    ///
    /// With no stage, the row reaches the sampler untouched, and the
    /// sampler's own check (every [`Sampler`] reports an empty row and NaN or
    /// `+inf` scores) is the only one: the row is not read twice.
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
        let scores = self.run(ctx, logits)?;
        sampler.sample(&scores, rng)
    }

    /// [`Pipeline::sample`] without the log-probability: the same token
    /// from the same random state ([`Sampler::sample_token`]), for the
    /// loops that do not report it. With [`Greedy`](crate::sampler::Greedy)
    /// this saves a pass of exponentials over the row.
    ///
    /// # Errors
    ///
    /// As [`Pipeline::sample`].
    ///
    /// ```
    /// use decoding::sampler::Greedy;
    /// use decoding::{rng_from_seed, Context, Pipeline};
    ///
    /// let mut logits = vec![0.5, 2.0, -1.0, 2.0];
    /// let token = Pipeline::new().sample_token(
    ///     &Context::empty(),
    ///     &mut logits,
    ///     &mut Greedy::new(),
    ///     &mut rng_from_seed(0),
    /// )?;
    /// assert_eq!(token, 1);
    /// # Ok::<(), decoding::Error>(())
    /// ```
    pub fn sample_token(
        &mut self,
        ctx: &Context<'_>,
        logits: &mut [f32],
        sampler: &mut dyn Sampler,
        rng: &mut dyn rand::Rng,
    ) -> Result<TokenId, Error> {
        let scores = self.run(ctx, logits)?;
        sampler.sample_token(&scores, rng)
    }

    /// The processed scores of a row: the input check (left to the sampler
    /// when there is no stage), then every stage.
    fn run<'s>(
        &'s mut self,
        ctx: &Context<'_>,
        logits: &'s mut [f32],
    ) -> Result<Scores<'s>, Error> {
        let mut scores = Scores::new(logits, &mut self.live);
        if !self.stages.is_empty() {
            scores.check_finite()?;
            run_stages(&mut self.stages, ctx, &mut scores)?;
        }
        Ok(scores)
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
    fn is_complete(&self) -> bool {
        self.stages.iter().any(|stage| stage.is_complete())
    }
    fn clone_boxed(&self) -> Option<Box<dyn LogitsProcessor + Send>> {
        Some(Box::new(self.try_clone()?))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Sampler;
    use crate::processors::{Temperature, TopK};
    use crate::rng_from_seed;
    use crate::sampler::{Categorical, Greedy};

    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn process_writes_the_full_processed_row() {
        let mut p =
            Pipeline::new().with(TopK::new(2).unwrap()).with(Temperature::new(2.0).unwrap());
        let mut row = vec![1.0, 4.0, 3.0, -2.0];
        p.process(&Context::empty(), &mut row).unwrap();
        assert_eq!(row, [NEG, 2.0, 1.5, NEG]);
    }

    #[test]
    fn invalid_rows_are_rejected_before_any_stage_can_hide_them() {
        // Top-k would drop the NaN; the check runs first.
        let mut p = Pipeline::new().with(TopK::new(1).unwrap());
        let mut row = vec![0.0, 5.0, f32::NAN];
        let err = p.process(&Context::empty(), &mut row).unwrap_err();
        assert!(matches!(err, Error::InvalidLogit { index: 2, .. }));
        let mut row = vec![0.0, 5.0, f32::NAN];
        let err = p
            .sample(&Context::empty(), &mut row, &mut Greedy::new(), &mut rng_from_seed(0))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidLogit { index: 2, .. }));
        assert_eq!(p.process(&Context::empty(), &mut []), Err(Error::EmptyRow));
    }

    #[test]
    fn without_stages_the_sampler_check_reports_bad_rows() {
        // No stage: the pipeline leaves the check to the sampler, which
        // reports the same errors, for both entry points.
        let mut p = Pipeline::new();
        let ctx = Context::empty();
        let mut rng = rng_from_seed(0);
        for sampler in [&mut Greedy::new() as &mut dyn Sampler, &mut Categorical::new()] {
            let mut row = vec![0.0; 100];
            row[70] = f32::NAN;
            row[90] = f32::INFINITY;
            let err = p.sample(&ctx, &mut row, sampler, &mut rng).unwrap_err();
            assert!(matches!(err, Error::InvalidLogit { index: 70, .. }), "{err:?}");
            let err = p.sample_token(&ctx, &mut row, sampler, &mut rng).unwrap_err();
            assert!(matches!(err, Error::InvalidLogit { index: 70, .. }), "{err:?}");
            assert_eq!(p.sample(&ctx, &mut [], sampler, &mut rng), Err(Error::EmptyRow));
            assert_eq!(p.sample_token(&ctx, &mut [], sampler, &mut rng), Err(Error::EmptyRow));
        }
    }

    #[test]
    fn sample_token_is_the_token_of_sample() {
        let row: Vec<f32> =
            (0..3000).map(|i| ((i * 7919 % 3001) as f32 * 0.01).sin() * 5.0).collect();
        let ctx = Context::empty();
        let pipelines = || {
            [
                Pipeline::new(),
                Pipeline::new().with(Temperature::new(0.7).unwrap()),
                Pipeline::new().with(TopK::new(40).unwrap()).with(Temperature::new(1.3).unwrap()),
            ]
        };
        for (mut a, mut b) in pipelines().into_iter().zip(pipelines()) {
            for greedy in [true, false] {
                let (mut sa, mut sb): (Box<dyn Sampler>, Box<dyn Sampler>) = if greedy {
                    (Box::new(Greedy::new()), Box::new(Greedy::new()))
                } else {
                    (Box::new(Categorical::new()), Box::new(Categorical::new()))
                };
                let (mut ra, mut rb) = (rng_from_seed(3), rng_from_seed(3));
                for _ in 0..50 {
                    let (mut x, mut y) = (row.clone(), row.clone());
                    let full = a.sample(&ctx, &mut x, &mut sa, &mut ra).unwrap();
                    let token = b.sample_token(&ctx, &mut y, &mut sb, &mut rb).unwrap();
                    assert_eq!(full.token, token, "{a}");
                }
            }
        }
    }

    #[test]
    fn all_masked_is_an_error_from_the_sampler() {
        let mut p = Pipeline::new();
        let mut row = vec![NEG, NEG];
        let err = p
            .sample(&Context::empty(), &mut row, &mut Categorical::new(), &mut rng_from_seed(0))
            .unwrap_err();
        assert_eq!(err, Error::AllMasked);
    }

    #[test]
    fn display_prints_the_order() {
        let p = Pipeline::new().with(Temperature::new(0.5).unwrap()).with(TopK::new(3).unwrap());
        let s = p.to_string();
        let t = s.find("Temperature").unwrap();
        let k = s.find("TopK").unwrap();
        assert!(t < k && s.contains(" -> "), "{s}");
        assert_eq!(Pipeline::new().to_string(), "identity");
    }

    #[test]
    fn pipelines_nest_and_collect() {
        let inner: Pipeline = vec![Temperature::new(2.0).unwrap(), Temperature::new(3.0).unwrap()]
            .into_iter()
            .collect();
        assert_eq!(inner.len(), 2);
        let mut outer = Pipeline::new().with(inner);
        let mut row = vec![6.0, 12.0];
        outer.process(&Context::empty(), &mut row).unwrap();
        assert_eq!(row, [1.0, 2.0]);
    }
}
