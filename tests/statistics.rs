//! Every stochastic path draws from the exact distribution.
//!
//! For each path (the categorical sampler on a dense row, after temperature,
//! after each truncation, and the batch path) the draws are compared with
//! the exact distribution: the softmax, computed here in f64, of the row
//! that `Pipeline::process` writes back (itself checked against an oracle
//! for the truncations). Three checks per path:
//!
//! 1. **Support** (hard): no draw lands on a token of probability 0.
//! 2. **Law**: Pearson's chi-square goodness of fit at significance
//!    α = 1e-6, bins of expected count below 20 merged.
//! 3. **Tail reachability**: the least likely kept token (and the ten least
//!    likely together) is drawn as often as it should be, within 4.89
//!    standard deviations (two-sided α = 1e-6).
//!
//! The seeds are fixed and the generator is the portable ChaCha8
//! (`rng_from_seed`), so every statistic is deterministic: a failure is a
//! change of behaviour, never bad luck.
//!
//! # Power: 10⁶ draws detect a 2% relative bias on 1000 tokens
//!
//! Let `p` be a distribution over `K = 1000` tokens and `q` a biased sampler
//! with `q_i = p_i (1 ± 0.02)`, `+` on half of the mass and `−` on the other
//! half. Pearson's statistic over `N` draws from `q` is approximately a
//! noncentral chi-square with `K − 1 = 999` degrees of freedom and
//! noncentrality
//!
//! ```text
//! λ = N Σ (q_i − p_i)² / p_i = N Σ p_i · 0.02² = 4·10⁻⁴ · N.
//! ```
//!
//! With `N = 10⁶`, `λ = 400`. The critical value at α = 1e-6 is
//! `c = 1226.1` (Wilson–Hilferty). Under `q` the statistic has mean
//! `999 + λ = 1399` and standard deviation `√(2(999 + 2λ)) = 60.0`, so it
//! stays below `c` with probability `Φ((1226.1 − 1399) / 60.0) = Φ(−2.88)`
//! ≈ 0.002 (0.0014 with the exact noncentral distribution): the bias is
//! detected with power ≈ 99.8%. (Wilson–Hilferty is conservative here: the
//! exact tail beyond 1226.1 is 0.99e-6.) (Merging bins or
//! truncating to fewer tokens lowers the degrees of freedom and only raises
//! the power.) `slow::a_two_percent_bias_is_detected` checks this on the
//! real sampler: it draws from such a `q` and asserts that the test rejects.
//!
//! Every path here uses `N = 10⁶` draws over a 1000-token row.
//!
//! # Run time
//!
//! The default set takes about 45 s of CPU at the test profile (the
//! sampler's cost grows with the number of tokens kept). The
//! heaviest checks (temperature and a chain of truncations over the whole
//! row, the power check above, the batch path's own chi-square, the tail
//! of 50257- and 151936-token rows, and, with the
//! `rayon` feature, the parallel batch path) are in `slow`, compiled with
//! `--features slow-tests`; `.ci/run` runs them:
//! `cargo test --test statistics --features slow-tests,rayon -- slow::`.

use decoding::processors::{EpsilonCutoff, EtaCutoff, MinP, TopH, TopK, TopP, Typical};
use decoding::sampler::Categorical;
use decoding::{Context, LogitsProcessor, Pipeline, Sampler, Scores, rng_from_seed};
#[cfg(feature = "ndarray")]
use decoding::{DecodingRng, Sampled};

#[path = "common/chi_square.rs"]
mod chi_square;

use chi_square::{chi2_critical, draw, softmax};

/// Pearson's statistic and its degrees of freedom; a token of probability
/// 0 that was drawn fails the test.
fn chi2(counts: &[u64], probs: &[f64]) -> (f64, usize) {
    chi_square::chi2(counts, probs).expect("a token of probability 0 was drawn")
}

const V: usize = 1000;
const N: u64 = 1_000_000;
/// Two-sided normal bound at α = 1e-6.
const Z_TWO_SIDED: f64 = 4.891_638_475_698_85;

/// The base row: 1000 logits spread over `[-3, 0]` in a scrambled order,
/// so probabilities range over a factor e³ ≈ 20 and every token expects at
/// least 150 of 10⁶ draws.
fn base_row() -> Vec<f32> {
    (0..V).map(|i| -3.0 * ((i * 7919) % V) as f32 / (V - 1) as f32).collect()
}

/// The processed row, as `Pipeline::process` writes it back.
fn processed(pipeline: &mut Pipeline, row: &[f32]) -> Vec<f32> {
    let mut out = row.to_vec();
    pipeline.process(&Context::empty(), &mut out).unwrap();
    out
}

/// Checks the law and the tail of `counts` against `probs`.
fn check(name: &str, counts: &[u64], probs: &[f64]) {
    let (stat, df) = chi2(counts, probs);
    assert!(df >= 1, "{name}: nothing to test");
    let critical = chi2_critical(df);
    assert!(stat < critical, "{name}: chi2 = {stat:.1} >= {critical:.1} (df = {df})");

    // Tail reachability: the least likely kept token, then the ten least
    // likely together.
    let n: u64 = counts.iter().sum();
    let mut kept: Vec<usize> = (0..probs.len()).filter(|&i| probs[i] > 0.0).collect();
    kept.sort_by(|&a, &b| probs[a].total_cmp(&probs[b]));
    for take in [1, 10] {
        let ids = &kept[..take.min(kept.len())];
        let p: f64 = ids.iter().map(|&i| probs[i]).sum();
        let c: u64 = ids.iter().map(|&i| counts[i]).sum();
        let mean = n as f64 * p;
        let sd = (n as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (c as f64 - mean).abs() <= Z_TWO_SIDED * sd.max(1.0),
            "{name}: the {take} least likely kept tokens were drawn {c} times, expected {mean:.1} ± {sd:.1}"
        );
    }
}

/// `n` draws from one processed step: the row is checked and processed
/// once, as `Pipeline::sample` does (the sampler then walks the live set
/// the processors left, not the written-back row), and the sampler draws
/// `n` times from it. The processors are deterministic, so running them
/// once per draw would only repeat the same step.
fn draw_processed(pipeline: &mut Pipeline, row: &[f32], n: u64, seed: u64) -> Vec<u64> {
    let mut counts = vec![0u64; row.len()];
    let mut rng = rng_from_seed(seed);
    let mut sampler = Categorical::new();
    let mut buf = row.to_vec();
    let mut live = Vec::new();
    let mut scores = Scores::new(&mut buf, &mut live);
    scores.check_finite().unwrap();
    LogitsProcessor::process(pipeline, &Context::empty(), &mut scores).unwrap();
    for _ in 0..n {
        counts[sampler.sample(&scores, &mut rng).unwrap().token as usize] += 1;
    }
    counts
}

/// Draws from `pipeline` on the base row and checks against its processed row.
fn check_path(name: &str, mut pipeline: Pipeline, mut twin: Pipeline, seed: u64) -> Vec<f64> {
    let row = base_row();
    let probs = softmax(&processed(&mut twin, &row));
    let counts = draw_processed(&mut pipeline, &row, N, seed);
    check(name, &counts, &probs);
    probs
}

/// The ids of the base row ranked by probability, highest first.
fn ranked(row: &[f32]) -> Vec<usize> {
    let mut ids: Vec<usize> = (0..row.len()).collect();
    ids.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(b.cmp(&a)));
    ids
}

fn kept(probs: &[f64]) -> Vec<usize> {
    (0..probs.len()).filter(|&i| probs[i] > 0.0).collect()
}

fn sorted(mut ids: Vec<usize>) -> Vec<usize> {
    ids.sort_unstable();
    ids
}

#[test]
fn categorical_draws_from_the_exact_softmax() {
    // Through `Pipeline::sample`, row copied and checked at every draw.
    let row = base_row();
    let counts = draw(&mut Pipeline::new(), &row, N, 1);
    check("categorical", &counts, &softmax(&row));
}

#[test]
fn top_k_then_categorical_draws_from_the_renormalized_top_k() {
    let k = || Pipeline::new().with(TopK::new(500).unwrap());
    let probs = check_path("top-k 500", k(), k(), 4);
    let row = base_row();
    assert_eq!(kept(&probs), sorted(ranked(&row)[..500].to_vec()));
}

#[test]
fn top_p_then_categorical_draws_from_the_renormalized_nucleus() {
    let p = || Pipeline::new().with(TopP::new(0.9).unwrap());
    let probs = check_path("top-p 0.9", p(), p(), 5);
    // Oracle: the smallest prefix (by probability) whose mass reaches 0.9.
    let row = base_row();
    let full = softmax(&row);
    let mut mass = 0.0;
    let mut nucleus = Vec::new();
    for i in ranked(&row) {
        if mass >= 0.9 {
            break;
        }
        mass += full[i];
        nucleus.push(i);
    }
    assert_eq!(kept(&probs), sorted(nucleus));
}

#[test]
fn min_p_then_categorical_draws_from_the_renormalized_survivors() {
    let m = || Pipeline::new().with(MinP::new(0.2).unwrap());
    let probs = check_path("min-p 0.2", m(), m(), 6);
    let full = softmax(&base_row());
    let max = full.iter().copied().fold(0.0, f64::max);
    let want: Vec<usize> = (0..V).filter(|&i| full[i] >= 0.2 * max).collect();
    assert_eq!(kept(&probs), want);
}

#[test]
fn typical_then_categorical_draws_from_the_renormalized_survivors() {
    let t = || Pipeline::new().with(Typical::new(0.8).unwrap());
    let probs = check_path("typical 0.8", t(), t(), 7);
    let n = kept(&probs).len();
    assert!(n > 100 && n < V, "{n} survivors");
}

#[test]
fn epsilon_then_categorical_draws_from_the_renormalized_survivors() {
    let e = || Pipeline::new().with(EpsilonCutoff::new(6e-4).unwrap());
    let probs = check_path("epsilon 6e-4", e(), e(), 8);
    let full = softmax(&base_row());
    let want: Vec<usize> = (0..V).filter(|&i| full[i] >= 6e-4).collect();
    assert_eq!(kept(&probs), want);
}

#[test]
fn eta_then_categorical_draws_from_the_renormalized_survivors() {
    // H = 6.60 nats here, so eta = min(0.3, sqrt(0.3) e^-H) = 7.4e-4.
    let e = || Pipeline::new().with(EtaCutoff::new(0.3).unwrap());
    let probs = check_path("eta 0.3", e(), e(), 9);
    let full = softmax(&base_row());
    let h: f64 = -full.iter().map(|&p| p * p.ln()).sum::<f64>();
    let eta = 0.3f64.min(0.3f64.sqrt() * (-h).exp());
    let want: Vec<usize> = (0..V).filter(|&i| full[i] >= eta).collect();
    assert!(want.len() > 100 && want.len() < V, "{} survivors", want.len());
    assert_eq!(kept(&probs), want);
}

#[test]
fn top_h_then_categorical_draws_from_the_renormalized_survivors() {
    let h = || Pipeline::new().with(TopH::new(0.9).unwrap());
    let probs = check_path("top-h 0.9", h(), h(), 10);
    let n = kept(&probs).len();
    assert!(n > 10 && n <= 100, "{n} survivors");
}

#[cfg(feature = "ndarray")]
/// Two rows of different laws (the base row, and it reversed and scaled by
/// 1.5), and the batch that holds them.
fn two_laws() -> ([Vec<f32>; 2], ndarray::Array2<f32>) {
    let base = base_row();
    let scaled: Vec<f32> = base.iter().rev().map(|&x| x * 1.5).collect();
    let rows = [base, scaled];
    let batch = ndarray::Array2::from_shape_fn((2, V), |(r, c)| rows[r][c]);
    (rows, batch)
}

#[cfg(feature = "ndarray")]
/// The single-row path a batch is compared with: one pipeline, one sampler
/// and one seeded generator per row, each draw from a fresh copy of the row.
struct SinglePath {
    pipeline: Pipeline,
    sampler: Categorical,
    rngs: Vec<DecodingRng>,
    buf: Vec<f32>,
}

#[cfg(feature = "ndarray")]
impl SinglePath {
    fn new(pipeline: Pipeline, seeds: impl IntoIterator<Item = u64>) -> Self {
        let rngs = seeds.into_iter().map(rng_from_seed).collect();
        SinglePath { pipeline, sampler: Categorical::new(), rngs, buf: vec![0.0; V] }
    }

    /// Row `r`'s next draw on the single-row path.
    fn sample(&mut self, r: usize, row: &[f32]) -> Sampled {
        self.buf.copy_from_slice(row);
        let rng = &mut self.rngs[r];
        self.pipeline.sample(&Context::empty(), &mut self.buf, &mut self.sampler, rng).unwrap()
    }

    /// Skips row `r`'s next draw (one uniform per draw), keeping its stream
    /// aligned with the batch's.
    #[cfg(feature = "slow-tests")]
    fn skip(&mut self, r: usize) {
        decoding::unit_f64(&mut self.rngs[r]);
    }
}

#[cfg(feature = "ndarray")]
#[test]
fn batch_draws_equal_single_draws_seed_for_seed() {
    // Every draw of a batch equals the single-row draw with the same seed,
    // so the batch path inherits the laws checked above (the full
    // statistical check of the batch path is in `slow`).
    let (rows, batch) = two_laws();
    let contexts = [Context::empty(); 2];
    let mut pipeline = Pipeline::new().with(TopK::new(700).unwrap());
    let mut single = SinglePath::new(Pipeline::new().with(TopK::new(700).unwrap()), [14, 15]);
    let mut sampler = Categorical::new();
    let mut rngs = [rng_from_seed(14), rng_from_seed(15)];
    let mut out = Vec::new();
    for step in 0..20_000 {
        pipeline.sample_batch(&contexts, batch.view(), &mut sampler, &mut rngs, &mut out).unwrap();
        for (r, s) in out.iter().enumerate() {
            assert_eq!(*s, single.sample(r, &rows[r]), "row {r}, step {step}");
        }
    }
}

/// The heaviest checks, run by `.ci/run` with `--features slow-tests`.
#[cfg(feature = "slow-tests")]
mod slow {
    use decoding::processors::Temperature;

    use super::*;

    #[test]
    fn temperature_then_categorical_draws_from_the_tempered_softmax() {
        let t = || Pipeline::new().with(Temperature::new(0.7).unwrap());
        let probs = check_path("temperature 0.7", t(), t(), 3);
        // Independent check of the law: softmax(x / 0.7).
        let tempered: Vec<f32> = base_row().iter().map(|&x| x / 0.7).collect();
        let want = softmax(&tempered);
        assert!(probs.iter().zip(&want).all(|(a, b)| (a - b).abs() < 1e-9));
    }

    #[test]
    fn a_chain_of_truncations_then_categorical_draws_from_the_survivors() {
        let c = || {
            Pipeline::new()
                .with(Temperature::new(1.3).unwrap())
                .with(TopK::new(800).unwrap())
                .with(TopP::new(0.95).unwrap())
                .with(MinP::new(0.1).unwrap())
        };
        let probs = check_path("chain", c(), c(), 11);
        assert!(kept(&probs).len() > 300);
    }

    #[test]
    fn a_two_percent_bias_is_detected() {
        // q = p (1 ± 0.02), + on the tokens of even id, − on odd ones (each
        // half carries about half the mass; q is renormalized by the sampler).
        let row = base_row();
        let p = softmax(&row);
        let biased: Vec<f32> = row
            .iter()
            .enumerate()
            .map(|(i, &x)| x + if i % 2 == 0 { 1.02f32.ln() } else { 0.98f32.ln() })
            .collect();
        let counts = draw_processed(&mut Pipeline::new(), &biased, N, 2);
        let (stat, df) = chi2(&counts, &p);
        assert!(stat > chi2_critical(df), "a 2% bias went unnoticed: chi2 = {stat:.1}, df = {df}");
    }

    #[cfg(feature = "ndarray")]
    #[test]
    fn batch_draws_equal_single_draws_and_follow_the_law() {
        // Two rows of different laws in one batch: every draw equals the one
        // the single-row path makes with the same seed, and each row's draws
        // follow its law.
        let (rows, batch) = two_laws();
        let contexts = [Context::empty(); 2];
        let mut pipeline = Pipeline::new().with(Temperature::new(0.9).unwrap());
        let twin = Pipeline::new().with(Temperature::new(0.9).unwrap());
        let mut single = SinglePath::new(twin, [12, 13]);
        let mut sampler = Categorical::new();
        let mut rngs = [rng_from_seed(12), rng_from_seed(13)];
        let mut counts = vec![vec![0u64; V]; 2];
        let mut out = Vec::new();
        for step in 0..N {
            pipeline
                .sample_batch(&contexts, batch.view(), &mut sampler, &mut rngs, &mut out)
                .unwrap();
            for (r, s) in out.iter().enumerate() {
                counts[r][s.token as usize] += 1;
                if step % 64 == 0 {
                    assert_eq!(*s, single.sample(r, &rows[r]), "row {r}, step {step}");
                } else {
                    single.skip(r);
                }
            }
        }
        for (r, row) in rows.iter().enumerate() {
            let probs = softmax(&processed(&mut single.pipeline, row));
            check(&format!("batch row {r}"), &counts[r], &probs);
        }
    }

    /// Draws `n` times from `v` equal logits and checks the law in bins of
    /// at least 20 expected draws, the first and last 64 tokens, and the
    /// last token alone. An inverse CDF over an f32 running sum of the
    /// probabilities (which ends near 0.9983 for 151936 tokens) never
    /// reaches the last tokens of a 50257-token row and gives the last
    /// token of a 151936-token row about 1670 draws in 10⁶.
    fn flat_tail(v: usize, n: u64, seed: u64) {
        let mut row = vec![0.0f32; v];
        let mut live = Vec::new();
        let scores = Scores::new(&mut row, &mut live);
        let mut rng = rng_from_seed(seed);
        let mut sampler = Categorical::new();
        let mut counts = vec![0u64; v];
        for _ in 0..n {
            counts[sampler.sample(&scores, &mut rng).unwrap().token as usize] += 1;
        }
        let probs = vec![1.0 / v as f64; v];
        let (stat, df) = chi2(&counts, &probs);
        assert!(stat < chi2_critical(df), "V = {v}: chi2 = {stat:.1}, df = {df}");
        let p = 64.0 / v as f64;
        let (mean, sd) = (n as f64 * p, (n as f64 * p * (1.0 - p)).sqrt());
        for (what, range) in [("first", 0..64), ("last", v - 64..v)] {
            let c: u64 = counts[range].iter().sum();
            assert!(
                (c as f64 - mean).abs() <= Z_TWO_SIDED * sd,
                "V = {v}: the {what} 64 tokens drew {c}, expected {mean:.1} ± {sd:.1}"
            );
        }
        // The last token: at most the Poisson upper 1e-6 quantile.
        let lambda = n as f64 / v as f64;
        let (mut k, mut term, mut below) = (0u64, (-lambda).exp(), 0.0);
        while 1.0 - below - term > 1e-6 {
            below += term;
            k += 1;
            term *= lambda / k as f64;
        }
        assert!(counts[v - 1] <= k, "V = {v}: the last token drew {}, at most {k}", counts[v - 1]);
    }

    #[cfg(feature = "rayon")]
    #[test]
    fn parallel_batch_draws_equal_single_draws_seed_for_seed() {
        // The rayon path gives every row the draw of the single-row path
        // with the same seed, whatever the scheduling.
        let rows: Vec<Vec<f32>> = (0..8)
            .map(|r| base_row().iter().map(|&x| x * (0.5 + r as f32 * 0.25)).collect())
            .collect();
        let batch = ndarray::Array2::from_shape_fn((8, V), |(r, c)| rows[r][c]);
        let contexts = [Context::empty(); 8];
        let mut pipelines: Vec<Pipeline> =
            (0..8).map(|_| Pipeline::new().with(TopP::new(0.9).unwrap())).collect();
        let mut samplers = vec![Categorical::new(); 8];
        let mut rngs: Vec<_> = (0..8).map(|r| rng_from_seed(100 + r)).collect();
        let mut single = SinglePath::new(Pipeline::new().with(TopP::new(0.9).unwrap()), 100..108);
        let mut out = Vec::new();
        for step in 0..5_000 {
            Pipeline::sample_batch_par(
                &mut pipelines,
                &contexts,
                batch.view(),
                &mut samplers,
                &mut rngs,
                &mut out,
            )
            .unwrap();
            for (r, s) in out.iter().enumerate() {
                assert_eq!(*s, single.sample(r, &rows[r]), "row {r}, step {step}");
            }
        }
    }

    #[test]
    fn the_tail_of_a_50257_token_row_is_reachable() {
        flat_tail(50_257, 40_000, 16);
    }

    #[test]
    fn the_tail_of_a_151936_token_row_is_reachable() {
        flat_tail(151_936, 20_000, 17);
    }
}
