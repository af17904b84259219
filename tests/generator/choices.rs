//! Several samples of one prompt: each is the plain run of its seed, the
//! prompt is fed once, and best_of keeps the most likely.

use decoding::processors::{RepetitionPenalty, Temperature};
use decoding::sampler::Categorical;
use decoding::{
    Choices, Error, GenerateOptions, Generator, LanguageModel, LogprobMode, RewindableModel,
    TokenId,
};

use crate::speculative::{Contextual, Kind};

/// Counts the tokens fed to the model it wraps.
#[derive(Debug)]
struct Counting {
    inner: Contextual,
    fed: usize,
}

impl LanguageModel for Counting {
    type Error = <Contextual as LanguageModel>::Error;
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.fed += tokens.len();
        self.inner.forward(tokens, position, logits)
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.inner.reset()
    }
}

impl RewindableModel for Counting {
    fn rewind(&mut self, len: usize) -> Result<(), Self::Error> {
        self.inner.rewind(len)
    }
}

fn model() -> Counting {
    Counting { inner: Contextual::new(16, 5, Kind::Plain), fed: 0 }
}

fn processor() -> (RepetitionPenalty, Temperature) {
    (RepetitionPenalty::new(1.3).unwrap(), Temperature::new(1.2).unwrap())
}

const PROMPT: [TokenId; 6] = [3, 1, 4, 1, 5, 9];

/// The plain run of seed `seed`, with processed log-probabilities.
fn plain(seed: u64, logprobs: Option<LogprobMode>) -> decoding::Generation {
    let mut b = GenerateOptions::builder(12).seed(seed);
    if let Some(mode) = logprobs {
        b = b.logprobs(mode);
    }
    Generator::new(processor(), Categorical::new(), b.build().unwrap())
        .generate(&mut model(), &PROMPT)
        .unwrap()
}

#[test]
fn each_choice_is_the_plain_run_of_its_seed_and_the_prompt_is_fed_once() {
    for asked in
        [None, Some(LogprobMode::Raw), Some(LogprobMode::Processed), Some(LogprobMode::Both)]
    {
        let mut b = GenerateOptions::builder(12).seed(40);
        if let Some(mode) = asked {
            b = b.logprobs(mode);
        }
        let options = b.build().unwrap();
        let mut generator = Generator::new(processor(), Categorical::new(), options.clone());
        let mut m = model();
        let choices =
            generator.generate_choices(&mut m, &PROMPT, &Choices::new(4).unwrap()).unwrap();
        assert_eq!(choices.len(), 4);
        for (i, choice) in choices.iter().enumerate() {
            assert_eq!(choice.index, i);
            assert_eq!(choice.generation, plain(40 + i as u64, asked), "{asked:?}, choice {i}");
            let with = plain(40 + i as u64, Some(LogprobMode::Processed));
            let sum: f64 =
                with.logprobs.unwrap().iter().map(|r| f64::from(r.processed.unwrap())).sum();
            assert!((choice.cumulative_logprob - sum).abs() < 1e-9);
        }
        assert!(choices.iter().any(|c| c.generation.tokens != choices[0].generation.tokens));
        // The options are the caller's again.
        assert_eq!(generator.options(), &options);
        // The prompt's six tokens once, then one token per later draw to
        // get the first row back, then the generated tokens (all but the
        // last of each draw are fed back).
        let generated: usize = choices.iter().map(|c| c.generation.tokens.len() - 1).sum();
        assert_eq!(m.fed, PROMPT.len() + 3 + generated, "{asked:?}");
    }
}

#[test]
fn best_of_keeps_the_most_likely_draws() {
    let options = GenerateOptions::builder(12).seed(7).build().unwrap();
    let mut generator = Generator::new(processor(), Categorical::new(), options);
    let choices = generator
        .generate_choices(&mut model(), &PROMPT, &Choices::new(2).unwrap().with_best_of(6).unwrap())
        .unwrap();
    let mut all: Vec<(f64, usize)> = (0..6)
        .map(|i| {
            let g = plain(7 + i as u64, Some(LogprobMode::Processed));
            (g.logprobs.unwrap().iter().map(|r| f64::from(r.processed.unwrap())).sum(), i)
        })
        .collect();
    all.sort_by(|a, b| b.0.total_cmp(&a.0));
    let got: Vec<usize> = choices.iter().map(|c| c.index).collect();
    assert_eq!(got, [all[0].1, all[1].1]);
    assert!(choices[0].cumulative_logprob >= choices[1].cumulative_logprob);
    assert_eq!(choices[0].generation, plain(7 + all[0].1 as u64, None));
}

#[test]
fn counts_are_checked() {
    assert!(matches!(Choices::new(0), Err(Error::InvalidParameter { name: "n", .. })));
    assert!(matches!(
        Choices::new(3).unwrap().with_best_of(2),
        Err(Error::InvalidParameter { name: "best_of", .. })
    ));
    let mut generator = Generator::new((), Categorical::new(), GenerateOptions::new(3));
    let r = generator.generate_choices(&mut model(), &[], &Choices::new(2).unwrap());
    assert!(matches!(r, Err(decoding::GenerateError::EmptyPrompt)));
}
