//! Integration tests of the generator, driven by small deterministic models.

#[path = "../common/chi_square.rs"]
mod chi_square;

mod batch;
mod beam;
mod choices;
mod consumers;
mod criteria;
mod errors;
mod limits;
mod logprobs;
mod models;
mod prefix_cache;
mod prompt_logprobs;
mod prompt_lookup;
mod rows;
mod seeds;
mod speculative;
mod stability;
mod stop;
mod stream;
mod vocab;
