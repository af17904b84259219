//! Top-p at and past its limits (F19–F26). The expected survivors were
//! derived by hand from the definition (keep the smallest prefix whose mass
//! reaches `p`, the crossing token included) and agree with transformers'
//! `TopPLogitsWarper` on the same inputs.

use decoding::processors::{TopK, TopP};
use decoding::{Context, LogitsProcessorExt};

use crate::common::*;

fn top_p(p: f32, row: &[f32]) -> Vec<f32> {
    apply(&mut TopP::new(p).unwrap(), &Context::empty(), row)
}

#[test]
fn f20_top_p_one_is_the_identity_even_when_an_f32_cumsum_ends_below_one() {
    // A sequential f32 sum of 151936 equal probabilities ends at 0.99832.
    let row = vec![0.0f32; 151_936];
    let out = top_p(1.0, &row);
    assert_eq!(out, row);
    let small = [0.3, -2.0, NEG, 7.0];
    assert_eq!(top_p(1.0, &small), small);
}

#[test]
fn f21_top_p_zero_keeps_exactly_the_argmax() {
    let row = logits_of(&[0.1, 0.4, 0.2, 0.3]);
    assert_eq!(survivors(&top_p(0.0, &row)), [1]);
    // Never zero survivors, whatever min_tokens_to_keep.
    let mut keep3 = TopP::new(0.0).unwrap().min_tokens_to_keep(3).unwrap();
    assert_eq!(survivors(&apply(&mut keep3, &Context::empty(), &row)), [1, 2, 3]);
}

#[test]
fn f21_top_p_1e_8_keeps_exactly_the_argmax_not_uniform_noise() {
    // mlx-lm#1912.
    let row: Vec<f32> = (0..1000).map(|i| ((i * 7919 % 1000) as f32) / 500.0).collect();
    let best = (0..1000).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap() as u32;
    assert_eq!(survivors(&top_p(1e-8, &row)), [best]);
}

#[test]
fn f22_top_p_outside_zero_one_or_nan_is_an_error() {
    for p in [-0.1, 1.5, 1.0000001, f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        assert_invalid(TopP::new(p), "top_p");
    }
    assert_invalid(TopP::new(0.9).unwrap().min_tokens_to_keep(0), "min_tokens_to_keep");
}

#[test]
fn f23_the_token_that_crosses_p_is_kept() {
    // C2C#21: 0.5 < 0.6, 0.5 + 0.3 >= 0.6.
    let row = logits_of(&[0.5, 0.3, 0.15, 0.05]);
    let out = top_p(0.6, &row);
    assert_eq!(survivors(&out), [0, 1]);
    assert_close(&kept_probs(&out), &[0.625, 0.375], 1e-6);
}

#[test]
fn f23_top_p_0_8_on_a_four_token_row_keeps_mass_0_9() {
    // esm#360.
    let out = top_p(0.8, &logits_of(&[0.4, 0.3, 0.2, 0.1]));
    assert_eq!(survivors(&out), [0, 1, 2]);
}

#[test]
fn f23_margins_around_an_exact_boundary() {
    // [1/2, 1/4, 1/8, 1/8]: the first two tokens weigh exactly 3/4.
    let row = logits_of(&[0.5, 0.25, 0.125, 0.125]);
    assert_eq!(survivors(&top_p(0.75 - 1e-4, &row)), [0, 1]);
    // One of the two tied tokens is needed; the higher id wins the tie.
    assert_eq!(survivors(&top_p(0.75 + 1e-4, &row)), [0, 1, 3]);
}

#[test]
fn f25_min_tokens_to_keep_overrides_a_small_p() {
    let row = logits_of(&[0.9, 0.05, 0.03, 0.02]);
    let mut p = TopP::new(0.1).unwrap().min_tokens_to_keep(3).unwrap();
    assert_eq!(survivors(&apply(&mut p, &Context::empty(), &row)), [0, 1, 2]);
}

#[test]
fn f25_min_tokens_to_keep_above_the_vocabulary_is_the_identity() {
    let row = logits_of(&[0.9, 0.05, 0.03, 0.02]);
    let mut p = TopP::new(0.1).unwrap().min_tokens_to_keep(14).unwrap();
    assert_eq!(apply(&mut p, &Context::empty(), &row), row);
}

#[test]
fn f24_half_of_a_flat_151936_token_row() {
    // Exactly 75968 tokens carry mass 1/2; an f32 cumsum keeps 75932.
    let out = top_p(0.5, &vec![0.0f32; 151_936]);
    let n = survivors(&out).len();
    assert!((75_966..=75_970).contains(&n), "{n}");
}

#[test]
fn f26_llama_cpp_golden_vectors() {
    // llama.cpp test-sampling.cpp, probabilities [0.1, 0.2, 0.3, 0.4].
    let row = logits_of(&[0.1, 0.2, 0.3, 0.4]);
    assert_close(&kept_probs(&top_p(0.7, &row)), &[0.428571, 0.571429], 1e-5);
    assert_close(&kept_probs(&top_p(0.8, &row)), &[0.222222, 0.333333, 0.444444], 1e-5);
    assert_close(&kept_probs(&top_p(1.0, &row)), &[0.1, 0.2, 0.3, 0.4], 1e-6);
    assert_close(&kept_probs(&top_p(0.0, &row)), &[1.0], 1e-12);
}

#[test]
fn f26_top_p_after_top_k_works_on_the_renormalized_survivors() {
    // mlx-lm#388: [0.4, 0.35, 0.25] -> top-k 2 -> [0.533, 0.467] -> top-p
    // 0.9 keeps both; never an empty set.
    let row = logits_of(&[0.4, 0.35, 0.25]);
    let mut chain = TopK::new(2).unwrap().then(TopP::new(0.9).unwrap());
    let out = apply(&mut chain, &Context::empty(), &row);
    assert_eq!(survivors(&out), [0, 1]);
    assert_close(&kept_probs(&out), &[0.4 / 0.75, 0.35 / 0.75], 1e-6);
}

#[test]
fn top_p_on_a_row_with_one_finite_token_keeps_it() {
    assert_eq!(top_p(0.01, &[NEG, 0.0, NEG]), [NEG, 0.0, NEG]);
    assert_eq!(top_p(0.5, &[NEG, NEG]), [NEG, NEG]);
}
