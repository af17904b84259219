//! `BeamSearch`: the settings of a beam search.

use crate::Error;

/// When a beam search stops before the length limit, as transformers'
/// `early_stopping` decides it.
///
/// Let `n` be the number of beams. The search keeps the `n` best *finished*
/// hypotheses seen so far (slots) and `n` running beams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EarlyStopping {
    /// transformers' `early_stopping=False` (its default): stop once every
    /// slot holds a finished hypothesis and the best running beam, scored as
    /// if it finished at the current length
    /// (`running / (generated_len ^ length_penalty)`), cannot beat the worst
    /// of them. A heuristic: with `length_penalty > 0` a longer hypothesis
    /// could still have won.
    #[default]
    Heuristic,
    /// transformers' `early_stopping=True`: stop as soon as every slot holds
    /// a finished hypothesis.
    Done,
    /// transformers' `early_stopping="never"`: as [`EarlyStopping::Heuristic`],
    /// but with `length_penalty > 0` the best running beam is scored at the
    /// longest possible length (`max_new_tokens`), so the search stops only
    /// when no running beam can win.
    Never,
}

/// The settings of a beam search ([`Generator::beam_search`]).
///
/// - `num_beams` (1 ..= [`BeamSearch::MAX_BEAMS`]): how many hypotheses
///   are extended at every step.
/// - `length_penalty` (finite; default 1.0): a finished hypothesis of `L`
///   generated tokens (EOS included) whose processed log-probabilities sum
///   to `s` scores `s / L^length_penalty`. Positive values favour longer
///   hypotheses (the sum is negative), negative values shorter ones, 0
///   scores the plain sum. A penalty so large that `L^length_penalty`
///   overflows f32 scores every finished hypothesis `-0` (a masked one
///   `-inf`, never NaN).
/// - `early_stopping` (default [`EarlyStopping::Heuristic`]).
/// - `num_return_sequences` (1 ..= `num_beams`; default `num_beams`): how
///   many finished hypotheses are returned, best first.
/// - sampling (default off): transformers' beam sampling (`do_sample=True`
///   with `num_beams > 1`). Instead of the best `K` continuations of all
///   beams, `K` are drawn without replacement from the softmax of their
///   accumulated scores (successive draws, each proportional to
///   `exp(score)` among the continuations not drawn yet: the law of
///   `torch.multinomial` without replacement), then ranked by score as
///   usual. The draws use the run's seeded generator
///   ([`GenerateOptions`](crate::GenerateOptions)' seed), `K` uniform
///   draws per step, so a seed fixes the hypotheses. Put the sampling
///   warpers (temperature, top-k, top-p) in the generator's processors:
///   they apply to the log-probabilities, as in transformers.
///
/// The length limit, the minimum length, the EOS ids and the stop sequences
/// come from the generator's [`GenerateOptions`](crate::GenerateOptions).
///
/// # Example
///
/// ```
/// use decoding::{BeamSearch, EarlyStopping};
///
/// let beams = BeamSearch::new(4)?
///     .with_length_penalty(0.6)?
///     .with_early_stopping(EarlyStopping::Done)
///     .with_num_return_sequences(2)?;
/// assert_eq!(beams.num_beams(), 4);
/// assert!(BeamSearch::new(0).is_err());
/// assert!(BeamSearch::new(2)?.with_num_return_sequences(3).is_err());
/// # Ok::<(), decoding::Error>(())
/// ```
///
/// [`Generator::beam_search`]: crate::Generator::beam_search
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BeamSearch {
    num_beams: usize,
    length_penalty: f32,
    early_stopping: EarlyStopping,
    num_return_sequences: usize,
    sample: bool,
}

impl BeamSearch {
    /// The largest number of beams a search accepts.
    ///
    /// transformers sets no bound; this one keeps every buffer of a search
    /// sized up front (a row of `V` scores per beam, `2 × num_beams`
    /// candidates or more per step) far from overflow, and is far beyond
    /// the few dozen beams searches use.
    pub const MAX_BEAMS: usize = 1 << 12;

    /// `num_beams` beams, length penalty 1.0, heuristic early stopping, all
    /// `num_beams` hypotheses returned.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when `num_beams` is 0 or above
    /// [`BeamSearch::MAX_BEAMS`].
    ///
    /// ```
    /// use decoding::BeamSearch;
    ///
    /// assert!(BeamSearch::new(BeamSearch::MAX_BEAMS).is_ok());
    /// assert!(BeamSearch::new(usize::MAX / 2 + 1).is_err());
    /// ```
    pub fn new(num_beams: usize) -> Result<Self, Error> {
        if num_beams == 0 || num_beams > Self::MAX_BEAMS {
            return Err(Error::invalid("num_beams", "between 1 and 4096", num_beams));
        }
        Ok(BeamSearch {
            num_beams,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            num_return_sequences: num_beams,
            sample: false,
        })
    }

    /// Sets the length penalty.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] when it is NaN or infinite.
    pub fn with_length_penalty(mut self, length_penalty: f32) -> Result<Self, Error> {
        if !length_penalty.is_finite() {
            return Err(Error::invalid("length_penalty", "a finite number", length_penalty));
        }
        self.length_penalty = length_penalty;
        Ok(self)
    }

    /// Sets the early-stopping rule.
    pub fn with_early_stopping(mut self, early_stopping: EarlyStopping) -> Self {
        self.early_stopping = early_stopping;
        self
    }

    /// Sets how many hypotheses are returned.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidParameter`] unless `1 <= n <= num_beams`.
    pub fn with_num_return_sequences(mut self, n: usize) -> Result<Self, Error> {
        if n == 0 || n > self.num_beams {
            return Err(Error::invalid(
                "num_return_sequences",
                "between 1 and num_beams",
                format_args!("{n} (num_beams = {})", self.num_beams),
            ));
        }
        self.num_return_sequences = n;
        Ok(self)
    }

    /// Turns beam sampling on or off (see [`BeamSearch`]).
    pub fn with_sampling(mut self, sample: bool) -> Self {
        self.sample = sample;
        self
    }

    /// Whether the continuations are sampled (beam sampling).
    pub fn samples(&self) -> bool {
        self.sample
    }

    /// The number of beams.
    pub fn num_beams(&self) -> usize {
        self.num_beams
    }

    /// The length penalty.
    pub fn length_penalty(&self) -> f32 {
        self.length_penalty
    }

    /// The early-stopping rule.
    pub fn early_stopping(&self) -> EarlyStopping {
        self.early_stopping
    }

    /// How many hypotheses are returned.
    pub fn num_return_sequences(&self) -> usize {
        self.num_return_sequences
    }
}
