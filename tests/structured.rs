//! Structured outputs (feature `structured`): the constraint stage on toy
//! models, through the generator, speculative decoding, batches and beam
//! search; the exactness of the constrained distribution; bad input.
#![cfg(feature = "structured")]

#[path = "common/chi_square.rs"]
mod chi_square;

use decoding::processors::TopK;
use decoding::sampler::{Categorical, Greedy};
use decoding::structured::{Grammar, StructuredError, TokenVocabulary};
use decoding::{
    BatchSequence, BeamSearch, Context, Error, FinishReason, GenerateError, GenerateOptions,
    Generator, LanguageModel, LogitsProcessor, Pipeline, RewindableModel, Sampler, Scores,
    SpeculativeOptions, TokenId, Verification, generate_batch,
};
use proptest::prelude::*;

/// Printable ASCII one character per token, some longer tokens, and the
/// end-of-sequence token last.
fn toy_tokens() -> Vec<String> {
    let mut t: Vec<String> = (32u8..127).map(|b| (b as char).to_string()).collect();
    for s in ["{\"", "\":", "\",\"", "\"}", "true", "false", "null", "ab", "abc", "12", "\n"] {
        t.push(s.to_string());
    }
    t.push("<eos>".to_string());
    t
}

fn toy_vocab() -> (Vec<String>, TokenVocabulary, TokenId) {
    let tokens = toy_tokens();
    let eos = tokens.len() as TokenId - 1;
    let vocab = TokenVocabulary::from_detokenizer(&tokens, tokens.len(), &[eos]).unwrap();
    (tokens, vocab, eos)
}

fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A model whose row is a pseudo-random function of the whole history
/// (scores in [-4, 4)), with `pad` extra ids past the tokenizer's.
#[derive(Debug, Clone)]
struct Hashed {
    vocab: usize,
    pad: usize,
    salt: u64,
    history: Vec<TokenId>,
}

impl Hashed {
    fn new(vocab: usize, salt: u64) -> Self {
        Hashed { vocab, pad: 0, salt, history: Vec::new() }
    }

    fn row(&self, history: &[TokenId], out: &mut [f32]) {
        let mut h = self.salt;
        for &t in history {
            h = mix(h ^ u64::from(t).wrapping_add(0x9e37_79b9_7f4a_7c15));
        }
        for (i, x) in out.iter_mut().enumerate() {
            let r = mix(h ^ (i as u64) << 20);
            *x = (r >> 11) as f32 / (1u64 << 53) as f32 * 8.0 - 4.0;
        }
    }
}

impl LanguageModel for Hashed {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        self.vocab + self.pad
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.history.extend_from_slice(tokens);
        self.row(&self.history, logits);
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.history.clear();
        Ok(())
    }
}

impl RewindableModel for Hashed {
    fn rewind(&mut self, len: usize) -> Result<(), Self::Error> {
        self.history.truncate(len);
        Ok(())
    }
}

fn decode(tokens: &[String], ids: &[TokenId], eos: TokenId) -> String {
    ids.iter().filter(|&&t| t != eos).map(|&t| tokens[t as usize].as_str()).collect()
}

fn generator(
    constraint: impl LogitsProcessor + Send + 'static,
    max_new: usize,
    eos: TokenId,
    seed: u64,
) -> Generator<Pipeline, Categorical> {
    let options = GenerateOptions::builder(max_new).eos_token(eos).seed(seed).build().unwrap();
    Generator::new(Pipeline::new().with(constraint), Categorical::new(), options)
}

#[test]
fn json_schema_outputs_are_valid_and_complete() {
    let (tokens, vocab, eos) = toy_vocab();
    let schema = serde_json::json!({
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 6},
            "ok": {"type": "boolean"},
            "tags": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 1, "maxItems": 3}
        },
        "required": ["name", "ok", "tags"],
        "additionalProperties": false
    });
    let constraint = vocab.constraint(&Grammar::json_schema(schema)).unwrap();
    let mut completed = 0;
    for seed in 0..20 {
        let mut g = generator(constraint.clone(), 200, eos, seed);
        let mut model = Hashed::new(tokens.len(), 7);
        let out = g.generate(&mut model, &[0]).unwrap();
        let text = decode(&tokens, &out.tokens, eos);
        if out.finish_reason == FinishReason::Length {
            continue;
        }
        completed += 1;
        let value: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("seed {seed}: {text:?} is not JSON: {e}"));
        let obj = value.as_object().unwrap();
        assert_eq!(obj.len(), 3, "{text}");
        assert!(obj["name"].as_str().unwrap().chars().count() <= 6, "{text}");
        assert!(obj["ok"].is_boolean(), "{text}");
        let tags = obj["tags"].as_array().unwrap();
        assert!((1..=3).contains(&tags.len()), "{text}");
        assert!(tags.iter().all(|t| t == "a" || t == "b"), "{text}");
    }
    assert!(completed >= 10, "only {completed} of 20 runs completed");
}

#[test]
fn a_completed_grammar_stops_the_run_with_its_own_reason() {
    let (tokens, vocab, eos) = toy_vocab();
    let constraint = vocab.constraint(&Grammar::choice(["true", "false"]).unwrap()).unwrap();
    for seed in 0..10 {
        let mut g = generator(constraint.clone(), 50, eos, seed);
        let out = g.generate(&mut Hashed::new(tokens.len(), 3), &[0]).unwrap();
        let text = decode(&tokens, &out.tokens, eos);
        assert!(text == "true" || text == "false", "{text:?}");
        // Nothing can follow either word: no EOS token is needed.
        assert_eq!(out.finish_reason, FinishReason::Constraint);
        assert!(!out.tokens.contains(&eos));
    }
}

#[test]
fn padded_model_ids_are_never_allowed() {
    let (tokens, vocab, eos) = toy_vocab();
    let constraint = vocab.constraint(&Grammar::regex("[a-z]{3,8}").unwrap()).unwrap();
    let mut model = Hashed::new(tokens.len(), 11);
    model.pad = 40;
    for seed in 0..10 {
        let mut g = generator(constraint.clone(), 20, eos, seed);
        let out = g.generate(&mut model, &[0]).unwrap();
        assert!(out.tokens.iter().all(|&t| (t as usize) < tokens.len()));
        let text = decode(&tokens, &out.tokens, eos);
        assert!(text.len() >= 3 && text.bytes().all(|b| b.is_ascii_lowercase()), "{text:?}");
    }
}

#[test]
fn speculative_greedy_gives_plain_constrained_greedy() {
    let (tokens, vocab, eos) = toy_vocab();
    let grammar = Grammar::lark(
        r#"start: "[" item ("," item)* "]"
           item: /[0-9]{1,3}/ | "true" | "null""#,
    );
    let constraint = vocab.constraint(&grammar).unwrap();
    for salt in 0..6 {
        let options = GenerateOptions::builder(40).eos_token(eos).build().unwrap();
        let mut plain =
            Generator::new(Pipeline::new().with(constraint.clone()), Greedy, options.clone());
        let expected = plain.generate(&mut Hashed::new(tokens.len(), salt), &[0]).unwrap();
        for k in [1, 3, 5] {
            // A draft that disagrees often: another salt.
            let mut spec =
                Generator::new(Pipeline::new().with(constraint.clone()), Greedy, options.clone());
            let mut target = Hashed::new(tokens.len(), salt);
            let mut draft = Hashed::new(tokens.len(), salt + 100);
            let sp = SpeculativeOptions::new(k, Verification::Greedy).unwrap();
            let out = spec.generate_speculative(&mut target, &mut draft, &[0], &sp).unwrap();
            assert_eq!(out.tokens, expected.tokens, "salt {salt}, k {k}");
            assert_eq!(out.finish_reason, expected.finish_reason);
            // The same draft as the target: everything is accepted.
            let mut draft = Hashed::new(tokens.len(), salt);
            let out = spec.generate_speculative(&mut target, &mut draft, &[0], &sp).unwrap();
            assert_eq!(out.tokens, expected.tokens, "salt {salt}, k {k}, agreeing draft");
        }
    }
}

#[test]
fn speculative_sampling_keeps_every_output_valid() {
    let (tokens, vocab, eos) = toy_vocab();
    let re = regex::Regex::new(r"^(ab|c)+d$").unwrap();
    let constraint = vocab.constraint(&Grammar::regex("(ab|c)+d").unwrap()).unwrap();
    for seed in 0..20 {
        let options = GenerateOptions::builder(30).eos_token(eos).seed(seed).build().unwrap();
        let mut g = Generator::new(Pipeline::new().with(constraint.clone()), Greedy, options);
        let sp = SpeculativeOptions::new(3, Verification::Sampled).unwrap();
        let mut target = Hashed::new(tokens.len(), 5);
        let mut draft = Hashed::new(tokens.len(), 6);
        let out = g.generate_speculative(&mut target, &mut draft, &[0], &sp).unwrap();
        if out.finish_reason != FinishReason::Length {
            let text = decode(&tokens, &out.tokens, eos);
            assert!(re.is_match(&text), "{text:?}");
        }
    }
}

#[test]
fn each_sequence_of_a_batch_has_its_own_constraint() {
    let (tokens, vocab, eos) = toy_vocab();
    let digits = vocab.constraint(&Grammar::regex("[0-9]{4}").unwrap()).unwrap();
    let words = vocab.constraint(&Grammar::choice(["null", "true"]).unwrap()).unwrap();
    let mut a = generator(digits, 10, eos, 1);
    let mut b = generator(words, 10, eos, 2);
    let prompt = [0];
    let mut model = vec![Hashed::new(tokens.len(), 9); 2];
    let results = generate_batch(
        &mut model,
        &mut [BatchSequence::new(&mut a, &prompt), BatchSequence::new(&mut b, &prompt)],
    )
    .unwrap();
    let texts: Vec<String> =
        results.into_iter().map(|r| decode(&tokens, &r.unwrap().tokens, eos)).collect();
    assert!(texts[0].len() == 4 && texts[0].bytes().all(|c| c.is_ascii_digit()), "{texts:?}");
    assert!(texts[1] == "null" || texts[1] == "true", "{texts:?}");
}

#[test]
fn beam_search_masks_each_beam_for_its_own_tokens() {
    let (tokens, vocab, eos) = toy_vocab();
    let re = regex::Regex::new(r"^[a-c]{2,5}x$").unwrap();
    let constraint = vocab.constraint(&Grammar::regex("[a-c]{2,5}x").unwrap()).unwrap();
    let options = GenerateOptions::builder(12).eos_token(eos).build().unwrap();
    let mut g = Generator::new(Pipeline::new().with(constraint), Greedy, options);
    let search = BeamSearch::new(4).unwrap();
    let hyps = g.beam_search(&mut vec![Hashed::new(tokens.len(), 21); 4], &[0], &search).unwrap();
    assert!(!hyps.is_empty());
    for h in hyps {
        let text = decode(&tokens, &h.tokens, eos);
        assert!(re.is_match(&text), "{text:?} ({:?})", h.finish_reason);
    }
}

#[test]
fn no_token_can_continue_is_a_typed_error() {
    // The vocabulary spells "a" but not "b": after "a" nothing continues.
    let tokens = ["a", "c", "<eos>"];
    let vocab = TokenVocabulary::from_detokenizer(&tokens, 3, &[2]).unwrap();
    let mut constraint = vocab.constraint(&Grammar::regex("ab").unwrap()).unwrap();
    let mut row = vec![0.0; 3];
    let mut live = Vec::new();
    let history = [0];
    let ctx = Context::new(&history, 0).unwrap();
    let err = constraint.process(&ctx, &mut Scores::new(&mut row, &mut live));
    assert_eq!(err, Err(Error::NoAllowedToken));
    // Through the generator: a decoding error at step 1.
    let options = GenerateOptions::builder(5).eos_token(2).build().unwrap();
    let mut g = Generator::new(Pipeline::new().with(constraint), Greedy, options);
    let err = g.generate(&mut Hashed::new(3, 0), &[1]).unwrap_err();
    assert!(matches!(err, GenerateError::Decoding { step: 1, source: Error::NoAllowedToken }));
}

#[test]
fn bad_inputs_are_typed_errors() {
    let (_, vocab, _) = toy_vocab();
    // Malformed and unsupported schemas.
    assert!(matches!(Grammar::json_schema_str("{"), Err(StructuredError::InvalidSchema { .. })));
    let bad_type = serde_json::json!({"type": "strin"});
    assert!(matches!(
        vocab.constraint(&Grammar::json_schema(bad_type)),
        Err(StructuredError::InvalidSchema { .. })
    ));
    let one_of = serde_json::json!({"oneOf": [{"type": "integer"}, {"type": "number"}]});
    assert!(matches!(
        vocab.constraint(&Grammar::json_schema(one_of)),
        Err(StructuredError::Unsupported { .. } | StructuredError::InvalidSchema { .. })
    ));
    // Empty and malformed regexes, malformed and unsatisfiable grammars.
    assert_eq!(Grammar::regex(""), Err(StructuredError::EmptyRegex));
    assert!(matches!(
        vocab.constraint(&Grammar::regex("(ab").unwrap()),
        Err(StructuredError::InvalidRegex { .. })
    ));
    assert!(matches!(
        vocab.constraint(&Grammar::lark("start: foo")),
        Err(StructuredError::InvalidGrammar { .. })
    ));
    let contradiction = serde_json::json!({"type": "string", "minLength": 5, "maxLength": 2});
    assert!(matches!(
        vocab.constraint(&Grammar::json_schema(contradiction)),
        Err(StructuredError::Unsatisfiable { .. })
    ));
    // A vocabulary that cannot spell the only output.
    let tokens = ["a", "<eos>"];
    let small = TokenVocabulary::from_detokenizer(&tokens, 2, &[1]).unwrap();
    assert!(matches!(
        small.constraint(&Grammar::regex("z").unwrap()),
        Err(StructuredError::Unsatisfiable { .. })
    ));
    // EOS ids and vocabulary sizes.
    assert_eq!(
        TokenVocabulary::from_detokenizer(&tokens, 2, &[2]).unwrap_err(),
        StructuredError::EosOutOfRange { id: 2, vocab_size: 2 }
    );
    assert_eq!(
        TokenVocabulary::from_detokenizer(&tokens, 2, &[]).unwrap_err(),
        StructuredError::NoEosToken
    );
    assert!(matches!(
        TokenVocabulary::from_detokenizer(&tokens, 0, &[0]),
        Err(StructuredError::VocabSize { .. })
    ));
    assert_eq!(
        vocab.check_model_vocab(10).unwrap_err(),
        StructuredError::VocabMismatch { model: 10, tokenizer: vocab.vocab_size() }
    );
    assert!(matches!(
        TokenVocabulary::from_tokenizer_json("{", &[0]),
        Err(StructuredError::Tokenizer { .. })
    ));
    // A row smaller than the tokenizer's vocabulary.
    let mut c = vocab.constraint(&Grammar::regex("a+").unwrap()).unwrap();
    let mut row = vec![0.0; 10];
    let mut live = Vec::new();
    assert_eq!(
        c.process(&Context::empty(), &mut Scores::new(&mut row, &mut live)),
        Err(Error::VocabSizeMismatch { expected: vocab.vocab_size(), actual: 10 })
    );
}

#[test]
fn tokenizer_json_vocabularies_constrain_like_their_bytes() {
    let json = r#"{
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġa": 3, "{": 4, "}": 5}},
        "added_tokens": [{"id": 6, "content": "<|endoftext|>", "special": true}]
    }"#;
    let vocab = TokenVocabulary::from_tokenizer_json(json, &[6]).unwrap();
    assert_eq!(vocab.vocab_size(), 7);
    let mut c = vocab.constraint(&Grammar::regex("a b").unwrap()).unwrap();
    let mut row = vec![0.0; 7];
    let mut live = Vec::new();
    let mut scores = Scores::new(&mut row, &mut live);
    c.process(&Context::empty(), &mut scores).unwrap();
    assert_eq!(scores.live_ids(), Some(&[0][..]));
    c.accept(0);
    let mut scores = Scores::new(&mut row, &mut live);
    // No token spells " b" ("Ġa" is " a"): nothing continues "a".
    assert_eq!(c.process(&Context::new(&[0], 0).unwrap(), &mut scores), Err(Error::NoAllowedToken));
    let mut c = vocab.constraint(&Grammar::regex("a a").unwrap()).unwrap();
    let mut scores = Scores::new(&mut row, &mut live);
    c.process(&Context::new(&[0], 0).unwrap(), &mut scores).unwrap();
    assert_eq!(scores.live_ids(), Some(&[3][..]));
}

#[test]
fn a_token_table_marks_its_special_tokens() {
    // "<|im_end|>" is an added special token: no grammar text spells it,
    // though its characters are allowed; the plain added token is text.
    let json = r#"{
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": {"<": 0, "|": 1, "x": 2, ">": 3}},
        "added_tokens": [{"id": 4, "content": "<|x|>", "special": true},
                         {"id": 5, "content": "<x>", "special": false},
                         {"id": 6, "content": "<eos>", "special": true}]
    }"#;
    let tokens = decoding::TokenBytes::from_tokenizer_json(json).unwrap();
    let vocab = TokenVocabulary::from_token_table(&tokens, &[6]).unwrap();
    assert_eq!(vocab.vocab_size(), 7);
    let mut c = vocab.constraint(&Grammar::regex("<[|x]*>").unwrap()).unwrap();
    let mut row = vec![0.0; 7];
    let mut live = Vec::new();
    let mut scores = Scores::new(&mut row, &mut live);
    c.process(&Context::empty(), &mut scores).unwrap();
    assert_eq!(scores.live_ids(), Some(&[0, 5][..]));
}

/// A vocabulary read from a loaded `tokenizers::Tokenizer` is the one read
/// from its file.
#[cfg(feature = "tokenizers")]
#[test]
fn a_loaded_tokenizer_gives_the_vocabulary_of_its_file() {
    let json = r#"{
        "version": "1.0", "normalizer": null, "pre_tokenizer": null, "post_processor": null,
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "Ġa": 3}, "merges": ["a b"]},
        "added_tokens": [{"id": 4, "content": "<|endoftext|>", "special": true, "single_word": false,
            "lstrip": false, "rstrip": false, "normalized": false}]
    }"#;
    let tokenizer: tokenizers::Tokenizer = json.parse().unwrap();
    let loaded = TokenVocabulary::from_tokenizer(&tokenizer, &[4]).unwrap();
    let read = TokenVocabulary::from_tokenizer_json(json, &[4]).unwrap();
    assert_eq!(loaded.vocab_size(), 5);
    let mut rows = Vec::new();
    for vocab in [&loaded, &read] {
        let mut c = vocab.constraint(&Grammar::regex("ab a").unwrap()).unwrap();
        let mut row = vec![0.0; 5];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        c.process(&Context::empty(), &mut scores).unwrap();
        rows.push(scores.live_ids().map(<[TokenId]>::to_vec));
    }
    assert_eq!(rows[0], Some(vec![0, 2]));
    assert_eq!(rows[0], rows[1]);
}

#[test]
fn constrained_choice_follows_the_renormalized_masked_softmax() {
    // Tokens "a", "b", "c", "ab", EOS; choices "a", "ab", "b". The token
    // sequences: [a, EOS], [a, b], [ab], [b].
    let tokens = ["a", "b", "c", "ab", "<eos>"];
    let vocab = TokenVocabulary::from_detokenizer(&tokens, 5, &[4]).unwrap();
    let constraint = vocab.constraint(&Grammar::choice(["a", "ab", "b"]).unwrap()).unwrap();
    let model = Hashed::new(5, 42);
    let row = |history: &[TokenId]| {
        let mut r = vec![0.0; 5];
        model.row(history, &mut r);
        r
    };
    let p0 = chi_square::softmax(&row(&[0]));
    let p1 = chi_square::softmax(&row(&[0, 0]));
    let z0 = p0[0] + p0[1] + p0[3];
    let z1 = p1[1] + p1[4];
    let outcomes: [&[TokenId]; 4] = [&[0, 4], &[0, 1], &[3], &[1]];
    let probs = [p0[0] / z0 * p1[4] / z1, p0[0] / z0 * p1[1] / z1, p0[3] / z0, p0[1] / z0];
    let mut counts = [0u64; 4];
    let n = 20_000;
    let options = GenerateOptions::builder(5).eos_token(4).build().unwrap();
    let mut g = Generator::new(Pipeline::new().with(constraint), Categorical::new(), options);
    let mut m = Hashed::new(5, 42);
    for seed in 0..n {
        g.set_options(GenerateOptions::builder(5).eos_token(4).seed(seed).build().unwrap());
        let out = g.generate(&mut m, &[0]).unwrap();
        let i = outcomes.iter().position(|o| *o == out.tokens.as_slice());
        let i = i.unwrap_or_else(|| panic!("{:?} is not a valid output", out.tokens));
        counts[i] += 1;
    }
    let (stat, df) = chi_square::chi2(&counts, &probs).unwrap();
    assert!(stat < chi_square::chi2_critical(df), "chi2 {stat} (df {df}), counts {counts:?}");
}

/// A random source returning one fixed word.
struct Fixed(u64);

impl rand::TryRng for Fixed {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok((self.0 >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(self.0)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        dst.fill(self.0 as u8);
        Ok(())
    }
}

/// A regex over `a`, `b`, `c` with classes, alternations and repetitions.
fn regex_strategy() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("c".to_string()),
        Just("[ab]".to_string()),
        Just("[bc]".to_string()),
    ];
    atom.prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|v| v.concat()),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}|{b})")),
            (inner.clone(), 0u32..3, 1u32..3)
                .prop_map(|(a, lo, n)| format!("({a}){{{lo},{}}}", lo + n)),
            inner.prop_map(|a| format!("({a})+")),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_regexes_give_matching_outputs(pattern in regex_strategy(), seed in any::<u64>()) {
        let (tokens, vocab, eos) = toy_vocab();
        let constraint = vocab.constraint(&Grammar::regex(pattern.clone()).unwrap()).unwrap();
        let check = regex::Regex::new(&format!("^(?:{pattern})$")).unwrap();
        let mut g = generator(constraint.clone(), 24, eos, seed);
        let out = g.generate(&mut Hashed::new(tokens.len(), seed), &[0]).unwrap();
        if out.finish_reason != FinishReason::Length {
            let text = decode(&tokens, &out.tokens, eos);
            prop_assert!(check.is_match(&text), "{text:?} does not match {pattern}");
        }
        // The extreme uniforms of the sampler never pick a masked token.
        for word in [0, u64::MAX] {
            let mut c = constraint.clone();
            let mut row = vec![0.0; tokens.len()];
            Hashed::new(tokens.len(), seed).row(&[0], &mut row);
            let mut live = Vec::new();
            let mut scores = Scores::new(&mut row, &mut live);
            c.process(&Context::empty(), &mut scores).unwrap();
            let allowed: Vec<TokenId> = scores.live_ids().unwrap().to_vec();
            let token = Categorical::new().sample_token(&scores, &mut Fixed(word)).unwrap();
            prop_assert!(allowed.contains(&token));
            // And after a top-k, the truncation selects among allowed ones.
            let mut row2 = vec![0.0; tokens.len()];
            Hashed::new(tokens.len(), seed).row(&[0], &mut row2);
            let mut scores = Scores::new(&mut row2, &mut live);
            let mut c = constraint.clone();
            c.process(&Context::empty(), &mut scores).unwrap();
            TopK::new(2).unwrap().process(&Context::empty(), &mut scores).unwrap();
            let token = Categorical::new().sample_token(&scores, &mut Fixed(word)).unwrap();
            prop_assert!(allowed.contains(&token));
        }
    }
}

#[test]
fn openai_response_formats_build_the_stage() {
    use decoding::config::{GenerationConfig, OpenAiParams, ResponseFormat};

    let (tokens, vocab, eos) = toy_vocab();
    let run = |body: &str| -> (String, FinishReason) {
        let request = OpenAiParams::from_json(body).unwrap();
        let constraint = request.constraint(&vocab).unwrap().expect("a constraint");
        let (pipeline, _, _) = request.build(&GenerationConfig::default()).unwrap().into_parts();
        let options = GenerateOptions::builder(60).eos_token(eos).build().unwrap();
        let mut g =
            Generator::new(Pipeline::new().with(constraint).with(pipeline), Greedy, options);
        let out = g.generate(&mut Hashed::new(tokens.len(), 4), &[0]).unwrap();
        (decode(&tokens, &out.tokens, eos), out.finish_reason)
    };
    let complete = |body: &str| -> String {
        let (text, finish) = run(body);
        assert_ne!(finish, FinishReason::Length, "{body}: {text}");
        text
    };
    // OpenAI's json_schema, with name and strict.
    let text = complete(
        r#"{"response_format": {"type": "json_schema", "json_schema":
        {"name": "n", "strict": true, "schema": {"type": "object",
         "properties": {"ok": {"type": "boolean"}}, "required": ["ok"],
         "additionalProperties": false}}}}"#,
    );
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(v["ok"].is_boolean() && v.as_object().unwrap().len() == 1, "{text}");
    // Any JSON object (greedy on this model may not close it in time).
    let (text, _) = run(r#"{"response_format": {"type": "json_object"}}"#);
    assert!(text.starts_with('{'), "{text}");
    // llama-server's json_schema and grammar fields.
    let text = complete(r#"{"json_schema": {"enum": ["abc", "null"]}}"#);
    assert!(text == "\"abc\"" || text == "\"null\"", "{text}");
    // `grammar` is GBNF, or Lark after a `%llguidance` header.
    let text = complete(r#"{"grammar": "root ::= \"ab\" | \"c\""}"#);
    assert!(text == "ab" || text == "c", "{text}");
    let text = complete(r#"{"grammar": "root ::= item (\",\" item)*\nitem ::= [a-c]{2}"}"#);
    assert!(
        text.split(',').all(|item| item.len() == 2 && item.bytes().all(|b| b"abc".contains(&b))),
        "{text}"
    );
    let text = complete(r#"{"grammar": "%llguidance {}\nstart: \"ab\" | \"c\""}"#);
    assert!(text == "ab" || text == "c", "{text}");
    let malformed = OpenAiParams::from_json(r#"{"grammar": "root ::= \"a\" b"}"#).unwrap();
    assert!(matches!(
        malformed.constraint(&vocab),
        Err(StructuredError::InvalidGbnf { line: 1, column: 14, .. })
    ));

    // What is read.
    let p = OpenAiParams::from_json(
        r#"{"response_format": {"type": "json_schema", "json_schema": {"name": "x", "strict": false, "schema": {"type": "integer"}}}}"#,
    )
    .unwrap();
    assert_eq!(
        p.response_format,
        Some(ResponseFormat::JsonSchema {
            schema: r#"{"type":"integer"}"#.into(),
            name: Some("x".into()),
            strict: Some(false)
        })
    );
    let p = OpenAiParams::from_json(r#"{"response_format": {"type": "text"}}"#).unwrap();
    assert_eq!(p.response_format, Some(ResponseFormat::Text));
    assert!(p.constraint(&vocab).unwrap().is_none());
    // The request round-trips through serde.
    let body = serde_json::to_string(&OpenAiParams {
        response_format: Some(ResponseFormat::Grammar("start: \"a\"".into())),
        ..OpenAiParams::default()
    })
    .unwrap();
    assert_eq!(
        OpenAiParams::from_json(&body).unwrap().response_format,
        Some(ResponseFormat::Grammar("start: \"a\"".into()))
    );

    // Malformed requests name the field.
    for (body, field) in [
        (r#"{"response_format": {"type": "xml"}}"#, "response_format.type"),
        (r#"{"response_format": "json"}"#, "response_format"),
        (r#"{"response_format": {"type": "json_schema"}}"#, "response_format.json_schema"),
        (r#"{"json_schema": 3}"#, "json_schema"),
        (r#"{"grammar": 3}"#, "grammar"),
        (r#"{"grammar": "start: \"a\"", "json_schema": {}}"#, "response_format"),
    ] {
        match OpenAiParams::from_json(body) {
            Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, field, "{body}"),
            other => panic!("{body}: {other:?}"),
        }
    }
    // A schema the engine rejects is a typed error when the stage is built.
    let p = OpenAiParams::from_json(r#"{"json_schema": {"type": "strin"}}"#).unwrap();
    assert!(matches!(p.constraint(&vocab), Err(StructuredError::InvalidSchema { .. })));
}
