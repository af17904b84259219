//! Property tests of temperature, top-k, the samplers and arbitrary inputs.

use decoding::processors::{Temperature, TopK};
use decoding::sampler::{Categorical, Greedy};
use decoding::{Context, Error, LogitsProcessor, Pipeline, Sampler, Scores, rng_from_seed};
use proptest::prelude::*;

use crate::common::apply;

const NEG: f32 = f32::NEG_INFINITY;

/// Rows of finite values and -inf, with frequent ties.
fn row() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(
        prop_oneof![
            6 => -50.0f32..50.0,
            2 => (-4i32..4).prop_map(|x| x as f32),
            1 => Just(NEG),
            1 => prop_oneof![Just(1e30f32), Just(-1e30f32), Just(f32::MAX), Just(f32::MIN)],
        ],
        1..300,
    )
}

fn finite_count(row: &[f32]) -> usize {
    row.iter().filter(|x| **x > NEG).count()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn temperature_preserves_order_and_masks(row in row(), t in prop_oneof![1e-30f32..1e-3, 1e-3f32..100.0]) {
        let out = apply(&mut Temperature::new(t).unwrap(), &Context::empty(), &row);
        for (i, (&a, &b)) in row.iter().zip(&out).enumerate() {
            prop_assert!(!b.is_nan() && b != f32::INFINITY, "index {i}: {a} -> {b}");
            if a == NEG { prop_assert_eq!(b, NEG); }
        }
        // The maximum survives as a finite score (others may underflow to -inf
        // only where their probability is already 0 in f32).
        prop_assert_eq!(finite_count(&row) > 0, finite_count(&out) > 0);
        for i in 0..row.len() {
            for j in 0..row.len() {
                if row[i] > NEG && row[j] > NEG && row[i] < row[j] {
                    prop_assert!(out[i] <= out[j], "order broken at {i},{j}");
                }
            }
        }
    }

    #[test]
    fn top_k_keeps_exactly_the_scores_at_or_above_the_kth(row in row(), k in 1usize..40, min_keep in 1usize..5) {
        let mut p = TopK::new(k).unwrap().min_tokens_to_keep(min_keep).unwrap();
        let out = apply(&mut p, &Context::empty(), &row);
        let k_eff = k.max(min_keep).min(row.len());
        let mut sorted = row.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let kth = sorted[k_eff - 1];
        for (i, (&a, &b)) in row.iter().zip(&out).enumerate() {
            let expected = if a >= kth { a } else { NEG };
            prop_assert_eq!(b.to_bits(), expected.to_bits(), "index {}", i);
        }
        prop_assert!(finite_count(&out) >= k_eff.min(finite_count(&row)));
    }

    #[test]
    fn top_k_on_a_truncated_set_equals_the_dense_path(row in row(), k in 1usize..20, cut in 0.0f32..1.0) {
        // Truncate to the tokens above a quantile, then top-k, versus top-k on the densified row.
        let mut a = row.clone();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut a, &mut live);
        let threshold = -50.0 + cut * 100.0;
        scores.retain(|_, x| x >= threshold);
        TopK::new(k).unwrap().process(&Context::empty(), &mut scores).unwrap();
        scores.densify();
        let mut b: Vec<f32> = row.iter().map(|&x| if x >= threshold { x } else { NEG }).collect();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut b, &mut live);
        TopK::new(k).unwrap().process(&Context::empty(), &mut scores).unwrap();
        scores.densify();
        prop_assert_eq!(a, b);
    }

    #[test]
    fn samplers_never_return_a_masked_token(row in row(), seed in any::<u64>()) {
        let mut rng = rng_from_seed(seed);
        for sampler in [&mut Greedy::new() as &mut dyn Sampler, &mut Categorical::new()] {
            let mut buf = row.clone();
            let mut live = Vec::new();
            match sampler.sample(&Scores::new(&mut buf, &mut live), &mut rng) {
                Ok(s) => {
                    prop_assert!(row[s.token as usize] > NEG);
                    prop_assert!(s.logprob <= 0.0 && !s.logprob.is_nan());
                }
                Err(e) => {
                    prop_assert_eq!(finite_count(&row), 0);
                    prop_assert_eq!(e, Error::AllMasked);
                }
            }
        }
    }

    #[test]
    fn arbitrary_bit_patterns_never_panic(bits in prop::collection::vec(any::<u32>(), 0..200), seed in any::<u64>(), t in 0.0f32..3.0, k in 1usize..50) {
        let row: Vec<f32> = bits.iter().map(|&b| f32::from_bits(b)).collect();
        let mut p = Pipeline::new().with(Temperature::new(t).unwrap()).with(TopK::new(k).unwrap());
        let mut buf = row.clone();
        let result = p.sample(&Context::empty(), &mut buf, &mut Categorical::new(), &mut rng_from_seed(seed));
        let first_bad = row.iter().position(|x| x.is_nan() || *x == f32::INFINITY);
        match (result, first_bad) {
            (Ok(s), None) => prop_assert!(row[s.token as usize] > NEG),
            (Err(Error::InvalidLogit { index, .. }), Some(i)) => prop_assert_eq!(index, i),
            (Err(Error::EmptyRow), _) => prop_assert!(row.is_empty()),
            (Err(Error::AllMasked), None) => prop_assert_eq!(finite_count(&row), 0),
            (other, bad) => prop_assert!(false, "unexpected {other:?} (first bad index {bad:?})"),
        }
        let mut buf = row.clone();
        let _ = p.process(&Context::empty(), &mut buf);
    }
}
