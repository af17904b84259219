//! Typed errors from the model, the pipeline and the sampler; nothing panics.

use std::error::Error as _;

use decoding::sampler::{Categorical, Greedy};
use decoding::{
    Context, Error, GenerateError, GenerateOptions, Generator, LogitsProcessor, Pipeline, Scores,
};

use crate::models::{Bigram, FailOn, ModelError, NanFrom, Shrinking};

#[test]
fn a_nan_model_is_a_decoding_error_at_step_0() {
    let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(5));
    let err = generator.generate(&mut NanFrom::new(6, 0), &[1]).unwrap_err();
    match err {
        GenerateError::Decoding { step: 0, source: Error::InvalidLogit { index: 0, value } } => {
            assert!(value.is_nan())
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(generator.generated().is_empty());
}

#[test]
fn nan_at_step_3_keeps_the_three_tokens_before_it() {
    let mut generator =
        Generator::new(Pipeline::new(), Categorical::new(), GenerateOptions::new(10));
    let err = generator.generate(&mut NanFrom::new(6, 3), &[1]).unwrap_err();
    assert_eq!(err.step(), Some(3));
    assert!(matches!(err.decoding_error(), Some(Error::InvalidLogit { .. })));
    assert_eq!(generator.generated().len(), 3);
    assert_eq!(generator.finish_reason(), None);
}

#[test]
fn the_models_own_error_comes_back_unchanged() {
    let mut generator =
        Generator::new(Pipeline::new(), Categorical::new(), GenerateOptions::new(10));
    let err = generator.generate(&mut FailOn::new(8, 3), &[1]).unwrap_err();
    assert_eq!(err.step(), Some(2));
    assert_eq!(err.to_string(), "the model failed at step 2");
    assert_eq!(err.source().map(|s| s.to_string()).as_deref(), Some("model call 3 failed"));
    assert_eq!(generator.generated().len(), 2);
    assert_eq!(err.into_model_error(), Some(ModelError { call: 3 }));
}

#[test]
fn a_stream_yields_the_tokens_then_the_error_then_nothing() {
    let mut generator =
        Generator::new(Pipeline::new(), Categorical::new(), GenerateOptions::new(10));
    let mut model = FailOn::new(8, 3);
    let items: Vec<_> = generator.stream(&mut model, &[1]).unwrap().collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[1].is_ok());
    assert!(matches!(items[2], Err(GenerateError::Model { step: 2, .. })));
    // The generator works again afterwards, from a fresh state.
    let out = generator.generate(&mut Bigram::pattern(8), &[1]).unwrap();
    assert_eq!(out.tokens.len(), 10);
}

#[test]
fn a_vocabulary_that_changes_is_an_error_with_the_step() {
    let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(10));
    let err = generator.generate(&mut Shrinking::new(6, 3), &[1]).unwrap_err();
    assert!(
        matches!(err, GenerateError::LogitsLength { step: 3, expected: 6, actual: 5 }),
        "{err:?}"
    );
    assert_eq!(generator.generated().len(), 3);
}

/// Bans every token.
#[derive(Debug)]
struct BanAll;

impl LogitsProcessor for BanAll {
    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        scores.values_mut().fill(f32::NEG_INFINITY);
        Ok(())
    }
}

/// Fails at its third step.
#[derive(Debug, Default)]
struct FailThird(usize);

impl LogitsProcessor for FailThird {
    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        self.0 += 1;
        if self.0 == 3 {
            return Err(Error::TokenOutOfRange { id: 99, vocab_size: scores.vocab_size() });
        }
        Ok(())
    }
    fn reset(&mut self) {
        self.0 = 0;
    }
}

#[test]
fn pipeline_and_sampler_errors_come_back_typed() {
    let mut generator =
        Generator::new(Pipeline::new().with(BanAll), Categorical::new(), GenerateOptions::new(3));
    let err = generator.generate(&mut Bigram::pattern(5), &[0]).unwrap_err();
    assert!(matches!(err, GenerateError::Decoding { step: 0, source: Error::AllMasked }));
    assert_eq!(
        err.source().map(|s| s.to_string()).as_deref(),
        Some(Error::AllMasked.to_string().as_str())
    );

    let mut generator =
        Generator::new(Pipeline::new().with(FailThird::default()), Greedy, GenerateOptions::new(5));
    for _ in 0..2 {
        // The processor is reset for every run, so it fails at step 2 each time.
        let err = generator.generate(&mut Bigram::pattern(5), &[0]).unwrap_err();
        assert!(matches!(
            err,
            GenerateError::Decoding { step: 2, source: Error::TokenOutOfRange { id: 99, .. } }
        ));
    }
}

#[test]
fn a_model_with_an_empty_vocabulary_is_an_error_not_a_panic() {
    let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(2));
    let err = generator.generate(&mut crate::models::FixedRow(vec![]), &[0]).unwrap_err();
    assert!(matches!(err, GenerateError::Decoding { step: 0, source: Error::EmptyRow }));
}
