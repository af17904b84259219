//! Fuzz target (d): beam search and speculative decoding driven by a model
//! that returns arbitrary rows, fails, or changes its vocabulary. See
//! `tests/robustness/harness.rs` for the decoding of the input and the
//! guarantees checked.

#![no_main]

#[path = "../../tests/robustness/harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::strategies(data));
