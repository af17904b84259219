//! `model.safetensors`: loading GPT-2's tensors into f32 arrays.
//!
//! Two key layouts are accepted, told apart by the embedding table's name:
//!
//! | layout | embedding | blocks | head |
//! |---|---|---|---|
//! | published `openai-community/gpt2` | `wte.weight` | `h.N.…`, plus `h.N.attn.bias` mask buffers | none: tied to `wte` |
//! | `save_pretrained` of `GPT2LMHeadModel` | `transformer.wte.weight` | `transformer.h.N.…` | `lm_head.weight` only when untied |
//!
//! Mask buffers (`attn.bias`, `attn.masked_bias`) are ignored: the causal
//! mask is implicit in the forward pass. GPT-2's linear layers are stored
//! as `Conv1D`, `[in, out]`; they are transposed here to `[out, in]` so
//! that each output is one contiguous row (see [`crate::model`]).
//!
//! The matrices (the linear layers and the token embeddings, which are also
//! the head) keep the file's precision: an f16 or bf16 checkpoint stays in
//! 16 bits in memory, half the bytes a generation step reads, and the
//! kernels widen it exactly (see [`Matrix`]). Biases, LayerNorms and the
//! position embeddings (one row read per token) are widened to f32 at load.
//! [`Weights::converted`] changes the matrices' precision after loading.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use half::{bf16, f16};
use ndarray::{Array1, Array2};
use safetensors::{Dtype, SafeTensorError, SafeTensors};

use crate::config::Config;
use crate::error::{Gpt2Error, Result, io_error};
use crate::matrix::{Dtype as WeightDtype, Matrix};

/// A linear layer, `y = W x + b`, with `W` stored `[out, in]`.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[out, in]`, row-major, in the file's precision.
    pub weight: Matrix,
    /// `[out]`.
    pub bias: Array1<f32>,
}

/// A LayerNorm's scale and shift.
#[derive(Debug, Clone)]
pub struct Norm {
    /// γ, `[n_embd]`.
    pub weight: Array1<f32>,
    /// β, `[n_embd]`.
    pub bias: Array1<f32>,
}

/// One transformer block.
#[derive(Debug, Clone)]
pub struct Block {
    /// LayerNorm before attention.
    pub ln_1: Norm,
    /// Query, key and value projections, `[3 n_embd, n_embd]`.
    pub c_attn: Linear,
    /// Attention output projection, `[n_embd, n_embd]`.
    pub attn_proj: Linear,
    /// LayerNorm before the MLP.
    pub ln_2: Norm,
    /// MLP expansion, `[n_inner, n_embd]`.
    pub c_fc: Linear,
    /// MLP projection, `[n_embd, n_inner]`.
    pub mlp_proj: Linear,
}

/// All of GPT-2's parameters: the matrices in the file's precision (f32,
/// f16 or bf16), the vectors in f32.
#[derive(Debug, Clone)]
pub struct Weights {
    /// Token embeddings, `[vocab_size, n_embd]` (also the head when tied).
    pub wte: Matrix,
    /// Position embeddings, `[n_positions, n_embd]`.
    pub wpe: Array2<f32>,
    /// The blocks, `n_layer` of them.
    pub blocks: Vec<Block>,
    /// Final LayerNorm.
    pub ln_f: Norm,
    /// An untied head, `[vocab_size, n_embd]`; `None` when the head is `wte`.
    pub lm_head: Option<Matrix>,
}

/// Which names the file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyLayout {
    /// The published `openai-community/gpt2` file: `wte.weight`, `h.0.…`.
    Published,
    /// `save_pretrained`: `transformer.wte.weight`, `transformer.h.0.…`.
    Prefixed,
}

impl KeyLayout {
    fn prefix(self) -> &'static str {
        match self {
            Self::Published => "",
            Self::Prefixed => "transformer.",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Published => " (published layout: keys without `transformer.`)",
            Self::Prefixed => " (save_pretrained layout: keys with `transformer.`)",
        }
    }
}

impl Weights {
    /// Reads a `model.safetensors` file for `config`.
    ///
    /// # Errors
    ///
    /// [`Gpt2Error::Io`] when the file cannot be read, and the errors of
    /// [`Weights::from_bytes`].
    pub fn from_file(path: &Path, config: &Config) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(io_error(path))?;
        Self::from_bytes(&bytes, path, config)
    }

    /// Parses the bytes of a safetensors file for `config`; `path` only
    /// names the file in errors.
    ///
    /// # Errors
    ///
    /// - [`Gpt2Error::Safetensors`]: not a safetensors file, or truncated
    ///   (the message says how many bytes the header describes and how many
    ///   the file holds);
    /// - [`Gpt2Error::Layout`]: no embedding table under either layout's
    ///   name, or more blocks than `n_layer`;
    /// - [`Gpt2Error::MissingTensor`], [`Gpt2Error::TensorShape`],
    ///   [`Gpt2Error::TensorDtype`]: naming the tensor.
    pub fn from_bytes(bytes: &[u8], path: &Path, config: &Config) -> Result<Self> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| Gpt2Error::Safetensors {
            path: path.to_path_buf(),
            message: describe_safetensors_error(&e, bytes),
        })?;
        let loader = Loader::new(&file, path, config)?;
        loader.load()
    }

    /// The weights with every matrix in `dtype`: widening (to f32) is
    /// exact and gives the same logits; narrowing (f32 to f16 or bf16)
    /// rounds each weight to nearest and halves the bytes read per token.
    #[must_use]
    pub fn converted(mut self, dtype: WeightDtype) -> Self {
        let convert = |m: &mut Matrix| {
            let placeholder = Matrix::F32(Array2::zeros((0, 0)));
            *m = std::mem::replace(m, placeholder).converted(dtype);
        };
        convert(&mut self.wte);
        if let Some(head) = &mut self.lm_head {
            convert(head);
        }
        for b in &mut self.blocks {
            for l in [&mut b.c_attn, &mut b.attn_proj, &mut b.c_fc, &mut b.mlp_proj] {
                convert(&mut l.weight);
            }
        }
        self
    }

    /// The precision of the matrices (that of the token embeddings; the
    /// loader and [`Weights::converted`] keep them all alike).
    pub fn dtype(&self) -> WeightDtype {
        self.wte.dtype()
    }

    /// Bytes of the matrices a generation step reads: every linear layer
    /// and the head (the embedding rows of the new tokens aside).
    pub fn bytes_per_step(&self) -> usize {
        let head = self.lm_head.as_ref().unwrap_or(&self.wte).bytes();
        let blocks: usize = self
            .blocks
            .iter()
            .map(|b| {
                [&b.c_attn, &b.attn_proj, &b.c_fc, &b.mlp_proj]
                    .iter()
                    .map(|l| l.weight.bytes() + 4 * l.bias.len())
                    .sum::<usize>()
            })
            .sum();
        head + blocks
    }
}

struct Loader<'a, 'data> {
    file: &'a SafeTensors<'data>,
    path: PathBuf,
    config: &'a Config,
    layout: KeyLayout,
}

impl<'a, 'data> Loader<'a, 'data> {
    fn new(file: &'a SafeTensors<'data>, path: &Path, config: &'a Config) -> Result<Self> {
        let names: BTreeSet<&str> = file.names().into_iter().collect();
        let layout = if names.contains("transformer.wte.weight") {
            KeyLayout::Prefixed
        } else if names.contains("wte.weight") {
            KeyLayout::Published
        } else {
            let sample: Vec<&str> = names.iter().take(5).copied().collect();
            return Err(Gpt2Error::Layout {
                path: path.to_path_buf(),
                message: format!(
                    "no GPT-2 embedding table: neither `wte.weight` (published layout) nor \
                     `transformer.wte.weight` (save_pretrained layout) is present; the file's \
                     {} tensors start with {sample:?}",
                    names.len()
                ),
            });
        };
        // A block beyond n_layer means the file and config.json disagree.
        let block_prefix = format!("{}h.", layout.prefix());
        let deepest = names
            .iter()
            .filter_map(|n| n.strip_prefix(&block_prefix))
            .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
            .max();
        if let Some(deepest) = deepest
            && deepest >= config.n_layer
        {
            return Err(Gpt2Error::Layout {
                path: path.to_path_buf(),
                message: format!(
                    "the file has blocks up to `{block_prefix}{deepest}` but config.json says \
                     n_layer = {}",
                    config.n_layer
                ),
            });
        }
        Ok(Self { file, path: path.to_path_buf(), config, layout })
    }

    fn load(&self) -> Result<Weights> {
        let c = self.config;
        let (v, e, f) = (c.vocab_size, c.n_embd, c.n_inner);
        let wte = self.matrix("wte.weight", [v, e], false)?;
        let wpe = self.matrix("wpe.weight", [c.n_positions, e], false)?.to_f32();
        let blocks = (0..c.n_layer)
            .map(|i| {
                let p = format!("h.{i}.");
                Ok(Block {
                    ln_1: self.norm(&format!("{p}ln_1"), e)?,
                    c_attn: self.conv1d(&format!("{p}attn.c_attn"), e, 3 * e)?,
                    attn_proj: self.conv1d(&format!("{p}attn.c_proj"), e, e)?,
                    ln_2: self.norm(&format!("{p}ln_2"), e)?,
                    c_fc: self.conv1d(&format!("{p}mlp.c_fc"), e, f)?,
                    mlp_proj: self.conv1d(&format!("{p}mlp.c_proj"), f, e)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let ln_f = self.norm("ln_f", e)?;
        let lm_head = if c.tie_word_embeddings {
            None
        } else {
            // The head sits outside `transformer.` in both layouts.
            Some(self.read("lm_head.weight", &[v, e], "", false).map(|d| d.into_matrix(v, e))?)
        };
        Ok(Weights { wte, wpe, blocks, ln_f, lm_head })
    }

    fn norm(&self, name: &str, n: usize) -> Result<Norm> {
        Ok(Norm {
            weight: self.vector(&format!("{name}.weight"), n)?,
            bias: self.vector(&format!("{name}.bias"), n)?,
        })
    }

    /// A `Conv1D` (`weight` `[n_in, n_out]`), transposed to `[n_out, n_in]`.
    fn conv1d(&self, name: &str, n_in: usize, n_out: usize) -> Result<Linear> {
        Ok(Linear {
            weight: self.matrix(&format!("{name}.weight"), [n_in, n_out], true)?,
            bias: self.vector(&format!("{name}.bias"), n_out)?,
        })
    }

    fn vector(&self, name: &str, n: usize) -> Result<Array1<f32>> {
        let prefix = self.layout.prefix();
        self.read(name, &[n], prefix, false).map(|d| Array1::from_vec(d.into_f32()))
    }

    /// A `[rows, cols]` tensor, as `[cols, rows]` when `transpose`.
    fn matrix(&self, name: &str, [rows, cols]: [usize; 2], transpose: bool) -> Result<Matrix> {
        let prefix = self.layout.prefix();
        let data = self.read(name, &[rows, cols], prefix, transpose)?;
        Ok(if transpose { data.into_matrix(cols, rows) } else { data.into_matrix(rows, cols) })
    }

    /// The tensor `prefix + name`, checked against `shape`, in its file's
    /// precision; with `transpose`, a 2-D tensor comes back in column-major
    /// order (that is, its transpose in row-major order).
    fn read(&self, name: &str, shape: &[usize], prefix: &str, transpose: bool) -> Result<Values> {
        let full = format!("{prefix}{name}");
        let view = self.file.tensor(&full).map_err(|_| Gpt2Error::MissingTensor {
            path: self.path.clone(),
            name: full.clone(),
            hint: if prefix.is_empty() && name == "lm_head.weight" {
                " (config.json sets tie_word_embeddings = false, so the head must be stored)"
                    .to_string()
            } else {
                self.layout.describe().to_string()
            },
        })?;
        if view.shape() != shape {
            return Err(Gpt2Error::TensorShape {
                path: self.path.clone(),
                name: full,
                expected: shape.to_vec(),
                found: view.shape().to_vec(),
            });
        }
        let values = decode(view.dtype(), view.data()).ok_or_else(|| Gpt2Error::TensorDtype {
            path: self.path.clone(),
            name: full,
            dtype: format!("{:?}", view.dtype()),
        })?;
        Ok(if transpose {
            match values {
                Values::F32(v) => Values::F32(transposed(&v, shape[0], shape[1])),
                Values::F16(v) => Values::F16(transposed(&v, shape[0], shape[1])),
                Values::Bf16(v) => Values::Bf16(transposed(&v, shape[0], shape[1])),
            }
        } else {
            values
        })
    }
}

/// A tensor's values in the file's precision.
#[derive(Debug, PartialEq)]
enum Values {
    F32(Vec<f32>),
    F16(Vec<f16>),
    Bf16(Vec<bf16>),
}

impl Values {
    fn into_f32(self) -> Vec<f32> {
        match self {
            Values::F32(v) => v,
            Values::F16(v) => v.into_iter().map(f16::to_f32).collect(),
            Values::Bf16(v) => v.into_iter().map(bf16::to_f32).collect(),
        }
    }

    fn into_matrix(self, rows: usize, cols: usize) -> Matrix {
        fn shaped<T>(data: Vec<T>, rows: usize, cols: usize) -> Array2<T> {
            Array2::from_shape_vec((rows, cols), data)
                .unwrap_or_else(|_| unreachable!("the length was checked against the shape"))
        }
        match self {
            Values::F32(v) => Matrix::F32(shaped(v, rows, cols)),
            Values::F16(v) => Matrix::F16(shaped(v, rows, cols)),
            Values::Bf16(v) => Matrix::Bf16(shaped(v, rows, cols)),
        }
    }
}

/// Row-major `rows × cols` to row-major `cols × rows`.
fn transposed<T: Copy + Default>(values: &[T], rows: usize, cols: usize) -> Vec<T> {
    let mut out = vec![T::default(); values.len()];
    // Blocks keep both sides in cache.
    const B: usize = 32;
    for r0 in (0..rows).step_by(B) {
        for c0 in (0..cols).step_by(B) {
            for r in r0..(r0 + B).min(rows) {
                for c in c0..(c0 + B).min(cols) {
                    out[c * rows + r] = values[r * cols + c];
                }
            }
        }
    }
    out
}

/// Little-endian F32, F16 or BF16 bytes, kept in their precision; `None`
/// for other types.
fn decode(dtype: Dtype, data: &[u8]) -> Option<Values> {
    Some(match dtype {
        Dtype::F32 => Values::F32(
            data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        ),
        Dtype::F16 => {
            Values::F16(data.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]])).collect())
        }
        Dtype::BF16 => {
            Values::Bf16(data.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]])).collect())
        }
        _ => return None,
    })
}

/// A safetensors error in words, saying how short a truncated file is.
fn describe_safetensors_error(error: &SafeTensorError, bytes: &[u8]) -> String {
    let truncated = matches!(
        error,
        SafeTensorError::MetadataIncompleteBuffer
            | SafeTensorError::InvalidHeaderLength
            | SafeTensorError::HeaderTooSmall
    );
    if !truncated {
        return error.to_string();
    }
    let Some(header_len) = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap_or_else(|_| unreachable!("eight bytes"))))
    else {
        return format!("the file is {} bytes, shorter than the 8-byte header size", bytes.len());
    };
    let header_end = 8u64.saturating_add(header_len);
    if header_end > bytes.len() as u64 {
        return format!(
            "truncated: the header alone should take {header_end} bytes, the file has {}",
            bytes.len()
        );
    }
    let data_len = std::str::from_utf8(&bytes[8..header_end as usize])
        .ok()
        .and_then(|h| serde_json::from_str::<serde_json::Value>(h).ok())
        .and_then(|h| {
            h.as_object()?
                .iter()
                .filter(|(k, _)| k.as_str() != "__metadata__")
                .filter_map(|(_, v)| v.get("data_offsets")?.get(1)?.as_u64())
                .max()
        });
    match data_len {
        Some(data_len) if header_end + data_len != bytes.len() as u64 => format!(
            "the header describes {} bytes in all, the file has {}{}",
            header_end + data_len,
            bytes.len(),
            if header_end + data_len > bytes.len() as u64 {
                " (truncated download?)"
            } else {
                " (trailing bytes)"
            }
        ),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transposes_blocks_and_edges() {
        let (rows, cols) = (37, 70);
        let values: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
        let t = transposed(&values, rows, cols);
        for r in 0..rows {
            for c in 0..cols {
                assert_eq!(t[c * rows + r], values[r * cols + c]);
            }
        }
    }

    #[test]
    fn decodes_half_precision_exactly() {
        // 1.0, -2.0, 0.5 in f16 and bf16, little-endian.
        let f16_bytes = [0x00, 0x3c, 0x00, 0xc0, 0x00, 0x38];
        let f32s = |v: Option<Values>| v.map(Values::into_f32);
        assert_eq!(f32s(decode(Dtype::F16, &f16_bytes)), Some(vec![1.0, -2.0, 0.5]));
        assert!(matches!(decode(Dtype::F16, &f16_bytes), Some(Values::F16(_))));
        let bf16_bytes = [0x80, 0x3f, 0x00, 0xc0, 0x00, 0x3f];
        assert_eq!(f32s(decode(Dtype::BF16, &bf16_bytes)), Some(vec![1.0, -2.0, 0.5]));
        assert!(matches!(decode(Dtype::BF16, &bf16_bytes), Some(Values::Bf16(_))));
        assert_eq!(decode(Dtype::F32, &1.5f32.to_le_bytes()), Some(Values::F32(vec![1.5])));
        assert_eq!(decode(Dtype::I64, &[0; 8]), None);
    }
}
