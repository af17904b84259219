//! Watermarking generated text (Kirchenbauer et al. 2023, "A Watermark for
//! Large Language Models"), compatible with transformers'
//! `WatermarkLogitsProcessor` and `WatermarkDetector`.
//!
//! - [`WatermarkConfig`]: the parameters (`γ`, `δ`, hashing key, seeding
//!   scheme, context width) and the green lists they define, identical to
//!   transformers' (PyTorch's MT19937 and `randperm`, reproduced bit for
//!   bit);
//! - [`Watermark`](crate::processors::Watermark): the processor that adds
//!   `δ` to the green tokens' scores;
//! - [`WatermarkDetector`]: the z-test on the count of green tokens.
//!
//! Text watermarked by transformers is detected here and the other way
//! round, given the same configuration and tokenizer.

mod detector;
mod green_list;
mod torch_rng;

pub use self::detector::{Detection, WatermarkDetector};
pub use self::green_list::{DEFAULT_HASHING_KEY, SeedingScheme, WatermarkConfig};
