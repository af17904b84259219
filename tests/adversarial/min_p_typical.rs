//! Min-p, typical, epsilon, eta and top-H at and past their limits
//! (F27–F31). Expected vectors are the llama.cpp golden vectors, derived by
//! hand from the definitions; they agree with transformers' warpers.

use decoding::processors::{EpsilonCutoff, EtaCutoff, MinP, TopH, Typical};
use decoding::{Context, Error, LogitsProcessor, Scores};

use crate::common::*;

fn run(p: &mut impl LogitsProcessor, row: &[f32]) -> Vec<f32> {
    apply(p, &Context::empty(), row)
}

#[test]
fn f27_min_p_zero_is_the_bitwise_identity() {
    let row = [0.3, -2.0, NEG, 7.0, -1e30];
    assert_eq!(run(&mut MinP::new(0.0).unwrap(), &row), row);
}

#[test]
fn f27_min_p_one_keeps_the_maximum_and_its_exact_ties() {
    assert_eq!(survivors(&run(&mut MinP::new(1.0).unwrap(), &[1.0, 3.0, 3.0, 2.0])), [1, 2]);
}

#[test]
fn f27_min_p_outside_zero_one_or_nan_is_an_error() {
    for p in [-0.1, 1.05, f32::NAN, f32::INFINITY] {
        assert_invalid(MinP::new(p), "min_p");
    }
    assert_invalid(MinP::new(0.1).unwrap().min_tokens_to_keep(0), "min_tokens_to_keep");
}

#[test]
fn f27_min_p_llama_cpp_golden_vectors() {
    let row = logits_of(&[0.1, 0.2, 0.3, 0.4]);
    let kept = |m: f32| kept_probs(&run(&mut MinP::new(m).unwrap(), &row));
    assert_close(&kept(0.24), &[0.1, 0.2, 0.3, 0.4], 1e-6);
    assert_close(&kept(0.26), &[0.2 / 0.9, 0.3 / 0.9, 0.4 / 0.9], 1e-5);
    assert_close(&kept(0.51), &[0.3 / 0.7, 0.4 / 0.7], 1e-5);
    assert_close(&kept(0.76), &[1.0], 1e-12);
}

#[test]
fn f28_min_p_threshold_is_inclusive() {
    // [0.5, 0.25, 0.25] with min_p just below 0.5: the floor 0.25 keeps all
    // three (a `<=` removal, as in mistral.rs, would drop two). Exact ties
    // with the maximum are kept at min_p = 1.
    let row = logits_of(&[0.5, 0.25, 0.25]);
    assert_eq!(survivors(&run(&mut MinP::new(0.5 - 1e-6).unwrap(), &row)), [0, 1, 2]);
    assert_eq!(survivors(&run(&mut MinP::new(1.0).unwrap(), &[0.0, 0.0])), [0, 1]);
}

#[test]
fn f28_min_p_alone_filters() {
    // mistral.rs#2345: min-p did nothing unless top-p was also enabled.
    let row = logits_of(&[0.05, 0.9, 0.05]);
    assert_eq!(survivors(&run(&mut MinP::new(0.1).unwrap(), &row)), [1]);
}

#[test]
fn f29_typical_llama_cpp_golden_vectors() {
    let out = run(&mut Typical::new(0.5).unwrap(), &logits_of(&[0.97, 0.01, 0.01, 0.01]));
    assert_eq!(survivors(&out), [0]);
    // The most probable token is the least typical one: it goes.
    let out = run(&mut Typical::new(0.5).unwrap(), &logits_of(&[0.4, 0.2, 0.2, 0.2]));
    assert_eq!(survivors(&out), [1, 2, 3]);
    assert_close(&kept_probs(&out), &[1.0 / 3.0; 3], 1e-6);
}

#[test]
fn f29_typical_with_masked_tokens_has_no_nan() {
    let out = run(&mut Typical::new(0.5).unwrap(), &[0.0, 0.0, NEG]);
    assert!(out.iter().all(|x| !x.is_nan()));
    let s = survivors(&out);
    assert!(!s.is_empty() && s.iter().all(|&i| i < 2), "{out:?}");
}

#[test]
fn f29_typical_mass_outside_its_range_is_an_error() {
    for m in [0.0, -0.1, 1.5, f32::NAN] {
        assert_invalid(Typical::new(m), "typical_p");
    }
    assert_invalid(Typical::new(0.5).unwrap().min_tokens_to_keep(0), "min_tokens_to_keep");
}

#[test]
fn f29_typical_mass_one_is_the_identity() {
    let row = logits_of(&[0.4, 0.2, 0.2, 0.2]);
    assert_eq!(run(&mut Typical::new(1.0).unwrap(), &row), row);
}

#[test]
fn f30_min_tokens_to_keep_above_the_vocabulary_is_the_identity() {
    let row = logits_of(&[0.9, 0.05, 0.03, 0.02]);
    let big = 4 + 10;
    assert_eq!(run(&mut MinP::new(0.9).unwrap().min_tokens_to_keep(big).unwrap(), &row), row);
    assert_eq!(run(&mut Typical::new(0.1).unwrap().min_tokens_to_keep(big).unwrap(), &row), row);
    let mut eps = EpsilonCutoff::new(0.5).unwrap().min_tokens_to_keep(big).unwrap();
    assert_eq!(run(&mut eps, &row), row);
}

#[test]
fn f31_epsilon_and_eta_outside_zero_one_are_errors() {
    for e in [0.0, 1.0, -0.1, f32::NAN] {
        assert_invalid(EpsilonCutoff::new(e), "epsilon_cutoff");
        assert_invalid(EtaCutoff::new(e), "eta_cutoff");
    }
}

#[test]
fn f31_epsilon_above_every_probability_keeps_the_argmax() {
    let out = run(&mut EpsilonCutoff::new(0.5).unwrap(), &logits_of(&[0.3, 0.3, 0.4]));
    assert_eq!(survivors(&out), [2]);
}

#[test]
fn f31_eta_on_a_row_with_one_finite_token_keeps_it() {
    assert_eq!(run(&mut EtaCutoff::new(0.9).unwrap(), &[NEG, 2.0, NEG]), [NEG, 2.0, NEG]);
}

#[test]
fn f31_top_h_outside_its_range_is_an_error_and_one_finite_token_survives() {
    for h in [0.0, 1.5, f32::NAN] {
        assert_invalid(TopH::new(h), "top_h");
    }
    assert_eq!(run(&mut TopH::new(0.4).unwrap(), &[NEG, 2.0, NEG]), [NEG, 2.0, NEG]);
}

#[test]
fn truncations_leave_a_fully_masked_row_for_the_sampler_to_report() {
    let row = [NEG; 4];
    assert_eq!(run(&mut MinP::new(0.5).unwrap(), &row), row);
    assert_eq!(run(&mut Typical::new(0.5).unwrap(), &row), row);
    assert_eq!(run(&mut EpsilonCutoff::new(0.5).unwrap(), &row), row);
    assert_eq!(run(&mut EtaCutoff::new(0.5).unwrap(), &row), row);
    let mut buf = row.to_vec();
    let mut live = Vec::new();
    let mut scores = Scores::new(&mut buf, &mut live);
    TopH::new(0.5).unwrap().process(&Context::empty(), &mut scores).unwrap();
    let r = decoding::sampler::Categorical::new().sample_with_uniform(&scores, 0.0);
    assert_eq!(r, Err(Error::AllMasked));
}
