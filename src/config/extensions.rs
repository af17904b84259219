//! llama.cpp's samplers that transformers does not have: top-nσ, XTC,
//! dynamic temperature, Mirostat 2.0 and DRY, as the llama.cpp preset and
//! an OpenAI-style request (llama-server's extra fields) set them.

use super::plan::PlanBuilder;
use crate::processors::{Dry, DynamicTemperature, MirostatV2, TopNSigma, Xtc};
use crate::{Error, TokenId};

/// llama.cpp's default DRY sequence breakers: newline, colon, double quote,
/// asterisk.
pub(crate) const DEFAULT_DRY_BREAKERS: [&str; 4] = ["\n", ":", "\"", "*"];

/// llama.cpp's default `dry_penalty_last_n` (`common_params_sampling`).
pub(crate) const DEFAULT_DRY_PENALTY_LAST_N: i32 = 64;

const BREAKERS_NEED_IDS: &str = "token ids for DRY: give dry_sequence_breaker_ids, or turn the \
                                 strings into ids with resolve_dry_breakers (a tokenizer), or \
                                 use no breakers";

/// The settings of the five samplers, llama.cpp's defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Extensions {
    pub(crate) top_n_sigma: f32,
    pub(crate) xtc_probability: f32,
    pub(crate) xtc_threshold: f32,
    pub(crate) dynatemp_range: f32,
    pub(crate) dynatemp_exponent: f32,
    pub(crate) mirostat: i32,
    pub(crate) mirostat_tau: f32,
    pub(crate) mirostat_eta: f32,
    pub(crate) dry_multiplier: f32,
    pub(crate) dry_base: f32,
    pub(crate) dry_allowed_length: i32,
    pub(crate) dry_penalty_last_n: i32,
    pub(crate) dry_sequence_breakers: Vec<String>,
    pub(crate) dry_sequence_breaker_ids: Option<Vec<TokenId>>,
}

/// llama.cpp's defaults: every one of the five is off.
impl Default for Extensions {
    fn default() -> Self {
        Extensions {
            top_n_sigma: -1.0,
            xtc_probability: 0.0,
            xtc_threshold: 0.1,
            dynatemp_range: 0.0,
            dynatemp_exponent: 1.0,
            mirostat: 0,
            mirostat_tau: 5.0,
            mirostat_eta: 0.1,
            dry_multiplier: 0.0,
            dry_base: 1.75,
            dry_allowed_length: 2,
            dry_penalty_last_n: DEFAULT_DRY_PENALTY_LAST_N,
            dry_sequence_breakers: DEFAULT_DRY_BREAKERS.iter().map(|s| s.to_string()).collect(),
            dry_sequence_breaker_ids: None,
        }
    }
}

/// Checks that a configuration number read as f64 and used as f32 is
/// within f32's range: `1e39` would become `inf` (and `-1e39` `-inf`)
/// when narrowed, a different value than the one written. NaN and the
/// infinities are left to the field's own check.
pub(crate) fn within_f32(name: &'static str, value: Option<f64>) -> Result<(), Error> {
    match value {
        Some(x) if x.is_finite() && (x as f32).is_infinite() => {
            Err(Error::invalid(name, "within f32's range (magnitude at most 3.4028235e38)", x))
        }
        _ => Ok(()),
    }
}

/// The ids of all the breakers, sorted and without repeats; empty strings
/// are skipped, as llama.cpp skips them.
pub(crate) fn breaker_ids(
    breakers: &[String],
    mut ids_of: impl FnMut(&str) -> Vec<TokenId>,
) -> Vec<TokenId> {
    let mut ids: Vec<TokenId> =
        breakers.iter().filter(|s| !s.is_empty()).flat_map(|s| ids_of(s)).collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

impl Extensions {
    /// Checks every setting, used or not.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let non_negative = |name: &'static str, expected: &'static str, x: f32| {
            if x >= 0.0 && x.is_finite() { Ok(()) } else { Err(Error::invalid(name, expected, x)) }
        };
        let unit = |name: &'static str, expected: &'static str, x: f32| {
            if (0.0..=1.0).contains(&x) { Ok(()) } else { Err(Error::invalid(name, expected, x)) }
        };
        if !self.top_n_sigma.is_finite() {
            return Err(Error::invalid(
                "top_n_sigma",
                "a finite number (<= 0 disables top-nσ)",
                self.top_n_sigma,
            ));
        }
        unit("xtc_probability", "in [0, 1] (0 disables XTC)", self.xtc_probability)?;
        unit("xtc_threshold", "in [0, 1] (above 0.5 disables XTC)", self.xtc_threshold)?;
        non_negative("dynatemp_range", "finite and >= 0 (0 disables it)", self.dynatemp_range)?;
        non_negative("dynatemp_exponent", "finite and >= 0", self.dynatemp_exponent)?;
        match self.mirostat {
            0 | 2 => {}
            1 => {
                return Err(Error::invalid(
                    "mirostat",
                    "0 (off) or 2 (Mirostat 2.0; Mirostat 1.0 is not implemented)",
                    1,
                ));
            }
            m => return Err(Error::invalid("mirostat", "0 (off) or 2 (Mirostat 2.0)", m)),
        }
        non_negative("mirostat_tau", "finite and >= 0", self.mirostat_tau)?;
        non_negative("mirostat_eta", "finite and >= 0", self.mirostat_eta)?;
        non_negative("dry_multiplier", "finite and >= 0 (0 disables DRY)", self.dry_multiplier)?;
        if !self.dry_base.is_finite() {
            return Err(Error::invalid(
                "dry_base",
                "a finite number (below 1 disables DRY)",
                self.dry_base,
            ));
        }
        if self.dry_allowed_length < 1 {
            return Err(Error::invalid(
                "dry_allowed_length",
                "at least 1",
                self.dry_allowed_length,
            ));
        }
        if self.dry_penalty_last_n < -1 {
            return Err(Error::invalid(
                "dry_penalty_last_n",
                "at least -1 (-1: the whole history, 0: off)",
                self.dry_penalty_last_n,
            ));
        }
        Ok(())
    }

    /// Builds (and drops) every stage that is on, whether or not the chosen
    /// mode runs it (Mirostat 2.0 skips the others; a `samplers` list may
    /// leave some out), so a value that its stage would reject is an error
    /// even where the stage is not used. `temperature` is the one the
    /// dynamic temperature is centred on. DRY's breaker ids are not needed
    /// here (they are checked where DRY is built).
    pub(crate) fn check_stages(
        &self,
        temperature: f32,
        min_keep: usize,
        seed: u64,
    ) -> Result<(), Error> {
        self.validate()?;
        let mut scratch = PlanBuilder::default();
        self.push_top_n_sigma(&mut scratch)?;
        self.push_xtc(&mut scratch, min_keep, seed)?;
        if self.dynatemp() {
            self.push_dynamic_temperature(&mut scratch, temperature)?;
        }
        self.push_mirostat(&mut scratch)?;
        if self.dry_on() {
            let dry =
                Dry::new(self.dry_multiplier, self.dry_base, self.dry_allowed_length as usize)?;
            if self.dry_penalty_last_n > 0 {
                dry.penalty_last_n(self.dry_penalty_last_n as usize)?;
            }
        }
        Ok(())
    }

    /// Mirostat 2.0 replaces the sampling stages.
    pub(crate) fn mirostat_v2(&self) -> bool {
        self.mirostat == 2
    }

    /// The temperature stage is a dynamic one.
    pub(crate) fn dynatemp(&self) -> bool {
        self.dynatemp_range > 0.0
    }

    /// llama.cpp's gate: a multiplier, a base of at least 1, a window.
    fn dry_on(&self) -> bool {
        self.dry_multiplier > 0.0 && self.dry_base >= 1.0 && self.dry_penalty_last_n != 0
    }

    /// DRY, when on.
    pub(crate) fn push_dry(&self, b: &mut PlanBuilder) -> Result<(), Error> {
        if !self.dry_on() {
            return Ok(());
        }
        let mut ids = match &self.dry_sequence_breaker_ids {
            Some(ids) => ids.clone(),
            None if self.dry_sequence_breakers.iter().all(String::is_empty) => Vec::new(),
            None => {
                return Err(Error::invalid(
                    "dry_sequence_breakers",
                    BREAKERS_NEED_IDS,
                    format_args!("{:?}", self.dry_sequence_breakers),
                ));
            }
        };
        ids.sort_unstable();
        ids.dedup();
        let (m, base, allowed) = (self.dry_multiplier, self.dry_base, self.dry_allowed_length);
        let mut dry = Dry::new(m, base, allowed as usize)?.sequence_breakers(ids.iter().copied());
        let window = match self.dry_penalty_last_n {
            -1 => "all".to_string(),
            n => {
                dry = dry.penalty_last_n(n as usize)?;
                n.to_string()
            }
        };
        b.push(
            dry,
            format!(
                "Dry(multiplier={m}, base={base}, allowed_length={allowed}, last_n={window}, \
                 breakers={})",
                ids.len()
            ),
        );
        Ok(())
    }

    /// Top-nσ, when `top_n_sigma > 0`.
    pub(crate) fn push_top_n_sigma(&self, b: &mut PlanBuilder) -> Result<(), Error> {
        let n = self.top_n_sigma;
        if n > 0.0 {
            b.push(TopNSigma::new(n)?, format!("TopNSigma({n})"));
        }
        Ok(())
    }

    /// XTC, when its probability is above 0 and its threshold at most 0.5.
    pub(crate) fn push_xtc(
        &self,
        b: &mut PlanBuilder,
        min_keep: usize,
        seed: u64,
    ) -> Result<(), Error> {
        let (p, t) = (self.xtc_probability, self.xtc_threshold);
        if p > 0.0 && t <= 0.5 {
            b.push(
                Xtc::new(p, t, seed)?.min_keep(min_keep)?,
                format!("Xtc(probability={p}, threshold={t})"),
            );
        }
        Ok(())
    }

    /// The dynamic temperature around `temperature` (call when
    /// [`Extensions::dynatemp`]).
    pub(crate) fn push_dynamic_temperature(
        &self,
        b: &mut PlanBuilder,
        temperature: f32,
    ) -> Result<(), Error> {
        let (range, exponent) = (self.dynatemp_range, self.dynatemp_exponent);
        b.push(
            DynamicTemperature::new(temperature, range, exponent)?,
            format!("DynamicTemperature(temp={temperature}, range={range}, exponent={exponent})"),
        );
        Ok(())
    }

    /// Mirostat 2.0 (call when [`Extensions::mirostat_v2`]).
    pub(crate) fn push_mirostat(&self, b: &mut PlanBuilder) -> Result<(), Error> {
        let (tau, eta) = (self.mirostat_tau, self.mirostat_eta);
        b.push(MirostatV2::new(tau, eta)?, format!("MirostatV2(tau={tau}, eta={eta})"));
        Ok(())
    }
}
