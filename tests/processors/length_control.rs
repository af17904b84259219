//! Property tests of the length-control processors: the exponential EOS
//! growth against its formula in f64, forced BOS/EOS tokens, on dense rows
//! and on live sets left by a truncation.

use decoding::processors::{ExponentialDecayLengthPenalty, ForcedBosToken, ForcedEosToken, TopK};
use decoding::{Context, LogitsProcessor, Scores, TokenId};
use proptest::prelude::*;

const NEG: f32 = f32::NEG_INFINITY;

fn score() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -30.0f32..30.0,
        1 => Just(NEG),
        1 => Just(0.0f32),
        1 => prop::sample::select(vec![3e38f32, -3e38, 1e30, -1e30, 1e-30, -0.0]),
    ]
}

fn row() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(score(), 1..300)
}

/// Runs `stages` on one `Scores` and returns the dense result.
fn run(stages: &mut [&mut dyn LogitsProcessor], ctx: &Context<'_>, row: &[f32]) -> Vec<f32> {
    let mut out = row.to_vec();
    let mut live = Vec::new();
    let mut scores = Scores::new(&mut out, &mut live);
    for s in stages.iter_mut() {
        s.process(ctx, &mut scores).expect("processing failed");
    }
    scores.densify();
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn exponential_decay_follows_its_formula(
        row in row(),
        start in 0usize..8,
        factor in prop_oneof![0.0f64..4.0, Just(1.0), 1.0f64..1e6],
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..4),
        prompt in 0usize..6,
        generated in 0usize..40,
    ) {
        let v = row.len();
        let eos: Vec<TokenId> = picks.iter().map(|i| i.index(v) as TokenId).collect();
        let tokens: Vec<TokenId> = vec![0; prompt + generated];
        let ctx = Context::new(&tokens, prompt).unwrap();
        let mut p = ExponentialDecayLengthPenalty::new(start, factor, eos.iter().copied()).unwrap();
        let out = run(&mut [&mut p], &ctx, &row);
        let s = start + prompt;
        for (i, (&x, &y)) in row.iter().zip(&out).enumerate() {
            prop_assert!(!y.is_nan() && y != f32::INFINITY, "token {} became {}", i, y);
            if !eos.contains(&(i as TokenId)) || tokens.len() <= s || x == NEG {
                prop_assert_eq!(y.to_bits(), x.to_bits(), "token {} changed", i);
                continue;
            }
            // The formula in f64, saturated at the f32 range.
            let growth = factor.powf((tokens.len() - s) as f64) - 1.0;
            let want = (f64::from(x) + f64::from(x.abs()) * growth)
                .clamp(f64::from(f32::MIN), f64::from(f32::MAX));
            let want = if x == 0.0 { 0.0 } else { want };
            let tol = 4e-7 * want.abs().max(f64::from(x.abs()) * growth.abs());
            prop_assert!((f64::from(y) - want).abs() <= tol, "eos {}: {} -> {}, want {}", i, x, y, want);
            if factor >= 1.0 {
                prop_assert!(y >= x);
            } else {
                prop_assert!(y <= x);
            }
        }
        // On the live set a top-k leaves: the same as on its dense output.
        let mut k = TopK::new(v.div_ceil(2)).unwrap();
        let via_live = run(&mut [&mut k, &mut p], &ctx, &row);
        let mut k = TopK::new(v.div_ceil(2)).unwrap();
        let dense = run(&mut [&mut k], &ctx, &row);
        let via_dense = run(&mut [&mut p], &ctx, &dense);
        prop_assert_eq!(
            via_live.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            via_dense.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn forced_tokens_are_the_only_live_tokens_exactly_when_due(
        row in row(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..4),
        len in 0usize..8,
        max_length in 0usize..8,
        truncate_first in any::<bool>(),
    ) {
        let v = row.len();
        let ids: Vec<TokenId> = picks.iter().map(|i| i.index(v) as TokenId).collect();
        let tokens: Vec<TokenId> = vec![0; len];
        let ctx = Context::new(&tokens, len.min(1)).unwrap();
        let mut bos = ForcedBosToken::new(ids[0]);
        let mut eos = ForcedEosToken::new(max_length, ids.iter().copied()).unwrap();
        let mut k = TopK::new(1).unwrap();
        for (p, due, forced) in [
            (&mut bos as &mut dyn LogitsProcessor, len == 1, &ids[..1]),
            (&mut eos as &mut dyn LogitsProcessor, len + 1 == max_length, &ids[..]),
        ] {
            let out = if truncate_first {
                run(&mut [&mut k, p], &ctx, &row)
            } else {
                run(&mut [p], &ctx, &row)
            };
            let before = if truncate_first { run(&mut [&mut k], &ctx, &row) } else { row.clone() };
            for (i, (&x, &y)) in before.iter().zip(&out).enumerate() {
                if !due {
                    prop_assert_eq!(y.to_bits(), x.to_bits());
                } else if forced.contains(&(i as TokenId)) {
                    prop_assert_eq!(y, 0.0, "forced token {} is not 0", i);
                } else {
                    prop_assert_eq!(y, NEG, "token {} survived a forced step", i);
                }
            }
        }
    }
}
