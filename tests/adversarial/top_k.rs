//! Top-k at and past its limits (F15–F18).

use decoding::processors::TopK;
use decoding::sampler::Categorical;
use decoding::{Context, Pipeline, Sampler, Scores, rng_from_seed};

use crate::common::*;

fn top_k(k: usize, row: &[f32]) -> Vec<f32> {
    apply(&mut TopK::new(k).unwrap(), &Context::empty(), row)
}

#[test]
fn f15_top_k_zero_is_an_error_not_keep_one_nor_keep_none() {
    assert_invalid(TopK::new(0), "top_k");
}

#[test]
fn f15_min_tokens_to_keep_zero_is_an_error() {
    assert_invalid(TopK::new(3).unwrap().min_tokens_to_keep(0), "min_tokens_to_keep");
}

#[test]
fn f16_top_k_equal_to_the_vocabulary_is_the_identity() {
    let row = [0.3, -2.0, NEG, 7.0, 7.0];
    assert_eq!(top_k(5, &row), row);
}

#[test]
fn f16_top_k_far_above_the_vocabulary_is_the_identity() {
    let row = [0.3, -2.0, NEG, 7.0];
    for k in [5, 1004, usize::MAX] {
        assert_eq!(top_k(k, &row), row, "k = {k}");
    }
    let out = apply(
        &mut TopK::new(2).unwrap().min_tokens_to_keep(usize::MAX).unwrap(),
        &Context::empty(),
        &row,
    );
    assert_eq!(out, row);
}

#[test]
fn top_k_one_keeps_only_the_argmax_and_always_samples_it() {
    let row = [0.1, 0.5, 0.3];
    assert_eq!(top_k(1, &row), [NEG, 0.5, NEG]);
    for u in [0.0, 0.25, 0.5, U_MAX] {
        let mut buf = row.to_vec();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut buf, &mut live);
        decoding::LogitsProcessor::process(
            &mut TopK::new(1).unwrap(),
            &Context::empty(),
            &mut scores,
        )
        .unwrap();
        let s = Categorical::new().sample_with_uniform(&scores, u).unwrap();
        assert_eq!((s.token, s.logprob), (1, 0.0));
    }
}

#[test]
fn f17_ties_at_the_kth_value_are_all_kept() {
    // transformers removes `score < kth`: every tie with the k-th survives.
    let row = [1.0, 1.0, 1.0, 0.0];
    for _ in 0..100 {
        assert_eq!(survivors(&top_k(2, &row)), [0, 1, 2]);
    }
}

#[cfg(feature = "ndarray")]
#[test]
fn f17_ties_do_not_depend_on_the_position_in_a_batch() {
    let rows = ndarray::array![[0.0f32, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 0.0], [0.0, 1.0, 1.0, 1.0]];
    let mut p = Pipeline::new().with(TopK::new(2).unwrap());
    let contexts = [Context::empty(); 3];
    let mut out = Vec::new();
    for seed in 0..200 {
        let mut rngs = [rng_from_seed(seed), rng_from_seed(seed + 1), rng_from_seed(seed + 2)];
        p.sample_batch(&contexts, rows.view(), &mut Categorical::new(), &mut rngs, &mut out)
            .unwrap();
        for (r, s) in out.iter().enumerate() {
            let mut alone = rows.row(r).to_vec();
            let want = p
                .sample(
                    &Context::empty(),
                    &mut alone,
                    &mut Categorical::new(),
                    &mut rng_from_seed(seed + r as u64),
                )
                .unwrap();
            assert_eq!(*s, want);
        }
        assert_ne!(out[1].token, 3);
        assert_ne!(out[2].token, 0);
    }
}

#[test]
fn f18_masked_tokens_are_never_revived() {
    assert_eq!(top_k(3, &[0.0, NEG, NEG, NEG]), [0.0, NEG, NEG, NEG]);
    assert_eq!(top_k(2, &[NEG, NEG, NEG]), [NEG, NEG, NEG]);
    let mut row = vec![NEG, NEG, NEG];
    let r = Pipeline::new().with(TopK::new(2).unwrap()).sample(
        &Context::empty(),
        &mut row,
        &mut Categorical::new(),
        &mut rng_from_seed(0),
    );
    assert_eq!(r, Err(decoding::Error::AllMasked));
}

#[test]
fn top_k_is_idempotent() {
    let row = [5.0, 4.0, 3.0, 2.0];
    let once = top_k(2, &row);
    assert_eq!(once, [5.0, 4.0, NEG, NEG]);
    assert_eq!(top_k(2, &once), once);
}

#[test]
fn top_k_on_a_single_token_vocabulary() {
    assert_eq!(top_k(1, &[-3.0]), [-3.0]);
    let mut buf = vec![-3.0];
    let mut live = Vec::new();
    let s =
        Categorical::new().sample(&Scores::new(&mut buf, &mut live), &mut Words::new(&[u64::MAX]));
    assert_eq!(s.unwrap().token, 0);
}
