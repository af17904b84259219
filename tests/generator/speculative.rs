//! Speculative decoding: greedy verification reproduces plain greedy
//! generation, sampled verification keeps the target's law, the statistics
//! add up, and every stop condition holds.

use decoding::processors::{MirostatV2, RepetitionPenalty, Temperature, TopK};
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    Context, Error, FinishReason, GenerateError, GenerateOptions, Generation, Generator,
    LanguageModel, LogitsProcessor, LogprobMode, Pipeline, RewindableModel, SpeculativeOptions,
    SpeculativeStats, TokenId, Verification,
};

use crate::chi_square::{chi2, chi2_critical, softmax};
use crate::models::{Bigram, FixedRow, ModelError, vocab};

const NEG: f32 = f32::NEG_INFINITY;

/// splitmix64's finalizer: a fixed, well-mixed hash.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// How a [`Contextual`] draft relates to the target of the same salt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    /// The scores of its salt.
    Plain,
    /// The negated scores of its salt: its argmax is the target's argmin.
    Negated,
    /// The scores of its salt when the history's hash is even, else those
    /// of the other salt.
    Sometimes(u64),
}

/// A model whose scores depend on its whole held history (a hash of it), so
/// a rewind that keeps too much or too little changes them. It checks the
/// incremental contract: no empty feed, no rewind that does not shorten.
#[derive(Debug, Clone)]
pub(crate) struct Contextual {
    vocab: usize,
    salt: u64,
    kind: Kind,
    held: Vec<TokenId>,
    pub(crate) rewinds: usize,
    calls: usize,
    fail_at: Option<usize>,
}

impl Contextual {
    pub(crate) fn new(vocab: usize, salt: u64, kind: Kind) -> Self {
        Contextual { vocab, salt, kind, held: Vec::new(), rewinds: 0, calls: 0, fail_at: None }
    }

    /// Fails at its `n`-th model call (1-based) since the last reset.
    fn failing_at(mut self, n: usize) -> Self {
        self.fail_at = Some(n);
        self
    }

    fn hash(&self, salt: u64) -> u64 {
        self.held.iter().fold(salt, |h, &t| mix(h ^ (u64::from(t) + 1)))
    }

    fn write_row(&self, out: &mut [f32]) {
        let h = self.hash(self.salt);
        let salt_row = |h: u64, out: &mut [f32]| {
            for (i, x) in out.iter_mut().enumerate() {
                let r = mix(h ^ (i as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93));
                *x = (r >> 40) as f32 / (1u32 << 24) as f32 * 4.0 - 2.0;
            }
        };
        match self.kind {
            Kind::Plain => salt_row(h, out),
            Kind::Negated => {
                salt_row(h, out);
                out.iter_mut().for_each(|x| *x = -*x);
            }
            Kind::Sometimes(other) => {
                if h % 2 == 0 {
                    salt_row(h, out);
                } else {
                    salt_row(self.hash(other), out);
                }
            }
        }
    }

    fn count_call(&mut self) -> Result<(), ModelError> {
        self.calls += 1;
        if self.fail_at == Some(self.calls) {
            return Err(ModelError { call: self.calls });
        }
        Ok(())
    }
}

impl LanguageModel for Contextual {
    type Error = ModelError;
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        assert!(!tokens.is_empty(), "empty feed");
        assert_eq!(logits.len(), self.vocab);
        self.count_call()?;
        self.held.extend_from_slice(tokens);
        self.write_row(logits);
        Ok(())
    }

    fn forward_all(
        &mut self,
        tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        assert!(!tokens.is_empty(), "empty feed");
        assert_eq!(logits.len(), tokens.len() * self.vocab);
        self.count_call()?;
        for (&t, row) in tokens.iter().zip(logits.chunks_exact_mut(self.vocab)) {
            self.held.push(t);
            self.write_row(row);
        }
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.held.clear();
        self.calls = 0;
        Ok(())
    }
}

impl RewindableModel for Contextual {
    fn rewind(&mut self, len: usize) -> Result<(), Self::Error> {
        assert!(len < self.held.len(), "rewind to {len} while holding {}", self.held.len());
        self.held.truncate(len);
        self.rewinds += 1;
        Ok(())
    }
}

const V: usize = 16;

fn target() -> Contextual {
    Contextual::new(V, 1, Kind::Plain)
}

/// The drafts of the greedy tests: one that agrees, one that never does,
/// one that sometimes does.
fn drafts() -> [(&'static str, Contextual); 3] {
    [
        ("agrees", Contextual::new(V, 1, Kind::Plain)),
        ("disagrees", Contextual::new(V, 1, Kind::Negated)),
        ("sometimes", Contextual::new(V, 1, Kind::Sometimes(7))),
    ]
}

/// A history-dependent processor followed by a stateful one.
pub(crate) fn stateful() -> (RepetitionPenalty, MirostatV2) {
    (RepetitionPenalty::new(1.4).unwrap(), MirostatV2::new(1.5, 0.3).unwrap())
}

fn spec(k: usize, verification: Verification) -> SpeculativeOptions {
    SpeculativeOptions::new(k, verification).unwrap()
}

/// The invariants every run's statistics satisfy.
fn check_stats(stats: &SpeculativeStats, out: &Generation) {
    assert_eq!(stats.emitted(), out.tokens.len(), "{stats:?}");
    assert!(stats.accepted + stats.corrections <= stats.drafted, "{stats:?}");
    assert_eq!(stats.draft_calls, stats.drafted, "{stats:?}");
    // One target call per round, one more for a prompt fed apart.
    assert!(stats.target_calls >= stats.rounds && stats.target_calls <= stats.rounds + 1);
    // Each round emits at least one token, and ends with a correction, a
    // bonus or the run's end.
    assert!(stats.rounds <= out.tokens.len(), "{stats:?}");
    assert!(stats.corrections + stats.bonus <= stats.rounds, "{stats:?}");
    assert!(stats.rounds <= stats.corrections + stats.bonus + 1, "{stats:?}");
}

/// The model holds a prefix of the prompt and the generated tokens.
pub(crate) fn check_held(model: &Contextual, prompt: &[TokenId], out: &Generation) {
    let all: Vec<TokenId> = prompt.iter().chain(&out.tokens).copied().collect();
    assert!(all.starts_with(&model.held), "holds {:?} of {all:?}", model.held);
}

#[test]
fn greedy_verification_reproduces_plain_greedy_generation() {
    for prompt in [&[0][..], &[3, 1, 4, 1, 5]] {
        // Seeded so that the Generations (which report the seed) compare equal.
        let options = GenerateOptions::builder(24).seed(0).build().unwrap();
        let mut plain = Generator::new(stateful(), Greedy, options.clone());
        let expected = plain.generate(&mut target(), prompt).unwrap();
        let mu = plain.processor().1.mu();
        for (name, draft) in drafts() {
            for k in [1, 2, 3, 7, 40] {
                let mut generator = Generator::new(stateful(), Greedy, options.clone());
                let (mut t, mut d) = (target(), draft.clone());
                let out = generator
                    .generate_speculative(&mut t, &mut d, prompt, &spec(k, Verification::Greedy))
                    .unwrap();
                assert_eq!(out, expected, "{name}, k = {k}");
                // Accept was called for exactly the emitted tokens, in order,
                // each after its own target row.
                assert_eq!(generator.processor().1.mu(), mu, "{name}, k = {k}");
                let stats = generator.speculative_stats();
                check_stats(&stats, &out);
                check_held(&t, prompt, &out);
                check_held(&d, prompt, &out);
                match name {
                    "agrees" => {
                        assert_eq!(stats.acceptance_rate(), Some(1.0), "k = {k}");
                        assert_eq!(stats.corrections, 0);
                        assert_eq!(t.rewinds, 0, "nothing to undo when every draft is kept");
                    }
                    "disagrees" => {
                        assert_eq!(stats.accepted, 0, "k = {k}");
                        assert_eq!(stats.rounds, out.tokens.len());
                    }
                    _ => {
                        let rate = stats.acceptance_rate().unwrap();
                        assert!(rate > 0.0 && rate < 1.0, "k = {k}: {stats:?}");
                    }
                }
            }
        }
    }
}

#[test]
fn a_draft_identical_to_the_target_is_always_accepted() {
    // With a history-dependent processor: the draft rows see the drafted
    // tokens in their context, as the target rows see the emitted ones.
    for verification in [Verification::Greedy, Verification::Sampled] {
        for k in [1, 4] {
            let processor = (RepetitionPenalty::new(1.4).unwrap(), Temperature::new(0.7).unwrap());
            let options = GenerateOptions::builder(30).seed(9).build().unwrap();
            let mut generator = Generator::new(processor, Categorical::new(), options);
            let out = generator
                .generate_speculative(&mut target(), &mut target(), &[2, 2], &spec(k, verification))
                .unwrap();
            let stats = generator.speculative_stats();
            check_stats(&stats, &out);
            assert_eq!(stats.acceptance_rate(), Some(1.0), "{verification:?}, k = {k}");
            assert_eq!(stats.corrections, 0);
            // Every round but the last drafts k and ends with a bonus.
            assert_eq!(stats.rounds, 30usize.div_ceil(k + 1), "{verification:?}, k = {k}");
        }
    }
}

const SV: usize = 4;
const PROMPT: [TokenId; 2] = [1, 3];

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

fn law_draft() -> Bigram {
    Bigram::new(vec![
        vec![1.2, -0.4, 0.0, 0.0],
        vec![0.0, 0.5, 0.5, -0.8],
        vec![0.6, 0.0, -0.2, 0.3],
        vec![-0.9, 1.0, 0.4, 0.0],
    ])
}

/// The exact joint law of the first three tokens of `model`'s processed
/// rows: `p(a) p(b | a) p(c | a, b)`, cell `16a + 4b + c`.
fn joint_law(model: &Bigram) -> Vec<f64> {
    let mut pipeline = law_pipeline();
    let mut probs = vec![0.0; SV * SV * SV];
    let step = |history: &[TokenId], pipeline: &mut Pipeline| {
        let mut row = model.row(*history.last().unwrap()).to_vec();
        let ctx = Context::new(history, PROMPT.len()).unwrap();
        pipeline.process(&ctx, &mut row).unwrap();
        softmax(&row)
    };
    let p1 = step(&PROMPT, &mut pipeline);
    for a in 0..SV {
        let h1 = [PROMPT[0], PROMPT[1], a as TokenId];
        let p2 = step(&h1, &mut pipeline);
        for b in 0..SV {
            let h2 = [h1[0], h1[1], h1[2], b as TokenId];
            let p3 = step(&h2, &mut pipeline);
            for c in 0..SV {
                probs[16 * a + 4 * b + c] = p1[a] * p2[b] * p3[c];
            }
        }
    }
    probs
}

#[test]
fn sampled_verification_keeps_the_targets_joint_law() {
    let target_law = joint_law(&law_target());
    let draft_law = joint_law(&law_draft());
    const N: u64 = 40_000;
    for k in [1, 2] {
        let mut generator =
            Generator::new(law_pipeline(), Categorical::new(), GenerateOptions::new(3));
        let mut counts = vec![0u64; SV * SV * SV];
        let mut stats = SpeculativeStats::default();
        for seed in 0..N {
            generator.set_options(GenerateOptions::builder(3).seed(seed).build().unwrap());
            let out = generator
                .generate_speculative(
                    &mut law_target(),
                    &mut law_draft(),
                    &PROMPT,
                    &spec(k, Verification::Sampled),
                )
                .unwrap();
            let t = &out.tokens;
            counts[16 * t[0] as usize + 4 * t[1] as usize + t[2] as usize] += 1;
            let s = generator.speculative_stats();
            check_stats(&s, &out);
            stats.drafted += s.drafted;
            stats.accepted += s.accepted;
            stats.corrections += s.corrections;
        }
        let (stat, df) = chi2(&counts, &target_law).expect("support");
        let critical = chi2_critical(df);
        assert!(stat < critical, "k = {k}: chi2 = {stat} >= {critical} (df = {df})");
        // The same draws against the draft's law: the test tells them apart
        // (by its support, or by the statistic).
        if let Some((stat, df)) = chi2(&counts, &draft_law) {
            assert!(stat > chi2_critical(df), "k = {k}: the draft's law was not rejected");
        }
        // Both outcomes of the acceptance rule were exercised.
        assert!(stats.accepted > N as usize / 10 && stats.corrections > N as usize / 10);
    }
}

/// `Σ min(p, q)` of two processed rows.
fn overlap(p: &[f64], q: &[f64]) -> f64 {
    p.iter().zip(q).map(|(a, b)| a.min(*b)).sum()
}

#[test]
fn acceptance_rate_is_the_overlap_of_the_two_laws() {
    // Context-free models: every drafted token is an independent trial
    // accepted with probability α = Σ min(p, q).
    let t_row = vec![0.5f32, -0.2, 1.1, 0.0, -1.0, 0.7];
    let d_row = vec![0.9f32, 0.4, 0.2, -0.6, 0.1, 0.0];
    let temperature = 0.8f32;
    let scaled = |row: &[f32]| -> Vec<f32> { row.iter().map(|x| x / temperature).collect() };
    let alpha = overlap(&softmax(&scaled(&t_row)), &softmax(&scaled(&d_row)));
    assert!(alpha > 0.5 && alpha < 0.95, "{alpha}");

    let n = 30_001;
    let options = GenerateOptions::builder(n).seed(3).build().unwrap();
    let processor = Temperature::new(temperature).unwrap();
    let mut generator = Generator::new(processor, Categorical::new(), options);

    // k = 1: every drafted token is verified.
    let out = generator
        .generate_speculative(
            &mut FixedRow(t_row.clone()),
            &mut FixedRow(d_row.clone()),
            &[0],
            &spec(1, Verification::Sampled),
        )
        .unwrap();
    let stats = generator.speculative_stats();
    check_stats(&stats, &out);
    assert_eq!(stats.accepted + stats.corrections, stats.drafted);
    let rate = stats.acceptance_rate().unwrap();
    let sd = (alpha * (1.0 - alpha) / stats.drafted as f64).sqrt();
    assert!((rate - alpha).abs() < 5.0 * sd, "rate {rate}, α {alpha}, sd {sd}");

    // k = 4: a round emits j tokens with probability α^(j-1) (1 - α) for
    // j <= 4, and 5 with α^4 (Leviathan et al., eq. 1).
    let k = 4;
    let out = generator
        .generate_speculative(
            &mut FixedRow(t_row),
            &mut FixedRow(d_row),
            &[0],
            &spec(k, Verification::Sampled),
        )
        .unwrap();
    let stats = generator.speculative_stats();
    check_stats(&stats, &out);
    let law: Vec<(f64, f64)> = (1..=k + 1)
        .map(|j| {
            let p = if j <= k {
                alpha.powi(j as i32 - 1) * (1.0 - alpha)
            } else {
                alpha.powi(k as i32)
            };
            (j as f64, p)
        })
        .collect();
    let mean: f64 = law.iter().map(|&(j, p)| j * p).sum();
    let var: f64 = law.iter().map(|&(j, p)| (j - mean) * (j - mean) * p).sum();
    assert!((mean - (1.0 - alpha.powi(k as i32 + 1)) / (1.0 - alpha)).abs() < 1e-12);
    let rounds = stats.rounds as f64;
    let per_round = out.tokens.len() as f64 / rounds;
    // The last rounds are cut by the length limit: at most k tokens short.
    let tolerance = 5.0 * (var / rounds).sqrt() + k as f64 / rounds;
    assert!((per_round - mean).abs() < tolerance, "{per_round} vs {mean} ± {tolerance}");
}

#[test]
fn a_stateful_processor_sees_the_rows_and_accepts_of_a_plain_run() {
    // Replays the emitted tokens of a sampled run through a fresh processor
    // on the target's rows, as plain generation would process them: the
    // final μ must match, so each accept came right after the target row of
    // its own position.
    for seed in 0..20 {
        let options = GenerateOptions::builder(20).seed(seed).build().unwrap();
        let mut generator = Generator::new(stateful(), Categorical::new(), options);
        let prompt = [5, 6];
        let mut draft = Contextual::new(V, 1, Kind::Sometimes(3));
        let out = generator
            .generate_speculative(
                &mut target(),
                &mut draft,
                &prompt,
                &spec(3, Verification::Sampled),
            )
            .unwrap();
        let mut replay = stateful();
        let mut model = target();
        let mut history = prompt.to_vec();
        let mut row = vec![0.0; V];
        let mut live = Vec::new();
        model.forward(&prompt, 0, &mut row).unwrap();
        for &token in &out.tokens {
            let ctx = Context::new(&history, prompt.len()).unwrap();
            let mut scores = decoding::Scores::new(&mut row, &mut live);
            replay.process(&ctx, &mut scores).unwrap();
            assert!(scores.get(token).unwrap() > NEG, "token {token} was not allowed");
            replay.accept(token);
            model.forward(&[token], history.len(), &mut row).unwrap();
            history.push(token);
        }
        assert_eq!(generator.processor().1.mu(), replay.1.mu(), "seed {seed}");
    }
}

fn pieces() -> Vec<Vec<u8>> {
    let names: Vec<String> = (0..V).map(|i| format!("<{i}>")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    vocab(&refs)
}

#[test]
fn greedy_runs_equal_plain_runs_under_every_stop_condition() {
    let prompt = [4, 2];
    let base = Generator::new(stateful(), Greedy, GenerateOptions::new(30))
        .generate(&mut target(), &prompt)
        .unwrap()
        .tokens;
    let text = |ids: &[TokenId]| -> String { ids.iter().map(|i| format!("<{i}>")).collect() };
    let straddling = {
        let t = text(&base[7..9]);
        t[1..t.len() - 1].to_string()
    };
    let configs = [
        GenerateOptions::builder(30).eos_token(base[6]).build().unwrap(),
        GenerateOptions::builder(30).eos_token(base[0]).eos_token(base[3]).build().unwrap(),
        GenerateOptions::builder(30).eos_token(base[1]).min_new_tokens(5).build().unwrap(),
        GenerateOptions::builder(30).stop_sequence(base[4..7].to_vec()).build().unwrap(),
        GenerateOptions::builder(30).stop_string(text(&base[5..7])).build().unwrap(),
        // A stop string that straddles a token boundary.
        GenerateOptions::builder(30).stop_string(straddling).build().unwrap(),
        GenerateOptions::builder(30)
            .logprobs(LogprobMode::Both)
            .top_logprobs(3)
            .stop_sequence(vec![base[2], base[3]])
            .build()
            .unwrap(),
        GenerateOptions::new(0),
        GenerateOptions::new(1),
        GenerateOptions::new(2),
        GenerateOptions::new(5),
    ]
    // Seeded so that the Generations (which report the seed) compare equal.
    .map(|o| o.to_builder().seed(0).build().unwrap());
    let pieces = pieces();
    for options in configs {
        let mut plain = Generator::new(stateful(), Greedy, options.clone());
        let expected = plain.generate_text(&mut target(), &pieces, &prompt).unwrap();
        for (name, draft) in drafts() {
            for k in [1, 2, 4] {
                let mut generator = Generator::new(stateful(), Greedy, options.clone());
                let (mut t, mut d) = (target(), draft.clone());
                let out = generator
                    .generate_speculative_text(
                        &mut t,
                        &mut d,
                        &pieces,
                        &prompt,
                        &spec(k, Verification::Greedy),
                    )
                    .unwrap();
                assert_eq!(out, expected, "{name}, k = {k}, {options:?}");
                assert_eq!(generator.finish_reason(), Some(expected.finish_reason));
                check_stats(&generator.speculative_stats(), &out);
                check_held(&t, &prompt, &out);
                check_held(&d, &prompt, &out);
            }
        }
    }
}

#[test]
fn no_draft_call_when_one_token_or_none_is_left() {
    for (max, rounds) in [(0, 0), (1, 1)] {
        let mut generator = Generator::new((), Greedy, GenerateOptions::new(max));
        let out = generator
            .generate_speculative(
                &mut target(),
                &mut target(),
                &[1],
                &spec(3, Verification::Greedy),
            )
            .unwrap();
        assert_eq!(out.tokens.len(), max);
        let stats = generator.speculative_stats();
        assert_eq!((stats.drafted, stats.draft_calls, stats.rounds), (0, 0, rounds));
        assert_eq!(stats.target_calls, rounds);
        assert_eq!(stats.acceptance_rate(), None);
    }
}

#[test]
fn sampled_runs_never_emit_past_a_stop() {
    let eos = 3;
    let seq = vec![5, 6];
    for seed in 0..200 {
        let options = GenerateOptions::builder(25)
            .eos_token(eos)
            .min_new_tokens(4)
            .stop_sequence(seq.clone())
            .seed(seed)
            .build()
            .unwrap();
        let mut generator =
            Generator::new(Temperature::new(2.0).unwrap(), Categorical::new(), options);
        let mut draft = Contextual::new(V, 2, Kind::Plain);
        let mut t = target();
        let out = generator
            .generate_speculative(&mut t, &mut draft, &[1], &spec(5, Verification::Sampled))
            .unwrap();
        let tokens = &out.tokens;
        check_stats(&generator.speculative_stats(), &out);
        check_held(&t, &[1], &out);
        check_held(&draft, &[1], &out);
        assert!(!tokens[..4.min(tokens.len())].contains(&eos), "EOS before min_new_tokens");
        let body = &tokens[..tokens.len() - 1];
        assert!(!body.contains(&eos), "seed {seed}: {tokens:?}");
        let ends = |n: usize| tokens[..n].ends_with(&seq);
        assert!((1..tokens.len()).all(|n| !ends(n)), "seed {seed}: {tokens:?}");
        match out.finish_reason {
            FinishReason::Eos { token } => assert_eq!(token, *tokens.last().unwrap()),
            FinishReason::StopSequence { index } => {
                assert_eq!(index, 0);
                assert!(tokens.ends_with(&seq));
            }
            FinishReason::Length => assert_eq!(tokens.len(), 25),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn a_seed_fixes_the_tokens() {
    let run = |seed: u64| {
        let options = GenerateOptions::builder(40).seed(seed).build().unwrap();
        let mut generator =
            Generator::new(Temperature::new(1.5).unwrap(), Categorical::new(), options);
        let out = generator
            .generate_speculative(
                &mut target(),
                &mut Contextual::new(V, 1, Kind::Sometimes(9)),
                &[0],
                &spec(3, Verification::Sampled),
            )
            .unwrap();
        (out, generator.speculative_stats())
    };
    let first = run(11);
    assert_eq!(run(11), first);
    assert!((12..20).any(|s| run(s).0.tokens != first.0.tokens));
}

#[test]
fn sampled_logprobs_are_those_of_the_processed_target_row() {
    let t_row = vec![0.5f32, -0.2, 1.1, 0.0];
    let d_row = vec![0.9f32, 0.4, 0.2, -0.6];
    let options = GenerateOptions::builder(50).logprobs(LogprobMode::Both).seed(1).build().unwrap();
    let processor = (Temperature::new(0.5).unwrap(), TopK::new(3).unwrap());
    let mut generator = Generator::new(processor, Categorical::new(), options);
    let out = generator
        .generate_speculative(
            &mut FixedRow(t_row.clone()),
            &mut FixedRow(d_row),
            &[0],
            &spec(3, Verification::Sampled),
        )
        .unwrap();
    let raw = softmax(&t_row);
    let tempered: Vec<f32> = t_row.iter().map(|x| x / 0.5).collect();
    let mut processed = softmax(&tempered);
    processed[1] = 0.0; // the lowest of four, cut by top-k 3
    let z: f64 = processed.iter().sum();
    let logprobs = out.logprobs.unwrap();
    assert_eq!(logprobs.len(), 50);
    for (r, &token) in logprobs.iter().zip(&out.tokens) {
        assert_eq!(r.token, token);
        assert_ne!(token, 1);
        let want = (processed[token as usize] / z).ln();
        assert!((f64::from(r.processed.unwrap()) - want).abs() < 1e-5, "{r:?}");
        let want = raw[token as usize].ln();
        assert!((f64::from(r.raw.unwrap()) - want).abs() < 1e-5, "{r:?}");
    }
}

#[test]
fn draft_tokens_must_be_at_least_one() {
    for verification in [Verification::Greedy, Verification::Sampled] {
        assert!(matches!(
            SpeculativeOptions::new(0, verification),
            Err(Error::InvalidParameter { name: "draft_tokens", .. })
        ));
        let options = SpeculativeOptions::new(1, verification).unwrap();
        assert_eq!((options.draft_tokens(), options.verification()), (1, verification));
    }
}

#[test]
fn vocabulary_mismatch_is_an_error() {
    let mut generator = Generator::new((), Greedy, GenerateOptions::new(4));
    let r = generator.generate_speculative(
        &mut Contextual::new(4, 1, Kind::Plain),
        &mut Contextual::new(5, 1, Kind::Plain),
        &[0],
        &spec(2, Verification::Greedy),
    );
    assert!(matches!(r, Err(GenerateError::DraftVocabMismatch { expected: 4, actual: 5 })));
    assert_eq!(generator.finish_reason(), None);
    assert!(generator.generated().is_empty());

    // With the tokenizer's size set, padded heads of different sizes work:
    // both rows are cut to it.
    let options = GenerateOptions::builder(6).vocab_size(4).build().unwrap();
    let mut generator = Generator::new((), Greedy, options.clone());
    let out = generator
        .generate_speculative(
            &mut Contextual::new(6, 1, Kind::Plain),
            &mut Contextual::new(5, 1, Kind::Plain),
            &[0],
            &spec(2, Verification::Sampled),
        )
        .unwrap();
    assert!(out.tokens.iter().all(|&t| t < 4));
    let r = generator.generate_speculative(
        &mut Contextual::new(6, 1, Kind::Plain),
        &mut Contextual::new(3, 1, Kind::Plain),
        &[0],
        &spec(2, Verification::Greedy),
    );
    assert!(matches!(r, Err(GenerateError::DraftVocabMismatch { expected: 4, actual: 3 })));
}

#[test]
fn model_errors_name_the_model_and_the_step() {
    // A draft that agrees, k = 2: round 0 makes draft calls 1, 2 (steps 0,
    // 1) and emits 3 tokens; round 1's first draft call (call 3) is step 3.
    let mut generator = Generator::new((), Greedy, GenerateOptions::new(10));
    let mut draft = target().failing_at(3);
    let r = generator.generate_speculative(
        &mut target(),
        &mut draft,
        &[0],
        &spec(2, Verification::Greedy),
    );
    match r {
        Err(GenerateError::DraftModel { step: 3, source }) => {
            assert_eq!(source.to_string(), "model call 3 failed");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(generator.generated().len(), 3);
    assert_eq!(generator.finish_reason(), None);

    // The target's second call scores round 1 (steps 3..): step 3.
    let r = generator.generate_speculative(
        &mut target().failing_at(2),
        &mut target(),
        &[0],
        &spec(2, Verification::Greedy),
    );
    assert!(
        matches!(r, Err(GenerateError::Model { step: 3, source: ModelError { call: 2 } })),
        "{r:?}"
    );
    assert_eq!(generator.speculative_stats().rounds, 1);
}
