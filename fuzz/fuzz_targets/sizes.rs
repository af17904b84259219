//! Fuzz target (e): every size a user passes, huge (lengths, beams,
//! returned sequences, drafted tokens, top log-probabilities, the
//! tokenizer's vocabulary, processor windows). See
//! `tests/robustness/harness.rs` for the decoding of the input and the
//! guarantees checked.

#![no_main]

#[path = "../../tests/robustness/harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::sizes(data));
