//! The per-token path allocates nothing once warmed up.
//!
//! A counting global allocator (per thread, so concurrently running tests do
//! not disturb each other) measures heap allocations during steady-state
//! decoding steps.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use decoding::processors::{Temperature, TopK};
use decoding::sampler::{Categorical, Greedy};
use decoding::{Context, Pipeline, Sampler, TokenId, rng_from_seed};

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

#[test]
fn the_counter_sees_allocations() {
    let before = allocations();
    let v: Vec<u64> = std::hint::black_box(vec![1, 2, 3]);
    assert!(allocations() > before);
    drop(v);
}
