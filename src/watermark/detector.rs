//! The detector of the green-list watermark: counts green tokens and turns
//! the count into a z-score and a p-value (transformers'
//! `WatermarkDetector`).

use std::collections::HashMap;

use super::{SeedingScheme, WatermarkConfig};
use crate::{Error, TokenId};

/// What [`WatermarkDetector::detect`] measured on one text.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Detection {
    /// The tokens scored (or distinct n-grams, when repeats are ignored).
    pub tokens_scored: usize,
    /// How many of them are green.
    pub green_tokens: usize,
    /// `green_tokens / tokens_scored`.
    pub green_fraction: f64,
    /// `(green - γT) / √(T γ (1 - γ))`, `T` the tokens scored: standard
    /// deviations above what unwatermarked text has on average.
    pub z_score: f64,
    /// `P(Z >= z)` for a standard normal `Z`: the chance that text written
    /// without the watermark scores at least this high (one-sided; the
    /// normal approximation of the binomial count).
    pub p_value: f64,
}

impl Detection {
    /// Whether the z-score exceeds `z_threshold` (transformers' prediction;
    /// its default threshold is 3, a false-positive rate of about 0.13%).
    pub fn is_watermarked(&self, z_threshold: f64) -> bool {
        self.z_score > z_threshold
    }
}

/// Tells text generated with a [`Watermark`](crate::processors::Watermark)
/// from other text, from the tokens alone (no model): the green-list test
/// of Kirchenbauer et al. (2023), as transformers' `WatermarkDetector`
/// runs it.
///
/// # Semantics
///
/// With `c` the context width and `n = c + 1` (lefthash) or `n = c`
/// (selfhash), every window of `n` consecutive tokens scores its last
/// token: green iff it is in the green list after the window's first
/// `n - 1` tokens (lefthash) or after the whole window (selfhash, the
/// token being its own candidate). So a text of `L` tokens scores
/// `L - n + 1` tokens. With `ignore_repeated_ngrams`, each distinct window
/// counts once (transformers' option of the same name): repeated phrases
/// no longer inflate the score.
///
/// Pass the generated tokens (the prompt was not watermarked). A leading
/// BOS id, if [`with_bos_token`](Self::with_bos_token) names one, is
/// dropped first, as transformers does.
///
/// # Example
///
/// ```
/// use decoding::watermark::{WatermarkConfig, WatermarkDetector};
///
/// let config = WatermarkConfig::new(100)?;
/// let detector = WatermarkDetector::new(config);
/// let d = detector.detect(&[4, 8, 15, 16, 23, 42])?;
/// assert_eq!(d.tokens_scored, 5);
/// assert!(d.p_value > 0.0 && d.p_value < 1.0);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct WatermarkDetector {
    config: WatermarkConfig,
    ignore_repeated_ngrams: bool,
    bos: Option<TokenId>,
}

impl WatermarkDetector {
    /// The detector of the watermark `config` describes.
    pub fn new(config: WatermarkConfig) -> Self {
        WatermarkDetector { config, ignore_repeated_ngrams: false, bos: None }
    }

    /// Counts each distinct n-gram once.
    pub fn with_ignore_repeated_ngrams(mut self, ignore: bool) -> Self {
        self.ignore_repeated_ngrams = ignore;
        self
    }

    /// Drops a leading `bos` token before scoring.
    pub fn with_bos_token(mut self, bos: Option<TokenId>) -> Self {
        self.bos = bos;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &WatermarkConfig {
        &self.config
    }

    /// Scores `tokens`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming `tokens` when fewer than
    /// `context_width + 1` remain (after the BOS), and
    /// [`Error::TokenOutOfRange`] for an id past the vocabulary.
    pub fn detect(&self, tokens: &[TokenId]) -> Result<Detection, Error> {
        let tokens = match (self.bos, tokens.first()) {
            (Some(bos), Some(&first)) if first == bos => &tokens[1..],
            _ => tokens,
        };
        let width = self.config.context_width();
        if tokens.len() < width + 1 {
            return Err(Error::invalid(
                "tokens",
                "at least context_width + 1 tokens to score",
                tokens.len(),
            ));
        }
        let vocab_size = self.config.vocab_size();
        if let Some(&id) = tokens.iter().find(|&&t| t as usize >= vocab_size) {
            return Err(Error::TokenOutOfRange { id, vocab_size });
        }
        let n = match self.config.seeding_scheme() {
            SeedingScheme::LeftHash => width + 1,
            SeedingScheme::SelfHash => width,
        };
        let green = |window: &[TokenId]| {
            let target = window[n - 1];
            let prefix = match self.config.seeding_scheme() {
                SeedingScheme::LeftHash => &window[..n - 1],
                SeedingScheme::SelfHash => window,
            };
            self.config.is_green(prefix, target)
        };
        // Each distinct window is scored once (as transformers caches it).
        let mut seen: HashMap<&[TokenId], (bool, usize)> = HashMap::new();
        for window in tokens.windows(n) {
            seen.entry(window).or_insert_with(|| (green(window), 0)).1 += 1;
        }
        let (scored, green_tokens) = if self.ignore_repeated_ngrams {
            (seen.len(), seen.values().filter(|(g, _)| *g).count())
        } else {
            let total = tokens.len() - n + 1;
            (total, seen.values().filter(|(g, _)| *g).map(|(_, c)| c).sum())
        };
        let gamma = self.config.greenlist_ratio();
        let t = scored as f64;
        let z = (green_tokens as f64 - gamma * t) / (t * gamma * (1.0 - gamma)).sqrt();
        Ok(Detection {
            tokens_scored: scored,
            green_tokens,
            green_fraction: green_tokens as f64 / t,
            z_score: z,
            p_value: 0.5 * libm::erfc(z / std::f64::consts::SQRT_2),
        })
    }
}
