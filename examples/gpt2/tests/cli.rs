//! The command line, run as a process on the tiny parity model: the
//! Generator reproduces transformers' greedy ids, streaming prints the same
//! text, the demonstration renders, mistakes are reported.

use std::process::{Command, Output};

use gpt2::Tokenizer;
use serde::Deserialize;

#[path = "common/parity_fixture.rs"]
mod parity_fixture;

use parity_fixture::{Case, data, fixture};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpt2")).args(args).output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Runs the command line with `args` (which ask for `--json`), requires
/// success, and returns its JSON output.
fn run_json(args: &[&str]) -> serde_json::Value {
    let out = run(args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The token ids of a JSON array (`generated_ids`, `prompt_ids`).
fn ids(array: &serde_json::Value) -> Vec<u32> {
    array.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect()
}

/// The cases of the tiny GPT-2's parity fixture.
fn cases() -> Vec<Case> {
    fixture().tiny_gpt2.cases
}

#[test]
fn json_output_has_transformers_greedy_ids() {
    let model = data().join("tiny-gpt2");
    for case in cases().iter().take(3) {
        let n = case.greedy_ids.len().to_string();
        let args = [
            "--model",
            model.to_str().unwrap(),
            "--prompt",
            &case.prompt,
            "--greedy",
            "--max-new-tokens",
            &n,
            "--ignore-eos",
            "--json",
        ];
        let json = run_json(&args);
        assert_eq!(ids(&json["prompt_ids"]), case.prompt_ids);
        assert_eq!(ids(&json["generated_ids"]), case.greedy_ids);
        let decoded = Tokenizer::gpt2().unwrap().decode(&case.greedy_ids).unwrap();
        assert_eq!(json["text"], decoded.as_str());
        assert_eq!(json["finish_reason"], "length");
        assert_eq!(json["model"], model.to_str().unwrap());
        assert!(json["tokens_per_second"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn every_kernel_path_and_weight_precision_gives_transformers_greedy_ids() {
    let model = data().join("tiny-gpt2");
    let case = &cases()[0];
    let n = case.greedy_ids.len().to_string();
    for path in gpt2::KernelPath::ALL.into_iter().filter(|p| p.is_available()) {
        // The fixture's weights are f16: kept in 16 bits, or widened exactly.
        for (dtype, reported) in [(None, "f16"), (Some("f32"), "f32")] {
            let mut args = vec!["--model", model.to_str().unwrap(), "--prompt", &case.prompt];
            args.extend(["--max-new-tokens", &n, "--ignore-eos", "--json"]);
            args.extend(["--kernels", path.name()]);
            if let Some(dtype) = dtype {
                args.extend(["--dtype", dtype]);
            }
            let json = run_json(&args);
            assert_eq!(ids(&json["generated_ids"]), case.greedy_ids, "{path:?} {dtype:?}");
            assert_eq!(json["kernels"], path.name());
            assert_eq!(json["weights_dtype"], reported);
        }
    }
}

#[test]
fn streaming_prints_the_prompt_then_the_text_and_the_speed() {
    let model = data().join("tiny-gpt2");
    let case = &cases()[1];
    let out = run(&[
        "--model",
        model.to_str().unwrap(),
        "--prompt",
        &case.prompt,
        "--max-new-tokens",
        "12",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let decoded = Tokenizer::gpt2().unwrap().decode(&case.greedy_ids[..12]).unwrap();
    assert_eq!(text(&out.stdout), format!("{}{decoded}\n", case.prompt));
    let err = text(&out.stderr);
    assert!(err.contains("12 tokens in") && err.contains("tokens/s"), "{err}");
}

#[test]
fn sampling_is_reproducible_from_the_seed() {
    let model = data().join("tiny-gpt2");
    let m = model.to_str().unwrap();
    let args = |seed: &'static str| {
        run(&[
            "--model",
            m,
            "--temperature",
            "1.5",
            "--top-k",
            "40",
            "--top-p",
            "0.95",
            "--min-p",
            "0.01",
            "--repetition-penalty",
            "1.3",
            "--seed",
            seed,
            "--max-new-tokens",
            "16",
            "--json",
        ])
    };
    let (a, b, c) = (args("7"), args("7"), args("8"));
    assert!(a.status.success(), "{}", text(&a.stderr));
    let ids = |o: &Output| {
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()["generated_ids"].clone()
    };
    assert_eq!(ids(&a), ids(&b));
    assert_ne!(ids(&a), ids(&c));
}

#[test]
fn the_demonstration_shows_four_strategies_and_the_charts() {
    let model = data().join("tiny-gpt2");
    let out = run(&["--model", model.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for needle in [
        "prompt: \"My favourite movie is\" = [\"My\", \"Ġfavourite\", \"Ġmovie\", \"Ġis\"] = [3666, 12507, 3807, 318]",
        "greedy          │",
        "temperature 0.7 │",
        "top-k 50        │",
        "top-p 0.92      │",
        "temperature 1.5: divides the logits by 1.5",
        "top-k 50: keeps the 50 most likely tokens and renormalises (kept 50 of 50257 tokens)",
        "before",
        "█",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in\n{stdout}");
    }
    // The greedy line is transformers' greedy continuation.
    let greedy = Tokenizer::gpt2().unwrap().decode(&cases()[0].greedy_ids[..3]).unwrap();
    let line = stdout.lines().find(|l| l.starts_with("greedy")).unwrap();
    assert!(line.contains(greedy.trim()), "{line} vs {greedy:?}");
}

#[test]
fn mistakes_are_reported_with_an_exit_code() {
    let out = run(&["--top-k"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--top-k needs a value"));

    let out = run(&["--model", "/nonexistent/gpt2", "--greedy"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("--model /nonexistent/gpt2: no such directory"));

    let model = data().join("tiny-gpt2");
    let out = run(&["--model", model.to_str().unwrap(), "--top-p", "1.5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("top_p"), "{}", text(&out.stderr));

    // 128 positions: a long prompt overflows the context, named in the error.
    let long = "word ".repeat(200);
    let out = run(&["--model", model.to_str().unwrap(), "--prompt", &long, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("context overflow"), "{}", text(&out.stderr));

    let out = run(&["--help"]);
    assert!(out.status.success() && text(&out.stdout).contains("--repetition-penalty R"));
}

#[test]
fn without_a_model_the_bundled_one_runs_with_a_note() {
    let empty = std::env::temp_dir().join(format!("gpt2-cli-empty-hub-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_gpt2"))
        .args(["--max-new-tokens", "3", "--json"])
        .env("HF_HUB_CACHE", &empty)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&empty);
    let stderr = text(&out.stderr);
    let bundled = gpt2::lookup::bundled_dir();
    if gpt2::lookup::is_model_dir(&bundled) {
        assert!(out.status.success(), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains("bundled model") && stderr.contains("--model DIR"), "{stderr}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["model"], bundled.to_str().unwrap());
        assert_eq!(json["generated_ids"].as_array().unwrap().len(), 3);
    } else {
        assert_eq!(out.status.code(), Some(1));
        assert!(stderr.contains("no model found: pass --model DIR"), "{stderr}");
    }
}

#[test]
fn a_draft_model_gives_the_same_greedy_ids_and_reports_its_acceptance() {
    let model = data().join("tiny-gpt2");
    let m = model.to_str().unwrap();
    let case = &cases()[0];
    let n = case.greedy_ids.len().to_string();
    for (draft, all_accepted) in [(m, true), ("bundled", false)] {
        let args = [
            "--model",
            m,
            "--prompt",
            &case.prompt,
            "--max-new-tokens",
            &n,
            "--ignore-eos",
            "--draft",
            draft,
            "--draft-tokens",
            "3",
            "--json",
        ];
        let json = run_json(&args);
        assert_eq!(ids(&json["generated_ids"]), case.greedy_ids, "draft {draft}");
        let s = &json["speculative"];
        assert_eq!(s["verification"], "greedy");
        assert_eq!(s["draft_tokens"], 3);
        let rate = s["acceptance_rate"].as_f64().unwrap();
        assert_eq!(rate == 1.0, all_accepted, "draft {draft}: {s}");
    }

    // Text mode: the text on stdout, the statistics on stderr.
    let out = run(&["--model", m, "--prompt", &case.prompt, "--max-new-tokens", "6", "--draft", m]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let decoded = Tokenizer::gpt2().unwrap().decode(&case.greedy_ids[..6]).unwrap();
    assert_eq!(text(&out.stdout), format!("{}{decoded}\n", case.prompt));
    let err = text(&out.stderr);
    assert!(err.contains("speculative: 4 of 4 drafted tokens accepted (100.0%)"), "{err}");
}

#[test]
fn prompt_lookup_gives_the_same_greedy_ids_and_reports_its_acceptance() {
    let model = data().join("tiny-gpt2");
    let m = model.to_str().unwrap();
    for case in cases() {
        let n = case.greedy_ids.len().to_string();
        let args = [
            "--model",
            m,
            "--prompt",
            &case.prompt,
            "--max-new-tokens",
            &n,
            "--ignore-eos",
            "--prompt-lookup",
            "3",
            "--json",
        ];
        let json = run_json(&args);
        assert_eq!(ids(&json["generated_ids"]), case.greedy_ids, "{}", case.prompt);
        let s = &json["speculative"];
        assert_eq!(
            (s["verification"].as_str(), s["draft_tokens"].as_u64()),
            (Some("greedy"), Some(3))
        );
        assert_eq!(s["draft_calls"], 0);
        assert_eq!(json["prompt_lookup"]["max_ngram"], 2);
    }

    // The bundled model on a prompt whose greedy continuation repeats
    // itself (stage directions): the lookup copies the repeats, most drafts
    // are kept, and the ids are plain greedy decoding's.
    let prompt = "First Citizen: Before we proceed any further, hear me speak.";
    let args = ["--prompt", prompt, "--max-new-tokens", "40", "--ignore-eos", "--json"];
    let plain = run_json(&args);
    let lookup = run_json(&[&args[..], &["--prompt-lookup", "8"]].concat());
    assert_eq!(lookup["generated_ids"], plain["generated_ids"]);
    let s = &lookup["speculative"];
    assert!(s["acceptance_rate"].as_f64().unwrap() > 0.5, "{s}");
    assert!(s["target_calls"].as_u64().unwrap() <= 40 / 2, "{s}");

    // Text mode: the statistics on stderr.
    let out = run(&["--prompt", prompt, "--max-new-tokens", "8", "--prompt-lookup", "4"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("drafted tokens accepted"), "{}", text(&out.stderr));
}

#[derive(Deserialize)]
struct BeamFixture {
    cases: Vec<BeamCase>,
}

#[derive(Deserialize)]
struct BeamCase {
    prompt_ids: Vec<u32>,
    hypotheses: Vec<BeamHypothesis>,
}

#[derive(Deserialize)]
struct BeamHypothesis {
    tokens: Vec<u32>,
    score: f32,
}

#[test]
fn num_beams_gives_transformers_beam_search() {
    // The first case of `beam_search.json`: 4 beams, 20 tokens, GPT-2's EOS,
    // the first prompt of the parity fixtures.
    let raw = std::fs::read_to_string(data().join("beam_search.json")).unwrap();
    let fixture: BeamFixture = serde_json::from_str(&raw).unwrap();
    let want = &fixture.cases[0];
    let case = &cases()[0];
    assert_eq!(want.prompt_ids, case.prompt_ids);
    let model = data().join("tiny-gpt2");
    let m = model.to_str().unwrap();
    let args =
        ["--model", m, "--prompt", &case.prompt, "--max-new-tokens", "20", "--num-beams", "4"];
    let json = run_json(&[&args[..], &["--json"]].concat());
    let beams = json["beams"].as_array().unwrap();
    assert_eq!(beams.len(), want.hypotheses.len());
    for (got, want) in beams.iter().zip(&want.hypotheses) {
        assert_eq!(ids(&got["generated_ids"]), want.tokens);
        let score = got["score"].as_f64().unwrap() as f32;
        assert!(
            (score - want.score).abs() < 1e-4 * want.score.abs().max(1.0),
            "{score} vs {}",
            want.score
        );
    }

    // Text mode: the best hypothesis on stdout, every hypothesis on stderr.
    let out = run(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let best = Tokenizer::gpt2().unwrap().decode(&fixture.cases[0].hypotheses[0].tokens).unwrap();
    assert_eq!(text(&out.stdout), format!("{}{best}\n", case.prompt));
    assert_eq!(text(&out.stderr).matches("beam ").count(), 4, "{}", text(&out.stderr));
}
