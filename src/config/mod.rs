//! Decoding settings as the ecosystem writes them: a model's
//! `generation_config.json`, an OpenAI-style request, a llama.cpp-style
//! chain.
//!
//! Each builds a [`DecodingPlan`]: the processor [`Pipeline`](crate::Pipeline),
//! the [`Sampler`](crate::Sampler), the [`GenerateOptions`](crate::GenerateOptions)
//! and the length limit. The order of the stages is explicit and printable
//! ([`DecodingPlan::stages`], `Display`).
//!
//! - [`GenerationConfig`]: the fields of `generation_config.json`, built
//!   exactly as Hugging Face transformers builds them (below).
//! - [`OpenAiParams`]: `temperature`, `top_p`, penalties, `logit_bias`,
//!   `logprobs`, `seed`, `stop`, `n`, `max_tokens` and the usual extensions,
//!   on top of a model's generation config.
//! - [`LlamaCppSampling`]: llama.cpp's chain (temperature last, exactly-k
//!   top-k, windowed penalties) and its newer samplers: top-nσ, XTC,
//!   dynamic temperature, Mirostat 2.0 and DRY.
//!
//! Reading and writing JSON (`from_json`, `from_file`, serde's
//! `Deserialize` and `Serialize`) needs the `serde` feature (on by
//! default); the structs and the building work without it
//! (`default-features = false`).
//!
//! # transformers' `generate`, stage for stage
//!
//! [`GenerationConfig::build`] reproduces `GenerationMixin._get_logits_processor`
//! of transformers 5.x for a decoder-only model, one beam, no user
//! processors. A stage is added when its condition holds, in this order:
//!
//! | # | field | added when | stage |
//! |---|---|---|---|
//! | 1 | `sequence_bias` | set (an empty list is an error, as in transformers) | [`SequenceBias`](crate::processors::SequenceBias) |
//! | 2 | `repetition_penalty` | set and `!= 1` | [`RepetitionPenalty`](crate::processors::RepetitionPenalty) |
//! | 3 | `no_repeat_ngram_size` | `> 0` | [`NoRepeatNGram`](crate::processors::NoRepeatNGram) |
//! | 4 | `bad_words_ids` | set (EOS-only sequences dropped) | [`BadWords`](crate::processors::BadWords) |
//! | 5 | `min_length` | `> 0`, EOS set, `min_new_tokens` unset | [`MinLength`](crate::processors::MinLength) |
//! | 6 | `min_new_tokens` | `> 0`, EOS set | [`MinNewTokens`](crate::processors::MinNewTokens) |
//! | 7 | `forced_bos_token_id` | set | [`ForcedBosToken`](crate::processors::ForcedBosToken) (after a one-token history) |
//! | 8 | `forced_eos_token_id` | set | [`ForcedEosToken`](crate::processors::ForcedEosToken) (at the run's length limit: `max_new_tokens`, else `max_length`) |
//! | 9 | `exponential_decay_length_penalty` | set (needs EOS ids) | [`ExponentialDecayLengthPenalty`](crate::processors::ExponentialDecayLengthPenalty) |
//! | 10 | `suppress_tokens` | set (even empty) | [`SuppressTokens`](crate::processors::SuppressTokens) |
//! | 11 | `begin_suppress_tokens` | set (even empty) | [`SuppressTokensAtBegin`](crate::processors::SuppressTokensAtBegin) (at the first generated position) |
//! | 12 | `temperature` | sampling, `!= 1` (must be `> 0`) | [`Temperature`](crate::processors::Temperature) |
//! | 13 | `top_h` | sampling, set | [`TopH`](crate::processors::TopH) |
//! | 14 | `top_k` | sampling, `!= 0`; **unset means 50** | [`TopK`](crate::processors::TopK) (ties with the k-th kept) |
//! | 15 | `top_p` | sampling, `< 1` | [`TopP`](crate::processors::TopP) |
//! | 16 | `min_p` | sampling, set (0 is a no-op) | [`MinP`](crate::processors::MinP) |
//! | 17 | `typical_p` | sampling, `< 1` | [`Typical`](crate::processors::Typical) |
//! | 18 | `epsilon_cutoff` | sampling, in `(0, 1)` | [`EpsilonCutoff`](crate::processors::EpsilonCutoff) |
//! | 19 | `eta_cutoff` | sampling, in `(0, 1)` | [`EtaCutoff`](crate::processors::EtaCutoff) |
//! | 20 | `watermarking_config` | set (after every other processor; the vocabulary size is the rows') | [`Watermark`](crate::processors::Watermark) |
//! | 21 | `renormalize_logits` | `true` (always last) | [`LogSoftmax`](crate::processors::LogSoftmax) |
//!
//! Two more fields are not processors, and the plan reports them for the
//! run to apply: `guidance_scale` (`!= 1`:
//! [`DecodingPlan::guidance_scale`], transformers' first processor, here a
//! [`ClassifierFreeGuidance`](crate::ClassifierFreeGuidance) model wrapper
//! that needs the caller's second model) and `prompt_lookup_num_tokens`
//! with `max_matching_ngram_size` ([`DecodingPlan::prompt_lookup`], run
//! with [`Generator::generate_prompt_lookup`](crate::Generator::generate_prompt_lookup);
//! an error with beam search). The plan prints them:
//! `ClassifierFreeGuidance(1.5) -> TopK(k=50) => Categorical with PromptLookup(num_tokens=10, max_ngram=2)`.
//!
//! - **Sampling** is `do_sample = true`; unset is `false`. Without sampling
//!   rows 12 to 19 are skipped (their fields are ignored, as transformers
//!   ignores them with a warning) and the sampler is
//!   [`Greedy`](crate::sampler::Greedy) (argmax of the processed scores,
//!   the lowest id among ties, as `torch.argmax`); with sampling it is
//!   [`Categorical`](crate::sampler::Categorical).
//! - **Hidden defaults**: an unset field is not a default one. Sampling with
//!   no `top_k` set applies `top_k = 50`, and with neither `max_new_tokens`
//!   nor `max_length` 20 tokens are generated ([`HiddenDefaults`], which
//!   [`GenerationConfig::build_with`] can change).
//! - **Minimum lengths**: when `min_new_tokens` is set, transformers replaces
//!   `min_length` by `prompt length + min_new_tokens` and adds both
//!   `MinLengthLogitsProcessor` and `MinNewTokensLengthLogitsProcessor`,
//!   which then ban EOS at exactly the same steps; the plan has one
//!   [`MinNewTokens`](crate::processors::MinNewTokens) stage for both.
//!   (With `min_new_tokens = 0` it adds only a `MinLengthLogitsProcessor`
//!   for the prompt length, which never bans anything; the plan leaves it
//!   out.) Both need an EOS id; without one transformers leaves them out
//!   silently, and so does the plan.
//! - **Not in the pipeline**: `eos_token_id` and `stop_strings` go to the
//!   options (stop conditions); `max_new_tokens` / `max_length` to the
//!   [`LengthLimit`]; `num_return_sequences` to [`DecodingPlan::n`];
//!   `pad_token_id` and `bos_token_id` are read and written back only.
//! - **Beam search**: `num_beams > 1` builds the same stages and a
//!   [`DecodingPlan::beam_search`] from `num_beams`, `length_penalty`,
//!   `early_stopping` and `num_return_sequences` (at most `num_beams`), run
//!   by [`Generator::beam_search`](crate::Generator::beam_search); with
//!   `do_sample` it is transformers' beam sampling (the warpers are in the
//!   stages, as transformers adds them). As in transformers, every sampling
//!   warper then keeps at least `max(2, #eos + 1)` tokens (its
//!   `min_tokens_to_keep`; top-k's `k` is raised to it), so a beam can
//!   always continue with a token that is not EOS.
//! - **Unsupported**: the keys listed in
//!   [`GenerationConfig::unsupported`] when set (group beam search,
//!   contrastive search, DoLa, constraints, `remove_invalid_values`,
//!   SynthID watermarking, token healing, assistant early exit), are errors
//!   rather than silently different results. The
//!   encoder-side fields (`encoder_repetition_penalty`,
//!   `encoder_no_repeat_ngram_size`) are ignored, as transformers ignores
//!   them for decoder-only models.
//! - **Not in transformers**: top-nσ, XTC, dynamic temperature, Mirostat
//!   and DRY have no `generation_config.json` field and no transformers
//!   processor, so a generation config never builds them; they come from
//!   [`LlamaCppSampling`] or from llama-server's extra request fields in
//!   [`OpenAiParams`].
//! - **Stricter than transformers**: values outside a field's domain are
//!   errors even where transformers would skip the stage silently
//!   (`top_p = 1.5`, `epsilon_cutoff = -1`) or not look at them (a negative
//!   temperature without sampling); integer-valued floats such as
//!   `"temperature": 2` are accepted where transformers' temperature class
//!   insists on a Python float.
//!
//! # OpenAI-style requests
//!
//! [`OpenAiParams::build`] merges the request's `temperature`, `top_p`,
//! `top_k`, `min_p`, `repetition_penalty`, `max_tokens` and `n` on top of
//! the model's generation config and builds the same table, with three
//! additions: `logit_bias` first (transformers' one-token
//! `sequence_bias`), the presence and frequency penalties right after the
//! repetition penalty (vLLM's order), and the `stop`, `seed` and
//! `logprobs` settings in the options. Sampling is decided by the
//! temperature (0 is greedy) and there is no hidden top-k, as in vLLM. See
//! [`OpenAiParams`] for the ranges.
//!
//! llama-server's extra fields (`top_n_sigma`, `xtc_*`, `dynatemp_*`,
//! `mirostat*`, `dry_*`) are read too and slot into the same order: DRY
//! after the presence and frequency penalties, the dynamic temperature in
//! place of the temperature, top-nσ first and XTC last among the
//! truncations, and Mirostat 2.0 instead of the truncations.
//!
//! # llama.cpp's chain
//!
//! [`LlamaCppSampling::build`] follows llama.cpp's `common_sampler_init`:
//! the logit bias, then the `samplers` list in order (by default
//! `penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature`, the
//! temperature stage being a dynamic one when `dynatemp_range > 0`), then a
//! draw; with `mirostat = 2`, the logit bias, a plain temperature and
//! Mirostat 2.0 only.
//!
//! llama.cpp's newer samplers have llama.cpp's names and defaults (all
//! off):
//!
//! | field(s) | llama.cpp default | stage |
//! |---|---|---|
//! | `top_n_sigma` | `-1` (`<= 0` is off) | [`TopNSigma`](crate::processors::TopNSigma) |
//! | `xtc_probability`, `xtc_threshold` | `0`, `0.1` | [`Xtc`](crate::processors::Xtc), seeded with the run's seed |
//! | `dynatemp_range`, `dynatemp_exponent` | `0`, `1` | the temperature stage becomes [`DynamicTemperature`](crate::processors::DynamicTemperature) |
//! | `mirostat`, `mirostat_tau`, `mirostat_eta` | `0`, `5`, `0.1` | `2`: temperature then [`MirostatV2`](crate::processors::MirostatV2), instead of the whole chain; `1` (Mirostat 1.0) is an error |
//! | `dry_multiplier`, `dry_base`, `dry_allowed_length`, `dry_penalty_last_n`, `dry_sequence_breakers` | `0`, `1.75`, `2`, `64`, `["\n", ":", "\"", "*"]` | [`Dry`](crate::processors::Dry) |
//!
//! DRY's breakers are strings and the processor takes token ids: give the
//! ids, or resolve the strings with your tokenizer (llama.cpp counts every
//! token whose text contains a breaker):
//!
//! ```
//! use decoding::config::LlamaCppSampling;
//!
//! let vocab = ["Once", " upon", "\n", ":", "\n\n", " a"]; // your tokenizer's pieces
//! let preset = LlamaCppSampling { dry_multiplier: 0.8, xtc_probability: 0.5, ..LlamaCppSampling::default() }
//!     .resolve_dry_breakers(|breaker| {
//!         (0..vocab.len() as u32).filter(|&id| vocab[id as usize].contains(breaker)).collect()
//!     });
//! assert_eq!(
//!     preset.build()?.to_string(),
//!     "Dry(multiplier=0.8, base=1.75, allowed_length=2, last_n=64, breakers=3) -> TopK(k=40, exact) \
//!      -> TopP(0.95) -> MinP(0.05) -> Xtc(probability=0.5, threshold=0.1) -> Temperature(0.8) => Categorical"
//! );
//! # Ok::<(), decoding::Error>(())
//! ```
//!
//! # How it is tested
//!
//! `tests/config.rs` checks the plans against the processor lists
//! transformers itself builds (fixtures from `scripts/hf_config_fixtures.py`);
//! `tests/config_samplers.rs` checks the llama.cpp mappings on hand-computed
//! rows; `tests/config_beams.rs` checks the beam-search plans.
//!
//! # Example
//!
//! ```
//! use decoding::config::{GenerationConfig, HiddenDefaults};
//!
//! // A Llama-3-Instruct generation_config.json, as a struct.
//! let config = GenerationConfig {
//!     do_sample: Some(true),
//!     temperature: Some(0.6),
//!     top_p: Some(0.9),
//!     max_length: Some(4096),
//!     eos_token_id: Some(vec![128001, 128009].into()),
//!     ..GenerationConfig::default()
//! };
//! // transformers applies a hidden top-k of 50 here:
//! let plan = config.build()?;
//! assert_eq!(plan.to_string(), "Temperature(0.6) -> TopK(k=50) -> TopP(0.9) => Categorical");
//! // vLLM does not:
//! let plan = config.build_with(HiddenDefaults::TRANSFORMERS.without_top_k())?;
//! assert_eq!(plan.to_string(), "Temperature(0.6) -> TopP(0.9) => Categorical");
//! assert_eq!(plan.generate_options(96, 0)?.max_new_tokens(), 4000);
//! # Ok::<(), decoding::Error>(())
//! ```
//!
//! A model's file, merged with a user's settings (the user's fields win):
//!
//! ```
//! # #[cfg(feature = "serde")] {
//! use decoding::config::GenerationConfig;
//!
//! let model = GenerationConfig::from_json(r#"{"do_sample": true, "temperature": 0.6,
//!     "top_p": 0.9, "eos_token_id": [128001, 128009], "max_length": 4096}"#)?;
//! let user = GenerationConfig { max_new_tokens: Some(128), ..GenerationConfig::default() };
//! let plan = model.merge(&user).build()?;
//! assert_eq!(plan.to_string(), "Temperature(0.6) -> TopK(k=50) -> TopP(0.9) => Categorical");
//! # }
//! # Ok::<(), decoding::Error>(())
//! ```

// The files depend one way: the readers (`generation_config`, `openai`,
// `llama_cpp`, with `eos`, `hidden_defaults` and `json`) call the stage
// builders (`transformers`, `extensions`), which push stages into the plan
// builder (`plan`), which holds the `Pipeline`.
mod eos;
mod extensions;
mod generation_config;
mod hidden_defaults;
#[cfg(feature = "serde")]
mod json;
mod llama_cpp;
mod openai;
mod plan;
mod response_format;
mod transformers;
mod watermark_stage;

pub use self::eos::EosTokenId;
pub use self::generation_config::{GenerationConfig, UnsupportedSetting, WatermarkingConfig};
pub use self::hidden_defaults::HiddenDefaults;
pub use self::llama_cpp::{LlamaCppSampling, LlamaCppStage};
pub use self::openai::{Logprobs, OpenAiParams};
pub use self::plan::{BoxedSampler, DecodingPlan, LengthLimit};
pub use self::response_format::ResponseFormat;
