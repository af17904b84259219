//! A llama.cpp-style preset: its order, exactly-k top-k, windowed penalties.

use std::fmt;
use std::str::FromStr;

use super::plan::{PlanBuilder, base_options};
use super::transformers::Extras;
use super::{DecodingPlan, LengthLimit};
use crate::processors::{LogitBias, MinP, Temperature, TopK, TopP, Typical, WindowedPenalties};
use crate::{DEFAULT_SEED, Error, TokenId};

/// One configurable stage of the llama.cpp-style chain, named as llama.cpp's
/// `--samplers` option names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LlamaCppStage {
    /// `penalties`: [`WindowedPenalties`].
    Penalties,
    /// `top_k`: [`TopK::exact`].
    TopK,
    /// `typ_p`: [`Typical`].
    TypicalP,
    /// `top_p`: [`TopP`].
    TopP,
    /// `min_p`: [`MinP`].
    MinP,
    /// `temperature`: [`Temperature`].
    Temperature,
}

impl LlamaCppStage {
    /// llama.cpp's default order: penalties, top-k, typical, top-p, min-p,
    /// and temperature **last**.
    pub const DEFAULT_ORDER: [LlamaCppStage; 6] = [
        LlamaCppStage::Penalties,
        LlamaCppStage::TopK,
        LlamaCppStage::TypicalP,
        LlamaCppStage::TopP,
        LlamaCppStage::MinP,
        LlamaCppStage::Temperature,
    ];

    /// The name llama.cpp uses.
    pub fn name(self) -> &'static str {
        match self {
            LlamaCppStage::Penalties => "penalties",
            LlamaCppStage::TopK => "top_k",
            LlamaCppStage::TypicalP => "typ_p",
            LlamaCppStage::TopP => "top_p",
            LlamaCppStage::MinP => "min_p",
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
    /// let order = LlamaCppStage::parse_list("top_k;temperature;min_p")?;
    /// assert_eq!(order, [LlamaCppStage::TopK, LlamaCppStage::Temperature, LlamaCppStage::MinP]);
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
            "top_k" => LlamaCppStage::TopK,
            "typ_p" | "typical_p" | "typical" => LlamaCppStage::TypicalP,
            "top_p" => LlamaCppStage::TopP,
            "min_p" => LlamaCppStage::MinP,
            "temperature" | "temp" => LlamaCppStage::Temperature,
            other => {
                return Err(Error::invalid(
                    "samplers",
                    "a list of penalties, top_k, typ_p, top_p, min_p, temperature",
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
/// then `samplers` in the given order (by default penalties, top-k,
/// typical, top-p, min-p and **temperature last**), then a draw from the
/// distribution (greedy when the temperature is 0).
///
/// The defaults are llama.cpp's (`common_params_sampling`): `top_k = 40`,
/// `top_p = 0.95`, `min_p = 0.05`, `typical_p = 1` (off), `temperature =
/// 0.8`, `penalty_last_n = 64`, `repeat_penalty = 1` with frequency and
/// presence 0 (penalties off). llama.cpp's unbounded `n_predict = -1` has no
/// equivalent: `max_new_tokens` defaults to 256.
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
///   negative temperature is an error.
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
    /// Tokens the truncations keep at least (0 reads as 1).
    pub min_keep: usize,
    /// Biases per token, applied first.
    pub logit_bias: Vec<(TokenId, f32)>,
    /// The seed.
    pub seed: u64,
    /// The most tokens generated.
    pub max_new_tokens: usize,
    /// End-of-generation ids.
    pub eos_token_ids: Vec<TokenId>,
}

impl Default for LlamaCppSampling {
    fn default() -> Self {
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
            min_keep: 0,
            logit_bias: Vec::new(),
            seed: DEFAULT_SEED,
            max_new_tokens: 256,
            eos_token_ids: Vec::new(),
        }
    }
}

impl LlamaCppSampling {
    /// Builds the plan.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the field: `penalty_last_n < -1`,
    /// a negative or non-finite `temperature`, and the processors' own
    /// range errors (`top_p`, `min_p`, `typical_p`, `repeat_penalty`, ...)
    /// for values that are not "off".
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
        let keep = self.min_keep.max(1);
        let mut b = PlanBuilder::default();
        if !self.logit_bias.is_empty() {
            b.push(
                LogitBias::new(self.logit_bias.iter().copied())?,
                format!("LogitBias({} tokens)", self.logit_bias.len()),
            );
        }
        for stage in &self.samplers {
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
                LlamaCppStage::Temperature => {
                    let t = self.temperature;
                    if t != 1.0 {
                        b.push(Temperature::new(t)?, format!("Temperature({t})"));
                    }
                }
            }
        }
        let length = LengthLimit::NewTokens(self.max_new_tokens);
        let extras = Extras { seed: Some(self.seed), ..Extras::default() };
        let options = base_options(length, &self.eos_token_ids, &extras)?;
        Ok(b.finish(self.temperature == 0.0, options, length, 1))
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
