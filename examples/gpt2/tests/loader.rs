//! Loading model directories: both key layouts, f32/f16/bf16, untied
//! heads, and clear errors for wrong or truncated files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use decoding::LanguageModel;
use gpt2::{Config, Gpt2, Gpt2Error};
use half::{bf16, f16};
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

fn saved_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-gpt2-saved")
}

#[path = "common/temp_dir.rs"]
mod temp_dir;

use temp_dir::TempDir;

/// A tensor as f32 values with its shape.
#[derive(Clone)]
struct Tensor {
    shape: Vec<usize>,
    values: Vec<f32>,
}

/// The save_pretrained fixture's tensors, by name.
fn saved_tensors() -> BTreeMap<String, Tensor> {
    let bytes = std::fs::read(saved_dir().join("model.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.iter()
        .map(|(name, view)| {
            assert_eq!(view.dtype(), Dtype::F32);
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            (name.to_string(), Tensor { shape: view.shape().to_vec(), values })
        })
        .collect()
}

fn saved_config() -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(saved_dir().join("config.json")).unwrap())
        .unwrap()
}

/// Writes `config.json` and `model.safetensors` (in `dtype`) into `dir`.
fn write_model(
    dir: &Path,
    config: &serde_json::Value,
    tensors: &BTreeMap<String, Tensor>,
    dtype: Dtype,
) {
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    let encoded: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, t)| {
            let bytes: Vec<u8> = match dtype {
                Dtype::F32 => t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                Dtype::F16 => {
                    t.values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect()
                }
                Dtype::BF16 => {
                    t.values.iter().flat_map(|&v| bf16::from_f32(v).to_le_bytes()).collect()
                }
                Dtype::I32 => t.values.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect(),
                other => panic!("{other:?}"),
            };
            (name.clone(), bytes, t.shape.clone())
        })
        .collect();
    let views: Vec<(String, TensorView<'_>)> = encoded
        .iter()
        .map(|(name, bytes, shape)| {
            (name.clone(), TensorView::new(dtype, shape.clone(), bytes).unwrap())
        })
        .collect();
    let meta = Some(std::collections::HashMap::from([("format".to_string(), "pt".to_string())]));
    safetensors::serialize_to_file(views, meta, &dir.join("model.safetensors")).unwrap();
}

/// The published layout: no `transformer.` prefix, a mask buffer per block.
fn published(
    tensors: &BTreeMap<String, Tensor>,
    n_layer: usize,
    n_positions: usize,
) -> BTreeMap<String, Tensor> {
    let mut out: BTreeMap<String, Tensor> = tensors
        .iter()
        .map(|(k, v)| (k.strip_prefix("transformer.").unwrap().to_string(), v.clone()))
        .collect();
    for layer in 0..n_layer {
        let mut mask = vec![0.0; n_positions * n_positions];
        for i in 0..n_positions {
            for j in 0..=i {
                mask[i * n_positions + j] = 1.0;
            }
        }
        out.insert(
            format!("h.{layer}.attn.bias"),
            Tensor { shape: vec![1, 1, n_positions, n_positions], values: mask },
        );
    }
    out
}

fn logits_of(dir: &Path, prompt: &[u32]) -> Result<Vec<f32>, Gpt2Error> {
    let mut model = Gpt2::from_dir(dir)?;
    let mut logits = vec![0.0; model.vocab_size()];
    model.forward(prompt, 0, &mut logits)?;
    Ok(logits)
}

const PROMPT: [u32; 5] = [5, 17, 999, 0, 123];

#[test]
fn both_layouts_and_all_float_types_load_to_the_same_model() {
    let reference = logits_of(&saved_dir(), &PROMPT).unwrap();
    let tensors = saved_tensors();
    let config = saved_config();

    let dir = TempDir::new("published");
    write_model(&dir.0, &config, &published(&tensors, 3, 40), Dtype::F32);
    assert_eq!(logits_of(&dir.0, &PROMPT).unwrap(), reference);

    // Half precision: the same model up to the rounding of the weights.
    for (dtype, tolerance) in [(Dtype::F16, 0.02), (Dtype::BF16, 0.2)] {
        let dir = TempDir::new(&format!("{dtype:?}"));
        write_model(&dir.0, &config, &tensors, dtype);
        let logits = logits_of(&dir.0, &PROMPT).unwrap();
        let diff = logits.iter().zip(&reference).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(diff > 0.0 && diff < tolerance, "{dtype:?}: {diff}");
    }
}

#[test]
fn an_untied_head_is_read_from_lm_head_weight() {
    let reference = logits_of(&saved_dir(), &PROMPT).unwrap();
    let mut tensors = saved_tensors();
    let mut config = saved_config();
    config["tie_word_embeddings"] = false.into();

    let dir = TempDir::new("untied-missing");
    write_model(&dir.0, &config, &tensors, Dtype::F32);
    let err = logits_of(&dir.0, &PROMPT).unwrap_err();
    assert!(
        matches!(&err, Gpt2Error::MissingTensor { name, .. } if name == "lm_head.weight"),
        "{err}"
    );
    assert!(err.to_string().contains("tie_word_embeddings"), "{err}");

    // A head of twice the embeddings gives exactly twice the logits.
    let mut head = tensors["transformer.wte.weight"].clone();
    head.values.iter_mut().for_each(|v| *v *= 2.0);
    tensors.insert("lm_head.weight".into(), head);
    let dir = TempDir::new("untied");
    write_model(&dir.0, &config, &tensors, Dtype::F32);
    let logits = logits_of(&dir.0, &PROMPT).unwrap();
    let doubled: Vec<f32> = reference.iter().map(|v| v * 2.0).collect();
    assert_eq!(logits, doubled);
}

fn load_error(
    config: &serde_json::Value,
    tensors: &BTreeMap<String, Tensor>,
    dtype: Dtype,
) -> String {
    let dir = TempDir::new("error");
    write_model(&dir.0, config, tensors, dtype);
    match Gpt2::from_dir(&dir.0) {
        Ok(_) => panic!("loaded"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_missing_tensor_is_named() {
    let config = saved_config();
    let mut tensors = saved_tensors();
    tensors.remove("transformer.h.1.mlp.c_fc.bias");
    let err = load_error(&config, &tensors, Dtype::F32);
    assert!(err.contains("`transformer.h.1.mlp.c_fc.bias` is missing"), "{err}");
    assert!(err.contains("model.safetensors"), "{err}");

    let mut tensors = published(&saved_tensors(), 3, 40);
    tensors.remove("ln_f.weight");
    let err = load_error(&config, &tensors, Dtype::F32);
    assert!(err.contains("`ln_f.weight` is missing") && err.contains("published layout"), "{err}");
}

#[test]
fn files_that_disagree_with_the_config_are_errors() {
    let tensors = saved_tensors();
    let mut config = saved_config();
    config["n_inner"] = 48.into();
    let err = load_error(&config, &tensors, Dtype::F32);
    assert!(err.contains("`transformer.h.0.mlp.c_fc.weight` has shape [24, 40]"), "{err}");
    assert!(err.contains("[24, 48]"), "{err}");

    let mut config = saved_config();
    config["n_layer"] = 2.into();
    let err = load_error(&config, &tensors, Dtype::F32);
    assert!(err.contains("transformer.h.2") && err.contains("n_layer = 2"), "{err}");

    let mut config = saved_config();
    config["n_layer"] = 4.into();
    let err = load_error(&config, &tensors, Dtype::F32);
    assert!(err.contains("`transformer.h.3.ln_1.weight` is missing"), "{err}");

    let config = saved_config();
    let err = load_error(&config, &tensors, Dtype::I32);
    assert!(err.contains("is I32; only F32, F16 and BF16"), "{err}");

    let renamed: BTreeMap<String, Tensor> =
        tensors.iter().map(|(k, v)| (k.replace("transformer.", "model."), v.clone())).collect();
    let err = load_error(&config, &renamed, Dtype::F32);
    assert!(err.contains("no GPT-2 embedding table") && err.contains("model."), "{err}");
}

#[test]
fn a_truncated_or_foreign_file_is_a_clear_error() {
    let bytes = std::fs::read(saved_dir().join("model.safetensors")).unwrap();
    let dir = TempDir::new("truncated");
    std::fs::copy(saved_dir().join("config.json"), dir.0.join("config.json")).unwrap();
    for keep in [bytes.len() - 1, bytes.len() / 2, 100, 5, 0] {
        std::fs::write(dir.0.join("model.safetensors"), &bytes[..keep]).unwrap();
        let err = Gpt2::from_dir(&dir.0).unwrap_err();
        assert!(matches!(err, Gpt2Error::Safetensors { .. }), "{keep}: {err}");
        let text = err.to_string();
        assert!(
            text.contains("model.safetensors") && text.contains(&keep.to_string()),
            "{keep}: {text}"
        );
        if keep > 100 {
            assert!(text.contains(&format!("describes {} bytes", bytes.len())), "{text}");
            assert!(text.contains("truncated"), "{text}");
        }
    }
    std::fs::write(dir.0.join("model.safetensors"), b"PK\x03\x04 a zip file, not safetensors")
        .unwrap();
    let err = Gpt2::from_dir(&dir.0).unwrap_err();
    assert!(matches!(err, Gpt2Error::Safetensors { .. }), "{err}");

    std::fs::remove_file(dir.0.join("model.safetensors")).unwrap();
    let err = Gpt2::from_dir(&dir.0).unwrap_err();
    assert!(
        matches!(&err, Gpt2Error::Io { path, .. } if path.ends_with("model.safetensors")),
        "{err}"
    );
    std::fs::remove_file(dir.0.join("config.json")).unwrap();
    let err = Gpt2::from_dir(&dir.0).unwrap_err();
    assert!(matches!(&err, Gpt2Error::Io { path, .. } if path.ends_with("config.json")), "{err}");
}

#[test]
fn forward_rejects_bad_calls_without_touching_the_cache() {
    let mut model = Gpt2::from_dir(&saved_dir()).unwrap();
    let n_positions = model.config().n_positions;
    let mut logits = vec![0.0; 1000];
    assert!(matches!(model.forward(&[], 0, &mut logits), Err(Gpt2Error::EmptyInput)));
    assert!(matches!(
        model.forward(&[1000], 0, &mut logits),
        Err(Gpt2Error::TokenOutOfRange { token: 1000, vocab: 1000 })
    ));
    assert!(matches!(
        model.forward(&[1], 0, &mut [0.0; 999]),
        Err(Gpt2Error::LogitsLength { expected: 1000, found: 999 })
    ));
    let long = vec![7; n_positions];
    assert!(matches!(
        model.forward(&[1], 3, &mut logits),
        Err(Gpt2Error::PositionMismatch { position: 3, cached: 0 })
    ));
    model.forward(&long, 0, &mut logits).unwrap();
    let full = logits.clone();
    assert!(matches!(
        model.forward(&[7], n_positions, &mut logits),
        Err(Gpt2Error::ContextOverflow { needed: 41, max: 40 })
    ));
    assert_eq!(model.position(), n_positions);
    model.reset().unwrap();
    assert_eq!(model.position(), 0);
    model.forward(&long, 0, &mut logits).unwrap();
    assert_eq!(logits, full);
}

#[test]
fn configs_are_checked_against_weights() {
    let config = Config::from_file(&saved_dir().join("config.json")).unwrap();
    let weights =
        gpt2::Weights::from_file(&saved_dir().join("model.safetensors"), &config).unwrap();
    let mut other = config.clone();
    other.n_positions = 41;
    assert!(matches!(Gpt2::new(other, weights.clone()), Err(Gpt2Error::Config { .. })));
    assert!(Gpt2::new(config, weights).is_ok());
}
