//! Classifier-free guidance: what each model is fed, the combined row
//! against a naive f64 reference, the special scales, and errors.

use decoding::sampler::Greedy;
use decoding::{
    ClassifierFreeGuidance, Error, GenerateError, GenerateOptions, Generator, GuidanceError,
    LanguageModel, TokenId,
};
use proptest::prelude::*;

#[path = "common/toy_models.rs"]
mod toy_models;

use toy_models::FixedRow;

const NEG: f32 = f32::NEG_INFINITY;

/// Records every call; its row is a fixed function of the last token fed,
/// scaled by `gain` (so two instances with different gains disagree).
#[derive(Debug, Clone)]
struct Recorder {
    vocab: usize,
    gain: f32,
    calls: Vec<(Vec<TokenId>, usize)>,
    fail: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("model failed")]
struct Failed;

impl Recorder {
    fn new(vocab: usize, gain: f32) -> Self {
        Recorder { vocab, gain, calls: Vec::new(), fail: false }
    }
}

impl LanguageModel for Recorder {
    type Error = Failed;
    fn vocab_size(&self) -> usize {
        self.vocab
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Failed> {
        if self.fail {
            return Err(Failed);
        }
        self.calls.push((tokens.to_vec(), position));
        let last = *tokens.last().unwrap() as usize;
        for (i, x) in logits.iter_mut().enumerate() {
            *x = self.gain * (((i * 7 + last * 3) % 11) as f32 - 5.0);
        }
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Failed> {
        self.calls.clear();
        Ok(())
    }
}

/// `log_softmax` in f64.
fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(f64::from(x)));
    let lse = max + row.iter().map(|&x| (f64::from(x) - max).exp()).sum::<f64>().ln();
    row.iter().map(|&x| f64::from(x) - lse).collect()
}

fn run(
    scale: f32,
    negative: Option<Vec<TokenId>>,
    prompt: &[TokenId],
    n: usize,
) -> (Vec<TokenId>, Recorder, Recorder) {
    let guided =
        ClassifierFreeGuidance::new(Recorder::new(9, 1.0), Recorder::new(9, 0.4), scale, negative)
            .unwrap();
    let mut guided = guided;
    let out =
        Generator::new((), Greedy, GenerateOptions::new(n)).generate(&mut guided, prompt).unwrap();
    let (c, u) = guided.into_inner();
    (out.tokens, c, u)
}

#[test]
fn each_model_is_fed_its_own_context_then_the_generated_tokens() {
    let prompt = [4, 2, 7];
    // No negative prompt: the unconditional context is the prompt's last token.
    let (tokens, c, u) = run(2.0, None, &prompt, 3);
    assert_eq!(c.calls, [(prompt.to_vec(), 0), (vec![tokens[0]], 3), (vec![tokens[1]], 4)]);
    assert_eq!(u.calls, [(vec![7], 0), (vec![tokens[0]], 1), (vec![tokens[1]], 2)]);
    // A negative prompt replaces it.
    let (tokens, _, u) = run(2.0, Some(vec![1, 1, 5, 0]), &prompt, 3);
    assert_eq!(u.calls, [(vec![1, 1, 5, 0], 0), (vec![tokens[0]], 4), (vec![tokens[1]], 5)]);
    // Scale 1: the conditional model alone.
    let (tokens, _, u) = run(1.0, None, &prompt, 3);
    assert!(u.calls.is_empty());
    let plain = Generator::new((), Greedy, GenerateOptions::new(3))
        .generate(&mut Recorder::new(9, 1.0), &prompt)
        .unwrap();
    assert_eq!(tokens, plain.tokens);
}

#[test]
fn a_new_run_starts_both_contexts_afresh() {
    let mut guided =
        ClassifierFreeGuidance::new(Recorder::new(9, 1.0), Recorder::new(9, 0.4), 3.0, None)
            .unwrap();
    let mut generator = Generator::new((), Greedy, GenerateOptions::new(4));
    let first = generator.generate(&mut guided, &[3, 8]).unwrap();
    let second = generator.generate(&mut guided, &[3, 8]).unwrap();
    assert_eq!(first.tokens, second.tokens);
    let (_, u) = guided.into_inner();
    assert_eq!(u.calls[0], (vec![8], 0));
}

fn guided_row(scale: f32, cond: &[f32], uncond: &[f32]) -> Vec<f32> {
    let mut guided = ClassifierFreeGuidance::new(
        FixedRow(cond.to_vec()),
        FixedRow(uncond.to_vec()),
        scale,
        None,
    )
    .unwrap();
    let mut row = vec![0.0; cond.len()];
    guided.forward(&[0], 0, &mut row).unwrap();
    row
}

#[test]
fn hand_cases() {
    let cond = [1.0f32, 2.0, 3.0];
    let uncond = [3.0f32, 2.0, 1.0];
    let (c, u) = (log_softmax(&cond), log_softmax(&uncond));
    // Scale 0: the unconditional log-probabilities; scale 1: the conditional.
    let row = guided_row(0.0, &cond, &uncond);
    assert!(row.iter().zip(&u).all(|(a, b)| (f64::from(*a) - b).abs() < 1e-6));
    let row = guided_row(1.0, &cond, &uncond);
    assert!(row.iter().zip(&c).all(|(a, b)| (f64::from(*a) - b).abs() < 1e-6));
    // Scale 2: 2c - u, pushing away from the unconditional preference.
    let row = guided_row(2.0, &cond, &uncond);
    for i in 0..3 {
        assert!((f64::from(row[i]) - (2.0 * c[i] - u[i])).abs() < 1e-6);
    }
    assert!(row[2] > row[1] && row[1] > row[0]);
    // -inf in either row stays -inf.
    let row = guided_row(2.0, &[NEG, 0.0, 1.0], &[0.0, NEG, 1.0]);
    assert_eq!(&row[..2], &[NEG, NEG]);
    assert!(row[2].is_finite());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn the_row_matches_a_naive_f64_reference(
        cond in prop::collection::vec(-30.0f32..30.0, 1..40),
        shift in -1e4f32..1e4,
        noise in prop::collection::vec(-5.0f32..5.0, 40),
        scale in -3.0f32..8.0,
    ) {
        // A huge common offset in one row changes nothing.
        let uncond: Vec<f32> = cond.iter().zip(&noise).map(|(c, n)| c + n + shift).collect();
        let row = guided_row(scale, &cond, &uncond);
        let (c, u) = (log_softmax(&cond), log_softmax(&uncond));
        for i in 0..cond.len() {
            let want = f64::from(scale) * (c[i] - u[i]) + u[i];
            // A few f32 roundings of the terms, amplified by the scale.
            let magnitude = (f64::from(scale.abs()) + 1.0) * (c[i].abs() + u[i].abs()) + want.abs() + 1.0;
            let tolerance = 8.0 * f64::from(f32::EPSILON) * magnitude;
            prop_assert!((f64::from(row[i]) - want).abs() < tolerance, "{} vs {want}", row[i]);
        }
    }
}

#[test]
fn bad_parameters_and_failures_are_errors() {
    for scale in [f32::NAN, f32::INFINITY, NEG] {
        assert!(matches!(
            ClassifierFreeGuidance::new(Recorder::new(9, 1.0), Recorder::new(9, 1.0), scale, None),
            Err(Error::InvalidParameter { name: "guidance_scale", .. })
        ));
    }
    assert!(matches!(
        ClassifierFreeGuidance::new(
            Recorder::new(9, 1.0),
            Recorder::new(9, 1.0),
            2.0,
            Some(vec![])
        ),
        Err(Error::InvalidParameter { name: "negative_prompt", .. })
    ));
    assert!(matches!(
        ClassifierFreeGuidance::new(Recorder::new(9, 1.0), Recorder::new(8, 1.0), 2.0, None),
        Err(Error::VocabSizeMismatch { expected: 9, actual: 8 })
    ));
    let mut failing = Recorder::new(9, 1.0);
    failing.fail = true;
    let mut guided =
        ClassifierFreeGuidance::new(Recorder::new(9, 1.0), failing, 2.0, None).unwrap();
    let r = Generator::new((), Greedy, GenerateOptions::new(2)).generate(&mut guided, &[1]);
    match r {
        Err(GenerateError::Model { step: 0, source: GuidanceError::Unconditional(Failed) }) => {}
        other => panic!("{other:?}"),
    }
}
