//! `GenerationConfig`: the fields of a model's `generation_config.json`.

use super::EosTokenId;
use crate::{Error, TokenId};

/// The decoding settings of a Hugging Face `generation_config.json`, field
/// for field, with transformers' names.
///
/// Every field is optional: `None` means *unset*, which is not the same as
/// the default value. transformers fills unset fields with hidden defaults
/// at generation time ([`HiddenDefaults`](super::HiddenDefaults)); most are neutral, but sampling
/// with no `top_k` anywhere means `top_k = 50`. [`GenerationConfig::merge`]
/// puts user overrides on top of a file, as `generate(**kwargs)` puts its
/// arguments on top of `model.generation_config`.
///
/// [`GenerationConfig::build`] turns the settings into a [`DecodingPlan`](super::DecodingPlan)
/// that reproduces transformers' `_get_logits_processor` exactly: the same
/// processors, in the same order, with the same gating. The
/// [module documentation](super) has the field-by-field table.
///
/// transformers has no top-nσ, XTC, dynamic temperature, Mirostat or DRY:
/// a generation config has no field for them and never builds them (keys
/// such as `top_n_sigma` or `dry_multiplier` in a file are unknown keys,
/// ignored like the others). Use [`LlamaCppSampling`](super::LlamaCppSampling)
/// or [`OpenAiParams`](super::OpenAiParams) for them.
///
/// # Length
///
/// - `max_new_tokens` set: at most that many generated tokens
///   ([`LengthLimit::NewTokens`](super::LengthLimit::NewTokens)); it takes
///   precedence over `max_length`, as in transformers.
/// - otherwise `max_length` set: the whole sequence, prompt included, is at
///   most that long ([`LengthLimit::Total`](super::LengthLimit::Total)).
/// - neither: [`HiddenDefaults::max_length`](super::HiddenDefaults::max_length) (20) new tokens.
///
/// # Reading and writing JSON (feature `serde`)
///
/// `GenerationConfig::from_json` and `GenerationConfig::from_file` read
/// a `generation_config.json`; the type also implements serde's
/// `Deserialize` and `Serialize` for use inside other documents. Unknown
/// keys (`transformers_version`, `_from_model_config`, `use_cache`, ...)
/// are ignored. A key this crate knows but cannot reproduce (group beam
/// search, contrastive search, SynthID watermarking, ...) set to a value that
/// changes decoding is recorded in [`GenerationConfig::unsupported`], and
/// building fails until it is removed from there. A value of the wrong type
/// or out of range is an [`Error::InvalidParameter`] naming the field and
/// the allowed range; `null` is the same as an absent key. Writing skips
/// unset fields.
///
/// # Example
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use decoding::config::GenerationConfig;
///
/// // A Qwen2.5-Instruct generation_config.json.
/// let model = GenerationConfig::from_json(r#"{
///     "bos_token_id": 151643, "pad_token_id": 151643, "do_sample": true,
///     "eos_token_id": [151645, 151643], "repetition_penalty": 1.05,
///     "temperature": 0.7, "top_p": 0.8, "top_k": 20,
///     "transformers_version": "4.37.0"
/// }"#)?;
/// let user = GenerationConfig { temperature: Some(0.2), max_new_tokens: Some(256), ..GenerationConfig::default() };
/// let plan = model.merge(&user).build()?;
/// assert_eq!(
///     plan.to_string(),
///     "RepetitionPenalty(1.05) -> Temperature(0.2) -> TopK(k=20) -> TopP(0.8) => Categorical"
/// );
/// assert_eq!(plan.options().eos_tokens(), [151645, 151643]);
/// # }
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GenerationConfig {
    /// Sample (`true`) or decode greedily (`false`, the hidden default).
    /// Temperature and the truncations apply only when sampling.
    pub do_sample: Option<bool>,
    /// Temperature, finite and `>= 0`; `> 0` when sampling. 1 is neutral.
    pub temperature: Option<f64>,
    /// Top-k; 0 disables it. Unset while sampling: the hidden 50.
    pub top_k: Option<usize>,
    /// Nucleus mass in `[0, 1]`; 1 disables it.
    pub top_p: Option<f64>,
    /// Min-p in `[0, 1]`.
    pub min_p: Option<f64>,
    /// Locally typical mass in `(0, 1]`; 1 disables it.
    pub typical_p: Option<f64>,
    /// Epsilon cutoff in `[0, 1)`; 0 disables it.
    pub epsilon_cutoff: Option<f64>,
    /// Eta cutoff in `[0, 1)`; 0 disables it.
    pub eta_cutoff: Option<f64>,
    /// Top-H entropy fraction in `(0, 1]`.
    pub top_h: Option<f64>,
    /// CTRL repetition penalty, finite and `> 0`; 1 disables it.
    pub repetition_penalty: Option<f64>,
    /// N-gram size that may not repeat; 0 disables it.
    pub no_repeat_ngram_size: Option<usize>,
    /// Token sequences that may not be generated.
    pub bad_words_ids: Option<Vec<Vec<TokenId>>>,
    /// `[ids, bias]` pairs: a bias on the token completing each sequence.
    pub sequence_bias: Option<Vec<(Vec<TokenId>, f64)>>,
    /// Tokens never generated.
    pub suppress_tokens: Option<Vec<TokenId>>,
    /// Tokens not generated at the first position.
    pub begin_suppress_tokens: Option<Vec<TokenId>>,
    /// EOS is banned until this many tokens are generated (needs EOS ids).
    pub min_new_tokens: Option<usize>,
    /// EOS is banned until the whole sequence is this long (needs EOS ids;
    /// ignored when `min_new_tokens` is set, as in transformers).
    pub min_length: Option<usize>,
    /// At most this many generated tokens (at least 1).
    pub max_new_tokens: Option<usize>,
    /// At most this many tokens in the whole sequence (at least 1).
    pub max_length: Option<usize>,
    /// The end-of-sequence id or ids.
    pub eos_token_id: Option<EosTokenId>,
    /// The padding id (read and written back; decoding does not use it).
    pub pad_token_id: Option<TokenId>,
    /// The beginning-of-sequence id (read and written back; decoding does
    /// not use it: put it in the prompt).
    pub bos_token_id: Option<TokenId>,
    /// The token forced after a one-token history
    /// ([`ForcedBosToken`](crate::processors::ForcedBosToken)).
    pub forced_bos_token_id: Option<TokenId>,
    /// The id or ids forced as the last token at the length limit
    /// ([`ForcedEosToken`](crate::processors::ForcedEosToken)).
    pub forced_eos_token_id: Option<EosTokenId>,
    /// `(start_index, decay_factor)`: the EOS scores grow by
    /// `decay_factor^k` past `start_index` new tokens (needs EOS ids;
    /// [`ExponentialDecayLengthPenalty`](crate::processors::ExponentialDecayLengthPenalty)).
    pub exponential_decay_length_penalty: Option<(usize, f64)>,
    /// Renormalize the processed scores to log-probabilities, last.
    pub renormalize_logits: Option<bool>,
    /// Independent choices per prompt (`> 1` needs sampling).
    pub num_return_sequences: Option<usize>,
    /// Beams: more than 1 is a beam search
    /// ([`DecodingPlan::beam_search`](super::DecodingPlan::beam_search)),
    /// beam sampling with `do_sample`.
    pub num_beams: Option<usize>,
    /// Beam search: a finished hypothesis scores `sum / length^length_penalty`
    /// (default 1).
    pub length_penalty: Option<f64>,
    /// Beam search: `false`, `true` or `"never"` in the file (default
    /// `false`), see [`EarlyStopping`](crate::EarlyStopping).
    pub early_stopping: Option<crate::EarlyStopping>,
    /// Stop strings (a detokenizer is needed at generation time).
    pub stop_strings: Option<Vec<String>>,
    /// Classifier-free guidance scale, finite; 1 disables it. The plan
    /// reports it ([`DecodingPlan::guidance_scale`](super::DecodingPlan::guidance_scale));
    /// the run wraps its two models in a
    /// [`ClassifierFreeGuidance`](crate::ClassifierFreeGuidance).
    pub guidance_scale: Option<f64>,
    /// Prompt lookup decoding: tokens copied per round (at least 1); the
    /// plan's [`DecodingPlan::prompt_lookup`](super::DecodingPlan::prompt_lookup).
    pub prompt_lookup_num_tokens: Option<usize>,
    /// Prompt lookup: the longest n-gram matched (at least 1; 2 when unset).
    pub max_matching_ngram_size: Option<usize>,
    /// The green-list watermark, added after the warpers as transformers
    /// adds it ([`Watermark`](crate::processors::Watermark)).
    pub watermarking_config: Option<WatermarkingConfig>,
    /// Settings read from a file that this crate does not implement and that
    /// would change decoding; building fails while this is not empty.
    pub unsupported: Vec<UnsupportedSetting>,
}

/// transformers' `watermarking_config` (the Kirchenbauer et al. watermark;
/// a SynthID configuration, with `ngram_len`, is unsupported). Unset keys
/// take transformers' defaults; the vocabulary size is the model's row
/// size, known when the first row is processed.
#[derive(Debug, Clone, PartialEq)]
pub struct WatermarkingConfig {
    /// `γ`, in `(0, 1)` (default 0.25).
    pub greenlist_ratio: f64,
    /// `δ`, finite (default 2).
    pub bias: f64,
    /// The hash key (default 15485863).
    pub hashing_key: u64,
    /// `"lefthash"` (default) or `"selfhash"`.
    pub seeding_scheme: crate::watermark::SeedingScheme,
    /// At least 1 (default 1).
    pub context_width: usize,
}

impl Default for WatermarkingConfig {
    fn default() -> Self {
        WatermarkingConfig {
            greenlist_ratio: 0.25,
            bias: 2.0,
            hashing_key: crate::watermark::DEFAULT_HASHING_KEY,
            seeding_scheme: crate::watermark::SeedingScheme::LeftHash,
            context_width: 1,
        }
    }
}

impl WatermarkingConfig {
    /// The [`WatermarkConfig`](crate::watermark::WatermarkConfig) of a
    /// vocabulary of `vocab_size` tokens.
    ///
    /// # Errors
    ///
    /// Those of [`WatermarkConfig`](crate::watermark::WatermarkConfig)'s
    /// constructor and setters.
    pub fn config(&self, vocab_size: usize) -> Result<crate::watermark::WatermarkConfig, Error> {
        crate::watermark::WatermarkConfig::new(vocab_size)?
            .with_greenlist_ratio(self.greenlist_ratio)?
            .with_bias(self.bias as f32)?
            .with_hashing_key(self.hashing_key)
            .with_seeding_scheme(self.seeding_scheme)
            .with_context_width(self.context_width)
    }

    /// Checks every parameter but the vocabulary size (without drawing
    /// selfhash's table).
    pub(crate) fn check(&self) -> Result<(), Error> {
        crate::watermark::WatermarkConfig::new(2)?
            .with_greenlist_ratio(self.greenlist_ratio)?
            .with_bias(self.bias as f32)?
            .with_context_width(self.context_width)
            .map(drop)
    }
}

/// A `generation_config.json` key that selects behavior this crate does not
/// implement, with the value that was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedSetting {
    /// The key, as in the file.
    pub key: &'static str,
    /// The value, as read.
    pub value: String,
    /// What the setting would have turned on.
    pub feature: &'static str,
}

/// Copies each field of `over` that is set, else the field of `base`.
macro_rules! merged {
    ($base:ident, $over:ident; $($field:ident),* $(,)?) => {
        GenerationConfig {
            $($field: $over.$field.clone().or_else(|| $base.$field.clone()),)*
            unsupported: {
                let mut u = $base.unsupported.clone();
                u.retain(|s| !$over.unsupported.iter().any(|o| o.key == s.key));
                u.extend($over.unsupported.iter().cloned());
                u
            },
        }
    };
}

impl GenerationConfig {
    /// `self` with every field that `overrides` sets replaced by the
    /// override: the model's file below, the user's settings on top. A
    /// field can be overridden to a value that disables it (`top_k: 0`,
    /// `top_p: 1.0`), not back to unset. [`GenerationConfig::unsupported`]
    /// is the union (for a key in both, the override's entry).
    ///
    /// ```
    /// use decoding::config::GenerationConfig;
    ///
    /// let file = GenerationConfig { top_k: Some(20), temperature: Some(0.7), ..Default::default() };
    /// let user = GenerationConfig { temperature: Some(0.2), ..Default::default() };
    /// let merged = file.merge(&user);
    /// assert_eq!((merged.top_k, merged.temperature), (Some(20), Some(0.2)));
    /// ```
    pub fn merge(&self, overrides: &GenerationConfig) -> GenerationConfig {
        let (base, over) = (self, overrides);
        merged!(base, over;
            do_sample, temperature, top_k, top_p, min_p, typical_p, epsilon_cutoff, eta_cutoff,
            top_h, repetition_penalty, no_repeat_ngram_size, bad_words_ids, sequence_bias,
            suppress_tokens, begin_suppress_tokens, min_new_tokens, min_length, max_new_tokens,
            max_length, eos_token_id, pad_token_id, bos_token_id, forced_bos_token_id,
            forced_eos_token_id, exponential_decay_length_penalty, renormalize_logits,
            num_return_sequences, num_beams, length_penalty, early_stopping, stop_strings,
            guidance_scale, prompt_lookup_num_tokens, max_matching_ngram_size, watermarking_config,
        )
    }

    /// The end-of-sequence ids (empty when unset).
    pub fn eos_ids(&self) -> &[TokenId] {
        self.eos_token_id.as_ref().map_or(&[], EosTokenId::ids)
    }

    /// Checks every set field against its domain, whatever `do_sample`
    /// says (a temperature of `-1` is wrong even for greedy decoding).
    /// [`GenerationConfig::build`] runs this first, then the checks that
    /// depend on sampling (`temperature > 0`, `num_return_sequences > 1`).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] naming the first offending field and its
    /// allowed range (NaN and the infinities are out of every range, and a
    /// number beyond f32's range, which the stages would see as an
    /// infinity, is out too); for an [`UnsupportedSetting`], its key.
    pub fn validate(&self) -> Result<(), Error> {
        if let Some(u) = self.unsupported.first() {
            return Err(Error::invalid(u.key, u.feature, &u.value));
        }
        for (name, v) in [
            ("temperature", self.temperature),
            ("top_p", self.top_p),
            ("min_p", self.min_p),
            ("typical_p", self.typical_p),
            ("epsilon_cutoff", self.epsilon_cutoff),
            ("eta_cutoff", self.eta_cutoff),
            ("top_h", self.top_h),
            ("repetition_penalty", self.repetition_penalty),
            ("length_penalty", self.length_penalty),
        ] {
            super::extensions::within_f32(name, v)?;
        }
        for (_, bias) in self.sequence_bias.iter().flatten() {
            super::extensions::within_f32("sequence_bias", Some(*bias))?;
        }
        let check =
            |name: &'static str, expected: &'static str, v: Option<f64>, ok: fn(f64) -> bool| {
                match v {
                    Some(x) if !ok(x) => Err(Error::invalid(name, expected, x)),
                    _ => Ok(()),
                }
            };
        check("temperature", TEMPERATURE, self.temperature, |t| t.is_finite() && t >= 0.0)?;
        check("top_p", "in [0, 1] (1 disables top-p)", self.top_p, |p| (0.0..=1.0).contains(&p))?;
        check("min_p", "in [0, 1]", self.min_p, |p| (0.0..=1.0).contains(&p))?;
        check("typical_p", "in (0, 1] (1 disables typical sampling)", self.typical_p, |p| {
            p > 0.0 && p <= 1.0
        })?;
        check("epsilon_cutoff", "in [0, 1) (0 disables it)", self.epsilon_cutoff, |e| {
            (0.0..1.0).contains(&e)
        })?;
        check("eta_cutoff", "in [0, 1) (0 disables it)", self.eta_cutoff, |e| {
            (0.0..1.0).contains(&e)
        })?;
        check("top_h", "in (0, 1]", self.top_h, |h| h > 0.0 && h <= 1.0)?;
        check(
            "repetition_penalty",
            "finite and > 0 (1 disables it)",
            self.repetition_penalty,
            |r| r.is_finite() && r > 0.0,
        )?;
        let at_least_one = |name: &'static str, v: Option<usize>| match v {
            Some(0) => Err(Error::invalid(name, "at least 1", 0)),
            _ => Ok(()),
        };
        at_least_one("max_new_tokens", self.max_new_tokens)?;
        at_least_one("max_length", self.max_length)?;
        at_least_one("num_return_sequences", self.num_return_sequences)?;
        at_least_one("num_beams", self.num_beams)?;
        at_least_one("prompt_lookup_num_tokens", self.prompt_lookup_num_tokens)?;
        at_least_one("max_matching_ngram_size", self.max_matching_ngram_size)?;
        check("guidance_scale", "a finite number", self.guidance_scale, f64::is_finite)?;
        super::extensions::within_f32("guidance_scale", self.guidance_scale)?;
        if let Some(w) = &self.watermarking_config {
            // Every check but the vocabulary's, which the model sets.
            w.check()?;
        }
        check("length_penalty", "a finite number", self.length_penalty, f64::is_finite)?;
        if let Some(bad) = &self.bad_words_ids {
            if bad.is_empty() || bad.iter().any(Vec::is_empty) {
                return Err(Error::invalid(
                    "bad_words_ids",
                    "a non-empty list of non-empty token id lists",
                    format_args!("{bad:?}"),
                ));
            }
        }
        if let Some(bias) = &self.sequence_bias {
            if bias.is_empty() || bias.iter().any(|(ids, b)| ids.is_empty() || !b.is_finite()) {
                return Err(Error::invalid(
                    "sequence_bias",
                    "a non-empty list of [ids, bias] pairs, each with ids and a finite bias",
                    format_args!("{bias:?}"),
                ));
            }
        }
        if let Some(EosTokenId::Many(ids)) = &self.eos_token_id {
            if ids.is_empty() {
                return Err(Error::invalid(
                    "eos_token_id",
                    "a token id or a non-empty list of ids",
                    "[]",
                ));
            }
        }
        if let Some(i) = self.stop_strings.iter().flatten().position(String::is_empty) {
            return Err(Error::invalid(
                "stop_strings",
                "non-empty strings",
                format_args!("\"\" at index {i}"),
            ));
        }
        Ok(())
    }
}

pub(crate) const TEMPERATURE: &str =
    "finite and >= 0 (1 is neutral; > 0 when do_sample is true, greedy is do_sample = false)";

#[cfg(feature = "serde")]
mod serde_impl {
    use serde::ser::SerializeMap;

    use super::super::json::{self, Entries, Value};
    use super::{GenerationConfig, UnsupportedSetting, WatermarkingConfig};
    use crate::Error;

    /// Keys transformers knows that would change decoding in ways this
    /// crate does not implement, with the test for a value that changes
    /// nothing.
    /// Whether a value leaves decoding unchanged.
    type Neutral = fn(&Value) -> bool;

    const UNSUPPORTED: &[(&str, &str, Neutral)] = &[
        ("num_beam_groups", "unset or 1 (group beam search is not implemented)", |v| {
            is_num(v, 1.0)
        }),
        ("diversity_penalty", "unset or 0 (group beam search is not implemented)", |v| {
            is_num(v, 0.0)
        }),
        ("penalty_alpha", "unset or 0 (contrastive search is not implemented)", |v| is_num(v, 0.0)),
        ("dola_layers", "unset (DoLa decoding is not implemented)", Value::is_null),
        ("constraints", "unset (constrained beam search is not implemented)", Value::is_null),
        ("force_words_ids", "unset (constrained beam search is not implemented)", Value::is_null),
        ("remove_invalid_values", "unset or false (NaN and inf logits are errors here)", is_false),
        ("token_healing", "unset or false (token healing is not implemented)", is_false),
        ("assistant_early_exit", "unset (assisted decoding is not implemented)", Value::is_null),
        ("use_mtp", "unset or false (multi-token prediction is not implemented)", is_false),
    ];

    /// transformers' `early_stopping`: `false`, `true` or `"never"`.
    fn early_stopping(v: &Value) -> Result<Option<crate::EarlyStopping>, Error> {
        use crate::EarlyStopping;
        match v {
            Value::Null => Ok(None),
            Value::Bool(false) => Ok(Some(EarlyStopping::Heuristic)),
            Value::Bool(true) => Ok(Some(EarlyStopping::Done)),
            Value::Str(s) if s == "never" => Ok(Some(EarlyStopping::Never)),
            other => Err(Error::invalid("early_stopping", "false, true or \"never\"", other)),
        }
    }

    /// transformers' `watermarking_config` object: `Ok(Err(()))` for a
    /// SynthID one (it has `ngram_len`).
    fn watermarking(v: &Value) -> Result<Result<Option<WatermarkingConfig>, ()>, Error> {
        const NAME: &str = "watermarking_config";
        let entries = match v {
            Value::Null => return Ok(Ok(None)),
            Value::Object(entries) => entries,
            other => return Err(Error::invalid(NAME, "an object", other)),
        };
        let mut w = WatermarkingConfig::default();
        for (key, v) in entries {
            match key.as_str() {
                "ngram_len" => return Ok(Err(())),
                "greenlist_ratio" => {
                    if let Some(x) = json::number(v, "greenlist_ratio", "a number in (0, 1)")? {
                        w.greenlist_ratio = x;
                    }
                }
                "bias" => {
                    if let Some(x) = json::number(v, "bias", "a finite number")? {
                        w.bias = x;
                    }
                }
                "hashing_key" => {
                    if let Some(x) = json::u64_value(v, "hashing_key", "an integer >= 0")? {
                        w.hashing_key = x;
                    }
                }
                "seeding_scheme" => match v {
                    Value::Null => {}
                    Value::Str(name) => {
                        w.seeding_scheme = crate::watermark::SeedingScheme::from_name(name)?
                    }
                    other => {
                        return Err(Error::invalid(
                            "seeding_scheme",
                            "\"lefthash\" or \"selfhash\"",
                            other,
                        ));
                    }
                },
                "context_width" => {
                    if let Some(x) = json::count(v, "context_width", "an integer >= 1")? {
                        w.context_width = x;
                    }
                }
                _ => {}
            }
        }
        Ok(Ok(Some(w)))
    }

    fn is_num(v: &Value, neutral: f64) -> bool {
        v.is_null() || v.as_number() == Some(neutral)
    }

    fn is_false(v: &Value) -> bool {
        matches!(v, Value::Null | Value::Bool(false))
    }

    const COUNT: &str = "an integer >= 0";

    impl GenerationConfig {
        /// Reads a `generation_config.json` document.
        ///
        /// # Errors
        ///
        /// [`Error::Load`] when the text is not a JSON object;
        /// [`Error::InvalidParameter`] naming the field when a known field
        /// has the wrong type or an out-of-range value.
        pub fn from_json(text: &str) -> Result<Self, Error> {
            Self::from_entries(json::parse_object(text, "generation_config.json")?)
        }

        /// Reads a `generation_config.json` file.
        ///
        /// # Errors
        ///
        /// [`Error::Load`] naming the path when the file cannot be read or
        /// parsed, otherwise as [`GenerationConfig::from_json`].
        pub fn from_file(path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
            let path = path.as_ref();
            let text = json::read_file(path)?;
            let entries = json::parse_object(&text, &path.display().to_string())?;
            Self::from_entries(entries)
        }

        /// The set fields as a JSON object (pretty-printed, transformers'
        /// key names, unset fields left out).
        pub fn to_json(&self) -> String {
            serde_json::to_string_pretty(self).expect("a GenerationConfig always serializes")
        }

        pub(crate) fn from_entries(entries: Entries) -> Result<Self, Error> {
            let mut c = GenerationConfig::default();
            for (key, v) in &entries.0 {
                match key.as_str() {
                    "do_sample" => c.do_sample = json::boolean(v, "do_sample")?,
                    "temperature" => c.temperature = json::number(v, "temperature", "a number")?,
                    "top_k" => {
                        c.top_k = json::count(v, "top_k", "an integer >= 0 (0 disables top-k)")?
                    }
                    "top_p" => c.top_p = json::number(v, "top_p", "a number in [0, 1]")?,
                    "min_p" => c.min_p = json::number(v, "min_p", "a number in [0, 1]")?,
                    "typical_p" => {
                        c.typical_p = json::number(v, "typical_p", "a number in (0, 1]")?
                    }
                    "epsilon_cutoff" => {
                        c.epsilon_cutoff = json::number(v, "epsilon_cutoff", "a number in [0, 1)")?
                    }
                    "eta_cutoff" => {
                        c.eta_cutoff = json::number(v, "eta_cutoff", "a number in [0, 1)")?
                    }
                    "top_h" => c.top_h = json::number(v, "top_h", "a number in (0, 1]")?,
                    "repetition_penalty" => {
                        c.repetition_penalty =
                            json::number(v, "repetition_penalty", "a number > 0")?
                    }
                    "no_repeat_ngram_size" => {
                        c.no_repeat_ngram_size = json::count(v, "no_repeat_ngram_size", COUNT)?
                    }
                    "bad_words_ids" => c.bad_words_ids = json::token_id_lists(v, "bad_words_ids")?,
                    "sequence_bias" => c.sequence_bias = json::sequence_bias(v, "sequence_bias")?,
                    "suppress_tokens" => c.suppress_tokens = json::token_ids(v, "suppress_tokens")?,
                    "begin_suppress_tokens" => {
                        c.begin_suppress_tokens = json::token_ids(v, "begin_suppress_tokens")?
                    }
                    "min_new_tokens" => c.min_new_tokens = json::count(v, "min_new_tokens", COUNT)?,
                    "min_length" => c.min_length = json::count(v, "min_length", COUNT)?,
                    "max_new_tokens" => {
                        c.max_new_tokens = json::count(v, "max_new_tokens", "an integer >= 1")?
                    }
                    "max_length" => c.max_length = json::count(v, "max_length", "an integer >= 1")?,
                    "eos_token_id" => c.eos_token_id = json::eos(v, "eos_token_id")?,
                    "pad_token_id" => c.pad_token_id = json::token_id(v, "pad_token_id")?,
                    "bos_token_id" => c.bos_token_id = json::token_id(v, "bos_token_id")?,
                    "forced_bos_token_id" => {
                        c.forced_bos_token_id = json::token_id(v, "forced_bos_token_id")?
                    }
                    "forced_eos_token_id" => {
                        c.forced_eos_token_id = json::eos(v, "forced_eos_token_id")?
                    }
                    "exponential_decay_length_penalty" => {
                        c.exponential_decay_length_penalty =
                            json::count_and_number(v, "exponential_decay_length_penalty")?
                    }
                    "renormalize_logits" => {
                        c.renormalize_logits = json::boolean(v, "renormalize_logits")?
                    }
                    "num_return_sequences" => {
                        c.num_return_sequences =
                            json::count(v, "num_return_sequences", "an integer >= 1")?
                    }
                    "num_beams" => c.num_beams = json::count(v, "num_beams", "an integer >= 1")?,
                    "length_penalty" => {
                        c.length_penalty = json::number(v, "length_penalty", "a number")?
                    }
                    "early_stopping" => c.early_stopping = early_stopping(v)?,
                    "stop_strings" => c.stop_strings = json::strings(v, "stop_strings")?,
                    "guidance_scale" => {
                        c.guidance_scale = json::number(v, "guidance_scale", "a number")?
                    }
                    "prompt_lookup_num_tokens" => {
                        c.prompt_lookup_num_tokens =
                            json::count(v, "prompt_lookup_num_tokens", "an integer >= 1")?
                    }
                    "max_matching_ngram_size" => {
                        c.max_matching_ngram_size =
                            json::count(v, "max_matching_ngram_size", "an integer >= 1")?
                    }
                    "watermarking_config" => match watermarking(v)? {
                        Ok(w) => c.watermarking_config = w,
                        Err(()) => c.unsupported.push(UnsupportedSetting {
                            key: "watermarking_config",
                            value: v.to_string(),
                            feature: "unset or a Kirchenbauer watermark (SynthID watermarking, \
                                      with ngram_len, is not implemented)",
                        }),
                    },
                    other => {
                        if let Some(&(key, feature, neutral)) =
                            UNSUPPORTED.iter().find(|(k, _, _)| *k == other)
                        {
                            if !neutral(v) {
                                c.unsupported.push(UnsupportedSetting {
                                    key,
                                    value: v.to_string(),
                                    feature,
                                });
                            }
                        }
                    }
                }
            }
            Ok(c)
        }
    }

    json::deserialize_from_entries!(GenerationConfig);

    impl serde::Serialize for GenerationConfig {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            let mut map = serializer.serialize_map(None)?;
            json::serialize_set_fields!(map, self; bos_token_id,
                eos_token_id,
                pad_token_id,
                do_sample,
                temperature,
                top_k,
                top_p,
                min_p,
                typical_p,
                epsilon_cutoff,
                eta_cutoff,
                top_h,
                repetition_penalty,
                no_repeat_ngram_size,
                bad_words_ids,
                sequence_bias,
                suppress_tokens,
                begin_suppress_tokens,
                min_new_tokens,
                min_length,
                max_new_tokens,
                max_length,
                forced_bos_token_id,
                forced_eos_token_id,
                exponential_decay_length_penalty,
                renormalize_logits,
                num_return_sequences,
                num_beams,
                length_penalty,
                stop_strings,
                guidance_scale,
                prompt_lookup_num_tokens,
                max_matching_ngram_size,
            );
            if let Some(w) = &self.watermarking_config {
                let value = serde_json::json!({
                    "greenlist_ratio": w.greenlist_ratio,
                    "bias": w.bias,
                    "hashing_key": w.hashing_key,
                    "seeding_scheme": w.seeding_scheme.name(),
                    "context_width": w.context_width,
                });
                map.serialize_entry("watermarking_config", &value)?;
            }
            if let Some(e) = self.early_stopping {
                match e {
                    crate::EarlyStopping::Heuristic => {
                        map.serialize_entry("early_stopping", &false)?
                    }
                    crate::EarlyStopping::Done => map.serialize_entry("early_stopping", &true)?,
                    crate::EarlyStopping::Never => {
                        map.serialize_entry("early_stopping", "never")?
                    }
                }
            }
            // Unsupported settings are written back too, so that a written
            // config still refuses to build. The value is the one recorded:
            // JSON when it reads as JSON (scalars), else its description
            // as a string (lists and objects), which is not neutral either.
            for u in &self.unsupported {
                match serde_json::from_str::<serde_json::Value>(&u.value) {
                    Ok(v) => map.serialize_entry(u.key, &v)?,
                    Err(_) => map.serialize_entry(u.key, &u.value)?,
                }
            }
            map.end()
        }
    }
}
