//! The benchmark data, shared by every benchmark (and by the peer
//! comparison in `benches/peers`): deterministic, portable, std only.

// Each benchmark uses its own part of it.
#![allow(dead_code)]

/// SplitMix64: a tiny portable generator.
pub struct SplitMix(pub u64);

impl SplitMix {
    /// The next 64 bits.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1).
    pub fn unit(&mut self) -> f64 {
        ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
}

/// Logits like a language model's, one row per vocabulary size (seeded by
/// `v`): i.i.d. N(0, σ = 3) by Box–Muller plus eight peaks (+14, +13,
/// +12.5, ... +10) at pseudo-random positions.
pub fn logits(v: usize) -> Vec<f32> {
    let mut g = SplitMix(v as u64);
    let mut row: Vec<f32> = (0..v)
        .map(|_| {
            let (a, b) = (g.unit(), g.unit());
            (3.0 * (-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()) as f32
        })
        .collect();
    for peak in [14.0, 13.0, 12.5, 12.0, 11.5, 11.0, 10.5, 10.0] {
        let at = (g.next() % v as u64) as usize;
        row[at] = peak;
    }
    row
}

/// A history of `n` token ids spread over a vocabulary of `v`.
pub fn history(v: usize, n: usize) -> Vec<u32> {
    let mut g = SplitMix(7);
    (0..n).map(|_| (g.next() % v as u64) as u32).collect()
}

/// Flat logits: i.i.d. N(0, 1), so that top-p 0.9 keeps about 61% of the
/// vocabulary (seeded by `v`).
pub fn flat(v: usize) -> Vec<f32> {
    let mut g = SplitMix(v as u64 ^ 0xF1A7);
    (0..v)
        .map(|_| {
            let (a, b) = (g.unit(), g.unit());
            ((-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()) as f32
        })
        .collect()
}

/// `row` with a pseudo-random `fraction` of its entries set to `mask`
/// (`-inf` for a grammar mask or a padded vocabulary, or a finite value
/// such as `-60`); the maximum is never masked.
pub fn masked(row: &[f32], fraction: f64, mask: f32) -> Vec<f32> {
    let mut g = SplitMix(0x3A5C ^ (fraction * 1000.0) as u64);
    let top = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    row.iter().map(|&x| if x < top && g.unit() < fraction { mask } else { x }).collect()
}

/// `row` sorted ascending (`true`) or descending: the orders that defeat a
/// running threshold, or make it trivial.
pub fn sorted(row: &[f32], ascending: bool) -> Vec<f32> {
    let mut out = row.to_vec();
    out.sort_by(|a, b| if ascending { a.total_cmp(b) } else { b.total_cmp(a) });
    out
}
