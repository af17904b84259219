//! A candle-transformers Llama driven by the `decoding` crate's
//! [`Generator`](decoding::Generator): the glue a candle user writes.
//!
//! [`CandleLlama`] implements [`LanguageModel`] (and `Clone`, so a
//! `Vec<CandleLlama>` is a batch and beam-search model): it feeds the new
//! tokens at their position through `Llama::forward` with its KV
//! [`Cache`] and copies the last position's logits into the generator's
//! row. [`random_llama`] builds a small Llama with seeded random weights (no
//! download) for the tests and the example.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use candle_transformers::models::llama::{Cache, Config, Llama, LlamaConfig};
use decoding::{LanguageModel, TokenId};

/// A candle Llama and its KV cache, as a [`LanguageModel`].
#[derive(Debug, Clone)]
pub struct CandleLlama {
    model: Llama,
    cache: Cache,
    config: Config,
    device: Device,
    /// Tokens the cache holds.
    position: usize,
}

/// What can go wrong: candle's error, or a position the cache does not
/// hold.
#[derive(Debug)]
pub enum LlamaError {
    /// A candle operation failed.
    Candle(candle_core::Error),
    /// `forward` was called at a position other than the cache's length.
    Position {
        /// What the cache holds.
        expected: usize,
        /// What the caller passed.
        found: usize,
    },
}

impl std::fmt::Display for LlamaError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LlamaError::Candle(e) => write!(f, "candle: {e}"),
            LlamaError::Position { expected, found } => {
                write!(f, "position {found}, but the cache holds {expected} tokens")
            }
        }
    }
}

impl std::error::Error for LlamaError {}

impl From<candle_core::Error> for LlamaError {
    fn from(e: candle_core::Error) -> Self {
        LlamaError::Candle(e)
    }
}

impl CandleLlama {
    /// Wraps a loaded model with a fresh KV cache.
    ///
    /// # Errors
    ///
    /// candle's, when the cache cannot be built.
    pub fn new(model: Llama, config: Config, device: Device) -> Result<Self, LlamaError> {
        let cache = Cache::new(true, DType::F32, &config, &device)?;
        Ok(CandleLlama { model, cache, config, device, position: 0 })
    }

    /// The candle model, for candle's own loop.
    pub fn model(&self) -> &Llama {
        &self.model
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl LanguageModel for CandleLlama {
    type Error = LlamaError;

    fn vocab_size(&self) -> usize {
        self.config.vocab_size
    }

    fn forward(
        &mut self,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<(), LlamaError> {
        if position != self.position {
            return Err(LlamaError::Position { expected: self.position, found: position });
        }
        let input = Tensor::new(tokens, &self.device)?.unsqueeze(0)?;
        let row = self.model.forward(&input, position, &mut self.cache)?.squeeze(0)?;
        logits.copy_from_slice(&row.to_vec1::<f32>()?);
        self.position += tokens.len();
        Ok(())
    }

    fn reset(&mut self) -> Result<(), LlamaError> {
        self.cache = Cache::new(true, DType::F32, &self.config, &self.device)?;
        self.position = 0;
        Ok(())
    }
}

/// A small Llama (2 layers, hidden size 64, 4 heads of which 2 key-value,
/// a 32000-token vocabulary as Llama 2's) with random weights, uniform in
/// ±0.15 from the crate's portable generator seeded with `seed` (the same
/// weights on every platform), on the CPU.
///
/// # Errors
///
/// candle's.
pub fn random_llama(seed: u64) -> Result<CandleLlama, LlamaError> {
    let device = Device::Cpu;
    let config = LlamaConfig {
        hidden_size: 64,
        intermediate_size: 172,
        vocab_size: 32000,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: Some(2),
        rms_norm_eps: 1e-5,
        rope_theta: 10000.0,
        bos_token_id: Some(1),
        eos_token_id: None,
        rope_scaling: None,
        max_position_embeddings: 512,
        tie_word_embeddings: Some(false),
    }
    .into_config(false);
    let vars = VarMap::new();
    let model = Llama::load(VarBuilder::from_varmap(&vars, DType::F32, &device), &config)?;
    // The builder made every weight zero: give each a random value (in the
    // order of their names, so the weights do not depend on a hash map's
    // order), and the norms' scales 1.
    let mut rng = decoding::rng_from_seed(seed);
    let data = vars.data().lock().expect("the weights' lock");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let value = if name.ends_with("norm.weight") {
            Tensor::ones(var.shape(), DType::F32, &device)?
        } else {
            let n = var.shape().elem_count();
            let values: Vec<f32> = (0..n)
                .map(|_| ((decoding::unit_f64(&mut rng) * 2.0 - 1.0) * 0.15) as f32)
                .collect();
            Tensor::from_vec(values, var.shape(), &device)?
        };
        var.set(&value)?;
    }
    drop(data);
    CandleLlama::new(model, config, device)
}
