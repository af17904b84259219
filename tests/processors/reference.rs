//! Every truncation against a naive f64 reference, on adversarial rows.
//!
//! The rows are built to break selection code: long runs of exact ties,
//! runs of consecutive f32 values (whose differences to the maximum collide
//! once rounded), pairs one ulp apart, tiny increments below the rounding
//! of their base, huge offsets (±1e30, ±3e38, subnormals, `-0.0`), runs of
//! `-inf`, and sizes on both sides of every internal threshold (the first
//! round of 256 candidates, 1024 sorted survivors, 4096 and beyond).
//!
//! The reference ranks every finite token by score (IEEE comparison, so
//! `-0.0` ties with `0.0`; ties broken as each processor documents) and
//! evaluates the processor's rule in f64. One f32 step is mirrored because
//! every processor documents it, as transformers computes it: the
//! difference `x - max` is rounded to f32 before the exponential. What else
//! the crate computes in f32 (the exponential, within 1 ulp; probabilities,
//! tails, thresholds and entropies rounded to f32) is covered by a stated
//! tolerance: a token whose quantity lies within it of the threshold may go
//! either way, every other token must be decided as the reference decides.
//!
//! Whatever the tolerance allows, the kept set must be a prefix of the
//! ranking (typical sampling: of its own ranking by distance to the
//! entropy), must reach the mass it promises, must keep the survivors'
//! scores bit for bit, and a live set marked sorted must be in rank order.
//! The same checks run on compositions (a truncation after a temperature,
//! after another truncation, after an unsorted live set), so the live-set
//! paths of every processor are exercised.

use decoding::processors::{
    Argmax, EpsilonCutoff, EtaCutoff, MinP, MirostatV2, Temperature, TopH, TopK, TopNSigma, TopP,
    Typical,
};
use decoding::{Context, LogitsProcessor, Scores, TokenId};
use proptest::prelude::*;

const NEG: f32 = f32::NEG_INFINITY;

/// Relative tolerance on a probability, a tail mass or a ratio against its
/// threshold: the crate's f32 exponential (1 ulp) and the roundings of the
/// quotient and of the threshold to f32 amount to under 4e-7.
const TOL: f64 = 1e-6;

/// Relative tolerance on thresholds derived from the entropy (η of eta
/// cutoff): `H` carries the exponential's error weighted by `|ln p + 1|`,
/// at most about `3e-7 · (H + 1)` absolute, and `η` moves with `e^-H`.
const TOL_ENTROPY: f64 = 1e-5;

// ------------------------------------------------------------------ rows

/// `b`'s bit pattern advanced by `j`: consecutive floats away from zero
/// (from `0.0` and `-0.0` through the subnormals).
fn bits_after(b: f32, j: u32) -> f32 {
    f32::from_bits(b.to_bits() + j)
}

fn base() -> impl Strategy<Value = f32> {
    prop::sample::select(vec![
        0.0f32, -0.0, 1.0, 3.0, -7.5, 10.0, 1e30, -1e30, 3e38, -3e38, 1e-30, 88.0, -88.0,
    ])
}

/// One stretch of a row.
fn segment() -> impl Strategy<Value = Vec<f32>> {
    prop_oneof![
        // Exact ties.
        2 => (base(), 1usize..700).prop_map(|(b, n)| vec![b; n]),
        // Consecutive floats.
        3 => (base(), 1u32..3000).prop_map(|(b, n)| (0..n).map(|j| bits_after(b, j)).collect()),
        // Increments below (or near) the rounding of the difference to a
        // dominant token: distinct scores, equal weights.
        2 => (base(), prop::sample::select(vec![1e-11f32, 1e-7, 1e-4]), 1usize..1500)
            .prop_map(|(b, d, n)| (1..=n).map(|i| b + i as f32 * d).collect()),
        // Noise, and pairs one ulp apart.
        2 => prop::collection::vec(-20.0f32..20.0, 1..400),
        1 => prop::collection::vec(-30.0f32..30.0, 1..200)
            .prop_map(|v| v.into_iter().flat_map(|x| [x, bits_after(x, 1)]).collect()),
        // Masks.
        1 => (1usize..500).prop_map(|n| vec![NEG; n]),
        // A few dominant tokens.
        1 => (base(), 1usize..4, 1.0f32..12.0).prop_map(|(b, n, up)| vec![b + up; n]),
    ]
}

/// A short stretch (tiny rows).
fn short_segment() -> impl Strategy<Value = Vec<f32>> {
    prop_oneof![
        (base(), 1usize..4).prop_map(|(b, n)| vec![b; n]),
        (base(), 1u32..6).prop_map(|(b, n)| (0..n).map(|j| bits_after(b, j)).collect()),
        prop::collection::vec(-5.0f32..5.0, 1..6),
        Just(vec![NEG]),
    ]
}

/// Tiny rows, rows of a few thousand, rows beyond 4096 entries; in
/// generation order (ids correlated with scores) or shuffled.
fn adversarial_row() -> impl Strategy<Value = Vec<f32>> {
    let parts = prop_oneof![
        2 => prop::collection::vec(short_segment(), 1..4),
        4 => prop::collection::vec(segment(), 1..5),
        1 => prop::collection::vec(segment(), 5..9),
    ];
    let row = parts.prop_map(|parts| parts.concat());
    prop_oneof![row.clone(), row.prop_shuffle()]
}

/// `min_tokens_to_keep`: mostly 1, sometimes more, sometimes beyond the
/// first round of candidates.
fn keep() -> impl Strategy<Value = usize> {
    prop_oneof![6 => Just(1usize), 3 => 2usize..6, 1 => 200usize..400]
}

/// A parameter on the decimal grid `k / 1000`, or a common setting.
fn unit() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u32..=1000).prop_map(|k| f64::from(k) / 1000.0),
        prop::sample::select(vec![0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999]),
    ]
}

// ------------------------------------------------------------- the truncations

/// A truncation with its parameters.
#[derive(Debug, Clone)]
enum Trunc {
    TopK { k: usize, keep: usize, exact: bool },
    TopP { p: f64, keep: usize },
    MinP { min_p: f64, keep: usize },
    Typical { mass: f64, keep: usize },
    Epsilon { eps: f64, keep: usize },
    Eta { eps: f64, keep: usize },
    TopH { top_h: f64 },
    TopNSigma { n: f32 },
    Mirostat { tau: f32 },
    Argmax,
}

fn trunc() -> impl Strategy<Value = Trunc> {
    let open = || unit().prop_filter("in (0, 1)", |&x| x > 0.0 && x < 1.0);
    prop_oneof![
        1 => (prop_oneof![1usize..5, 200usize..300, 1000usize..5000], keep(), any::<bool>())
            .prop_map(|(k, keep, exact)| Trunc::TopK { k, keep, exact }),
        3 => (unit(), keep()).prop_map(|(p, keep)| Trunc::TopP { p, keep }),
        1 => (unit(), keep()).prop_map(|(min_p, keep)| Trunc::MinP { min_p, keep }),
        1 => (unit().prop_filter("positive", |&x| x > 0.0), keep())
            .prop_map(|(mass, keep)| Trunc::Typical { mass, keep }),
        1 => (open(), keep()).prop_map(|(eps, keep)| Trunc::Epsilon { eps, keep }),
        1 => (open(), keep()).prop_map(|(eps, keep)| Trunc::Eta { eps, keep }),
        1 => unit().prop_filter("positive", |&x| x > 0.0).prop_map(|top_h| Trunc::TopH { top_h }),
        1 => prop_oneof![Just(0.0f32), 0.0f32..4.0].prop_map(|n| Trunc::TopNSigma { n }),
        1 => prop_oneof![Just(0.0f32), 0.0f32..12.0].prop_map(|tau| Trunc::Mirostat { tau }),
        1 => Just(Trunc::Argmax),
    ]
}

impl Trunc {
    fn build(&self) -> Box<dyn LogitsProcessor> {
        match *self {
            Trunc::TopK { k, keep, exact } => {
                let p = TopK::new(k).unwrap().min_tokens_to_keep(keep).unwrap();
                Box::new(if exact { p.exact() } else { p })
            }
            Trunc::TopP { p, keep } => {
                Box::new(TopP::new(p as f32).unwrap().min_tokens_to_keep(keep).unwrap())
            }
            Trunc::MinP { min_p, keep } => {
                Box::new(MinP::new(min_p as f32).unwrap().min_tokens_to_keep(keep).unwrap())
            }
            Trunc::Typical { mass, keep } => {
                Box::new(Typical::new(mass as f32).unwrap().min_tokens_to_keep(keep).unwrap())
            }
            Trunc::Epsilon { eps, keep } => {
                Box::new(EpsilonCutoff::new(eps as f32).unwrap().min_tokens_to_keep(keep).unwrap())
            }
            Trunc::Eta { eps, keep } => {
                Box::new(EtaCutoff::new(eps as f32).unwrap().min_tokens_to_keep(keep).unwrap())
            }
            Trunc::TopH { top_h } => Box::new(TopH::new(top_h as f32).unwrap()),
            Trunc::TopNSigma { n } => Box::new(TopNSigma::new(n).unwrap()),
            Trunc::Mirostat { tau } => Box::new(MirostatV2::new(tau, 0.1).unwrap()),
            Trunc::Argmax => Box::new(Argmax::new()),
        }
    }

    /// What the reference allows on `row` (dense, `-inf` for removed
    /// tokens). `mu` is Mirostat's current target (ignored otherwise).
    fn reference(&self, row: &[f32], mu: f32) -> Allowed {
        let r = Ranked::of(row);
        match *self {
            Trunc::TopK { k, keep, exact } => top_k(row, k.max(keep), exact),
            Trunc::TopP { p, keep } => top_p(r, p, keep),
            Trunc::MinP { min_p, keep } => min_p_ref(r, min_p, keep),
            Trunc::Typical { .. } => unreachable!("typical is checked by its own rule"),
            Trunc::Epsilon { eps, keep } => floor(r, eps, keep, TOL),
            Trunc::Eta { eps, keep } => {
                let eta = eps.min(eps.sqrt() * (-r.entropy()).exp());
                floor(r, eta, keep, TOL_ENTROPY)
            }
            Trunc::TopH { top_h } => top_h_ref(r, top_h),
            Trunc::TopNSigma { n } => top_n_sigma(r, n),
            Trunc::Mirostat { .. } => mirostat(r, mu),
            Trunc::Argmax => argmax(row),
        }
    }
}

// ------------------------------------------------------------- the reference

/// The finite tokens of a row in rank order (score descending, the higher
/// id first among equal scores), with the softmax as
/// documented: `w = exp(f32(x - max))` in f64, `z = Σ w`.
struct Ranked {
    order: Vec<TokenId>,
    scores: Vec<f32>,
    w: Vec<f64>,
    z: f64,
    /// Tokens of the row (finite or not).
    len: usize,
}

impl Ranked {
    fn of(row: &[f32]) -> Ranked {
        let mut order: Vec<TokenId> =
            (0..row.len() as TokenId).filter(|&i| row[i as usize] > NEG).collect();
        // Score descending (IEEE: -0.0 ties with 0.0), the higher id first.
        order.sort_by(|&a, &b| {
            row[b as usize].partial_cmp(&row[a as usize]).unwrap().then(b.cmp(&a))
        });
        let scores: Vec<f32> = order.iter().map(|&i| row[i as usize]).collect();
        let m = scores.first().copied().unwrap_or(NEG);
        let w: Vec<f64> = scores.iter().map(|&x| f64::from(x - m).exp()).collect();
        let z = w.iter().sum();
        Ranked { order, scores, w, z, len: row.len() }
    }

    fn n(&self) -> usize {
        self.order.len()
    }

    /// Whether a cut after the first `n` ranks keeps whole tie groups.
    fn group_end(&self, n: usize) -> bool {
        n == 0 || n == self.n() || self.scores[n] < self.scores[n - 1]
    }

    /// The Shannon entropy of the softmax, in nats.
    fn entropy(&self) -> f64 {
        let ln_z = self.z.ln();
        self.w
            .iter()
            .filter(|&&w| w > 0.0)
            .map(|&w| {
                let p = w / self.z;
                -p * (w.ln() - ln_z)
            })
            .sum::<f64>()
            .max(0.0)
    }
}

/// The kept sets the reference accepts: the first `n` ranks of `order` for
/// any `n` with `prefix[n]`, or exactly one of `sets`.
struct Allowed {
    order: Vec<TokenId>,
    prefix: Vec<bool>,
    sets: Vec<Vec<TokenId>>,
    /// The kept set must reach this mass (f64, of the input's softmax) and
    /// no strictly smaller prefix may (ranks below `protected` aside).
    mass: Option<(f64, usize)>,
}

impl Allowed {
    fn prefixes(r: &Ranked, ok: impl Fn(usize) -> bool) -> Allowed {
        Allowed {
            order: r.order.clone(),
            prefix: (0..=r.n()).map(ok).collect(),
            sets: Vec::new(),
            mass: None,
        }
    }

    fn exactly(set: Vec<TokenId>) -> Allowed {
        Allowed { order: Vec::new(), prefix: Vec::new(), sets: vec![sorted(set)], mass: None }
    }

    fn everything(r: &Ranked) -> Allowed {
        Allowed::exactly(r.order.clone())
    }
}

fn sorted(mut ids: Vec<TokenId>) -> Vec<TokenId> {
    ids.sort_unstable();
    ids
}

/// Ranks `[lo, hi]` bracket a monotone rule: `sure_in(i)` holds for a
/// prefix of ranks, `sure_out(i)` for a suffix. Returns the number of sure
/// ins and the first sure out.
fn bracket(
    n: usize,
    sure_in: impl Fn(usize) -> bool,
    sure_out: impl Fn(usize) -> bool,
) -> (usize, usize) {
    let lo = (0..n).take_while(|&i| sure_in(i)).count();
    let hi = (0..n).find(|&i| sure_out(i)).unwrap_or(n);
    (lo, hi.max(lo))
}

fn top_k(row: &[f32], k: usize, exact: bool) -> Allowed {
    // transformers: the k-th largest score of the whole row (removed
    // tokens count as -inf); everything below it goes.
    let mut all = row.to_vec();
    all.sort_by(|a, b| b.partial_cmp(a).unwrap());
    let k = k.min(row.len());
    let t = all[k - 1];
    let finite = |i: usize| row[i] > NEG;
    if !exact || t == NEG {
        return Allowed::exactly(
            (0..row.len()).filter(|&i| finite(i) && row[i] >= t).map(|i| i as TokenId).collect(),
        );
    }
    // Exactly k: every score above t, then the lowest ids tied at t.
    let above: Vec<TokenId> =
        (0..row.len()).filter(|&i| row[i] > t).map(|i| i as TokenId).collect();
    let tied = (0..row.len()).filter(|&i| row[i] == t).map(|i| i as TokenId);
    let need = k - above.len();
    Allowed::exactly(above.into_iter().chain(tied.take(need)).collect())
}

fn top_p(r: Ranked, p: f64, keep: usize) -> Allowed {
    let n = r.n();
    if p >= 1.0 || n == 0 {
        return Allowed::everything(&r);
    }
    let keep = keep.min(n);
    let threshold = 1.0 - p;
    if threshold as f32 == 1.0 {
        // Documented exact: f32(tail) <= 1 always, so exactly the quota.
        return Allowed::prefixes(&r, |m| m == keep);
    }
    // Tails from the bottom, in f64.
    let mut tails = vec![0.0f64; n];
    let mut acc = 0.0;
    for i in (0..n).rev() {
        acc += r.w[i];
        tails[i] = acc / r.z;
    }
    let (lo, hi) = bracket(
        n,
        |i| i < keep || tails[i] > threshold * (1.0 + TOL),
        |i| i >= keep && tails[i] < threshold * (1.0 - TOL),
    );
    let mut allowed = Allowed::prefixes(&r, |m| m >= lo && m <= hi);
    allowed.mass = Some((p, keep));
    allowed
}

fn min_p_ref(r: Ranked, min_p: f64, keep: usize) -> Allowed {
    let n = r.n();
    if min_p == 0.0 || n == 0 {
        return Allowed::everything(&r);
    }
    let keep = keep.min(n);
    // p_i / p_max is the weight itself (the maximum weighs 1).
    let (lo, hi) = bracket(n, |i| r.w[i] > min_p * (1.0 + TOL), |i| r.w[i] < min_p * (1.0 - TOL));
    // Fewer than the quota pass: the quota's first ranks, ties split by id.
    Allowed::prefixes(&r, |m| {
        (m == keep && lo < keep) || (m >= keep && m >= lo && m <= hi && r.group_end(m))
    })
}

/// Epsilon and eta: remove `p < floor` unless scoring at least the
/// `keep`-th score (ties kept).
fn floor(r: Ranked, floor: f64, keep: usize, tol: f64) -> Allowed {
    let n = r.n();
    if n < keep || n == 0 {
        return Allowed::everything(&r);
    }
    let s_k = r.scores[keep - 1];
    let protected = r.scores.iter().take_while(|&&x| x >= s_k).count();
    let p = |i: usize| r.w[i] / r.z;
    let (lo, hi) = bracket(n, |i| p(i) > floor * (1.0 + tol), |i| p(i) < floor * (1.0 - tol));
    Allowed::prefixes(&r, |m| {
        r.group_end(m)
            && ((m == protected && lo <= protected) || (m > protected && m >= lo && m <= hi))
    })
}

fn top_h_ref(r: Ranked, top_h: f64) -> Allowed {
    let n = r.n().min(100);
    if n == 0 {
        return Allowed::everything(&r);
    }
    let z: f64 = r.w[..n].iter().sum();
    let q: Vec<f64> = r.w[..n].iter().map(|w| w / z).collect();
    let term: Vec<f64> = q.iter().map(|&q| if q > 0.0 { -q * q.ln() } else { 0.0 }).collect();
    let h: f64 = term.iter().sum::<f64>().max(0.0);
    let tau = top_h * h;
    let tol = 1e-6 * (h + 1.0);
    // A weight the crate's exponential flushes to 0 (below e^-104) is
    // surely 0; one whose probability is above 1e-40 surely is not.
    let sure_zero = |i: usize| r.scores[i] - r.scores[0] < -104.5;
    let sure_nonzero = |i: usize| q[i] > 1e-40;
    let mut cum = vec![0.0; n];
    let mut acc = 0.0;
    for i in 0..n {
        acc += term[i];
        cum[i] = acc;
    }
    let sure_stop = |i: usize| i >= 1 && (sure_zero(i) || cum[i] > tau + tol);
    let sure_go = |i: usize| i == 0 || (sure_nonzero(i) && cum[i] < tau - tol);
    let (lo, hi) = bracket(n, sure_go, sure_stop);
    Allowed::prefixes(&r, |m| m >= lo.max(1) && m <= hi && m <= n)
}

fn top_n_sigma(r: Ranked, n_sigma: f32) -> Allowed {
    let n = r.n();
    if n == 0 {
        return Allowed::everything(&r);
    }
    let xs: Vec<f64> = r.scores.iter().map(|&x| f64::from(x)).collect();
    let mean = xs.iter().sum::<f64>() / n as f64;
    let sigma = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
    let spread = f64::from(n_sigma) * sigma;
    let t = xs[0] - spread;
    let tol = 1e-9 * (xs[0].abs() + mean.abs() + spread);
    let (lo, hi) = bracket(n, |i| xs[i] > t + tol || xs[i] == xs[0], |i| xs[i] < t - tol);
    Allowed::prefixes(&r, |m| r.group_end(m) && m >= lo.max(1) && m <= hi)
}

fn mirostat(r: Ranked, mu: f32) -> Allowed {
    let n = r.n();
    if n == 0 {
        return Allowed::everything(&r);
    }
    let mu = f64::from(mu);
    let surprise = |i: usize| -(r.w[i] / r.z).log2();
    let tol = 1e-5;
    let (lo, hi) = bracket(n, |i| surprise(i) < mu - tol, |i| surprise(i) > mu + tol);
    // None passes: the highest score alone, the lowest id among ties.
    let lowest_tied =
        r.order.iter().zip(&r.scores).filter(|&(_, &x)| x == r.scores[0]).map(|(&i, _)| i).min();
    let mut allowed = Allowed::prefixes(&r, |m| r.group_end(m) && m >= lo.max(1) && m <= hi);
    if lo == 0 {
        allowed.sets.push(vec![lowest_tied.unwrap()]);
    }
    allowed
}

fn argmax(row: &[f32]) -> Allowed {
    let m = row.iter().copied().fold(NEG, f32::max);
    match row.iter().position(|&x| x == m && x > NEG) {
        Some(i) => Allowed::exactly(vec![i as TokenId]),
        None => Allowed::exactly(Vec::new()),
    }
}

// ---------------------------------------------------------------- the checks

/// The finite ids of a dense row, ascending.
fn finite_ids(row: &[f32]) -> Vec<TokenId> {
    (0..row.len() as TokenId).filter(|&i| row[i as usize] > NEG).collect()
}

/// Runs the stages one after the other on one `Scores`; returns the dense
/// output and whether a live set marked sorted was in rank order.
fn run(stages: &mut [&mut dyn LogitsProcessor], row: &[f32]) -> (Vec<f32>, Result<(), String>) {
    let mut out = row.to_vec();
    let mut live = Vec::new();
    let mut scores = Scores::new(&mut out, &mut live);
    for stage in stages.iter_mut() {
        stage.process(&Context::empty(), &mut scores).expect("processing failed");
    }
    let mut order_ok = Ok(());
    if scores.is_sorted() {
        // The live (id, score) pairs, in live-set order.
        let mut pairs = Vec::new();
        scores.for_each_live(|id, x| pairs.push((id, x)));
        for pair in pairs.windows(2) {
            let ((i, a), (j, b)) = (pair[0], pair[1]);
            if a < b || (a == b && i < j) {
                order_ok = Err(format!("sorted live set out of order at [{i}, {j}] ({a}, {b})"));
                break;
            }
        }
    }
    scores.densify();
    (out, order_ok)
}

/// The rules every truncation obeys, then the reference's verdict.
fn check(t: &Trunc, input: &[f32], output: &[f32], mu: f32) -> Result<(), TestCaseError> {
    prop_assert_eq!(input.len(), output.len());
    for (i, (&x, &y)) in input.iter().zip(output).enumerate() {
        prop_assert!(y == NEG || y.to_bits() == x.to_bits(), "token {} changed: {} -> {}", i, x, y);
    }
    let kept = finite_ids(output);
    let finite = finite_ids(input);
    if finite.is_empty() {
        prop_assert!(kept.is_empty());
        return Ok(());
    }
    prop_assert!(!kept.is_empty(), "{:?} removed every token", t);
    // A prefix of the ranking by score: nothing kept scores below a token
    // that was removed (typical has its own ranking).
    if !matches!(t, Trunc::Typical { .. }) {
        let lowest_kept = kept.iter().map(|&i| input[i as usize]).fold(f32::INFINITY, f32::min);
        for &i in &finite {
            if input[i as usize] > lowest_kept {
                prop_assert!(
                    kept.contains(&i),
                    "{:?}: token {} ({}) removed above a kept {}",
                    t,
                    i,
                    input[i as usize],
                    lowest_kept
                );
            }
        }
    }
    if let Trunc::Typical { mass, keep } = *t {
        return check_typical(input, &kept, mass, keep);
    }
    let allowed = t.reference(input, mu);
    if allowed.sets.contains(&kept) {
        return Ok(());
    }
    let n = kept.len();
    prop_assert!(
        n < allowed.prefix.len() && allowed.prefix[n],
        "{:?}: {} kept of {} finite; the reference allows {:?}",
        t,
        n,
        finite.len(),
        describe(&allowed)
    );
    prop_assert_eq!(
        &sorted(allowed.order[..n].to_vec()),
        &kept,
        "{:?}: not the first {} ranks",
        t,
        n
    );
    if let Some((p, keep)) = allowed.mass {
        // Reaches its mass, and only just: the kept mass reaches p (up to
        // the tolerance), and without its last token it would not have.
        let r = Ranked::of(input);
        let mass: f64 = r.w[..n].iter().sum::<f64>() / r.z;
        prop_assert!(n == r.n() || mass >= p * (1.0 - TOL) - 1e-12, "{:?}: mass {} < p", t, mass);
        if n > keep {
            let before = mass - r.w[n - 1] / r.z;
            prop_assert!(
                before <= p * (1.0 + TOL) + 1e-12,
                "{:?}: {} before the last kept",
                t,
                before
            );
        }
    }
    Ok(())
}

fn describe(a: &Allowed) -> String {
    let ns: Vec<usize> = (0..a.prefix.len()).filter(|&n| a.prefix[n]).collect();
    match (ns.first(), ns.last()) {
        (Some(lo), Some(hi)) => {
            format!("prefixes {lo}..={hi} ({} values), or {} sets", ns.len(), a.sets.len())
        }
        _ => format!("no prefix, {} sets", a.sets.len()),
    }
}

/// Typical: a prefix of the ranking by distance `|-ln p - H|` (up to the
/// rounding of the distances), whose mass reaches `mass` and whose
/// clearly-more-typical part does not.
fn check_typical(
    input: &[f32],
    kept: &[TokenId],
    mass: f64,
    keep: usize,
) -> Result<(), TestCaseError> {
    let r = Ranked::of(input);
    if mass >= 1.0 || r.len <= keep {
        prop_assert_eq!(kept, &finite_ids(input)[..]);
        return Ok(());
    }
    let h = r.entropy();
    let ln_z = r.z.ln();
    let m = r.scores[0];
    let dist = |i: usize| {
        let d = f64::from(r.scores[i] - m);
        ((ln_z - d) - h).abs()
    };
    let tol = |i: usize| 1e-5 * (1.0 + f64::from(r.scores[i] - m).abs() + ln_z + h);
    let is_kept: Vec<bool> = r.order.iter().map(|id| kept.binary_search(id).is_ok()).collect();
    let worst_kept = (0..r.n())
        .filter(|&i| is_kept[i])
        .map(|i| dist(i) - tol(i))
        .fold(f64::NEG_INFINITY, f64::max);
    for i in (0..r.n()).filter(|&i| !is_kept[i]) {
        prop_assert!(
            dist(i) + tol(i) >= worst_kept - 1e-300,
            "typical: token {} removed, more typical than a kept one",
            r.order[i]
        );
    }
    let p = |i: usize| r.w[i] / r.z;
    let kept_mass: f64 = (0..r.n()).filter(|&i| is_kept[i]).map(p).sum();
    prop_assert!(
        kept.len() == r.n() || kept_mass >= mass * (1.0 - TOL) - 1e-12,
        "typical: mass {} < {}",
        kept_mass,
        mass
    );
    if kept.len() > keep.min(r.n()) {
        let edge = (0..r.n()).filter(|&i| is_kept[i]).map(&dist).fold(0.0, f64::max);
        let inner: f64 =
            (0..r.n()).filter(|&i| is_kept[i] && dist(i) + tol(i) < edge - tol(i)).map(p).sum();
        prop_assert!(
            inner <= mass * (1.0 + TOL) + 1e-12,
            "typical: the tokens before the boundary already hold {}",
            inner
        );
    }
    Ok(())
}

/// A stage that leaves an unsorted live set: every third id goes.
#[derive(Debug)]
struct DropEveryThird;

impl LogitsProcessor for DropEveryThird {
    fn process(&mut self, _: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), decoding::Error> {
        scores.retain(|id, _| id % 3 != 2);
        Ok(())
    }
}

/// What runs before the truncation under test in the composed checks.
#[derive(Debug, Clone)]
enum Before {
    Temperature(f32),
    Trunc(Trunc),
    DropEveryThird,
}

fn before() -> impl Strategy<Value = Before> {
    prop_oneof![
        1 => prop::sample::select(vec![0.3f32, 0.7, 1.5, 4.0]).prop_map(Before::Temperature),
        3 => trunc().prop_map(Before::Trunc),
        1 => Just(Before::DropEveryThird),
    ]
}

impl Before {
    fn build(&self) -> Box<dyn LogitsProcessor> {
        match self {
            Before::Temperature(t) => Box::new(Temperature::new(*t).unwrap()),
            Before::Trunc(t) => t.build(),
            Before::DropEveryThird => Box::new(DropEveryThird),
        }
    }
}

fn mu_of(t: &Trunc) -> f32 {
    match *t {
        Trunc::Mirostat { tau } => MirostatV2::new(tau, 0.1).unwrap().mu(),
        _ => 0.0,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_truncation_agrees_with_the_f64_reference(row in adversarial_row(), t in trunc()) {
        let mut p = t.build();
        let (out, sorted_ok) = run(&mut [&mut *p], &row);
        prop_assert!(sorted_ok.is_ok(), "{:?}: {:?}", t, sorted_ok);
        check(&t, &row, &out, mu_of(&t))?;
        // Mirostat again with the target moved by the surprise of a token.
        if let Trunc::Mirostat { tau } = t {
            let mut m = MirostatV2::new(tau, 0.1).unwrap();
            let (out, _) = run(&mut [&mut m], &row);
            if let Some(&chosen) = finite_ids(&out).last() {
                m.accept(chosen);
                let mu = m.mu();
                let (again, _) = run(&mut [&mut m], &row);
                check(&t, &row, &again, mu)?;
            }
        }
    }

    #[test]
    fn every_truncation_agrees_with_the_reference_on_a_live_set(
        row in adversarial_row(),
        first in before(),
        t in trunc(),
    ) {
        // The reference sees the first stage's output, densified.
        let (input, _) = run(&mut [&mut *first.build()], &row);
        let mut a = first.build();
        let mut b = t.build();
        let (out, sorted_ok) = run(&mut [&mut *a, &mut *b], &row);
        prop_assert!(sorted_ok.is_ok(), "{:?} then {:?}: {:?}", first, t, sorted_ok);
        check(&t, &input, &out, mu_of(&t))?;
    }
}
