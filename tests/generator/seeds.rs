//! Seeds: an unseeded run draws a fresh seed and reports it; a reported or
//! given seed replays the run exactly.

use decoding::processors::Temperature;
use decoding::sampler::Categorical;
use decoding::{GenerateOptions, Generator, Pipeline};

use crate::models::FixedRow;

/// A flat row over 1000 tokens: 32 draws from two different seeds agree
/// with probability 1000^-32.
fn generator(options: GenerateOptions) -> Generator<Pipeline, Categorical> {
    Generator::new(
        Pipeline::new().with(Temperature::new(1.0).unwrap()),
        Categorical::new(),
        options,
    )
}

#[test]
fn unseeded_runs_differ_and_report_the_seed_that_replays_them() {
    let mut model = FixedRow(vec![0.0; 1000]);
    let mut unseeded = generator(GenerateOptions::new(32));
    assert_eq!(unseeded.options().seed(), None);
    let first = unseeded.generate(&mut model, &[1]).unwrap();
    let second = unseeded.generate(&mut model, &[1]).unwrap();
    assert_ne!(first.seed, second.seed);
    assert_ne!(first.tokens, second.tokens);
    // The reported seed replays each run token for token.
    for run in [&first, &second] {
        let options = GenerateOptions::builder(32).seed(run.seed).build().unwrap();
        let replay = generator(options).generate(&mut model, &[1]).unwrap();
        assert_eq!(replay.tokens, run.tokens);
        assert_eq!(replay.seed, run.seed);
    }
}

#[test]
fn a_given_seed_is_reported_as_given_and_fixes_the_tokens() {
    let mut model = FixedRow(vec![0.0; 1000]);
    let options = GenerateOptions::builder(16).seed(u64::MAX).build().unwrap();
    let mut g = generator(options);
    let a = g.generate(&mut model, &[1]).unwrap();
    let b = g.generate(&mut model, &[1]).unwrap();
    assert_eq!((a.seed, b.seed), (u64::MAX, u64::MAX));
    assert_eq!(a.tokens, b.tokens);
    assert_eq!(g.seed(), u64::MAX);
    let mut stream = g.stream(&mut model, &[1]).unwrap();
    assert_eq!(stream.seed(), u64::MAX);
    let streamed: Vec<_> = stream.by_ref().map(|s| s.unwrap().token).collect();
    assert_eq!(streamed, a.tokens);
}
