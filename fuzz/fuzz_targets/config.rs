//! Fuzz target (b): the configuration readers (`generation_config.json`,
//! OpenAI-style requests, llama.cpp sampler lists) on arbitrary bytes. See
//! `tests/robustness/harness.rs` for the guarantees checked.

#![no_main]

#[path = "../../tests/robustness/harness.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::config(data));
