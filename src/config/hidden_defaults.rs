//! The values transformers uses when nothing sets a field.

/// The values Hugging Face transformers' `generate` fills in for fields that
/// neither the user nor the model's `generation_config.json` sets
/// (`GenerationConfig._get_default_generation_params`), where they change
/// the result.
///
/// transformers' other hidden defaults are neutral and need no switch:
/// `do_sample = false`, `temperature = 1.0`, `top_p = 1.0`,
/// `typical_p = 1.0`, `repetition_penalty = 1.0`, `epsilon_cutoff = 0.0`,
/// `eta_cutoff = 0.0`, `no_repeat_ngram_size = 0`, `min_length = 0`,
/// `num_beams = 1`, `num_return_sequences = 1`: each of them adds no
/// processor.
///
/// The two that matter:
///
/// - **`top_k = 50`**: sampling (`do_sample = true`) with no `top_k`
///   anywhere keeps only the 50 best tokens. vLLM, mistral.rs and OpenAI
///   servers read the same file without it, so the same configuration
///   samples from a different distribution there. [`HiddenDefaults::without_top_k`]
///   turns it off (a `top_k` that is set still applies).
/// - **`max_length = 20`**: with neither `max_new_tokens` nor `max_length`
///   set, 20 tokens are generated after the prompt. (transformers also caps
///   this default at the model's `max_position_embeddings`, which a
///   generation config does not hold.)
///
/// # Example
///
/// ```
/// use decoding::config::{GenerationConfig, HiddenDefaults};
///
/// let config = GenerationConfig { do_sample: Some(true), ..GenerationConfig::default() };
/// let hf = config.build()?; // what transformers does
/// assert_eq!(hf.stages(), ["TopK(k=50)"]);
/// let plain = config.build_with(HiddenDefaults::TRANSFORMERS.without_top_k())?;
/// assert!(plain.stages().is_empty());
/// # Ok::<(), decoding::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HiddenDefaults {
    /// The `top_k` used when sampling and no `top_k` is set (`None`: none).
    pub top_k: Option<usize>,
    /// The number of new tokens generated when neither `max_new_tokens`
    /// nor `max_length` is set.
    pub max_length: usize,
}

impl HiddenDefaults {
    /// transformers' values: `top_k = 50`, `max_length = 20`.
    pub const TRANSFORMERS: HiddenDefaults = HiddenDefaults { top_k: Some(50), max_length: 20 };

    /// The same, without the hidden top-k.
    pub fn without_top_k(self) -> Self {
        HiddenDefaults { top_k: None, ..self }
    }
}

/// [`HiddenDefaults::TRANSFORMERS`].
impl Default for HiddenDefaults {
    fn default() -> Self {
        HiddenDefaults::TRANSFORMERS
    }
}
