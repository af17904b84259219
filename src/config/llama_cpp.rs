//! A llama.cpp-style preset: its order, exactly-k top-k, windowed penalties,
//! and its newer samplers (top-nσ, XTC, dynamic temperature, Mirostat 2.0,
//! DRY).

use std::fmt;
use std::str::FromStr;

use super::extensions::{self, Extensions};
use super::plan::PlanBuilder;
use super::transformers::Extras;
use super::{DecodingPlan, LengthLimit};
use crate::processors::{LogitBias, MinP, Temperature, TopK, TopP, Typical, WindowedPenalties};
use crate::{Error, TokenId, fresh_seed};

/// One configurable stage of the llama.cpp-style chain, named as llama.cpp's
/// `--samplers` option (and llama-server's `samplers` field) names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LlamaCppStage {
    /// `penalties`: [`WindowedPenalties`].
    Penalties,
    /// `dry`: [`Dry`](crate::processors::Dry).
    Dry,
    /// `top_n_sigma`: [`TopNSigma`](crate::processors::TopNSigma).
    TopNSigma,
    /// `top_k`: [`TopK::exact`].
    TopK,
    /// `typ_p`: [`Typical`].
    TypicalP,
    /// `top_p`: [`TopP`].
    TopP,
    /// `min_p`: [`MinP`].
    MinP,
    /// `xtc`: [`Xtc`](crate::processors::Xtc).
    Xtc,
    /// `temperature`: [`Temperature`], or
    /// [`DynamicTemperature`](crate::processors::DynamicTemperature) when
    /// `dynatemp_range > 0` (llama.cpp's `temp_ext` is one stage for both).
    Temperature,
}

impl LlamaCppStage {
    /// llama.cpp's default order: penalties, DRY, top-nσ, top-k, typical,
    /// top-p, min-p, XTC, and temperature **last**.
    pub const DEFAULT_ORDER: [LlamaCppStage; 9] = [
        LlamaCppStage::Penalties,
        LlamaCppStage::Dry,
        LlamaCppStage::TopNSigma,
        LlamaCppStage::TopK,
        LlamaCppStage::TypicalP,
        LlamaCppStage::TopP,
        LlamaCppStage::MinP,
        LlamaCppStage::Xtc,
        LlamaCppStage::Temperature,
    ];

    /// The name llama.cpp uses.
    pub fn name(self) -> &'static str {
        match self {
            LlamaCppStage::Penalties => "penalties",
            LlamaCppStage::Dry => "dry",
            LlamaCppStage::TopNSigma => "top_n_sigma",
            LlamaCppStage::TopK => "top_k",
            LlamaCppStage::TypicalP => "typ_p",
            LlamaCppStage::TopP => "top_p",
            LlamaCppStage::MinP => "min_p",
            LlamaCppStage::Xtc => "xtc",
            LlamaCppStage::Temperature => "temperature",
        }
    }

    /// Parses a `--samplers` list such as `"penalties;top_k;top_p;temperature"`
    /// (separated by `;`, `,` or whitespace).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] (`samplers`) for an unknown name.
    ///
    /// ```
    /// use decoding::config::LlamaCppStage;
    ///
    /// let order = LlamaCppStage::parse_list("dry;top_k;temperature;xtc")?;
    /// assert_eq!(
    ///     order,
    ///     [LlamaCppStage::Dry, LlamaCppStage::TopK, LlamaCppStage::Temperature, LlamaCppStage::Xtc]
    /// );
    /// # Ok::<(), decoding::Error>(())
    /// ```
    pub fn parse_list(list: &str) -> Result<Vec<LlamaCppStage>, Error> {
        list.split([';', ',', ' ', '\t', '\n']).filter(|s| !s.is_empty()).map(str::parse).collect()
    }
}

impl FromStr for LlamaCppStage {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "penalties" => LlamaCppStage::Penalties,
            "dry" => LlamaCppStage::Dry,
            "top_n_sigma" | "top-n-sigma" => LlamaCppStage::TopNSigma,
            "top_k" => LlamaCppStage::TopK,
            "typ_p" | "typical_p" | "typical" => LlamaCppStage::TypicalP,
            "top_p" => LlamaCppStage::TopP,
            "min_p" => LlamaCppStage::MinP,
            "xtc" => LlamaCppStage::Xtc,
            "temperature" | "temp" => LlamaCppStage::Temperature,
            other => {
                return Err(Error::invalid(
                    "samplers",
                    "a list of penalties, dry, top_n_sigma, top_k, typ_p, top_p, min_p, xtc, \
                     temperature",
                    format_args!("{other:?}"),
                ));
            }
        })
    }
}

impl fmt::Display for LlamaCppStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// llama.cpp's sampling chain, for users who want its order: logit bias,
/// then `samplers` in the given order (by default penalties, DRY, top-nσ,
/// top-k, typical, top-p, min-p, XTC and **temperature last**), then a draw
/// from the distribution (greedy when the temperature is 0). With
/// `mirostat = 2` the chain is logit bias, temperature, Mirostat 2.0.
///
/// The defaults are llama.cpp's (`common_params_sampling`): `top_k = 40`,
/// `top_p = 0.95`, `min_p = 0.05`, `typical_p = 1` (off), `temperature =
/// 0.8`, `penalty_last_n = 64`, `repeat_penalty = 1` with frequency and
/// presence 0 (penalties off), and the newer samplers all off (table below).
/// llama.cpp's unbounded `n_predict = -1` has no equivalent:
/// `max_new_tokens` defaults to 256.
///
/// # The newer samplers
///
/// | field(s) | default | off when | stage |
/// |---|---|---|---|
/// | `top_n_sigma` | `-1` | `<= 0` | [`TopNSigma`](crate::processors::TopNSigma) (`top_n_sigma`) |
/// | `xtc_probability`, `xtc_threshold` | `0`, `0.1` | probability 0 or threshold `> 0.5` | [`Xtc`](crate::processors::Xtc) (`xtc`), seeded with `seed`, `min_keep` as the other truncations |
/// | `dynatemp_range`, `dynatemp_exponent` | `0`, `1` | range 0 | the `temperature` stage becomes [`DynamicTemperature`](crate::processors::DynamicTemperature) |
/// | `mirostat`, `mirostat_tau`, `mirostat_eta` | `0`, `5`, `0.1` | `mirostat = 0` | `2`: [`MirostatV2`](crate::processors::MirostatV2) after a plain temperature, **instead of** the whole `samplers` chain; `1` (Mirostat 1.0) is an error |
/// | `dry_multiplier`, `dry_base`, `dry_allowed_length`, `dry_penalty_last_n`, `dry_sequence_breakers` | `0`, `1.75`, `2`, `64`, `["\n", ":", "\"", "*"]` | multiplier 0, base below 1, or window 0 | [`Dry`](crate::processors::Dry) (`dry`); `dry_penalty_last_n = -1` is the whole history |
///
/// - **Mirostat replaces the chain**, as in llama.cpp: with `mirostat = 2`
///   the `samplers` list, the penalties, DRY and the dynamic temperature
///   are not used; the stages are the logit bias, `Temperature(temperature)`
///   (left out at 1) and `MirostatV2`, which updates its `μ` from each
///   chosen token.
/// - **DRY's sequence breakers are strings**, and [`Dry`](crate::processors::Dry)
///   takes token ids. Give the ids in `dry_sequence_breaker_ids`, or let
///   [`LlamaCppSampling::resolve_dry_breakers`] compute them from a
///   tokenizer. With DRY on, non-empty breaker strings and no ids,
///   [`LlamaCppSampling::build`] fails rather than run DRY without the
///   breakers. llama.cpp counts as a breaker every vocabulary token whose
///   text contains the string, and also multi-token spellings of it; the
///   ids here are single tokens only, so the closest resolver returns every
///   token whose text contains the string.
/// - **`dry_penalty_last_n`** defaults to 64, as `common_params_sampling`,
///   `--dry-penalty-last-n` and llama-server's `/props` have it now (older
///   llama.cpp documented `-1`, the context size: here `-1` is the whole
///   history).
///
/// # What is llama.cpp's and what is not
///
/// - **Order**: temperature runs after the truncations, so top-k, top-p,
///   min-p and typical see the untempered distribution; in transformers
///   temperature runs first. This is the largest difference between the two
///   ecosystems on the same numbers.
/// - **Top-k keeps exactly k** ([`TopK::exact`]; ties at the boundary go to
///   the lowest ids, where llama.cpp's partial sort is arbitrary).
///   `top_k <= 0` is off.
/// - **Penalties** are [`WindowedPenalties`]: repetition, frequency and
///   presence over the last `penalty_last_n` tokens, prompt included
///   (`-1`: the whole history, `0`: off).
/// - The other truncations are this crate's (transformers' definitions):
///   llama.cpp's top-p, min-p and typical select the same tokens in exact
///   arithmetic but can differ at exact boundaries (llama.cpp's top-p
///   stops at `cumulative >= p`, its typical at `cumulative > p`, its min-p
///   compares logits with `max + ln p`). `top_p >= 1`, `min_p <= 0` and
///   `typical_p >= 1` are off; `min_keep` is their `min_tokens_to_keep`
///   (0 reads as 1).
/// - `temperature <= 0` is greedy in llama.cpp; here `0` is greedy and a
///   negative temperature is an error. A temperature of 0 with a dynamic
///   range samples, as in llama.cpp (the temperature then moves in
///   `[0, dynatemp_range]`).
/// - Values outside a field's domain are errors even where llama.cpp would
///   clamp or ignore them: `xtc_probability` and `xtc_threshold` outside
///   `[0, 1]`, a negative `dynatemp_range`, `dry_multiplier`,
///   `mirostat_tau` or `mirostat_eta`, `dry_allowed_length < 1`,
///   `dry_penalty_last_n < -1`, NaN anywhere.
///
/// # Example
///
/// ```
/// use decoding::config::LlamaCppSampling;
///
/// let plan = LlamaCppSampling { repeat_penalty: 1.1, ..LlamaCppSampling::default() }.build()?;
/// assert_eq!(
///     plan.to_string(),
///     "WindowedPenalties(last_n=64, repeat=1.1, frequency=0, presence=0) -> TopK(k=40, exact) \
///      -> TopP(0.95) -> MinP(0.05) -> Temperature(0.8) => Categorical"
/// );
///
/// // DRY with its default breakers, resolved by a (toy) tokenizer.
/// let vocab = ["a", "b", "\n", ":", "\"", "*", "\n\n"];
/// let preset = LlamaCppSampling { dry_multiplier: 0.8, top_n_sigma: 1.5, ..LlamaCppSampling::default() }
///     .resolve_dry_breakers(|breaker| {
///         (0..vocab.len() as u32).filter(|&id| vocab[id as usize].contains(breaker)).collect()
///     });
/// assert_eq!(preset.dry_sequence_breaker_ids, Some(vec![2, 3, 4, 5, 6]));
/// assert_eq!(
///     preset.build()?.to_string(),
///     "Dry(multiplier=0.8, base=1.75, allowed_length=2, last_n=64, breakers=5) \
///      -> TopNSigma(1.5) -> TopK(k=40, exact) -> TopP(0.95) -> MinP(0.05) \
///      -> Temperature(0.8) => Categorical"
/// );
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaCppSampling {
    /// The stages after the logit bias, in order (repeats allowed).
    pub samplers: Vec<LlamaCppStage>,
    /// Top-k; `<= 0` is off.
    pub top_k: i32,
    /// Top-p; `>= 1` is off.
    pub top_p: f32,
    /// Min-p; `<= 0` is off.
    pub min_p: f32,
    /// Typical mass; `>= 1` is off.
    pub typical_p: f32,
    /// Temperature; 0 is greedy.
    pub temperature: f32,
    /// The penalty window: `-1` the whole history, `0` off.
    pub penalty_last_n: i32,
    /// Repetition factor (1 is off).
    pub repeat_penalty: f32,
    /// Frequency coefficient (0 is off).
    pub frequency_penalty: f32,
    /// Presence coefficient (0 is off).
    pub presence_penalty: f32,
    /// Top-nσ's `n`; `<= 0` is off (llama.cpp's default is `-1`).
    pub top_n_sigma: f32,
    /// XTC's chance of applying, in `[0, 1]`; 0 is off.
    pub xtc_probability: f32,
    /// XTC's probability threshold, in `[0, 1]`; above 0.5 is off.
    pub xtc_threshold: f32,
    /// Dynamic temperature range, `>= 0`; 0 is a plain temperature.
    pub dynatemp_range: f32,
    /// Dynamic temperature exponent, `>= 0`.
    pub dynatemp_exponent: f32,
    /// 0: off; 2: Mirostat 2.0 instead of the chain (1, Mirostat 1.0, is
    /// not implemented).
    pub mirostat: i32,
    /// Mirostat's target surprise `τ` (bits), `>= 0`.
    pub mirostat_tau: f32,
    /// Mirostat's learning rate `η`, `>= 0`.
    pub mirostat_eta: f32,
    /// DRY's multiplier, `>= 0`; 0 is off.
    pub dry_multiplier: f32,
    /// DRY's base; below 1 is off.
    pub dry_base: f32,
    /// DRY's allowed repetition length, at least 1.
    pub dry_allowed_length: i32,
    /// DRY's window: `-1` the whole history, `0` off.
    pub dry_penalty_last_n: i32,
    /// DRY's sequence breakers, as strings (llama.cpp's form).
    pub dry_sequence_breakers: Vec<String>,
    /// DRY's sequence breakers as token ids, which the DRY stage uses; when
    /// `None`, the strings must be empty or DRY off (see
    /// [`LlamaCppSampling::resolve_dry_breakers`]).
    pub dry_sequence_breaker_ids: Option<Vec<TokenId>>,
    /// Tokens the truncations keep at least (0 reads as 1).
    pub min_keep: usize,
    /// Biases per token, applied first.
    pub logit_bias: Vec<(TokenId, f32)>,
    /// The seed (of the draws, and of XTC's own generator); `None`, the
    /// default (llama.cpp's `LLAMA_DEFAULT_SEED`, random), draws a fresh
    /// seed for every run, reported in [`Generation::seed`](crate::Generation::seed),
    /// and one for XTC when the plan is built.
    pub seed: Option<u64>,
    /// The most tokens generated.
    pub max_new_tokens: usize,
    /// End-of-generation ids.
    pub eos_token_ids: Vec<TokenId>,
}

impl Default for LlamaCppSampling {
    fn default() -> Self {
        let ext = Extensions::default();
        LlamaCppSampling {
            samplers: LlamaCppStage::DEFAULT_ORDER.to_vec(),
            top_k: 40,
            top_p: 0.95,
            min_p: 0.05,
            typical_p: 1.0,
            temperature: 0.8,
            penalty_last_n: 64,
            repeat_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            top_n_sigma: ext.top_n_sigma,
            xtc_probability: ext.xtc_probability,
            xtc_threshold: ext.xtc_threshold,
            dynatemp_range: ext.dynatemp_range,
            dynatemp_exponent: ext.dynatemp_exponent,
            mirostat: ext.mirostat,
            mirostat_tau: ext.mirostat_tau,
            mirostat_eta: ext.mirostat_eta,
            dry_multiplier: ext.dry_multiplier,
            dry_base: ext.dry_base,
            dry_allowed_length: ext.dry_allowed_length,
            dry_penalty_last_n: ext.dry_penalty_last_n,
            dry_sequence_breakers: ext.dry_sequence_breakers,
            dry_sequence_breaker_ids: None,
            min_keep: 0,
            logit_bias: Vec::new(),
            seed: None,
            max_new_tokens: 256,
            eos_token_ids: Vec::new(),
        }
    }
}

impl LlamaCppSampling {
    /// Sets [`LlamaCppSampling::dry_sequence_breaker_ids`] from the breaker
    /// strings: `ids_of` gives the token ids that count as one breaker
    /// (llama.cpp takes every vocabulary token whose text contains it).
    /// Empty strings are skipped; the ids are sorted and deduplicated.
    ///
    /// ```
    /// use decoding::config::LlamaCppSampling;
    ///
    /// let preset = LlamaCppSampling::default().resolve_dry_breakers(|s| match s {
    ///     "\n" => vec![198, 628],
    ///     ":" => vec![25],
    ///     _ => vec![],
    /// });
    /// assert_eq!(preset.dry_sequence_breaker_ids, Some(vec![25, 198, 628]));
    /// ```
    pub fn resolve_dry_breakers(mut self, ids_of: impl FnMut(&str) -> Vec<TokenId>) -> Self {
        self.dry_sequence_breaker_ids =
            Some(extensions::breaker_ids(&self.dry_sequence_breakers, ids_of));
        self
    }

    fn extensions(&self) -> Extensions {
        Extensions {
            top_n_sigma: self.top_n_sigma,
            xtc_probability: self.xtc_probability,
            xtc_threshold: self.xtc_threshold,
            dynatemp_range: self.dynatemp_range,
            dynatemp_exponent: self.dynatemp_exponent,
            mirostat: self.mirostat,
            mirostat_tau: self.mirostat_tau,
            mirostat_eta: self.mirostat_eta,
            dry_multiplier: self.dry_multiplier,
            dry_base: self.dry_base,
            dry_allowed_length: self.dry_allowed_length,
            dry_penalty_last_n: self.dry_penalty_last_n,
            dry_sequence_breakers: self.dry_sequence_breakers.clone(),
            dry_sequence_breaker_ids: self.dry_sequence_breaker_ids.clone(),
        }
    }

    /// Checks every field against its domain whether or not the chosen
    /// mode or the `samplers` list uses its stage: NaN is an error
    /// everywhere, and a value that its stage would reject is an error even
    /// when the stage is skipped (Mirostat 2.0 runs no penalties, top-k,
    /// top-p, ...).
    fn validate_every_field(
        &self,
        ext: &Extensions,
        last_n: usize,
        keep: usize,
    ) -> Result<(), Error> {
        let finite = |name: &'static str, expected: &'static str, x: f32| {
            if x.is_finite() { Ok(()) } else { Err(Error::invalid(name, expected, x)) }
        };
        finite("top_p", "a finite number (>= 1 disables top-p)", self.top_p)?;
        finite("min_p", "a finite number (<= 0 disables min-p)", self.min_p)?;
        finite("typical_p", "a finite number (>= 1 disables typical sampling)", self.typical_p)?;
        if self.top_p < 1.0 {
            TopP::new(self.top_p)?.min_tokens_to_keep(keep)?;
        }
        if self.min_p > 0.0 {
            MinP::new(self.min_p)?.min_tokens_to_keep(keep)?;
        }
        if self.typical_p < 1.0 {
            Typical::new(self.typical_p)?.min_tokens_to_keep(keep)?;
        }
        let (r, f, p) = (self.repeat_penalty, self.frequency_penalty, self.presence_penalty);
        WindowedPenalties::new(last_n, r, f, p)?;
        if !self.logit_bias.is_empty() {
            LogitBias::new(self.logit_bias.iter().copied())?;
        }
        ext.check_stages(self.temperature, keep, self.seed.unwrap_or(0))
    }

    /// Builds the plan.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the field, whether or not its
    /// stage runs in the chosen mode: `penalty_last_n < -1`, NaN or an
    /// infinity in any float field, a negative or non-finite `temperature`, `mirostat` other than 0 or 2
    /// (1 included), the newer samplers' ranges (see the table), DRY on
    /// with breaker strings but no `dry_sequence_breaker_ids`
    /// (`dry_sequence_breakers`), and the processors' own range errors
    /// (`top_p`, `min_p`, `typical_p`, `repeat_penalty`, ...) for values
    /// that are not "off".
    pub fn build(&self) -> Result<DecodingPlan, Error> {
        if !(self.temperature >= 0.0 && self.temperature.is_finite()) {
            return Err(Error::invalid(
                "temperature",
                "finite and >= 0 (0 is greedy)",
                self.temperature,
            ));
        }
        let last_n = match self.penalty_last_n {
            -1 => usize::MAX,
            n if n >= 0 => n as usize,
            n => {
                return Err(Error::invalid(
                    "penalty_last_n",
                    "at least -1 (-1: the whole history, 0: off)",
                    n,
                ));
            }
        };
        let ext = self.extensions();
        let keep = self.min_keep.max(1);
        self.validate_every_field(&ext, last_n, keep)?;
        let xtc_seed = self.seed.unwrap_or_else(fresh_seed);
        let mut b = PlanBuilder::default();
        if !self.logit_bias.is_empty() {
            b.push(
                LogitBias::new(self.logit_bias.iter().copied())?,
                format!("LogitBias({} tokens)", self.logit_bias.len()),
            );
        }
        let t = self.temperature;
        if ext.mirostat_v2() {
            // llama.cpp: a plain temperature, then Mirostat 2.0, and nothing else.
            if t != 1.0 {
                b.push(Temperature::new(t)?, format!("Temperature({t})"));
            }
            ext.push_mirostat(&mut b)?;
        }
        for stage in self.samplers.iter().filter(|_| !ext.mirostat_v2()) {
            match stage {
                LlamaCppStage::Penalties => {
                    let (r, f, p) =
                        (self.repeat_penalty, self.frequency_penalty, self.presence_penalty);
                    let stage = WindowedPenalties::new(last_n, r, f, p)?;
                    if last_n > 0 && (r != 1.0 || f != 0.0 || p != 0.0) {
                        let window = if last_n == usize::MAX {
                            "all".to_string()
                        } else {
                            last_n.to_string()
                        };
                        b.push(
                            stage,
                            format!("WindowedPenalties(last_n={window}, repeat={r}, frequency={f}, presence={p})"),
                        );
                    }
                }
                LlamaCppStage::Dry => ext.push_dry(&mut b)?,
                LlamaCppStage::TopNSigma => ext.push_top_n_sigma(&mut b)?,
                LlamaCppStage::TopK => {
                    if self.top_k > 0 {
                        let k = self.top_k as usize;
                        b.push(TopK::new(k)?.exact(), format!("TopK(k={k}, exact)"));
                    }
                }
                LlamaCppStage::TypicalP => {
                    if self.typical_p < 1.0 {
                        let p = self.typical_p;
                        b.push(Typical::new(p)?.min_tokens_to_keep(keep)?, format!("Typical({p})"));
                    }
                }
                LlamaCppStage::TopP => {
                    if self.top_p < 1.0 {
                        let p = self.top_p;
                        b.push(TopP::new(p)?.min_tokens_to_keep(keep)?, format!("TopP({p})"));
                    }
                }
                LlamaCppStage::MinP => {
                    if self.min_p > 0.0 {
                        let p = self.min_p;
                        b.push(MinP::new(p)?.min_tokens_to_keep(keep)?, format!("MinP({p})"));
                    }
                }
                LlamaCppStage::Xtc => ext.push_xtc(&mut b, keep, xtc_seed)?,
                LlamaCppStage::Temperature => {
                    if ext.dynatemp() {
                        ext.push_dynamic_temperature(&mut b, t)?;
                    } else if t != 1.0 {
                        b.push(Temperature::new(t)?, format!("Temperature({t})"));
                    }
                }
            }
        }
        // A dynamic temperature around 0 still samples (its range is above 0).
        let dynamic = !ext.mirostat_v2()
            && ext.dynatemp()
            && self.samplers.contains(&LlamaCppStage::Temperature);
        let length = LengthLimit::NewTokens(self.max_new_tokens);
        let extras = Extras { seed: self.seed, ..Extras::default() };
        let options = extras.options(length, &self.eos_token_ids)?;
        Ok(b.finish(t == 0.0 && !dynamic, options, length, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Context;

    #[test]
    fn the_default_chain_has_temperature_last() {
        let plan = LlamaCppSampling::default().build().unwrap();
        assert_eq!(
            plan.stages(),
            ["TopK(k=40, exact)", "TopP(0.95)", "MinP(0.05)", "Temperature(0.8)"]
        );
        assert!(!plan.is_greedy());
    }

    #[test]
    fn off_values_leave_stages_out_and_zero_temperature_is_greedy() {
        let s = LlamaCppSampling {
            top_k: 0,
            top_p: 1.0,
            min_p: 0.0,
            temperature: 0.0,
            repeat_penalty: 1.3,
            penalty_last_n: 0,
            ..LlamaCppSampling::default()
        };
        let plan = s.build().unwrap();
        assert_eq!(plan.stages(), ["Temperature(0)"]);
        assert!(plan.is_greedy());
    }

    #[test]
    fn the_order_is_the_given_one() {
        let s = LlamaCppSampling {
            samplers: LlamaCppStage::parse_list("temperature;top_k").unwrap(),
            penalty_last_n: -1,
            presence_penalty: 0.5,
            ..LlamaCppSampling::default()
        };
        assert_eq!(s.build().unwrap().stages(), ["Temperature(0.8)", "TopK(k=40, exact)"]);
        let s = LlamaCppSampling { samplers: vec![LlamaCppStage::Penalties], ..s };
        assert_eq!(
            s.build().unwrap().stages(),
            ["WindowedPenalties(last_n=all, repeat=1, frequency=0, presence=0.5)"]
        );
    }

    #[test]
    fn temperature_last_differs_from_temperature_first() {
        // Probabilities [.609, .224, .136, .030]: top-p 0.7 keeps 2 tokens.
        // After a temperature of 3 they are [.372, .266, .225, .137]: 3.
        let row = [2.0f32, 1.0, 0.5, -1.0];
        let run = |samplers: &str| {
            let s = LlamaCppSampling {
                samplers: LlamaCppStage::parse_list(samplers).unwrap(),
                top_p: 0.7,
                temperature: 3.0,
                ..LlamaCppSampling::default()
            };
            let (mut pipeline, _, _) = s.build().unwrap().into_parts();
            let mut out = row.to_vec();
            pipeline.process(&Context::empty(), &mut out).unwrap();
            out.iter().filter(|x| x.is_finite()).count()
        };
        assert_eq!(run("top_p;temperature"), 2);
        assert_eq!(run("temperature;top_p"), 3);
    }

    #[test]
    fn invalid_values_name_the_field() {
        for (s, name) in [
            (LlamaCppSampling { penalty_last_n: -2, ..Default::default() }, "penalty_last_n"),
            (LlamaCppSampling { temperature: -0.5, ..Default::default() }, "temperature"),
            (LlamaCppSampling { top_p: -0.5, ..Default::default() }, "top_p"),
            (LlamaCppSampling { min_p: 1.5, ..Default::default() }, "min_p"),
            (LlamaCppSampling { repeat_penalty: 0.0, ..Default::default() }, "repeat_penalty"),
        ] {
            match s.build() {
                Err(Error::InvalidParameter { name: got, .. }) => assert_eq!(got, name),
                other => panic!("{name}: {other:?}"),
            }
        }
        assert!(matches!(
            "top_a".parse::<LlamaCppStage>(),
            Err(Error::InvalidParameter { name: "samplers", .. })
        ));
    }
}
