//! Never panics, never lies: the fuzz harness run as property tests, and
//! every input the fuzzer ever found to break a guarantee, kept as a
//! regression test.
//!
//! The harness (`harness.rs`) is shared with the `cargo fuzz` targets of
//! `fuzz/`: the same bytes decode to the same case and are checked
//! against the same guarantees here and under the fuzzer.

mod harness;
mod properties;
mod regressions;
