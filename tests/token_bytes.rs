//! Hugging Face tokenizers as detokenizers: `TokenBytes` read from a
//! `tokenizer.json` (byte-level BPE and SentencePiece-style byte fallback),
//! and, with the feature `tokenizers`, the `tokenizers` crate's `Tokenizer`:
//! the bytes each token adds, and text streamed through the generator with
//! stop strings that span tokens and multi-byte characters.

use std::collections::BTreeMap;

use decoding::sampler::Greedy;
use decoding::{
    Detokenizer, FinishReason, GenerateError, GenerateOptions, Generation, Generator, Pipeline,
    TokenBytes, TokenId,
};
use serde_json::json;

#[path = "common/toy_models.rs"]
mod toy_models;
use toy_models::Script;

/// GPT-2's `bytes_to_unicode`, as its Python source writes it: the
/// character that stands for each byte.
fn bytes_to_unicode() -> Vec<char> {
    let mut chars = vec!['\0'; 256];
    let mut n = 0;
    for b in 0..256u32 {
        let printable =
            (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b);
        let c = if printable {
            b
        } else {
            n += 1;
            255 + n
        };
        chars[b as usize] = char::from_u32(c).unwrap();
    }
    chars
}

/// A byte-level BPE tokenizer (GPT-2 style): id `b` is the byte `b`, then
/// a few merges (one holds the first two bytes of "€"), then an added
/// special token.
fn byte_level() -> (String, BTreeMap<String, TokenId>) {
    let alphabet = bytes_to_unicode();
    let mut vocab: BTreeMap<String, TokenId> =
        alphabet.iter().enumerate().map(|(b, c)| (c.to_string(), b as TokenId)).collect();
    let merges = [("Ġ", "w"), ("Ġw", "o"), ("â", "Ĥ"), ("r", "l")];
    for (a, b) in merges {
        let id = vocab.len() as TokenId;
        vocab.insert(format!("{a}{b}"), id);
    }
    let eot = vocab.len();
    let text = json!({
        "version": "1.0",
        "added_tokens": [{"id": eot, "content": "<|endoftext|>", "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false, "special": true}],
        "normalizer": null,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
            "use_regex": true},
        "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
            "use_regex": true},
        "model": {"type": "BPE", "vocab": vocab,
            "merges": merges.iter().map(|(a, b)| format!("{a} {b}")).collect::<Vec<_>>()}
    });
    (text.to_string(), vocab)
}

/// A SentencePiece-style BPE tokenizer with byte fallback (Llama 2 style):
/// `<unk>`, `<s>`, `</s>`, the 256 byte pieces, then ASCII letters, digits
/// and `▁` pieces; every other character falls back to its UTF-8 bytes.
fn byte_fallback() -> (String, BTreeMap<String, TokenId>) {
    let mut vocab = BTreeMap::new();
    let mut add = |piece: String| {
        let id = vocab.len() as TokenId;
        vocab.insert(piece, id);
    };
    for special in ["<unk>", "<s>", "</s>"] {
        add(special.to_string());
    }
    for b in 0..=255u8 {
        add(format!("<0x{b:02X}>"));
    }
    for c in ('a'..='z').chain('0'..='9').chain(['▁', ':']) {
        add(c.to_string());
    }
    let merges = [("▁", "o"), ("▁o", "k"), ("▁", "5")];
    for (a, b) in merges {
        add(format!("{a}{b}"));
    }
    let added = |id: TokenId, content: &str| {
        json!({"id": id, "content": content, "single_word": false, "lstrip": false,
            "rstrip": false, "normalized": false, "special": true})
    };
    let text = json!({
        "version": "1.0",
        "added_tokens": [added(0, "<unk>"), added(1, "<s>"), added(2, "</s>")],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "▁"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
        "pre_tokenizer": null,
        "post_processor": null,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "vocab": vocab, "unk_token": "<unk>", "byte_fallback": true,
            "fuse_unk": true,
            "merges": merges.iter().map(|(a, b)| format!("{a} {b}")).collect::<Vec<_>>()}
    });
    (text.to_string(), vocab)
}

/// The ids of `pieces` in `vocab`.
fn ids(vocab: &BTreeMap<String, TokenId>, pieces: &[&str]) -> Vec<TokenId> {
    pieces.iter().map(|p| *vocab.get(*p).unwrap_or_else(|| panic!("no piece {p:?}"))).collect()
}

/// The concatenated bytes of `ids`.
fn decode_all(detokenizer: &dyn Detokenizer, ids: &[TokenId]) -> Vec<u8> {
    let mut out = Vec::new();
    for &id in ids {
        detokenizer.decode(id, &mut out).unwrap();
    }
    out
}

/// Runs `script` greedily through `detokenizer` with the stop strings, in
/// one go and streamed; checks that both agree and returns the run and the
/// text each step released.
fn stream(
    detokenizer: &dyn Detokenizer,
    vocab: usize,
    script: &[TokenId],
    stops: &[&str],
) -> (Generation, Vec<String>) {
    let options =
        GenerateOptions::builder(script.len()).stop_strings(stops.iter().copied()).build().unwrap();
    let mut generator = Generator::new(Pipeline::new(), Greedy, options);
    let model = || Script::new(vocab, script);
    let out = generator.generate_text(&mut model(), detokenizer, &[0]).unwrap();
    let mut chunks = Vec::new();
    let mut tokens = Vec::new();
    for step in generator.stream_text(&mut model(), detokenizer, &[0]).unwrap() {
        let step = step.unwrap();
        tokens.push(step.token);
        chunks.push(step.text);
    }
    assert_eq!(tokens, out.tokens);
    assert_eq!(chunks.concat(), out.text.clone().unwrap());
    (out, chunks)
}

#[test]
fn byte_level_pieces_are_their_bytes_and_split_characters_stream_whole() {
    let (json, vocab) = byte_level();
    let table = TokenBytes::from_tokenizer_json(&json).unwrap();
    assert_eq!(table.len(), vocab.len() + 1);
    assert_eq!(table.get(0x41), Some(&b"A"[..]));
    assert_eq!(table.get(vocab["Ġwo"]), Some(&b" wo"[..]));
    assert_eq!(table.get(vocab["âĤ"]), Some(&[0xE2, 0x82][..]));
    assert_eq!(table.get(vocab.len() as TokenId), Some(&b"<|endoftext|>"[..]));
    assert!(table.is_special(vocab.len() as TokenId) && !table.is_special(0));

    // "a€b€€c" with the stop string "€€": "€" is "âĤ" + "¬" (two tokens,
    // the first holding two of its three bytes), and "€€" spans four.
    let script = ids(&vocab, &["a", "âĤ", "¬", "b", "âĤ", "¬", "âĤ", "¬", "c"]);
    let (out, chunks) = stream(&table, table.len(), &script, &["€€"]);
    assert_eq!(out.text.as_deref(), Some("a€b"));
    assert_eq!(out.finish_reason, FinishReason::StopString { index: 0 });
    assert_eq!(out.tokens, script[..8]);
    // Nothing of a character is released before it is complete, and "€"
    // waits while it may start the stop string.
    assert_eq!(chunks, ["a", "", "", "€b", "", "", "", ""]);

    // One byte per token: a stop string that starts inside a token's text.
    let bytes = "x€y".as_bytes().iter().map(|&b| TokenId::from(b)).collect::<Vec<_>>();
    let (out, chunks) = stream(&table, table.len(), &bytes, &["€y"]);
    assert_eq!(out.text.as_deref(), Some("x"));
    assert_eq!(chunks, ["x", "", "", "", ""]);
}

#[test]
fn byte_fallback_pieces_are_their_bytes_and_spaces() {
    let (json, vocab) = byte_fallback();
    let table = TokenBytes::from_tokenizer_json(&json).unwrap();
    assert_eq!(table.len(), vocab.len());
    assert_eq!(table.get(vocab["<0xE2>"]), Some(&[0xE2][..]));
    assert_eq!(table.get(vocab["▁ok"]), Some(&b" ok"[..]));
    assert_eq!(table.get(vocab["▁"]), Some(&b" "[..]));
    assert!(table.is_special(2) && !table.is_special(vocab["a"]));

    // " 5€ é ok" with the stop string "€ é": the stop spans five tokens,
    // the two characters are byte-fallback tokens.
    let pieces = ["▁5", "<0xE2>", "<0x82>", "<0xAC>", "▁", "<0xC3>", "<0xA9>", "▁ok"];
    let script = ids(&vocab, &pieces);
    assert_eq!(decode_all(&table, &script), " 5€ é ok".as_bytes());
    let (out, chunks) = stream(&table, table.len(), &script, &["€ é"]);
    assert_eq!(out.text.as_deref(), Some(" 5"));
    assert_eq!(out.finish_reason, FinishReason::StopString { index: 0 });
    assert_eq!(chunks, [" 5", "", "", "", "", "", ""]);
    // Without the stop string the characters come out whole, each once
    // its last byte arrived.
    let (out, chunks) = stream(&table, table.len(), &script, &[]);
    assert_eq!(out.text.as_deref(), Some(" 5€ é ok"));
    assert_eq!(chunks, [" 5", "", "", "€", " ", "", "é", " ok"]);
}

#[test]
fn an_id_the_tokenizer_does_not_use_is_an_unknown_token() {
    let json = r#"{"decoder": {"type": "ByteLevel"}, "model": {"vocab": {"a": 0, "b": 2}}}"#;
    let table = TokenBytes::from_tokenizer_json(json).unwrap();
    let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(4));
    let mut model = Script::new(3, &[2, 1]);
    let err = generator.generate_text(&mut model, &table, &[0]).unwrap_err();
    assert!(matches!(err, GenerateError::UnknownToken { step: 1, token: 1 }), "{err:?}");
}

/// The `tokenizers` crate's `Tokenizer`: the same bytes as the table read
/// from its file, the text it encodes, and the text it decodes.
#[cfg(feature = "tokenizers")]
mod tokenizers_crate {
    use super::*;
    use tokenizers::Tokenizer;

    const TEXT: &str = "Hello wor€ld: naïve 5€ 😀 ok";

    /// Checks the three ways to get a token's bytes against each other and
    /// returns the encoded ids of `text`.
    fn same_bytes_three_ways(json: &str, text: &str) -> (Tokenizer, TokenBytes, Vec<TokenId>) {
        let tokenizer: Tokenizer = json.parse().unwrap();
        let from_file = TokenBytes::from_tokenizer_json(json).unwrap();
        let table = TokenBytes::from_tokenizer(&tokenizer).unwrap();
        assert_eq!(table, from_file);
        for id in 0..table.len() as TokenId + 2 {
            let mut direct = Vec::new();
            match Detokenizer::decode(&tokenizer, id, &mut direct) {
                Ok(()) => assert_eq!(Some(&direct[..]), table.get(id), "id {id}"),
                Err(e) => {
                    assert_eq!(e, decoding::UnknownToken(id));
                    assert_eq!(table.get(id), None);
                    assert!(direct.is_empty());
                }
            }
        }
        let ids = tokenizer.encode(text, false).unwrap().get_ids().to_vec();
        (tokenizer, table, ids)
    }

    #[test]
    fn byte_level_bytes_are_the_encoded_text() {
        let (json, vocab) = byte_level();
        let (tokenizer, table, ids) = same_bytes_three_ways(&json, TEXT);
        // The merge "âĤ" is used: a token holds two bytes of "€".
        assert!(ids.contains(&vocab["âĤ"]), "{ids:?}");
        assert_eq!(decode_all(&table, &ids), TEXT.as_bytes());
        assert_eq!(decode_all(&tokenizer, &ids), TEXT.as_bytes());
        assert_eq!((*tokenizer).decode(&ids, false).unwrap(), TEXT);
        // A special token is its text.
        let eot = tokenizer.token_to_id("<|endoftext|>").unwrap();
        assert_eq!(decode_all(&tokenizer, &[eot]), b"<|endoftext|>");
    }

    #[test]
    fn byte_fallback_bytes_are_the_encoded_text_with_its_leading_space() {
        let (json, vocab) = byte_fallback();
        let (tokenizer, table, ids) = same_bytes_three_ways(&json, TEXT);
        assert!(ids.contains(&vocab["<0xE2>"]), "{ids:?}");
        // The normalizer prepends "▁": the tokens add " " + the text;
        // `decode` strips that first space.
        let spaced = format!(" {TEXT}");
        assert_eq!(decode_all(&table, &ids), spaced.as_bytes());
        assert_eq!(decode_all(&tokenizer, &ids), spaced.as_bytes());
        assert_eq!((*tokenizer).decode(&ids, false).unwrap(), TEXT);
    }

    #[test]
    fn a_tokenizer_streams_stop_strings_like_its_table() {
        for (json, stop) in [(byte_level().0, "€ 😀"), (byte_fallback().0, "ï")] {
            let (tokenizer, table, ids) = same_bytes_three_ways(&json, TEXT);
            let (out, chunks) = stream(&tokenizer, table.len(), &ids, &[stop]);
            let (expected, expected_chunks) = stream(&table, table.len(), &ids, &[stop]);
            assert_eq!(out.tokens, expected.tokens);
            assert_eq!(chunks, expected_chunks);
            let text = out.text.unwrap();
            assert!(TEXT.starts_with(text.trim_start()) && !text.contains(stop), "{text:?}");
            assert_eq!(out.finish_reason, FinishReason::StopString { index: 0 });
        }
    }

    #[test]
    fn other_decoders_are_errors_and_unknown_tokens() {
        let json = json!({
            "version": "1.0", "added_tokens": [], "normalizer": null,
            "pre_tokenizer": {"type": "Whitespace"}, "post_processor": null,
            "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
            "model": {"type": "WordPiece", "unk_token": "[UNK]",
                "continuing_subword_prefix": "##", "max_input_chars_per_word": 100,
                "vocab": {"[UNK]": 0, "un": 1, "##able": 2}}
        })
        .to_string();
        let tokenizer: Tokenizer = json.parse().unwrap();
        assert!(matches!(
            TokenBytes::from_tokenizer(&tokenizer),
            Err(decoding::TokenizerError::UnsupportedDecoder { .. })
        ));
        assert_eq!(
            Detokenizer::decode(&tokenizer, 1, &mut Vec::new()),
            Err(decoding::UnknownToken(1))
        );
    }
}
