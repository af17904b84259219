//! Temperature at and past its limits (F10–F14).

use decoding::processors::{Temperature, TopK, TopP};
use decoding::sampler::Categorical;
use decoding::{Context, Pipeline, rng_from_seed};

use crate::common::*;

/// Processes `row` with `pipeline` and returns the processed probabilities.
fn probs(pipeline: &mut Pipeline, row: &[f32]) -> Vec<f64> {
    let mut buf = row.to_vec();
    pipeline.process(&Context::empty(), &mut buf).unwrap();
    assert!(buf.iter().all(|x| !x.is_nan() && *x != f32::INFINITY), "{buf:?}");
    softmax(&buf)
}

fn sample_many(pipeline: &mut Pipeline, row: &[f32], seeds: std::ops::Range<u64>) -> Vec<u32> {
    let mut sampler = Categorical::new();
    seeds
        .map(|seed| {
            let mut buf = row.to_vec();
            pipeline
                .sample(&Context::empty(), &mut buf, &mut sampler, &mut rng_from_seed(seed))
                .unwrap()
                .token
        })
        .collect()
}

#[test]
fn f10_temperature_zero_is_greedy_for_every_seed() {
    let mut p = Pipeline::new().with(Temperature::new(0.0).unwrap());
    assert!(sample_many(&mut p, &[1.0, 2.0, 3.0], 0..1000).iter().all(|&t| t == 2));
    // Ties at the maximum: the lowest id, as greedy.
    assert!(sample_many(&mut p, &[3.0, 1.0, 3.0], 0..200).iter().all(|&t| t == 0));
}

#[test]
fn f10_temperature_zero_with_top_k_and_top_p_is_still_greedy() {
    // litgpt#2238: the truncations must not reintroduce randomness.
    let mut p = Pipeline::new()
        .with(Temperature::new(0.0).unwrap())
        .with(TopK::new(50).unwrap())
        .with(TopP::new(0.9).unwrap());
    assert!(sample_many(&mut p, &[1.0, 2.0, 3.0], 0..1000).iter().all(|&t| t == 2));
}

#[test]
fn f10_negative_zero_temperature_is_zero() {
    let mut p = Pipeline::new().with(Temperature::new(-0.0).unwrap());
    assert!(sample_many(&mut p, &[1.0, 2.0, 3.0], 0..100).iter().all(|&t| t == 2));
}

#[test]
fn f11_tiny_temperatures_are_greedy_and_finite() {
    for t in [1e-6, 1e-30, f32::MIN_POSITIVE, 1e-45] {
        let mut p = Pipeline::new().with(Temperature::new(t).unwrap());
        let pr = probs(&mut p, &[1.0, 2.0, 3.0]);
        assert_close(&pr, &[0.0, 0.0, 1.0], 1e-6);
        assert!((pr.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        assert!(sample_many(&mut p, &[1.0, 2.0, 3.0], 0..300).iter().all(|&x| x == 2), "T = {t}");
    }
}

#[test]
fn f11_temperature_1e_4_on_the_logits_of_vllm_890() {
    let row = [11.06, 2.9, 2.8, -2.4];
    let mut p = Pipeline::new().with(Temperature::new(1e-4).unwrap());
    assert_close(&probs(&mut p, &row), &[1.0, 0.0, 0.0, 0.0], 1e-12);
    assert!(sample_many(&mut p, &row, 0..300).iter().all(|&t| t == 0));
}

#[test]
fn f11_tiny_temperature_on_huge_logits_does_not_overflow() {
    // 1e30 / 1e-30 overflows f32: the scores are shifted by the max first.
    let mut p = Pipeline::new().with(Temperature::new(1e-30).unwrap());
    let mut row = vec![1e30, 0.0, -1e30, NEG];
    p.process(&Context::empty(), &mut row).unwrap();
    assert_eq!(row[0], 0.0);
    assert_eq!(row[3], NEG);
    assert!(row.iter().all(|x| !x.is_nan() && *x != f32::INFINITY), "{row:?}");
    assert!(sample_many(&mut p, &[1e30, 0.0, -1e30, NEG], 0..100).iter().all(|&t| t == 0));
}

#[test]
fn f12_negative_temperature_is_an_error() {
    for t in [-1.0, -1e-30, f32::MIN] {
        assert_invalid(Temperature::new(t), "temperature");
    }
}

#[test]
fn f13_nan_and_infinite_temperatures_are_errors() {
    for t in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        assert_invalid(Temperature::new(t), "temperature");
    }
}

#[test]
fn f14_huge_temperature_is_uniform_over_the_unmasked_tokens() {
    let row = [0.0, 10.0, NEG];
    let mut p = Pipeline::new().with(Temperature::new(1e6).unwrap());
    assert_close(&probs(&mut p, &row), &[0.5, 0.5, 0.0], 1e-4);
    for k in 0..=1000 {
        let u = (f64::from(k) / 1000.0).min(U_MAX);
        let mut buf = row.to_vec();
        let mut live = Vec::new();
        let mut scores = decoding::Scores::new(&mut buf, &mut live);
        decoding::LogitsProcessor::process(
            &mut Temperature::new(1e6).unwrap(),
            &Context::empty(),
            &mut scores,
        )
        .unwrap();
        let s = Categorical::new().sample_with_uniform(&scores, u).unwrap();
        assert_ne!(s.token, 2, "u = {u}");
    }
}

#[test]
fn f14_temperature_1e30_keeps_masks_and_order() {
    let mut t = Temperature::new(1e30).unwrap();
    let out = apply(&mut t, &Context::empty(), &[NEG, 5.0, -5.0]);
    assert_eq!(out, [NEG, 5.0 / 1e30, -5.0 / 1e30]);
}

#[test]
fn temperature_one_is_the_bitwise_identity() {
    let row = [0.1, -7.25, NEG, 1e30, -0.0, 1e-45];
    let out = apply(&mut Temperature::new(1.0).unwrap(), &Context::empty(), &row);
    let bits = |r: &[f32]| r.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&out), bits(&row));
}

#[test]
fn temperatures_compose_two_then_three_is_six() {
    let row: Vec<f32> = (0..50).map(|i| ((i * 37 % 11) as f32) * 0.8 - 3.0).collect();
    let mut twice =
        Pipeline::new().with(Temperature::new(2.0).unwrap()).with(Temperature::new(3.0).unwrap());
    let mut once = Pipeline::new().with(Temperature::new(6.0).unwrap());
    assert_close(&probs(&mut twice, &row), &probs(&mut once, &row), 1e-6);
}
