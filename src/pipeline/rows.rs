//! Rows of an `ndarray` batch through a [`Pipeline`] (feature `ndarray`):
//! every row processed in place, or sampled, each with its own history and
//! random generator, exactly as the row alone would be.

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2};

use super::Pipeline;
use crate::{Context, Error, Sampled, Sampler};

impl Pipeline {
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

    /// Processes every row of a batch in place, as [`Pipeline::process`]
    /// does one row: row `i` with history `contexts[i]`, checked, run
    /// through every stage and written back in full (removed tokens become
    /// `-inf`). Rows go in order. A row that is not contiguous in memory (a
    /// column-major array, a strided slice) is copied into a buffer the
    /// pipeline keeps and back, with the same result; a standard-layout
    /// batch is processed where it lies, with no copy.
    ///
    /// The stages are shared by the rows, so this suits stateless pipelines;
    /// give each sequence its own pipeline when stages carry state.
    ///
    /// # Errors
    ///
    /// [`Error::BatchSizeMismatch`] when `contexts` does not have one entry
    /// per row; otherwise the first failing row's error, as
    /// [`Pipeline::process`] (the rows before it are processed, the rows
    /// after it untouched).
    ///
    /// ```
    /// use decoding::processors::{Temperature, TopK};
    /// use decoding::{Context, Pipeline};
    ///
    /// let mut logits = ndarray::array![[1.0f32, 4.0, 2.0], [6.0, 0.0, 2.0]];
    /// let mut pipeline = Pipeline::new().with(Temperature::new(2.0)?).with(TopK::new(2)?);
    /// pipeline.process_batch(&[Context::empty(); 2], logits.view_mut())?;
    /// let ninf = f32::NEG_INFINITY;
    /// assert_eq!(logits, ndarray::array![[ninf, 2.0, 1.0], [3.0, ninf, 1.0]]);
    /// # Ok::<(), decoding::Error>(())
    /// ```
    pub fn process_batch(
        &mut self,
        contexts: &[Context<'_>],
        mut logits: ArrayViewMut2<'_, f32>,
    ) -> Result<(), Error> {
        check_rows(logits.nrows(), "contexts", contexts.len())?;
        for (ctx, row) in contexts.iter().zip(logits.rows_mut()) {
            self.on_row(row, true, |p, row| p.process(ctx, row))?;
        }
        Ok(())
    }

    /// Samples one token for every row of a batch, processing the rows in
    /// place: the batch form of [`Pipeline::sample`], whose tokens it gives
    /// (row `i` with history `contexts[i]`, drawn with `rngs[i]`), without
    /// the copy of each row [`Pipeline::sample_batch`] makes. The rows are
    /// left partly processed, as [`Pipeline::sample`] leaves its row. A row
    /// that is not contiguous is copied into a buffer the pipeline keeps
    /// (and not written back). The results are appended to `out` (cleared
    /// first).
    ///
    /// The stages are shared by the rows, so this suits stateless pipelines;
    /// give each sequence its own pipeline when stages carry state.
    ///
    /// # Errors
    ///
    /// [`Error::BatchSizeMismatch`] when `contexts` or `rngs` does not have
    /// one entry per row; otherwise the first failing row's error, as
    /// [`Pipeline::sample`] (`out` then holds the rows before it).
    ///
    /// ```
    /// use decoding::processors::TopK;
    /// use decoding::sampler::Categorical;
    /// use decoding::{rng_from_seed, Context, Pipeline};
    ///
    /// let mut logits = ndarray::Array2::from_shape_fn((4, 50), |(r, c)| ((r * 5 + c) % 11) as f32);
    /// let mut rngs: Vec<_> = (0..4).map(rng_from_seed).collect();
    /// let mut out = Vec::new();
    /// let mut pipeline = Pipeline::new().with(TopK::new(3)?);
    /// pipeline.sample_batch_mut(&[Context::empty(); 4], logits.view_mut(), &mut Categorical::new(), &mut rngs, &mut out)?;
    /// assert_eq!(out.len(), 4);
    /// // Each token is one of its row's three best.
    /// assert!(out.iter().all(|s| s.logprob.is_finite()));
    /// # Ok::<(), decoding::Error>(())
    /// ```
    pub fn sample_batch_mut<R: rand::Rng>(
        &mut self,
        contexts: &[Context<'_>],
        mut logits: ArrayViewMut2<'_, f32>,
        sampler: &mut dyn Sampler,
        rngs: &mut [R],
        out: &mut Vec<Sampled>,
    ) -> Result<(), Error> {
        let rows = logits.nrows();
        check_rows(rows, "contexts", contexts.len())?;
        check_rows(rows, "rngs", rngs.len())?;
        out.clear();
        for ((ctx, row), rng) in contexts.iter().zip(logits.rows_mut()).zip(rngs.iter_mut()) {
            out.push(self.on_row(row, false, |p, row| p.sample(ctx, row, sampler, rng))?);
        }
        Ok(())
    }

    /// Runs `f` on a row: in place when it is contiguous, otherwise on a
    /// copy in the pipeline's buffer (written back when `write_back`).
    fn on_row<T>(
        &mut self,
        mut view: ArrayViewMut1<'_, f32>,
        write_back: bool,
        f: impl FnOnce(&mut Self, &mut [f32]) -> Result<T, Error>,
    ) -> Result<T, Error> {
        if let Some(row) = view.as_slice_mut() {
            return f(self, row);
        }
        let mut row = std::mem::take(&mut self.row);
        row.clear();
        row.extend(view.iter().copied());
        let result = f(self, &mut row);
        if write_back && result.is_ok() {
            view.iter_mut().zip(&row).for_each(|(x, &y)| *x = y);
        }
        self.row = row;
        result
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
        check_rows(rows, "contexts", contexts.len())?;
        check_rows(rows, "rngs", rngs.len())?;
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
        check_rows(rows, "pipelines", pipelines.len())?;
        check_rows(rows, "contexts", contexts.len())?;
        check_rows(rows, "samplers", samplers.len())?;
        check_rows(rows, "rngs", rngs.len())?;
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
}

/// [`Error::BatchSizeMismatch`] unless `what` has one entry per row.
fn check_rows(rows: usize, what: &'static str, actual: usize) -> Result<(), Error> {
    if actual == rows { Ok(()) } else { Err(Error::BatchSizeMismatch { rows, what, actual }) }
}

#[cfg(test)]
mod tests {
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
        let history: Vec<crate::TokenId> = vec![5, 9, 5];
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
}
