//! OpenAI-style request parameters.

use super::extensions::{self, Extensions};
use super::transformers::{self, Extras};
use super::{DecodingPlan, GenerationConfig, HiddenDefaults, ResponseFormat};
use crate::{Error, LogprobMode, TokenId};

/// The `logprobs` parameter, in either of the API's two spellings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Logprobs {
    /// Chat completions: `true` records the log-probability of every token;
    /// `top_logprobs` says how many alternatives.
    Enabled(bool),
    /// Legacy completions: an integer, the number of alternatives recorded
    /// with every token (in `[0, 5]`).
    Top(usize),
}

/// The sampling parameters of an OpenAI-style completion request, plus the
/// usual extensions (`top_k`, `min_p`, `repetition_penalty`, as vLLM,
/// llama.cpp's server and mistral.rs accept them).
///
/// [`OpenAiParams::build`] maps them onto the same pipeline as a
/// [`GenerationConfig`] (the model's `generation_config.json` provides the
/// defaults the request leaves unset, as vLLM does) and onto the
/// [`GenerateOptions`](crate::GenerateOptions) of the run. The
/// [module documentation](super) has the table.
///
/// | parameter | allowed | maps to |
/// |---|---|---|
/// | `temperature` | `[0, 2]` | `0`: greedy; otherwise sampling with [`Temperature`](crate::processors::Temperature) |
/// | `top_p` | `[0, 1]` | [`TopP`](crate::processors::TopP) |
/// | `presence_penalty`, `frequency_penalty` | `[-2, 2]` | [`PresenceFrequencyPenalty`](crate::processors::PresenceFrequencyPenalty) (generated tokens only), after the repetition penalty |
/// | `logit_bias` | token id → `[-100, 100]` | [`LogitBias`](crate::processors::LogitBias), first |
/// | `logprobs`, `top_logprobs` | bool + `[0, 20]`, or an integer in `[0, 5]` | [`LogprobMode::Raw`] and `top_logprobs` |
/// | `seed` | `[0, 2^64)` | the options' seed (choice `i` uses `seed + i`) |
/// | `stop` | a string or a list of non-empty strings | stop strings |
/// | `n` | at least 1 | [`DecodingPlan::n`] |
/// | `max_tokens` (`max_completion_tokens`) | at least 1 | `max_new_tokens` |
/// | `top_k` | `-1`, `0` (both off) or more | [`TopK`](crate::processors::TopK) |
/// | `min_p` | `[0, 1]` | [`MinP`](crate::processors::MinP) |
/// | `repetition_penalty` (llama-server's `repeat_penalty`) | `> 0` | [`RepetitionPenalty`](crate::processors::RepetitionPenalty) |
/// | `dry_multiplier`, `dry_base`, `dry_allowed_length`, `dry_penalty_last_n`, `dry_sequence_breakers` | as [`LlamaCppSampling`](super::LlamaCppSampling) | [`Dry`](crate::processors::Dry), after the presence and frequency penalties |
/// | `dynatemp_range`, `dynatemp_exponent` | `>= 0` | [`DynamicTemperature`](crate::processors::DynamicTemperature) instead of [`Temperature`](crate::processors::Temperature) when the range is above 0 |
/// | `top_n_sigma` | finite; `<= 0` is off | [`TopNSigma`](crate::processors::TopNSigma), right after the temperature |
/// | `xtc_probability`, `xtc_threshold` | `[0, 1]` each | [`Xtc`](crate::processors::Xtc), after the other truncations (seeded with `seed`) |
/// | `mirostat`, `mirostat_tau`, `mirostat_eta` | `0` or `2`; `>= 0`; `>= 0` | `2`: [`MirostatV2`](crate::processors::MirostatV2) after the temperature, **instead of** the truncations |
///
/// # llama-server's extra fields
///
/// llama.cpp's server accepts, on its OpenAI-compatible routes, the names
/// of its own samplers (the last five rows), with
/// [`LlamaCppSampling`](super::LlamaCppSampling)'s defaults and domains
/// (Mirostat 1.0 is an error). vLLM accepts none of them; a request without
/// them builds exactly as before. They slot into the transformers-style
/// order of this mapping: DRY with the penalties, the dynamic temperature
/// in place of the temperature, top-nσ first among the truncations (over
/// the whole vocabulary, as llama.cpp's default order has it), XTC last
/// among them, Mirostat 2.0 instead of them (as llama.cpp replaces its
/// chain; the biases, penalties and bans stay). For llama.cpp's own order
/// (temperature after the truncations), use
/// [`LlamaCppSampling`](super::LlamaCppSampling). DRY's breakers are strings
/// and need token ids: see [`OpenAiParams::resolve_dry_breakers`]. Like the
/// other unknown keys, llama-server fields this crate does not map
/// (`typical_p`, `repeat_last_n`, `samplers`, ...) are ignored. Its
/// `grammar` (GBNF, or Lark after a `%llguidance` header) and `json_schema`
/// fields, and OpenAI's `response_format`, are read into
/// [`OpenAiParams::response_format`].
///
/// # Differences from a generation config
///
/// - **Sampling is decided by the temperature**, as in the OpenAI API and
///   vLLM: a temperature of 0 is greedy, anything else samples. The model's
///   `do_sample` is ignored (vLLM ignores it too); its `temperature` is the
///   default when the request has none, else 1.
/// - **No hidden top-k**: unless the request or the model sets `top_k`,
///   nothing is truncated to 50 tokens ([`OpenAiParams::build_with`]
///   takes other [`HiddenDefaults`]).
/// - Log-probabilities are the model's ([`LogprobMode::Raw`], vLLM's
///   default); change [`DecodingPlan::set_options`] for processed ones.
/// - With no seed every run draws a fresh one, as OpenAI's API does, and
///   reports it in [`Generation::seed`](crate::Generation::seed) so it can
///   be replayed.
///
/// # Example
///
/// ```
/// use decoding::config::{GenerationConfig, OpenAiParams};
///
/// let request = OpenAiParams {
///     temperature: Some(0.8),
///     top_p: Some(0.95),
///     presence_penalty: Some(0.5),
///     logit_bias: Some(vec![(50256, -100.0)]),
///     stop: Some(vec!["\n\n".into()]),
///     max_tokens: Some(64),
///     seed: Some(7),
///     ..OpenAiParams::default()
/// };
/// let plan = request.build(&GenerationConfig::default())?;
/// assert_eq!(
///     plan.to_string(),
///     "LogitBias(1 tokens) -> PresenceFrequencyPenalty(presence=0.5, frequency=0) \
///      -> Temperature(0.8) -> TopP(0.95) => Categorical"
/// );
/// let options = plan.generate_options(10, 0)?;
/// assert_eq!((options.max_new_tokens(), options.seed()), (64, Some(7)));
/// assert_eq!(options.stop_strings(), ["\n\n"]);
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenAiParams {
    /// Sampling temperature in `[0, 2]`; 0 is greedy.
    pub temperature: Option<f64>,
    /// Nucleus mass in `[0, 1]`.
    pub top_p: Option<f64>,
    /// Presence penalty in `[-2, 2]`.
    pub presence_penalty: Option<f64>,
    /// Frequency penalty in `[-2, 2]`.
    pub frequency_penalty: Option<f64>,
    /// Bias per token id, each in `[-100, 100]`.
    pub logit_bias: Option<Vec<(TokenId, f64)>>,
    /// Whether (and, in the legacy form, how many) log-probabilities.
    pub logprobs: Option<Logprobs>,
    /// Alternatives per token, in `[0, 20]` (needs `logprobs: true`).
    pub top_logprobs: Option<usize>,
    /// The seed.
    pub seed: Option<u64>,
    /// Stop strings.
    pub stop: Option<Vec<String>>,
    /// Number of choices (at least 1).
    pub n: Option<usize>,
    /// Samples drawn, of which the `n` of highest cumulative
    /// log-probability are returned (vLLM and OpenAI's legacy completions;
    /// at least `n`): the plan's [`DecodingPlan::choices`].
    pub best_of: Option<usize>,
    /// The most tokens to generate (at least 1).
    pub max_tokens: Option<usize>,
    /// Top-k (extension); 0 is off (vLLM's `-1` reads as 0).
    pub top_k: Option<usize>,
    /// Min-p in `[0, 1]` (extension).
    pub min_p: Option<f64>,
    /// Repetition penalty, finite and `> 0` (extension).
    pub repetition_penalty: Option<f64>,
    /// Top-nσ's `n` (llama-server); `<= 0` is off.
    pub top_n_sigma: Option<f64>,
    /// XTC's chance of applying, in `[0, 1]` (llama-server; default 0, off).
    pub xtc_probability: Option<f64>,
    /// XTC's threshold, in `[0, 1]` (llama-server; default 0.1; above 0.5 is
    /// off).
    pub xtc_threshold: Option<f64>,
    /// Dynamic temperature range, `>= 0` (llama-server; default 0, off).
    pub dynatemp_range: Option<f64>,
    /// Dynamic temperature exponent, `>= 0` (llama-server; default 1).
    pub dynatemp_exponent: Option<f64>,
    /// 0 (off, the default) or 2, Mirostat 2.0 (llama-server; 1 is an
    /// error).
    pub mirostat: Option<i32>,
    /// Mirostat's target surprise `τ`, `>= 0` (llama-server; default 5).
    pub mirostat_tau: Option<f64>,
    /// Mirostat's learning rate `η`, `>= 0` (llama-server; default 0.1).
    pub mirostat_eta: Option<f64>,
    /// DRY's multiplier, `>= 0` (llama-server; default 0, off).
    pub dry_multiplier: Option<f64>,
    /// DRY's base; below 1 is off (llama-server; default 1.75).
    pub dry_base: Option<f64>,
    /// DRY's allowed length, at least 1 (llama-server; default 2).
    pub dry_allowed_length: Option<i32>,
    /// DRY's window: `-1` the whole history, `0` off (llama-server;
    /// default 64).
    pub dry_penalty_last_n: Option<i32>,
    /// DRY's sequence breakers, a non-empty list of strings (llama-server;
    /// default `["\n", ":", "\"", "*"]`).
    pub dry_sequence_breakers: Option<Vec<String>>,
    /// DRY's sequence breakers as token ids, which the DRY stage uses (not a
    /// request field; see [`OpenAiParams::resolve_dry_breakers`]).
    pub dry_sequence_breaker_ids: Option<Vec<TokenId>>,
    /// The structured output asked for: `response_format`, or
    /// llama-server's `json_schema` / `grammar` (see [`ResponseFormat`]).
    /// The plan does not hold it: [`OpenAiParams::constraint`] (feature
    /// `structured`) builds the stage to put first in the pipeline.
    pub response_format: Option<ResponseFormat>,
}

const TEMPERATURE: &str = "in [0, 2] (0 is greedy)";
const TOP_P: &str = "in [0, 1]";
const PENALTY: &str = "in [-2, 2]";
const LOGIT_BIAS: &str = "an object mapping token ids to biases in [-100, 100]";
const TOP_LOGPROBS: &str = "in [0, 20]";
const LEGACY_LOGPROBS: &str = "true, false or an integer in [0, 5]";
const MIN_P: &str = "in [0, 1]";
const REPETITION: &str = "finite and > 0 (1 disables it)";
const BREAKERS: &str = "a non-empty list of strings";

fn in_range(
    name: &'static str,
    expected: &'static str,
    v: Option<f64>,
    lo: f64,
    hi: f64,
) -> Result<(), Error> {
    match v {
        Some(x) if !(lo..=hi).contains(&x) => Err(Error::invalid(name, expected, x)),
        _ => Ok(()),
    }
}

impl OpenAiParams {
    /// Checks every set parameter against its range (see the table).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the first offending parameter and
    /// its allowed range (NaN and the infinities are out of every range, and
    /// so is a number beyond f32's range, which the stages would see as an
    /// infinity).
    pub fn validate(&self) -> Result<(), Error> {
        for (name, v) in [
            ("top_n_sigma", self.top_n_sigma),
            ("xtc_probability", self.xtc_probability),
            ("xtc_threshold", self.xtc_threshold),
            ("dynatemp_range", self.dynatemp_range),
            ("dynatemp_exponent", self.dynatemp_exponent),
            ("mirostat_tau", self.mirostat_tau),
            ("mirostat_eta", self.mirostat_eta),
            ("dry_multiplier", self.dry_multiplier),
            ("dry_base", self.dry_base),
            ("repetition_penalty", self.repetition_penalty),
        ] {
            extensions::within_f32(name, v)?;
        }
        in_range("temperature", TEMPERATURE, self.temperature, 0.0, 2.0)?;
        in_range("top_p", TOP_P, self.top_p, 0.0, 1.0)?;
        in_range("presence_penalty", PENALTY, self.presence_penalty, -2.0, 2.0)?;
        in_range("frequency_penalty", PENALTY, self.frequency_penalty, -2.0, 2.0)?;
        in_range("min_p", MIN_P, self.min_p, 0.0, 1.0)?;
        if let Some(r) = self.repetition_penalty.filter(|r| !(r.is_finite() && *r > 0.0)) {
            return Err(Error::invalid("repetition_penalty", REPETITION, r));
        }
        for &(id, b) in self.logit_bias.iter().flatten() {
            if !(-100.0..=100.0).contains(&b) {
                return Err(Error::invalid(
                    "logit_bias",
                    LOGIT_BIAS,
                    format_args!("{b} for token {id}"),
                ));
            }
        }
        if let Some(k) = self.top_logprobs.filter(|&k| k > 20) {
            return Err(Error::invalid("top_logprobs", TOP_LOGPROBS, k));
        }
        match (self.logprobs, self.top_logprobs) {
            (Some(Logprobs::Top(k)), _) if k > 5 => {
                return Err(Error::invalid("logprobs", LEGACY_LOGPROBS, k));
            }
            (Some(Logprobs::Top(_)), Some(k)) => {
                return Err(Error::invalid(
                    "top_logprobs",
                    "unset when logprobs is an integer (the legacy form says how many)",
                    k,
                ));
            }
            (None | Some(Logprobs::Enabled(false)), Some(k)) if k > 0 => {
                return Err(Error::invalid("top_logprobs", "0 unless logprobs is true", k));
            }
            _ => {}
        }
        if self.n == Some(0) {
            return Err(Error::invalid("n", "at least 1", 0));
        }
        if let Some(best_of) = self.best_of {
            let n = self.n.unwrap_or(1);
            if best_of < n {
                return Err(Error::invalid("best_of", "at least n (and at least 1)", best_of));
            }
            if best_of > 1 && self.temperature == Some(0.0) {
                return Err(Error::invalid("best_of", "1 when temperature is 0 (greedy)", best_of));
            }
        }
        if self.max_tokens == Some(0) {
            return Err(Error::invalid("max_tokens", "at least 1", 0));
        }
        if let Some(i) = self.stop.iter().flatten().position(String::is_empty) {
            return Err(Error::invalid(
                "stop",
                "a string or a list of non-empty strings",
                format_args!("\"\" at index {i}"),
            ));
        }
        if self.temperature == Some(0.0) && self.n.is_some_and(|n| n > 1) {
            return Err(Error::invalid(
                "n",
                "1 when temperature is 0 (greedy)",
                self.n.unwrap_or(1),
            ));
        }
        if self.dry_sequence_breakers.as_ref().is_some_and(Vec::is_empty) {
            return Err(Error::invalid("dry_sequence_breakers", BREAKERS, "[]"));
        }
        self.extensions().validate()
    }

    /// Sets [`OpenAiParams::dry_sequence_breaker_ids`] from the request's
    /// `dry_sequence_breakers` (llama-server's default four when unset):
    /// `ids_of` gives the token ids that count as one breaker (llama.cpp
    /// takes every vocabulary token whose text contains it). Empty strings
    /// are skipped; the ids are sorted and deduplicated.
    ///
    /// ```
    /// use decoding::config::{GenerationConfig, OpenAiParams};
    ///
    /// let request = OpenAiParams {
    ///     dry_multiplier: Some(0.8),
    ///     dry_sequence_breakers: Some(vec!["\n".into()]),
    ///     ..OpenAiParams::default()
    /// };
    /// // Without the ids, DRY cannot run as asked.
    /// assert!(request.build(&GenerationConfig::default()).is_err());
    /// let request = request.resolve_dry_breakers(|s| if s == "\n" { vec![198, 628] } else { vec![] });
    /// assert_eq!(
    ///     request.build(&GenerationConfig::default())?.stages(),
    ///     ["Dry(multiplier=0.8, base=1.75, allowed_length=2, last_n=64, breakers=2)"]
    /// );
    /// # Ok::<(), decoding::Error>(())
    /// ```
    pub fn resolve_dry_breakers(mut self, ids_of: impl FnMut(&str) -> Vec<TokenId>) -> Self {
        let breakers = self.extensions().dry_sequence_breakers;
        self.dry_sequence_breaker_ids = Some(extensions::breaker_ids(&breakers, ids_of));
        self
    }

    /// The llama.cpp samplers' settings, llama.cpp's defaults where unset.
    fn extensions(&self) -> Extensions {
        let d = Extensions::default();
        let f = |v: Option<f64>, default: f32| v.map_or(default, |x| x as f32);
        Extensions {
            top_n_sigma: f(self.top_n_sigma, d.top_n_sigma),
            xtc_probability: f(self.xtc_probability, d.xtc_probability),
            xtc_threshold: f(self.xtc_threshold, d.xtc_threshold),
            dynatemp_range: f(self.dynatemp_range, d.dynatemp_range),
            dynatemp_exponent: f(self.dynatemp_exponent, d.dynatemp_exponent),
            mirostat: self.mirostat.unwrap_or(d.mirostat),
            mirostat_tau: f(self.mirostat_tau, d.mirostat_tau),
            mirostat_eta: f(self.mirostat_eta, d.mirostat_eta),
            dry_multiplier: f(self.dry_multiplier, d.dry_multiplier),
            dry_base: f(self.dry_base, d.dry_base),
            dry_allowed_length: self.dry_allowed_length.unwrap_or(d.dry_allowed_length),
            dry_penalty_last_n: self.dry_penalty_last_n.unwrap_or(d.dry_penalty_last_n),
            dry_sequence_breakers: self
                .dry_sequence_breakers
                .clone()
                .unwrap_or(d.dry_sequence_breakers),
            dry_sequence_breaker_ids: self.dry_sequence_breaker_ids.clone(),
        }
    }

    /// The request's settings that a generation config also has, as one:
    /// what [`OpenAiParams::build`] merges on top of the model's.
    pub fn to_generation_config(&self) -> GenerationConfig {
        GenerationConfig {
            temperature: self.temperature,
            top_p: self.top_p,
            top_k: self.top_k,
            min_p: self.min_p,
            repetition_penalty: self.repetition_penalty,
            max_new_tokens: self.max_tokens,
            num_return_sequences: self.n,
            ..GenerationConfig::default()
        }
    }

    /// The constraint stage of the request's structured output, compiled
    /// for `vocab`: `None` when the request asks for none (or for text).
    /// Put it first in the plan's pipeline:
    ///
    /// ```
    /// use decoding::config::{GenerationConfig, OpenAiParams};
    /// use decoding::structured::TokenVocabulary;
    /// use decoding::Pipeline;
    ///
    /// let request = OpenAiParams::from_json(r#"{"temperature": 0.7,
    ///     "response_format": {"type": "json_schema", "json_schema":
    ///         {"name": "flag", "strict": true, "schema": {"type": "boolean"}}}}"#)?;
    /// let tokens = ["true", "false", "t", "rue", "<eos>"];
    /// let vocab = TokenVocabulary::from_detokenizer(&tokens, tokens.len(), &[4])?;
    /// let constraint = request.constraint(&vocab)?.expect("a schema was asked for");
    /// let (pipeline, sampler, options) = request.build(&GenerationConfig::default())?.into_parts();
    /// let pipeline = Pipeline::new().with(constraint).with(pipeline);
    /// # let _ = (pipeline, sampler, options);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`TokenVocabulary::constraint`](crate::structured::TokenVocabulary::constraint)'s,
    /// [`StructuredError::InvalidSchema`](crate::structured::StructuredError::InvalidSchema)
    /// for a schema that is not JSON, and
    /// [`StructuredError::InvalidGbnf`](crate::structured::StructuredError::InvalidGbnf)
    /// for a malformed `grammar` (read as GBNF, as llama-server reads it).
    #[cfg(feature = "structured")]
    pub fn constraint(
        &self,
        vocab: &crate::structured::TokenVocabulary,
    ) -> Result<Option<crate::structured::Constraint>, crate::structured::StructuredError> {
        match self.response_format.as_ref().map(ResponseFormat::grammar).transpose()?.flatten() {
            Some(grammar) => vocab.constraint(&grammar).map(Some),
            None => Ok(None),
        }
    }

    /// Builds the plan: `model` (the model's generation config, or
    /// `GenerationConfig::default()`) provides what the request leaves
    /// unset; no hidden top-k.
    ///
    /// # Errors
    ///
    /// As [`OpenAiParams::validate`] and [`GenerationConfig::build`] (the
    /// model's settings are checked too).
    pub fn build(&self, model: &GenerationConfig) -> Result<DecodingPlan, Error> {
        self.build_with(model, HiddenDefaults::TRANSFORMERS.without_top_k())
    }

    /// [`OpenAiParams::build`] with the given hidden defaults (for example
    /// `HiddenDefaults { max_length: 4096, ..HiddenDefaults::TRANSFORMERS.without_top_k() }`
    /// to allow up to 4096 new tokens when nothing limits the length).
    ///
    /// # Errors
    ///
    /// As [`OpenAiParams::build`].
    pub fn build_with(
        &self,
        model: &GenerationConfig,
        hidden: HiddenDefaults,
    ) -> Result<DecodingPlan, Error> {
        self.validate()?;
        let mut cfg = model.merge(&self.to_generation_config());
        let temperature = cfg.temperature.unwrap_or(1.0);
        cfg.do_sample = Some(temperature != 0.0);
        let (logprobs, top_logprobs) = match self.logprobs {
            Some(Logprobs::Enabled(true)) => {
                (Some(LogprobMode::Raw), self.top_logprobs.unwrap_or(0))
            }
            Some(Logprobs::Top(k)) => (Some(LogprobMode::Raw), k),
            Some(Logprobs::Enabled(false)) | None => (None, 0),
        };
        let extras = Extras {
            logit_bias: self.logit_bias.iter().flatten().map(|&(id, b)| (id, b as f32)).collect(),
            presence: self.presence_penalty.unwrap_or(0.0) as f32,
            frequency: self.frequency_penalty.unwrap_or(0.0) as f32,
            stop_strings: self.stop.clone().unwrap_or_default(),
            logprobs,
            top_logprobs,
            seed: self.seed,
            samplers: self.extensions(),
        };
        let plan = transformers::build(&cfg, hidden, &extras)?;
        match self.best_of {
            Some(best_of) => plan.with_best_of(best_of),
            None => Ok(plan),
        }
    }
}

#[cfg(feature = "serde")]
mod serde_impl {
    use serde::ser::SerializeMap;

    use super::super::json::{self, Entries, Value};
    use super::super::response_format::read as response_format;
    use super::ResponseFormat;
    use super::{Logprobs, OpenAiParams};
    use crate::Error;

    const NUMBER: &str = "a number";
    const INT: &str = "an integer";

    impl OpenAiParams {
        /// Reads the sampling parameters of a request body (a JSON object);
        /// every other key (`model`, `messages`, `prompt`, `stream`, ...) is
        /// ignored.
        ///
        /// # Errors
        ///
        /// [`Error::Load`] when the text is not a JSON object;
        /// [`Error::InvalidParameter`] naming the parameter when one has the
        /// wrong type or is out of range.
        ///
        /// ```
        /// use decoding::config::{Logprobs, OpenAiParams};
        ///
        /// let p = OpenAiParams::from_json(r#"{"model": "m", "messages": [],
        ///     "temperature": 0.5, "logprobs": true, "top_logprobs": 3,
        ///     "logit_bias": {"50256": -100}, "stop": "END", "top_k": -1}"#)?;
        /// assert_eq!(p.logprobs, Some(Logprobs::Enabled(true)));
        /// assert_eq!(p.logit_bias, Some(vec![(50256, -100.0)]));
        /// assert_eq!(p.stop, Some(vec!["END".to_string()]));
        /// assert_eq!(p.top_k, Some(0));
        /// # Ok::<(), decoding::Error>(())
        /// ```
        pub fn from_json(text: &str) -> Result<Self, Error> {
            Self::from_entries(json::parse_object(text, "request")?)
        }

        pub(crate) fn from_entries(entries: Entries) -> Result<Self, Error> {
            let mut p = OpenAiParams::default();
            for (key, v) in &entries.0 {
                match key.as_str() {
                    "temperature" => {
                        p.temperature = json::number(v, "temperature", super::TEMPERATURE)?
                    }
                    "top_p" => p.top_p = json::number(v, "top_p", super::TOP_P)?,
                    "presence_penalty" => {
                        p.presence_penalty = json::number(v, "presence_penalty", super::PENALTY)?
                    }
                    "frequency_penalty" => {
                        p.frequency_penalty = json::number(v, "frequency_penalty", super::PENALTY)?
                    }
                    "logit_bias" => {
                        p.logit_bias = json::id_map(v, "logit_bias", super::LOGIT_BIAS)?
                    }
                    "logprobs" => {
                        p.logprobs = match v {
                            Value::Null => None,
                            Value::Bool(b) => Some(Logprobs::Enabled(*b)),
                            _ => json::count(v, "logprobs", super::LEGACY_LOGPROBS)?
                                .map(Logprobs::Top),
                        }
                    }
                    "top_logprobs" => {
                        p.top_logprobs = json::count(v, "top_logprobs", super::TOP_LOGPROBS)?
                    }
                    "seed" => p.seed = json::u64_value(v, "seed", "an integer in [0, 2^64)")?,
                    "stop" => p.stop = json::strings(v, "stop")?,
                    "n" => p.n = json::count(v, "n", "an integer >= 1")?,
                    "best_of" => p.best_of = json::count(v, "best_of", "an integer >= 1")?,
                    "max_tokens" | "max_completion_tokens" => {
                        let name = if key == "max_tokens" {
                            "max_tokens"
                        } else {
                            "max_completion_tokens"
                        };
                        let n = json::count(v, name, "an integer >= 1")?;
                        if let (Some(a), Some(b)) = (p.max_tokens, n) {
                            if a != b {
                                return Err(Error::invalid(
                                    "max_completion_tokens",
                                    "equal to max_tokens when both are given",
                                    format_args!("{b} and max_tokens {a}"),
                                ));
                            }
                        }
                        p.max_tokens = n.or(p.max_tokens);
                    }
                    "top_k" => {
                        p.top_k = match v {
                            Value::Int(-1) => Some(0),
                            _ => json::count(
                                v,
                                "top_k",
                                "-1 or an integer >= 0 (-1 and 0 disable top-k)",
                            )?,
                        }
                    }
                    "min_p" => p.min_p = json::number(v, "min_p", super::MIN_P)?,
                    // llama-server spells it `repeat_penalty`.
                    "repetition_penalty" | "repeat_penalty" => {
                        p.repetition_penalty =
                            json::number(v, "repetition_penalty", super::REPETITION)?
                    }
                    "top_n_sigma" => p.top_n_sigma = json::number(v, "top_n_sigma", NUMBER)?,
                    "xtc_probability" => {
                        p.xtc_probability = json::number(v, "xtc_probability", NUMBER)?
                    }
                    "xtc_threshold" => p.xtc_threshold = json::number(v, "xtc_threshold", NUMBER)?,
                    "dynatemp_range" => {
                        p.dynatemp_range = json::number(v, "dynatemp_range", NUMBER)?
                    }
                    "dynatemp_exponent" => {
                        p.dynatemp_exponent = json::number(v, "dynatemp_exponent", NUMBER)?
                    }
                    "mirostat" => p.mirostat = json::int32(v, "mirostat", INT)?,
                    "mirostat_tau" => p.mirostat_tau = json::number(v, "mirostat_tau", NUMBER)?,
                    "mirostat_eta" => p.mirostat_eta = json::number(v, "mirostat_eta", NUMBER)?,
                    "dry_multiplier" => {
                        p.dry_multiplier = json::number(v, "dry_multiplier", NUMBER)?
                    }
                    "dry_base" => p.dry_base = json::number(v, "dry_base", NUMBER)?,
                    "dry_allowed_length" => {
                        p.dry_allowed_length = json::int32(v, "dry_allowed_length", INT)?
                    }
                    "dry_penalty_last_n" => {
                        p.dry_penalty_last_n = json::int32(v, "dry_penalty_last_n", INT)?
                    }
                    "dry_sequence_breakers" => {
                        p.dry_sequence_breakers =
                            json::string_list(v, "dry_sequence_breakers", super::BREAKERS)?
                    }
                    "response_format" => {
                        let f = response_format::response_format(v)?;
                        p.response_format = response_format::merge(p.response_format, f)?;
                    }
                    "json_schema" => {
                        let f = response_format::json_schema(v)?;
                        p.response_format = response_format::merge(p.response_format, f)?;
                    }
                    "grammar" => {
                        let f = response_format::grammar(v)?;
                        p.response_format = response_format::merge(p.response_format, f)?;
                    }
                    _ => {}
                }
            }
            Ok(p)
        }
    }

    json::deserialize_from_entries!(OpenAiParams);

    impl serde::Serialize for OpenAiParams {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(None)?;
            json::serialize_set_fields!(map, self; temperature, top_p, presence_penalty, frequency_penalty);
            if let Some(bias) = &self.logit_bias {
                let obj: Vec<(String, f64)> =
                    bias.iter().map(|(id, b)| (id.to_string(), *b)).collect();
                map.serialize_entry("logit_bias", &LogitBiasMap(&obj))?;
            }
            match self.logprobs {
                Some(Logprobs::Enabled(b)) => map.serialize_entry("logprobs", &b)?,
                Some(Logprobs::Top(k)) => map.serialize_entry("logprobs", &k)?,
                None => {}
            }
            json::serialize_set_fields!(map, self; top_logprobs, seed, stop, n, best_of, max_tokens, top_k, min_p, repetition_penalty);
            json::serialize_set_fields!(map, self; top_n_sigma,
                xtc_probability,
                xtc_threshold,
                dynatemp_range,
                dynatemp_exponent,
                mirostat,
                mirostat_tau,
                mirostat_eta,
                dry_multiplier,
                dry_base,
                dry_allowed_length,
                dry_penalty_last_n,
                dry_sequence_breakers,
            );
            match &self.response_format {
                None => {}
                Some(ResponseFormat::Text) => {
                    map.serialize_entry("response_format", &serde_json::json!({"type": "text"}))?
                }
                Some(ResponseFormat::JsonObject) => map.serialize_entry(
                    "response_format",
                    &serde_json::json!({"type": "json_object"}),
                )?,
                Some(ResponseFormat::JsonSchema { schema, name, strict }) => {
                    let schema: serde_json::Value =
                        serde_json::from_str(schema).map_err(serde::ser::Error::custom)?;
                    let mut spec = serde_json::json!({"schema": schema});
                    if let Some(name) = name {
                        spec["name"] = name.clone().into();
                    }
                    if let Some(strict) = strict {
                        spec["strict"] = (*strict).into();
                    }
                    map.serialize_entry(
                        "response_format",
                        &serde_json::json!({"type": "json_schema", "json_schema": spec}),
                    )?
                }
                Some(ResponseFormat::Grammar(text)) => map.serialize_entry("grammar", text)?,
            }
            map.end()
        }
    }

    /// Serializes `(key, value)` pairs as an object.
    struct LogitBiasMap<'a>(&'a [(String, f64)]);

    impl serde::Serialize for LogitBiasMap<'_> {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(Some(self.0.len()))?;
            for (k, v) in self.0 {
                map.serialize_entry(k, v)?;
            }
            map.end()
        }
    }
}
