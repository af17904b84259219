//! The fixture helpers shared by `tests/hf_parity.rs` and `tests/config.rs`:
//! the portable row generator of `tests/data/hf_parity/README.md` (the same
//! one `scripts/hf_fixtures.py` and `scripts/hf_config_fixtures.py` use),
//! the checksum of a row, the JSON readers of the fixtures, and the
//! decoding of an expected row with its tolerance.
//!
//! Included by each test crate with `#[path = "common/fixtures.rs"] mod fixtures;`.

// Each including crate uses a part of the helpers.
#![allow(dead_code)]

use decoding::TokenId;
use serde_json::Value;

/// Relative tolerance on a processed value.
pub const REL_TOL: f32 = 1e-5;
/// Absolute tolerance near zero.
pub const ABS_TOL: f32 = 1e-6;

// ---------------------------------------------------------------------------
// The portable row generator (mirrors scripts/hf_fixtures.py exactly).
// ---------------------------------------------------------------------------

pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`: the top 53 bits times `2^-53`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }

    /// Irwin-Hall: twelve uniforms added left to right, minus 6.
    pub fn normal(&mut self) -> f64 {
        let mut s = self.unit();
        for _ in 1..12 {
            s += self.unit();
        }
        s - 6.0
    }
}

pub const TIE_LEVELS: [f32; 5] = [-2.0, -0.5, 0.0, 1.0, 2.5];
pub const SPIKES: [f32; 4] = [12.0, 9.5, 7.0, 4.5];

pub fn make_row(seed: u64, shape: &str, vocab: usize) -> Result<Vec<f32>, String> {
    let mut rng = SplitMix64::new(seed);
    let row = match shape {
        "normal" => (0..vocab).map(|_| (3.0 * rng.normal()) as f32).collect(),
        "wide" => (0..vocab).map(|_| (30.0 * rng.normal()) as f32).collect(),
        "nearflat" => (0..vocab).map(|_| (1.0 + 0.001 * rng.normal()) as f32).collect(),
        "peaked" => {
            let mut row: Vec<f32> = (0..vocab).map(|_| rng.normal() as f32).collect();
            for height in SPIKES {
                let idx = (rng.next_u64() % vocab as u64) as usize;
                row[idx] = height;
            }
            row
        }
        "flat" => vec![1.5; vocab],
        "ties" => (0..vocab)
            .map(|_| TIE_LEVELS[(rng.next_u64() % TIE_LEVELS.len() as u64) as usize])
            .collect(),
        "half_inf" => {
            let mut row: Vec<f32> = (0..vocab)
                .map(|_| {
                    let x = (3.0 * rng.normal()) as f32;
                    if rng.next_u64() >> 63 == 1 { f32::NEG_INFINITY } else { x }
                })
                .collect();
            if row.iter().all(|x| x.is_infinite()) {
                row[0] = 0.0;
            }
            row
        }
        other => return Err(format!("unknown input shape {other:?}")),
    };
    Ok(row)
}

/// FNV-1a 64 over the u32 bit patterns of the row, one entry at a time.
pub fn fnv1a(row: &[f32]) -> u64 {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for x in row {
        h = (h ^ u64::from(x.to_bits())).wrapping_mul(0x0000_0100_0000_01B3);
    }
    h
}

// ---------------------------------------------------------------------------
// Small JSON helpers.
// ---------------------------------------------------------------------------

pub fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("missing field {key:?}"))
}

pub fn as_f32(v: &Value, key: &str) -> Result<f32, String> {
    field(v, key)?.as_f64().map(|x| x as f32).ok_or_else(|| format!("{key:?} is not a number"))
}

pub fn as_usize(v: &Value, key: &str) -> Result<usize, String> {
    field(v, key)?
        .as_u64()
        .map(|x| x as usize)
        .ok_or_else(|| format!("{key:?} is not an unsigned integer"))
}

pub fn ids_of(v: &Value) -> Result<Vec<TokenId>, String> {
    v.as_array()
        .ok_or("expected an array of token ids")?
        .iter()
        .map(|x| x.as_u64().map(|x| x as TokenId).ok_or_else(|| "bad token id".to_string()))
        .collect()
}

pub fn ids(v: &Value, key: &str) -> Result<Vec<TokenId>, String> {
    ids_of(field(v, key)?)
}

pub fn f32_from_hex(s: &str) -> Result<f32, String> {
    u32::from_str_radix(s, 16).map(f32::from_bits).map_err(|e| format!("bad f32 bits {s:?}: {e}"))
}

pub fn base64_decode(s: &str) -> Result<Vec<u8>, String> {
    fn sextet(c: u8) -> Result<u32, String> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("bad base64 character {:?}", c as char)),
        } as u32)
    }
    let bytes = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= sextet(c)? << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Ok(out)
}

/// Ids from a sorted list or a little-endian bitmap (bit `i` of byte `i / 8`).
pub fn id_set(mask: &Value, key: &str, vocab: usize) -> Result<Option<Vec<bool>>, String> {
    if let Some(list) = mask.get(key) {
        let mut set = vec![false; vocab];
        for id in ids_of(list)? {
            *set.get_mut(id as usize).ok_or("id beyond the vocabulary")? = true;
        }
        return Ok(Some(set));
    }
    if let Some(b64) = mask.get(format!("{key}_bitmap")) {
        let bytes = base64_decode(b64.as_str().ok_or("bitmap is not a string")?)?;
        if bytes.len() != vocab.div_ceil(8) {
            return Err(format!("bitmap has {} bytes for {vocab} ids", bytes.len()));
        }
        return Ok(Some((0..vocab).map(|i| bytes[i / 8] >> (i % 8) & 1 == 1).collect()));
    }
    Ok(None)
}

/// The expected processed row, decoded from the fixture.
pub fn expected_row(input: &[f32], expected: &Value) -> Result<Vec<f32>, String> {
    let vocab = input.len();
    let mask = field(expected, "mask")?;
    let finite_in: Vec<bool> = input.iter().map(|x| x.is_finite()).collect();
    let finite = if let Some(kept) = id_set(mask, "kept", vocab)? {
        kept
    } else if let Some(removed) = id_set(mask, "removed", vocab)? {
        finite_in.iter().zip(&removed).map(|(&f, &r)| f && !r).collect()
    } else {
        return Err("mask has neither kept nor removed ids".into());
    };
    let mut out = input.to_vec();
    for op in field(expected, "ops")?.as_array().ok_or("ops is not an array")? {
        let kind = op.get(0).and_then(Value::as_str).ok_or("bad op")?;
        let c = f32_from_hex(op.get(1).and_then(Value::as_str).ok_or("bad op constant")?)?;
        for x in out.iter_mut() {
            *x = match kind {
                "div" => *x / c,
                "sub" => *x - c,
                _ => return Err(format!("unknown value op {kind:?}")),
            };
        }
    }
    for (x, &f) in out.iter_mut().zip(&finite) {
        if !f {
            *x = f32::NEG_INFINITY;
        }
    }
    for exc in field(expected, "exceptions")?.as_array().ok_or("exceptions is not an array")? {
        let i = exc.get(0).and_then(Value::as_u64).ok_or("bad exception index")? as usize;
        let v = f32_from_hex(exc.get(1).and_then(Value::as_str).ok_or("bad exception value")?)?;
        *out.get_mut(i).ok_or("exception index beyond the vocabulary")? = v;
    }
    let count = out.iter().filter(|x| x.is_finite()).count();
    if count != as_usize(expected, "finite")? {
        return Err(format!(
            "decoded {count} finite entries, the fixture says {}",
            expected["finite"]
        ));
    }
    Ok(out)
}

/// Whether `got` is within the tolerance of `expected`.
pub fn close(expected: f32, got: f32) -> bool {
    let diff = (expected - got).abs();
    diff <= REL_TOL * expected.abs() || diff <= ABS_TOL
}
