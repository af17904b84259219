//! Property tests of the samplers from llama.cpp: top-nσ, XTC, dynamic
//! temperature, Mirostat 2.0 and DRY.
//!
//! Universal rules on arbitrary rows (ties, huge magnitudes, `-inf` masks):
//! no panic, no NaN or `+inf`, a masked token stays masked, at least one
//! finite token survives when one was finite. On top, naive oracles written
//! from the documented definitions (top-nσ, DRY), the update rule of
//! Mirostat's `μ`, and the restoration of every state by `reset`. The
//! constrained-decoding hook ([`AllowedTokens`], [`TokenBitmask`]) is checked
//! against a plain set.

use decoding::processors::{
    AllowedTokens, Dry, DynamicTemperature, MirostatV2, TokenBitmask, TopK, TopNSigma, Xtc,
};
use decoding::{Context, Error, LogitsProcessor, LogitsProcessorExt, Scores, TokenId};
use proptest::prelude::*;

use crate::common::apply;

const NEG: f32 = f32::NEG_INFINITY;

fn score() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -50.0f32..50.0,
        2 => Just(NEG),
        2 => prop::sample::select(vec![0.0f32, 1.0, -1.0, 2.5, 0.5]),
        1 => prop::sample::select(vec![1e30f32, -1e30, 3e38, -3e38, f32::MAX, f32::MIN, 1e-30, -0.0]),
    ]
}

fn row() -> impl Strategy<Value = Vec<f32>> {
    prop_oneof![
        8 => prop::collection::vec(score(), 1..64),
        2 => prop::collection::vec(-4.0f32..4.0, 100..600),
        1 => (1usize..20).prop_map(|n| vec![NEG; n]),
    ]
}

/// The universal rules, for a processed row `out` of `row`.
fn check_universal(row: &[f32], out: &[f32]) -> Result<(), TestCaseError> {
    for (i, (&a, &b)) in row.iter().zip(out).enumerate() {
        prop_assert!(!b.is_nan() && b != f32::INFINITY, "index {}: {} -> {}", i, a, b);
        if a == NEG {
            prop_assert_eq!(b, NEG, "index {} revived", i);
        }
    }
    if row.iter().any(|&x| x > NEG) {
        prop_assert!(out.iter().any(|&x| x > NEG), "every finite token was removed");
    }
    Ok(())
}

fn finite_ids(row: &[f32]) -> Vec<TokenId> {
    (0..row.len() as TokenId).filter(|&i| row[i as usize] > NEG).collect()
}

/// Top-nσ from its definition: population σ of the finite scores, in f64.
fn top_n_sigma_oracle(row: &[f32], n: f32) -> Vec<TokenId> {
    let xs: Vec<f64> = row.iter().filter(|&&x| x > NEG).map(|&x| f64::from(x)).collect();
    if xs.len() <= 1 {
        return finite_ids(row);
    }
    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / xs.len() as f64;
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let threshold = max - f64::from(n) * var.sqrt();
    finite_ids(row).into_iter().filter(|&i| f64::from(row[i as usize]) >= threshold).collect()
}

/// DRY from its definition: for every earlier position, the longest common
/// suffix with the whole window by direct comparison (quadratic), capped at
/// the run after the last breaker; breakers themselves are never hit.
fn dry_oracle(
    history: &[TokenId],
    last_n: usize,
    breakers: &[TokenId],
    allowed: usize,
) -> Vec<(TokenId, usize)> {
    let w = &history[history.len() - last_n.min(history.len())..];
    let limit = w.iter().rev().take_while(|t| !breakers.contains(t)).count();
    let mut best: Vec<(TokenId, usize)> = Vec::new();
    for j in 0..w.len().saturating_sub(1) {
        let mut len = 0;
        while len <= j && len < limit && w[j - len] == w[w.len() - 1 - len] {
            len += 1;
        }
        if len >= allowed && !breakers.contains(&w[j + 1]) {
            let t = w[j + 1];
            match best.iter_mut().find(|(id, _)| *id == t) {
                Some(entry) => entry.1 = entry.1.max(len),
                None => best.push((t, len)),
            }
        }
    }
    best
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn top_n_sigma_matches_its_definition(row in row(), n in prop_oneof![Just(0.0f32), 0.0f32..4.0]) {
        let out = apply(&mut TopNSigma::new(n).unwrap(), &Context::empty(), &row);
        check_universal(&row, &out)?;
        prop_assert_eq!(finite_ids(&out), top_n_sigma_oracle(&row, n));
        for i in finite_ids(&out) {
            prop_assert_eq!(out[i as usize].to_bits(), row[i as usize].to_bits());
        }
    }

    #[test]
    fn xtc_keeps_the_rules_and_replays_after_reset(
        rows in prop::collection::vec(row(), 1..6),
        probability in prop_oneof![Just(1.0f32), 0.0f32..1.0],
        threshold in prop_oneof![0.0f32..0.6, Just(0.1f32)],
        min_keep in 1usize..4,
        seed in any::<u64>(),
    ) {
        let mut p = Xtc::new(probability, threshold, seed).unwrap().min_keep(min_keep).unwrap();
        let first: Vec<Vec<f32>> = rows.iter().map(|r| apply(&mut p, &Context::empty(), r)).collect();
        for (row, out) in rows.iter().zip(&first) {
            check_universal(row, out)?;
            let before = finite_ids(row).len();
            let after = finite_ids(out).len();
            // Either nothing is removed, or at least min_keep remain.
            prop_assert!(after == before || after >= min_keep);
            for i in finite_ids(out) {
                prop_assert_eq!(out[i as usize].to_bits(), row[i as usize].to_bits());
            }
            // Removed tokens all score at least as high as every survivor
            // (the kept member of the class is its least probable).
            if after < before {
                let removed_min = finite_ids(row)
                    .into_iter()
                    .filter(|&i| out[i as usize] == NEG)
                    .map(|i| row[i as usize])
                    .fold(f32::INFINITY, f32::min);
                let above = finite_ids(out).into_iter().filter(|&i| out[i as usize] > removed_min).count();
                prop_assert_eq!(above, 0, "survivors outrank a removed token");
            }
        }
        p.reset();
        let again: Vec<Vec<f32>> = rows.iter().map(|r| apply(&mut p, &Context::empty(), r)).collect();
        prop_assert_eq!(
            first.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>(),
            again.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn dynamic_temperature_keeps_order_and_masks(
        row in row(),
        temp in 0.0f32..3.0,
        range in prop_oneof![Just(0.0f32), 0.0f32..3.0],
        exponent in prop_oneof![Just(0.0f32), Just(1.0f32), 0.0f32..4.0],
    ) {
        let p = DynamicTemperature::new(temp, range, exponent).unwrap();
        let mut copy = row.clone();
        let mut live = Vec::new();
        let t = p.temperature_for(&Scores::new(&mut copy, &mut live));
        if let Some(t) = t {
            prop_assert!(t >= (temp - range).max(0.0) * (1.0 - 1e-6) && t <= (temp + range) * (1.0 + 1e-6));
        }
        let out = apply(&mut p.clone(), &Context::empty(), &row);
        check_universal(&row, &out)?;
        // Order preserved among survivors (division by T > 0, or greedy).
        let ids = finite_ids(&out);
        for &a in &ids {
            for &b in &ids {
                if row[a as usize] < row[b as usize] {
                    prop_assert!(out[a as usize] <= out[b as usize]);
                }
            }
        }
    }

    #[test]
    fn mirostat_mu_follows_the_update_rule(
        rows in prop::collection::vec(row(), 1..8),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 8),
        tau in 0.0f32..8.0,
        eta in 0.0f32..1.0,
    ) {
        let mut p = MirostatV2::new(tau, eta).unwrap();
        prop_assert_eq!(p.mu(), 2.0 * tau);
        for (row, pick) in rows.iter().zip(&picks) {
            let mu = p.mu();
            let out = apply(&mut p, &Context::empty(), row);
            check_universal(row, &out)?;
            let kept = finite_ids(&out);
            if kept.is_empty() {
                p.accept(0);
                prop_assert_eq!(p.mu(), mu);
                continue;
            }
            // Every kept token has surprise <= μ, unless only the top is kept.
            let m = row.iter().copied().fold(NEG, f32::max);
            let z: f64 = row.iter().map(|&x| f64::from((x - m).exp())).sum();
            if kept.len() > 1 {
                for &i in &kept {
                    let s = -(f64::from((row[i as usize] - m).exp()) / z).log2();
                    prop_assert!(s <= f64::from(mu) + 1e-4, "kept surprise {} > mu {}", s, mu);
                }
            } else {
                prop_assert_eq!(row[kept[0] as usize], m);
            }
            // Accept one kept token; q is its share of the kept mass.
            let chosen = kept[pick.index(kept.len())];
            let wk: f64 = kept.iter().map(|&i| f64::from((row[i as usize] - m).exp())).sum();
            let q = f64::from((row[chosen as usize] - m).exp()) / wk;
            let expected = f64::from(mu) - f64::from(eta) * (-q.log2() - f64::from(tau));
            p.accept(chosen);
            prop_assert!(
                (f64::from(p.mu()) - expected).abs() <= 1e-4 * (1.0 + expected.abs()),
                "mu {} expected {}", p.mu(), expected
            );
        }
        p.reset();
        prop_assert_eq!(p.mu(), 2.0 * tau);
    }

    #[test]
    fn dry_matches_its_definition(
        history in prop::collection::vec(0u32..4, 0..60),
        last_n in prop_oneof![Just(usize::MAX), 1usize..40],
        breakers in prop::collection::vec(0u32..6, 0..2),
        allowed in 1usize..4,
        multiplier in 0.0f32..2.0,
        base in 1.0f32..3.0,
        row in prop::collection::vec(prop_oneof![4 => -5.0f32..5.0, 1 => Just(NEG)], 6),
    ) {
        let mut p = Dry::new(multiplier, base, allowed).unwrap().sequence_breakers(breakers.clone());
        if last_n != usize::MAX {
            p = p.penalty_last_n(last_n).unwrap();
        }
        let ctx = Context::prompt_only(&history);
        let out = apply(&mut p, &ctx, &row);
        check_universal(&row, &out)?;
        let hits = if multiplier == 0.0 { Vec::new() } else { dry_oracle(&history, last_n, &breakers, allowed) };
        for (i, (&a, &b)) in row.iter().zip(&out).enumerate() {
            match hits.iter().find(|h| h.0 as usize == i) {
                Some(&(_, len)) if a > NEG => {
                    let pen = f64::from(multiplier) * f64::from(base).powi((len - allowed) as i32);
                    let expected = (f64::from(a) - pen) as f32;
                    prop_assert!((b - expected).abs() <= 1e-5 * (1.0 + expected.abs()), "token {}: {} vs {}", i, b, expected);
                }
                _ => prop_assert_eq!(a.to_bits(), b.to_bits(), "token {} changed", i),
            }
        }
    }

    #[test]
    fn dry_never_fails_on_in_range_histories(
        history in prop::collection::vec(0u32..6, 0..200),
        row in row(),
    ) {
        prop_assume!(row.len() >= 6);
        let mut p = Dry::new(0.8, 1.75, 2).unwrap().sequence_breakers([5]);
        let out = apply(&mut p, &Context::prompt_only(&history), &row);
        check_universal(&row, &out)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn bitmask_behaves_as_a_set(v in 0usize..300, ops in prop::collection::vec((any::<bool>(), 0u32..320), 0..80)) {
        let mut mask = TokenBitmask::new(v);
        let mut model = std::collections::BTreeSet::new();
        for (add, id) in ops {
            if add {
                let r = mask.insert(id);
                prop_assert_eq!(r.is_ok(), (id as usize) < v);
                if r.is_ok() { model.insert(id); }
            } else {
                mask.remove(id);
                model.remove(&id);
            }
        }
        prop_assert_eq!(mask.iter().collect::<Vec<_>>(), model.iter().copied().collect::<Vec<_>>());
        prop_assert_eq!(mask.count(), model.len());
        prop_assert_eq!(mask.is_empty(), model.is_empty());
        for id in 0..320 {
            prop_assert_eq!(mask.contains(id), model.contains(&id));
        }
    }

    #[test]
    fn allowed_tokens_keeps_the_allowed_live_tokens(
        row in row(),
        allowed in prop::collection::vec(0u32..700, 0..30),
        k in prop_oneof![Just(None), (1usize..20).prop_map(Some)],
    ) {
        let v = row.len();
        let allowed: Vec<TokenId> = allowed.into_iter().filter(|&id| (id as usize) < v).collect();
        let list = allowed.clone();
        let hook = AllowedTokens::new(move |_: &Context<'_>, mask: &mut TokenBitmask| {
            list.iter().try_for_each(|&id| mask.insert(id))
        });
        let mut out = row.clone();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut out, &mut live);
        let result = match k {
            Some(k) => TopK::new(k).unwrap().exact().then(hook).process(&Context::empty(), &mut scores),
            None => { let mut hook = hook; hook.process(&Context::empty(), &mut scores) }
        };
        scores.densify();
        // The tokens live before the hook: all, or the exact top-k.
        let before = match k {
            Some(k) => apply(&mut TopK::new(k).unwrap().exact(), &Context::empty(), &row),
            None => row.clone(),
        };
        let expected: Vec<TokenId> = finite_ids(&before).into_iter().filter(|id| allowed.contains(id)).collect();
        if allowed.is_empty() {
            prop_assert_eq!(result, Err(Error::NoAllowedToken));
        } else if expected.is_empty() {
            prop_assert_eq!(result, Err(Error::AllMasked));
        } else {
            prop_assert!(result.is_ok());
            check_universal(&row, &out)?;
            prop_assert_eq!(finite_ids(&out), expected);
            for i in finite_ids(&out) {
                prop_assert_eq!(out[i as usize].to_bits(), row[i as usize].to_bits());
            }
        }
    }
}
