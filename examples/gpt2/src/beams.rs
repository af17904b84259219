//! GPT-2 with one KV cache per beam, for beam search.

use decoding::{BatchInput, BatchLanguageModel, BeamLanguageModel, LanguageModel, TokenId};

use crate::error::{Gpt2Error, Result};
use crate::model::{Gpt2, KvCache};

/// One GPT-2 (weights and scratch buffers, shared) with `n` KV caches: a
/// [`BeamLanguageModel`] for
/// [`Generator::beam_search`](decoding::Generator::beam_search).
///
/// Sequence `j` is cache `j`. A decoding step (one new token per sequence)
/// runs every sequence through the blocks together, so each weight is read
/// once per step for all beams; a prompt runs on the shared model with its
/// cache swapped in (a pointer swap). Either way every sequence's logits are
/// the bits the single model gives, whatever [`Gpt2::with_threads`] says. A
/// [`reorder`](BeamLanguageModel::reorder) copies the cached positions of
/// the parents (`n_layer × 2 × n_head × len × head_dim` floats per beam)
/// into spare caches and swaps them in; nothing is allocated after
/// construction.
///
/// # Example
///
/// ```no_run
/// use decoding::{BeamSearch, GenerateOptions, Generator, Pipeline};
/// use decoding::sampler::Greedy;
/// use gpt2::{Gpt2, Gpt2Beams};
///
/// let mut beams = Gpt2Beams::new(Gpt2::from_dir("path/to/gpt2".as_ref())?, 4);
/// let mut generator = Generator::new(Pipeline::new(), Greedy, GenerateOptions::new(20));
/// let best = generator.beam_search(&mut beams, &[3666, 12507, 3807, 318], &BeamSearch::new(4)?)?;
/// println!("{:?} {}", best[0].tokens, best[0].score);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Gpt2Beams {
    model: Gpt2,
    caches: Vec<KvCache>,
    spare: Vec<KvCache>,
    /// `(sequence, token)` of a batched decoding step.
    lanes: Vec<(usize, TokenId)>,
}

impl Gpt2Beams {
    /// `model` with `n` caches (each preallocated to `n_positions`).
    pub fn new(model: Gpt2, n: usize) -> Self {
        let cache = KvCache::new(model.config());
        Gpt2Beams {
            caches: vec![cache.clone(); n],
            spare: vec![cache; n],
            lanes: Vec::with_capacity(n),
            model,
        }
    }

    /// The shared model.
    pub fn model(&self) -> &Gpt2 {
        &self.model
    }

    /// The model back.
    pub fn into_model(self) -> Gpt2 {
        self.model
    }

    /// Runs `tokens` on sequence `sequence`'s cache (after its `position`
    /// cached positions) and writes the logits after every one of them: row
    /// `i` of `logits` is what [`Gpt2`]'s
    /// [`forward_all`](decoding::LanguageModel::forward_all) writes, the
    /// last row the bits a `forward` of the same tokens gives (a server
    /// reads a prompt's log-probabilities from the rows).
    ///
    /// # Errors
    ///
    /// Those of [`Gpt2`]'s `forward_all`, and
    /// [`Gpt2Error::SequenceOutOfRange`] for a sequence with no cache. The
    /// cache is untouched on error.
    pub fn forward_all_sequence(
        &mut self,
        sequence: usize,
        tokens: &[TokenId],
        position: usize,
        logits: &mut [f32],
    ) -> Result<()> {
        let sequences = self.caches.len();
        let cache = self
            .caches
            .get_mut(sequence)
            .ok_or(Gpt2Error::SequenceOutOfRange { sequence, sequences })?;
        std::mem::swap(&mut self.model.cache, cache);
        let result = LanguageModel::forward_all(&mut self.model, tokens, position, logits);
        std::mem::swap(&mut self.model.cache, cache);
        result
    }
}

impl BatchLanguageModel for Gpt2Beams {
    type Error = Gpt2Error;

    fn vocab_size(&self) -> usize {
        self.model.vocab_size()
    }

    fn max_sequences(&self) -> usize {
        self.caches.len()
    }

    /// Runs the entries on their own caches. When every entry brings one
    /// token (a decoding step) and names its own sequence, they go through
    /// the blocks together, each weight read once for all of them; otherwise
    /// (a prompt) one after the other. The logits are the same bits either
    /// way.
    ///
    /// # Errors
    ///
    /// Those of [`Gpt2`]'s `forward`, [`Gpt2Error::SequenceOutOfRange`]
    /// for an entry whose sequence has no cache, and
    /// [`Gpt2Error::PositionMismatch`] for an entry whose position is not
    /// the length of its sequence's cache.
    fn forward_batch(&mut self, input: &BatchInput<'_>, logits: &mut [f32]) -> Result<()> {
        let v = self.model.vocab_size();
        for entry in input.iter() {
            if let Some(cache) = self.caches.get(entry.sequence)
                && cache.len != entry.position
            {
                let (position, cached) = (entry.position, cache.len);
                return Err(Gpt2Error::PositionMismatch { position, cached });
            }
        }
        let distinct = |j: usize, s: usize| input.iter().take(j).all(|e| e.sequence != s);
        let one_each = input.len() > 1
            && input
                .iter()
                .enumerate()
                .all(|(j, e)| e.tokens.len() == 1 && distinct(j, e.sequence));
        if one_each {
            self.lanes.clear();
            self.lanes.extend(input.iter().map(|e| (e.sequence, e.tokens[0])));
            return self.model.forward_lanes(&mut self.caches, &self.lanes, logits);
        }
        for (entry, row) in input.iter().zip(logits.chunks_exact_mut(v)) {
            let sequences = self.caches.len();
            let cache = self
                .caches
                .get_mut(entry.sequence)
                .ok_or(Gpt2Error::SequenceOutOfRange { sequence: entry.sequence, sequences })?;
            std::mem::swap(&mut self.model.cache, cache);
            let result = self.model.forward(entry.tokens, entry.position, row);
            std::mem::swap(&mut self.model.cache, cache);
            result?;
        }
        Ok(())
    }

    fn reset_sequence(&mut self, sequence: usize) -> Result<()> {
        if let Some(cache) = self.caches.get_mut(sequence) {
            cache.len = 0;
        }
        Ok(())
    }
}

impl BeamLanguageModel for Gpt2Beams {
    /// # Errors
    ///
    /// [`Gpt2Error::SequenceOutOfRange`] when a parent has no cache.
    fn reorder(&mut self, parents: &[usize]) -> Result<()> {
        let sequences = self.caches.len();
        if parents.iter().enumerate().all(|(j, &p)| j == p) {
            return Ok(());
        }
        if let Some(&sequence) = parents.iter().find(|&&p| p >= sequences) {
            return Err(Gpt2Error::SequenceOutOfRange { sequence, sequences });
        }
        if parents.len() > sequences {
            return Err(Gpt2Error::SequenceOutOfRange { sequence: parents.len() - 1, sequences });
        }
        for (spare, &p) in self.spare.iter_mut().zip(parents) {
            spare.copy_from(&self.caches[p]);
        }
        for (cache, spare) in self.caches.iter_mut().zip(&mut self.spare).take(parents.len()) {
            std::mem::swap(cache, spare);
        }
        Ok(())
    }
}
