//! Opt-in rows of scores per step (transformers' `output_scores` and
//! `output_logits`): the processed row the sampler drew from and the
//! model's raw row, without changing the tokens.

use decoding::processors::{Temperature, TopK, TopP};
use decoding::sampler::Categorical;
use decoding::{Context, GenerateOptions, Generator, LanguageModel, Pipeline, TokenId};

use crate::models::Bigram;

fn pipeline() -> Pipeline {
    Pipeline::new()
        .with(Temperature::new(0.7).unwrap())
        .with(TopK::new(4).unwrap())
        .with(TopP::new(0.9).unwrap())
}

#[test]
fn the_rows_are_the_models_and_the_pipelines_and_the_tokens_do_not_change() {
    let v = 12;
    let n = 10; // a padded head: ids 10 and 11 are not tokens
    let prompt = [3, 1];
    let base = GenerateOptions::builder(8).vocab_size(n).seed(5);
    let options = base.clone().output_scores(true).output_logits(true).build().unwrap();
    let out = Generator::new(pipeline(), Categorical::new(), options)
        .generate(&mut Bigram::pattern(v), &prompt)
        .unwrap();
    let plain = Generator::new(pipeline(), Categorical::new(), base.build().unwrap())
        .generate(&mut Bigram::pattern(v), &prompt)
        .unwrap();
    assert_eq!(out.tokens, plain.tokens);
    assert_eq!((plain.scores, plain.logits), (None, None));

    let (scores, logits) = (out.scores.unwrap(), out.logits.unwrap());
    assert_eq!((scores.len(), logits.len()), (out.tokens.len(), out.tokens.len()));
    let model = Bigram::pattern(v);
    let mut history = prompt.to_vec();
    let mut reference = pipeline();
    for (step, &token) in out.tokens.iter().enumerate() {
        let raw = &model.row(*history.last().unwrap())[..n];
        assert_eq!(logits[step], raw, "step {step}");
        let mut processed = raw.to_vec();
        let ctx = Context::new(&history, prompt.len()).unwrap();
        reference.process(&ctx, &mut processed).unwrap();
        assert_eq!(scores[step], processed, "step {step}");
        // The token was drawn from that row: it survived the processors.
        assert!(processed[token as usize] > f32::NEG_INFINITY);
        assert!(processed.iter().filter(|x| x.is_finite()).count() <= 4);
        history.push(token);
    }
}

#[test]
fn a_stream_carries_each_steps_rows() {
    let options = GenerateOptions::builder(6)
        .seed(2)
        .output_scores(true)
        .output_logits(true)
        .build()
        .unwrap();
    let mut generator = Generator::new(pipeline(), Categorical::new(), options);
    let whole = generator.generate(&mut Bigram::pattern(9), &[0]).unwrap();
    let mut model = Bigram::pattern(9);
    let steps: Vec<_> = generator.stream(&mut model, &[0]).unwrap().map(Result::unwrap).collect();
    let scores: Vec<Vec<f32>> = steps.iter().map(|s| s.scores.clone().unwrap()).collect();
    let logits: Vec<Vec<f32>> = steps.iter().map(|s| s.logits.clone().unwrap()).collect();
    assert_eq!(Some(scores), whole.scores);
    assert_eq!(Some(logits), whole.logits);
    assert_eq!(steps.iter().map(|s| s.token).collect::<Vec<TokenId>>(), whole.tokens);
    assert_eq!(whole.scores.unwrap()[0].len(), Bigram::pattern(9).vocab_size());
}
