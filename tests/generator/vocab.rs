//! Padded model vocabularies.

use decoding::processors::Temperature;
use decoding::sampler::{Categorical, Greedy};
use decoding::{GenerateError, GenerateOptions, Generator, LogprobMode, Pipeline};

use crate::models::Padded;

const MODEL: usize = 50304;
const TOKENIZER: usize = 50277;

fn padded() -> Padded {
    Padded { vocab: MODEL, tokens: TOKENIZER, hot: 50300 }
}

#[test]
fn padded_ids_are_never_generated() {
    let options = GenerateOptions::builder(20).vocab_size(TOKENIZER).seed(4).build().unwrap();
    let greedy = Generator::new(Pipeline::new(), Greedy, options.clone())
        .generate(&mut padded(), &[1])
        .unwrap();
    let sampled = Generator::new(
        Pipeline::new().with(Temperature::new(5.0).unwrap()),
        Categorical::new(),
        options,
    )
    .generate(&mut padded(), &[1])
    .unwrap();
    for t in greedy.tokens.iter().chain(&sampled.tokens) {
        assert!((*t as usize) < TOKENIZER, "generated padded id {t}");
    }
    // Greedy picks the first real token of the highest score, (i * 31) % 97 = 96.
    let first_max = (0..TOKENIZER).find(|i| (i * 31) % 97 == 96).unwrap();
    assert!(greedy.tokens.iter().all(|&t| t as usize == first_max));
}

#[test]
fn without_the_tokenizer_size_the_padding_is_not_masked() {
    // Shows what the option prevents: the padding's NaN is an error.
    let err = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(1))
        .generate(&mut padded(), &[1])
        .unwrap_err();
    assert!(matches!(err, GenerateError::Decoding { step: 0, .. }));
}

#[test]
fn raw_logprobs_count_only_real_tokens() {
    let options = GenerateOptions::builder(1)
        .vocab_size(TOKENIZER)
        .logprobs(LogprobMode::Raw)
        .build()
        .unwrap();
    let out =
        Generator::new(Pipeline::new(), Greedy, options).generate(&mut padded(), &[1]).unwrap();
    let row: Vec<f64> = (0..TOKENIZER).map(|i| ((i * 31) % 97) as f64 / 50.0).collect();
    let m = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let z: f64 = row.iter().map(|x| (x - m).exp()).sum();
    let want = row[out.tokens[0] as usize] - m - z.ln();
    let got = f64::from(out.logprobs.unwrap()[0].raw.unwrap());
    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
}

#[test]
fn a_model_smaller_than_the_tokenizer_is_an_error() {
    let options = GenerateOptions::builder(3).vocab_size(MODEL + 1).build().unwrap();
    let err =
        Generator::new(Pipeline::new(), Greedy, options).generate(&mut padded(), &[1]).unwrap_err();
    assert!(matches!(err, GenerateError::VocabMismatch { model: MODEL, tokenizer: 50305 }));
}

#[test]
fn equal_sizes_are_fine() {
    let options = GenerateOptions::builder(2).vocab_size(MODEL).build().unwrap();
    let mut model = Padded { vocab: MODEL, tokens: MODEL, hot: 7 };
    let out = Generator::new(Pipeline::new(), Greedy, options).generate(&mut model, &[1]).unwrap();
    assert_eq!(out.tokens, [7, 7]);
}
