//! The green lists of the Kirchenbauer et al. watermark: which tokens a
//! context favours, computed exactly as transformers'
//! `WatermarkLogitsProcessor` computes them. Shared by the processor and
//! the detector, so both see the same lists by construction.

use std::sync::Arc;

use super::torch_rng::{Mt19937, in_randperm_prefix, randperm_prefix};
use crate::{Error, TokenId};

/// How a position's green list is seeded from the tokens before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum SeedingScheme {
    /// The last token alone (the paper's Algorithm 2; transformers'
    /// `"lefthash"`, its default): `seed = key · t[-1]`.
    #[default]
    LeftHash,
    /// The candidate token itself and the tokens before it (Algorithm 3;
    /// transformers' `"selfhash"`): with `w` the last `context_width`
    /// tokens of the context followed by the candidate, and `T` a fixed
    /// random permutation of `0..1_000_003` drawn from the key,
    /// `seed = min_i key · (T[w_i] + 1) · (T[w_last] + 1)` in wrapping
    /// 64-bit signed arithmetic; a candidate is green iff it is in its
    /// own green list, tried for the 40 best candidates only.
    SelfHash,
}

impl SeedingScheme {
    /// transformers' name: `"lefthash"` or `"selfhash"`.
    pub fn name(self) -> &'static str {
        match self {
            SeedingScheme::LeftHash => "lefthash",
            SeedingScheme::SelfHash => "selfhash",
        }
    }

    /// The scheme named `name` (`"lefthash"` or `"selfhash"`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `seeding_scheme` for another name.
    pub fn from_name(name: &str) -> Result<Self, Error> {
        match name {
            "lefthash" => Ok(SeedingScheme::LeftHash),
            "selfhash" => Ok(SeedingScheme::SelfHash),
            other => Err(Error::invalid("seeding_scheme", "\"lefthash\" or \"selfhash\"", other)),
        }
    }
}

/// The size of selfhash's fixed table (transformers' `table_size`).
const TABLE_SIZE: usize = 1_000_003;

/// transformers' default hashing key (the millionth prime).
pub const DEFAULT_HASHING_KEY: u64 = 15_485_863;

/// The watermark's parameters (transformers' `WatermarkingConfig`):
/// vocabulary size, green-list ratio `γ`, bias `δ`, hashing key, seeding
/// scheme and context width. One value configures both the processor
/// ([`Watermark`](crate::processors::Watermark)) and the
/// [`WatermarkDetector`](crate::watermark::WatermarkDetector).
///
/// # The green list, exactly
///
/// A position's green list is the first `⌊V · γ⌋` entries (`γ` and the
/// product in f64, as Python computes `int(vocab_size * greenlist_ratio)`)
/// of `torch.randperm(V)` drawn from PyTorch's CPU generator seeded with
/// the position's seed ([`SeedingScheme`]), reduced modulo `2^64 - 1` as
/// transformers does: MT19937 seeded by `init_genrand` with the seed's low
/// 32 bits, and position `i` swapped with `i + u % (V - i)` for each output
/// `u`. The lists are therefore those of transformers, token for token (the
/// parity fixtures of `scripts/hf_watermark_fixtures.py` check it).
///
/// # Example
///
/// ```
/// use decoding::watermark::{SeedingScheme, WatermarkConfig};
///
/// let config = WatermarkConfig::new(50_257)?
///     .with_greenlist_ratio(0.5)?
///     .with_seeding_scheme(SeedingScheme::SelfHash)
///     .with_context_width(2)?;
/// assert_eq!(config.greenlist_size(), 25_128);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WatermarkConfig {
    vocab_size: usize,
    greenlist_ratio: f64,
    bias: f32,
    hashing_key: u64,
    seeding_scheme: SeedingScheme,
    context_width: usize,
    /// selfhash's fixed permutation of `0..TABLE_SIZE`, drawn from the key.
    table: Option<Arc<[u32]>>,
}

impl PartialEq for WatermarkConfig {
    fn eq(&self, other: &Self) -> bool {
        // The table follows from the key and the scheme.
        self.vocab_size == other.vocab_size
            && self.greenlist_ratio == other.greenlist_ratio
            && self.bias == other.bias
            && self.hashing_key == other.hashing_key
            && self.seeding_scheme == other.seeding_scheme
            && self.context_width == other.context_width
    }
}

impl WatermarkConfig {
    /// transformers' defaults for a vocabulary of `vocab_size` tokens (the
    /// model's row size): `γ = 0.25`, `δ = 2`, key 15485863, lefthash,
    /// context width 1.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `vocab_size` when it is 0 or
    /// above `u32::MAX / 20` (where PyTorch's permutation changes
    /// algorithm).
    pub fn new(vocab_size: usize) -> Result<Self, Error> {
        if vocab_size == 0 || vocab_size >= (u32::MAX / 20) as usize {
            return Err(Error::invalid("vocab_size", "in 1..214748364", vocab_size));
        }
        Ok(WatermarkConfig {
            vocab_size,
            greenlist_ratio: 0.25,
            bias: 2.0,
            hashing_key: DEFAULT_HASHING_KEY,
            seeding_scheme: SeedingScheme::LeftHash,
            context_width: 1,
            table: None,
        })
    }

    /// The fraction `γ` of the vocabulary that is green.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `greenlist_ratio` unless
    /// `0 < γ < 1`.
    pub fn with_greenlist_ratio(mut self, gamma: f64) -> Result<Self, Error> {
        if !(gamma > 0.0 && gamma < 1.0) {
            return Err(Error::invalid("greenlist_ratio", "in (0, 1)", gamma));
        }
        self.greenlist_ratio = gamma;
        Ok(self)
    }

    /// The bias `δ` added to green tokens' scores.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `bias` when it is not finite.
    pub fn with_bias(mut self, delta: f32) -> Result<Self, Error> {
        if !delta.is_finite() {
            return Err(Error::invalid("bias", "finite", delta));
        }
        self.bias = delta;
        Ok(self)
    }

    /// The secret key of the hash (a deployed watermark should not use the
    /// default). With selfhash, keys of `2^63` and above are taken as
    /// PyTorch's signed 64-bit integers would wrap them.
    pub fn with_hashing_key(mut self, key: u64) -> Self {
        self.hashing_key = key;
        self.table = None;
        self.build_table();
        self
    }

    /// How green lists are seeded.
    pub fn with_seeding_scheme(mut self, scheme: SeedingScheme) -> Self {
        self.seeding_scheme = scheme;
        self.build_table();
        self
    }

    /// How many tokens before a position take part in its seed (with
    /// lefthash, only the last one does; the width then sets how many
    /// leading tokens are too short a context to be watermarked or scored).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `context_width` when it is 0.
    pub fn with_context_width(mut self, width: usize) -> Result<Self, Error> {
        if width == 0 {
            return Err(Error::invalid("context_width", "at least 1", width));
        }
        self.context_width = width;
        Ok(self)
    }

    fn build_table(&mut self) {
        if self.seeding_scheme == SeedingScheme::SelfHash && self.table.is_none() {
            let mut rng = Mt19937::new(self.hashing_key % u64::MAX);
            let (mut scratch, mut table) = (Vec::new(), Vec::new());
            randperm_prefix(&mut rng, TABLE_SIZE, TABLE_SIZE, &mut scratch, &mut table);
            self.table = Some(table.into());
        }
    }

    /// The vocabulary size `V`.
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// `γ`.
    pub fn greenlist_ratio(&self) -> f64 {
        self.greenlist_ratio
    }

    /// `⌊V · γ⌋`, the number of green tokens of a position.
    pub fn greenlist_size(&self) -> usize {
        (self.vocab_size as f64 * self.greenlist_ratio) as usize
    }

    /// `δ`.
    pub fn bias(&self) -> f32 {
        self.bias
    }

    /// The hashing key.
    pub fn hashing_key(&self) -> u64 {
        self.hashing_key
    }

    /// The seeding scheme.
    pub fn seeding_scheme(&self) -> SeedingScheme {
        self.seeding_scheme
    }

    /// The context width.
    pub fn context_width(&self) -> usize {
        self.context_width
    }

    /// The seed of the green list after `window` (its last
    /// `context_width` tokens count; for selfhash the candidate is its last
    /// token), reduced modulo `2^64 - 1` as transformers does before
    /// `manual_seed`.
    pub(crate) fn seed(&self, window: &[TokenId]) -> u64 {
        let window = &window[window.len().saturating_sub(self.context_width)..];
        let Some(&last) = window.last() else {
            return 0;
        };
        match (self.seeding_scheme, &self.table) {
            (SeedingScheme::SelfHash, Some(table)) => {
                let entry = |t: TokenId| i64::from(table[t as usize % TABLE_SIZE]) + 1;
                let key = self.hashing_key as i64;
                let b = entry(last);
                let min = window
                    .iter()
                    .map(|&t| key.wrapping_mul(entry(t)).wrapping_mul(b))
                    .min()
                    .unwrap_or(0);
                // Python's `%` of a negative int by 2^64 - 1.
                if min >= 0 { min as u64 } else { (min as i128 + u64::MAX as i128) as u64 }
            }
            _ => ((u128::from(self.hashing_key) * u128::from(last)) % u128::from(u64::MAX)) as u64,
        }
    }

    /// Writes the green list after `window` into `out` (in permutation
    /// order), with `scratch` as the permutation's working memory.
    pub(crate) fn green_list(
        &self,
        window: &[TokenId],
        scratch: &mut Vec<u32>,
        out: &mut Vec<u32>,
    ) {
        let mut rng = Mt19937::new(self.seed(window));
        randperm_prefix(&mut rng, self.vocab_size, self.greenlist_size(), scratch, out);
    }

    /// Whether `token` is in the green list after `window`.
    pub(crate) fn is_green(&self, window: &[TokenId], token: TokenId) -> bool {
        let mut rng = Mt19937::new(self.seed(window));
        in_randperm_prefix(&mut rng, self.vocab_size, self.greenlist_size(), token as usize)
    }
}
