//! `Pipeline`: a run-time list of processors, with the buffers a step needs.

use std::fmt;

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1};

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
        Some(Pipeline { stages, live: Vec::new(), row: Vec::new() })
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

    /// [`Pipeline::sample`] on a copy of one row of a batch (the copy goes
    /// to a buffer the pipeline keeps, so the batch is only read).
    fn sample_view(
        &mut self,
        ctx: &Context<'_>,
        view: ArrayView1<'_, f32>,
        sampler: &mut dyn Sampler,
        rng: &mut dyn rand::Rng,
    ) -> Result<Sampled, Error> {
        let mut row = std::mem::take(&mut self.row);
        row.clear();
        match view.as_slice() {
            Some(s) => row.extend_from_slice(s),
            None => row.extend(view.iter().copied()),
        }
        let result = self.sample(ctx, &mut row, sampler, rng);
        self.row = row;
        result
    }

    /// Samples one token for every row of a batch: row `i` is processed with
    /// history `contexts[i]` and drawn with `rngs[i]`, exactly as
    /// [`Pipeline::sample`] would on that row alone (each row is copied into
    /// a reusable buffer first, so `logits` is only read). The results are
    /// appended to `out` (cleared first).
    ///
    /// The stages are shared by the rows, so this suits stateless pipelines;
    /// give each sequence its own pipeline when stages carry state.
    ///
    /// # Errors
    ///
    /// [`Error::BatchSizeMismatch`] when `contexts` or `rngs` does not have
    /// one entry per row; otherwise the first row's error, as
    /// [`Pipeline::sample`].
    ///
    /// ```
    /// use decoding::sampler::Greedy;
    /// use decoding::{rng_from_seed, Context, Pipeline};
    ///
    /// let logits = ndarray::array![[0.0f32, 2.0, 1.0], [3.0, 0.0, 1.0]];
    /// let contexts = [Context::empty(), Context::empty()];
    /// let mut rngs = [rng_from_seed(1), rng_from_seed(2)];
    /// let mut out = Vec::new();
    /// Pipeline::new().sample_batch(&contexts, logits.view(), &mut Greedy::new(), &mut rngs, &mut out)?;
    /// assert_eq!(out.iter().map(|s| s.token).collect::<Vec<_>>(), [1, 0]);
    /// # Ok::<(), decoding::Error>(())
    /// ```
    pub fn sample_batch<R: rand::Rng>(
        &mut self,
        contexts: &[Context<'_>],
        logits: ArrayView2<'_, f32>,
        sampler: &mut dyn Sampler,
        rngs: &mut [R],
        out: &mut Vec<Sampled>,
    ) -> Result<(), Error> {
        let rows = logits.nrows();
        if contexts.len() != rows {
            return Err(Error::BatchSizeMismatch {
                rows,
                what: "contexts",
                actual: contexts.len(),
            });
        }
        if rngs.len() != rows {
            return Err(Error::BatchSizeMismatch { rows, what: "rngs", actual: rngs.len() });
        }
        out.clear();
        for ((ctx, view), rng) in contexts.iter().zip(logits.rows()).zip(rngs.iter_mut()) {
            out.push(self.sample_view(ctx, view, sampler, rng)?);
        }
        Ok(())
    }

    /// Samples every row of a batch in parallel (with `rayon`), each row
    /// with its own pipeline and sampler: row `i` is processed by
    /// `pipelines[i]` with history `contexts[i]` and drawn by `samplers[i]`
    /// with `rngs[i]`, exactly as `pipelines[i].sample(...)` would on that
    /// row alone, so the results do not depend on the number of threads or
    /// on scheduling. The results are written to `out` (cleared first), in
    /// row order. One pipeline per row suits stateful stages too, and
    /// pipelines of stateless stages built alike give the same tokens as
    /// [`Pipeline::sample_batch`] with one of them.
    ///
    /// Only with the `rayon` feature.
    ///
    /// # Errors
    ///
    /// [`Error::BatchSizeMismatch`] when `pipelines`, `contexts`, `samplers`
    /// or `rngs` does not have one entry per row. Otherwise the error of the
    /// lowest failing row; `out` then holds the rows before it. (Rows after
    /// it may have been sampled, and their random states advanced.)
    ///
    /// ```
    /// use decoding::processors::Temperature;
    /// use decoding::sampler::Categorical;
    /// use decoding::{rng_from_seed, Context, Pipeline};
    ///
    /// let logits = ndarray::Array2::from_shape_fn((3, 100), |(r, c)| ((r * 7 + c) % 13) as f32);
    /// let contexts = [Context::empty(); 3];
    /// let mut pipelines: Vec<_> =
    ///     (0..3).map(|_| Pipeline::new().with(Temperature::new(0.7).unwrap())).collect();
    /// let mut samplers = vec![Categorical::new(); 3];
    /// let mut rngs: Vec<_> = (0..3).map(rng_from_seed).collect();
    /// let mut out = Vec::new();
    /// Pipeline::sample_batch_par(
    ///     &mut pipelines, &contexts, logits.view(), &mut samplers, &mut rngs, &mut out,
    /// )?;
    /// assert_eq!(out.len(), 3);
    /// # Ok::<(), decoding::Error>(())
    /// ```
    #[cfg(feature = "rayon")]
    pub fn sample_batch_par<S, R>(
        pipelines: &mut [Pipeline],
        contexts: &[Context<'_>],
        logits: ArrayView2<'_, f32>,
        samplers: &mut [S],
        rngs: &mut [R],
        out: &mut Vec<Sampled>,
    ) -> Result<(), Error>
    where
        S: Sampler + Send,
        R: rand::Rng + Send,
    {
        use rayon::prelude::*;

        let rows = logits.nrows();
        for (what, actual) in [
            ("pipelines", pipelines.len()),
            ("contexts", contexts.len()),
            ("samplers", samplers.len()),
            ("rngs", rngs.len()),
        ] {
            if actual != rows {
                return Err(Error::BatchSizeMismatch { rows, what, actual });
            }
        }
        out.clear();
        out.resize(rows, Sampled { token: 0, logprob: 0.0 });
        let failed = out
            .par_iter_mut()
            .zip(pipelines.par_iter_mut())
            .zip(samplers.par_iter_mut())
            .zip(rngs.par_iter_mut())
            .enumerate()
            .filter_map(|(i, (((slot, pipeline), sampler), rng))| {
                match pipeline.sample_view(&contexts[i], logits.row(i), sampler, rng) {
                    Ok(sampled) => {
                        *slot = sampled;
                        None
                    }
                    Err(e) => Some((i, e)),
                }
            })
            .min_by_key(|(i, _)| *i);
        match failed {
            Some((i, e)) => {
                out.truncate(i);
                Err(e)
            }
            None => Ok(()),
        }
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
    fn process_array_accepts_contiguous_views_only() {
        let mut p = Pipeline::new().with(Temperature::new(2.0).unwrap());
        let mut a = ndarray::Array1::from(vec![2.0f32, 4.0]);
        p.process_array(&Context::empty(), a.view_mut()).unwrap();
        assert_eq!(a.to_vec(), [1.0, 2.0]);
        let mut m = ndarray::Array2::<f32>::zeros((2, 2));
        let column = m.column_mut(0);
        assert_eq!(p.process_array(&Context::empty(), column), Err(Error::NonContiguous));
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

#[cfg(test)]
mod batch_tests {
    use super::*;
    use crate::processors::Temperature;
    use crate::rng_from_seed;
    use crate::sampler::Categorical;

    #[test]
    fn batch_rows_equal_single_row_runs_with_the_same_seeds() {
        let logits =
            ndarray::Array2::from_shape_fn((4, 300), |(r, c)| ((r * 31 + c * 7) % 23) as f32 * 0.2);
        let contexts = [Context::empty(); 4];
        let mut p = Pipeline::new().with(Temperature::new(0.9).unwrap());
        let mut sampler = Categorical::new();
        let mut batch_rngs: Vec<_> = (0..4).map(rng_from_seed).collect();
        let mut single_rngs: Vec<_> = (0..4).map(rng_from_seed).collect();
        let mut out = Vec::new();
        for _ in 0..20 {
            p.sample_batch(&contexts, logits.view(), &mut sampler, &mut batch_rngs, &mut out)
                .unwrap();
            for (r, got) in out.iter().enumerate() {
                let mut row = logits.row(r).to_vec();
                let want =
                    p.sample(&contexts[r], &mut row, &mut sampler, &mut single_rngs[r]).unwrap();
                assert_eq!(*got, want);
            }
        }
        // A column-major (non-contiguous rows) batch gives the same draws.
        let t = logits.t().to_owned();
        let mut rngs_a: Vec<_> = (0..4).map(rng_from_seed).collect();
        let mut rngs_b: Vec<_> = (0..4).map(rng_from_seed).collect();
        let mut out_b = Vec::new();
        p.sample_batch(&contexts, logits.view(), &mut sampler, &mut rngs_a, &mut out).unwrap();
        p.sample_batch(&contexts, t.t(), &mut sampler, &mut rngs_b, &mut out_b).unwrap();
        assert_eq!(out, out_b);
    }

    #[cfg(feature = "rayon")]
    #[test]
    fn parallel_batch_rows_equal_single_row_runs_with_the_same_seeds() {
        use crate::processors::{TopK, TopP};
        use crate::sampler::Greedy;

        const ROWS: usize = 13;
        let logits = ndarray::Array2::from_shape_fn((ROWS, 5000), |(r, c)| {
            (((r * 31 + c * 7919) % 1009) as f32 * 0.37).sin() * 6.0
        });
        let history: Vec<TokenId> = vec![5, 9, 5];
        let contexts = [Context::new(&history, 1).unwrap(); ROWS];
        let make = || {
            Pipeline::new()
                .with(Temperature::new(0.8).unwrap())
                .with(TopK::new(200).unwrap())
                .with(TopP::new(0.9).unwrap())
        };
        let mut pipelines: Vec<Pipeline> = (0..ROWS).map(|_| make()).collect();
        let mut samplers = vec![Categorical::new(); ROWS];
        let mut rngs: Vec<_> = (0..ROWS as u64).map(rng_from_seed).collect();
        let mut single = make();
        let mut shared = make();
        let mut single_rngs: Vec<_> = (0..ROWS as u64).map(rng_from_seed).collect();
        let mut shared_rngs: Vec<_> = (0..ROWS as u64).map(rng_from_seed).collect();
        let (mut out, mut shared_out) = (Vec::new(), Vec::new());
        for _ in 0..10 {
            Pipeline::sample_batch_par(
                &mut pipelines,
                &contexts,
                logits.view(),
                &mut samplers,
                &mut rngs,
                &mut out,
            )
            .unwrap();
            assert_eq!(out.len(), ROWS);
            shared
                .sample_batch(
                    &contexts,
                    logits.view(),
                    &mut Categorical::new(),
                    &mut shared_rngs,
                    &mut shared_out,
                )
                .unwrap();
            assert_eq!(out, shared_out);
            for (r, got) in out.iter().enumerate() {
                let mut row = logits.row(r).to_vec();
                let want = single
                    .sample(&contexts[r], &mut row, &mut Categorical::new(), &mut single_rngs[r])
                    .unwrap();
                assert_eq!(*got, want, "row {r}");
            }
        }
        // Greedy rows in a column-major batch.
        let t = logits.t().to_owned();
        let mut greedy = vec![Greedy::new(); ROWS];
        Pipeline::sample_batch_par(
            &mut pipelines,
            &contexts,
            t.t(),
            &mut greedy,
            &mut rngs,
            &mut out,
        )
        .unwrap();
        for (r, got) in out.iter().enumerate() {
            let row = logits.row(r);
            let best = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            assert_eq!(row[got.token as usize], best);
        }
    }

    #[cfg(feature = "rayon")]
    #[test]
    fn parallel_batch_reports_the_lowest_failing_row() {
        let mut logits = ndarray::Array2::<f32>::zeros((6, 40));
        logits[[4, 3]] = f32::NAN;
        logits[[2, 7]] = f32::INFINITY;
        let contexts = [Context::empty(); 6];
        let mut pipelines: Vec<Pipeline> =
            (0..6).map(|_| Pipeline::new().with(Temperature::new(0.5).unwrap())).collect();
        let mut samplers = vec![Categorical::new(); 6];
        let mut rngs: Vec<_> = (0..6).map(rng_from_seed).collect();
        let mut out = Vec::new();
        let err = Pipeline::sample_batch_par(
            &mut pipelines,
            &contexts,
            logits.view(),
            &mut samplers,
            &mut rngs,
            &mut out,
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidLogit { index: 7, .. }), "{err:?}");
        assert_eq!(out.len(), 2);
        let err = Pipeline::sample_batch_par(
            &mut pipelines[..5],
            &contexts,
            logits.view(),
            &mut samplers,
            &mut rngs,
            &mut out,
        )
        .unwrap_err();
        assert_eq!(err, Error::BatchSizeMismatch { rows: 6, what: "pipelines", actual: 5 });
    }

    #[test]
    fn mismatched_batch_parts_are_errors() {
        let logits = ndarray::Array2::<f32>::zeros((2, 3));
        let mut out = Vec::new();
        let err = Pipeline::new()
            .sample_batch(
                &[Context::empty()],
                logits.view(),
                &mut Categorical::new(),
                &mut [rng_from_seed(0), rng_from_seed(1)],
                &mut out,
            )
            .unwrap_err();
        assert_eq!(err, Error::BatchSizeMismatch { rows: 2, what: "contexts", actual: 1 });
    }
}
