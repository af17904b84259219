//! Positions passed to the model, fallible resets, and `PrefixCache`: the KV
//! cache kept across runs gives the tokens a fresh model gives.

use decoding::processors::{Temperature, TopK};
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    GenerateError, GenerateOptions, Generator, LanguageModel, Pipeline, PrefixCache,
    RewindableModel, SpeculativeOptions, TokenId, Verification,
};

use crate::models::{Bigram, ModelError, Recorder};

const V: usize = 24;

/// A model whose scores depend on its whole history (an FNV hash of it), and
/// which checks every position it is given against what it holds: what a
/// KV-cached transformer does.
#[derive(Debug, Clone, Default)]
struct Historian {
    held: Vec<TokenId>,
    fed: usize,
    resets: usize,
    fail_reset: bool,
}

impl Historian {
    fn row(&self, logits: &mut [f32]) {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &t in &self.held {
            h = (h ^ u64::from(t)).wrapping_mul(0x0100_0000_01b3);
        }
        for (i, x) in logits.iter_mut().enumerate() {
            let bits = (h ^ (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15)).rotate_left(17);
            *x = (bits % 1000) as f32 / 250.0;
        }
    }
}

impl LanguageModel for Historian {
    type Error = ModelError;
    fn vocab_size(&self) -> usize {
        V
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        if position != self.held.len() || tokens.is_empty() {
            return Err(ModelError { call: position });
        }
        self.held.extend_from_slice(tokens);
        self.fed += tokens.len();
        self.row(logits);
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        if self.fail_reset {
            return Err(ModelError { call: 0 });
        }
        self.resets += 1;
        self.held.clear();
        Ok(())
    }
}

impl RewindableModel for Historian {
    fn rewind(&mut self, len: usize) -> Result<(), Self::Error> {
        self.held.truncate(len);
        Ok(())
    }
}

fn sampling(max_new: usize, seed: u64) -> Generator {
    let pipeline = Pipeline::new().with(Temperature::new(0.9).unwrap()).with(TopK::new(8).unwrap());
    let options = GenerateOptions::builder(max_new).seed(seed).build().unwrap();
    Generator::new(pipeline, Categorical::new(), options)
}

#[test]
fn the_generator_passes_the_position_of_the_first_new_token() {
    let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(5));
    let mut model = Recorder::new(Bigram::pattern(V));
    generator.generate(&mut model, &[1, 2, 3]).unwrap();
    assert_eq!(model.calls.positions, [0, 3, 4, 5, 6]);
    // A second run starts again at 0, after a reset.
    generator.generate(&mut model, &[7]).unwrap();
    assert_eq!(model.calls.positions[5..], [0, 1, 2, 3, 4]);
    assert_eq!(model.calls.resets, 2);
    // A model that checks positions runs through every strategy.
    for seed in 0..4 {
        sampling(12, seed).generate(&mut Historian::default(), &[5, 6]).unwrap();
    }
}

#[test]
fn speculative_decoding_passes_positions_through_rounds_and_rewinds() {
    let mut generator = sampling(20, 3);
    let options = SpeculativeOptions::new(4, Verification::Sampled).unwrap();
    let mut draft = Historian::default();
    let out = generator
        .generate_speculative(&mut Historian::default(), &mut draft, &[1, 2], &options)
        .unwrap();
    assert_eq!(out.tokens.len(), 20);
}

#[test]
fn a_failing_reset_ends_the_run_at_step_0() {
    let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(5));
    let mut model = Historian { fail_reset: true, ..Historian::default() };
    let err = generator.generate(&mut model, &[1, 2]).unwrap_err();
    assert!(matches!(err, GenerateError::Model { step: 0, .. }), "{err}");
    assert_eq!(model.fed, 0);
    assert!(generator.generated().is_empty());
}

#[test]
fn a_continued_conversation_feeds_only_its_new_tokens_and_gives_a_fresh_models_tokens() {
    let mut generator = sampling(6, 11);
    let mut cached = PrefixCache::new(Historian::default());
    let first = generator.generate(&mut cached, &[1, 2, 3, 4]).unwrap();
    assert_eq!(cached.reused(), 0);
    assert_eq!(cached.get_ref().fed, 4 + 5);

    let mut turn = vec![1, 2, 3, 4];
    turn.extend(&first.tokens);
    turn.extend([9, 10]);
    let before = cached.get_ref().fed;
    let second = generator.generate(&mut cached, &turn).unwrap();
    // Everything the model held (the prompt and 5 of 6 answer tokens) is
    // reused; the last answer token and the new message are fed.
    assert_eq!(cached.reused(), 9);
    assert_eq!(cached.get_ref().fed - before, 3 + 5);
    assert_eq!(cached.get_ref().resets, 1);
    let fresh = generator.generate(&mut Historian::default(), &turn).unwrap();
    assert_eq!(second, fresh);
}

#[test]
fn shared_prefixes_identical_prompts_and_unrelated_prompts_all_match_a_fresh_model() {
    let prompts: [&[TokenId]; 6] = [
        &[1, 2, 3, 4, 5],
        &[1, 2, 3, 7],         // shares a prefix: rewound to 3
        &[1, 2, 3, 7],         // identical: one token fed again
        &[1, 2, 3, 7, 30, 31], // extends the previous prompt (ids never generated)
        &[20, 21],             // unrelated: a real reset
        &[20],                 // a prefix of what is held
    ];
    let expected_reuse = [0, 3, 3, 4, 0, 0];
    let mut generator = sampling(4, 5);
    let mut cached = PrefixCache::new(Historian::default());
    for (prompt, reuse) in prompts.iter().zip(expected_reuse) {
        let out = generator.generate(&mut cached, prompt).unwrap();
        assert_eq!(cached.reused(), reuse, "{prompt:?}");
        let fresh = generator.generate(&mut Historian::default(), prompt).unwrap();
        assert_eq!(out, fresh, "{prompt:?}");
        let mut held = prompt.to_vec();
        held.extend(&out.tokens[..out.tokens.len() - 1]);
        assert_eq!(cached.held(), held);
        assert_eq!(cached.get_ref().held, held);
    }
}

#[test]
fn a_prefix_cache_under_speculative_decoding_gives_the_same_tokens() {
    let options = SpeculativeOptions::new(3, Verification::Sampled).unwrap();
    let prompt = [4, 5, 6];
    let mut generator = sampling(10, 2);
    let mut target = PrefixCache::new(Historian::default());
    let mut draft = PrefixCache::new(Historian::default());
    for _ in 0..2 {
        let out = generator.generate_speculative(&mut target, &mut draft, &prompt, &options);
        let fresh = generator.generate_speculative(
            &mut Historian::default(),
            &mut Historian::default(),
            &prompt,
            &options,
        );
        assert_eq!(out.unwrap(), fresh.unwrap());
    }
}

#[test]
fn after_a_model_error_the_next_run_resets_for_real() {
    /// Fails its third call; otherwise a `Historian`.
    #[derive(Debug, Default)]
    struct Flaky {
        inner: Historian,
        calls: usize,
    }
    impl LanguageModel for Flaky {
        type Error = ModelError;
        fn vocab_size(&self) -> usize {
            V
        }
        fn forward(&mut self, t: &[TokenId], p: usize, l: &mut [f32]) -> Result<(), ModelError> {
            self.calls += 1;
            if self.calls == 3 {
                // Fails after changing its state, as a backend may.
                self.inner.held.push(0);
                return Err(ModelError { call: 3 });
            }
            self.inner.forward(t, p, l)
        }
        fn reset(&mut self) -> Result<(), ModelError> {
            self.inner.reset()
        }
    }
    impl RewindableModel for Flaky {
        fn rewind(&mut self, len: usize) -> Result<(), ModelError> {
            self.inner.rewind(len)
        }
    }
    let mut generator = sampling(5, 1);
    let mut cached = PrefixCache::new(Flaky::default());
    assert!(generator.generate(&mut cached, &[1, 2]).is_err());
    assert!(cached.held().is_empty());
    let out = generator.generate(&mut cached, &[1, 2]).unwrap();
    assert_eq!(cached.reused(), 0);
    assert_eq!(out, generator.generate(&mut Historian::default(), &[1, 2]).unwrap());
}

#[test]
fn batches_and_beams_pass_positions_a_checking_model_accepts() {
    use decoding::{BatchSequence, BeamSearch, generate_batch};

    let (mut a, mut b) = (sampling(7, 1), sampling(3, 2));
    let mut models = vec![Historian::default(), Historian::default()];
    let results = generate_batch(
        &mut models,
        &mut [BatchSequence::new(&mut a, &[1, 2, 3]), BatchSequence::new(&mut b, &[4])],
    )
    .unwrap();
    assert_eq!(results[0].as_ref().unwrap().tokens.len(), 7);
    assert_eq!(results[1].as_ref().unwrap().tokens.len(), 3);
    // Each sequence holds its prompt and all but its last token.
    assert_eq!(models[0].held.len(), 3 + 6);
    assert_eq!(models[1].held.len(), 1 + 2);

    let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(6));
    let beams = generator
        .beam_search(&mut vec![Historian::default(); 3], &[5, 6], &BeamSearch::new(3).unwrap())
        .unwrap();
    assert!(beams.iter().all(|h| h.tokens.len() == 6));
}
