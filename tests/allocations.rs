//! The per-token path allocates nothing once warmed up.
//!
//! A counting global allocator (per thread, so concurrently running tests do
//! not disturb each other) measures heap allocations during steady-state
//! decoding steps.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use decoding::processors::{MinP, RepetitionPenalty, Temperature, TopK, TopP};
use decoding::sampler::{Categorical, Greedy};
use decoding::{
    Context, GenerateOptions, Generator, LanguageModel, Pipeline, Sampler, TokenId, rng_from_seed,
};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// thread-local counter is a `const`-initialized `Cell` without destructor,
// so touching it never allocates or re-enters the allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(|c| c.get())
}

/// Logits that change from step to step, so the survivors of each
/// truncation differ.
fn step_logits(v: usize, step: usize, out: &mut [f32]) {
    for (i, x) in out.iter_mut().enumerate().take(v) {
        *x = (((i * 7919 + step * 104_729) % 1009) as f32) / 97.0;
    }
}

fn steady_state_allocations(pipeline: &mut Pipeline, sampler: &mut dyn Sampler) -> u64 {
    let v = 50_257;
    let mut logits = vec![0.0f32; v];
    let mut history: Vec<TokenId> = Vec::with_capacity(1024);
    history.extend([1, 2, 3, 4]);
    let mut rng = rng_from_seed(5);
    let mut run = |steps: std::ops::Range<usize>, history: &mut Vec<TokenId>| {
        for step in steps {
            step_logits(v, step, &mut logits);
            let ctx = Context::new(history, 4).unwrap();
            let s = pipeline.sample(&ctx, &mut logits, sampler, &mut rng).unwrap();
            pipeline.accept(s.token);
            history.push(s.token);
        }
    };
    run(0..5, &mut history);
    let before = allocations();
    run(5..100, &mut history);
    allocations() - before
}

#[test]
fn pipeline_and_categorical_do_not_allocate_per_token() {
    let mut pipeline =
        Pipeline::new().with(Temperature::new(0.8).unwrap()).with(TopK::new(50).unwrap());
    assert_eq!(steady_state_allocations(&mut pipeline, &mut Categorical::new()), 0);
}

#[test]
fn greedy_does_not_allocate_per_token() {
    let mut pipeline = Pipeline::new().with(Temperature::new(0.0).unwrap());
    assert_eq!(steady_state_allocations(&mut pipeline, &mut Greedy::new()), 0);
}

/// The chain of a typical request: penalties, temperature, the truncations.
fn realistic() -> Pipeline {
    Pipeline::new()
        .with(RepetitionPenalty::new(1.3).unwrap())
        .with(Temperature::new(0.8).unwrap())
        .with(TopK::new(50).unwrap())
        .with(TopP::new(0.9).unwrap())
        .with(MinP::new(0.05).unwrap())
}

#[test]
fn a_realistic_chain_and_categorical_do_not_allocate_per_token() {
    assert_eq!(steady_state_allocations(&mut realistic(), &mut Categorical::new()), 0);
}

#[test]
fn wide_truncations_without_top_k_do_not_allocate_per_token() {
    // Top-p and min-p on the full row (their own selection buffers).
    let mut pipeline = Pipeline::new()
        .with(Temperature::new(1.5).unwrap())
        .with(TopP::new(0.95).unwrap())
        .with(MinP::new(0.01).unwrap());
    assert_eq!(steady_state_allocations(&mut pipeline, &mut Categorical::new()), 0);
}

#[test]
fn greedy_without_its_log_probability_does_not_allocate_per_token() {
    let v = 50_257;
    let mut logits = vec![0.0f32; v];
    let mut pipeline = Pipeline::new();
    let mut rng = rng_from_seed(5);
    let mut run = |steps: std::ops::Range<usize>| {
        for step in steps {
            step_logits(v, step, &mut logits);
            let ctx = Context::empty();
            pipeline.sample_token(&ctx, &mut logits, &mut Greedy::new(), &mut rng).unwrap();
        }
    };
    run(0..5);
    let before = allocations();
    run(5..100);
    assert_eq!(allocations() - before, 0);
}

/// A model that costs nothing: its row depends on the step and the last
/// token, so every step's truncations keep different tokens.
struct Cheap {
    step: usize,
    last: TokenId,
}

impl LanguageModel for Cheap {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        50_257
    }
    fn forward(
        &mut self,
        tokens: &[TokenId],
        _position: usize,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.last = tokens.last().copied().unwrap_or(self.last);
        step_logits(logits.len(), self.step * 31 + self.last as usize, logits);
        self.step += 1;
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Self::Error> {
        self.step = 0;
        Ok(())
    }
}

/// Allocations of one warmed-up run of `tokens` steps.
fn run_allocations(tokens: usize) -> u64 {
    let options = GenerateOptions::builder(tokens).seed(11).build().unwrap();
    let mut generator = Generator::new(realistic(), Categorical::new(), options);
    let mut model = Cheap { step: 0, last: 0 };
    let prompt: [TokenId; 4] = [464, 3290, 318, 257];
    let warm = generator.generate(&mut model, &prompt).unwrap();
    assert_eq!(warm.tokens.len(), tokens);
    let before = allocations();
    let out = generator.generate(&mut model, &prompt).unwrap();
    let used = allocations() - before;
    assert_eq!(out.tokens.len(), tokens);
    used
}

#[test]
fn the_generator_allocates_per_run_not_per_token() {
    // A run returns its token ids in a fresh Vec: one allocation, whatever
    // the number of steps, so a step allocates nothing.
    let short = run_allocations(10);
    let long = run_allocations(300);
    assert_eq!(short, long, "allocations grow with the number of steps");
    assert!(long <= 1, "{long} allocations per run");
}

#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    let v: Vec<u64> = std::hint::black_box(vec![1, 2, 3]);
    assert!(allocations() > before);
    drop(v);
}

/// Only the allocation count matters here: nothing to undo.
impl decoding::RewindableModel for Cheap {
    fn rewind(&mut self, _len: usize) -> Result<(), Self::Error> {
        Ok(())
    }
}

/// Allocations of one warmed-up speculative run of `tokens` steps.
fn speculative_allocations(tokens: usize, verification: decoding::Verification) -> u64 {
    let options = GenerateOptions::builder(tokens).seed(11).build().unwrap();
    let mut generator = Generator::new(realistic(), Categorical::new(), options);
    let speculative = decoding::SpeculativeOptions::new(3, verification).unwrap();
    let (mut target, mut draft) = (Cheap { step: 0, last: 0 }, Cheap { step: 7, last: 0 });
    let prompt: [TokenId; 4] = [464, 3290, 318, 257];
    let mut run = || {
        let out =
            generator.generate_speculative(&mut target, &mut draft, &prompt, &speculative).unwrap();
        assert_eq!(out.tokens.len(), tokens);
    };
    run();
    let before = allocations();
    run();
    allocations() - before
}

#[test]
fn speculative_runs_allocate_per_run_not_per_token() {
    for verification in [decoding::Verification::Greedy, decoding::Verification::Sampled] {
        let short = speculative_allocations(10, verification);
        let long = speculative_allocations(300, verification);
        assert_eq!(short, long, "{verification:?}: allocations grow with the number of steps");
        assert!(long <= 1, "{verification:?}: {long} allocations per run");
    }
}

/// `n` sequences of `Cheap`, reordered by copying their (plain) state: a
/// beam model that allocates nothing.
struct CheapBeams {
    states: Vec<(usize, TokenId)>,
    spare: Vec<(usize, TokenId)>,
}

impl decoding::BatchLanguageModel for CheapBeams {
    type Error = std::convert::Infallible;
    fn vocab_size(&self) -> usize {
        50_257
    }
    fn max_sequences(&self) -> usize {
        self.states.len()
    }
    fn forward_batch(
        &mut self,
        input: &decoding::BatchInput<'_>,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        for (entry, row) in input.iter().zip(logits.chunks_exact_mut(50_257)) {
            let (step, last) = self.states[entry.sequence];
            let mut model = Cheap { step, last };
            model.forward(entry.tokens, entry.position, row)?;
            self.states[entry.sequence] = (model.step, model.last);
        }
        Ok(())
    }
    fn reset_sequence(&mut self, sequence: usize) -> Result<(), Self::Error> {
        self.states[sequence] = (0, 0);
        Ok(())
    }
}

impl decoding::BeamLanguageModel for CheapBeams {
    fn reorder(&mut self, parents: &[usize]) -> Result<(), Self::Error> {
        for (spare, &p) in self.spare.iter_mut().zip(parents) {
            *spare = self.states[p];
        }
        self.states[..parents.len()].copy_from_slice(&self.spare[..parents.len()]);
        Ok(())
    }
}

/// Allocations of one warmed-up 4-beam search of `tokens` steps.
fn beam_allocations(tokens: usize) -> u64 {
    let options = GenerateOptions::builder(tokens).eos_token(50_256).build().unwrap();
    let mut generator = Generator::new(
        Pipeline::new().with(RepetitionPenalty::new(1.1).unwrap()),
        Greedy::new(),
        options,
    );
    let mut model = CheapBeams { states: vec![(0, 0); 4], spare: vec![(0, 0); 4] };
    let search = decoding::BeamSearch::new(4).unwrap();
    let prompt: [TokenId; 4] = [464, 3290, 318, 257];
    let mut run = || {
        let out = generator.beam_search(&mut model, &prompt, &search).unwrap();
        assert_eq!(out.len(), 4);
    };
    run();
    let before = allocations();
    run();
    allocations() - before
}

#[test]
fn beam_search_allocates_per_run_not_per_token() {
    // A search sets up its beams and buffers once and returns its
    // hypotheses; the steps in between allocate nothing.
    let short = beam_allocations(10);
    let long = beam_allocations(300);
    assert_eq!(short, long, "allocations grow with the number of steps");
}
