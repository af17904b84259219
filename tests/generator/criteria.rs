//! A stopping criterion of the caller's own (transformers'
//! `StoppingCriteria`) and a wall-clock limit (`max_time`), measured with a
//! clock the test controls, so no timing can make them flaky.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use decoding::sampler::Greedy;
use decoding::{
    BeamSearch, Context, FinishReason, GenerateError, GenerateOptions, Generator, LanguageModel,
    Pipeline, StoppingCriterion, TokenId,
};

use crate::models::{Bigram, Script, vocab};

/// Counts its resets and calls; stops when the generated text ends with
/// `suffix`.
struct EndsWith {
    suffix: &'static str,
    calls: Arc<AtomicU64>,
    resets: Arc<AtomicU64>,
}

impl StoppingCriterion for EndsWith {
    fn should_stop(&mut self, tokens: &Context<'_>, text: Option<&str>) -> bool {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert!(!tokens.generated().is_empty());
        text.is_some_and(|t| t.ends_with(self.suffix))
    }
    fn reset(&mut self) {
        self.resets.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn a_criterion_sees_every_token_and_the_text_and_ends_the_run_with_its_reason() {
    let pieces = vocab(&["a", "b", "c", "<eos>"]);
    let (calls, resets) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let options = GenerateOptions::builder(10).eos_token(3).build().unwrap();
    let mut generator = Generator::new(Pipeline::new(), Greedy, options);
    generator.set_stopping_criterion(EndsWith {
        suffix: "bc",
        calls: Arc::clone(&calls),
        resets: Arc::clone(&resets),
    });
    let script = [0, 1, 0, 1, 2, 0, 0];
    let out = generator.generate_text(&mut Script::new(4, &script), &pieces, &[0]).unwrap();
    assert_eq!(out.tokens, [0, 1, 0, 1, 2]);
    assert_eq!(out.text.as_deref(), Some("ababc"));
    assert_eq!(out.finish_reason, FinishReason::Criterion);
    assert_eq!(calls.load(Ordering::SeqCst), 5);
    // A second run (streamed) resets it and stops at the same token.
    let mut model = Script::new(4, &script);
    let steps: Vec<_> =
        generator.stream_text(&mut model, &pieces, &[0]).unwrap().map(Result::unwrap).collect();
    assert_eq!(steps.len(), 5);
    assert_eq!(steps[4].finish_reason, Some(FinishReason::Criterion));
    assert_eq!(resets.load(Ordering::SeqCst), 2);

    // An EOS id comes first among the stop conditions: "c" then EOS.
    let out = generator.generate_text(&mut Script::new(4, &[1, 2, 3]), &pieces, &[0]).unwrap();
    assert_eq!(out.finish_reason, FinishReason::Criterion);
    generator.set_stopping_criterion(|ctx: &Context<'_>, text: Option<&str>| {
        assert_eq!(text, None);
        ctx.generated().last() == Some(&3) || ctx.generated().len() == 2
    });
    let out = generator.generate(&mut Script::new(4, &[3]), &[0]).unwrap();
    assert_eq!(out.finish_reason, FinishReason::Eos { token: 3 });
    let out = generator.generate(&mut Script::new(4, &[0, 1, 2]), &[0]).unwrap();
    assert_eq!((out.tokens.len(), out.finish_reason), (2, FinishReason::Criterion));
    generator.clear_stopping_criterion();
    let out = generator.generate(&mut Script::new(4, &[0, 1, 2]), &[0]).unwrap();
    assert_eq!(out.finish_reason, FinishReason::Length);
}

/// A model whose every call takes `cost` of a clock the test owns.
struct Slow {
    inner: Bigram,
    now: Arc<AtomicU64>,
    cost_ms: u64,
}

impl LanguageModel for Slow {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        self.inner.vocab_size()
    }
    fn forward(&mut self, t: &[TokenId], p: usize, row: &mut [f32]) -> Result<(), Self::Error> {
        self.now.fetch_add(self.cost_ms, Ordering::SeqCst);
        self.inner.forward(t, p, row)
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.inner.reset()
    }
}

fn timed(limit: Duration, cost_ms: u64) -> (FinishReason, usize) {
    let now = Arc::new(AtomicU64::new(0));
    let origin = Instant::now();
    let options = GenerateOptions::builder(50).max_time(limit).build().unwrap();
    let mut generator = Generator::new(Pipeline::new(), Greedy, options);
    let clock = Arc::clone(&now);
    generator
        .set_clock(Arc::new(move || origin + Duration::from_millis(clock.load(Ordering::SeqCst))));
    // The run starts at 1000 ms of the clock, not at 0.
    now.store(1000, Ordering::SeqCst);
    let mut model = Slow { inner: Bigram::pattern(6), now, cost_ms };
    let out = generator.generate(&mut model, &[0]).unwrap();
    (out.finish_reason, out.tokens.len())
}

#[test]
fn max_time_ends_the_run_after_the_step_that_reaches_it() {
    // 10 ms a step: 40 ms, 50 ms and 35 ms limits.
    assert_eq!(timed(Duration::from_millis(40), 10), (FinishReason::Time, 4));
    assert_eq!(timed(Duration::from_millis(35), 10), (FinishReason::Time, 4));
    assert_eq!(timed(Duration::from_millis(50), 10), (FinishReason::Time, 5));
    // Zero: one token. A model that takes no time, or a limit too far to
    // represent, never reaches it.
    assert_eq!(timed(Duration::ZERO, 10), (FinishReason::Time, 1));
    assert_eq!(timed(Duration::from_millis(1), 0), (FinishReason::Length, 50));
    assert_eq!(timed(Duration::MAX, 10), (FinishReason::Length, 50));
}

#[test]
fn beam_search_refuses_a_criterion_and_a_time_limit() {
    let search = BeamSearch::new(2).unwrap();
    let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(3));
    generator.set_stopping_criterion(|_: &Context<'_>, _: Option<&str>| false);
    let err = generator.beam_search(&mut vec![Bigram::pattern(5); 2], &[0], &search).unwrap_err();
    assert!(matches!(err, GenerateError::Unsupported { what } if what.contains("criterion")));
    generator.clear_stopping_criterion();
    for options in [
        GenerateOptions::builder(3).max_time(Duration::from_secs(1)).build().unwrap(),
        GenerateOptions::builder(3).output_scores(true).build().unwrap(),
    ] {
        generator.set_options(options);
        let err = generator.beam_search(&mut vec![Bigram::pattern(5); 2], &[0], &search);
        assert!(matches!(err.unwrap_err(), GenerateError::Unsupported { .. }));
    }
}
