//! Streaming yields what the one-shot run returns; runs do not share state.

use decoding::processors::{Temperature, TopK};
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    FinishReason, GenerateOptions, Generator, LogprobMode, Pipeline, TokenId, TokenLogprobs,
};
use proptest::prelude::*;

use crate::models::{Bigram, Script};

fn sampling(options: GenerateOptions) -> Generator {
    Generator::new(
        Pipeline::new().with(Temperature::new(1.3).unwrap()).with(TopK::new(12).unwrap()),
        Categorical::new(),
        options,
    )
}

/// Text pieces for a 16-token vocabulary, some multi-byte, some split.
fn pieces() -> Vec<Vec<u8>> {
    let mut p: Vec<Vec<u8>> =
        ["a", "b", " ", "\n", "ab", "é", "x", "yz", "!", "<", "/s>", "q", "r"]
            .iter()
            .map(|s| s.as_bytes().to_vec())
            .collect();
    p.push(vec![0xE2, 0x82]);
    p.push(vec![0xAC]);
    p.push(vec![0xF0, 0x9F]);
    p
}

#[test]
fn stream_equals_generate_over_many_seeds() {
    let table = pieces();
    for seed in 0..40u64 {
        let options = GenerateOptions::builder(24)
            .seed(seed)
            .eos_token(3)
            .stop_sequence(vec![9, 10])
            .stop_strings(["b!", "\u{20AC}a"])
            .logprobs(LogprobMode::Both)
            .top_logprobs(3)
            .build()
            .unwrap();
        let mut generator = sampling(options);
        let mut model = Bigram::pattern(16);
        let out = generator.generate_text(&mut model, &table, &[1, 2]).unwrap();

        let mut tokens: Vec<TokenId> = Vec::new();
        let mut text = String::new();
        let mut logprobs: Vec<TokenLogprobs> = Vec::new();
        let mut finish = None;
        for (i, step) in generator.stream_text(&mut model, &table, &[1, 2]).unwrap().enumerate() {
            let step = step.unwrap();
            assert_eq!(step.index, i);
            assert_eq!(finish, None, "a step after the finish");
            tokens.push(step.token);
            text.push_str(&step.text);
            logprobs.push(step.logprobs.unwrap());
            finish = step.finish_reason;
        }
        assert_eq!(tokens, out.tokens, "seed {seed}");
        assert_eq!(Some(text), out.text, "seed {seed}");
        assert_eq!(Some(logprobs), out.logprobs, "seed {seed}");
        assert_eq!(finish, Some(out.finish_reason), "seed {seed}");
    }
}

#[test]
fn stream_without_text_or_logprobs_yields_bare_steps() {
    let mut generator = sampling(GenerateOptions::builder(5).seed(9).build().unwrap());
    let mut model = Bigram::pattern(16);
    let out = generator.generate(&mut model, &[1]).unwrap();
    assert_eq!(out.text, None);
    assert_eq!(out.logprobs, None);
    let mut stream = generator.stream(&mut model, &[1]).unwrap();
    let mut tokens = Vec::new();
    for step in stream.by_ref() {
        let step = step.unwrap();
        assert_eq!(step.text, "");
        assert_eq!(step.logprobs, None);
        tokens.push(step.token);
    }
    assert_eq!(stream.generated(), out.tokens);
    assert_eq!(stream.finish_reason(), Some(FinishReason::Length));
    assert!(stream.next().is_none());
    assert_eq!(tokens, out.tokens);
}

#[test]
fn two_generators_do_not_share_a_random_source() {
    // A run interleaved step by step with another run (different seed,
    // different options) gives what it gives alone.
    let mut model_a = Bigram::pattern(16);
    let mut model_b = Bigram::pattern(16);
    let mut a = sampling(GenerateOptions::builder(20).seed(1).build().unwrap());
    let alone = a.generate(&mut model_a, &[5]).unwrap().tokens;
    let mut b = Generator::new(
        Pipeline::new(),
        Categorical::new(),
        GenerateOptions::builder(30).seed(2).build().unwrap(),
    );
    let mut sa = a.stream(&mut model_a, &[5]).unwrap();
    let mut sb = b.stream(&mut model_b, &[7]).unwrap();
    let mut interleaved = Vec::new();
    loop {
        let _ = sb.next();
        match sa.next() {
            Some(step) => interleaved.push(step.unwrap().token),
            None => break,
        }
        let _ = sb.next();
    }
    assert_eq!(interleaved, alone);
}

#[test]
fn seeds_matter_and_are_used_in_full() {
    let run = |seed: u64| {
        let mut g = Generator::new(
            Pipeline::new(),
            Categorical::new(),
            GenerateOptions::builder(32).seed(seed).build().unwrap(),
        );
        g.generate(&mut crate::models::FixedRow(vec![0.0; 64]), &[1]).unwrap().tokens
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
    // Seeds that differ only in the high 32 bits give different streams.
    assert_ne!(run(1), run(1 + (1 << 32)));
}

/// The generated text for a script under stop strings, computed naively:
/// the first prefix of the script whose text contains a stop string ends the
/// run, cut at the earliest occurrence (ties: the string listed first).
fn reference(
    pieces: &[&str],
    script: &[usize],
    stops: &[String],
) -> (usize, String, Option<usize>) {
    let mut text = String::new();
    for (k, &t) in script.iter().enumerate() {
        text.push_str(pieces[t]);
        let hit = stops
            .iter()
            .enumerate()
            .filter_map(|(i, s)| text.find(s.as_str()).map(|p| (p, i)))
            .min();
        if let Some((p, i)) = hit {
            text.truncate(p);
            return (k + 1, text, Some(i));
        }
    }
    (script.len(), text, None)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn stop_strings_match_a_naive_reference(
        script in prop::collection::vec(0usize..7, 1..14),
        stops in prop::collection::vec("[abé\n]{1,3}", 1..4),
    ) {
        let pieces = ["a", "b", "ab", "é", "\n", "ba", "éa"];
        let table: Vec<Vec<u8>> = pieces.iter().map(|p| p.as_bytes().to_vec()).collect();
        let ids: Vec<TokenId> = script.iter().map(|&t| t as TokenId).collect();
        let options = GenerateOptions::builder(script.len())
            .stop_strings(stops.iter().cloned())
            .build()
            .unwrap();
        let mut generator = Generator::new(Pipeline::new(), Greedy, options);
        let out = generator.generate_text(&mut Script::new(pieces.len(), &ids), &table, &[0]).unwrap();
        let (len, text, hit) = reference(&pieces, &script, &stops);
        prop_assert_eq!(out.tokens.len(), len);
        prop_assert_eq!(out.text.as_deref(), Some(text.as_str()));
        match hit {
            Some(index) => prop_assert_eq!(out.finish_reason, FinishReason::StopString { index }),
            None => prop_assert_eq!(out.finish_reason, FinishReason::Length),
        }
        // The stream releases exactly the same text, in order.
        let mut streamed = String::new();
        for step in generator.stream_text(&mut Script::new(pieces.len(), &ids), &table, &[0]).unwrap() {
            let step = step.unwrap();
            streamed.push_str(&step.text);
            // Nothing released is ever part of a stop string's occurrence.
            prop_assert!(text.starts_with(&streamed));
        }
        prop_assert_eq!(streamed, text);
    }
}
