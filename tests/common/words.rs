//! `Words`: a random source that returns fixed 64-bit words, cycling, and
//! counts the calls of each kind. It is how the tests reach the edges of the
//! samplers' uniform draw: the word `0` gives u = 0 and `u64::MAX` gives
//! u = 1 - 2^-53.
//!
//! Included with `#[path = ".../common/words.rs"] mod words;` by the
//! adversarial tests and the robustness harness (and so by the fuzz targets).

/// A random source that returns fixed 64-bit words (cycling) and counts the
/// calls.
#[derive(Debug, Clone, Default)]
pub struct Words {
    pub words: Vec<u64>,
    pub next: usize,
    pub u32_calls: usize,
    pub u64_calls: usize,
    pub fill_calls: usize,
}

impl Words {
    /// Cycles through `words`, which must not be empty.
    pub fn new(words: &[u64]) -> Self {
        assert!(!words.is_empty(), "Words needs at least one word");
        Words { words: words.to_vec(), ..Words::default() }
    }

    fn word(&mut self) -> u64 {
        let w = self.words[self.next % self.words.len()];
        self.next += 1;
        w
    }
}

impl rand::TryRng for Words {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        self.u32_calls += 1;
        Ok((self.word() >> 32) as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.u64_calls += 1;
        Ok(self.word())
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        self.fill_calls += 1;
        for chunk in dst.chunks_mut(8) {
            let w = self.word().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
        Ok(())
    }
}
