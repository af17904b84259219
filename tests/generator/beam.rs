//! Beam search through the generator, on toy models: exhaustive search as
//! the reference, the options it reads, and its errors.

use decoding::processors::NoRepeatNGram;
use decoding::sampler::Greedy;
use decoding::{
    BeamHypothesis, BeamSearch, EarlyStopping, FinishReason, GenerateError, GenerateOptions,
    Generator, LanguageModel, Pipeline, TokenId,
};

use crate::models::FixedRow;

/// Scores that depend on the whole history: a hash of the tokens fed so
/// far picks each next-token score in [-3, 3).
#[derive(Debug, Clone, Default)]
struct Hashed {
    vocab: usize,
    history: Vec<TokenId>,
}

impl Hashed {
    fn new(vocab: usize) -> Self {
        Hashed { vocab, history: Vec::new() }
    }

    fn scores(history: &[TokenId], vocab: usize) -> Vec<f32> {
        let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
        for &t in history {
            h = (h ^ u64::from(t)).wrapping_mul(0x1000_0000_01b3).rotate_left(17);
        }
        (0..vocab)
            .map(|i| {
                let x = (h ^ (i as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9))
                    .wrapping_mul(0x94d0_49bb_1331_11eb);
                (x >> 40) as f32 / (1u64 << 24) as f32 * 6.0 - 3.0
            })
            .collect()
    }
}

impl LanguageModel for Hashed {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.history.extend_from_slice(tokens);
        logits.copy_from_slice(&Self::scores(&self.history, self.vocab));
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.history.clear();
        Ok(())
    }
}

/// log_softmax in f64.
fn log_probs(history: &[TokenId], vocab: usize) -> Vec<f64> {
    let s = Hashed::scores(history, vocab);
    let m = s.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let z: f64 = s.iter().map(|&x| f64::from(x - m).exp()).sum();
    s.iter().map(|&x| f64::from(x - m) - z.ln()).collect()
}

/// Every complete hypothesis (ending with an EOS id or reaching `max_new`
/// tokens) and its summed log-probability, by brute force.
fn enumerate(
    prompt: &[TokenId],
    vocab: usize,
    max_new: usize,
    eos: &[TokenId],
) -> Vec<(Vec<TokenId>, f64)> {
    let mut done = Vec::new();
    let mut open = vec![(Vec::new(), 0.0)];
    while let Some((generated, sum)) = open.pop() {
        let history: Vec<TokenId> = prompt.iter().chain(&generated).copied().collect();
        for (t, lp) in log_probs(&history, vocab).into_iter().enumerate() {
            let mut next: Vec<TokenId> = generated.clone();
            next.push(t as TokenId);
            if eos.contains(&(t as TokenId)) || next.len() == max_new {
                done.push((next, sum + lp));
            } else {
                open.push((next, sum + lp));
            }
        }
    }
    done
}

fn beams(n: usize, v: usize) -> Vec<Hashed> {
    vec![Hashed::new(v); n]
}

fn run(
    options: GenerateOptions,
    search: BeamSearch,
    v: usize,
    prompt: &[TokenId],
) -> Vec<BeamHypothesis> {
    let mut generator = Generator::new(Pipeline::new(), Greedy, options);
    generator.beam_search(&mut beams(search.num_beams(), v), prompt, &search).unwrap()
}

#[test]
fn enough_beams_find_the_exhaustive_ranking() {
    // With at least V^L beams, nothing is pruned: the hypotheses are every
    // sequence, ranked by summed log-probability.
    let (v, len, prompt) = (3, 3, [1, 2]);
    let mut all = enumerate(&prompt, v, len, &[]);
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    assert_eq!(all.len(), 27);
    for lp in [1.0f32, 0.0, 2.0] {
        let search = BeamSearch::new(27).unwrap().with_length_penalty(lp).unwrap();
        let out = run(GenerateOptions::new(len), search, v, &prompt);
        assert_eq!(out.len(), 27);
        for (got, (tokens, sum)) in out.iter().zip(&all) {
            assert_eq!(&got.tokens, tokens);
            let want = sum / (len as f64).powf(f64::from(lp));
            assert!((f64::from(got.score) - want).abs() < 1e-5, "{} vs {want}", got.score);
            assert_eq!(got.finish_reason, FinishReason::Length);
        }
    }
}

#[test]
fn canonical_beam_search_with_eos_finds_the_best_hypotheses() {
    // early_stopping = never and length_penalty = 0 is the textbook beam
    // search: with enough beams it returns the best complete hypotheses,
    // whatever their length.
    let (v, len, prompt, eos) = (3, 4, [0], [2]);
    let mut all = enumerate(&prompt, v, len, &eos);
    all.sort_by(|a, b| b.1.total_cmp(&a.1));
    let n = 12;
    let search = BeamSearch::new(32)
        .unwrap()
        .with_length_penalty(0.0)
        .unwrap()
        .with_early_stopping(EarlyStopping::Never)
        .with_num_return_sequences(n)
        .unwrap();
    let options = GenerateOptions::builder(len).eos_token(2).build().unwrap();
    let out = run(options, search, v, &prompt);
    assert_eq!(out.len(), n);
    assert!(out.iter().any(|h| h.tokens.len() < len), "some hypothesis ends early");
    for (got, (tokens, sum)) in out.iter().zip(&all) {
        assert_eq!(&got.tokens, tokens);
        assert!((f64::from(got.score) - sum).abs() < 1e-5);
        if got.tokens.len() < len {
            assert_eq!(got.finish_reason, FinishReason::Eos { token: 2 });
        }
    }
}

#[test]
fn one_beam_with_few_eos_is_greedy_until_the_end() {
    // Without EOS ids, one beam keeps the best continuation at every step.
    let (v, prompt) = (5, [3]);
    let search = BeamSearch::new(1).unwrap();
    let out = run(GenerateOptions::new(6), search, v, &prompt);
    let greedy = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(6))
        .generate(&mut Hashed::new(v), &prompt)
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].tokens, greedy.tokens);
}

#[test]
fn min_new_tokens_keeps_eos_out_of_the_first_tokens() {
    let (v, prompt) = (4, [1]);
    for eos in 0..4 {
        let options = GenerateOptions::builder(5).eos_token(eos).min_new_tokens(3).build().unwrap();
        let out = run(options, BeamSearch::new(3).unwrap(), v, &prompt);
        for h in &out {
            assert!(!h.tokens[..3].contains(&eos), "{:?}", h.tokens);
        }
    }
}

#[test]
fn processors_see_each_beams_own_history() {
    let (v, prompt) = (3, [0, 1]);
    let mut generator = Generator::new(
        Pipeline::new().with(NoRepeatNGram::new(2).unwrap()),
        Greedy,
        GenerateOptions::new(6),
    );
    let out =
        generator.beam_search(&mut beams(4, v), &prompt, &BeamSearch::new(4).unwrap()).unwrap();
    for h in &out {
        let all: Vec<TokenId> = prompt.iter().chain(&h.tokens).copied().collect();
        let grams: Vec<&[TokenId]> = all.windows(2).collect();
        for (i, g) in grams.iter().enumerate() {
            assert!(!grams[i + 1..].contains(g), "repeated {g:?} in {all:?}");
        }
    }
}

#[test]
fn a_stop_sequence_ends_a_hypothesis() {
    let (v, prompt) = (3, [0]);
    let all = run(GenerateOptions::new(4), BeamSearch::new(4).unwrap(), v, &prompt);
    // Stop on the last two tokens of the best unconstrained hypothesis.
    let stop = all[0].tokens[1..3].to_vec();
    let options = GenerateOptions::builder(4).stop_sequence(stop.clone()).build().unwrap();
    let out = run(options, BeamSearch::new(4).unwrap(), v, &prompt);
    let ended: Vec<_> =
        out.iter().filter(|h| h.finish_reason == FinishReason::StopSequence { index: 0 }).collect();
    assert!(!ended.is_empty());
    for h in ended {
        assert!(h.tokens.ends_with(&stop));
    }
}

#[test]
fn the_default_beam_model_forks_and_drops_states() {
    // A Vec of models: every hypothesis' token scores are those of a fresh
    // model fed its history, so each beam held the right state.
    let (v, prompt) = (4, [2, 3]);
    let out = run(GenerateOptions::new(5), BeamSearch::new(3).unwrap(), v, &prompt);
    for h in &out {
        let mut history = prompt.to_vec();
        for (&t, &score) in h.tokens.iter().zip(&h.token_scores) {
            let want = log_probs(&history, v)[t as usize];
            assert!((f64::from(score) - want).abs() < 1e-5);
            history.push(t);
        }
    }
}

#[test]
fn errors_and_edge_cases() {
    let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(3));
    let search = BeamSearch::new(2).unwrap();
    let err = generator.beam_search(&mut beams(2, 3), &[], &search).unwrap_err();
    assert!(matches!(err, GenerateError::EmptyPrompt));
    let err = generator.beam_search(&mut beams(1, 3), &[0], &search).unwrap_err();
    assert!(matches!(err, GenerateError::BatchTooLarge { sequences: 2, capacity: 1 }));

    generator.set_options(GenerateOptions::builder(3).stop_string("x").build().unwrap());
    let err = generator.beam_search(&mut beams(2, 3), &[0], &search).unwrap_err();
    assert!(matches!(err, GenerateError::Unsupported { .. }), "{err}");

    generator.set_options(GenerateOptions::builder(3).vocab_size(5).build().unwrap());
    let err = generator.beam_search(&mut beams(2, 3), &[0], &search).unwrap_err();
    assert!(matches!(err, GenerateError::VocabMismatch { model: 3, tokenizer: 5 }));

    generator.set_options(GenerateOptions::new(0));
    let out = generator.beam_search(&mut beams(2, 3), &[0], &search).unwrap();
    assert_eq!(out.len(), 1);
    assert!(out[0].tokens.is_empty());

    assert!(BeamSearch::new(0).is_err());
    assert!(BeamSearch::new(2).unwrap().with_num_return_sequences(0).is_err());
    assert!(BeamSearch::new(2).unwrap().with_length_penalty(f32::NAN).is_err());
}

/// A model that writes NaN at its second call.
#[derive(Debug, Clone, Default)]
struct NanLater {
    calls: usize,
}

impl LanguageModel for NanLater {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        3
    }
    fn forward(
        &mut self,
        _: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.calls += 1;
        logits.copy_from_slice(&[0.0, 1.0, 2.0]);
        if self.calls > 1 {
            logits[1] = f32::NAN;
        }
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.calls = 0;
        Ok(())
    }
}

#[test]
fn nan_scores_are_a_decoding_error_at_their_step() {
    let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(3));
    let err = generator
        .beam_search(&mut vec![NanLater::default(); 2], &[0], &BeamSearch::new(2).unwrap())
        .unwrap_err();
    assert!(matches!(err, GenerateError::Decoding { step: 1, .. }), "{err}");
}

/// Scores a masked token -inf: the rows hold `-inf`, which extreme length
/// penalties could turn into NaN scores.
#[derive(Debug, Clone, Default)]
struct Masked;

impl LanguageModel for Masked {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        3
    }
    fn forward(
        &mut self,
        _: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        logits.copy_from_slice(&[0.0, f32::NEG_INFINITY, 1.0]);
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// `-inf / inf` is NaN, whose sign (and so its rank under a total order)
/// differs between platforms: x86 makes it negative (ranked last), ARM
/// positive (ranked first). The search maps it to `-inf` everywhere.
#[test]
fn extreme_length_penalties_never_give_nan_scores() {
    for lp in [200.0f32, -200.0, 1e30, -1e30, f32::MAX] {
        let search = BeamSearch::new(3).unwrap().with_length_penalty(lp).unwrap();
        let options = GenerateOptions::builder(5).eos_token(1).eos_token(2).build().unwrap();
        let mut generator = Generator::new(Pipeline::new(), Greedy, options);
        let out = generator.beam_search(&mut vec![Masked; 3], &[0], &search).unwrap();
        for pair in out.windows(2) {
            assert!(pair[0].score >= pair[1].score, "lp {lp}: {:?}", out);
        }
        assert!(out.iter().all(|h| !h.score.is_nan()), "lp {lp}: {out:?}");
    }
}

/// The law of (best, second best) among 4 of `p.len()` tokens drawn
/// without replacement, each draw proportional to `p` among the rest.
fn best_two_of_four(p: &[f64]) -> Vec<f64> {
    let v = p.len();
    let mut law = vec![0.0; v * v];
    let mut draw = |seq: &[usize], prob: f64| {
        let mut drawn = seq.to_vec();
        drawn.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        law[drawn[0] * v + drawn[1]] += prob;
    };
    for a in 0..v {
        for b in (0..v).filter(|&b| b != a) {
            for c in (0..v).filter(|&c| c != a && c != b) {
                for d in (0..v).filter(|&d| d != a && d != b && d != c) {
                    let mut prob = 1.0;
                    let mut left = 1.0;
                    for &i in &[a, b, c, d] {
                        prob *= p[i] / left;
                        left -= p[i];
                    }
                    draw(&[a, b, c, d], prob);
                }
            }
        }
    }
    law
}

#[test]
fn beam_sampling_draws_without_replacement_from_the_processed_scores() {
    use crate::chi_square::{chi2, chi2_critical};
    use decoding::processors::Temperature;

    // Two beams, one step, no EOS: K = 4 continuations are drawn from the
    // first beam's 6 tokens (the second beam starts at -1e9, weight 0);
    // the two best-scored of them are the hypotheses.
    let logits = vec![1.0f32, 0.5, 0.0, -0.5, 0.2, -1.0];
    let softmax = |scale: f64| {
        let w: Vec<f64> = logits.iter().map(|&x| (f64::from(x) * scale).exp()).collect();
        let z: f64 = w.iter().sum();
        w.into_iter().map(|w| w / z).collect::<Vec<f64>>()
    };
    // Temperature 0.5 on log-probabilities squares the probabilities.
    for (temperature, p) in [(None, softmax(1.0)), (Some(0.5f32), softmax(2.0))] {
        let law = best_two_of_four(&p);
        let v = logits.len();
        let mut counts = vec![0u64; v * v];
        let runs = 20_000u64;
        let search = BeamSearch::new(2).unwrap().with_sampling(true);
        let mut pipeline = Pipeline::new();
        if let Some(t) = temperature {
            pipeline.push(Temperature::new(t).unwrap());
        }
        let mut generator = Generator::new(pipeline, Greedy, GenerateOptions::new(1));
        for seed in 0..runs {
            generator.set_options(GenerateOptions::builder(1).seed(seed).build().unwrap());
            let out = generator
                .beam_search(&mut vec![FixedRow(logits.clone()); 2], &[0], &search)
                .unwrap();
            assert_eq!(out.len(), 2);
            assert!(out[0].score >= out[1].score);
            counts[out[0].tokens[0] as usize * v + out[1].tokens[0] as usize] += 1;
        }
        let (stat, df) = chi2(&counts, &law).expect("an impossible pair was returned");
        assert!(stat < chi2_critical(df), "{temperature:?}: chi2 {stat} with {df} df");
        // Power: plain beam search would always return the same pair; the
        // draws reach at least four of the six possible ones.
        assert!(counts.iter().filter(|&&c| c > 0).count() >= 4, "{counts:?}");
    }
}

#[test]
fn beam_sampling_is_fixed_by_the_seed() {
    let model = Hashed::new(7);
    let search = BeamSearch::new(3).unwrap().with_sampling(true);
    let run = |seed: u64| {
        let options = GenerateOptions::builder(6).seed(seed).eos_token(6).build().unwrap();
        let mut generator = Generator::new(Pipeline::new(), Greedy, options);
        generator.beam_search(&mut vec![model.clone(); 3], &[1, 2], &search).unwrap()
    };
    assert_eq!(run(5), run(5));
    assert!((0..20).any(|seed| run(seed) != run(5)), "the seed changes nothing");
    // Deterministic beam search ignores the seed.
    let plain = BeamSearch::new(3).unwrap();
    let det = |seed: u64| {
        let options = GenerateOptions::builder(6).seed(seed).build().unwrap();
        let mut generator = Generator::new(Pipeline::new(), Greedy, options);
        generator.beam_search(&mut vec![model.clone(); 3], &[1, 2], &plain).unwrap()
    };
    assert_eq!(det(1), det(2));
}
