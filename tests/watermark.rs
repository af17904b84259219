//! The watermark: green lists and detector scores equal transformers' own
//! (fixtures from `scripts/hf_watermark_fixtures.py`), the processor's
//! invariants, and the detector's separation of watermarked from plain
//! sampled text.

use decoding::processors::Watermark;
use decoding::sampler::Categorical;
use decoding::watermark::{SeedingScheme, WatermarkConfig, WatermarkDetector};
use decoding::{
    Context, Error, GenerateOptions, Generator, LanguageModel, LogitsProcessor, Scores, TokenId,
};
use proptest::prelude::*;
use serde_json::Value;

const NEG: f32 = f32::NEG_INFINITY;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/hf_watermark/watermark.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn config_of(case: &Value) -> WatermarkConfig {
    WatermarkConfig::new(case["vocab_size"].as_u64().unwrap() as usize)
        .unwrap()
        .with_greenlist_ratio(case["greenlist_ratio"].as_f64().unwrap())
        .unwrap()
        .with_bias(case["bias"].as_f64().unwrap() as f32)
        .unwrap()
        .with_hashing_key(case["hashing_key"].as_u64().unwrap())
        .with_seeding_scheme(
            SeedingScheme::from_name(case["seeding_scheme"].as_str().unwrap()).unwrap(),
        )
        .with_context_width(case["context_width"].as_u64().unwrap() as usize)
        .unwrap()
}

fn ids(v: &Value) -> Vec<TokenId> {
    v.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as TokenId).collect()
}

/// The fixture's row: `float32(((i * 7919) % V) / V)`.
fn row(vocab: usize) -> Vec<f32> {
    (0..vocab).map(|i| (((i * 7919) % vocab) as f64 / vocab as f64) as f32).collect()
}

fn process(watermark: &mut Watermark, history: &[TokenId], row: &mut [f32]) -> Result<(), Error> {
    let mut live = Vec::new();
    let ctx = Context::new(history, history.len())?;
    watermark.process(&ctx, &mut Scores::new(row, &mut live))
}

#[test]
fn green_lists_are_transformers_own() {
    let fixture = fixture();
    let mut checked = 0;
    for case in fixture["cases"].as_array().unwrap() {
        let config = config_of(case);
        let vocab = config.vocab_size();
        let base = row(vocab);
        let mut watermark = Watermark::new(config.clone());
        for p in case["processor"].as_array().unwrap() {
            let history = ids(&p["history"]);
            let mut out = base.clone();
            process(&mut watermark, &history, &mut out).unwrap();
            let changed: Vec<TokenId> =
                (0..vocab).filter(|&i| out[i] != base[i]).map(|i| i as TokenId).collect();
            assert_eq!(changed, ids(&p["green"]), "{config:?}, history {history:?}");
            for &i in &changed {
                assert_eq!(out[i as usize], base[i as usize] + config.bias());
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked}");
}

#[test]
fn detector_scores_are_transformers_own() {
    let fixture = fixture();
    let mut checked = 0;
    for case in fixture["cases"].as_array().unwrap() {
        let config = config_of(case);
        let bos = case["bos_token_id"].as_u64().unwrap() as TokenId;
        for d in case["detector"].as_array().unwrap() {
            let tokens = ids(&d["tokens"]);
            let detector = WatermarkDetector::new(config.clone())
                .with_bos_token(Some(bos))
                .with_ignore_repeated_ngrams(d["ignore_repeated_ngrams"].as_bool().unwrap());
            let got = detector.detect(&tokens).unwrap();
            let what = format!("{config:?}, {tokens:?}");
            assert_eq!(got.tokens_scored as u64, d["tokens_scored"].as_u64().unwrap(), "{what}");
            assert_eq!(got.green_tokens as u64, d["green_tokens"].as_u64().unwrap(), "{what}");
            let z = d["z_score"].as_f64().unwrap();
            assert!((got.z_score - z).abs() <= 1e-12 * z.abs().max(1.0), "{what}: {got:?} vs {z}");
            let p = d["p_value"].as_f64().unwrap();
            assert!((got.p_value - p).abs() <= 1e-12 * p.max(1e-300), "{what}: {got:?} vs {p}");
            checked += 1;
        }
    }
    assert!(checked >= 100, "{checked}");
}

#[test]
fn parameters_are_checked() {
    let bad = |r: Result<WatermarkConfig, Error>, want: &str| match r {
        Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, want),
        other => panic!("{other:?}"),
    };
    bad(WatermarkConfig::new(0), "vocab_size");
    for gamma in [0.0, 1.0, -0.5, f64::NAN, 1.5] {
        bad(WatermarkConfig::new(10).unwrap().with_greenlist_ratio(gamma), "greenlist_ratio");
    }
    for delta in [f32::NAN, f32::INFINITY, NEG] {
        bad(WatermarkConfig::new(10).unwrap().with_bias(delta), "bias");
    }
    bad(WatermarkConfig::new(10).unwrap().with_context_width(0), "context_width");
    assert!(matches!(
        SeedingScheme::from_name("minhash"),
        Err(Error::InvalidParameter { name: "seeding_scheme", .. })
    ));
    // A row of another size is an error, and the row is untouched.
    let mut watermark = Watermark::new(WatermarkConfig::new(10).unwrap());
    let mut short = vec![0.0; 9];
    assert_eq!(
        process(&mut watermark, &[1], &mut short),
        Err(Error::VocabSizeMismatch { expected: 10, actual: 9 })
    );
    assert!(short.iter().all(|&x| x == 0.0));
    // The detector: too short a text, an id past the vocabulary.
    let config = WatermarkConfig::new(10).unwrap().with_context_width(2).unwrap();
    let detector = WatermarkDetector::new(config).with_bos_token(Some(9));
    assert!(matches!(
        detector.detect(&[9, 1, 2]),
        Err(Error::InvalidParameter { name: "tokens", .. })
    ));
    assert_eq!(
        detector.detect(&[1, 2, 10]),
        Err(Error::TokenOutOfRange { id: 10, vocab_size: 10 })
    );
}

fn scheme_strategy() -> impl Strategy<Value = SeedingScheme> {
    prop_oneof![Just(SeedingScheme::LeftHash), Just(SeedingScheme::SelfHash)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn the_processor_only_adds_delta_and_the_detector_agrees_with_it(
        vocab in 2usize..300,
        gamma in 0.05f64..0.95,
        delta in -4.0f32..8.0,
        key in any::<u64>(),
        scheme in scheme_strategy(),
        width in 1usize..4,
        history in prop::collection::vec(0u32..1000, 0..8),
        cells in prop::collection::vec(prop_oneof![Just(NEG), -3.0f32..3.0, Just(0.5f32)], 2..300),
    ) {
        let history: Vec<TokenId> = history.iter().map(|&t| t % vocab as TokenId).collect();
        let base: Vec<f32> = (0..vocab).map(|i| cells[i % cells.len()]).collect();
        prop_assume!(base.iter().any(|x| x.is_finite()) && delta.abs() > 1e-3);
        let config = WatermarkConfig::new(vocab).unwrap()
            .with_greenlist_ratio(gamma).unwrap()
            .with_bias(delta).unwrap()
            .with_hashing_key(key)
            .with_seeding_scheme(scheme)
            .with_context_width(width).unwrap();
        let mut watermark = Watermark::new(config.clone());
        let mut out = base.clone();
        process(&mut watermark, &history, &mut out).unwrap();
        let green_size = config.greenlist_size();
        let mut biased = 0;
        for i in 0..vocab {
            if base[i] == NEG {
                prop_assert_eq!(out[i], NEG);
            } else if out[i] != base[i] {
                prop_assert_eq!(out[i], base[i] + delta);
                biased += 1;
            }
        }
        if history.len() < width {
            prop_assert!(out == base);
        } else if scheme == SeedingScheme::LeftHash {
            let finite_green = biased;
            prop_assert!(finite_green <= green_size);
        } else {
            prop_assert!(biased <= 40);
        }
        // The detector sees the same lists: a token the processor biased
        // (lefthash: green after the history) scores green after it.
        if scheme == SeedingScheme::LeftHash && history.len() >= width {
            let detector = WatermarkDetector::new(config.clone());
            let mut text = history[history.len() - width..].to_vec();
            for i in 0..vocab {
                if base[i] != NEG {
                    text.push(i as TokenId);
                    let d = detector.detect(&text).unwrap();
                    prop_assert_eq!(d.tokens_scored, 1);
                    prop_assert_eq!(d.green_tokens == 1, out[i] != base[i]);
                    text.pop();
                }
            }
        }
    }

    #[test]
    fn the_z_score_is_the_binomial_test_on_the_green_count(
        tokens in prop::collection::vec(0u32..50, 2..60),
        gamma in 0.05f64..0.95,
        scheme in scheme_strategy(),
        ignore in any::<bool>(),
    ) {
        let config = WatermarkConfig::new(50).unwrap()
            .with_greenlist_ratio(gamma).unwrap()
            .with_seeding_scheme(scheme);
        let d = WatermarkDetector::new(config).with_ignore_repeated_ngrams(ignore).detect(&tokens).unwrap();
        let n = if scheme == SeedingScheme::LeftHash { 2 } else { 1 };
        let mut windows: Vec<&[TokenId]> = tokens.windows(n).collect();
        if ignore {
            windows.sort();
            windows.dedup();
        }
        prop_assert_eq!(d.tokens_scored, windows.len());
        let t = d.tokens_scored as f64;
        let z = (d.green_tokens as f64 - gamma * t) / (t * gamma * (1.0 - gamma)).sqrt();
        prop_assert!((d.z_score - z).abs() < 1e-12);
        prop_assert!((d.green_fraction - d.green_tokens as f64 / t).abs() < 1e-15);
        prop_assert!((0.0..=1.0).contains(&d.p_value));
    }
}

#[test]
fn p_values_follow_the_normal_tail() {
    // z = 0: one half; z = 1.6448536269514722: 5%; z = 4: 3.167e-5.
    let config = WatermarkConfig::new(4).unwrap().with_greenlist_ratio(0.5).unwrap();
    let detector = WatermarkDetector::new(config.clone());
    for tokens in [[0u32, 1, 2, 3, 0, 1, 2, 3, 0].as_slice(), &[1, 1, 1, 1, 1, 1, 1]] {
        let d = detector.detect(tokens).unwrap();
        let want = 0.5 * erfc_series(d.z_score / std::f64::consts::SQRT_2);
        assert!((d.p_value - want).abs() < 1e-12, "{d:?} vs {want}");
    }
}

/// `erfc` by its Taylor series (for small `|x|`), as a reference.
fn erfc_series(x: f64) -> f64 {
    let mut term = x;
    let mut sum = x;
    for n in 1..200 {
        term *= -x * x / n as f64;
        sum += term / (2 * n + 1) as f64;
    }
    1.0 - 2.0 / std::f64::consts::PI.sqrt() * sum
}

/// A model with a fixed, moderately flat row after each token (a hash of
/// the last token), so that plain sampling spreads over many tokens.
#[derive(Debug)]
struct Hashed {
    vocab: usize,
    last: TokenId,
}

impl LanguageModel for Hashed {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        _: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.last = *tokens.last().unwrap_or(&self.last);
        for (i, x) in logits.iter_mut().enumerate() {
            let h = (i as u64 ^ (u64::from(self.last) << 20)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            *x = (h >> 40) as f32 / (1u64 << 24) as f32 * 6.0;
        }
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.last = 0;
        Ok(())
    }
}

#[test]
fn watermarked_generations_score_high_and_plain_ones_do_not() {
    for scheme in [SeedingScheme::LeftHash, SeedingScheme::SelfHash] {
        let config = WatermarkConfig::new(500).unwrap().with_seeding_scheme(scheme);
        let detector = WatermarkDetector::new(config.clone());
        let (mut marked, mut plain) = (Vec::new(), Vec::new());
        for seed in 0..40 {
            let options = GenerateOptions::builder(100).seed(seed).build().unwrap();
            let mut g =
                Generator::new(Watermark::new(config.clone()), Categorical::new(), options.clone());
            let out = g.generate(&mut Hashed { vocab: 500, last: 0 }, &[seed as TokenId]).unwrap();
            marked.push(detector.detect(&out.tokens).unwrap().z_score);
            let mut g = Generator::new((), Categorical::new(), options);
            let out = g.generate(&mut Hashed { vocab: 500, last: 0 }, &[seed as TokenId]).unwrap();
            plain.push(detector.detect(&out.tokens).unwrap().z_score);
        }
        // Every watermarked text scores above every plain one, and above
        // z = 4 (a false-positive rate of 3e-5), which no plain one reaches.
        let lowest = marked.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = plain.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(lowest > 4.0 && highest < 4.0, "{scheme:?}: {marked:?} vs {plain:?}");
        let mean = plain.iter().sum::<f64>() / plain.len() as f64;
        assert!(mean.abs() < 1.0, "{scheme:?}: plain mean z {mean}");
    }
}
