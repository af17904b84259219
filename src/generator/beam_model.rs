//! The model side of beam search: a batched model whose sequences can be
//! reordered.

use crate::{BatchLanguageModel, LanguageModel};

/// A [`BatchLanguageModel`] whose cached sequences can be reordered: what
/// [`Generator::beam_search`](crate::Generator::beam_search) needs.
///
/// A beam search holds one sequence per beam (sequences `0..num_beams`).
/// After each step the surviving beams continue from some of the previous
/// ones: a beam may continue twice (it forks) and another not at all.
/// [`BeamLanguageModel::reorder`] makes sequence `j` continue from what
/// sequence `parents[j]` held; then each sequence is fed its new token
/// through [`BatchLanguageModel::forward_batch`] as usual. This is
/// transformers' cache `reorder_cache(beam_idx)`.
///
/// Models that never run a beam search do not implement it; plain
/// generation needs only [`LanguageModel`].
///
/// # The default that clones
///
/// A slice (or `Vec`) of cloneable [`LanguageModel`]s is a beam model:
/// sequence `j` is model `j`, and a reorder clones the parents' states
/// (nothing at all when `parents` is the identity). A model whose state is
/// a large KV cache should implement the trait itself and copy only the
/// cached positions.
///
/// # Example
///
/// ```
/// use decoding::{BeamLanguageModel, LanguageModel, TokenId};
///
/// /// Remembers the tokens it was fed.
/// #[derive(Clone, Default)]
/// struct Echo { seen: Vec<TokenId> }
///
/// impl LanguageModel for Echo {
///     type Error = std::convert::Infallible;
///     fn vocab_size(&self) -> usize { 4 }
///     fn forward(&mut self, tokens: &[TokenId], _position: usize, logits: &mut [f32]) -> Result<(), Self::Error> {
///         self.seen.extend_from_slice(tokens);
///         logits.fill(0.0);
///         Ok(())
///     }
///     fn reset(&mut self) -> Result<(), Self::Error> { self.seen.clear(); Ok(()) }
/// }
///
/// let mut beams = vec![Echo { seen: vec![1] }, Echo { seen: vec![2] }, Echo { seen: vec![3] }];
/// beams.reorder(&[2, 2, 0])?;
/// assert_eq!(beams[0].seen, [3]);
/// assert_eq!(beams[1].seen, [3]);
/// assert_eq!(beams[2].seen, [1]);
/// # Ok::<(), std::convert::Infallible>(())
/// ```
pub trait BeamLanguageModel: BatchLanguageModel {
    /// Makes sequence `j` continue from the state sequence `parents[j]` had
    /// before the call, for every `j < parents.len()`; every parent is below
    /// `parents.len()`. Sequences from `parents.len()` on are not touched.
    ///
    /// # Errors
    ///
    /// Whatever the model reports. An error ends the search.
    fn reorder(&mut self, parents: &[usize]) -> Result<(), Self::Error>;
}

impl<M: LanguageModel + Clone> BeamLanguageModel for [M] {
    fn reorder(&mut self, parents: &[usize]) -> Result<(), Self::Error> {
        if parents.iter().enumerate().all(|(j, &p)| j == p) {
            return Ok(());
        }
        // A parent out of range (a broken contract) leaves its sequence as is.
        let old: Vec<Option<M>> = parents.iter().map(|&p| self.get(p).cloned()).collect();
        for (model, parent) in self.iter_mut().zip(old) {
            if let Some(parent) = parent {
                *model = parent;
            }
        }
        Ok(())
    }
}

impl<M: LanguageModel + Clone> BeamLanguageModel for Vec<M> {
    fn reorder(&mut self, parents: &[usize]) -> Result<(), Self::Error> {
        self.as_mut_slice().reorder(parents)
    }
}
