//! Structured outputs on the bundled model: a corpus of JSON schemas run
//! through the Generator (every completed output validated against its
//! schema by an independent validator; unsupported features are typed
//! errors, counted and listed), and the command line's constraint flags.

use std::path::PathBuf;
use std::process::{Command, Output};

use decoding::processors::Temperature;
use decoding::sampler::Categorical;
use decoding::structured::{Grammar, StructuredError, TokenVocabulary};
use decoding::{FinishReason, GenerateOptions, Generator, Pipeline};
use gpt2::{Gpt2, Tokenizer};
use serde_json::{Value, json};

const EOS: u32 = 50256;

fn bundled() -> Option<(Gpt2, Tokenizer)> {
    let dir = gpt2::lookup::bundled_dir();
    if !gpt2::lookup::is_model_dir(&dir) {
        return None;
    }
    Some((Gpt2::from_dir(&dir).unwrap(), Tokenizer::gpt2().unwrap()))
}

/// Schemas of the kinds real-world collections hold.
fn corpus() -> Vec<(&'static str, Value)> {
    vec![
        ("enum", json!({"enum": ["red", "green", "blue"]})),
        (
            "const",
            json!({"type": "object", "properties": {"v": {"const": 2}}, "required": ["v"], "additionalProperties": false}),
        ),
        (
            "person",
            json!({
                "type": "object",
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 12},
                    "age": {"type": "integer", "minimum": 0, "maximum": 120}
                },
                "required": ["name", "age"],
                "additionalProperties": false
            }),
        ),
        (
            "ref-defs",
            json!({
                "$defs": {"point": {
                    "type": "object",
                    "properties": {"x": {"type": "integer", "minimum": -99, "maximum": 99}, "y": {"type": "integer", "minimum": -99, "maximum": 99}},
                    "required": ["x", "y"],
                    "additionalProperties": false
                }},
                "type": "object",
                "properties": {"from": {"$ref": "#/$defs/point"}, "to": {"$ref": "#/$defs/point"}},
                "required": ["from", "to"],
                "additionalProperties": false
            }),
        ),
        (
            "definitions",
            json!({
                "definitions": {"flag": {"type": "boolean"}},
                "type": "array",
                "items": {"$ref": "#/definitions/flag"},
                "minItems": 2,
                "maxItems": 4
            }),
        ),
        ("pattern", json!({"type": "string", "pattern": "^[A-Z]{2}-[0-9]{3}$"})),
        (
            "min-items",
            json!({"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 9}, "minItems": 3, "maxItems": 5}),
        ),
        (
            "nested",
            json!({
                "type": "object",
                "properties": {
                    "user": {
                        "type": "object",
                        "properties": {
                            "id": {"type": "integer", "minimum": 0, "maximum": 9999},
                            "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3}
                        },
                        "required": ["id", "tags"],
                        "additionalProperties": false
                    },
                    "active": {"type": "boolean"}
                },
                "required": ["user", "active"],
                "additionalProperties": false
            }),
        ),
        (
            "additional-properties-schema",
            json!({
                "type": "object",
                "properties": {"id": {"type": "integer", "minimum": 0, "maximum": 999}},
                "required": ["id"],
                "additionalProperties": {"type": "integer", "minimum": 0, "maximum": 99},
                "maxProperties": 3
            }),
        ),
        (
            "any-of",
            json!({"anyOf": [{"type": "integer", "minimum": 0, "maximum": 1000}, {"type": "string", "maxLength": 5}]}),
        ),
        ("format-date", json!({"type": "string", "format": "date"})),
        ("format-uuid", json!({"type": "string", "format": "uuid"})),
        ("format-email", json!({"type": "string", "format": "email"})),
        ("format-date-time", json!({"type": "string", "format": "date-time"})),
        ("number-range", json!({"type": "number", "minimum": -5, "exclusiveMaximum": 10})),
        // Features the engine rejects.
        // oneOf of overlapping schemas (an integer is a number).
        ("one-of", json!({"oneOf": [{"type": "integer"}, {"type": "number"}]})),
        (
            "dependent-schemas",
            json!({
                "type": "object",
                "properties": {"a": {"type": "integer"}},
                "dependentSchemas": {"a": {"required": ["b"]}}
            }),
        ),
        ("external-ref", json!({"$ref": "https://example.com/schemas/thing.json"})),
    ]
}

#[test]
fn schema_corpus_outputs_validate_on_the_bundled_model() {
    let Some((mut model, tokenizer)) = bundled() else {
        return;
    };
    let vocab =
        TokenVocabulary::from_detokenizer(&tokenizer, tokenizer.vocab_size(), &[EOS]).unwrap();
    let prompt = tokenizer.encode("The answer in JSON:").unwrap();
    let mut unsupported = Vec::new();
    let mut completed = 0;
    let mut runs = 0;
    // Schemas none of whose runs completed within the token budget (the
    // small model can repeat digits or characters until the limit).
    let mut never = Vec::new();
    for (name, schema) in corpus() {
        let constraint = match vocab.constraint(&Grammar::json_schema(schema.clone())) {
            Ok(c) => c,
            Err(
                e @ (StructuredError::Unsupported { .. } | StructuredError::InvalidSchema { .. }),
            ) => {
                unsupported.push((name, e.to_string().lines().next().unwrap().to_string()));
                continue;
            }
            Err(e) => panic!("{name}: {e}"),
        };
        let validator = jsonschema::options().should_validate_formats(true).build(&schema).unwrap();
        let pipeline = Pipeline::new().with(constraint).with(Temperature::new(0.7).unwrap());
        let mut generator = Generator::new(pipeline, Categorical::new(), GenerateOptions::new(1));
        let mut done = 0;
        for seed in 0..4 {
            let options = GenerateOptions::builder(120)
                .eos_token(EOS)
                .vocab_size(tokenizer.vocab_size())
                .seed(seed)
                .build()
                .unwrap();
            generator.set_options(options);
            let out = generator.generate_text(&mut model, &tokenizer, &prompt).unwrap();
            runs += 1;
            if out.finish_reason == FinishReason::Length {
                continue;
            }
            let text = out.text.unwrap();
            let value: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{name}, seed {seed}: {text:?} is not JSON: {e}"));
            assert!(validator.is_valid(&value), "{name}, seed {seed}: {text} is not valid");
            done += 1;
        }
        if done == 0 {
            never.push(name);
        }
        completed += done;
    }
    eprintln!(
        "{completed} of {runs} runs completed and validated; unsupported ({}): {unsupported:#?}",
        unsupported.len()
    );
    eprintln!("no run completed: {never:?}");
    let supported = corpus().len() - unsupported.len();
    assert!(never.len() * 4 <= supported, "too few schemas completed: {never:?}");
    let names: Vec<&str> = unsupported.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["one-of", "dependent-schemas", "external-ref"]);
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpt2")).args(args).output().unwrap()
}

fn temp_file(name: &str, text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("gpt2-structured-{}-{name}", std::process::id()));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_command_line_produces_valid_json_for_a_schema() {
    if bundled().is_none() {
        return;
    }
    let schema = json!({
        "type": "object",
        "properties": {"title": {"type": "string", "maxLength": 20}, "year": {"type": "integer", "minimum": 1900, "maximum": 2030}},
        "required": ["title", "year"],
        "additionalProperties": false
    });
    let path = temp_file("movie.json", &schema.to_string());
    let bundled = gpt2::lookup::bundled_dir();
    let out = run(&[
        "--model",
        bundled.to_str().unwrap(),
        "--json-schema",
        path.to_str().unwrap(),
        "--max-new-tokens",
        "80",
        "--json",
    ]);
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["grammar_complete"], true, "{result}");
    let text = result["text"].as_str().unwrap();
    let value: Value = serde_json::from_str(text).unwrap();
    assert!(jsonschema::is_valid(&schema, &value), "{text}");

    let out = run(&["--model", bundled.to_str().unwrap(), "--choice", "yes,no", "--json"]);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(["yes", "no"].contains(&result["text"].as_str().unwrap()), "{result}");
    assert_eq!(result["finish_reason"], "constraint");

    let out =
        run(&["--model", bundled.to_str().unwrap(), "--regex", "[0-9]{3}-[a-z]{2}", "--json"]);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = result["text"].as_str().unwrap();
    let re = regex_lite_match(text);
    assert!(re, "{text:?}");

    // --grammar reads GBNF: a JSON array of one to three small integers.
    let gbnf = temp_file(
        "numbers.gbnf",
        "# numbers\nroot ::= \"[\" num (\", \" num){0,2} \"]\"\nnum ::= [1-9] [0-9]?\n",
    );
    let out =
        run(&["--model", bundled.to_str().unwrap(), "--grammar", gbnf.to_str().unwrap(), "--json"]);
    let _ = std::fs::remove_file(&gbnf);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(result["grammar_complete"], true, "{result}");
    let numbers: Vec<u64> = serde_json::from_str(result["text"].as_str().unwrap()).unwrap();
    assert!((1..=3).contains(&numbers.len()), "{result}");
    assert!(numbers.iter().all(|n| (1..=99).contains(n)), "{result}");
    // ... and llguidance's Lark-like syntax after a %llguidance header.
    let lark = temp_file("answer.lark", "%llguidance {}\nstart: \"yes\" | \"no\"\n");
    let out =
        run(&["--model", bundled.to_str().unwrap(), "--grammar", lark.to_str().unwrap(), "--json"]);
    let _ = std::fs::remove_file(&lark);
    let result: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(["yes", "no"].contains(&result["text"].as_str().unwrap()), "{result}");
}

/// `[0-9]{3}-[a-z]{2}`, checked by hand.
fn regex_lite_match(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 6
        && b[..3].iter().all(u8::is_ascii_digit)
        && b[3] == b'-'
        && b[4..].iter().all(u8::is_ascii_lowercase)
}

#[test]
fn bad_constraints_exit_with_one_line() {
    let Some(_) = bundled() else {
        return;
    };
    let bundled = gpt2::lookup::bundled_dir();
    let model = bundled.to_str().unwrap();
    let malformed = temp_file("malformed.json", "{\"type\": ");
    let unsupported =
        temp_file("one-of.json", r#"{"oneOf": [{"type": "integer"}, {"type": "number"}]}"#);
    let grammar = temp_file("bad.gbnf", "root ::= \"(\" undefined-rule \")\"");
    let lark = temp_file("bad.lark", "%llguidance {}\nstart: undefined_rule");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--json-schema", malformed.to_str().unwrap()], "invalid JSON schema"),
        (vec!["--json-schema", unsupported.to_str().unwrap()], "oneOf"),
        (vec!["--json-schema", "/nonexistent/schema.json"], "/nonexistent/schema.json"),
        (vec!["--regex", ""], "the regex is empty"),
        (vec!["--regex", "(ab"], "invalid regex"),
        (
            vec!["--grammar", grammar.to_str().unwrap()],
            "invalid GBNF grammar at line 1, column 14: undefined rule `undefined-rule`",
        ),
        (vec!["--grammar", lark.to_str().unwrap()], "invalid grammar"),
    ];
    for (flags, expected) in cases {
        let mut args = vec!["--model", model];
        args.extend(&flags);
        let out = run(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{flags:?}: {stderr}");
        assert!(stderr.contains(expected), "{flags:?}: {stderr}");
    }
    for path in [malformed, unsupported, grammar, lark] {
        let _ = std::fs::remove_file(path);
    }
    let out = run(&["--regex", "a", "--choice", "a,b"]);
    assert_eq!(out.status.code(), Some(2));
}
