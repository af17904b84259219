//! Decoding settings as the ecosystem writes them (`decoding::config`).
//!
//! - Parity with transformers' `generate()`: every case of
//!   `tests/data/hf_config/cases.json` (written by
//!   `scripts/hf_config_fixtures.py`, which captures the processor list
//!   transformers itself builds from a `generation_config.json`; format in
//!   `tests/data/hf_config/README.md`) is built with
//!   `GenerationConfig::from_json(..)?.build()`. The stages must be the same
//!   classes in the same order, the sampler, EOS ids and length limit the
//!   same, and every processed row equal to transformers' within 1e-5.
//! - Round trips of the `generation_config.json` files of public models
//!   (`tests/data/generation_configs/`).
//! - Unknown keys, merge semantics, errors that name the field and the range.
//! - The OpenAI-style mapping and the llama.cpp-style preset.

#![cfg(feature = "serde")]

use std::fmt::Write as _;
use std::path::Path;

use decoding::config::{
    DecodingPlan, EosTokenId, GenerationConfig, HiddenDefaults, LengthLimit, LlamaCppSampling,
    LlamaCppStage, Logprobs, OpenAiParams,
};
use decoding::processors::{
    LogSoftmax, LogitBias, PresenceFrequencyPenalty, RepetitionPenalty, Temperature, TopK, TopP,
    Watermark,
};
use decoding::watermark::SeedingScheme;
use decoding::{
    Context, Error, GenerateOptions, Generator, LogprobMode, Pipeline, TokenId, Verification,
};
use serde_json::Value;

#[path = "common/fixtures.rs"]
mod fixtures;

use fixtures::{close, expected_row, fnv1a, id_set, ids_of, make_row};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data");

/// Describes the disallowed differences between the rows (empty: none).
fn compare(
    expected: &[f32],
    got: &[f32],
    ambiguous: Option<&[bool]>,
    renormalized: bool,
) -> String {
    let mut problems = Vec::new();
    let mut tolerated = 0;
    let mut values = Vec::new();
    for (i, (&e, &g)) in expected.iter().zip(got).enumerate() {
        if g.is_nan() || g == f32::INFINITY {
            problems.push(format!("[{i}] got {g}"));
        } else if e.is_finite() != g.is_finite() {
            if ambiguous.is_some_and(|a| a[i]) {
                tolerated += 1;
            } else {
                problems.push(format!("[{i}] expected {e:e}, got {g:e}"));
            }
        } else if e.is_finite() && !close(e, g) {
            values.push(format!("[{i}] expected {e:e}, got {g:e}"));
        }
    }
    if !(tolerated > 0 && renormalized) {
        problems.extend(values);
    }
    problems.iter().take(6).fold(String::new(), |mut s, p| {
        let _ = write!(s, "\n      {p}");
        s
    })
}

// ---------------------------------------------------------------------------
// Parity with transformers' generate().
// ---------------------------------------------------------------------------

/// transformers' class name -> the crate's stage type name.
const CLASSES: &[(&str, &str)] = &[
    ("SequenceBiasLogitsProcessor", "SequenceBias"),
    ("RepetitionPenaltyLogitsProcessor", "RepetitionPenalty"),
    ("NoRepeatNGramLogitsProcessor", "NoRepeatNGram"),
    ("NoBadWordsLogitsProcessor", "BadWords"),
    ("MinLengthLogitsProcessor", "MinLength"),
    ("MinNewTokensLengthLogitsProcessor", "MinNewTokens"),
    ("SuppressTokensLogitsProcessor", "SuppressTokens"),
    ("SuppressTokensAtBeginLogitsProcessor", "SuppressTokensAtBegin"),
    ("TemperatureLogitsWarper", "Temperature"),
    ("TopHLogitsWarper", "TopH"),
    ("TopKLogitsWarper", "TopK"),
    ("TopPLogitsWarper", "TopP"),
    ("MinPLogitsWarper", "MinP"),
    ("TypicalLogitsWarper", "Typical"),
    ("EpsilonLogitsWarper", "EpsilonCutoff"),
    ("EtaLogitsWarper", "EtaCutoff"),
    ("LogitNormalization", "LogSoftmax"),
];

/// The type name of a stage, from its `Debug` output (`TopK { k: 50, .. }`).
fn type_name(stage: &dyn std::fmt::Debug) -> String {
    format!("{stage:?}").chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect()
}

/// The crate stages transformers' list corresponds to, in order (see the
/// README for the one collapse), each with the parameters to check.
fn expected_stages(hf: &[Value], case: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (i, p) in hf.iter().enumerate() {
        let class = p["class"].as_str().unwrap();
        if class == "MinLengthLogitsProcessor" {
            if let Some(next) =
                hf.get(i + 1).filter(|n| n["class"] == "MinNewTokensLengthLogitsProcessor")
            {
                let want = next["params"]["prompt_length_to_skip"].as_u64().unwrap()
                    + next["params"]["min_new_tokens"].as_u64().unwrap();
                assert_eq!(
                    p["params"]["min_length"].as_u64(),
                    Some(want),
                    "{case}: uncollapsible MinLength"
                );
                continue;
            }
        }
        let ours = CLASSES
            .iter()
            .find(|(c, _)| *c == class)
            .unwrap_or_else(|| panic!("{case}: transformers class {class} has no mapping"))
            .1;
        out.push((ours.to_string(), p["params"].clone()));
    }
    out
}

/// The parameter a stage's label must show, from transformers' processor.
fn label_parameter(ty: &str, params: &Value) -> Option<String> {
    let num = |k: &str| params[k].as_f64().unwrap();
    Some(match ty {
        "Temperature" => format!("Temperature({})", num("temperature")),
        "TopK" => format!("TopK(k={})", num("top_k")),
        "TopP" => format!("TopP({})", num("top_p")),
        "MinP" => format!("MinP({})", num("min_p")),
        "Typical" => format!("Typical({})", num("mass")),
        "RepetitionPenalty" => format!("RepetitionPenalty({})", num("penalty")),
        "NoRepeatNGram" => format!("NoRepeatNGram(n={})", num("ngram_size")),
        "MinLength" => format!("MinLength({})", num("min_length")),
        "MinNewTokens" => format!("MinNewTokens({})", num("min_new_tokens")),
        "TopH" => format!("TopH({})", num("top_h")),
        _ => return None,
    })
}

fn check_case(case: &Value) -> Result<usize, String> {
    let name = case["name"].as_str().unwrap();
    let text = serde_json::to_string_pretty(&case["config"]).unwrap();
    let config = GenerationConfig::from_json(&text).map_err(|e| format!("parse: {e}"))?;
    let plan = config.build().map_err(|e| format!("build: {e}"))?;
    let hf = &case["hf"];

    // The stages, in order.
    let want = expected_stages(hf["processors"].as_array().unwrap(), name);
    let got: Vec<String> = plan.pipeline().stages().iter().map(|s| type_name(s)).collect();
    let want_types: Vec<&str> = want.iter().map(|(t, _)| t.as_str()).collect();
    if got != want_types {
        return Err(format!("stages: transformers {want_types:?}, the plan {got:?}"));
    }
    for ((ty, params), label) in want.iter().zip(plan.stages()) {
        if let Some(expected) = label_parameter(ty, params) {
            if *label != expected {
                return Err(format!("stage parameters: transformers {expected}, the plan {label}"));
            }
        }
    }

    // The sampler, the EOS ids and the length limit.
    if plan.is_greedy() == hf["do_sample"].as_bool().unwrap() {
        return Err(format!("do_sample is {} but the sampler is {plan}", hf["do_sample"]));
    }
    let eos: Vec<TokenId> =
        if hf["eos_token_id"].is_null() { vec![] } else { ids_of(&hf["eos_token_id"]).unwrap() };
    if plan.options().eos_tokens() != eos {
        return Err(format!(
            "eos: transformers {eos:?}, the plan {:?}",
            plan.options().eos_tokens()
        ));
    }
    let prompt_len = case["prompt_len"].as_u64().unwrap() as usize;
    let max_new = plan.generate_options(prompt_len, 0).map_err(|e| e.to_string())?.max_new_tokens();
    if (prompt_len + max_new) as u64 != hf["max_length"].as_u64().unwrap() {
        return Err(format!(
            "max_length: transformers {}, the plan {}",
            hf["max_length"],
            prompt_len + max_new
        ));
    }

    // The rows.
    let (mut pipeline, _, _) = plan.into_parts();
    let renormalized = want.last().is_some_and(|(t, _)| t == "LogSoftmax");
    let mut tolerated = 0;
    for (r, row_case) in case["rows"].as_array().unwrap().iter().enumerate() {
        let input = &row_case["input"];
        let vocab = input["vocab"].as_u64().unwrap() as usize;
        let row =
            make_row(input["seed"].as_u64().unwrap(), input["shape"].as_str().unwrap(), vocab)
                .unwrap();
        if format!("{:016x}", fnv1a(&row)) != input["fnv1a"].as_str().unwrap() {
            return Err(format!("row {r}: the row generator does not match the fixture's"));
        }
        let expected = expected_row(&row, &row_case["expected"]).unwrap();
        let ambiguous =
            row_case.get("fp_sensitive").map(|f| id_set(f, "ambiguous", vocab).unwrap().unwrap());
        let history = ids_of(&row_case["history"]).unwrap();
        let mut got = row.clone();
        pipeline
            .process(&Context::new(&history, prompt_len).unwrap(), &mut got)
            .map_err(|e| format!("row {r}: {e}"))?;
        let problems = compare(&expected, &got, ambiguous.as_deref(), renormalized);
        if !problems.is_empty() {
            return Err(format!("row {r} (history of {}):{problems}", history.len()));
        }
        tolerated += ambiguous.map_or(0, |a| a.iter().filter(|&&x| x).count());
    }
    Ok(tolerated)
}

#[test]
fn plans_match_what_transformers_generate_builds() {
    let text = std::fs::read_to_string(format!("{DATA}/hf_config/cases.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert!(cases.len() >= 12, "a dozen configurations at least");
    let mut failures = String::new();
    for case in cases {
        match check_case(case) {
            Ok(tolerated) if tolerated > 0 => {
                println!("{}: {tolerated} fp-sensitive ids", case["name"]);
            }
            Ok(_) => {}
            Err(e) => {
                let _ = write!(failures, "\n  {}: {e}", case["name"].as_str().unwrap());
            }
        }
    }
    assert!(failures.is_empty(), "cases differing from transformers:{failures}");
}

#[test]
fn the_parity_fixtures_cover_the_gating_rules() {
    // Guards the fixture itself: the cases must keep exercising what they are for.
    let text = std::fs::read_to_string(format!("{DATA}/hf_config/cases.json")).unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let classes = |name: &str| -> Vec<String> {
        let case = doc["cases"].as_array().unwrap().iter().find(|c| c["name"] == name).unwrap();
        case["hf"]["processors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["class"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(classes("sample_hidden_top_k"), ["TopKLogitsWarper"]);
    assert_eq!(classes("greedy_ignores_warpers"), ["RepetitionPenaltyLogitsProcessor"]);
    assert_eq!(classes("neutral_sampling"), Vec::<String>::new());
    assert_eq!(classes("min_new_tokens_without_eos"), ["TopKLogitsWarper"]);
    assert_eq!(classes("renormalize").last().unwrap(), "LogitNormalization");
    assert!(
        classes("penalties_and_bans").contains(&"MinNewTokensLengthLogitsProcessor".to_string())
    );
}

// ---------------------------------------------------------------------------
// Public generation_config.json files.
// ---------------------------------------------------------------------------

fn load(name: &str) -> GenerationConfig {
    GenerationConfig::from_file(format!("{DATA}/generation_configs/{name}")).unwrap()
}

/// The known keys of a file, as JSON, without the unknown ones.
fn known_keys(path: &str) -> serde_json::Map<String, Value> {
    let v: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    v.as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "transformers_version" | "_from_model_config"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn round_trip(name: &str) -> GenerationConfig {
    let config = load(name);
    let written = config.to_json();
    assert_eq!(GenerationConfig::from_json(&written).unwrap(), config, "{name}");
    let back: Value = serde_json::from_str(&written).unwrap();
    let original = known_keys(&format!("{DATA}/generation_configs/{name}"));
    assert_eq!(back.as_object().unwrap(), &original, "{name}: written back differently");
    // serde's own entry points agree with from_json.
    let via_serde: GenerationConfig = serde_json::from_str(&written).unwrap();
    assert_eq!(via_serde, config);
    config
}

#[test]
fn gpt2_generation_config() {
    let c = round_trip("gpt2.json");
    assert_eq!(c.eos_token_id, Some(EosTokenId::One(50256)));
    assert_eq!(c.bos_token_id, Some(50256));
    assert_eq!(c.do_sample, None);
    assert!(c.unsupported.is_empty());
    let plan = c.build().unwrap();
    assert_eq!(plan.to_string(), "identity => Greedy");
    assert_eq!(plan.options().eos_tokens(), [50256]);
    assert_eq!(plan.length(), LengthLimit::NewTokens(20));
}

#[test]
fn llama3_generation_config() {
    let c = round_trip("llama3_instruct.json");
    assert_eq!(c.eos_token_id, Some(EosTokenId::Many(vec![128001, 128009])));
    assert_eq!((c.do_sample, c.temperature, c.top_p), (Some(true), Some(0.6), Some(0.9)));
    assert_eq!((c.max_length, c.top_k), (Some(4096), None));
    let plan = c.build().unwrap();
    assert_eq!(plan.to_string(), "Temperature(0.6) -> TopK(k=50) -> TopP(0.9) => Categorical");
    assert_eq!(plan.options().eos_tokens(), [128001, 128009]);
    assert_eq!(plan.length(), LengthLimit::Total(4096));
    assert_eq!(plan.generate_options(4000, 0).unwrap().max_new_tokens(), 96);
    let vllm_like = c.build_with(HiddenDefaults::TRANSFORMERS.without_top_k()).unwrap();
    assert_eq!(vllm_like.stages(), ["Temperature(0.6)", "TopP(0.9)"]);
}

#[test]
fn qwen_generation_config() {
    let c = round_trip("qwen2_5_instruct.json");
    assert_eq!(c.eos_token_id.as_ref().map(EosTokenId::ids), Some(&[151645, 151643][..]));
    assert_eq!(c.pad_token_id, Some(151643));
    assert_eq!((c.top_k, c.top_p, c.temperature), (Some(20), Some(0.8), Some(0.7)));
    assert_eq!(c.repetition_penalty, Some(1.05));
    let plan = c.build().unwrap();
    assert_eq!(
        plan.stages(),
        ["RepetitionPenalty(1.05)", "Temperature(0.7)", "TopK(k=20)", "TopP(0.8)"]
    );
    // A set top_k is not affected by switching the hidden one off.
    assert_eq!(
        c.build_with(HiddenDefaults::TRANSFORMERS.without_top_k()).unwrap().stages(),
        plan.stages()
    );
}

// ---------------------------------------------------------------------------
// Parsing rules.
// ---------------------------------------------------------------------------

#[test]
fn unknown_keys_are_ignored_and_null_is_unset() {
    let c = GenerationConfig::from_json(
        r#"{"transformers_version": "4.51.0", "use_cache": true, "cache_implementation": "hybrid",
            "output_scores": false, "chat_template": {"nested": [1, 2, {"x": null}]},
            "encoder_repetition_penalty": 1.3, "num_beams": 1, "top_k": null, "temperature": 0.5}"#,
    )
    .unwrap();
    assert_eq!(
        c,
        GenerationConfig { num_beams: Some(1), temperature: Some(0.5), ..Default::default() }
    );
    // Neutral values of unsupported features are fine too.
    let c = GenerationConfig::from_json(
        r#"{"guidance_scale": 1.0, "forced_bos_token_id": null, "remove_invalid_values": false,
            "num_beam_groups": 1, "penalty_alpha": 0}"#,
    )
    .unwrap();
    assert!(c.unsupported.is_empty() && c.build().is_ok());
}

#[test]
fn eos_token_id_is_an_id_or_a_list_both_ways() {
    for (text, eos) in [("7", EosTokenId::One(7)), ("[7, 8]", EosTokenId::Many(vec![7, 8]))] {
        assert_eq!(serde_json::from_str::<EosTokenId>(text).unwrap(), eos);
        assert_eq!(serde_json::to_string(&eos).unwrap().replace(' ', ""), text.replace(' ', ""));
    }
    for bad in ["null", "-1", "\"2\"", "[1, null]"] {
        let err = serde_json::from_str::<EosTokenId>(bad).unwrap_err();
        assert!(err.to_string().starts_with("eos_token_id must be"), "{bad}: {err}");
    }
}

#[test]
fn unsupported_settings_fail_the_build_until_cleared() {
    let mut c = GenerationConfig::from_json(
        r#"{"penalty_alpha": 0.6, "token_healing": true, "do_sample": true, "top_k": 5}"#,
    )
    .unwrap();
    let keys: Vec<_> = c.unsupported.iter().map(|u| u.key).collect();
    assert_eq!(keys, ["penalty_alpha", "token_healing"]);
    match c.build() {
        Err(Error::InvalidParameter { name, expected, value }) => {
            assert_eq!((name, value.as_str()), ("penalty_alpha", "0.6"));
            assert!(expected.contains("not implemented"), "{expected}");
        }
        other => panic!("{other:?}"),
    }
    c.unsupported.clear();
    assert_eq!(c.build().unwrap().stages(), ["TopK(k=5)"]);
}

#[test]
fn guidance_prompt_lookup_and_watermarking_are_read_and_shown_in_the_plan() {
    let c = GenerationConfig::from_json(
        r#"{"do_sample": true, "top_k": 5, "renormalize_logits": true, "guidance_scale": 1.5,
            "prompt_lookup_num_tokens": 6, "max_matching_ngram_size": 3,
            "watermarking_config": {"greenlist_ratio": 0.5, "bias": 1.5,
                "hashing_key": 42, "seeding_scheme": "selfhash", "context_width": 2}}"#,
    )
    .unwrap();
    assert!(c.unsupported.is_empty());
    assert_eq!(
        (c.guidance_scale, c.prompt_lookup_num_tokens, c.max_matching_ngram_size),
        (Some(1.5), Some(6), Some(3))
    );
    let w = c.watermarking_config.clone().unwrap();
    assert_eq!((w.greenlist_ratio, w.bias, w.hashing_key, w.context_width), (0.5, 1.5, 42, 2));
    assert_eq!(w.seeding_scheme, SeedingScheme::SelfHash);
    let plan = c.build().unwrap();
    assert_eq!(
        plan.to_string(),
        "ClassifierFreeGuidance(1.5) -> TopK(k=5) -> Watermark(greenlist_ratio=0.5, bias=1.5, \
         seeding_scheme=selfhash, context_width=2) -> LogSoftmax => Categorical \
         with PromptLookup(num_tokens=6, max_ngram=3)"
    );
    assert_eq!(plan.guidance_scale(), Some(1.5));
    let lookup = plan.prompt_lookup().unwrap();
    assert_eq!((lookup.draft_tokens(), lookup.max_ngram()), (6, 3));
    assert_eq!(lookup.verification(), Verification::Sampled);
    // The written file reads back the same.
    assert_eq!(GenerationConfig::from_json(&c.to_json()).unwrap(), c);

    // The plan's watermark stage is transformers' processor for the rows'
    // vocabulary: the same green tokens as a Watermark built directly.
    let (mut pipeline, _, _) = plan.into_parts();
    let mut direct = Pipeline::new()
        .with(TopK::new(5).unwrap())
        .with(Watermark::new(w.config(64).unwrap()))
        .with(LogSoftmax::new());
    let history = [3, 9, 27];
    let ctx = Context::new(&history, 1).unwrap();
    let base: Vec<f32> = (0..64).map(|i| (i % 7) as f32 * 0.25 + i as f32 * 1e-3).collect();
    let (mut a, mut b) = (base.clone(), base.clone());
    pipeline.process(&ctx, &mut a).unwrap();
    direct.process(&ctx, &mut b).unwrap();
    assert_eq!(a, b);
    // The watermark moved something: without it, the row differs.
    let mut c = base.clone();
    Pipeline::new()
        .with(TopK::new(5).unwrap())
        .with(LogSoftmax::new())
        .process(&ctx, &mut c)
        .unwrap();
    assert_ne!(a, c);

    // Defaults: no guidance at scale 1, greedy verification, n-gram 2, and
    // transformers' watermark defaults.
    let c = GenerationConfig::from_json(
        r#"{"guidance_scale": 1, "prompt_lookup_num_tokens": 10, "watermarking_config": {}}"#,
    )
    .unwrap();
    let plan = c.build().unwrap();
    assert_eq!(plan.guidance_scale(), None);
    assert_eq!(
        plan.prompt_lookup().map(|l| (l.max_ngram(), l.verification())),
        Some((2, Verification::Greedy))
    );
    assert_eq!(
        plan.to_string(),
        "Watermark(greenlist_ratio=0.25, bias=2, seeding_scheme=lefthash, context_width=1) \
         => Greedy with PromptLookup(num_tokens=10, max_ngram=2)"
    );

    // Out of range, or not what the crate implements.
    for (text, name) in [
        (r#"{"guidance_scale": "high"}"#, "guidance_scale"),
        (r#"{"prompt_lookup_num_tokens": -1}"#, "prompt_lookup_num_tokens"),
        (r#"{"watermarking_config": {"seeding_scheme": "minhash"}}"#, "seeding_scheme"),
        (r#"{"watermarking_config": 3}"#, "watermarking_config"),
    ] {
        match GenerationConfig::from_json(text) {
            Err(Error::InvalidParameter { name: got, .. }) => assert_eq!(got, name, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    for (text, name) in [
        (r#"{"guidance_scale": 1e39}"#, "guidance_scale"),
        (r#"{"prompt_lookup_num_tokens": 0}"#, "prompt_lookup_num_tokens"),
        (
            r#"{"prompt_lookup_num_tokens": 4, "max_matching_ngram_size": 0}"#,
            "max_matching_ngram_size",
        ),
        (r#"{"watermarking_config": {"greenlist_ratio": 1.5}}"#, "greenlist_ratio"),
        (r#"{"watermarking_config": {"context_width": 0}}"#, "context_width"),
        (r#"{"prompt_lookup_num_tokens": 4, "num_beams": 2}"#, "prompt_lookup_num_tokens"),
    ] {
        match GenerationConfig::from_json(text).unwrap().build() {
            Err(Error::InvalidParameter { name: got, .. }) => assert_eq!(got, name, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
    }
    // SynthID watermarking is not implemented.
    let c =
        GenerationConfig::from_json(r#"{"watermarking_config": {"ngram_len": 5, "keys": [1]}}"#)
            .unwrap();
    assert_eq!(c.unsupported[0].key, "watermarking_config");
    assert!(c.build().is_err());
}

#[test]
fn n_and_best_of_are_read_and_shown_in_the_plan() {
    let request =
        OpenAiParams::from_json(r#"{"n": 2, "best_of": 5, "temperature": 0.8, "seed": 3}"#)
            .unwrap();
    assert_eq!((request.n, request.best_of), (Some(2), Some(5)));
    let plan = request.build(&GenerationConfig::default()).unwrap();
    assert_eq!(plan.to_string(), "Temperature(0.8) => Categorical with Choices(n=2, best_of=5)");
    assert_eq!((plan.choices().n(), plan.choices().best_of()), (2, 5));
    // Written back, read again.
    let text = serde_json::to_string(&request).unwrap();
    assert_eq!(OpenAiParams::from_json(&text).unwrap(), request);
    // Without best_of, n of n; nothing more is printed.
    let plan = OpenAiParams::from_json(r#"{"n": 3}"#).unwrap().build(&GenerationConfig::default());
    let plan = plan.unwrap();
    assert_eq!((plan.choices().n(), plan.choices().best_of()), (3, 3));
    assert_eq!(plan.to_string(), "identity => Categorical");
    for text in
        [r#"{"n": 3, "best_of": 2}"#, r#"{"best_of": 0}"#, r#"{"best_of": 4, "temperature": 0}"#]
    {
        let r = OpenAiParams::from_json(text).unwrap().build(&GenerationConfig::default());
        assert!(matches!(r, Err(Error::InvalidParameter { name: "best_of", .. })), "{text}: {r:?}");
    }
}

#[test]
fn length_control_fields_become_stages_in_transformers_order() {
    let c = GenerationConfig::from_json(
        r#"{"eos_token_id": [2, 7], "forced_bos_token_id": 0, "forced_eos_token_id": 2,
            "exponential_decay_length_penalty": [4, 1.5], "max_new_tokens": 10,
            "suppress_tokens": [5], "min_new_tokens": 2}"#,
    )
    .unwrap();
    assert!(c.unsupported.is_empty());
    assert_eq!(c.forced_bos_token_id, Some(0));
    assert_eq!(c.forced_eos_token_id.as_ref().map(|e| e.ids().to_vec()), Some(vec![2]));
    assert_eq!(c.exponential_decay_length_penalty, Some((4, 1.5)));
    assert_eq!(
        c.build().unwrap().stages(),
        [
            "MinNewTokens(2)",
            "ForcedBosToken(0)",
            "ForcedEosToken([2] at 10 new tokens)",
            "ExponentialDecayLengthPenalty(start=4, factor=1.5)",
            "SuppressTokens(1 ids)",
        ]
    );
    // With max_length only, the forced position counts the prompt too.
    let c = GenerationConfig::from_json(r#"{"forced_eos_token_id": [3, 1], "max_length": 64}"#)
        .unwrap();
    assert_eq!(c.build().unwrap().stages(), ["ForcedEosToken([1, 3] at length 64)"]);
    // Written back as read.
    let text = serde_json::to_string(&GenerationConfig {
        forced_bos_token_id: Some(9),
        exponential_decay_length_penalty: Some((3, 1.25)),
        ..Default::default()
    })
    .unwrap();
    assert_eq!(text, r#"{"forced_bos_token_id":9,"exponential_decay_length_penalty":[3,1.25]}"#);
    let again = GenerationConfig::from_json(&text).unwrap();
    assert_eq!(again.exponential_decay_length_penalty, Some((3, 1.25)));
}

#[test]
fn malformed_length_control_fields_are_errors() {
    for bad in [r#"[4]"#, r#"[-1, 1.5]"#, r#""4, 1.5""#, r#"[4, "x"]"#, r#"[1.5, 4]"#] {
        let text = format!(r#"{{"exponential_decay_length_penalty": {bad}}}"#);
        assert!(
            matches!(
                GenerationConfig::from_json(&text),
                Err(Error::InvalidParameter { name: "exponential_decay_length_penalty", .. })
            ),
            "{bad}"
        );
    }
    for bad in [r#"-1"#, r#"[1, -2]"#, r#""eos""#] {
        let text = format!(r#"{{"forced_eos_token_id": {bad}}}"#);
        assert!(GenerationConfig::from_json(&text).is_err(), "{bad}");
    }
    // Read, but rejected when the stage is built: a negative or infinite
    // factor, and a length penalty without EOS ids.
    let c = GenerationConfig::from_json(
        r#"{"eos_token_id": 2, "exponential_decay_length_penalty": [4, -1.5]}"#,
    )
    .unwrap();
    assert!(matches!(
        c.build(),
        Err(Error::InvalidParameter { name: "exponential_decay_length_penalty", .. })
    ));
    let c =
        GenerationConfig::from_json(r#"{"exponential_decay_length_penalty": [4, 1.5]}"#).unwrap();
    assert!(matches!(c.build(), Err(Error::InvalidParameter { name: "eos_token_id", .. })));
}

#[test]
fn merge_puts_overrides_on_top_of_the_file() {
    let file = load("qwen2_5_instruct.json");
    let user = GenerationConfig {
        temperature: Some(0.2),
        top_k: Some(0),
        max_new_tokens: Some(16),
        eos_token_id: Some(EosTokenId::One(7)),
        ..Default::default()
    };
    let merged = file.merge(&user);
    assert_eq!(merged.temperature, Some(0.2));
    assert_eq!(merged.top_k, Some(0));
    assert_eq!(merged.top_p, Some(0.8), "unset in the override: the file's value");
    assert_eq!(merged.repetition_penalty, Some(1.05));
    assert_eq!(merged.eos_token_id, Some(EosTokenId::One(7)));
    assert_eq!(merged.pad_token_id, Some(151643));
    let plan = merged.build().unwrap();
    assert_eq!(plan.stages(), ["RepetitionPenalty(1.05)", "Temperature(0.2)", "TopP(0.8)"]);
    assert_eq!(plan.length(), LengthLimit::NewTokens(16));
    // Merging nothing changes nothing; merging onto nothing gives the override.
    assert_eq!(file.merge(&GenerationConfig::default()), file);
    assert_eq!(GenerationConfig::default().merge(&user), user);
    // "unset" differs from "the default": a file's temperature survives an
    // override that does not set one, but not one that sets 1.0.
    let neutral = GenerationConfig { temperature: Some(1.0), ..Default::default() };
    assert!(
        !file.merge(&neutral).build().unwrap().stages().contains(&"Temperature(1)".to_string())
    );
    assert_eq!(file.merge(&neutral).build().unwrap().stages().len(), 3);
}

/// The error for a document, which must be an invalid parameter naming
/// `field` and mentioning `range`.
fn assert_names(json: &str, field: &str, range: &str) {
    let err =
        GenerationConfig::from_json(json).and_then(|c| c.build().map(|_| ())).expect_err(json);
    match &err {
        Error::InvalidParameter { name, expected, .. } => {
            assert_eq!(*name, field, "{json}: {err}");
            assert!(expected.contains(range), "{json}: {err}");
        }
        other => panic!("{json}: {other:?}"),
    }
    assert!(err.to_string().starts_with(field), "{err}");
}

#[test]
fn invalid_values_name_the_field_and_the_range() {
    // Wrong types and negative counts, when reading.
    assert_names(r#"{"top_k": -1}"#, "top_k", ">= 0");
    assert_names(r#"{"top_k": 2.5}"#, "top_k", "integer");
    assert_names(r#"{"temperature": "hot"}"#, "temperature", "number");
    assert_names(r#"{"do_sample": 1}"#, "do_sample", "true, false");
    assert_names(r#"{"eos_token_id": -5}"#, "eos_token_id", "token id");
    assert_names(r#"{"eos_token_id": [1, "a"]}"#, "eos_token_id", "token id");
    assert_names(r#"{"bad_words_ids": [1, 2]}"#, "bad_words_ids", "lists of token ids");
    assert_names(r#"{"sequence_bias": [[[1], "x"]]}"#, "sequence_bias", "[[token ids], bias]");
    assert_names(r#"{"max_new_tokens": -3}"#, "max_new_tokens", ">= 1");
    // Out-of-range values, when building (whether sampling or not).
    assert_names(r#"{"temperature": -0.5}"#, "temperature", ">= 0");
    assert_names(r#"{"do_sample": true, "temperature": 0.0}"#, "temperature", "> 0 when do_sample");
    assert_names(r#"{"top_p": 1.5}"#, "top_p", "[0, 1]");
    assert_names(r#"{"min_p": -0.1}"#, "min_p", "[0, 1]");
    assert_names(r#"{"typical_p": 0}"#, "typical_p", "(0, 1]");
    assert_names(r#"{"epsilon_cutoff": 1.0}"#, "epsilon_cutoff", "[0, 1)");
    assert_names(r#"{"eta_cutoff": -1}"#, "eta_cutoff", "[0, 1)");
    assert_names(r#"{"top_h": 0}"#, "top_h", "(0, 1]");
    assert_names(r#"{"repetition_penalty": 0}"#, "repetition_penalty", "> 0");
    assert_names(r#"{"max_new_tokens": 0}"#, "max_new_tokens", "at least 1");
    assert_names(r#"{"bad_words_ids": []}"#, "bad_words_ids", "non-empty");
    assert_names(r#"{"sequence_bias": []}"#, "sequence_bias", "non-empty");
    assert_names(r#"{"eos_token_id": []}"#, "eos_token_id", "non-empty");
    assert_names(r#"{"stop_strings": ["a", ""]}"#, "stop_strings", "non-empty");
    assert_names(r#"{"num_return_sequences": 3}"#, "num_return_sequences", "do_sample");
}

#[test]
fn documents_that_are_not_json_objects_are_load_errors() {
    for text in ["", "{", "[1, 2]", "\"top_k\"", r#"{"top_k": 5,}"#] {
        match GenerationConfig::from_json(text) {
            Err(Error::Load { what, .. }) => assert_eq!(what, "generation_config.json"),
            other => panic!("{text:?}: {other:?}"),
        }
    }
    match GenerationConfig::from_file(format!("{DATA}/generation_configs/missing.json")) {
        Err(Error::Load { what, .. }) => assert!(what.ends_with("missing.json"), "{what}"),
        other => panic!("{other:?}"),
    }
    // Inside another serde document, field errors keep their wording.
    let err = serde_json::from_str::<GenerationConfig>(r#"{"top_p": "x"}"#).unwrap_err();
    assert!(err.to_string().starts_with("top_p must be a number in [0, 1], got \"x\""), "{err}");
}

// ---------------------------------------------------------------------------
// OpenAI-style requests.
// ---------------------------------------------------------------------------

#[test]
fn an_openai_request_maps_onto_the_pipeline_and_the_options() {
    let request = OpenAiParams::from_json(
        r#"{"model": "qwen", "messages": [{"role": "user", "content": "hi"}], "stream": true,
            "temperature": 0.9, "top_p": 0.95, "presence_penalty": 0.5, "frequency_penalty": 0.25,
            "logit_bias": {"11": 5, "7": -100}, "logprobs": true, "top_logprobs": 3, "seed": 42,
            "stop": ["\n\n", "END"], "n": 2, "max_completion_tokens": 64, "min_p": 0.05}"#,
    )
    .unwrap();
    assert_eq!(request.logit_bias, Some(vec![(11, 5.0), (7, -100.0)]));
    let model = load("qwen2_5_instruct.json");
    let plan = request.build(&model).unwrap();
    assert_eq!(
        plan.stages(),
        [
            "LogitBias(2 tokens)",
            "RepetitionPenalty(1.05)",
            "PresenceFrequencyPenalty(presence=0.5, frequency=0.25)",
            "Temperature(0.9)",
            "TopK(k=20)",
            "TopP(0.95)",
            "MinP(0.05)",
        ]
    );
    assert!(!plan.is_greedy());
    assert_eq!(plan.n(), 2);
    let first = plan.generate_options(10, 0).unwrap();
    let second = plan.generate_options(10, 1).unwrap();
    assert_eq!((first.seed(), second.seed()), (Some(42), Some(43)));
    assert!(plan.generate_options(10, 2).is_err());
    assert_eq!(first.max_new_tokens(), 64);
    assert_eq!(first.stop_strings(), ["\n\n", "END"]);
    assert_eq!(first.logprobs(), Some(LogprobMode::Raw));
    assert_eq!(first.top_logprobs(), 3);
    assert_eq!(first.eos_tokens(), [151645, 151643]);
}

#[test]
fn openai_rows_follow_the_documented_order() {
    // The plan's processed row equals the processors composed by hand in the
    // documented order: logit bias, repetition, presence/frequency, temperature, top-p.
    let request = OpenAiParams {
        temperature: Some(0.7),
        top_p: Some(0.9),
        presence_penalty: Some(0.4),
        frequency_penalty: Some(-0.3),
        repetition_penalty: Some(1.2),
        logit_bias: Some(vec![(3, 2.0), (40, -100.0)]),
        ..Default::default()
    };
    let (mut pipeline, _, _) = request.build(&GenerationConfig::default()).unwrap().into_parts();
    let mut by_hand = Pipeline::new()
        .with(LogitBias::new([(3, 2.0), (40, -100.0)]).unwrap())
        .with(RepetitionPenalty::new(1.2).unwrap())
        .with(PresenceFrequencyPenalty::new(0.4, -0.3).unwrap())
        .with(Temperature::new(0.7).unwrap())
        .with(TopP::new(0.9).unwrap());
    let history = [5, 9, 3, 3, 12, 40, 3, 7];
    let ctx = Context::new(&history, 4).unwrap();
    let row = make_row(99, "normal", 64).unwrap();
    let (mut a, mut b) = (row.clone(), row.clone());
    pipeline.process(&ctx, &mut a).unwrap();
    by_hand.process(&ctx, &mut b).unwrap();
    assert_eq!(a, b);
    assert_eq!(a[40], f32::NEG_INFINITY);
}

#[test]
fn openai_conventions() {
    let model = load("llama3_instruct.json");
    // Temperature 0 is greedy, whatever the model says.
    let greedy =
        OpenAiParams { temperature: Some(0.0), ..Default::default() }.build(&model).unwrap();
    assert!(greedy.is_greedy());
    assert!(greedy.stages().is_empty());
    // No temperature in the request: the model's; no hidden top-k.
    let default = OpenAiParams::default().build(&model).unwrap();
    assert_eq!(default.stages(), ["Temperature(0.6)", "TopP(0.9)"]);
    // The model's do_sample = false does not make a request greedy (as vLLM).
    let greedy_model = GenerationConfig { do_sample: Some(false), ..Default::default() };
    assert!(!OpenAiParams::default().build(&greedy_model).unwrap().is_greedy());
    // vLLM's top_k = -1 is "off"; the legacy integer logprobs counts alternatives.
    let p = OpenAiParams::from_json(r#"{"top_k": -1, "logprobs": 2}"#).unwrap();
    assert_eq!((p.top_k, p.logprobs), (Some(0), Some(Logprobs::Top(2))));
    let options = p.build(&GenerationConfig::default()).unwrap().generate_options(1, 0).unwrap();
    assert_eq!((options.logprobs(), options.top_logprobs()), (Some(LogprobMode::Raw), 2));
    // A single stop string.
    let p = OpenAiParams::from_json(r#"{"stop": "@@@"}"#).unwrap();
    assert_eq!(p.stop, Some(vec!["@@@".to_string()]));
    // Serialization round trip.
    let full = OpenAiParams::from_json(
        r#"{"temperature": 0.3, "logit_bias": {"5": 1.5}, "logprobs": true, "top_logprobs": 2,
            "stop": ["x"], "n": 3, "max_tokens": 9, "seed": 18446744073709551615, "top_k": 4}"#,
    )
    .unwrap();
    let back = OpenAiParams::from_json(&serde_json::to_string(&full).unwrap()).unwrap();
    assert_eq!(back, full);
    assert_eq!(full.seed, Some(u64::MAX));
}

#[test]
fn openai_invalid_values_name_the_parameter_and_the_range() {
    for (json, field, range) in [
        (r#"{"temperature": 2.5}"#, "temperature", "[0, 2]"),
        (r#"{"top_p": -0.1}"#, "top_p", "[0, 1]"),
        (r#"{"presence_penalty": 3}"#, "presence_penalty", "[-2, 2]"),
        (r#"{"frequency_penalty": -2.01}"#, "frequency_penalty", "[-2, 2]"),
        (r#"{"logit_bias": {"5": 101}}"#, "logit_bias", "[-100, 100]"),
        (r#"{"logit_bias": {"five": 1}}"#, "logit_bias", "token ids"),
        (r#"{"top_logprobs": 21, "logprobs": true}"#, "top_logprobs", "[0, 20]"),
        (r#"{"top_logprobs": 2}"#, "top_logprobs", "logprobs is true"),
        (r#"{"logprobs": 6}"#, "logprobs", "[0, 5]"),
        (r#"{"logprobs": "yes"}"#, "logprobs", "[0, 5]"),
        (r#"{"seed": -1}"#, "seed", "[0, 2^64)"),
        (r#"{"stop": ["a", ""]}"#, "stop", "non-empty"),
        (r#"{"stop": 5}"#, "stop", "string"),
        (r#"{"n": 0}"#, "n", "at least 1"),
        (r#"{"n": 2, "temperature": 0}"#, "n", "temperature is 0"),
        (r#"{"max_tokens": 0}"#, "max_tokens", "at least 1"),
        (r#"{"max_tokens": 5, "max_completion_tokens": 6}"#, "max_completion_tokens", "equal"),
        (r#"{"top_k": -2}"#, "top_k", "-1 or"),
        (r#"{"min_p": 2}"#, "min_p", "[0, 1]"),
        (r#"{"repetition_penalty": -1}"#, "repetition_penalty", "> 0"),
        (r#"{"repeat_penalty": 0}"#, "repetition_penalty", "> 0"),
    ] {
        let err = OpenAiParams::from_json(json)
            .and_then(|p| p.build(&GenerationConfig::default()).map(|_| ()))
            .expect_err(json);
        match &err {
            Error::InvalidParameter { name, expected, .. } => {
                assert_eq!(*name, field, "{json}: {err}");
                assert!(expected.contains(range), "{json}: {err}");
            }
            other => panic!("{json}: {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------
// The llama.cpp-style preset and the generator.
// ---------------------------------------------------------------------------

#[test]
fn the_llama_cpp_preset_truncates_before_temperature_and_keeps_exactly_k() {
    // Scores 4, 3, 3, 3, 0: exactly-k top-3 keeps 4 and the two lowest ids among the 3s;
    // transformers' top-k would keep all four tokens at 3 or above.
    let preset = LlamaCppSampling {
        samplers: vec![LlamaCppStage::TopK, LlamaCppStage::Temperature],
        top_k: 3,
        temperature: 2.0,
        ..Default::default()
    };
    let (mut pipeline, _, _) = preset.build().unwrap().into_parts();
    let mut row = vec![4.0, 3.0, 3.0, 3.0, 0.0];
    pipeline.process(&Context::empty(), &mut row).unwrap();
    let ninf = f32::NEG_INFINITY;
    assert_eq!(row, [2.0, 1.5, 1.5, ninf, ninf]);
    let mut hf = Pipeline::new().with(TopK::new(3).unwrap());
    let mut row = vec![4.0, 3.0, 3.0, 3.0, 0.0];
    hf.process(&Context::empty(), &mut row).unwrap();
    assert_eq!(row.iter().filter(|x| x.is_finite()).count(), 4);
}

#[test]
fn the_llama_cpp_penalties_use_only_the_window() {
    let preset = LlamaCppSampling {
        samplers: vec![LlamaCppStage::Penalties],
        penalty_last_n: 2,
        repeat_penalty: 2.0,
        ..Default::default()
    };
    let (mut pipeline, _, _) = preset.build().unwrap().into_parts();
    let history = [0, 1, 2];
    let mut row = vec![4.0, 4.0, 4.0];
    pipeline.process(&Context::prompt_only(&history), &mut row).unwrap();
    assert_eq!(row, [4.0, 2.0, 2.0], "token 0 is outside the last 2 tokens");
}

#[path = "common/toy_models.rs"]
mod toy_models;

/// After token `t` the next is `t + 1` (mod 8) with a clear margin.
fn counter() -> toy_models::Bigram {
    toy_models::Bigram::successor(8, &[6.0])
}

#[test]
fn a_plan_drives_the_generator() {
    // Greedy, EOS 5, at most 10 tokens after a prompt of 2.
    let config = GenerationConfig::from_json(r#"{"eos_token_id": 5, "max_length": 12}"#).unwrap();
    let plan: DecodingPlan = config.build().unwrap();
    let mut generator: Generator<Pipeline, _> = plan.into_generator(2).unwrap();
    assert_eq!(generator.options().max_new_tokens(), 10);
    let out = generator.generate(&mut counter(), &[0, 1]).unwrap();
    assert_eq!(out.tokens, [2, 3, 4, 5]);

    // Bans from the config reach the generator: token 3 may never follow.
    let config = GenerationConfig::from_json(
        r#"{"eos_token_id": 5, "bad_words_ids": [[3]], "max_new_tokens": 3}"#,
    )
    .unwrap();
    let mut generator = config.build().unwrap().into_generator(2).unwrap();
    let out = generator.generate(&mut counter(), &[0, 1]).unwrap();
    assert_eq!(out.tokens[0], 2);
    assert!(!out.tokens.contains(&3));
    assert_eq!(out.tokens.len(), 3);

    // Sampling choices differ by seed only.
    let plan = OpenAiParams {
        n: Some(2),
        seed: Some(5),
        max_tokens: Some(6),
        temperature: Some(2.0),
        ..Default::default()
    }
    .build(&GenerationConfig::default())
    .unwrap();
    let options: Vec<GenerateOptions> =
        (0..plan.n()).map(|i| plan.generate_options(2, i).unwrap()).collect();
    let (pipeline, sampler, _) = plan.into_parts();
    let mut generator = Generator::new(pipeline, sampler, options[0].clone());
    let a = generator.generate(&mut counter(), &[0, 1]).unwrap().tokens;
    let a_again = generator.generate(&mut counter(), &[0, 1]).unwrap().tokens;
    assert_eq!(a, a_again, "a seed fixes the tokens");
    generator.set_options(options[1].clone());
    let b = generator.generate(&mut counter(), &[0, 1]).unwrap().tokens;
    assert_eq!((a.len(), b.len()), (6, 6));
}

#[test]
fn plans_are_printable_and_paths_work() {
    let plan = load("qwen2_5_instruct.json").build().unwrap();
    assert_eq!(
        plan.to_string(),
        "RepetitionPenalty(1.05) -> Temperature(0.7) -> TopK(k=20) -> TopP(0.8) => Categorical"
    );
    // The pipeline's own Display names the same stages in the same order.
    let shown = plan.pipeline().to_string();
    let positions: Vec<usize> = ["RepetitionPenalty", "Temperature", "TopK", "TopP"]
        .iter()
        .map(|name| shown.find(name).unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{shown}");
    assert!(Path::new(&format!("{DATA}/generation_configs/gpt2.json")).exists());
}
