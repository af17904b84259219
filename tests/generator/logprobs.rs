//! Raw and processed log-probabilities, and top-N alternatives.

use decoding::processors::{Temperature, TopK};
use decoding::sampler::{Categorical, Greedy, Sampler};
use decoding::{
    Context, GenerateOptions, Generator, LogprobMode, Pipeline, TokenId, TokenLogprobs,
};

use crate::models::{Bigram, FixedRow};

const LN3: f32 = 1.098_612_3;

fn one(pipeline: Pipeline, mode: LogprobMode, top: usize) -> TokenLogprobs {
    let options = GenerateOptions::builder(1).logprobs(mode).top_logprobs(top).build().unwrap();
    let mut generator = Generator::new(pipeline, Greedy, options);
    let out = generator.generate(&mut FixedRow(vec![0.0, LN3]), &[0]).unwrap();
    assert_eq!(out.tokens, [1]);
    out.logprobs.unwrap().remove(0)
}

fn close(a: f32, b: f64) -> bool {
    (f64::from(a) - b).abs() < 1e-6
}

#[test]
fn raw_logprob_is_the_natural_log_softmax() {
    let lp = one(Pipeline::new(), LogprobMode::Raw, 0);
    // ln 0.75, not log10 0.75 = -0.1249387.
    assert!(close(lp.raw.unwrap(), 0.75f64.ln()), "{lp:?}");
    assert_eq!(lp.processed, None);
}

#[test]
fn temperature_changes_processed_not_raw() {
    let lp = one(Pipeline::new().with(Temperature::new(0.5).unwrap()), LogprobMode::Both, 0);
    // Logits become [0, 2 ln 3]: p(1) = 9 / 10.
    assert!(close(lp.processed.unwrap(), 0.9f64.ln()), "{lp:?}");
    assert!(close(lp.raw.unwrap(), 0.75f64.ln()), "{lp:?}");
}

#[test]
fn truncation_shows_in_processed_alternatives_only() {
    let lp = one(Pipeline::new().with(TopK::new(1).unwrap()), LogprobMode::Both, 2);
    assert_eq!(lp.processed, Some(0.0));
    // Token 0 has processed probability 0: it is not an alternative.
    assert_eq!(lp.processed_top.len(), 1);
    assert_eq!(lp.processed_top[0].token, 1);
    assert_eq!(lp.processed_top[0].logprob, 0.0);
    let raw: Vec<(TokenId, f32)> = lp.raw_top.iter().map(|t| (t.token, t.logprob)).collect();
    assert_eq!(raw.len(), 2);
    assert_eq!((raw[0].0, raw[1].0), (1, 0));
    assert!(close(raw[0].1, 0.75f64.ln()) && close(raw[1].1, 0.25f64.ln()), "{raw:?}");
}

#[test]
fn processed_only_records_no_raw() {
    let lp = one(Pipeline::new(), LogprobMode::Processed, 1);
    assert!(lp.raw.is_none() && lp.raw_top.is_empty());
    assert!(close(lp.processed.unwrap(), 0.75f64.ln()));
    assert_eq!(lp.processed_top.len(), 1);
}

/// `log_softmax` in f64, the textbook way.
fn log_softmax(row: &[f32]) -> Vec<f64> {
    let m = row.iter().copied().fold(f64::NEG_INFINITY, |a, x| a.max(f64::from(x)));
    let z: f64 = row.iter().map(|&x| (f64::from(x) - m).exp()).sum();
    row.iter().map(|&x| f64::from(x) - m - z.ln()).collect()
}

/// The `n` best `(id, value)` by a full sort: higher value first, lower id first.
fn top_by_sort(values: &[f64], n: usize) -> Vec<(TokenId, f64)> {
    let mut all: Vec<(TokenId, f64)> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(i, &v)| (i as TokenId, v))
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(n);
    all
}

#[test]
fn every_step_agrees_with_a_full_recomputation() {
    // A 40-token bigram model, sampled with temperature and top-k. At each
    // step, raw values come from the model's row and processed values from
    // the row Pipeline::process writes in full.
    let v = 40;
    let model = Bigram::pattern(v);
    let options = GenerateOptions::builder(30)
        .seed(11)
        .logprobs(LogprobMode::Both)
        .top_logprobs(5)
        .build()
        .unwrap();
    let pipeline =
        || Pipeline::new().with(Temperature::new(0.7).unwrap()).with(TopK::new(8).unwrap());
    let mut generator = Generator::new(pipeline(), Categorical::new(), options);
    let prompt = [3];
    let out = generator.generate(&mut model.clone(), &prompt).unwrap();
    let logprobs = out.logprobs.unwrap();
    assert_eq!(logprobs.len(), 30);

    let mut history: Vec<TokenId> = prompt.to_vec();
    let mut reference = pipeline();
    for (i, lp) in logprobs.iter().enumerate() {
        let row = model.row(*history.last().unwrap()).to_vec();
        let raw = log_softmax(&row);
        let mut processed_row = row.clone();
        let ctx = Context::new(&history, prompt.len()).unwrap();
        reference.process(&ctx, &mut processed_row).unwrap();
        let processed = log_softmax(&processed_row);
        let t = out.tokens[i];
        assert_eq!(lp.token, t);
        assert!(processed[t as usize].is_finite(), "step {i}: a removed token was drawn");
        assert!(close(lp.raw.unwrap(), raw[t as usize]), "step {i}");
        assert!(
            (f64::from(lp.processed.unwrap()) - processed[t as usize]).abs() < 1e-5,
            "step {i}"
        );
        for (got, want) in
            [(&lp.raw_top, top_by_sort(&raw, 5)), (&lp.processed_top, top_by_sort(&processed, 5))]
        {
            let ids: Vec<TokenId> = got.iter().map(|a| a.token).collect();
            let want_ids: Vec<TokenId> = want.iter().map(|a| a.0).collect();
            assert_eq!(ids, want_ids, "step {i}");
            for (g, w) in got.iter().zip(&want) {
                assert!((f64::from(g.logprob) - w.1).abs() < 1e-5, "step {i}");
            }
        }
        reference.accept(t);
        history.push(t);
    }
}

#[test]
fn processed_logprob_is_the_samplers() {
    // Same row, same draw: the sampler alone reports the same value.
    let row = vec![0.3, -1.0, 2.0, 0.0, 1.5];
    let options =
        GenerateOptions::builder(1).seed(5).logprobs(LogprobMode::Processed).build().unwrap();
    let out = Generator::new(Pipeline::new(), Categorical::new(), options)
        .generate(&mut FixedRow(row.clone()), &[0])
        .unwrap();
    let mut live = Vec::new();
    let mut copy = row.clone();
    let scores = decoding::Scores::new(&mut copy, &mut live);
    let s = Categorical::new().sample(&scores, &mut decoding::rng_from_seed(5)).unwrap();
    assert_eq!(out.tokens, [s.token]);
    assert_eq!(out.logprobs.unwrap()[0].processed, Some(s.logprob));
}
