//! `Constraint`: the processor that masks every token that cannot continue
//! a valid output.

use llguidance::Matcher;
use llguidance::api::StopReason;

use super::StructuredError;
use crate::processors::TokenBitmask;
use crate::{Context, Error, LogitsProcessor, Scores, TokenId};

/// A grammar constraint on one sequence: a [`LogitsProcessor`] that removes
/// from the live set every token that cannot continue a valid output, and
/// tells the generator when the output is complete.
///
/// Built by [`TokenVocabulary::constraint`](super::TokenVocabulary::constraint)
/// from a [`Grammar`](super::Grammar).
///
/// # Semantics
///
/// - At each step the allowed set is exactly the tokens whose bytes extend
///   the output so far to a prefix of a valid output, plus the
///   end-of-sequence ids where the output so far is a complete valid one.
///   Ids at or past the tokenizer's vocabulary size (a padded model head)
///   are never allowed.
/// - Allowed tokens keep their scores and the live set keeps its order, as
///   with [`AllowedTokens`](crate::processors::AllowedTokens) (the same
///   masking code): processors after it (temperature, top-k, top-p,
///   penalties, ...) and both samplers work unchanged, and the sampled
///   distribution is the model's softmax renormalized over the allowed
///   tokens, so log-probabilities are those of the constrained
///   distribution. Put the constraint first in a pipeline so that
///   truncations (top-k, top-p) select among allowed tokens.
/// - When the output is complete and cannot be extended (a closed JSON
///   object), [`LogitsProcessor::is_complete`] is `true` and the
///   [`Generator`](crate::Generator) stops with
///   [`FinishReason::Constraint`](crate::FinishReason::Constraint). Where
///   the output is complete but could go on (`[0-9]+` after a digit), the
///   end-of-sequence ids are allowed and the model decides.
///
/// # State
///
/// The engine's state follows the generated tokens of the [`Context`] it
/// is shown: [`accept`](LogitsProcessor::accept) advances it by the chosen
/// token, and `process` first brings it in line with the context, rolling
/// back tokens that are not there and consuming those it has not seen.
/// So the same constraint serves a speculative run (drafted tokens are
/// consumed for the draft's rows and rolled back when rejected), and beam
/// search (each beam's row is masked for that beam's own tokens); plain
/// generation never rolls back. [`reset`](LogitsProcessor::reset) starts
/// over for a new sequence. Each sequence of a batch needs its own
/// constraint (clone one: the compiled grammar is shared).
///
/// # Errors
///
/// `process` returns [`Error::NoAllowedToken`] when no token can continue
/// the output (a grammar this vocabulary cannot realize from here),
/// [`Error::AllMasked`] when every allowed token was already masked (by
/// `min_new_tokens`, an earlier processor or the model),
/// [`Error::VocabSizeMismatch`] when the row has fewer scores than the
/// tokenizer has tokens, and [`Error::Constraint`] when the engine fails
/// (a token outside the grammar in the history, an exhausted parser).
///
/// # Performance
///
/// Per step: the engine's mask computation (its own cost, reported by the
/// `structured` benchmark), one pass over the `⌈V / 32⌉` mask words to load
/// them, and [`TokenBitmask::restrict`]: `O(V / 64 + removed)` when more
/// than half of a whole row is allowed (the others are banned in place),
/// `O(V / 64 + allowed)` otherwise (the allowed tokens become the live set).
/// The crate's part allocates nothing after the first step
/// (`docs/structured-outputs.md` has the figures).
///
/// # Example
///
/// ```
/// use decoding::structured::{Grammar, TokenVocabulary};
/// use decoding::{Context, LogitsProcessor, Scores};
///
/// let tokens = ["yes", "no", "y", "es", "<eos>"];
/// let vocab = TokenVocabulary::from_detokenizer(&tokens, tokens.len(), &[4])?;
/// let mut constraint = vocab.constraint(&Grammar::choice(["yes", "no"])?)?;
///
/// let mut row = vec![0.0; 5];
/// let mut live = Vec::new();
/// let mut scores = Scores::new(&mut row, &mut live);
/// constraint.process(&Context::prompt_only(&[]), &mut scores)?;
/// let allowed: Vec<u32> = (0..5).filter(|&id| scores.get(id) > Some(f32::NEG_INFINITY)).collect();
/// assert_eq!(allowed, [0, 1, 2]); // "yes", "no", and "y" that starts "yes"
/// constraint.accept(0); // "yes"
/// assert!(constraint.is_complete());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Constraint {
    /// The engine's state before any token, for `reset`.
    initial: Matcher,
    matcher: Matcher,
    /// The generated tokens the matcher has consumed.
    consumed: Vec<TokenId>,
    mask: TokenBitmask,
    /// The tokenizer's vocabulary size.
    vocab_size: usize,
    /// The end-of-sequence ids: never fed to the engine (the output ends
    /// there), and the only tokens allowed after one.
    eos: Vec<TokenId>,
}

impl Constraint {
    pub(super) fn new(
        matcher: Matcher,
        vocab_size: usize,
        eos: &[TokenId],
    ) -> Result<Self, StructuredError> {
        let mut constraint = Constraint {
            initial: matcher.deep_clone(),
            matcher,
            consumed: Vec::new(),
            mask: TokenBitmask::new(vocab_size),
            vocab_size,
            eos: eos.to_vec(),
        };
        // A grammar that no token can start fails here, not at step 0.
        let first = constraint
            .matcher
            .compute_mask()
            .map_err(|e| StructuredError::Unsatisfiable { message: format!("{e:#}") })?;
        if first.is_zero() {
            return Err(StructuredError::Unsatisfiable {
                message: "no token of the vocabulary can start an output".into(),
            });
        }
        Ok(constraint)
    }

    /// The tokenizer's vocabulary size `n` (rows may be longer).
    pub fn vocab_size(&self) -> usize {
        self.vocab_size
    }

    /// The generated tokens the engine has consumed.
    pub fn consumed(&self) -> &[TokenId] {
        &self.consumed
    }

    /// Whether the tokens consumed so far form a complete valid output
    /// (the end-of-sequence ids are allowed now).
    pub fn is_accepting(&mut self) -> bool {
        self.matcher.is_accepting().unwrap_or(false)
    }

    /// Brings the engine in line with `generated`: rolls back what is not
    /// in it, consumes what it has not seen.
    fn sync(&mut self, generated: &[TokenId]) -> Result<(), Error> {
        let common = self.consumed.iter().zip(generated).take_while(|(a, b)| a == b).count();
        if common < self.consumed.len() {
            self.matcher.rollback(self.consumed.len() - common).map_err(engine)?;
            self.consumed.truncate(common);
        }
        for &token in &generated[common..] {
            self.matcher.consume_token(token).map_err(engine)?;
            self.consumed.push(token);
        }
        Ok(())
    }
}

/// A step error from the engine's message.
fn engine(e: impl std::fmt::Display) -> Error {
    Error::Constraint { message: format!("{e:#}") }
}

impl Clone for Constraint {
    /// An independent constraint in the same state (the compiled grammar
    /// and the engine's caches are shared).
    fn clone(&self) -> Self {
        Constraint {
            initial: self.initial.deep_clone(),
            matcher: self.matcher.deep_clone(),
            consumed: self.consumed.clone(),
            mask: self.mask.clone(),
            vocab_size: self.vocab_size,
            eos: self.eos.clone(),
        }
    }
}

impl std::fmt::Debug for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Constraint")
            .field("vocab_size", &self.vocab_size)
            .field("consumed", &self.consumed.len())
            .field("stop_reason", &self.matcher.stop_reason())
            .finish_non_exhaustive()
    }
}

impl LogitsProcessor for Constraint {
    fn process(&mut self, ctx: &Context<'_>, scores: &mut Scores<'_>) -> Result<(), Error> {
        let v = scores.vocab_size();
        if v < self.vocab_size {
            return Err(Error::VocabSizeMismatch { expected: self.vocab_size, actual: v });
        }
        let generated = ctx.generated();
        // A history that already holds an end-of-sequence id (a beam kept
        // past its end) is over: only the end-of-sequence ids may follow.
        if let Some(end) = generated.iter().position(|t| self.eos.contains(t)) {
            self.sync(&generated[..end])?;
            self.mask.reset(v);
            for &id in &self.eos {
                self.mask.insert(id)?;
            }
            return self.mask.restrict(scores);
        }
        self.sync(generated)?;
        let allowed = self.matcher.compute_mask_or_eos().map_err(|e| {
            // The engine stops with "no extension" when no byte can follow
            // and the output is not complete: no token can continue.
            let message = format!("{e:#}");
            if message.starts_with("NoExtension") {
                Error::NoAllowedToken
            } else {
                Error::Constraint { message }
            }
        })?;
        self.mask.reset(v);
        self.mask.load_u32_words(allowed.as_slice(), self.vocab_size);
        self.mask.restrict(scores)
    }

    fn accept(&mut self, token: TokenId) {
        if self.eos.contains(&token) {
            return;
        }
        // A failure puts the engine in its error state: the next `process`
        // reports it (the token is not recorded as consumed, so the sync
        // tries it again and fails with the engine's message).
        if self.matcher.consume_token(token).is_ok() {
            self.consumed.push(token);
        }
    }

    fn reset(&mut self) {
        self.matcher = self.initial.deep_clone();
        self.consumed.clear();
    }

    fn is_complete(&self) -> bool {
        matches!(
            self.matcher.stop_reason(),
            StopReason::NoExtension | StopReason::NoExtensionBias | StopReason::EndOfSentence
        )
    }
}
