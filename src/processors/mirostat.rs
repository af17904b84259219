//! Mirostat 2.0: truncation steered towards a target surprise.

use crate::math::Softmax;
use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// Mirostat version 2 (Basu et al. 2021): keeps the tokens whose surprise
/// `-log2 p` is at most `μ`, and moves `μ` after every chosen token so that
/// the observed surprise tracks the target `τ`.
///
/// The semantics of llama.cpp's `mirostat_v2` sampler, split into a
/// processor and whatever sampler follows it. With `p_i` the softmax of the
/// live scores (`exp(x - max)` in f32, sums and logarithms in f64):
///
/// ```text
/// start:   μ = 2τ                                  (and after reset())
/// process: keep i iff -log2 p_i <= μ               (at least the top token)
/// sample:  the sampler draws from the kept tokens, renormalized
/// accept:  s = -log2 q_token,  q = p restricted to the kept set, renormalized
///          μ <- μ - η · (s - τ)
/// ```
///
/// - **At least one token** is kept: when every token's surprise exceeds
///   `μ` (μ can fall below `-log2 p_max`, even below 0), the highest live
///   score is kept alone (the lowest id among ties).
/// - The processor remembers the kept set and its renormalized
///   distribution from its last `process`, so [`LogitsProcessor::accept`]
///   can compute the surprise of the chosen token. It should therefore be
///   the **last processor** before the sampler: a processor after it would
///   change the distribution the sampler draws from but not the one the
///   surprise is measured on.
/// - `accept` of a token outside the remembered set (or before any
///   `process`) leaves `μ` unchanged; each remembered step is used at most
///   once.
/// - [`LogitsProcessor::reset`] restores `μ = 2τ` and forgets the step.
/// - Masked tokens are never revived; a row with no finite live score is
///   left as it is.
/// - There is no Hugging Face transformers equivalent.
///
/// # Errors
///
/// [`MirostatV2::new`] rejects a `mirostat_tau` or `mirostat_eta` that is
/// NaN, negative or infinite.
///
/// # Performance
///
/// No sort: a maximum pass, a normalizer pass, one pass that keeps the
/// survivors and records their weights. The record is a buffer reused from
/// step to step; `accept` scans it (the kept set is small by design).
///
/// # Example
///
/// ```
/// use decoding::processors::MirostatV2;
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// // μ starts at 2τ = 2 bits: tokens with p >= 1/4 survive.
/// let mut p = MirostatV2::new(1.0, 0.1)?;
/// let mut row: Vec<f32> = [0.5f32, 0.3, 0.15, 0.05].iter().map(|p| p.ln()).collect();
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// p.process(&Context::empty(), &mut scores)?;
/// assert_eq!(scores.live_ids(), Some(&[0, 1][..]));
/// // Token 0 had q = 0.5 / 0.8 in the kept set: s = 0.678 bits.
/// p.accept(0);
/// assert!((p.mu() - (2.0 - 0.1 * ((0.8f32 / 0.5).log2() - 1.0))).abs() < 1e-5);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct MirostatV2 {
    tau: f32,
    eta: f32,
    mu: f32,
    /// The kept tokens of the last step and their weights `exp(x - max)`.
    kept: Vec<(TokenId, f64)>,
    /// `Σ` of the kept weights (0 when no step is remembered).
    kept_sum: f64,
}

impl MirostatV2 {
    /// Mirostat 2.0 with target surprise `mirostat_tau` (bits) and learning
    /// rate `mirostat_eta` (llama.cpp's defaults: 5.0 and 0.1).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the parameter that is NaN,
    /// negative or infinite.
    pub fn new(mirostat_tau: f32, mirostat_eta: f32) -> Result<Self, Error> {
        if !(mirostat_tau >= 0.0 && mirostat_tau.is_finite()) {
            return Err(Error::invalid("mirostat_tau", "finite and >= 0", mirostat_tau));
        }
        if !(mirostat_eta >= 0.0 && mirostat_eta.is_finite()) {
            return Err(Error::invalid("mirostat_eta", "finite and >= 0", mirostat_eta));
        }
        Ok(MirostatV2 {
            tau: mirostat_tau,
            eta: mirostat_eta,
            mu: 2.0 * mirostat_tau,
            kept: Vec::new(),
            kept_sum: 0.0,
        })
    }

    /// The current maximal surprise `μ` (bits).
    pub fn mu(&self) -> f32 {
        self.mu
    }

    /// The target surprise `τ` (bits).
    pub fn tau(&self) -> f32 {
        self.tau
    }

    /// The learning rate `η`.
    pub fn eta(&self) -> f32 {
        self.eta
    }
}

impl LogitsProcessor for MirostatV2 {
    crate::processor::clone_boxed!();

    fn process(&mut self, _ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        self.kept.clear();
        self.kept_sum = 0.0;
        let Some(softmax) = Softmax::of(scores) else {
            return Ok(());
        };
        let z = softmax.sum();
        let mu = f64::from(self.mu);
        // -log2(w / z) <= μ  <=>  w >= z · 2^-μ. The top token has w = 1, so
        // either it passes or nothing does.
        let floor = z * (-mu).exp2();
        if floor > 1.0 {
            if let Some((id, _)) = scores.argmax() {
                scores.set_live([id], true);
                self.kept.push((id, 1.0));
            }
        } else {
            let kept = &mut self.kept;
            scores.retain(|id, x| {
                let w = softmax.weight(x);
                let keep = w > 0.0 && w >= floor;
                if keep {
                    kept.push((id, w));
                }
                keep
            });
        }
        self.kept_sum = self.kept.iter().map(|&(_, w)| w).sum();
        Ok(())
    }

    fn accept(&mut self, token: TokenId) {
        let Some(&(_, w)) = self.kept.iter().find(|&&(id, _)| id == token) else {
            return;
        };
        let surprise = -(w / self.kept_sum).log2();
        let mu = f64::from(self.mu) - f64::from(self.eta) * (surprise - f64::from(self.tau));
        self.mu = mu as f32;
        self.kept.clear();
        self.kept_sum = 0.0;
    }

    fn reset(&mut self) {
        self.mu = 2.0 * self.tau;
        self.kept.clear();
        self.kept_sum = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::testing::logits;

    const NEG: f32 = f32::NEG_INFINITY;

    fn kept(p: &mut MirostatV2, row: &[f32]) -> Vec<TokenId> {
        let mut row = row.to_vec();
        let mut live = Vec::new();
        let mut scores = Scores::new(&mut row, &mut live);
        p.process(&Context::empty(), &mut scores).unwrap();
        scores.densify();
        (0..row.len() as TokenId).filter(|&i| row[i as usize].is_finite()).collect()
    }

    #[test]
    fn truncates_at_the_current_mu() {
        // Surprises: 1, 2, 3, 4, 4 bits (p = 1/2, 1/4, 1/8, 1/16, 1/16).
        let row = logits(&[0.5, 0.25, 0.125, 0.0625, 0.0625]);
        // μ = 2τ = 3.1: p >= 2^-3.1 = 0.117 survives.
        assert_eq!(kept(&mut MirostatV2::new(1.55, 0.1).unwrap(), &row), [0, 1, 2]);
        assert_eq!(kept(&mut MirostatV2::new(1.05, 0.1).unwrap(), &row), [0, 1]);
        assert_eq!(kept(&mut MirostatV2::new(5.0, 0.1).unwrap(), &row), [0, 1, 2, 3, 4]);
        // Inclusive at an exact boundary: p = 1/2 each is 1 bit, μ = 1.
        assert_eq!(kept(&mut MirostatV2::new(0.5, 0.1).unwrap(), &[0.0, 0.0]), [0, 1]);
    }

    #[test]
    fn keeps_the_top_token_when_mu_is_below_every_surprise() {
        // τ = 0: μ = 0 bits admits only p >= 1; p_max = 0.5 fails.
        let mut p = MirostatV2::new(0.0, 0.1).unwrap();
        assert_eq!(kept(&mut p, &logits(&[0.25, 0.5, 0.25])), [1]);
        assert_eq!(kept(&mut p, &[0.0, 0.0, NEG]), [0]);
        // The single kept token has q = 1, surprise 0: μ <- 0 - 0.1 · (0 - 0).
        p.accept(0);
        assert_eq!(p.mu(), 0.0);
    }

    #[test]
    fn mu_follows_the_update_rule_and_reset_restores_it() {
        let row = logits(&[0.5, 0.25, 0.125, 0.0625, 0.0625]);
        let mut p = MirostatV2::new(1.55, 0.5).unwrap();
        assert_eq!(p.mu(), 2.0 * 1.55f32);
        assert_eq!(kept(&mut p, &row), [0, 1, 2]);
        // Kept mass 7/8: token 1 has q = 2/7, surprise log2(3.5) = 1.807.
        p.accept(1);
        let mu1 = 3.1 - 0.5 * (3.5f64.log2() - 1.55);
        assert!((f64::from(p.mu()) - mu1).abs() < 1e-5);
        // μ = 2.971 keeps p >= 0.1275: tokens 0, 1 (mass 3/4).
        assert_eq!(kept(&mut p, &row), [0, 1]);
        p.accept(0);
        let mu2 = mu1 - 0.5 * (1.5f64.log2() - 1.55);
        assert!((f64::from(p.mu()) - mu2).abs() < 1e-5);
        // A second accept without a new step changes nothing.
        p.accept(0);
        assert!((f64::from(p.mu()) - mu2).abs() < 1e-5);
        p.reset();
        assert_eq!(p.mu(), 2.0 * 1.55f32);
    }

    #[test]
    fn accept_of_a_removed_token_leaves_mu_alone() {
        let row = logits(&[0.5, 0.25, 0.125, 0.0625, 0.0625]);
        let mut p = MirostatV2::new(1.05, 0.5).unwrap();
        assert_eq!(kept(&mut p, &row), [0, 1]);
        p.accept(4);
        assert_eq!(p.mu(), 2.0 * 1.05f32);
    }

    #[test]
    fn masked_rows_are_left_alone() {
        let mut p = MirostatV2::new(1.0, 0.5).unwrap();
        assert_eq!(kept(&mut p, &[NEG; 3]), Vec::<TokenId>::new());
        p.accept(0);
        assert_eq!(p.mu(), 2.0);
    }

    #[test]
    fn rejects_invalid_parameters() {
        for v in [-0.1, f32::NAN, f32::INFINITY] {
            assert!(matches!(
                MirostatV2::new(v, 0.1),
                Err(Error::InvalidParameter { name: "mirostat_tau", .. })
            ));
            assert!(matches!(
                MirostatV2::new(5.0, v),
                Err(Error::InvalidParameter { name: "mirostat_eta", .. })
            ));
        }
    }
}
