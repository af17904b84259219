//! `config.json`: the shape and options of a GPT-2 checkpoint.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Gpt2Error, Result, io_error, json_error};

/// The activation of the MLP, as `config.json`'s `activation_function`
/// names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Activation {
    /// `gelu_new` (GPT-2's own) and `gelu_pytorch_tanh`: the tanh
    /// approximation `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`.
    GeluTanh,
    /// `gelu`: the exact `x Φ(x)`, with the error function.
    Gelu,
    /// `relu`.
    Relu,
    /// `silu` / `swish`: `x σ(x)`.
    Silu,
}

impl Activation {
    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "gelu_new" | "gelu_pytorch_tanh" => Self::GeluTanh,
            "gelu" => Self::Gelu,
            "relu" => Self::Relu,
            "silu" | "swish" => Self::Silu,
            _ => return None,
        })
    }
}

/// The GPT-2 hyper-parameters this example uses, read from a Hugging Face
/// `config.json`.
///
/// Missing keys take transformers' `GPT2Config` defaults (the 124M model:
/// vocabulary 50257, 1024 positions, 768 wide, 12 layers, 12 heads,
/// `gelu_new`, ε = 1e-5, tied head).
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Rows of the embedding table and of the head.
    pub vocab_size: usize,
    /// Longest sequence (rows of the position table).
    pub n_positions: usize,
    /// Width of the residual stream.
    pub n_embd: usize,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Attention heads per block; divides `n_embd`.
    pub n_head: usize,
    /// Width of the MLP (`n_inner`, default `4 * n_embd`).
    pub n_inner: usize,
    /// The MLP's activation.
    pub activation: Activation,
    /// LayerNorm's ε.
    pub layer_norm_epsilon: f32,
    /// Divide attention scores by √head_dim.
    pub scale_attn_weights: bool,
    /// Also divide layer `i`'s attention scores by `i + 1`.
    pub scale_attn_by_inverse_layer_idx: bool,
    /// The head reuses `wte` (the published GPT-2 has no `lm_head.weight`).
    pub tie_word_embeddings: bool,
    /// End-of-text token, if the configuration names one.
    pub eos_token_id: Option<u32>,
}

#[derive(Deserialize)]
struct RawConfig {
    model_type: Option<String>,
    vocab_size: Option<usize>,
    n_positions: Option<usize>,
    n_ctx: Option<usize>,
    n_embd: Option<usize>,
    n_layer: Option<usize>,
    n_head: Option<usize>,
    n_inner: Option<usize>,
    activation_function: Option<String>,
    layer_norm_epsilon: Option<f64>,
    scale_attn_weights: Option<bool>,
    scale_attn_by_inverse_layer_idx: Option<bool>,
    tie_word_embeddings: Option<bool>,
    add_cross_attention: Option<bool>,
    eos_token_id: Option<serde_json::Value>,
}

impl Default for Config {
    /// The 124M GPT-2.
    fn default() -> Self {
        Self {
            vocab_size: 50257,
            n_positions: 1024,
            n_embd: 768,
            n_layer: 12,
            n_head: 12,
            n_inner: 3072,
            activation: Activation::GeluTanh,
            layer_norm_epsilon: 1e-5,
            scale_attn_weights: true,
            scale_attn_by_inverse_layer_idx: false,
            tie_word_embeddings: true,
            eos_token_id: Some(50256),
        }
    }
}

impl Config {
    /// Reads and checks a `config.json`.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::Io`] / [`Gpt2Error::Json`] when the file cannot be read
    /// or parsed, [`Gpt2Error::Config`] when it is not a GPT-2 this example
    /// runs (another `model_type`, zero sizes, `n_embd` not divisible by
    /// `n_head`, an unknown activation, cross-attention).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(io_error(path))?;
        Self::from_json(&text, path)
    }

    /// Parses the text of a `config.json`; `path` only names it in errors.
    ///
    /// # Errors
    ///
    /// As [`Config::from_file`].
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        let raw: RawConfig = serde_json::from_str(text).map_err(json_error(path))?;
        let bad = |message: String| Gpt2Error::Config { path: path.to_path_buf(), message };
        if let Some(kind) = raw.model_type.as_deref()
            && kind != "gpt2"
        {
            return Err(bad(format!("model_type is {kind:?}, this example runs \"gpt2\"")));
        }
        if raw.add_cross_attention == Some(true) {
            return Err(bad("add_cross_attention (encoder-decoder GPT-2) is not supported".into()));
        }
        let d = Self::default();
        let n_embd = raw.n_embd.unwrap_or(d.n_embd);
        let activation = match raw.activation_function.as_deref() {
            None => d.activation,
            Some(name) => Activation::from_name(name).ok_or_else(|| {
                bad(format!(
                    "activation_function {name:?} is not supported \
                     (gelu_new, gelu_pytorch_tanh, gelu, relu, silu)"
                ))
            })?,
        };
        let eos_token_id = match raw.eos_token_id {
            None => d.eos_token_id,
            Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(n)) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            Some(serde_json::Value::Array(list)) => {
                list.first().and_then(serde_json::Value::as_u64).and_then(|n| u32::try_from(n).ok())
            }
            Some(other) => return Err(bad(format!("eos_token_id {other} is not a token id"))),
        };
        let config = Self {
            vocab_size: raw.vocab_size.unwrap_or(d.vocab_size),
            n_positions: raw.n_positions.or(raw.n_ctx).unwrap_or(d.n_positions),
            n_embd,
            n_layer: raw.n_layer.unwrap_or(d.n_layer),
            n_head: raw.n_head.unwrap_or(d.n_head),
            n_inner: raw.n_inner.unwrap_or(4 * n_embd),
            activation,
            layer_norm_epsilon: raw.layer_norm_epsilon.unwrap_or(1e-5) as f32,
            scale_attn_weights: raw.scale_attn_weights.unwrap_or(true),
            scale_attn_by_inverse_layer_idx: raw.scale_attn_by_inverse_layer_idx.unwrap_or(false),
            tie_word_embeddings: raw.tie_word_embeddings.unwrap_or(true),
            eos_token_id,
        };
        config.validate(path)?;
        Ok(config)
    }

    /// Checks the sizes.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::Config`] naming the first bad value.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |message: String| Err(Gpt2Error::Config { path: path.to_path_buf(), message });
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("n_positions", self.n_positions),
            ("n_embd", self.n_embd),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("n_inner", self.n_inner),
        ] {
            if value == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        if u32::try_from(self.vocab_size).is_err() {
            return bad(format!("vocab_size {} does not fit token ids", self.vocab_size));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return bad(format!(
                "n_embd ({}) must be a multiple of n_head ({})",
                self.n_embd, self.n_head
            ));
        }
        if !(self.layer_norm_epsilon.is_finite() && self.layer_norm_epsilon >= 0.0) {
            return bad(format!("layer_norm_epsilon {} is not a valid ε", self.layer_norm_epsilon));
        }
        Ok(())
    }

    /// Width of one attention head.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head
    }

    /// Number of parameters (the tied head counted once).
    pub fn parameter_count(&self) -> usize {
        let (c, f) = (self.n_embd, self.n_inner);
        let block = 2 * 2 * c + (c * 3 * c + 3 * c) + (c * c + c) + (c * f + f) + (f * c + c);
        let head = if self.tie_word_embeddings { 0 } else { self.vocab_size * c };
        (self.vocab_size + self.n_positions) * c + self.n_layer * block + 2 * c + head
    }
}

/// A placeholder path for configurations that do not come from a file.
pub(crate) fn in_memory() -> PathBuf {
    PathBuf::from("<config>")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config> {
        Config::from_json(text, Path::new("config.json"))
    }

    #[test]
    fn an_empty_object_is_the_124m_model() {
        let c = parse("{}").unwrap();
        assert_eq!(c, Config::default());
        // The published figure for GPT-2 small.
        assert_eq!(c.parameter_count(), 124_439_808);
    }

    #[test]
    fn reads_sizes_and_options() {
        let c = parse(
            r#"{"model_type":"gpt2","vocab_size":1000,"n_ctx":40,"n_embd":24,"n_layer":3,
                "n_head":3,"n_inner":40,"activation_function":"relu",
                "scale_attn_by_inverse_layer_idx":true,"eos_token_id":[7, 8]}"#,
        )
        .unwrap();
        assert_eq!((c.vocab_size, c.n_positions, c.n_embd, c.n_layer), (1000, 40, 24, 3));
        assert_eq!((c.n_head, c.n_inner, c.head_dim()), (3, 40, 8));
        assert_eq!(c.activation, Activation::Relu);
        assert!(c.scale_attn_by_inverse_layer_idx);
        assert_eq!(c.eos_token_id, Some(7));
    }

    #[test]
    fn rejects_what_it_cannot_run() {
        for (text, needle) in [
            (r#"{"model_type":"llama"}"#, "model_type"),
            (r#"{"n_embd":10,"n_head":3}"#, "multiple of n_head"),
            (r#"{"n_layer":0}"#, "n_layer must be positive"),
            (r#"{"activation_function":"mish"}"#, "mish"),
            (r#"{"add_cross_attention":true}"#, "cross"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
            assert!(err.starts_with("config.json"), "{err}");
        }
        assert!(matches!(parse("{"), Err(Gpt2Error::Json { .. })));
        assert!(matches!(parse(r#"{"n_embd":"wide"}"#), Err(Gpt2Error::Json { .. })));
    }
}
