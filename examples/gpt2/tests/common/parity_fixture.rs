//! The parity fixtures written by `scripts/make_parity_fixtures.py`
//! (`tests/data/parity.json` and `parity_logits.safetensors`), read the same
//! way by every test that replays them. Included with
//! `#[path = "common/parity_fixture.rs"] mod parity_fixture;`.

// Each including test reads a part of the fixture.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use safetensors::SafeTensors;
use serde::Deserialize;

/// `tests/data`: the fixtures and the tiny models.
pub fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

#[derive(Deserialize)]
pub struct Fixture {
    pub tiny_gpt2: Tiny,
    pub tiny_gpt2_saved: Saved,
}

/// The cases of `tiny-gpt2`, the published key layout.
#[derive(Deserialize)]
pub struct Tiny {
    pub cases: Vec<Case>,
}

#[derive(Deserialize)]
pub struct Case {
    pub prompt: String,
    pub prompt_ids: Vec<u32>,
    pub greedy_ids: Vec<u32>,
    pub greedy_top_logits: Vec<f32>,
}

/// The one case of `tiny-gpt2-saved`, the `save_pretrained` layout.
#[derive(Deserialize)]
pub struct Saved {
    pub prompt_ids: Vec<u32>,
    pub last_logits: Vec<f32>,
    pub greedy_ids: Vec<u32>,
}

pub fn fixture() -> Fixture {
    let text = std::fs::read_to_string(data().join("parity.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// transformers' last-position logits for case `i` of `tiny-gpt2`.
pub fn expected_logits(i: usize) -> Vec<f32> {
    let bytes = std::fs::read(data().join("parity_logits.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let view = file.tensor(&format!("logits.{i}")).unwrap();
    view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

/// The largest `|a[i] - b[i]|`.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}
