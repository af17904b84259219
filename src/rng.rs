//! The portable random number generator and the uniform draw built on it.

use rand::{Rng, SeedableRng};

/// The random number generator the crate seeds: ChaCha with 8 rounds
/// (`rand::rngs::ChaCha8Rng`, from the `chacha20` crate).
///
/// Its output for a given seed is fixed by the ChaCha specification and the
/// `rand_core` seed expansion, so the same seed gives the same tokens on
/// every platform and in every build. (`rand::rngs::StdRng` makes no such
/// promise.)
pub type DecodingRng = rand::rngs::ChaCha8Rng;

/// A [`DecodingRng`] from a 64-bit seed (all 64 bits matter).
///
/// The seed is expanded to ChaCha's 256-bit key with `rand_core`'s
/// `SeedableRng::seed_from_u64`, a documented, portable PCG32-based
/// expansion.
///
/// ```
/// use decoding::rng_from_seed;
/// use rand::Rng;
///
/// let (mut a, mut b) = (rng_from_seed(7), rng_from_seed(7));
/// assert_eq!(a.next_u64(), b.next_u64());
/// ```
pub fn rng_from_seed(seed: u64) -> DecodingRng {
    DecodingRng::seed_from_u64(seed)
}

/// A fresh seed from the operating system's random source (`getrandom`,
/// through `rand::rngs::SysRng`): what a run uses when its options give no
/// seed, so two unseeded runs differ. The run reports it
/// ([`Generation::seed`](crate::Generation::seed)), so passing it back as
/// the seed replays the run exactly.
///
/// Should the operating system refuse (it practically never does), the
/// seed comes from the standard library's per-process random hash keys
/// mixed with the clock: still different from run to run, never a panic.
///
/// ```
/// use decoding::fresh_seed;
///
/// assert_ne!(fresh_seed(), fresh_seed()); // 64 random bits each
/// ```
pub fn fresh_seed() -> u64 {
    use rand::TryRng;
    rand::rngs::SysRng.try_next_u64().unwrap_or_else(|_| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        h.write_u128(now.map_or(0, |d| d.as_nanos()));
        h.finish()
    })
}

/// A uniform draw in `[0, 1)`: the top 53 bits of one `next_u64`, times
/// `2^-53`. Every value is a multiple of `2^-53`; the largest is
/// `1 - 2^-53`. Samplers use exactly one such draw per token.
pub fn unit_f64(rng: &mut dyn Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}
