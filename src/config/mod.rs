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
//! Reading and writing JSON needs the `serde` feature (on by default); the
//! structs and the building do not.
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
//! | 7 | `suppress_tokens` | set (even empty) | [`SuppressTokens`](crate::processors::SuppressTokens) |
//! | 8 | `begin_suppress_tokens` | set (even empty) | [`SuppressTokensAtBegin`](crate::processors::SuppressTokensAtBegin) (at the first generated position) |
//! | 9 | `temperature` | sampling, `!= 1` (must be `> 0`) | [`Temperature`](crate::processors::Temperature) |
//! | 10 | `top_h` | sampling, set | [`TopH`](crate::processors::TopH) |
//! | 11 | `top_k` | sampling, `!= 0`; **unset means 50** | [`TopK`](crate::processors::TopK) (ties with the k-th kept) |
//! | 12 | `top_p` | sampling, `< 1` | [`TopP`](crate::processors::TopP) |
//! | 13 | `min_p` | sampling, set (0 is a no-op) | [`MinP`](crate::processors::MinP) |
//! | 14 | `typical_p` | sampling, `< 1` | [`Typical`](crate::processors::Typical) |
//! | 15 | `epsilon_cutoff` | sampling, in `(0, 1)` | [`EpsilonCutoff`](crate::processors::EpsilonCutoff) |
//! | 16 | `eta_cutoff` | sampling, in `(0, 1)` | [`EtaCutoff`](crate::processors::EtaCutoff) |
//! | 17 | `renormalize_logits` | `true` (always last) | [`LogSoftmax`](crate::processors::LogSoftmax) |
//!
//! - **Sampling** is `do_sample = true`; unset is `false`. Without sampling
//!   rows 9 to 16 are skipped (their fields are ignored, as transformers
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
//!   stages, as transformers adds them).
//! - **Unsupported**: the keys listed in
//!   [`GenerationConfig::unsupported`] when set (group beam search,
//!   contrastive search, DoLa, constraints, forced BOS/EOS tokens,
//!   `remove_invalid_values`, the exponential length penalty,
//!   classifier-free guidance, watermarking, token healing, assisted
//!   decoding), are errors rather than silently different results. The
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

mod eos;
mod extensions;
mod generation_config;
mod hidden_defaults;
#[cfg(feature = "serde")]
mod json;
mod llama_cpp;
mod openai;
mod plan;
mod transformers;

pub use self::eos::EosTokenId;
pub use self::generation_config::{GenerationConfig, UnsupportedSetting};
pub use self::hidden_defaults::HiddenDefaults;
pub use self::llama_cpp::{LlamaCppSampling, LlamaCppStage};
pub use self::openai::{Logprobs, OpenAiParams};
pub use self::plan::{BoxedSampler, DecodingPlan, LengthLimit};
