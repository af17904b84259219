//! Batches as `ndarray` arrays (feature `ndarray`): every row processed or
//! sampled exactly as the row alone would be, in standard layout and in
//! views whose rows are not contiguous.

use decoding::processors::{MinP, RepetitionPenalty, Temperature, TopK, TopP};
use decoding::sampler::{Categorical, Greedy};
use decoding::{Context, Error, Pipeline, Sampler, rng_from_seed};
use ndarray::{Array2, ShapeBuilder, s};

const R: usize = 5;
const V: usize = 257;

fn pipeline() -> Pipeline {
    Pipeline::new()
        .with(RepetitionPenalty::new(1.3).unwrap())
        .with(Temperature::new(0.8).unwrap())
        .with(TopK::new(40).unwrap())
        .with(TopP::new(0.9).unwrap())
        .with(MinP::new(0.05).unwrap())
}

/// Rows with ties, large offsets and a spread of shapes.
fn rows(seed: u64) -> Vec<Vec<f32>> {
    (0..R)
        .map(|r| {
            (0..V)
                .map(|c| {
                    let h = (seed * 131 + r as u64 * 7919 + c as u64 * 104_729) % 1009;
                    (h % 37) as f32 * 0.3 + r as f32 * 1000.0
                })
                .collect()
        })
        .collect()
}

/// The batch in standard layout, in column-major layout (rows strided), and
/// as every other row of a larger array.
fn layouts(rows: &[Vec<f32>]) -> Vec<Array2<f32>> {
    let standard = Array2::from_shape_fn((R, V), |(r, c)| rows[r][c]);
    let column_major = Array2::from_shape_fn((R, V).f(), |(r, c)| rows[r][c]);
    assert!(column_major.row(0).as_slice().is_none());
    let mut wide = Array2::zeros((R, 2 * V));
    wide.slice_mut(s![.., ..;2]).assign(&standard);
    vec![standard, column_major, wide]
}

fn histories() -> Vec<Vec<u32>> {
    (0..R).map(|r| (0..r as u32 * 3).map(|i| (i * 31 + r as u32) % V as u32).collect()).collect()
}

#[test]
fn process_batch_equals_processing_each_row_alone() {
    let histories = histories();
    let contexts: Vec<Context<'_>> = histories.iter().map(|h| Context::prompt_only(h)).collect();
    for seed in 0..10 {
        let rows = rows(seed);
        let mut expected = rows.clone();
        for (row, ctx) in expected.iter_mut().zip(&contexts) {
            pipeline().process(ctx, row).unwrap();
        }
        for mut batch in layouts(&rows) {
            let mut p = pipeline();
            if batch.ncols() == V {
                p.process_batch(&contexts, batch.view_mut()).unwrap();
            } else {
                p.process_batch(&contexts, batch.slice_mut(s![.., ..;2])).unwrap();
                // The columns between the rows' entries are untouched.
                assert!(batch.slice(s![.., 1..;2]).iter().all(|&x| x == 0.0));
                batch = batch.slice(s![.., ..;2]).to_owned();
            }
            for (r, want) in expected.iter().enumerate() {
                let got: Vec<u32> = batch.row(r).iter().map(|x| x.to_bits()).collect();
                let want: Vec<u32> = want.iter().map(|x| x.to_bits()).collect();
                assert_eq!(got, want, "seed {seed}, row {r}");
            }
        }
    }
}

#[test]
fn sampling_a_batch_in_place_equals_sampling_each_row_alone() {
    let histories = histories();
    let contexts: Vec<Context<'_>> = histories.iter().map(|h| Context::prompt_only(h)).collect();
    for seed in 0..20 {
        let rows = rows(seed);
        let samplers: [&mut dyn Sampler; 2] = [&mut Categorical::new(), &mut Greedy::new()];
        for sampler in samplers {
            let expected: Vec<_> = rows
                .iter()
                .zip(&contexts)
                .enumerate()
                .map(|(r, (row, ctx))| {
                    let mut row = row.clone();
                    let mut rng = rng_from_seed(seed * 100 + r as u64);
                    pipeline().sample(ctx, &mut row, sampler, &mut rng).unwrap()
                })
                .collect();
            for batch in layouts(&rows) {
                let mut rngs: Vec<_> =
                    (0..R as u64).map(|r| rng_from_seed(seed * 100 + r)).collect();
                let mut out = Vec::new();
                let mut p = pipeline();
                let read = batch.slice(s![.., ..;batch.ncols() / V]).to_owned();
                p.sample_batch(&contexts, read.view(), sampler, &mut rngs, &mut out).unwrap();
                assert_eq!(out, expected, "sample_batch, seed {seed}");

                let mut batch = batch;
                let step = batch.ncols() / V;
                let mut rngs: Vec<_> =
                    (0..R as u64).map(|r| rng_from_seed(seed * 100 + r)).collect();
                p.sample_batch_mut(
                    &contexts,
                    batch.slice_mut(s![.., ..;step]),
                    sampler,
                    &mut rngs,
                    &mut out,
                )
                .unwrap();
                assert_eq!(out, expected, "sample_batch_mut, seed {seed}");
            }
        }
    }
}

#[test]
fn a_bad_row_stops_the_batch_there_and_sizes_must_match() {
    let mut batch = Array2::from_shape_fn((3, 4), |(r, c)| (r * 4 + c) as f32);
    batch[[1, 2]] = f32::NAN;
    let before = batch.clone();
    let contexts = [Context::empty(); 3];
    let err = pipeline().process_batch(&contexts, batch.view_mut()).unwrap_err();
    assert!(matches!(err, Error::InvalidLogit { index: 2, .. }), "{err:?}");
    assert_ne!(batch.row(0), before.row(0)); // processed
    assert_eq!(batch.row(2), before.row(2)); // untouched

    let mut out = Vec::new();
    let mut rngs = [rng_from_seed(0), rng_from_seed(1), rng_from_seed(2)];
    let err = pipeline()
        .sample_batch_mut(&contexts, batch.view_mut(), &mut Categorical::new(), &mut rngs, &mut out)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidLogit { .. }));
    assert_eq!(out.len(), 1);

    let err = pipeline().process_batch(&contexts[..2], batch.view_mut()).unwrap_err();
    assert_eq!(err, Error::BatchSizeMismatch { rows: 3, what: "contexts", actual: 2 });
    let err = pipeline()
        .sample_batch_mut(&contexts, batch.view_mut(), &mut Greedy::new(), &mut rngs[..1], &mut out)
        .unwrap_err();
    assert_eq!(err, Error::BatchSizeMismatch { rows: 3, what: "rngs", actual: 1 });
}
