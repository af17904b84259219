//! Prompt lookup decoding: the draft follows transformers' matching rule,
//! greedy runs are plain greedy runs, sampled runs are plain sampled runs
//! (token for token for a seed, and the target's law under chi-square),
//! and the statistics add up.

use decoding::processors::{RepetitionPenalty, Temperature, TopK};
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    Context, Error, GenerateOptions, Generation, Generator, LookupMatch, Pipeline, PromptLookup,
    SpeculativeStats, TokenId, Verification,
};
use proptest::prelude::*;

use crate::chi_square::{chi2, chi2_critical, softmax};
use crate::models::{Bigram, vocab};
use crate::speculative::{Contextual, Kind, check_held, stateful};

fn lookup(k: usize, n: usize, verification: Verification) -> PromptLookup {
    PromptLookup::new(k, n, verification).unwrap()
}

/// transformers' `PromptLookupCandidateGenerator.get_candidates`, written
/// out literally (every window compared in full), with the shortest size
/// and the occurrence order as parameters.
fn reference(tokens: &[TokenId], k: usize, max: usize, min: usize, latest: bool) -> Vec<TokenId> {
    let len = tokens.len();
    if len < 2 {
        return Vec::new();
    }
    for n in (min..=max.min(len - 1)).rev() {
        let suffix = &tokens[len - n..];
        let mut starts: Vec<usize> =
            (0..=len - n).filter(|&i| &tokens[i..i + n] == suffix).collect();
        if latest {
            starts.reverse();
        }
        for i in starts {
            let (start, end) = (i + n, (i + n + k).min(len));
            if start < end {
                return tokens[start..end].to_vec();
            }
        }
    }
    Vec::new()
}

#[test]
fn the_draft_follows_the_longest_match_and_its_first_occurrence() {
    let l = lookup(3, 3, Verification::Greedy);
    // The trigram (1, 2, 3) beats the later bigram (2, 3).
    assert_eq!(l.lookup(&[1, 2, 3, 9, 8, 2, 3, 7, 1, 2, 3], 3), &[9, 8, 2]);
    // Only the bigram (2, 3) occurs: its first occurrence.
    assert_eq!(l.lookup(&[2, 3, 4, 5, 6, 2, 3, 8, 1, 2, 3], 3), &[4, 5, 6]);
    let latest = l.with_match(LookupMatch::Latest);
    assert_eq!(latest.lookup(&[2, 3, 4, 5, 6, 2, 3, 8, 1, 2, 3], 3), &[8, 1, 2]);
    // The continuation stops at the end of the text, and may run into the
    // suffix itself.
    assert_eq!(l.lookup(&[4, 4, 4], 3), &[4]);
    assert_eq!(l.lookup(&[1, 2, 1, 2, 1, 2], 3), &[1, 2]);
    // The budget caps it; a budget of 0 drafts nothing.
    assert_eq!(l.lookup(&[5, 6, 7, 8, 5], 2), &[6, 7]);
    assert!(l.lookup(&[5, 6, 7, 8, 5], 0).is_empty());
    // A text of one token has nothing before its suffix.
    assert!(l.lookup(&[5], 3).is_empty());
    // min_ngram: a single-token match no longer counts.
    let l2 = l.with_min_ngram(2).unwrap();
    assert!(l2.lookup(&[5, 6, 7, 8, 5], 3).is_empty());
    assert_eq!(l2.lookup(&[5, 6, 7, 8, 5, 6], 3), &[7, 8, 5]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_draft_is_transformers_candidate(
        tokens in prop::collection::vec(0u32..4, 0..24),
        k in 1usize..6,
        max in 1usize..5,
        min in 1usize..5,
        latest in any::<bool>(),
    ) {
        let min = min.min(max);
        let matching = if latest { LookupMatch::Latest } else { LookupMatch::First };
        let l = lookup(k, max, Verification::Greedy)
            .with_min_ngram(min)
            .unwrap()
            .with_match(matching);
        prop_assert_eq!(l.lookup(&tokens, k), &reference(&tokens, k, max, min, latest)[..]);
    }
}

#[test]
fn parameters_are_checked() {
    for (k, n, name) in [(0, 2, "draft_tokens"), (3, 0, "max_ngram")] {
        let r = PromptLookup::new(k, n, Verification::Greedy);
        assert!(matches!(r, Err(Error::InvalidParameter { name: got, .. }) if got == name));
    }
    let l = lookup(4, 3, Verification::Sampled);
    for bad in [0, 4] {
        assert!(matches!(
            l.with_min_ngram(bad),
            Err(Error::InvalidParameter { name: "min_ngram", .. })
        ));
    }
    let l = l.with_min_ngram(3).unwrap();
    assert_eq!((l.draft_tokens(), l.max_ngram(), l.min_ngram()), (4, 3, 3));
    assert_eq!((l.verification(), l.matching()), (Verification::Sampled, LookupMatch::First));
}

/// The invariants of a prompt-lookup run's statistics.
fn check_stats(stats: &SpeculativeStats, out: &Generation) {
    assert_eq!(stats.emitted(), out.tokens.len(), "{stats:?}");
    assert_eq!(stats.draft_calls, 0, "{stats:?}");
    assert!(stats.accepted + stats.corrections <= stats.drafted, "{stats:?}");
    assert!(stats.target_calls >= stats.rounds && stats.target_calls <= stats.rounds + 1);
    assert!(stats.rounds <= out.tokens.len(), "{stats:?}");
    assert!(stats.corrections + stats.bonus <= stats.rounds, "{stats:?}");
    assert!(stats.rounds <= stats.corrections + stats.bonus + 1, "{stats:?}");
}

const V: usize = 16;

#[test]
fn greedy_lookup_reproduces_plain_greedy_generation() {
    // A target whose scores hash its whole history (drafts are mostly
    // wrong, so rewinds are exercised), with a history-dependent and a
    // stateful processor.
    for prompt in [&[0][..], &[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 9]] {
        let options = GenerateOptions::builder(40).seed(0).build().unwrap();
        let mut plain = Generator::new(stateful(), Greedy, options.clone());
        let target = || Contextual::new(V, 1, Kind::Plain);
        let expected = plain.generate(&mut target(), prompt).unwrap();
        let mu = plain.processor().1.mu();
        for k in [1, 3, 10] {
            for n in [1, 2, 3] {
                for matching in [LookupMatch::First, LookupMatch::Latest] {
                    let l = lookup(k, n, Verification::Greedy).with_match(matching);
                    let mut generator = Generator::new(stateful(), Greedy, options.clone());
                    let mut t = target();
                    let out = generator.generate_prompt_lookup(&mut t, prompt, &l).unwrap();
                    let case = format!("k = {k}, n = {n}, {matching:?}");
                    assert_eq!(out, expected, "{case}");
                    assert_eq!(generator.processor().1.mu(), mu, "{case}");
                    let stats = generator.speculative_stats();
                    check_stats(&stats, &out);
                    check_held(&t, prompt, &out);
                    assert!(stats.drafted > 0, "{case}: {stats:?}");
                }
            }
        }
    }
}

#[test]
fn a_repetitive_target_accepts_most_drafts() {
    // A deterministic bigram model cycles under greedy decoding: once the
    // cycle has been seen, every draft is right.
    let table = Bigram::pattern(V).table;
    let options = GenerateOptions::builder(200).seed(0).build().unwrap();
    let expected = Generator::new((), Greedy, options.clone())
        .generate(&mut Bigram::new(table.clone()), &[0])
        .unwrap();
    let mut generator = Generator::new((), Greedy, options);
    let out = generator
        .generate_prompt_lookup(&mut Bigram::new(table), &[0], &lookup(8, 2, Verification::Greedy))
        .unwrap();
    assert_eq!(out, expected);
    let stats = generator.speculative_stats();
    check_stats(&stats, &out);
    assert!(stats.acceptance_rate().unwrap() > 0.9, "{stats:?}");
    // Most rounds emit k + 1 = 9 tokens.
    assert!(stats.rounds < 200 / 6, "{stats:?}");
}

#[test]
fn greedy_runs_equal_plain_runs_under_every_stop_condition() {
    let names: Vec<String> = (0..V).map(|i| format!("<{i}>")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let pieces = vocab(&refs);
    let table = Bigram::pattern(V).table;
    let plain_tokens = Generator::new((), Greedy, GenerateOptions::new(60))
        .generate(&mut Bigram::new(table.clone()), &[1])
        .unwrap()
        .tokens;
    // The prompt holds the greedy cycle, so drafts are accepted from the
    // start; the stops fall on tokens after some of them.
    let prompt = &plain_tokens[..30];
    let rest = &plain_tokens[30..];
    let late = rest[5];
    let pair = [rest[3], rest[4]];
    let text = format!("<{}><{}>", rest[6], rest[7]);
    let builder = || GenerateOptions::builder(30).seed(0);
    let cases = [
        builder().eos_token(late).build().unwrap(),
        builder().eos_token(late).min_new_tokens(25).build().unwrap(),
        builder().stop_sequence(pair).build().unwrap(),
        builder().stop_strings([text]).build().unwrap(),
        GenerateOptions::builder(1).seed(0).build().unwrap(),
        GenerateOptions::builder(0).seed(0).build().unwrap(),
    ];
    for (i, options) in cases.into_iter().enumerate() {
        let expected = Generator::new((), Greedy, options.clone())
            .generate_text(&mut Bigram::new(table.clone()), &pieces, prompt)
            .unwrap();
        for k in [1, 4, 9] {
            let mut generator = Generator::new((), Greedy, options.clone());
            let out = generator
                .generate_prompt_lookup_text(
                    &mut Bigram::new(table.clone()),
                    &pieces,
                    prompt,
                    &lookup(k, 2, Verification::Greedy),
                )
                .unwrap();
            assert_eq!(out, expected, "case {i}, k = {k}");
            let stats = generator.speculative_stats();
            check_stats(&stats, &out);
            // Case 1 masks the EOS id below 25 tokens: its drafts are
            // corrected.
            assert_eq!(stats.corrections == 0, i != 1, "case {i}, k = {k}: {stats:?}");
            if out.tokens.len() > 1 {
                assert!(stats.accepted > 0, "case {i}, k = {k}: {stats:?}");
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn greedy_lookup_equals_greedy_on_random_bigrams(
        cells in prop::collection::vec(-3i8..3, 36),
        prompt in prop::collection::vec(0u32..6, 1..12),
        max_new in 0usize..40,
        k in 1usize..8,
        n in 1usize..4,
        latest in any::<bool>(),
    ) {
        // Few distinct scores: ties (broken to the lowest id) are common.
        let table: Vec<Vec<f32>> =
            cells.chunks(6).map(|r| r.iter().map(|&x| f32::from(x)).collect()).collect();
        let options = GenerateOptions::builder(max_new).seed(0).build().unwrap();
        let processor = RepetitionPenalty::new(1.3).unwrap();
        let expected = Generator::new(processor.clone(), Greedy, options.clone())
            .generate(&mut Bigram::new(table.clone()), &prompt)
            .unwrap();
        let matching = if latest { LookupMatch::Latest } else { LookupMatch::First };
        let l = lookup(k, n, Verification::Greedy).with_match(matching);
        let mut generator = Generator::new(processor, Greedy, options);
        let out = generator.generate_prompt_lookup(&mut Bigram::new(table), &prompt, &l).unwrap();
        prop_assert_eq!(&out, &expected);
        let stats = generator.speculative_stats();
        prop_assert_eq!(stats.emitted(), out.tokens.len());
        prop_assert_eq!(stats.draft_calls, 0);
    }
}

#[test]
fn sampled_lookup_draws_the_tokens_of_plain_sampling() {
    // One categorical draw per emitted position, from the same processed
    // target row: the tokens of a seed are those of a plain run.
    let processor = || (RepetitionPenalty::new(1.2).unwrap(), Temperature::new(0.8).unwrap());
    let table = Bigram::pattern(V).table;
    let mut accepted = 0;
    let mut corrections = 0;
    for seed in 0..50 {
        let options = GenerateOptions::builder(60).seed(seed).build().unwrap();
        let expected = Generator::new(processor(), Categorical::new(), options.clone())
            .generate(&mut Bigram::new(table.clone()), &[2, 7, 2])
            .unwrap();
        let mut generator = Generator::new(processor(), Greedy, options);
        let out = generator
            .generate_prompt_lookup(
                &mut Bigram::new(table.clone()),
                &[2, 7, 2],
                &lookup(4, 2, Verification::Sampled),
            )
            .unwrap();
        assert_eq!(out, expected, "seed {seed}");
        let stats = generator.speculative_stats();
        check_stats(&stats, &out);
        accepted += stats.accepted;
        corrections += stats.corrections;
    }
    assert!(accepted > 100 && corrections > 100, "{accepted} accepted, {corrections} corrected");
}

const SV: usize = 4;
/// The bigram (1, 3) occurs twice: the first round drafts what followed it.
const PROMPT: [TokenId; 6] = [1, 3, 0, 2, 1, 3];

fn law_pipeline() -> Pipeline {
    Pipeline::new()
        .with(RepetitionPenalty::new(1.5).unwrap())
        .with(Temperature::new(0.9).unwrap())
        .with(TopK::new(3).unwrap())
}

fn law_target() -> Bigram {
    Bigram::new(vec![
        vec![0.0, 1.0, -0.5, 0.3],
        vec![0.8, -1.0, 0.2, 0.0],
        vec![-0.3, 0.4, 0.9, -1.2],
        vec![0.1, 0.1, -0.7, 0.6],
    ])
}

/// The exact joint law of the first three tokens under `pipeline`, cell
/// `16a + 4b + c`.
fn joint_law(model: &Bigram, mut pipeline: Pipeline) -> Vec<f64> {
    let mut probs = vec![0.0; SV * SV * SV];
    let mut step = |history: &[TokenId]| {
        let mut row = model.row(*history.last().unwrap()).to_vec();
        let ctx = Context::new(history, PROMPT.len()).unwrap();
        pipeline.process(&ctx, &mut row).unwrap();
        softmax(&row)
    };
    let p1 = step(&PROMPT);
    for a in 0..SV {
        let h1: Vec<TokenId> = PROMPT.iter().copied().chain([a as TokenId]).collect();
        let p2 = step(&h1);
        for b in 0..SV {
            let h2: Vec<TokenId> = h1.iter().copied().chain([b as TokenId]).collect();
            let p3 = step(&h2);
            for c in 0..SV {
                probs[16 * a + 4 * b + c] = p1[a] * p2[b] * p3[c];
            }
        }
    }
    probs
}

#[test]
fn sampled_lookup_keeps_the_targets_joint_law() {
    let target_law = joint_law(&law_target(), law_pipeline());
    // The law without the repetition penalty: close, but not the same.
    let other_law = joint_law(
        &law_target(),
        Pipeline::new().with(Temperature::new(0.9).unwrap()).with(TopK::new(3).unwrap()),
    );
    const N: u64 = 40_000;
    for (k, n) in [(1, 1), (2, 2), (3, 2)] {
        let mut generator =
            Generator::new(law_pipeline(), Categorical::new(), GenerateOptions::new(3));
        let mut counts = vec![0u64; SV * SV * SV];
        let (mut accepted, mut corrections) = (0, 0);
        for seed in 0..N {
            generator.set_options(GenerateOptions::builder(3).seed(seed).build().unwrap());
            let out = generator
                .generate_prompt_lookup(
                    &mut law_target(),
                    &PROMPT,
                    &lookup(k, n, Verification::Sampled),
                )
                .unwrap();
            let t = &out.tokens;
            counts[16 * t[0] as usize + 4 * t[1] as usize + t[2] as usize] += 1;
            let s = generator.speculative_stats();
            check_stats(&s, &out);
            accepted += s.accepted;
            corrections += s.corrections;
        }
        let (stat, df) = chi2(&counts, &target_law).expect("support");
        let critical = chi2_critical(df);
        assert!(stat < critical, "k = {k}: chi2 = {stat} >= {critical} (df = {df})");
        if let Some((stat, df)) = chi2(&counts, &other_law) {
            assert!(stat > chi2_critical(df), "k = {k}: the other law was not rejected");
        }
        assert!(accepted > N as usize / 10 && corrections > N as usize / 10);
    }
}
