//! Fuzz target (a): a pipeline built from arbitrary parameters, applied to
//! arbitrary f32 bit patterns, then sampled. See `tests/robustness/harness.rs`
//! for the decoding of the input and the guarantees checked.

#![no_main]

#[path = "../../tests/robustness/harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::pipeline(data));
