//! Integration tests of the generator, driven by small deterministic models.

#[path = "../common/chi_square.rs"]
mod chi_square;

mod batch;
mod beam;
mod consumers;
mod errors;
mod limits;
mod logprobs;
mod models;
mod prefix_cache;
mod seeds;
mod speculative;
mod stability;
mod stop;
mod stream;
mod vocab;
