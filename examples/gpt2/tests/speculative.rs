//! Speculative decoding on GPT-2: `forward_all` writes the rows one-by-one
//! `forward` writes, the bundled model drafting for itself is always
//! accepted, and a different draft still yields the target's greedy tokens.

use std::path::{Path, PathBuf};

use decoding::processors::Temperature;
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    GenerateOptions, Generator, LanguageModel, Pipeline, RewindableModel, SpeculativeOptions,
    TokenId, Verification,
};
use gpt2::lookup::bundled_dir;
use gpt2::{Gpt2, Tokenizer};

fn tiny_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-gpt2")
}

fn bundled() -> Gpt2 {
    Gpt2::from_dir(&bundled_dir()).expect("the bundled model loads")
}

fn prompt() -> Vec<TokenId> {
    Tokenizer::gpt2().unwrap().encode("My favourite movie is").unwrap()
}

/// The bundled model with a fixed pseudo-random bias of up to `amplitude`
/// added to every logit: a draft that agrees with the target only part of
/// the time.
#[derive(Debug)]
struct Biased {
    inner: Gpt2,
    amplitude: f32,
}

impl Biased {
    fn perturb(&self, rows: &mut [f32]) {
        let v = self.inner.vocab_size();
        for row in rows.chunks_exact_mut(v) {
            for (i, x) in row.iter_mut().enumerate() {
                let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40;
                *x += self.amplitude * (h as f32 / (1u64 << 24) as f32);
            }
        }
    }
}

impl LanguageModel for Biased {
    type Error = gpt2::Gpt2Error;
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.inner.forward(tokens, position, logits)?;
        self.perturb(logits);
        Ok(())
    }

    fn forward_all(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.inner.forward_all(tokens, position, logits)?;
        self.perturb(logits);
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.inner.reset()
    }
}

impl RewindableModel for Biased {
    fn rewind(&mut self, len: usize) -> Result<(), Self::Error> {
        self.inner.rewind(len)
    }
}

fn bits(row: &[f32]) -> Vec<u32> {
    row.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn forward_all_rows_equal_one_by_one_forward_rows_bit_for_bit() {
    let mut model = bundled();
    let v = model.vocab_size();
    let prompt = prompt();
    // 40 tokens: more than one 32-position chunk.
    let tokens: Vec<TokenId> = (0..40u32).map(|i| (i * 7919 + 13) % v as u32).collect();

    // One by one, after the prompt.
    let mut row = vec![0.0; v];
    model.forward(&prompt, 0, &mut row).unwrap();
    let mut expected = Vec::with_capacity(tokens.len() * v);
    for &t in &tokens {
        model.forward(&[t], model.position(), &mut row).unwrap();
        expected.extend_from_slice(&row);
    }

    // All at once, after the same prompt.
    model.reset().unwrap();
    model.forward(&prompt, 0, &mut row).unwrap();
    let mut rows = vec![0.0; tokens.len() * v];
    model.forward_all(&tokens, prompt.len(), &mut rows).unwrap();
    assert_eq!(bits(&rows), bits(&expected));
    assert_eq!(model.position(), prompt.len() + tokens.len());

    // Rewound to the prompt plus 10 tokens, the rest again.
    model.rewind(prompt.len() + 10).unwrap();
    assert_eq!(model.position(), prompt.len() + 10);
    let mut rest = vec![0.0; 30 * v];
    model.forward_all(&tokens[10..], prompt.len() + 10, &mut rest).unwrap();
    assert_eq!(bits(&rest), bits(&expected[10 * v..]));
    // A rewind past the end changes nothing.
    model.rewind(10_000).unwrap();
    assert_eq!(model.position(), prompt.len() + tokens.len());

    // On two threads the head splits its table across them, 32 rows per
    // pass (40 rows: a full pass and a partial one): the same bits.
    let mut threaded = bundled().with_threads(2).unwrap();
    threaded.forward(&prompt, 0, &mut row).unwrap();
    let mut rows2 = vec![0.0; tokens.len() * v];
    threaded.forward_all(&tokens, prompt.len(), &mut rows2).unwrap();
    assert_eq!(bits(&rows2), bits(&expected));

    // Wrong buffer sizes are errors, and leave the cache alone.
    let at = model.position();
    assert!(model.forward_all(&tokens[..2], at, &mut rest[..v]).is_err());
    assert!(model.forward_all(&[], at, &mut []).is_ok());
    // So is a position that does not continue the cache.
    let err = model.forward(&tokens[..1], at - 1, &mut row).unwrap_err();
    assert!(
        matches!(err, gpt2::Gpt2Error::PositionMismatch { position, cached } if position == at - 1 && cached == at)
    );
    assert_eq!(model.position(), prompt.len() + tokens.len());
}

fn options(max_new: usize, seed: u64) -> GenerateOptions {
    GenerateOptions::builder(max_new)
        .vocab_size(Tokenizer::gpt2().unwrap().vocab_size())
        .seed(seed)
        .build()
        .unwrap()
}

#[test]
fn the_bundled_model_drafting_for_itself_is_always_accepted() {
    let prompt = prompt();
    let mut plain = Generator::new(Pipeline::new(), Greedy, options(40, 0));
    let expected = plain.generate(&mut bundled(), &prompt).unwrap();
    for k in [1, 4] {
        let mut generator = Generator::new(Pipeline::new(), Greedy, options(40, 0));
        let speculative = SpeculativeOptions::new(k, Verification::Greedy).unwrap();
        let out = generator
            .generate_speculative(&mut bundled(), &mut bundled(), &prompt, &speculative)
            .unwrap();
        assert_eq!(out.tokens, expected.tokens, "k = {k}");
        let stats = generator.speculative_stats();
        assert_eq!(stats.acceptance_rate(), Some(1.0), "k = {k}: {stats:?}");
        assert_eq!(stats.rounds, 40usize.div_ceil(k + 1));
    }
    // Sampled verification: the two rows are the same bits, so p = q.
    let mut generator =
        Generator::new(Temperature::new(1.0).unwrap(), Categorical::new(), options(40, 5));
    let speculative = SpeculativeOptions::new(4, Verification::Sampled).unwrap();
    generator.generate_speculative(&mut bundled(), &mut bundled(), &prompt, &speculative).unwrap();
    assert_eq!(generator.speculative_stats().acceptance_rate(), Some(1.0));
}

#[test]
fn a_different_draft_still_gives_the_targets_greedy_tokens() {
    let prompt = prompt();
    let mut plain = Generator::new(Pipeline::new(), Greedy, options(40, 0));
    let expected = plain.generate(&mut bundled(), &prompt).unwrap();
    let mut tiny = Gpt2::from_dir(&tiny_dir()).unwrap();
    for k in [1, 3, 6] {
        let mut generator = Generator::new(Pipeline::new(), Greedy, options(40, 0));
        let speculative = SpeculativeOptions::new(k, Verification::Greedy).unwrap();
        let out = generator
            .generate_speculative(&mut bundled(), &mut tiny, &prompt, &speculative)
            .unwrap();
        assert_eq!(out.tokens, expected.tokens, "k = {k}");
        let stats = generator.speculative_stats();
        let rate = stats.acceptance_rate().unwrap();
        eprintln!("greedy, tiny-gpt2 drafting for the bundled model, k = {k}: {stats:?}");
        assert!(rate < 1.0, "k = {k}: {stats:?}");
        assert_eq!(stats.emitted(), 40);
    }
    // A draft that agrees part of the time.
    let mut biased = Biased { inner: bundled(), amplitude: 3.0 };
    for k in [2, 4] {
        let mut generator = Generator::new(Pipeline::new(), Greedy, options(40, 0));
        let speculative = SpeculativeOptions::new(k, Verification::Greedy).unwrap();
        let out = generator
            .generate_speculative(&mut bundled(), &mut biased, &prompt, &speculative)
            .unwrap();
        assert_eq!(out.tokens, expected.tokens, "k = {k}");
        let stats = generator.speculative_stats();
        eprintln!("greedy, biased bundled model drafting, k = {k}: {stats:?}");
        let rate = stats.acceptance_rate().unwrap();
        assert!(rate > 0.0 && rate < 1.0, "k = {k}: {stats:?}");
    }
    let mut generator = Generator::new(Pipeline::new(), Categorical::new(), options(40, 3));
    let speculative = SpeculativeOptions::new(4, Verification::Sampled).unwrap();
    generator.generate_speculative(&mut bundled(), &mut biased, &prompt, &speculative).unwrap();
    eprintln!("sampled, biased bundled model drafting, k = 4: {:?}", generator.speculative_stats());

    // Sampled: the draft's proposals are mostly rejected, and the run
    // still completes with every statistic consistent.
    let mut generator = Generator::new(Pipeline::new(), Categorical::new(), options(40, 3));
    let speculative = SpeculativeOptions::new(4, Verification::Sampled).unwrap();
    let out =
        generator.generate_speculative(&mut bundled(), &mut tiny, &prompt, &speculative).unwrap();
    let stats = generator.speculative_stats();
    eprintln!("sampled, tiny-gpt2 drafting for the bundled model, k = 4: {stats:?}");
    assert_eq!(stats.emitted(), out.tokens.len());
    assert!(stats.acceptance_rate().unwrap() < 1.0);
}
