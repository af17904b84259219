//! DRY ("don't repeat yourself") sequence-repetition penalty.

use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Penalizes every token that would extend a repetition of an earlier part
/// of the history, exponentially in the length of the repetition.
///
/// The semantics of llama.cpp's `dry` sampler (from koboldcpp and
/// text-generation-webui), with sequence breakers given as single token
/// ids. Let `w` be the last `penalty_last_n` tokens of the history (prompt
/// and generated; all of it by default) and `r` the number of tokens at
/// the end of `w` after its last sequence breaker (all of `w` when it holds
/// none). For every position `j < |w| - 1`, let `L_j` be the length of the
/// longest common suffix of `w[..=j]` and `w`, capped at `r`; the token
/// `w[j + 1]` followed that repetition the last time. For each token `t`,
/// with `L(t)` the largest `L_j` over the positions followed by `t`:
///
/// ```text
/// if L(t) >= allowed_length and t is not a breaker:
///     e   = min(L(t) - allowed_length, e_max)
///     x_t -> x_t - multiplier · base^e
/// ```
///
/// with `e_max = ⌊88.7228391 / ln base⌋` (the exponent cap llama.cpp uses
/// against overflow, `ln f32::MAX`) when `base > 1.000001`, and no cap
/// otherwise.
///
/// - **Breakers stop a match**: no repetition crosses a breaker, and when
///   the last token is a breaker nothing is penalized. A breaker itself is
///   never penalized.
/// - The penalty is computed in f64 and the result saturates at `f32::MIN`,
///   so a finite score stays finite.
/// - `multiplier = 0` is a no-op. Masked tokens stay masked; no token is
///   revived or removed, and the live set is kept (its sorted mark is
///   cleared).
/// - There is no Hugging Face transformers equivalent.
///
/// # Errors
///
/// [`Dry::new`] rejects a `dry_multiplier` that is NaN, negative or
/// infinite, a `dry_base` that is not finite and `>= 1`, and a
/// `dry_allowed_length` of 0; [`Dry::penalty_last_n`] rejects 0.
/// `process` returns [`Error::TokenOutOfRange`] when a token it would
/// penalize is not below the vocabulary size (a sequence breaker is never
/// penalized, so an out-of-range breaker is no error).
///
/// # Performance
///
/// `O(|w|)`: the match lengths of all positions come from one Z-function
/// pass over the reversed window (no quadratic scan), then the penalized
/// tokens are sorted (they are few) and written. Scratch buffers are reused;
/// no allocation once they have grown.
///
/// # Example
///
/// ```
/// use decoding::processors::Dry;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// // "1 2 3 ... 1 2": the suffix "1 2" repeats (L = 2), so 3 would extend it.
/// let history = [1, 2, 3, 4, 1, 2];
/// let mut row = vec![0.0; 5];
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// Dry::new(0.8, 1.75, 2)?.process(&Context::prompt_only(&history), &mut scores)?;
/// assert_eq!(row, [0.0, 0.0, 0.0, -0.8, 0.0]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Dry {
    multiplier: f32,
    base: f32,
    allowed_length: usize,
    last_n: Option<usize>,
    breakers: Vec<TokenId>,
    reversed: Vec<TokenId>,
    z: Vec<usize>,
    hits: Vec<(TokenId, usize)>,
}

impl Dry {
    /// DRY with llama.cpp's `dry_multiplier`, `dry_base` and
    /// `dry_allowed_length` (its usual values: 0.8, 1.75, 2), over the whole
    /// history and with no sequence breaker.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the parameter out of its domain.
    pub fn new(
        dry_multiplier: f32,
        dry_base: f32,
        dry_allowed_length: usize,
    ) -> Result<Self, Error> {
        if !(dry_multiplier >= 0.0 && dry_multiplier.is_finite()) {
            return Err(Error::invalid("dry_multiplier", "finite and >= 0", dry_multiplier));
        }
        if !(dry_base >= 1.0 && dry_base.is_finite()) {
            return Err(Error::invalid("dry_base", "finite and >= 1", dry_base));
        }
        if dry_allowed_length == 0 {
            return Err(Error::invalid("dry_allowed_length", "at least 1", dry_allowed_length));
        }
        Ok(Dry {
            multiplier: dry_multiplier,
            base: dry_base,
            allowed_length: dry_allowed_length,
            last_n: None,
            breakers: Vec::new(),
            reversed: Vec::new(),
            z: Vec::new(),
            hits: Vec::new(),
        })
    }

    /// Looks only at the last `n` tokens of the history
    /// (`dry_penalty_last_n`; llama.cpp's `-1`, the whole history, is the
    /// default here).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `n == 0` (a DRY that looks at
    /// nothing is a `multiplier` of 0).
    pub fn penalty_last_n(mut self, n: usize) -> Result<Self, Error> {
        if n == 0 {
            return Err(Error::invalid("dry_penalty_last_n", "at least 1", n));
        }
        self.last_n = Some(n);
        Ok(self)
    }

    /// Sets the sequence breakers (`dry_sequence_breakers`), as token ids:
    /// no repetition is matched across one of them.
    pub fn sequence_breakers(mut self, ids: impl IntoIterator<Item = TokenId>) -> Self {
        self.breakers = ids.into_iter().collect();
        self.breakers.sort_unstable();
        self.breakers.dedup();
        self
    }

    fn is_breaker(&self, id: TokenId) -> bool {
        self.breakers.binary_search(&id).is_ok()
    }

    /// Fills `self.hits` with `(token, L)` for every position whose match
    /// reaches `allowed_length`.
    fn collect_hits(&mut self, tokens: &[TokenId]) {
        self.hits.clear();
        let n = tokens.len();
        let window = &tokens[n - self.last_n.unwrap_or(n).min(n)..];
        let w = window.len();
        let limit = window.iter().rev().take_while(|&&t| !self.is_breaker(t)).count();
        if w < 2 || limit < self.allowed_length {
            return;
        }
        // Z-function of the reversed window, capped at `limit`: z[i] is the
        // common prefix of rev and rev[i..], i.e. the common suffix of
        // window[..w - i] and window.
        self.reversed.clear();
        self.reversed.extend(window.iter().rev());
        let rev = &self.reversed;
        self.z.clear();
        self.z.resize(w, 0);
        let (mut left, mut right) = (0usize, 0usize);
        for i in 1..w {
            let mut k = if i < right { self.z[i - left].min(right - i) } else { 0 };
            while i + k < w && k < limit && rev[k] == rev[i + k] {
                k += 1;
            }
            let k = k.min(limit);
            self.z[i] = k;
            if i + k > right {
                left = i;
                right = i + k;
            }
        }
        for i in 1..w {
            let len = self.z[i];
            if len >= self.allowed_length {
                // Position j = w - 1 - i is followed by window[j + 1] = rev[i - 1].
                self.hits.push((rev[i - 1], len));
            }
        }
    }
}

impl LogitsProcessor for Dry {
    crate::processor::clone_boxed!();

    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        if self.multiplier == 0.0 {
            return Ok(());
        }
        self.collect_hits(ctx.tokens());
        if self.hits.is_empty() {
            return Ok(());
        }
        // Largest L per token: sort by token, then by L descending.
        self.hits.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        self.hits.dedup_by_key(|h| h.0);
        // A breaker is never penalized, so it is dropped before the range
        // check: an out-of-range breaker id is harmless.
        let breakers = &self.breakers;
        self.hits.retain(|h| breakers.binary_search(&h.0).is_err());
        let vocab_size = scores.vocab_size();
        if let Some(&(id, _)) = self.hits.iter().find(|h| h.0 as usize >= vocab_size) {
            return Err(Error::TokenOutOfRange { id, vocab_size });
        }
        let (multiplier, base) = (f64::from(self.multiplier), f64::from(self.base));
        // llama.cpp's cap: ln(f32::MAX) / ln(base), in f32, truncated.
        let max_exponent = if self.base > 1.000_001 {
            (88.722_84f32 / self.base.ln()) as usize
        } else {
            usize::MAX
        };
        let values = scores.values_mut();
        for &(id, len) in &self.hits {
            let exponent =
                (len - self.allowed_length).min(max_exponent).min(i32::MAX as usize) as i32;
            let penalty = multiplier * base.powi(exponent);
            let x = &mut values[id as usize];
            if *x > f32::NEG_INFINITY {
                *x = (f64::from(*x) - penalty).max(f64::from(f32::MIN)) as f32;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    fn run(p: &mut Dry, history: &[TokenId], row: &[f32]) -> Vec<f32> {
        let mut out = row.to_vec();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut out, &mut live);
        p.process(&Context::prompt_only(history), &mut scores).unwrap();
        scores.densify();
        out
    }

    fn dry(m: f32, b: f32, a: usize) -> Dry {
        Dry::new(m, b, a).unwrap()
    }

    #[test]
    fn penalty_grows_with_the_length_of_the_repetition() {
        // 1 2 3 4 | 1 2 3: the suffix "1 2 3" matches positions 0..=2
        // (L = 3), followed by 4; no other earlier token is a 3.
        let h = [1, 2, 3, 4, 1, 2, 3];
        let out = run(&mut dry(1.0, 2.0, 2), &h, &[0.0; 6]);
        // 1 · 2^(3 - 2) = 2.
        assert_eq!(out, [0.0, 0.0, 0.0, 0.0, -2.0, 0.0]);
        // allowed_length 4 > 3: nothing.
        assert_eq!(run(&mut dry(1.0, 2.0, 4), &h, &[0.0; 6]), [0.0; 6]);
        // allowed_length 1: 1 · 2^2 = 4.
        assert_eq!(run(&mut dry(1.0, 2.0, 1), &h, &[0.0; 6]), [0.0, 0.0, 0.0, 0.0, -4.0, 0.0]);
    }

    #[test]
    fn each_token_takes_its_longest_match() {
        // 5 1 7 | 9 1 8 | 5 1: suffix "1" matches after 5 1 (L = 2, then 7)
        // and after 9 1 (L = 1, then 8). With allowed_length 1: 7 gets
        // base^1, 8 gets base^0.
        let h = [5, 1, 7, 9, 1, 8, 5, 1];
        let out = run(&mut dry(0.5, 3.0, 1), &h, &[1.0; 10]);
        let mut expected = [1.0f32; 10];
        expected[7] = 1.0 - 1.5;
        expected[8] = 1.0 - 0.5;
        assert_eq!(out, expected);
    }

    #[test]
    fn breakers_stop_the_match() {
        // 1 2 3 | 0 | 1 2 ... with 0 a breaker: "1 2" still matches (L = 2).
        let h = [1, 2, 3, 0, 1, 2];
        let mut p = dry(1.0, 2.0, 2).sequence_breakers([0]);
        assert_eq!(run(&mut p, &h, &[0.0; 4]), [0.0, 0.0, 0.0, -1.0]);
        // 1 2 3 | 1 0 2 ... the suffix after the breaker is "2": L <= 1.
        let h = [1, 2, 3, 1, 0, 2];
        let mut p = dry(1.0, 2.0, 1).sequence_breakers([0]);
        assert_eq!(run(&mut p, &h, &[0.0; 4]), [0.0, 0.0, 0.0, -1.0]);
        let mut p = dry(1.0, 2.0, 2).sequence_breakers([0]);
        assert_eq!(run(&mut p, &h, &[0.0; 4]), [0.0; 4]);
        // The last token is a breaker: nothing.
        let h = [1, 0, 1, 0];
        let mut p = dry(1.0, 2.0, 1).sequence_breakers([0]);
        assert_eq!(run(&mut p, &h, &[0.0; 2]), [0.0; 2]);
    }

    #[test]
    fn a_breaker_is_never_penalized() {
        // 1 2 0 3 | 1 2: token 0 follows "1 2" (L = 2) but is a breaker.
        let h = [1, 2, 0, 3, 1, 2];
        let mut p = dry(1.0, 2.0, 2).sequence_breakers([0]);
        assert_eq!(run(&mut p, &h, &[0.0; 4]), [0.0; 4]);
        let mut p = dry(1.0, 2.0, 2).sequence_breakers([3]);
        assert_eq!(run(&mut p, &h, &[0.0; 4]), [-1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn the_exponent_is_capped_as_in_llama_cpp() {
        // base e^44.4: e_max = ⌊88.72 / 44.4⌋ = 1. A run of 7s gives L = 5
        // for allowed_length 1, so the exponent 4 is capped at 1.
        let base = 44.4f32.exp();
        let out = run(&mut dry(1e-30, base, 1), &[7; 6], &[0.0; 8]);
        let expected = (-1e-30 * f64::from(base)) as f32;
        assert!((out[7] - expected).abs() <= 1e-6 * expected.abs(), "{} vs {expected}", out[7]);
    }

    #[test]
    fn the_window_limits_the_history() {
        // Only the last 4 tokens "4 1 2 ..." hold no earlier "1 2".
        let h = [1, 2, 3, 4, 1, 2];
        let mut p = dry(1.0, 2.0, 2).penalty_last_n(4).unwrap();
        assert_eq!(run(&mut p, &h, &[0.0; 5]), [0.0; 5]);
        let mut p = dry(1.0, 2.0, 2).penalty_last_n(6).unwrap();
        assert_eq!(run(&mut p, &h, &[0.0; 5]), [0.0, 0.0, 0.0, -1.0, 0.0]);
    }

    #[test]
    fn a_run_of_one_token_penalizes_it_by_the_run_length() {
        // 7 7 7 7: position j = 2 matches L = 3 (capped by j + 1), followed by 7.
        let out = run(&mut dry(1.0, 2.0, 2), &[7, 7, 7, 7], &[0.0; 8]);
        let mut expected = [0.0f32; 8];
        expected[7] = -2.0;
        assert_eq!(out, expected);
    }

    #[test]
    fn saturates_and_never_revives() {
        let h = [1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1];
        let out = run(&mut dry(1e30, 1e30, 1), &h, &[0.0, 0.0, NEG]);
        // Only 2 ever follows a "1": it is masked and stays so.
        assert_eq!(out, [0.0, 0.0, NEG]);
        // 2 1 2 1 2: token 1 follows "2 1 2" (L = 3): 1e30 · 1e30^2 saturates.
        let out = run(&mut dry(1e30, 1e30, 1), &[2, 1, 2, 1, 2], &[0.0, -1e38, 0.0]);
        assert!(out[2] == 0.0 && out[1] == f32::MIN, "{out:?}");
        // A masked token stays masked.
        let out = run(&mut dry(1.0, 2.0, 1), &[1, 2, 1], &[0.0, 0.0, NEG]);
        assert_eq!(out, [0.0, 0.0, NEG]);
    }

    #[test]
    fn rejects_bad_parameters_and_out_of_range_tokens() {
        let name = |r: Result<Dry, Error>| match r {
            Err(Error::InvalidParameter { name, .. }) => name,
            _ => "",
        };
        assert_eq!(name(Dry::new(-1.0, 1.75, 2)), "dry_multiplier");
        assert_eq!(name(Dry::new(f32::NAN, 1.75, 2)), "dry_multiplier");
        assert_eq!(name(Dry::new(0.8, 0.5, 2)), "dry_base");
        assert_eq!(name(Dry::new(0.8, f32::INFINITY, 2)), "dry_base");
        assert_eq!(name(Dry::new(0.8, 1.75, 0)), "dry_allowed_length");
        assert_eq!(name(dry(0.8, 1.75, 2).penalty_last_n(0)), "dry_penalty_last_n");
        let mut row = vec![0.0; 3];
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        let history = [1, 9, 1];
        let err = dry(1.0, 2.0, 1).process(&Context::prompt_only(&history), &mut scores);
        assert_eq!(err, Err(Error::TokenOutOfRange { id: 9, vocab_size: 3 }));
    }
}
