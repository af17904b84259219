//! Batched generation: several sequences advanced together, one model call
//! per step for all of them.

use std::fmt;

use super::Generator;
use crate::sampler::Categorical;
use crate::{
    Detokenizer, GenerateError, Generation, LanguageModel, LogitsProcessor, Pipeline, Sampler,
    TokenId,
};

/// A model that scores the next position of several sequences in one call:
/// the batched form of [`LanguageModel`].
///
/// The model holds the state (a KV cache) of up to
/// [`max_sequences`](BatchLanguageModel::max_sequences) sequences, numbered
/// from 0. The contract per sequence is [`LanguageModel`]'s: each call
/// passes, for every sequence that is still running, the tokens appended
/// since that sequence's previous call (its whole prompt first), and the
/// model writes that sequence's next-position scores into its row of
/// `logits`. Sequences that finished are left out of later calls, so row
/// `j` belongs to entry `j` of the [`BatchInput`], not to sequence `j`.
///
/// # The default that loops
///
/// A slice (or `Vec`) of [`LanguageModel`]s is a batched model: sequence
/// `i` is model `i`, and a batch call calls each model in turn. Every model
/// of the slice must report the same vocabulary size (the first one's is
/// the batch's); a model whose sequence number is out of range is skipped.
///
/// # Example
///
/// ```
/// use decoding::sampler::Categorical;
/// use decoding::{generate_batch, BatchSequence, GenerateOptions, Generator, LanguageModel, Pipeline, TokenId};
///
/// #[derive(Clone)]
/// struct Uniform;
/// impl LanguageModel for Uniform {
///     type Error = std::convert::Infallible;
///     fn vocab_size(&self) -> usize { 16 }
///     fn forward(&mut self, _: &[TokenId], _position: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
///         logits.fill(0.0);
///         Ok(())
///     }
///     fn reset(&mut self) -> Result<(), Self::Error> { Ok(()) }
/// }
///
/// let mut a = Generator::new(Pipeline::new(), Categorical::new(), GenerateOptions::builder(5).seed(1).build()?);
/// let mut b = Generator::new(Pipeline::new(), Categorical::new(), GenerateOptions::builder(3).seed(2).build()?);
/// let mut models = vec![Uniform; 2];
/// let results = generate_batch(
///     &mut models[..],
///     &mut [BatchSequence::new(&mut a, &[1, 2]), BatchSequence::new(&mut b, &[3])],
/// )?;
/// assert_eq!(results[0].as_ref().map(|g| g.tokens.len()).ok(), Some(5));
/// assert_eq!(results[1].as_ref().map(|g| g.tokens.len()).ok(), Some(3));
/// // The same as generating each sequence alone with the same seed:
/// let alone = a.generate(&mut Uniform, &[1, 2])?;
/// assert_eq!(results[0].as_ref().ok(), Some(&alone));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait BatchLanguageModel {
    /// The model's own error type, returned to the caller unchanged.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Number of scores per position, the same for every sequence.
    fn vocab_size(&self) -> usize;

    /// How many sequences the model can hold at once.
    fn max_sequences(&self) -> usize;

    /// Feeds every entry of `input` and writes entry `j`'s next-position
    /// scores into `logits[j * V..(j + 1) * V]`, where `V` is
    /// [`BatchLanguageModel::vocab_size`] (`logits.len() == input.len() * V`).
    ///
    /// # Errors
    ///
    /// Whatever the model reports. An error ends the whole batch.
    fn forward_batch(
        &mut self,
        input: &BatchInput<'_>,
        logits: &mut [f32],
    ) -> Result<(), Self::Error>;

    /// Forgets every cached position of one sequence: its next entry starts
    /// at position 0.
    ///
    /// # Errors
    ///
    /// Whatever the model reports; [`generate_batch`] fails that sequence
    /// with [`GenerateError::Model`] at step 0.
    fn reset_sequence(&mut self, sequence: usize) -> Result<(), Self::Error>;
}

impl<M: LanguageModel> BatchLanguageModel for [M] {
    type Error = M::Error;

    fn vocab_size(&self) -> usize {
        self.first().map_or(0, LanguageModel::vocab_size)
    }

    fn max_sequences(&self) -> usize {
        self.len()
    }

    fn forward_batch(
        &mut self,
        input: &BatchInput<'_>,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        let v = BatchLanguageModel::vocab_size(self);
        for (j, entry) in input.iter().enumerate() {
            let (Some(model), Some(row)) =
                (self.get_mut(entry.sequence), logits.get_mut(j * v..(j + 1) * v))
            else {
                continue;
            };
            model.forward(entry.tokens, entry.position, row)?;
        }
        Ok(())
    }

    fn reset_sequence(&mut self, sequence: usize) -> Result<(), Self::Error> {
        match self.get_mut(sequence) {
            Some(model) => model.reset(),
            None => Ok(()),
        }
    }
}

impl<M: LanguageModel> BatchLanguageModel for Vec<M> {
    type Error = M::Error;

    fn vocab_size(&self) -> usize {
        BatchLanguageModel::vocab_size(self.as_slice())
    }

    fn max_sequences(&self) -> usize {
        self.len()
    }

    fn forward_batch(
        &mut self,
        input: &BatchInput<'_>,
        logits: &mut [f32],
    ) -> Result<(), Self::Error> {
        self.as_mut_slice().forward_batch(input, logits)
    }

    fn reset_sequence(&mut self, sequence: usize) -> Result<(), Self::Error> {
        self.as_mut_slice().reset_sequence(sequence)
    }
}

/// The input of one batched model call: for each running sequence, its
/// number, the position of its first new token and the tokens appended since
/// its previous call.
#[derive(Debug, Clone, Copy)]
pub struct BatchInput<'a> {
    tokens: &'a [TokenId],
    spans: &'a [BatchSpan],
}

/// Where one entry of a [`BatchInput`] lies in its token buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    /// The sequence (its position in the batch passed to [`generate_batch`]).
    pub sequence: usize,
    /// The position of the entry's first new token in its sequence (the
    /// number of tokens the sequence held before this call).
    pub position: usize,
    /// The entry's tokens are `tokens[start..end]` of the input's buffer.
    pub start: usize,
    /// See `start`.
    pub end: usize,
}

/// One entry of a [`BatchInput`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry<'a> {
    /// The sequence (its position in the batch passed to [`generate_batch`]).
    pub sequence: usize,
    /// The position of the first of `tokens` in the sequence, as in
    /// [`LanguageModel::forward`].
    pub position: usize,
    /// Its new tokens.
    pub tokens: &'a [TokenId],
}

impl<'a> BatchInput<'a> {
    /// An input whose entry `j` is sequence `spans[j].sequence` with the
    /// tokens `tokens[spans[j].start..spans[j].end]` at `spans[j].position`
    /// (a span outside `tokens` reads as no token). [`generate_batch`] builds
    /// these; the constructor is public for driving and testing a
    /// [`BatchLanguageModel`] directly.
    ///
    /// ```
    /// use decoding::{BatchInput, BatchSpan};
    ///
    /// let tokens = [5, 6, 7];
    /// let spans = [
    ///     BatchSpan { sequence: 0, position: 0, start: 0, end: 2 },
    ///     BatchSpan { sequence: 3, position: 9, start: 2, end: 3 },
    /// ];
    /// let input = BatchInput::new(&tokens, &spans);
    /// assert_eq!(input.len(), 2);
    /// let entry = input.get(1).unwrap();
    /// assert_eq!((entry.sequence, entry.position, entry.tokens), (3, 9, &[7][..]));
    /// ```
    pub fn new(tokens: &'a [TokenId], spans: &'a [BatchSpan]) -> Self {
        BatchInput { tokens, spans }
    }

    /// Number of entries (running sequences).
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Entry `j`.
    pub fn get(&self, j: usize) -> Option<BatchEntry<'a>> {
        let span = self.spans.get(j)?;
        Some(BatchEntry {
            sequence: span.sequence,
            position: span.position,
            tokens: self.tokens.get(span.start..span.end)?,
        })
    }

    /// The entries, in row order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = BatchEntry<'a>> + 'a {
        let tokens = self.tokens;
        self.spans.iter().map(move |span| BatchEntry {
            sequence: span.sequence,
            position: span.position,
            tokens: tokens.get(span.start..span.end).unwrap_or_default(),
        })
    }
}

/// One sequence of a batch: its generator (processor, sampler, options and
/// seed), its prompt, and optionally a detokenizer.
pub struct BatchSequence<'a, P = Pipeline, S = Categorical> {
    generator: &'a mut Generator<P, S>,
    prompt: &'a [TokenId],
    detokenizer: Option<&'a dyn Detokenizer>,
}

impl<'a, P, S> BatchSequence<'a, P, S> {
    /// A sequence generated by `generator` from `prompt`.
    pub fn new(generator: &'a mut Generator<P, S>, prompt: &'a [TokenId]) -> Self {
        BatchSequence { generator, prompt, detokenizer: None }
    }

    /// Decodes the sequence's text with `detokenizer`.
    pub fn with_detokenizer(mut self, detokenizer: &'a dyn Detokenizer) -> Self {
        self.detokenizer = Some(detokenizer);
        self
    }
}

impl<P: fmt::Debug, S: fmt::Debug> fmt::Debug for BatchSequence<'_, P, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchSequence")
            .field("generator", &self.generator)
            .field("prompt", &self.prompt)
            .field("has_detokenizer", &self.detokenizer.is_some())
            .finish()
    }
}

/// Per-sequence results of [`generate_batch`].
pub type BatchResults<E> = Vec<Result<Generation, GenerateError<E>>>;

/// Generates for every sequence at once, calling the model once per step
/// for all running sequences.
///
/// Each sequence is its own run, exactly as [`Generator::generate`] (or
/// [`Generator::generate_text`] with a detokenizer) would do it: its own
/// options, processor state and random number generator seeded from its
/// seed. A sequence's result does not depend on the others: it equals what a
/// single-sequence run gives with the same seed (given a model whose scores
/// for one sequence do not depend on the rest of the batch). Sequence `i`
/// is the model's sequence `i`; it is reset before the run.
///
/// The sequences share their processor and sampler *types*: to mix
/// samplers, use `Generator<Pipeline, Box<dyn Sampler>>` (a [`Pipeline`]
/// already holds any processors).
///
/// # Errors
///
/// The outer `Err` ends the whole batch: [`GenerateError::BatchTooLarge`],
/// the model's error ([`GenerateError::Model`]) or a change of its
/// vocabulary size ([`GenerateError::LogitsLength`]). Every generator keeps
/// the ids generated before it ([`Generator::generated`]).
///
/// A sequence's own errors (an empty prompt, NaN scores, every token
/// masked, ...) end only that sequence: its entry of the result is `Err`,
/// and the others go on.
pub fn generate_batch<B, P, S>(
    model: &mut B,
    sequences: &mut [BatchSequence<'_, P, S>],
) -> Result<BatchResults<B::Error>, GenerateError<B::Error>>
where
    B: BatchLanguageModel + ?Sized,
    P: LogitsProcessor,
    S: Sampler,
{
    let capacity = model.max_sequences();
    if sequences.len() > capacity {
        return Err(GenerateError::BatchTooLarge { sequences: sequences.len(), capacity });
    }
    let v = model.vocab_size();
    let mut errors: Vec<Option<GenerateError<B::Error>>> = Vec::with_capacity(sequences.len());
    for (i, s) in sequences.iter_mut().enumerate() {
        let started = s
            .generator
            .refuse_prompt_logprobs("prompt log-probabilities in a batch")
            .and_then(|()| s.generator.prepare(v, s.prompt, s.detokenizer.is_some(), true))
            .and_then(|()| {
                model.reset_sequence(i).map_err(|source| {
                    s.generator.fail();
                    GenerateError::Model { step: 0, source }
                })
            });
        errors.push(started.err());
    }

    let mut tokens: Vec<TokenId> = Vec::new();
    let mut spans: Vec<BatchSpan> = Vec::with_capacity(sequences.len());
    let mut logits: Vec<f32> = Vec::new();
    loop {
        tokens.clear();
        spans.clear();
        let mut step = 0;
        for (i, s) in sequences.iter().enumerate() {
            if errors[i].is_none() && !s.generator.is_over() {
                let start = tokens.len();
                tokens.extend_from_slice(s.generator.pending_input());
                let position = s.generator.pending_position();
                spans.push(BatchSpan { sequence: i, position, start, end: tokens.len() });
                step = s.generator.generated_len();
            }
        }
        if spans.is_empty() {
            break;
        }
        let fail_all = |sequences: &mut [BatchSequence<'_, P, S>], spans: &[BatchSpan]| {
            for span in spans {
                sequences[span.sequence].generator.fail();
            }
        };
        let actual = model.vocab_size();
        if actual != v {
            fail_all(sequences, &spans);
            return Err(GenerateError::LogitsLength { step, expected: v, actual });
        }
        let width = spans.len() * v;
        if logits.len() < width {
            logits.resize(width, 0.0);
        }
        let input = BatchInput { tokens: &tokens, spans: &spans };
        if let Err(source) = model.forward_batch(&input, &mut logits[..width]) {
            fail_all(sequences, &spans);
            return Err(GenerateError::Model { step, source });
        }
        for (j, span) in spans.iter().enumerate() {
            let (i, s) = (span.sequence, &mut sequences[span.sequence]);
            let row = &mut logits[j * v..(j + 1) * v];
            if let Err(e) = s.generator.step_on_row(row, s.detokenizer) {
                errors[i] = Some(e);
            }
        }
    }

    Ok(sequences
        .iter_mut()
        .zip(errors)
        .map(|(s, error)| match error {
            Some(e) => Err(e),
            None => Ok(s.generator.take_generation()),
        })
        .collect())
}
