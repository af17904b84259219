//! Placeholder; the benchmarks land with the processors.
fn main() {}
