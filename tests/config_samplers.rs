//! llama.cpp's newer samplers in the configuration layer: top-nσ, XTC,
//! dynamic temperature, Mirostat 2.0 and DRY, as `LlamaCppSampling` and
//! `OpenAiParams` (llama-server's extra request fields) map them.
//!
//! Each mapping is checked through what the built pipeline does to
//! hand-made rows whose results are worked out in the comments, not only
//! through the stage labels.

#![cfg(feature = "serde")]

use decoding::config::{GenerationConfig, LlamaCppSampling, LlamaCppStage, OpenAiParams};
use decoding::processors::{Dry, DynamicTemperature, MinP, TopK, TopP, Xtc};
use decoding::{Context, Error, Pipeline, TokenId};

/// The pipeline of a preset.
fn pipeline(preset: &LlamaCppSampling) -> Pipeline {
    preset.build().unwrap().into_parts().0
}

/// `row` after one step of `pipeline` with `history`.
fn run(pipeline: &mut Pipeline, history: &[TokenId], row: &[f32]) -> Vec<f32> {
    let mut out = row.to_vec();
    pipeline.process(&Context::prompt_only(history), &mut out).unwrap();
    out
}

/// The ids left finite.
fn kept(row: &[f32]) -> Vec<usize> {
    (0..row.len()).filter(|&i| row[i].is_finite()).collect()
}

/// Natural logs of probabilities: a row whose softmax is `probs`.
fn logits(probs: &[f32]) -> Vec<f32> {
    probs.iter().map(|p| p.ln()).collect()
}

/// A preset running only `samplers`, everything else at llama.cpp's defaults.
fn only(samplers: &str) -> LlamaCppSampling {
    LlamaCppSampling {
        samplers: LlamaCppStage::parse_list(samplers).unwrap(),
        ..LlamaCppSampling::default()
    }
}

fn invalid_name<T: std::fmt::Debug>(r: Result<T, Error>) -> (&'static str, &'static str) {
    match r {
        Err(Error::InvalidParameter { name, expected, .. }) => (name, expected),
        other => panic!("expected an invalid parameter, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Defaults and names.
// ---------------------------------------------------------------------------

#[test]
fn defaults_are_llama_cpps() {
    // common_params_sampling of llama.cpp (common/common.h).
    let d = LlamaCppSampling::default();
    assert_eq!(d.top_n_sigma, -1.0);
    assert_eq!((d.xtc_probability, d.xtc_threshold), (0.0, 0.1));
    assert_eq!((d.dynatemp_range, d.dynatemp_exponent), (0.0, 1.0));
    assert_eq!((d.mirostat, d.mirostat_tau, d.mirostat_eta), (0, 5.0, 0.1));
    assert_eq!((d.dry_multiplier, d.dry_base, d.dry_allowed_length), (0.0, 1.75, 2));
    assert_eq!(d.dry_penalty_last_n, 64);
    assert_eq!(d.dry_sequence_breakers, ["\n", ":", "\"", "*"]);
    assert_eq!(d.dry_sequence_breaker_ids, None);
    // llama.cpp's `--samplers` default, written as its help text prints it.
    let order = LlamaCppStage::parse_list(
        "penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature",
    )
    .unwrap();
    assert_eq!(d.samplers, order);
    assert_eq!(LlamaCppStage::DEFAULT_ORDER.to_vec(), order);
    // All five are off by default: the default chain is unchanged.
    assert_eq!(
        d.build().unwrap().stages(),
        ["TopK(k=40, exact)", "TopP(0.95)", "MinP(0.05)", "Temperature(0.8)"]
    );
    // An OpenAI-style request without llama-server's fields builds as before.
    let plain = OpenAiParams { temperature: Some(0.5), ..Default::default() };
    assert_eq!(plain.build(&GenerationConfig::default()).unwrap().stages(), ["Temperature(0.5)"]);
}

#[test]
fn stage_names_are_llama_cpps() {
    for stage in LlamaCppStage::DEFAULT_ORDER {
        assert_eq!(stage.name().parse::<LlamaCppStage>().unwrap(), stage);
        assert_eq!(stage.to_string(), stage.name());
    }
    assert_eq!(
        LlamaCppStage::parse_list("dry top-n-sigma,xtc").unwrap(),
        [LlamaCppStage::Dry, LlamaCppStage::TopNSigma, LlamaCppStage::Xtc]
    );
    let (name, expected) = invalid_name("mirostat".parse::<LlamaCppStage>());
    assert_eq!(name, "samplers");
    assert!(expected.contains("top_n_sigma") && expected.contains("xtc"), "{expected}");
}

// ---------------------------------------------------------------------------
// Each sampler, through its effect on a row.
// ---------------------------------------------------------------------------

#[test]
fn top_n_sigma_keeps_scores_within_n_sigma_of_the_maximum() {
    // 0..=4: mean 2, population σ = sqrt(2) = 1.414; n = 1 keeps x >= 2.586.
    let row = [0.0, 1.0, 2.0, 3.0, 4.0];
    let preset = LlamaCppSampling { top_n_sigma: 1.0, ..only("top_n_sigma") };
    assert_eq!(preset.build().unwrap().stages(), ["TopNSigma(1)"]);
    assert_eq!(kept(&run(&mut pipeline(&preset), &[], &row)), [3, 4]);
    // n = 2 keeps x >= 1.172.
    let preset = LlamaCppSampling { top_n_sigma: 2.0, ..preset };
    assert_eq!(kept(&run(&mut pipeline(&preset), &[], &row)), [2, 3, 4]);
    // <= 0 is off (llama.cpp's -1 default, and 0).
    for n in [-1.0, 0.0] {
        let preset = LlamaCppSampling { top_n_sigma: n, ..preset.clone() };
        assert!(preset.build().unwrap().stages().is_empty());
    }
}

#[test]
fn xtc_removes_the_top_choices_but_the_least_likely() {
    // p = 0.5, 0.3, 0.15, 0.05, threshold 0.1: tokens 0, 1, 2 reach it and
    // the least likely of them (2) stays, with the tail (3).
    let row = logits(&[0.5, 0.3, 0.15, 0.05]);
    let preset = LlamaCppSampling { xtc_probability: 1.0, xtc_threshold: 0.1, ..only("xtc") };
    assert_eq!(preset.build().unwrap().stages(), ["Xtc(probability=1, threshold=0.1)"]);
    assert_eq!(kept(&run(&mut pipeline(&preset), &[], &row)), [2, 3]);
    // min_keep 3: the removal would leave 2 tokens, so it does not happen.
    let keep3 = LlamaCppSampling { min_keep: 3, ..preset.clone() };
    assert_eq!(kept(&run(&mut pipeline(&keep3), &[], &row)), [0, 1, 2, 3]);
    // Off: probability 0 (the default), or a threshold above 0.5.
    for off in [
        LlamaCppSampling { xtc_probability: 0.0, ..preset.clone() },
        LlamaCppSampling { xtc_threshold: 0.6, ..preset.clone() },
    ] {
        assert!(off.build().unwrap().stages().is_empty());
    }
}

#[test]
fn xtc_draws_from_the_seed() {
    // Probability 0.5: whether a step removes depends on XTC's generator,
    // seeded with the preset's seed; the same seed gives the same pattern.
    let row = logits(&[0.5, 0.3, 0.15, 0.05]);
    let pattern = |seed: u64| -> Vec<bool> {
        let preset = LlamaCppSampling {
            xtc_probability: 0.5,
            xtc_threshold: 0.1,
            seed: Some(seed),
            ..only("xtc")
        };
        let mut p = pipeline(&preset);
        (0..64).map(|_| kept(&run(&mut p, &[], &row)).len() < 4).collect()
    };
    let a = pattern(7);
    assert_eq!(a, pattern(7));
    assert_ne!(a, pattern(8), "64 fair draws agreeing by chance: p = 2^-64");
    let hits = a.iter().filter(|&&x| x).count();
    assert!((12..=52).contains(&hits), "{hits} of 64 at p = 0.5");
}

#[test]
fn dynatemp_is_the_temperature_stage() {
    // A uniform row has H = H_max, so the temperature is T + δ = 2.
    let preset = LlamaCppSampling { temperature: 1.5, dynatemp_range: 0.5, ..only("temperature") };
    assert_eq!(
        preset.build().unwrap().stages(),
        ["DynamicTemperature(temp=1.5, range=0.5, exponent=1)"]
    );
    assert_eq!(run(&mut pipeline(&preset), &[], &[1.0; 4]), [0.5; 4]);
    // One dominant token (H ≈ 0): T - δ = 1, the row is unchanged.
    let peaked = [0.0, -200.0, -200.0];
    assert_eq!(run(&mut pipeline(&preset), &[], &peaked), peaked);
    // Range 0: a plain temperature of 1.5.
    let plain = LlamaCppSampling { dynatemp_range: 0.0, ..preset.clone() };
    assert_eq!(plain.build().unwrap().stages(), ["Temperature(1.5)"]);
    assert_eq!(run(&mut pipeline(&plain), &[], &[3.0, 1.5]), [2.0, 1.0]);
    // Temperature 0 with a range samples in [0, δ] (llama.cpp's temp_ext).
    let zero = LlamaCppSampling { temperature: 0.0, ..preset.clone() };
    assert!(!zero.build().unwrap().is_greedy());
    assert!(LlamaCppSampling { temperature: 0.0, ..plain }.build().unwrap().is_greedy());
}

#[test]
fn mirostat_2_replaces_the_chain() {
    // τ = 1: μ starts at 2 bits, so p >= 1/4 survives: p = 0.5 (1 bit) and
    // 0.3 (1.74 bits), not 0.15 (2.74 bits).
    let row = logits(&[0.5, 0.3, 0.15, 0.05]);
    let preset = LlamaCppSampling {
        mirostat: 2,
        mirostat_tau: 1.0,
        mirostat_eta: 1.0,
        temperature: 1.0,
        top_k: 1,
        repeat_penalty: 2.0,
        dry_multiplier: 0.8,
        dynatemp_range: 0.5,
        ..LlamaCppSampling::default()
    };
    // Top-k 1, the penalties, DRY and the dynamic range are not used.
    assert_eq!(preset.build().unwrap().stages(), ["MirostatV2(tau=1, eta=1)"]);
    let mut p = pipeline(&preset);
    assert_eq!(kept(&run(&mut p, &[0], &row)), [0, 1]);
    // Token 1 chosen: q = 0.3 / 0.8, surprise log2(8/3) = 1.415 bits, so
    // μ = 2 - 1 · (1.415 - 1) = 1.585: only p >= 2^-1.585 = 1/3 survives.
    p.accept(1);
    assert_eq!(kept(&run(&mut p, &[0], &row)), [0]);
    // A plain temperature comes first.
    let hot = LlamaCppSampling { temperature: 2.0, ..preset };
    assert_eq!(hot.build().unwrap().stages(), ["Temperature(2)", "MirostatV2(tau=1, eta=1)"]);
}

#[test]
fn mirostat_1_and_other_versions_are_typed_errors() {
    let (name, expected) =
        invalid_name(LlamaCppSampling { mirostat: 1, ..Default::default() }.build());
    assert_eq!(name, "mirostat");
    assert!(expected.contains("Mirostat 1.0 is not implemented"), "{expected}");
    for m in [-1, 3] {
        let (name, _) =
            invalid_name(LlamaCppSampling { mirostat: m, ..Default::default() }.build());
        assert_eq!(name, "mirostat");
    }
    let (name, expected) = invalid_name(
        OpenAiParams::from_json(r#"{"mirostat": 1}"#)
            .and_then(|p| p.build(&GenerationConfig::default())),
    );
    assert_eq!(name, "mirostat");
    assert!(expected.contains("not implemented"));
}

/// A toy vocabulary: the ids whose text contains the breaker.
fn containing(vocab: &'static [&'static str]) -> impl FnMut(&str) -> Vec<TokenId> {
    move |breaker| {
        (0..vocab.len() as TokenId).filter(|&id| vocab[id as usize].contains(breaker)).collect()
    }
}

const VOCAB: &[&str] = &["\n", "a", "b", "c", "d", ":\n"];

#[test]
fn dry_penalizes_repetitions_and_respects_breakers() {
    let dry = LlamaCppSampling { dry_multiplier: 1.0, dry_base: 2.0, ..only("dry") };
    // "1 2 3 4 1 2": the suffix "1 2" was followed by 3 (L = 2 = allowed
    // length): 3 loses 1 · 2^0 = 1.
    let preset = dry.clone().resolve_dry_breakers(containing(VOCAB));
    // "\n" is in tokens 0 and 5, ":" in 5; '"' and '*' in none.
    assert_eq!(preset.dry_sequence_breaker_ids, Some(vec![0, 5]));
    assert_eq!(
        preset.build().unwrap().stages(),
        ["Dry(multiplier=1, base=2, allowed_length=2, last_n=64, breakers=2)"]
    );
    let out = run(&mut pipeline(&preset), &[1, 2, 3, 4, 1, 2], &[0.0; 6]);
    assert_eq!(out, [0.0, 0.0, 0.0, -1.0, 0.0, 0.0]);
    // "1 0 2 3 1 0 2": without breakers "1 0 2" repeats (L = 3), so 3 loses
    // 2^1 = 2; with token 0 ("\n") a breaker, only "2" is after it (L = 1).
    let history = [1, 0, 2, 3, 1, 0, 2];
    let none = LlamaCppSampling { dry_sequence_breakers: vec![], ..dry.clone() };
    assert_eq!(run(&mut pipeline(&none), &history, &[0.0; 6])[3], -2.0);
    assert_eq!(run(&mut pipeline(&preset), &history, &[0.0; 6]), [0.0; 6]);
    // Pre-tokenized breakers work the same.
    let given = LlamaCppSampling { dry_sequence_breaker_ids: Some(vec![0]), ..dry.clone() };
    assert_eq!(run(&mut pipeline(&given), &history, &[0.0; 6]), [0.0; 6]);
}

#[test]
fn dry_needs_token_ids_for_its_breaker_strings() {
    let dry = LlamaCppSampling { dry_multiplier: 0.8, ..LlamaCppSampling::default() };
    let (name, expected) = invalid_name(dry.build());
    assert_eq!(name, "dry_sequence_breakers");
    assert!(expected.contains("resolve_dry_breakers"), "{expected}");
    // Off, the strings need nothing.
    assert!(LlamaCppSampling::default().build().is_ok());
}

#[test]
fn the_dry_window_and_the_off_values() {
    let dry = LlamaCppSampling {
        dry_multiplier: 1.0,
        dry_base: 2.0,
        dry_sequence_breaker_ids: Some(vec![]),
        ..only("dry")
    };
    let history = [1, 2, 3, 4, 1, 2];
    // The last 4 tokens "3 4 1 2" hold no earlier "1 2".
    let window = LlamaCppSampling { dry_penalty_last_n: 4, ..dry.clone() };
    assert_eq!(run(&mut pipeline(&window), &history, &[0.0; 5]), [0.0; 5]);
    // -1 is the whole history.
    let all = LlamaCppSampling { dry_penalty_last_n: -1, ..dry.clone() };
    assert!(all.build().unwrap().stages()[0].contains("last_n=all"));
    assert_eq!(run(&mut pipeline(&all), &history, &[0.0; 5])[3], -1.0);
    // Off: a window of 0, a multiplier of 0, a base below 1 (llama.cpp's gate).
    for off in [
        LlamaCppSampling { dry_penalty_last_n: 0, ..dry.clone() },
        LlamaCppSampling { dry_multiplier: 0.0, ..dry.clone() },
        LlamaCppSampling { dry_base: 0.0, ..dry.clone() },
    ] {
        assert!(off.build().unwrap().stages().is_empty(), "{off:?}");
    }
}

#[test]
fn out_of_range_values_are_typed_errors() {
    let d = LlamaCppSampling::default;
    for (preset, field) in [
        (LlamaCppSampling { top_n_sigma: f32::NAN, ..d() }, "top_n_sigma"),
        (LlamaCppSampling { top_n_sigma: f32::INFINITY, ..d() }, "top_n_sigma"),
        (LlamaCppSampling { xtc_probability: 1.5, ..d() }, "xtc_probability"),
        (LlamaCppSampling { xtc_probability: -0.1, ..d() }, "xtc_probability"),
        (LlamaCppSampling { xtc_threshold: -0.1, ..d() }, "xtc_threshold"),
        (LlamaCppSampling { xtc_threshold: f32::NAN, ..d() }, "xtc_threshold"),
        (LlamaCppSampling { dynatemp_range: -0.5, ..d() }, "dynatemp_range"),
        (LlamaCppSampling { dynatemp_exponent: f32::NAN, ..d() }, "dynatemp_exponent"),
        (LlamaCppSampling { mirostat_tau: -1.0, ..d() }, "mirostat_tau"),
        (LlamaCppSampling { mirostat_eta: f32::INFINITY, ..d() }, "mirostat_eta"),
        (LlamaCppSampling { dry_multiplier: -1.0, ..d() }, "dry_multiplier"),
        (LlamaCppSampling { dry_base: f32::NAN, ..d() }, "dry_base"),
        (LlamaCppSampling { dry_base: f32::INFINITY, ..d() }, "dry_base"),
        (LlamaCppSampling { dry_allowed_length: 0, ..d() }, "dry_allowed_length"),
        (LlamaCppSampling { dry_penalty_last_n: -2, ..d() }, "dry_penalty_last_n"),
    ] {
        assert_eq!(invalid_name(preset.build()).0, field, "{preset:?}");
    }
}

// ---------------------------------------------------------------------------
// Order.
// ---------------------------------------------------------------------------

#[test]
fn the_order_of_samplers_is_respected() {
    // Row 0..=4, top-nσ n = 1 and XTC (probability 1, threshold 0.1):
    // - top-nσ first keeps {3, 4} (x >= 2.586); their probabilities 0.269 and
    //   0.731 both reach 0.1, so XTC keeps only the less likely: {3}.
    // - XTC first: the softmax is 0.012, 0.032, 0.086, 0.234, 0.636; {3, 4}
    //   reach 0.1, 4 goes: {0, 1, 2, 3}. Over those, mean 1.5, σ = 1.118,
    //   top-nσ keeps x >= 1.882: {2, 3}.
    let row = [0.0, 1.0, 2.0, 3.0, 4.0];
    let run_order = |samplers: &str| {
        let preset = LlamaCppSampling {
            top_n_sigma: 1.0,
            xtc_probability: 1.0,
            xtc_threshold: 0.1,
            ..only(samplers)
        };
        kept(&run(&mut pipeline(&preset), &[], &row))
    };
    assert_eq!(run_order("top_n_sigma;xtc"), [3]);
    assert_eq!(run_order("xtc;top_n_sigma"), [2, 3]);
}

#[test]
fn the_full_default_order_is_printed() {
    let preset = LlamaCppSampling {
        repeat_penalty: 1.1,
        dry_multiplier: 0.8,
        top_n_sigma: 2.0,
        xtc_probability: 0.5,
        dynatemp_range: 0.3,
        seed: Some(3),
        ..LlamaCppSampling::default()
    }
    .resolve_dry_breakers(containing(VOCAB));
    let plan = preset.build().unwrap();
    assert_eq!(
        plan.to_string(),
        "WindowedPenalties(last_n=64, repeat=1.1, frequency=0, presence=0) \
         -> Dry(multiplier=0.8, base=1.75, allowed_length=2, last_n=64, breakers=2) \
         -> TopNSigma(2) -> TopK(k=40, exact) -> TopP(0.95) -> MinP(0.05) \
         -> Xtc(probability=0.5, threshold=0.1) \
         -> DynamicTemperature(temp=0.8, range=0.3, exponent=1) => Categorical"
    );
}

// ---------------------------------------------------------------------------
// llama-server's extra fields on an OpenAI-style request.
// ---------------------------------------------------------------------------

/// A /v1/completions body as a llama-server client sends it.
const LLAMA_SERVER_REQUEST: &str = r#"{
    "model": "local", "prompt": "Once upon a time", "stream": false,
    "max_tokens": 64, "seed": 42, "temperature": 0.7, "top_k": 40, "top_p": 0.95,
    "min_p": 0.05, "typical_p": 1.0, "repeat_penalty": 1.0, "repeat_last_n": 64,
    "presence_penalty": 0.0, "frequency_penalty": 0.0,
    "dry_multiplier": 0.8, "dry_base": 1.75, "dry_allowed_length": 2,
    "dry_penalty_last_n": -1, "dry_sequence_breakers": ["\n", ":", "\"", "*"],
    "xtc_probability": 0.5, "xtc_threshold": 0.1,
    "dynatemp_range": 0.2, "dynatemp_exponent": 1.0, "top_n_sigma": -1.0,
    "mirostat": 0, "mirostat_tau": 5.0, "mirostat_eta": 0.1,
    "samplers": ["dry", "top_k", "typ_p", "top_p", "min_p", "xtc", "temperature"],
    "cache_prompt": true, "n_probs": 0
}"#;

#[test]
fn a_llama_server_request_round_trips_and_maps_onto_the_pipeline() {
    let request = OpenAiParams::from_json(LLAMA_SERVER_REQUEST).unwrap();
    assert_eq!(request.dry_multiplier, Some(0.8));
    // llama-server's spelling of the repetition penalty.
    assert_eq!(request.repetition_penalty, Some(1.0));
    assert_eq!(request.dry_penalty_last_n, Some(-1));
    assert_eq!(request.dry_sequence_breakers.as_deref().map(<[String]>::len), Some(4));
    assert_eq!((request.xtc_probability, request.xtc_threshold), (Some(0.5), Some(0.1)));
    assert_eq!((request.dynatemp_range, request.dynatemp_exponent), (Some(0.2), Some(1.0)));
    assert_eq!((request.top_n_sigma, request.mirostat), (Some(-1.0), Some(0)));
    assert_eq!((request.mirostat_tau, request.mirostat_eta), (Some(5.0), Some(0.1)));
    // Written and read back: the same parameters.
    let written = serde_json::to_string(&request).unwrap();
    assert_eq!(OpenAiParams::from_json(&written).unwrap(), request);
    let value: serde_json::Value = serde_json::from_str(&written).unwrap();
    assert_eq!(value["dry_sequence_breakers"], serde_json::json!(["\n", ":", "\"", "*"]));
    assert!(value.get("samplers").is_none(), "unmapped fields are not invented");

    let request = request.resolve_dry_breakers(containing(VOCAB));
    let plan = request.build(&GenerationConfig::default()).unwrap();
    assert_eq!(
        plan.stages(),
        [
            "Dry(multiplier=0.8, base=1.75, allowed_length=2, last_n=all, breakers=2)",
            "DynamicTemperature(temp=0.7, range=0.2, exponent=1)",
            "TopK(k=40)",
            "TopP(0.95)",
            "MinP(0.05)",
            "Xtc(probability=0.5, threshold=0.1)",
        ]
    );
    // The same processors composed by hand, in that order, process rows
    // identically (XTC's generator seeded with the request's seed).
    let mut by_hand = Pipeline::new()
        .with(Dry::new(0.8, 1.75, 2).unwrap().sequence_breakers([0, 5]))
        .with(DynamicTemperature::new(0.7, 0.2, 1.0).unwrap())
        .with(TopK::new(40).unwrap())
        .with(TopP::new(0.95).unwrap())
        .with(MinP::new(0.05).unwrap())
        .with(Xtc::new(0.5, 0.1, 42).unwrap());
    let (mut from_plan, _, _) = plan.into_parts();
    let history = [1, 2, 3, 4, 1, 2, 7, 1, 2];
    for step in 0..8u32 {
        let row: Vec<f32> = (0..48u32).map(|i| ((i * 7 + step * 3) % 48) as f32 / 6.0).collect();
        assert_eq!(run(&mut from_plan, &history, &row), run(&mut by_hand, &history, &row));
    }
}

#[test]
fn llama_server_mirostat_replaces_the_truncations() {
    // Qwen's config has repetition_penalty 1.05, top_k 20, top_p 0.8.
    let model = GenerationConfig::from_json(
        r#"{"do_sample": true, "repetition_penalty": 1.05, "temperature": 0.7, "top_k": 20, "top_p": 0.8}"#,
    )
    .unwrap();
    let request =
        OpenAiParams::from_json(r#"{"mirostat": 2, "mirostat_tau": 3, "top_n_sigma": 1}"#).unwrap();
    assert_eq!(
        request.build(&model).unwrap().stages(),
        ["RepetitionPenalty(1.05)", "Temperature(0.7)", "MirostatV2(tau=3, eta=0.1)"]
    );
    // Greedy requests have no sampling stage at all.
    let greedy = OpenAiParams { temperature: Some(0.0), ..request };
    assert_eq!(greedy.build(&model).unwrap().stages(), ["RepetitionPenalty(1.05)"]);
}

#[test]
fn llama_server_fields_out_of_range_are_typed_errors() {
    for (json, field, range) in [
        (r#"{"xtc_probability": 2}"#, "xtc_probability", "[0, 1]"),
        (r#"{"xtc_threshold": -1}"#, "xtc_threshold", "[0, 1]"),
        (r#"{"dynatemp_range": -0.1}"#, "dynatemp_range", ">= 0"),
        (r#"{"mirostat": 2.5}"#, "mirostat", "integer"),
        (r#"{"mirostat_tau": -1}"#, "mirostat_tau", ">= 0"),
        (r#"{"dry_multiplier": "high"}"#, "dry_multiplier", "number"),
        (r#"{"dry_allowed_length": 0}"#, "dry_allowed_length", "at least 1"),
        (r#"{"dry_penalty_last_n": -5}"#, "dry_penalty_last_n", "at least -1"),
        (r#"{"dry_sequence_breakers": []}"#, "dry_sequence_breakers", "non-empty"),
        (r#"{"dry_sequence_breakers": "\n"}"#, "dry_sequence_breakers", "list of strings"),
        (r#"{"dry_sequence_breakers": [1]}"#, "dry_sequence_breakers", "list of strings"),
        (r#"{"top_n_sigma": true}"#, "top_n_sigma", "number"),
    ] {
        let (name, expected) = invalid_name(
            OpenAiParams::from_json(json).and_then(|p| p.build(&GenerationConfig::default())),
        );
        assert_eq!(name, field, "{json}");
        assert!(expected.contains(range), "{json}: {expected}");
    }
}

#[test]
fn a_generation_config_never_builds_them() {
    // transformers has none of the five: the keys are unknown keys there.
    let config = GenerationConfig::from_json(
        r#"{"do_sample": true, "top_n_sigma": 1.0, "xtc_probability": 1.0, "mirostat": 2,
            "dry_multiplier": 0.8, "dynatemp_range": 0.5}"#,
    )
    .unwrap();
    assert_eq!(config, GenerationConfig { do_sample: Some(true), ..Default::default() });
    assert_eq!(config.build().unwrap().stages(), ["TopK(k=50)"]);
}
