//! The tokenizer against GPT-2's own files, as Hugging Face's tokenizer
//! reads them (ids recorded by `scripts/make_parity_fixtures.py`).

use std::path::Path;

use decoding::Detokenizer;
use gpt2::tokenizer::byte_to_char;
use gpt2::{Gpt2Error, Tokenizer};
use proptest::prelude::*;
use serde::Deserialize;

#[derive(Deserialize)]
struct Cases {
    merges_fnv1a64: String,
    merges: usize,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    text: String,
    ids: Vec<u32>,
    tokens: Vec<String>,
}

fn cases() -> Cases {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tokenizer_cases.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn builtin() -> &'static Tokenizer {
    static TOK: std::sync::OnceLock<Tokenizer> = std::sync::OnceLock::new();
    TOK.get_or_init(|| Tokenizer::gpt2().unwrap())
}

#[path = "common/temp_dir.rs"]
mod temp_dir;

use temp_dir::TempDir;

fn byte_level(bytes: &[u8]) -> String {
    let table = byte_to_char();
    bytes.iter().map(|&b| table[b as usize]).collect()
}

/// `vocab.json` and the merge lines written from a tokenizer.
fn vocab_and_merges(tok: &Tokenizer) -> (serde_json::Map<String, serde_json::Value>, Vec<String>) {
    let mut vocab = serde_json::Map::new();
    for id in 0..tok.vocab_size() as u32 {
        vocab.insert(tok.token_string(id).unwrap(), id.into());
    }
    let merges =
        tok.merges().iter().map(|(a, b)| format!("{} {}", byte_level(a), byte_level(b))).collect();
    (vocab, merges)
}

fn fnv1a64(data: &[u8]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

#[test]
fn the_seed_prompt() {
    let tok = builtin();
    let ids = tok.encode("My favourite movie is").unwrap();
    assert_eq!(ids, [3666, 12507, 3807, 318]);
    let strings: Vec<String> = ids.iter().map(|&id| tok.token_string(id).unwrap()).collect();
    assert_eq!(strings, ["My", "Ġfavourite", "Ġmovie", "Ġis"]);
    // The seed's argmax continuation, 'ĠThe'.
    assert_eq!(tok.encode(" The").unwrap(), [383]);
    assert_eq!(tok.token_string(383).unwrap(), "ĠThe");
    assert_eq!(tok.vocab_size(), 50257);
    assert_eq!(tok.added_token_id("<|endoftext|>"), Some(50256));
}

#[test]
fn builtin_merges_are_gpt2s_merges_txt() {
    let expected = cases();
    let (_, merges) = vocab_and_merges(builtin());
    assert_eq!(merges.len(), expected.merges);
    let blob: String = merges.iter().map(|m| format!("{m}\n")).collect();
    assert_eq!(format!("{:016x}", fnv1a64(blob.as_bytes())), expected.merges_fnv1a64);
}

#[test]
fn agrees_with_hugging_face_on_tricky_strings() {
    let tok = builtin();
    let cases = cases();
    assert!(cases.cases.len() > 50);
    for case in &cases.cases {
        let ids = tok.encode(&case.text).unwrap();
        assert_eq!(ids, case.ids, "{:?}", case.text);
        let strings: Vec<String> = ids.iter().map(|&id| tok.token_string(id).unwrap()).collect();
        assert_eq!(strings, case.tokens, "{:?}", case.text);
        assert_eq!(tok.decode(&ids).unwrap(), case.text);
    }
}

#[test]
fn vocab_json_and_merges_txt_give_the_same_tokenizer() {
    let dir = TempDir::new("vocab-merges");
    let (vocab, merges) = vocab_and_merges(builtin());
    std::fs::write(dir.0.join("vocab.json"), serde_json::to_string(&vocab).unwrap()).unwrap();
    let text = format!("#version: 0.2\n{}\n", merges.join("\n"));
    std::fs::write(dir.0.join("merges.txt"), text).unwrap();
    let tok = Tokenizer::from_dir(&dir.0).unwrap().expect("files are present");
    assert_eq!(tok.vocab_size(), 50257);
    for case in &cases().cases {
        assert_eq!(tok.encode(&case.text).unwrap(), case.ids, "{:?}", case.text);
    }
}

#[test]
fn tokenizer_json_in_both_merge_formats() {
    let (vocab, merges) = vocab_and_merges(builtin());
    let as_pairs: Vec<serde_json::Value> = merges
        .iter()
        .map(|m| {
            let (a, b) = m.split_once(' ').unwrap();
            serde_json::json!([a, b])
        })
        .collect();
    for (name, merges) in
        [("lines", serde_json::json!(merges)), ("pairs", serde_json::json!(as_pairs))]
    {
        let dir = TempDir::new(&format!("tokenizer-json-{name}"));
        let doc = serde_json::json!({
            "version": "1.0",
            "added_tokens": [{"id": 50256, "content": "<|endoftext|>", "special": true}],
            "normalizer": null,
            "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
            "decoder": {"type": "ByteLevel"},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                      "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false,
                      "ignore_merges": false, "vocab": vocab, "merges": merges}
        });
        std::fs::write(dir.0.join("tokenizer.json"), doc.to_string()).unwrap();
        let tok = Tokenizer::from_dir(&dir.0).unwrap().unwrap();
        for case in &cases().cases {
            assert_eq!(tok.encode(&case.text).unwrap(), case.ids, "{name}: {:?}", case.text);
        }

        // add_prefix_space: each piece between added tokens gets a leading
        // space unless it has one (what the Hugging Face library does:
        // "a<|endoftext|>b" is [" a", <|endoftext|>, " b"]).
        let mut doc = doc;
        doc["pre_tokenizer"]["add_prefix_space"] = true.into();
        std::fs::write(dir.0.join("tokenizer.json"), doc.to_string()).unwrap();
        let prefixed = Tokenizer::from_dir(&dir.0).unwrap().unwrap();
        let plain = builtin();
        assert_eq!(prefixed.encode("Hello").unwrap(), plain.encode(" Hello").unwrap());
        let mut expected = plain.encode(" a").unwrap();
        expected.push(50256);
        expected.extend(plain.encode(" b").unwrap());
        assert_eq!(prefixed.encode("a<|endoftext|>b").unwrap(), expected);
        assert_eq!(
            prefixed.encode(" x<|endoftext|> y").unwrap(),
            plain.encode(" x<|endoftext|> y").unwrap()
        );
    }
}

#[test]
fn bad_tokenizer_files_are_errors_that_name_the_problem() {
    let dir = TempDir::new("bad");
    let vocab = serde_json::json!({"a": 0, "b": 1});
    std::fs::write(dir.0.join("vocab.json"), vocab.to_string()).unwrap();
    std::fs::write(dir.0.join("merges.txt"), "#version: 0.2\na b\n").unwrap();
    let err = Tokenizer::from_dir(&dir.0).unwrap_err();
    assert!(matches!(err, Gpt2Error::Tokenizer { .. }), "{err}");

    let (mut vocab, merges) = vocab_and_merges(builtin());
    std::fs::write(dir.0.join("merges.txt"), format!("{}\nonlyone\n", merges.join("\n"))).unwrap();
    std::fs::write(dir.0.join("vocab.json"), serde_json::to_string(&vocab).unwrap()).unwrap();
    let err = Tokenizer::from_dir(&dir.0).unwrap_err().to_string();
    assert!(err.contains("line 50001") && err.contains("onlyone"), "{err}");

    // A merge whose result is not in the vocabulary.
    let the = vocab.remove("Ġthe").unwrap();
    vocab.insert("Ġthe_renamed".into(), the.clone());
    std::fs::write(dir.0.join("vocab.json"), serde_json::to_string(&vocab).unwrap()).unwrap();
    std::fs::write(dir.0.join("merges.txt"), merges.join("\n")).unwrap();
    let err = Tokenizer::from_dir(&dir.0).unwrap_err().to_string();
    assert!(err.contains("\"Ġthe\" is not in the vocabulary"), "{err}");

    // A hole in the ids.
    vocab.remove("Ġthe_renamed");
    std::fs::write(dir.0.join("vocab.json"), serde_json::to_string(&vocab).unwrap()).unwrap();
    let err = Tokenizer::from_dir(&dir.0).unwrap_err().to_string();
    assert!(err.contains(&format!("no token has id {the}")), "{err}");

    std::fs::write(
        dir.0.join("tokenizer.json"),
        r#"{"model": {"type": "WordPiece", "vocab": {}, "merges": []}}"#,
    )
    .unwrap();
    let err = Tokenizer::from_dir(&dir.0).unwrap_err().to_string();
    assert!(err.contains("WordPiece"), "{err}");

    let empty = TempDir::new("empty");
    assert!(Tokenizer::from_dir(&empty.0).unwrap().is_none());
}

#[test]
fn long_runs_stay_fast_and_exact() {
    let tok = builtin();
    // One 20 000-byte word: the merge queue keeps this near-linear.
    let text = "ab".repeat(10_000);
    let ids = tok.encode(&text).unwrap();
    assert_eq!(tok.decode(&ids).unwrap(), text);
    let spaces = " ".repeat(5000) + "x";
    let ids = tok.encode(&spaces).unwrap();
    assert_eq!(tok.decode(&ids).unwrap(), spaces);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn text_round_trips(text in any::<String>()) {
        let tok = builtin();
        let ids = tok.encode(&text).unwrap();
        prop_assert_eq!(tok.decode(&ids).unwrap(), text);
    }

    #[test]
    fn byte_strings_round_trip(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let tok = builtin();
        let ids = tok.encode_bytes(&bytes).unwrap();
        prop_assert_eq!(tok.decode_bytes(&ids).unwrap(), bytes.clone());
        // Valid UTF-8 without added tokens encodes the same either way.
        if let Ok(text) = std::str::from_utf8(&bytes)
            && !text.contains("<|endoftext|>")
        {
            prop_assert_eq!(tok.encode(text).unwrap(), ids);
        }
    }

    #[test]
    fn detokenizer_bytes_are_the_decoded_bytes(ids in proptest::collection::vec(0u32..50257, 0..40)) {
        let tok = builtin();
        let mut bytes = Vec::new();
        for &id in &ids {
            Detokenizer::decode(tok, id, &mut bytes).unwrap();
        }
        prop_assert_eq!(&bytes, &tok.decode_bytes(&ids).unwrap());
        prop_assert_eq!(String::from_utf8_lossy(&bytes), tok.decode(&ids).unwrap());
    }
}

#[test]
fn out_of_range_ids_are_errors() {
    let tok = builtin();
    assert!(matches!(
        tok.decode(&[50257]),
        Err(Gpt2Error::TokenOutOfRange { token: 50257, vocab: 50257 })
    ));
    assert!(tok.token_bytes(u32::MAX).is_none());
    let mut out = b"kept".to_vec();
    assert_eq!(Detokenizer::decode(tok, 50257, &mut out), Err(decoding::UnknownToken(50257)));
    assert_eq!(out, b"kept");
}
