//! The crate's generator on a candle-transformers Llama (random weights,
//! V = 32000, CPU): greedy tokens equal candle's own greedy loop, seeded
//! sampling is reproducible, and batches and beam search need no more glue.

use candle_core::{Device, Tensor};
use candle_llama::{CandleLlama, random_llama};
use candle_transformers::generation::{LogitsProcessor as CandleSampler, Sampling};
use candle_transformers::models::llama::Cache;
use decoding::processors::{Temperature, TopP};
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    BatchSequence, BeamSearch, GenerateOptions, Generator, Pipeline, TokenId, generate_batch,
};

const PROMPT: [TokenId; 6] = [1, 15043, 3186, 29892, 590, 1024];

fn llama() -> CandleLlama {
    random_llama(7).expect("the random Llama builds")
}

/// Candle's own loop: the whole prompt, then one token a call, each chosen
/// by candle's `LogitsProcessor` (arg-max).
fn candle_greedy(model: &CandleLlama, prompt: &[TokenId], n: usize) -> Vec<TokenId> {
    let device = Device::Cpu;
    let mut cache = Cache::new(true, candle_core::DType::F32, model.config(), &device).unwrap();
    let mut sampler = CandleSampler::from_sampling(0, Sampling::ArgMax);
    let mut tokens = Vec::new();
    let mut input = prompt.to_vec();
    let mut position = 0;
    for _ in 0..n {
        let x = Tensor::new(input.as_slice(), &device).unwrap().unsqueeze(0).unwrap();
        let logits = model.model().forward(&x, position, &mut cache).unwrap().squeeze(0).unwrap();
        let next = sampler.sample(&logits).unwrap();
        position += input.len();
        tokens.push(next);
        input = vec![next];
    }
    tokens
}

#[test]
fn greedy_tokens_equal_candles_own_greedy_loop_for_64_tokens() {
    let mut model = llama();
    let ours = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(64))
        .generate(&mut model, &PROMPT)
        .unwrap();
    let theirs = candle_greedy(&model, &PROMPT, 64);
    assert_eq!(ours.tokens, theirs);
    // Not a degenerate model: the tokens vary.
    let mut distinct = theirs.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 8, "{theirs:?}");
}

fn sampling(seed: u64) -> Generator {
    let pipeline =
        Pipeline::new().with(Temperature::new(0.8).unwrap()).with(TopP::new(0.95).unwrap());
    let options = GenerateOptions::builder(24).seed(seed).build().unwrap();
    Generator::new(pipeline, Categorical::new(), options)
}

#[test]
fn seeded_sampling_is_reproducible() {
    let mut model = llama();
    let a = sampling(42).generate(&mut model, &PROMPT).unwrap();
    let b = sampling(42).generate(&mut llama(), &PROMPT).unwrap();
    let c = sampling(43).generate(&mut model, &PROMPT).unwrap();
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(a.seed, 42);
    assert_ne!(a.tokens, c.tokens);
}

#[test]
fn a_batch_gives_each_sequence_its_own_run() {
    let prompts: [&[TokenId]; 3] = [&PROMPT, &[1, 450, 4996], &[1, 13, 13, 29871]];
    let mut generators: Vec<Generator> = (0..3).map(|i| sampling(100 + i)).collect();
    let mut models = vec![llama(); 3];
    let mut sequences: Vec<BatchSequence<'_>> =
        generators.iter_mut().zip(prompts).map(|(g, p)| BatchSequence::new(g, p)).collect();
    let results = generate_batch(&mut models, &mut sequences).unwrap();
    for (i, result) in results.into_iter().enumerate() {
        let alone = sampling(100 + i as u64).generate(&mut llama(), prompts[i]).unwrap();
        assert_eq!(result.unwrap().tokens, alone.tokens, "sequence {i}");
    }
}

#[test]
fn beam_search_runs_on_clones_of_the_model() {
    let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(12));
    // One beam is greedy search.
    let one =
        generator.beam_search(&mut vec![llama()], &PROMPT, &BeamSearch::new(1).unwrap()).unwrap();
    let greedy = generator.generate(&mut llama(), &PROMPT).unwrap();
    assert_eq!(one[0].tokens, greedy.tokens);
    // Three beams: three different hypotheses of 12 tokens, best first.
    let three = generator
        .beam_search(&mut vec![llama(); 3], &PROMPT, &BeamSearch::new(3).unwrap())
        .unwrap();
    assert_eq!(three.len(), 3);
    assert!(three.windows(2).all(|w| w[0].score >= w[1].score));
    assert!(three.iter().all(|h| h.tokens.len() == 12));
    assert!(three[0].tokens != three[1].tokens && three[1].tokens != three[2].tokens);
}
