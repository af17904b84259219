//! Helpers shared by the adversarial cases.

use decoding::sampler::{Categorical, Greedy};
use decoding::{Context, Error, LogitsProcessor, Sampled, Sampler, Scores, TokenId};

pub const NEG: f32 = f32::NEG_INFINITY;

/// The largest uniform the crate draws: `1 - 2^-53`.
pub const U_MAX: f64 = 1.0 - 1.0 / (1u64 << 53) as f64;

/// Runs `p` on a copy of `row` and returns the processed dense row.
pub fn apply(p: &mut impl LogitsProcessor, ctx: &Context<'_>, row: &[f32]) -> Vec<f32> {
    try_apply(p, ctx, row).expect("processor failed")
}

pub fn try_apply(
    p: &mut impl LogitsProcessor,
    ctx: &Context<'_>,
    row: &[f32],
) -> Result<Vec<f32>, Error> {
    let mut out = row.to_vec();
    let mut live = Vec::new();
    let mut scores = Scores::new(&mut out, &mut live);
    p.process(ctx, &mut scores)?;
    scores.densify();
    Ok(out)
}

/// The ids whose processed score is not `-inf`.
pub fn survivors(row: &[f32]) -> Vec<TokenId> {
    (0..row.len() as TokenId).filter(|&i| row[i as usize] > NEG).collect()
}

/// Logits whose softmax is `probs` (`ln p`).
pub fn logits_of(probs: &[f64]) -> Vec<f32> {
    probs.iter().map(|&p| p.ln() as f32).collect()
}

/// The softmax of a row, in f64.
pub fn softmax(row: &[f32]) -> Vec<f64> {
    let m = row.iter().copied().fold(NEG, f32::max);
    let w: Vec<f64> = row.iter().map(|&x| (f64::from(x) - f64::from(m)).exp()).collect();
    let z: f64 = w.iter().sum();
    w.into_iter().map(|x| x / z).collect()
}

/// The probabilities of the survivors, in id order.
pub fn kept_probs(row: &[f32]) -> Vec<f64> {
    softmax(row).into_iter().filter(|&p| p > 0.0).collect()
}

pub fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() <= tol, "{got:?} vs {want:?}");
    }
}

pub fn greedy(row: &[f32]) -> Result<Sampled, Error> {
    let mut row = row.to_vec();
    let mut live = Vec::new();
    Greedy::new().sample(&Scores::new(&mut row, &mut live), &mut Void)
}

/// A categorical draw with the uniform `u` injected.
pub fn draw_u(row: &[f32], u: f64) -> Result<Sampled, Error> {
    let mut row = row.to_vec();
    let mut live = Vec::new();
    Categorical::new().sample_with_uniform(&Scores::new(&mut row, &mut live), u)
}

/// A categorical draw through `Sampler::sample` with a random source that
/// returns the given 64-bit words.
pub fn draw_words(row: &[f32], words: &[u64]) -> Result<Sampled, Error> {
    let mut row = row.to_vec();
    let mut live = Vec::new();
    Categorical::new().sample(&Scores::new(&mut row, &mut live), &mut Words::new(words))
}

#[path = "../common/words.rs"]
mod words;
pub use words::Words;

/// A random source that must never be used.
#[derive(Debug)]
pub struct Void;

impl rand::TryRng for Void {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        panic!("this path must not draw")
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        panic!("this path must not draw")
    }
    fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
        panic!("this path must not draw")
    }
}

/// Asserts an `InvalidParameter` error naming `name`.
pub fn assert_invalid<T: std::fmt::Debug>(r: Result<T, Error>, name: &str) {
    match r {
        Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
        other => panic!("expected InvalidParameter {{ name: {name:?} }}, got {other:?}"),
    }
}

/// Asserts an `InvalidLogit` error at `index` whose value has the bits of `value`.
pub fn assert_invalid_logit<T: std::fmt::Debug>(r: Result<T, Error>, index: usize, value: f32) {
    match r {
        Err(Error::InvalidLogit { index: i, value: v }) => {
            assert_eq!(i, index);
            assert_eq!(v.to_bits(), value.to_bits(), "{v} vs {value}");
        }
        other => panic!("expected InvalidLogit {{ index: {index} }}, got {other:?}"),
    }
}

#[path = "../common/toy_models.rs"]
mod toy_models;
/// A model that always writes the same row.
pub use toy_models::FixedRow as Fixed;
