//! Property tests of the truncating processors.
//!
//! Every processor is compared with a naive oracle written from its
//! documented definition: a full sort of the finite tokens (score
//! descending, the higher id first among equal scores), probabilities
//! `f32(exp(x - max) / z)` with the exponential in f32 and `z` summed in f64,
//! and the transformers comparison rules. The oracles never share code with
//! the crate. On top, the universal rules: no panic, no NaN or `+inf`, a
//! masked token stays masked, survivors keep their score, at least
//! `min(min_tokens_to_keep, #finite)` survive, idempotence where it holds,
//! and the same result on a truncated live set as on the dense row.

use decoding::processors::{
    Argmax, EpsilonCutoff, EtaCutoff, LogSoftmax, MinP, TopH, TopK, TopP, Typical,
};
use decoding::{Context, LogitsProcessor, LogitsProcessorExt, Scores, TokenId};
use proptest::prelude::*;

use crate::common::apply;

const NEG: f32 = f32::NEG_INFINITY;

/// Finite scores with exact ties, huge magnitudes and `-inf` masks.
fn score() -> impl Strategy<Value = f32> {
    prop_oneof![
        6 => -50.0f32..50.0,
        2 => Just(NEG),
        2 => prop::sample::select(vec![0.0f32, 1.0, -1.0, 2.5, 0.5]),
        1 => prop::sample::select(vec![1e30f32, -1e30, 3e38, -3e38, f32::MAX, f32::MIN, 1e-30, -0.0]),
        1 => -1000.0f32..1000.0,
    ]
}

/// Short rows; long rows; flat rows (wide nuclei, walks that go past the
/// first sorted round); peaked rows (a few dominant tokens over a wide
/// tail, where the most probable token is far from typical); rows of a few
/// tied levels (exact boundaries: tails like 1/2 or 3/4 meet thresholds on
/// the `k / 1000` grid); fully masked rows.
fn row() -> impl Strategy<Value = Vec<f32>> {
    let flat = prop_oneof![4 => -1.0f32..0.0, 1 => Just(0.0f32), 1 => Just(NEG)];
    let peaked = prop_oneof![1 => 6.0f32..12.0, 60 => -4.0f32..4.0, 4 => Just(NEG)];
    let level = prop::sample::select(vec![0.0f32, 0.0, 0.0, -std::f32::consts::LN_2, -3.0, NEG]);
    prop_oneof![
        8 => prop::collection::vec(score(), 1..64),
        1 => prop::collection::vec(score(), 200..700),
        2 => prop::collection::vec(flat, 1..2000),
        2 => prop::collection::vec(peaked, 100..2000),
        3 => prop::collection::vec(level, 1..24),
        1 => (1usize..40).prop_map(|n| vec![NEG; n]),
    ]
}

/// `min_tokens_to_keep`: mostly small, sometimes beyond the row.
fn keep() -> impl Strategy<Value = usize> {
    prop_oneof![6 => Just(1usize), 3 => 2usize..5, 1 => 50usize..1000]
}

/// A parameter in `[lo, hi]` thousandths on the grid `k / 1000` (as the
/// decimal a configuration holds), half the time a multiple of 1/40, which
/// meets the exact masses of the tied rows (1/2, 3/4, 0.2, ...).
fn grid(lo: u32, hi: u32) -> impl Strategy<Value = f64> {
    prop_oneof![
        (lo..=hi).prop_map(|k| f64::from(k) / 1000.0),
        (lo.div_ceil(25)..=hi / 25).prop_map(|k| f64::from(k) / 40.0),
    ]
}

// ---------------------------------------------------------------- oracles

fn finite_ids(row: &[f32]) -> Vec<TokenId> {
    (0..row.len() as TokenId).filter(|&i| row[i as usize] > NEG).collect()
}

/// Finite ids, best first: score descending, the higher id first on ties.
fn ranked(row: &[f32]) -> Vec<TokenId> {
    let mut ids = finite_ids(row);
    // IEEE comparison: -0.0 ties with 0.0.
    ids.sort_by(|&a, &b| row[b as usize].partial_cmp(&row[a as usize]).unwrap().then(b.cmp(&a)));
    ids
}

/// The softmax as documented: `m`, `z = Σ exp(x - m)` summed in id order.
struct Soft {
    m: f32,
    z: f64,
}

impl Soft {
    fn of(row: &[f32]) -> Option<Soft> {
        let m = row.iter().copied().fold(NEG, f32::max);
        if m == NEG {
            return None;
        }
        let z = row.iter().map(|&x| f64::from((x - m).exp())).sum();
        Some(Soft { m, z })
    }
    fn w(&self, x: f32) -> f64 {
        f64::from((x - self.m).exp())
    }
    fn p(&self, x: f32) -> f32 {
        (self.w(x) / self.z) as f32
    }
    /// Shannon entropy, `ln z - Σ w·d / z` in f64 (id order), clamped at 0.
    fn entropy(&self, row: &[f32]) -> f64 {
        let (mut z, mut s) = (0.0f64, 0.0f64);
        for &x in row {
            let d = x - self.m;
            if d > NEG {
                let w = f64::from(d.exp());
                z += w;
                s += w * f64::from(d);
            }
        }
        (z.ln() - s / z).max(0.0)
    }
}

fn sorted(mut ids: Vec<TokenId>) -> Vec<TokenId> {
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// transformers' top-p on the ranked tokens: tails summed from the bottom.
fn top_p_oracle(row: &[f32], p: f64, keep: usize) -> Option<Vec<TokenId>> {
    if p >= 1.0 {
        return None; // identity
    }
    let soft = Soft::of(row)?;
    let threshold = (1.0 - p) as f32;
    let order = ranked(row);
    let mut tails = vec![0.0f64; order.len()];
    let mut acc = 0.0;
    for i in (0..order.len()).rev() {
        acc += soft.w(row[order[i] as usize]);
        tails[i] = acc / soft.z;
    }
    let kept = (0..order.len()).filter(|&i| i < keep || tails[i] as f32 > threshold);
    Some(sorted(kept.map(|i| order[i]).collect()))
}

fn min_p_oracle(row: &[f32], min_p: f32, keep: usize) -> Option<Vec<TokenId>> {
    if min_p == 0.0 {
        return None;
    }
    let soft = Soft::of(row)?;
    let t = min_p * soft.p(soft.m);
    let pass: Vec<TokenId> =
        finite_ids(row).into_iter().filter(|&i| soft.p(row[i as usize]) >= t).collect();
    if pass.len() >= keep {
        return Some(pass);
    }
    Some(sorted(ranked(row).into_iter().take(keep).collect()))
}

fn floor_oracle(row: &[f32], soft: &Soft, floor: f32, keep: usize) -> Option<Vec<TokenId>> {
    let order = ranked(row);
    if order.len() < keep {
        return None;
    }
    let protected = row[order[keep - 1] as usize];
    let kept = order.into_iter().filter(|&i| {
        let x = row[i as usize];
        x >= protected || soft.p(x) >= floor
    });
    Some(sorted(kept.collect()))
}

fn epsilon_oracle(row: &[f32], eps: f32, keep: usize) -> Option<Vec<TokenId>> {
    floor_oracle(row, &Soft::of(row)?, eps, keep)
}

fn eta_oracle(row: &[f32], eps: f32, keep: usize) -> Option<Vec<TokenId>> {
    let soft = Soft::of(row)?;
    let h = soft.entropy(row) as f32;
    let eta = eps.min(eps.sqrt() * (-h).exp());
    floor_oracle(row, &soft, eta, keep)
}

fn typical_oracle(row: &[f32], mass: f32, keep: usize) -> Option<Vec<TokenId>> {
    if mass >= 1.0 || row.len() <= keep {
        return None;
    }
    let soft = Soft::of(row)?;
    let h = soft.entropy(row) as f32;
    let ln_z = soft.z.ln() as f32;
    let mut order: Vec<(f32, TokenId)> = finite_ids(row)
        .into_iter()
        .map(|i| ((-((row[i as usize] - soft.m) - ln_z) - h).abs(), i))
        .collect();
    order.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut boundary = order.len() - 1;
    let mut cum = 0.0f64;
    for (i, &(_, id)) in order.iter().enumerate() {
        cum += soft.w(row[id as usize]);
        if (cum / soft.z) as f32 >= mass {
            boundary = i;
            break;
        }
    }
    let limit = order[boundary].0;
    let kept = order.iter().enumerate().filter(|&(i, e)| i < keep || e.0 <= limit);
    Some(sorted(kept.map(|(_, e)| e.1).collect()))
}

fn top_h_oracle(row: &[f32], top_h: f32) -> Option<Vec<TokenId>> {
    let order: Vec<TokenId> = ranked(row).into_iter().take(100).collect();
    let m = row[*order.first()? as usize];
    let w: Vec<f64> = order.iter().map(|&i| f64::from((row[i as usize] - m).exp())).collect();
    let z: f64 = w.iter().sum();
    let term: Vec<f64> = order
        .iter()
        .zip(&w)
        .map(
            |(&i, &w)| {
                if w > 0.0 { -(w / z) * (f64::from(row[i as usize] - m) - z.ln()) } else { 0.0 }
            },
        )
        .collect();
    let tau = (term.iter().sum::<f64>().max(0.0) as f32) * top_h;
    let mut n = 1;
    let mut cum = term[0];
    for i in 1..order.len() {
        if (w[i] / z) as f32 == 0.0 {
            break;
        }
        cum += term[i];
        if cum as f32 > tau {
            break;
        }
        n = i + 1;
    }
    Some(sorted(order[..n].to_vec()))
}

// ------------------------------------------------------- universal checks

/// The rules every truncation obeys; returns the survivors.
fn check_truncation(
    input: &[f32],
    output: &[f32],
    keep: usize,
) -> Result<Vec<TokenId>, TestCaseError> {
    prop_assert_eq!(input.len(), output.len());
    for (i, (&x, &y)) in input.iter().zip(output).enumerate() {
        prop_assert!(!y.is_nan() && y != f32::INFINITY, "token {} became {}", i, y);
        // Survivors keep their score; removed tokens are -inf; masks stick.
        prop_assert!(y == NEG || y.to_bits() == x.to_bits(), "token {}: {} -> {}", i, x, y);
    }
    let finite_in = finite_ids(input).len();
    let kept = finite_ids(output);
    if finite_in == 0 {
        prop_assert_eq!(input, output, "an all-masked row is left alone");
    } else {
        prop_assert!(kept.len() >= keep.min(finite_in), "{} kept of {}", kept.len(), finite_in);
        prop_assert!(!kept.is_empty());
    }
    Ok(kept)
}

fn expect(
    input: &[f32],
    output: &[f32],
    oracle: Option<Vec<TokenId>>,
) -> Result<(), TestCaseError> {
    match oracle {
        None => prop_assert_eq!(input, output, "expected the identity"),
        Some(ids) => prop_assert_eq!(finite_ids(output), ids),
    }
    Ok(())
}

/// A processor that leaves an unsorted truncated live set: every third id goes.
#[derive(Debug, Clone)]
struct DropEveryThird;

impl LogitsProcessor for DropEveryThird {
    fn process(&mut self, _: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), decoding::Error> {
        scores.retain(|id, _| id % 3 != 2);
        Ok(())
    }
}

/// `first` then `p` on the live set equals `first`, densified, then `p` on
/// the dense row: the truncated (and, after top-k, sorted) path agrees with
/// the dense one.
fn check_live_path<P: LogitsProcessor + Clone>(
    p: &P,
    first: impl LogitsProcessor + Clone,
    row: &[f32],
) -> Result<(), TestCaseError> {
    let via_live = apply(&mut first.clone().then(p.clone()), &Context::empty(), row);
    let dense = apply(&mut first.clone(), &Context::empty(), row);
    let via_dense = apply(&mut p.clone(), &Context::empty(), &dense);
    prop_assert_eq!(finite_ids(&via_live), finite_ids(&via_dense));
    for (&a, &b) in via_live.iter().zip(&via_dense) {
        // Equal up to the order of the normalizer's sum (LogSoftmax).
        prop_assert!(close(a, b), "{} vs {}", a, b);
    }
    Ok(())
}

fn check_live_paths<P: LogitsProcessor + Clone>(
    p: &P,
    row: &[f32],
    k: usize,
) -> Result<(), TestCaseError> {
    check_live_path(p, TopK::new(k).unwrap(), row)?;
    check_live_path(p, DropEveryThird, row)
}

/// Equal, or within 1e-6 relative (absolute below 1).
fn close(a: f32, b: f32) -> bool {
    a == b || (a - b).abs() <= 1e-6 * a.abs().max(1.0)
}

fn run(p: &mut impl LogitsProcessor, row: &[f32]) -> Vec<f32> {
    apply(p, &Context::empty(), row)
}

// ------------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn top_p_matches_the_oracle(row in row(), p in grid(0, 1000), keep in keep(), k in 1usize..80) {
        let mut proc = TopP::new(p as f32).unwrap().min_tokens_to_keep(keep).unwrap();
        let out = run(&mut proc, &row);
        let kept = check_truncation(&row, &out, keep)?;
        expect(&row, &out, top_p_oracle(&row, p, keep))?;

        // The smallest descending prefix reaching p (exact arithmetic, with
        // a tolerance for the f32 rounding of the comparison).
        if let Some(soft) = Soft::of(&row) {
            if p < 1.0 {
                let order = ranked(&row);
                prop_assert_eq!(&sorted(order[..kept.len()].to_vec()), &kept, "a prefix of the ranking");
                let mass: Vec<f64> = order.iter().map(|&i| soft.w(row[i as usize]) / soft.z).collect();
                let all: f64 = mass[..kept.len()].iter().sum();
                prop_assert!(all >= p.min(mass.iter().sum::<f64>()) - 1e-6);
                if kept.len() > keep {
                    let before: f64 = mass[..kept.len() - 1].iter().sum();
                    prop_assert!(before < p + 1e-6, "{} before the last already reaches {}", before, p);
                }
            }
        }
        // A second pass can only cut more (top-p is not idempotent).
        let again = run(&mut proc, &out);
        prop_assert!(finite_ids(&again).iter().all(|i| kept.contains(i)));
        check_live_paths(&proc, &row, k)?;
    }

    #[test]
    fn min_p_matches_the_oracle(row in row(), min_p in grid(0, 1000), keep in keep(), k in 1usize..80) {
        let mut proc = MinP::new(min_p as f32).unwrap().min_tokens_to_keep(keep).unwrap();
        let out = run(&mut proc, &row);
        check_truncation(&row, &out, keep)?;
        expect(&row, &out, min_p_oracle(&row, min_p as f32, keep))?;
        // The maximum always survives.
        if let Some(soft) = Soft::of(&row) {
            prop_assert!(out.contains(&soft.m));
        }
        // Renormalizing keeps every ratio to the maximum, so a second pass
        // removes nothing, except through rounding: a token whose ratio to
        // the maximum is min_p up to 1e-6 may fall on either side.
        let again = run(&mut proc, &out);
        let kept = finite_ids(&out);
        let kept_again = finite_ids(&again);
        prop_assert!(kept_again.iter().all(|i| kept.contains(i)));
        if let Some(soft) = Soft::of(&row) {
            for i in kept.iter().filter(|i| !kept_again.contains(i)) {
                let ratio = soft.w(row[*i as usize]);
                prop_assert!((ratio - min_p).abs() <= 1e-6 * min_p, "token {} (ratio {}) removed", i, ratio);
            }
        }
        check_live_paths(&proc, &row, k)?;
    }

    #[test]
    fn typical_matches_the_oracle(row in row(), mass in grid(1, 1000), keep in keep(), k in 1usize..80) {
        let mut proc = Typical::new(mass as f32).unwrap().min_tokens_to_keep(keep).unwrap();
        let out = run(&mut proc, &row);
        let kept = check_truncation(&row, &out, keep)?;
        expect(&row, &out, typical_oracle(&row, mass as f32, keep))?;
        let again = run(&mut proc, &out);
        prop_assert!(finite_ids(&again).iter().all(|i| kept.contains(i)));
        check_live_paths(&proc, &row, k)?;
    }

    #[test]
    fn epsilon_matches_the_oracle(row in row(), eps in grid(1, 999), keep in keep(), k in 1usize..80) {
        let mut proc = EpsilonCutoff::new(eps as f32).unwrap().min_tokens_to_keep(keep).unwrap();
        let out = run(&mut proc, &row);
        check_truncation(&row, &out, keep)?;
        expect(&row, &out, epsilon_oracle(&row, eps as f32, keep))?;
        // Survivors only gain probability: a second pass removes nothing.
        prop_assert_eq!(run(&mut proc, &out), out);
        check_live_paths(&proc, &row, k)?;
    }

    #[test]
    fn eta_matches_the_oracle(row in row(), eps in grid(1, 999), keep in keep(), k in 1usize..80) {
        let mut proc = EtaCutoff::new(eps as f32).unwrap().min_tokens_to_keep(keep).unwrap();
        let out = run(&mut proc, &row);
        let kept = check_truncation(&row, &out, keep)?;
        expect(&row, &out, eta_oracle(&row, eps as f32, keep))?;
        let again = run(&mut proc, &out);
        prop_assert!(finite_ids(&again).iter().all(|i| kept.contains(i)));
        check_live_paths(&proc, &row, k)?;
    }

    #[test]
    fn top_h_matches_the_oracle(row in row(), top_h in grid(1, 1000), k in 1usize..80) {
        let mut proc = TopH::new(top_h as f32).unwrap();
        let out = run(&mut proc, &row);
        let kept = check_truncation(&row, &out, 1)?;
        expect(&row, &out, top_h_oracle(&row, top_h as f32))?;
        prop_assert!(kept.len() <= 100);
        check_live_paths(&proc, &row, k)?;
    }

    #[test]
    fn argmax_keeps_the_first_maximum(row in row(), k in 1usize..80) {
        let mut proc = Argmax::new();
        let out = run(&mut proc, &row);
        let kept = check_truncation(&row, &out, 1)?;
        if let Some(soft) = Soft::of(&row) {
            let first = row.iter().position(|&x| x == soft.m).unwrap() as TokenId;
            prop_assert_eq!(kept, vec![first]);
        }
        prop_assert_eq!(run(&mut proc, &out), out);
        check_live_paths(&proc, &row, k)?;
    }

    #[test]
    fn log_softmax_normalizes(row in row(), k in 1usize..80) {
        let mut proc = LogSoftmax::new();
        let out = run(&mut proc, &row);
        let Some(soft) = Soft::of(&row) else {
            prop_assert_eq!(&out, &row);
            return Ok(());
        };
        let ln_z = soft.z.ln() as f32;
        for (&x, &y) in row.iter().zip(&out) {
            prop_assert!(!y.is_nan() && y <= 0.0);
            let expected = (x - soft.m) - ln_z;
            prop_assert!(close(y, expected), "{} vs {}", y, expected);
        }
        let total: f64 = out.iter().map(|&y| f64::from(y).exp()).sum();
        prop_assert!((total - 1.0).abs() < 1e-5, "total {}", total);
        // Order preserving, and a fixed point up to rounding.
        for (i, j) in (0..row.len()).zip(1..row.len()) {
            if row[i] <= row[j] {
                prop_assert!(out[i] <= out[j]);
            }
        }
        let again = run(&mut proc, &out);
        for (&a, &b) in out.iter().zip(&again) {
            prop_assert!(close(a, b), "{} vs {}", a, b);
        }
        check_live_paths(&proc, &row, k)?;
    }
}
