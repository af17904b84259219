//! The edges of the categorical draw (F38–F42): `u = 0`, `u = 1 - 2^-53`,
//! `u = 1`, one-hot rows, huge vocabularies, masked blocks, and the one
//! uniform consumed per draw. The uniform is injected either directly
//! (`Categorical::sample_with_uniform`) or through `Sampler::sample` with a
//! random source returning fixed words (`0` is `u = 0`, `u64::MAX` is
//! `u = 1 - 2^-53`).

use decoding::processors::{Temperature, TopK};
use decoding::sampler::{Categorical, Greedy};
use decoding::{Context, Error, LogitsProcessor, Pipeline, Sampler, Scores, unit_f64};

use crate::common::*;

#[test]
fn f38_u_zero_never_returns_a_masked_token() {
    // Megatron-Energon#260.
    assert_eq!(draw_u(&[NEG, 0.0, 0.0], 0.0).unwrap().token, 1);
    assert_eq!(draw_words(&[NEG, 0.0, 0.0], &[0]).unwrap().token, 1);
    assert_eq!(draw_words(&[NEG, NEG, NEG, 2.0], &[0]).unwrap().token, 3);
}

#[test]
fn f39_the_largest_uniform_never_returns_a_masked_token_nor_overruns() {
    // forcedotcom/distributions#89.
    assert_eq!(unit_f64(&mut Words::new(&[u64::MAX])), U_MAX);
    assert_eq!(draw_u(&[0.0, 0.0, NEG], U_MAX).unwrap().token, 1);
    assert_eq!(draw_words(&[0.0, 0.0, NEG], &[u64::MAX]).unwrap().token, 1);
    assert_eq!(draw_words(&[3.0, NEG, NEG, NEG], &[u64::MAX]).unwrap().token, 0);
}

#[test]
fn f39_u_one_and_values_outside_zero_one_are_errors() {
    for u in [1.0, 1.5, -0.1, -0.0 - 1e-300, f64::NAN, f64::INFINITY] {
        match draw_u(&[0.0, 0.0], u) {
            Err(Error::InvalidParameter { name: "u", .. }) => {}
            other => panic!("u = {u}: {other:?}"),
        }
    }
    // -0.0 is 0.
    assert_eq!(draw_u(&[0.0, 0.0], -0.0).unwrap().token, 0);
}

#[test]
fn f40_a_one_hot_row_always_gives_the_hot_token() {
    for u in [0.0, 0.5, U_MAX] {
        let s = draw_u(&[NEG, 0.0, NEG], u).unwrap();
        assert_eq!((s.token, s.logprob), (1, 0.0));
    }
    for w in [0, 1 << 11, u64::MAX / 2, u64::MAX] {
        assert_eq!(draw_words(&[NEG, 0.0, NEG], &[w]).unwrap().token, 1);
    }
}

#[test]
fn f41_the_last_tokens_of_a_50257_token_row_are_reachable() {
    let flat = vec![0.0f32; 50257];
    let t = draw_u(&flat, U_MAX).unwrap().token;
    assert!((50255..=50256).contains(&t), "{t}");
    let t = draw_words(&flat, &[u64::MAX]).unwrap().token;
    assert!((50255..=50256).contains(&t), "{t}");
    // u just below the last token's interval [1 - 1/V, 1).
    let t = draw_u(&flat, 1.0 - 1.5 / 50257.0).unwrap().token;
    assert_eq!(t, 50255);
}

#[test]
fn f41_masked_blocks_before_and_after_the_mass() {
    // The only mass sits on both sides of a 1024-entry block boundary.
    let mut row = vec![NEG; 3000];
    row[1023] = 0.0;
    row[1024] = 0.0;
    assert_eq!(draw_words(&row, &[0]).unwrap().token, 1023);
    assert_eq!(draw_words(&row, &[u64::MAX]).unwrap().token, 1024);
    assert_eq!(draw_u(&row, 0.4999).unwrap().token, 1023);
    assert_eq!(draw_u(&row, 0.5001).unwrap().token, 1024);
}

#[test]
fn f42_the_draw_is_monotone_in_u() {
    let row: Vec<f32> = (0..3000).map(|i| ((i * 7919) % 13) as f32 * 0.3 - 2.0).collect();
    let mut us: Vec<f64> = (0..400).map(|k| ((k * 7907) % 400) as f64 / 400.0).collect();
    us.push(U_MAX);
    us.sort_by(f64::total_cmp);
    let tokens: Vec<u32> = us.iter().map(|&u| draw_u(&row, u).unwrap().token).collect();
    assert!(tokens.windows(2).all(|w| w[0] <= w[1]), "not monotone");
}

#[test]
fn f42_every_token_of_positive_probability_is_reachable() {
    // For each token, the midpoint of its interval of the inverse CDF
    // (computed here in f64) draws it.
    let row: Vec<f32> =
        (0..300).map(|i| if i % 7 == 3 { NEG } else { (i % 11) as f32 * 0.4 }).collect();
    let p = softmax(&row);
    let mut cum = 0.0;
    for (i, &pi) in p.iter().enumerate() {
        if pi > 0.0 {
            let t = draw_u(&row, cum + pi / 2.0).unwrap().token as usize;
            assert_eq!(t, i);
        }
        cum += pi;
    }
}

#[test]
fn f42_a_token_whose_weight_underflows_is_never_drawn() {
    // exp(-200) is 0 in f32: the token has probability 0.
    for u in [0.0, 0.5, U_MAX] {
        assert_eq!(draw_u(&[0.0, -200.0], u).unwrap().token, 0);
        assert_eq!(draw_u(&[-200.0, 0.0], u).unwrap().token, 1);
    }
}

#[test]
fn f42_exactly_one_u64_is_consumed_per_draw() {
    let row: Vec<f32> = (0..2000).map(|i| (i % 9) as f32 * 0.25).collect();
    let mut rng = Words::new(&[1, 2, 3, 4, 5, 6, 7]);
    let mut c = Categorical::new();
    let mut buf = row.clone();
    let mut live = Vec::new();
    for n in 1..=20 {
        c.sample(&Scores::new(&mut buf, &mut live), &mut rng).unwrap();
        assert_eq!((rng.u64_calls, rng.u32_calls, rng.fill_calls), (n, 0, 0));
    }
}

#[test]
fn f42_greedy_never_touches_the_random_source() {
    let mut buf = vec![0.0, 3.0, 1.0];
    let mut live = Vec::new();
    let s = Greedy::new().sample(&Scores::new(&mut buf, &mut live), &mut Void).unwrap();
    assert_eq!(s.token, 1);
}

#[test]
fn f42_draws_stay_inside_a_truncated_live_set() {
    let row: Vec<f32> = (0..500).map(|i| ((i * 37) % 101) as f32 / 10.0).collect();
    let mut buf = row.clone();
    let mut live = Vec::new();
    let mut scores = Scores::new(&mut buf, &mut live);
    TopK::new(5).unwrap().process(&Context::empty(), &mut scores).unwrap();
    Temperature::new(0.5).unwrap().process(&Context::empty(), &mut scores).unwrap();
    let kept: Vec<u32> = scores.live_ids().unwrap().to_vec();
    let mut c = Categorical::new();
    for k in 0..=1000 {
        let u = (f64::from(k) / 1000.0).min(U_MAX);
        let t = c.sample_with_uniform(&scores, u).unwrap().token;
        assert!(kept.contains(&t), "u = {u}: token {t} outside {kept:?}");
    }
}

#[test]
fn f42_a_zero_probability_token_is_never_drawn_over_a_dense_grid() {
    // Masked entries at the edges and next to every kept one.
    let mut row = vec![NEG; 64];
    for i in [1, 2, 30, 62] {
        row[i] = (i as f32 * 0.1).sin();
    }
    for k in 0..20_000 {
        let u = f64::from(k) / 20_000.0;
        let t = draw_u(&row, u).unwrap().token as usize;
        assert!(row[t] > NEG);
    }
    let mut p = Pipeline::new();
    let mut words = Words::new(&[0, u64::MAX, 1, u64::MAX - 1]);
    for _ in 0..4 {
        let mut buf = row.clone();
        let s = p.sample(&Context::empty(), &mut buf, &mut Categorical::new(), &mut words);
        assert!(row[s.unwrap().token as usize] > NEG);
    }
}
