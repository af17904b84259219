//! The processors of the field, one per file.
//!
//! | type | what it does | Hugging Face transformers |
//! |---|---|---|
//! | [`Temperature`] | `x / T`; `T = 0` keeps only the maximum | `TemperatureLogitsWarper` |
//! | [`TopK`] | keeps the `k` best (ties with the k-th kept; [`TopK::exact`]: exactly `k`) | `TopKLogitsWarper` |
//! | [`TopP`] | keeps the smallest set reaching mass `p` | `TopPLogitsWarper` |
//! | [`MinP`] | keeps `p >= min_p · p_max` | `MinPLogitsWarper` |
//! | [`Typical`] | locally typical sampling | `TypicalLogitsWarper` |
//! | [`EpsilonCutoff`] | keeps `p >= ε` | `EpsilonLogitsWarper` |
//! | [`EtaCutoff`] | keeps `p >= min(ε, √ε·e^-H)` | `EtaLogitsWarper` |
//! | [`TopH`] | entropy-bounded truncation | `TopHLogitsWarper` |
//! | [`Argmax`] | keeps only the maximum | (`do_sample=False`) |
//! | [`RepetitionPenalty`] | divides positive, multiplies negative scores of seen tokens | `RepetitionPenaltyLogitsProcessor` |
//! | [`PresenceFrequencyPenalty`] | OpenAI presence and frequency penalties | (none; vLLM, OpenAI) |
//! | [`WindowedPenalties`] | repetition, frequency and presence over the last `n` tokens | (none; llama.cpp) |
//! | [`LogitBias`] | adds a bias per token | `SequenceBiasLogitsProcessor` (1-token sequences) |
//! | [`SequenceBias`] | biases a token after a given prefix | `SequenceBiasLogitsProcessor` |
//! | [`NoRepeatNGram`] | bans tokens that would repeat an n-gram | `NoRepeatNGramLogitsProcessor` |
//! | [`BadWords`] | bans token sequences | `NoBadWordsLogitsProcessor` |
//! | [`SuppressTokens`] | bans tokens always | `SuppressTokensLogitsProcessor` |
//! | [`SuppressTokensAtBegin`] | bans tokens at the first generated position | `SuppressTokensAtBeginLogitsProcessor` |
//! | [`MinLength`] | bans EOS until the sequence is long enough | `MinLengthLogitsProcessor` |
//! | [`MinNewTokens`] | bans EOS until enough tokens are generated | `MinNewTokensLengthLogitsProcessor` |
//! | [`LogSoftmax`] | renormalizes to log-probabilities | `LogitNormalization` |
//! | [`TopNSigma`] | keeps `x >= max - n·σ` | (none; llama.cpp `top_n_sigma`) |
//! | [`Xtc`] | sometimes removes the top choices but the least likely | (none; llama.cpp `xtc`) |
//! | [`DynamicTemperature`] | temperature from the normalized entropy | (none; llama.cpp `temp_ext`) |
//! | [`MirostatV2`] | truncation steered to a target surprise | (none; llama.cpp `mirostat_v2`) |
//! | [`Dry`] | penalizes tokens that extend a repeated sequence | (none; llama.cpp `dry`) |
//! | [`AllowedTokens`] | keeps the tokens a callback allows (a [`TokenBitmask`]) | `PrefixConstrainedLogitsProcessor` |

mod allowed_tokens;
mod argmax;
mod bad_words;
mod dry;
mod dynamic_temperature;
mod epsilon_cutoff;
mod eta_cutoff;
mod log_softmax;
mod logit_bias;
mod min_length;
mod min_new_tokens;
mod min_p;
mod mirostat;
mod no_repeat_ngram;
mod presence_frequency_penalty;
mod repetition_penalty;
mod sequence_bias;
mod suppress_tokens;
mod suppress_tokens_at_begin;
mod temperature;
mod top_h;
mod top_k;
mod top_n_sigma;
mod top_p;
mod typical;
mod windowed_penalties;
mod xtc;

pub use self::allowed_tokens::{AllowedTokens, TokenBitmask};
pub use self::argmax::Argmax;
pub use self::bad_words::BadWords;
pub use self::dry::Dry;
pub use self::dynamic_temperature::DynamicTemperature;
pub use self::epsilon_cutoff::EpsilonCutoff;
pub use self::eta_cutoff::EtaCutoff;
pub use self::log_softmax::LogSoftmax;
pub use self::logit_bias::LogitBias;
pub use self::min_length::MinLength;
pub use self::min_new_tokens::MinNewTokens;
pub use self::min_p::MinP;
pub use self::mirostat::MirostatV2;
pub use self::no_repeat_ngram::NoRepeatNGram;
pub use self::presence_frequency_penalty::PresenceFrequencyPenalty;
pub use self::repetition_penalty::RepetitionPenalty;
pub use self::sequence_bias::SequenceBias;
pub use self::suppress_tokens::SuppressTokens;
pub use self::suppress_tokens_at_begin::SuppressTokensAtBegin;
pub use self::temperature::Temperature;
pub use self::top_h::TopH;
pub use self::top_k::TopK;
pub use self::top_n_sigma::TopNSigma;
pub use self::top_p::TopP;
pub use self::typical::Typical;
pub use self::windowed_penalties::WindowedPenalties;
pub use self::xtc::Xtc;
