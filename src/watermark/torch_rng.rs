//! The random numbers of PyTorch's CPU generator, bit for bit: MT19937
//! seeded as `torch.Generator.manual_seed` seeds it, and the swaps of
//! `torch.randperm`, so that green lists equal transformers' own.

/// MT19937 (Matsumoto and Nishimura 1998), 32-bit outputs, seeded with the
/// low 32 bits of a 64-bit seed by the reference `init_genrand`: what
/// PyTorch's CPU generator does after `manual_seed(seed)`.
#[derive(Clone)]
pub(crate) struct Mt19937 {
    state: [u32; N],
    next: usize,
}

const N: usize = 624;
const M: usize = 397;

impl Mt19937 {
    /// The generator after `manual_seed(seed)`.
    pub(crate) fn new(seed: u64) -> Self {
        let mut state = [0u32; N];
        state[0] = seed as u32;
        for j in 1..N {
            let prev = state[j - 1];
            state[j] = 1_812_433_253u32.wrapping_mul(prev ^ (prev >> 30)).wrapping_add(j as u32);
        }
        Mt19937 { state, next: N }
    }

    fn twist(&mut self) {
        let s = &mut self.state;
        for i in 0..N {
            let y = (s[i] & 0x8000_0000) | (s[(i + 1) % N] & 0x7fff_ffff);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            s[i] = s[(i + M) % N] ^ (y >> 1) ^ mag;
        }
        self.next = 0;
    }

    /// The next 32-bit output (PyTorch's `generator->random()`).
    #[inline]
    pub(crate) fn next_u32(&mut self) -> u32 {
        if self.next == N {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }
}

/// `torch.randperm(n, generator=g)` on the CPU for `n` below
/// `u32::MAX / 20`: the identity, then for `i` in `0..n - 1` a swap of
/// positions `i` and `i + random() % (n - i)`. Position `i` is final after
/// step `i`, so the first `len` entries need only `len` steps.
///
/// Writes the first `len.min(n)` entries of the permutation into `out`,
/// using `scratch` (left as the identity of `0..n`, its length `n`).
pub(crate) fn randperm_prefix(
    rng: &mut Mt19937,
    n: usize,
    len: usize,
    scratch: &mut Vec<u32>,
    out: &mut Vec<u32>,
) {
    if scratch.len() != n {
        scratch.clear();
        scratch.extend(0..n as u32);
    }
    out.clear();
    let steps = len.min(n.saturating_sub(1));
    for i in 0..steps {
        let z = (rng.next_u32() as usize) % (n - i);
        scratch.swap(i, i + z);
        out.push(i as u32 + z as u32);
    }
    // The last position is final without a draw.
    let last = (len >= n && n > 0).then(|| scratch[n - 1]);
    // `out` holds the swap targets: in reverse, read each final entry
    // (steps after it are undone, so position `i` holds what step `i` put
    // there) and undo its swap, leaving `scratch` the identity again.
    for i in (0..steps).rev() {
        let j = out[i] as usize;
        out[i] = scratch[i];
        scratch.swap(i, j);
    }
    out.extend(last);
}

/// Whether `token` lands in the first `len` positions of
/// `torch.randperm(n)` drawn from `rng`: the same swaps as
/// [`randperm_prefix`], following only `token`'s position (no memory).
pub(crate) fn in_randperm_prefix(rng: &mut Mt19937, n: usize, len: usize, token: usize) -> bool {
    if token >= n {
        return false;
    }
    let mut position = token;
    let steps = len.min(n.saturating_sub(1));
    for i in 0..steps {
        let z = (rng.next_u32() as usize) % (n - i);
        if position == i {
            if z == 0 {
                return true;
            }
            position = i + z;
        } else if position == i + z {
            return true;
        }
    }
    // Only `len >= n` reaches the last position, which is final.
    len >= n && position == n - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mt19937_matches_the_reference_outputs() {
        // Matsumoto and Nishimura's init_genrand(5489): the first outputs
        // and the 10000th (C++ std::mt19937's required value).
        let mut rng = Mt19937::new(5489);
        assert_eq!(
            [rng.next_u32(), rng.next_u32(), rng.next_u32()],
            [3_499_211_612, 581_869_302, 3_890_346_734]
        );
        let mut rng = Mt19937::new(5489);
        let last = (0..10_000).map(|_| rng.next_u32()).last();
        assert_eq!(last, Some(4_123_659_995));
        // Only the seed's low 32 bits count.
        assert_eq!(Mt19937::new(5489 + (7 << 32)).next_u32(), 3_499_211_612);
    }

    #[test]
    fn the_prefix_is_a_permutation_prefix_and_membership_agrees() {
        let (mut scratch, mut out) = (Vec::new(), Vec::new());
        for (n, len) in [(1, 1), (2, 1), (2, 2), (10, 3), (10, 10), (97, 24), (500, 499)] {
            for seed in 0..20 {
                randperm_prefix(&mut Mt19937::new(seed), n, len, &mut scratch, &mut out);
                assert_eq!(out.len(), len.min(n));
                assert!(scratch.iter().enumerate().all(|(i, &v)| v as usize == i));
                let mut seen = vec![false; n];
                for &v in &out {
                    assert!(!seen[v as usize], "repeated {v}");
                    seen[v as usize] = true;
                }
                for (token, &green) in seen.iter().enumerate() {
                    let inside = in_randperm_prefix(&mut Mt19937::new(seed), n, len, token);
                    assert_eq!(inside, green, "n {n}, len {len}, seed {seed}, token {token}");
                }
                assert!(!in_randperm_prefix(&mut Mt19937::new(seed), n, len, n));
            }
        }
    }
}
