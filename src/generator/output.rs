//! What a run returns: the generated ids, why it stopped, log-probabilities.

use crate::TokenId;

/// Why a run stopped. See [`GenerateOptions`](crate::GenerateOptions) for the
/// order in which the conditions are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FinishReason {
    /// `max_new_tokens` tokens were generated.
    Length,
    /// An EOS id was generated (it is the last generated id).
    Eos {
        /// The EOS id generated.
        token: TokenId,
    },
    /// The generated ids ended with a stop sequence.
    StopSequence {
        /// Its index in [`GenerateOptions::stop_sequences`](crate::GenerateOptions::stop_sequences).
        index: usize,
    },
    /// The generated text contained a stop string.
    StopString {
        /// Its index in [`GenerateOptions::stop_strings`](crate::GenerateOptions::stop_strings).
        index: usize,
    },
    /// The processor's constraint is complete: the output is a whole valid
    /// one that no token can extend (a grammar that has ended; see
    /// [`LogitsProcessor::is_complete`](crate::LogitsProcessor::is_complete)).
    Constraint,
    /// The generator's [`StoppingCriterion`](crate::StoppingCriterion) said
    /// stop (the token it saw last is the last generated id).
    Criterion,
    /// The run reached its wall-clock limit
    /// ([`GenerateOptionsBuilder::max_time`](crate::GenerateOptionsBuilder::max_time)).
    Time,
}

/// One entry of a top-N list: a token and its log-probability (natural log).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopLogprob {
    /// The token.
    pub token: TokenId,
    /// Its log-probability.
    pub logprob: f32,
}

/// The log-probabilities recorded for one generated token.
///
/// Which fields are filled is decided by
/// [`GenerateOptionsBuilder::logprobs`](crate::GenerateOptionsBuilder::logprobs)
/// and [`GenerateOptionsBuilder::top_logprobs`](crate::GenerateOptionsBuilder::top_logprobs);
/// see [`LogprobMode`](crate::LogprobMode) for what *raw* and *processed*
/// mean. A field that was not requested is `None` (or empty).
///
/// Top-N lists are ordered by log-probability, highest first (ties: lower id
/// first), and hold only tokens of non-zero probability, so they are shorter
/// than N when fewer tokens are left (after a top-k of 1, the processed list
/// holds one token, with log-probability 0).
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct TokenLogprobs {
    /// The generated token.
    pub token: TokenId,
    /// `log_softmax` of the model's scores at the token.
    pub raw: Option<f32>,
    /// The token's log-probability under the processed distribution (what
    /// the sampler drew from).
    pub processed: Option<f32>,
    /// The N most likely tokens under the raw distribution.
    pub raw_top: Vec<TopLogprob>,
    /// The N most likely tokens under the processed distribution.
    pub processed_top: Vec<TopLogprob>,
}

impl TokenLogprobs {
    /// The raw record of `token` in a model's `row` of scores: its
    /// log-probability (`log_softmax`, computed as for generated tokens)
    /// and the `top_n` most likely tokens in `raw_top`; the processed
    /// fields are empty. For a driver that runs the model itself and wants
    /// the log-probabilities of tokens it did not sample (a prompt's, as
    /// [`GenerateOptionsBuilder::prompt_logprobs`](crate::GenerateOptionsBuilder::prompt_logprobs)
    /// gives them): the same numbers, bit for bit.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyRow`](crate::Error::EmptyRow) or
    /// [`Error::InvalidLogit`](crate::Error::InvalidLogit) for a row
    /// that is empty or holds NaN or +inf.
    ///
    /// # Example
    ///
    /// ```
    /// use decoding::TokenLogprobs;
    ///
    /// let row = [0.0f32, 2.0, 1.0];
    /// let record = TokenLogprobs::from_raw_row(&row, 2, 1)?;
    /// let ln_sum = (1.0f64 + 2f64.exp() + 1f64.exp()).ln();
    /// assert!((f64::from(record.raw.unwrap()) - (1.0 - ln_sum)).abs() < 1e-6);
    /// assert_eq!(record.raw_top[0].token, 1);
    /// # Ok::<(), decoding::Error>(())
    /// ```
    pub fn from_raw_row(row: &[f32], token: TokenId, top_n: usize) -> Result<Self, crate::Error> {
        super::logprobs::raw_entry(row, token, top_n, &mut super::logprobs::TopN::default())
    }
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Generation {
    /// The generated ids (the prompt is not included). An EOS id or a stop
    /// sequence that ended the run is included.
    pub tokens: Vec<TokenId>,
    /// Why the run stopped.
    pub finish_reason: FinishReason,
    /// The generated text, when the run had a
    /// [`Detokenizer`](crate::Detokenizer): the decoded bytes of the generated
    /// tokens, without the EOS token, cut before a stop sequence or stop
    /// string. Invalid UTF-8 (including an incomplete character at the very
    /// end) becomes U+FFFD, as `String::from_utf8_lossy` does.
    pub text: Option<String>,
    /// One entry per generated token, when log-probabilities were requested.
    pub logprobs: Option<Vec<TokenLogprobs>>,
    /// One entry per prompt token, when
    /// [`GenerateOptionsBuilder::prompt_logprobs`](crate::GenerateOptionsBuilder::prompt_logprobs)
    /// asked for them: entry `i` holds prompt token `i`, its raw
    /// log-probability given prompt tokens `0..i` and the most likely
    /// tokens at that position (`raw`, `raw_top`). Entry 0 has neither:
    /// nothing comes before the first token.
    pub prompt_logprobs: Option<Vec<TokenLogprobs>>,
    /// Every step's processed row of scores, when
    /// [`GenerateOptionsBuilder::output_scores`](crate::GenerateOptionsBuilder::output_scores)
    /// asked for them (transformers' `scores`).
    pub scores: Option<Vec<Vec<f32>>>,
    /// Every step's raw row of scores, when
    /// [`GenerateOptionsBuilder::output_logits`](crate::GenerateOptionsBuilder::output_logits)
    /// asked for them (transformers' `logits`).
    pub logits: Option<Vec<Vec<f32>>>,
    /// The seed of the run's random number generator: the options' seed,
    /// or the fresh one drawn for this run when they gave none. Passing it
    /// as [`GenerateOptionsBuilder::seed`](crate::GenerateOptionsBuilder::seed)
    /// replays the run exactly (same model scores and options).
    pub seed: u64,
}

/// One step of a [`Stream`](crate::Stream): the token just generated.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Step {
    /// Position among the generated tokens (0 for the first).
    pub index: usize,
    /// The token.
    pub token: TokenId,
    /// The text this step releases (empty without a detokenizer, and while
    /// text is held back: an incomplete UTF-8 character, or a tail that may
    /// still become a stop string or the start of a stop sequence). The
    /// concatenation of every step's `text` is the run's final text.
    pub text: String,
    /// The token's log-probabilities, when requested.
    pub logprobs: Option<TokenLogprobs>,
    /// The step's processed row of scores, when
    /// [`GenerateOptionsBuilder::output_scores`](crate::GenerateOptionsBuilder::output_scores)
    /// asked for it.
    pub scores: Option<Vec<f32>>,
    /// The step's raw row of scores, when
    /// [`GenerateOptionsBuilder::output_logits`](crate::GenerateOptionsBuilder::output_logits)
    /// asked for it.
    pub logits: Option<Vec<f32>>,
    /// `Some` on the last step: why the run stopped.
    pub finish_reason: Option<FinishReason>,
}
