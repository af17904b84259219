//! Non-finite, empty, fully masked and extreme logits (F01–F09).

use decoding::processors::{
    BadWords, MinP, RepetitionPenalty, SuppressTokens, Temperature, TopK, TopP, Typical,
};
use decoding::sampler::{Categorical, Greedy};
use decoding::{Context, Error, Pipeline, rng_from_seed};

use crate::common::*;

/// Every path a row can take: greedy, categorical, a pipeline's `process`
/// and `sample`. All must report the same error.
fn all_paths_fail_with(row: &[f32], check: impl Fn(Result<(), Error>)) {
    check(greedy(row).map(drop));
    check(draw_u(row, 0.5).map(drop));
    let mut p = Pipeline::new().with(TopK::new(1).unwrap());
    check(p.process(&Context::empty(), &mut row.to_vec()));
    let mut buf = row.to_vec();
    check(
        p.sample(&Context::empty(), &mut buf, &mut Categorical::new(), &mut rng_from_seed(0))
            .map(drop),
    );
}

#[test]
fn f01_nan_at_index_0_is_an_error() {
    all_paths_fail_with(&[f32::NAN, 1.0, 2.0], |r| assert_invalid_logit(r, 0, f32::NAN));
}

#[test]
fn f01_nan_at_index_1_is_an_error_not_token_1() {
    // `max_by(total_cmp)` would return index 1.
    all_paths_fail_with(&[1.0, f32::NAN, 2.0], |r| assert_invalid_logit(r, 1, f32::NAN));
}

#[test]
fn f01_nan_at_the_last_index_is_an_error() {
    all_paths_fail_with(&[1.0, 2.0, f32::NAN], |r| assert_invalid_logit(r, 2, f32::NAN));
}

#[test]
fn f02_positive_infinity_is_an_error_naming_its_index() {
    all_paths_fail_with(&[1.0, f32::INFINITY, 2.0], |r| assert_invalid_logit(r, 1, f32::INFINITY));
}

#[test]
fn f02_nan_payloads_and_negative_nan_are_errors() {
    for bits in [0x7FC0_0001u32, 0xFFC0_0000, 0x7F80_0001, 0xFFFF_FFFF] {
        let nan = f32::from_bits(bits);
        assert!(nan.is_nan());
        all_paths_fail_with(&[0.0, 0.0, 0.0, nan], |r| assert_invalid_logit(r, 3, nan));
    }
}

#[test]
fn f02_the_first_of_several_bad_entries_is_named() {
    all_paths_fail_with(&[0.0, f32::INFINITY, f32::NAN], |r| {
        assert_invalid_logit(r, 1, f32::INFINITY)
    });
}

#[test]
fn f02_a_nan_deep_in_a_long_row_is_named_at_its_index() {
    // Past the vectorized chunks (16 lanes) and a categorical block (1024).
    for (len, at) in [(40, 33), (1500, 1024), (50257, 50256)] {
        let mut row = vec![0.5f32; len];
        row[at] = f32::NAN;
        all_paths_fail_with(&row, |r| assert_invalid_logit(r, at, f32::NAN));
    }
}

#[test]
fn f01_nan_is_reported_before_top_k_could_drop_it() {
    // The NaN ranks last; a top-k run first would hide it.
    let mut p = Pipeline::new()
        .with(TopK::new(1).unwrap())
        .with(TopP::new(0.5).unwrap())
        .with(MinP::new(0.2).unwrap())
        .with(Typical::new(0.9).unwrap())
        .with(Temperature::new(0.7).unwrap());
    let mut row = vec![0.0, 0.0, f32::NAN];
    let r = p.sample(&Context::empty(), &mut row, &mut Categorical::new(), &mut rng_from_seed(1));
    assert_invalid_logit(r, 2, f32::NAN);
}

#[test]
fn f07_empty_row_is_an_error() {
    all_paths_fail_with(&[], |r| assert_eq!(r, Err(Error::EmptyRow)));
}

#[test]
fn f07_all_negative_infinity_is_all_masked_never_token_0() {
    assert_eq!(greedy(&[NEG, NEG, NEG]), Err(Error::AllMasked));
    for u in [0.0, 0.5, U_MAX] {
        assert_eq!(draw_u(&[NEG, NEG, NEG], u), Err(Error::AllMasked));
    }
}

#[test]
fn f07_suppression_of_every_token_is_all_masked() {
    let mut p = Pipeline::new().with(SuppressTokens::new([0, 1, 2]));
    let mut row = vec![1.0, 2.0, 3.0];
    let r = p.sample(&Context::empty(), &mut row, &mut Greedy::new(), &mut rng_from_seed(0));
    assert_eq!(r, Err(Error::AllMasked));
}

#[test]
fn f07_contradictory_bans_are_all_masked_not_a_token_outside_the_allowed_set() {
    // Two tokens suppressed, the third banned as a bad word (vllm#57986).
    let mut p = Pipeline::new()
        .with(SuppressTokens::new([0, 1]))
        .with(BadWords::new([vec![2]], &[]).unwrap());
    for sampler in [&mut Greedy::new() as &mut dyn decoding::Sampler, &mut Categorical::new()] {
        let mut row = vec![5.0, 4.0, 3.0];
        let r = p.sample(&Context::empty(), &mut row, sampler, &mut rng_from_seed(3));
        assert_eq!(r, Err(Error::AllMasked));
    }
}

#[test]
fn f03_greedy_ties_go_to_the_lowest_id() {
    for _ in 0..1000 {
        assert_eq!(greedy(&[3.0, 3.0, 1.0]).unwrap().token, 0);
    }
    // -0.0 and 0.0 are equal scores: a tie, not an order.
    assert_eq!(greedy(&[-0.0, 0.0]).unwrap().token, 0);
    assert_eq!(greedy(&[0.0, -0.0]).unwrap().token, 0);
}

#[test]
fn f06_the_only_finite_token_is_always_chosen() {
    let row = [NEG, 5.0, NEG];
    assert_eq!(greedy(&row).unwrap().token, 1);
    let mut buf = row.to_vec();
    for seed in 0..1000 {
        let s = Pipeline::new()
            .sample(&Context::empty(), &mut buf, &mut Categorical::new(), &mut rng_from_seed(seed))
            .unwrap();
        assert_eq!(s.token, 1);
        assert_eq!(s.logprob, 0.0);
    }
}

#[test]
fn f09_large_logits_give_the_exact_softmax() {
    // softmax([1000, 999, 998]) = softmax([2, 1, 0]).
    let z = 1.0 + (-1f64).exp() + (-2f64).exp();
    let want = [1.0 / z, (-1f64).exp() / z, (-2f64).exp() / z];
    assert!((want[0] - 0.66524).abs() < 1e-5 && (want[2] - 0.09003).abs() < 1e-5);
    // u at the start of each token's interval of the inverse CDF.
    let starts = [0.0, want[0], want[0] + want[1]];
    for (i, &u) in starts.iter().enumerate() {
        let s = draw_u(&[1000.0, 999.0, 998.0], u + 1e-4).unwrap();
        assert_eq!(s.token as usize, i);
        assert!((f64::from(s.logprob) - want[i].ln()).abs() < 1e-6, "{s:?}");
    }
}

#[test]
fn f09_very_negative_logits_give_the_exact_softmax() {
    let p0 = 1.0 / (1.0 + (-1f64).exp());
    assert!((p0 - 0.73106).abs() < 1e-5);
    let a = draw_u(&[-1000.0, -1001.0], 0.0).unwrap();
    let b = draw_u(&[-1000.0, -1001.0], U_MAX).unwrap();
    assert_eq!((a.token, b.token), (0, 1));
    assert!((f64::from(a.logprob) - p0.ln()).abs() < 1e-6);
    assert!((f64::from(b.logprob) - (1.0 - p0).ln()).abs() < 1e-6);
}

#[test]
fn f09_logits_at_plus_minus_1e30_do_not_overflow() {
    let row = [1e30, -1e30, 0.0];
    assert_eq!(greedy(&row).unwrap().token, 0);
    for u in [0.0, 0.5, U_MAX] {
        let s = draw_u(&row, u).unwrap();
        assert_eq!((s.token, s.logprob), (0, 0.0));
    }
}

#[test]
fn f09_logits_at_f32_max_and_min_are_valid() {
    // MIN - MAX overflows to -inf: weight 0, never drawn, never NaN.
    let row = [f32::MIN, f32::MAX, 0.0];
    assert_eq!(greedy(&row).unwrap().token, 1);
    for u in [0.0, U_MAX] {
        let s = draw_u(&row, u).unwrap();
        assert_eq!((s.token, s.logprob), (1, 0.0));
    }
}

#[test]
fn f09_subnormal_and_signed_zero_logits_are_ordinary_values() {
    let row = [-0.0, 0.0, 1e-45];
    assert_eq!(greedy(&row).unwrap().token, 2);
    // Three practically equal weights: each third of [0, 1) gives its token.
    for (u, t) in [(0.1, 0), (0.5, 1), (0.9, 2)] {
        assert_eq!(draw_u(&row, u).unwrap().token, t);
    }
}

#[test]
fn f04_penalties_never_turn_a_finite_logit_into_infinity() {
    // 3e38 / 1e-30 overflows f32; the penalty saturates instead.
    let ctx = Context::prompt_only(&[0, 1]);
    let mut row = vec![3e38, -3e38, 1.0];
    Pipeline::new().with(RepetitionPenalty::new(1e-30).unwrap()).process(&ctx, &mut row).unwrap();
    assert_eq!(row, [f32::MAX, -3e38f32 * 1e-30f32, 1.0]);
    // 3e38 * 1e30 overflows the other way.
    let mut row = vec![3e38, -3e38, 1.0];
    Pipeline::new().with(RepetitionPenalty::new(1e30).unwrap()).process(&ctx, &mut row).unwrap();
    assert_eq!(row, [3e38f32 / 1e30f32, -f32::MAX, 1.0]);
}
