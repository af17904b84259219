//! transformers' `_get_logits_processor`, stage for stage.

use super::extensions::Extensions;
use super::plan::PlanBuilder;
use super::{DecodingPlan, GenerationConfig, HiddenDefaults, LengthLimit};
use crate::processors::{
    BadWords, EpsilonCutoff, EtaCutoff, ExponentialDecayLengthPenalty, ForcedBosToken,
    ForcedEosToken, LogSoftmax, LogitBias, MinLength, MinNewTokens, MinP, NoRepeatNGram,
    PresenceFrequencyPenalty, RepetitionPenalty, SequenceBias, SuppressTokens,
    SuppressTokensAtBegin, Temperature, TopH, TopK, TopP, Typical,
};
use crate::{BeamSearch, Error, GenerateOptions, LogprobMode, PromptLookup, TokenId, Verification};

/// What an OpenAI-style request adds to a generation config.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extras {
    /// Per-token biases, run first (transformers' one-token `sequence_bias`).
    pub(crate) logit_bias: Vec<(TokenId, f32)>,
    /// OpenAI presence and frequency penalties, right after the repetition
    /// penalty (vLLM's order).
    pub(crate) presence: f32,
    pub(crate) frequency: f32,
    pub(crate) stop_strings: Vec<String>,
    pub(crate) logprobs: Option<LogprobMode>,
    pub(crate) top_logprobs: usize,
    pub(crate) seed: Option<u64>,
    /// llama.cpp's newer samplers (llama-server's extra request fields);
    /// the default has them all off.
    pub(crate) samplers: Extensions,
}

impl Extras {
    /// The base options: `max_new_tokens` for an empty prompt, the EOS
    /// ids, and the stop strings, log-probabilities and seed of `self`.
    pub(crate) fn options(
        &self,
        length: LengthLimit,
        eos: &[TokenId],
    ) -> Result<GenerateOptions, Error> {
        let mut b = GenerateOptions::builder(length.max_new_tokens(0)?)
            .eos_tokens(eos.iter().copied())
            .stop_strings(self.stop_strings.iter().cloned());
        if let Some(mode) = self.logprobs {
            b = b.logprobs(mode).top_logprobs(self.top_logprobs);
        }
        if let Some(seed) = self.seed {
            b = b.seed(seed);
        }
        b.build()
    }
}

// The readers' entry point lives beside the builder, so that the
// dependency runs one way: this module reads `GenerationConfig`, never the
// reverse.
impl GenerationConfig {
    /// Builds the plan transformers would run, with transformers' hidden
    /// defaults ([`HiddenDefaults::TRANSFORMERS`]).
    ///
    /// # Errors
    ///
    /// As [`GenerationConfig::validate`], plus [`Error::InvalidParameter`]
    /// for `temperature = 0` while sampling (transformers rejects it; set
    /// `do_sample` to false for greedy decoding) and for
    /// `num_return_sequences > 1` without sampling (transformers rejects it
    /// too), and the processors' own parameter errors.
    pub fn build(&self) -> Result<DecodingPlan, Error> {
        self.build_with(HiddenDefaults::TRANSFORMERS)
    }

    /// [`GenerationConfig::build`] with other hidden defaults, for example
    /// without the hidden `top_k = 50`.
    ///
    /// # Errors
    ///
    /// As [`GenerationConfig::build`].
    pub fn build_with(&self, hidden: HiddenDefaults) -> Result<DecodingPlan, Error> {
        build(self, hidden, &Extras::default())
    }
}

/// Builds the stages in the order of transformers 5.x
/// `GenerationMixin._get_logits_processor` for a decoder-only model with one
/// beam (see the module documentation of `config` for the table).
pub(crate) fn build(
    cfg: &GenerationConfig,
    hidden: HiddenDefaults,
    extras: &Extras,
) -> Result<DecodingPlan, Error> {
    cfg.validate()?;
    let do_sample = cfg.do_sample.unwrap_or(false);
    // XTC's own generator: the request's seed, or a fresh one per plan.
    let seed = extras.seed.unwrap_or_else(crate::fresh_seed);
    extras.samplers.check_stages(cfg.temperature.unwrap_or(1.0) as f32, 1, seed)?;
    let eos = cfg.eos_ids();
    // transformers' beam sampling keeps at least one token besides every
    // EOS id in each sampling warper, so a beam can always continue:
    // min_tokens_to_keep = #eos + 1, and 2 without EOS ids.
    let keep = if do_sample && cfg.num_beams.unwrap_or(1) > 1 { (eos.len() + 1).max(2) } else { 1 };
    let n = cfg.num_return_sequences.unwrap_or(1);
    let beams = beam_search(cfg, do_sample)?;
    if n > 1 && !do_sample && beams.is_none() {
        return Err(Error::invalid(
            "num_return_sequences",
            "1 unless do_sample is true (greedy choices would all be equal)",
            n,
        ));
    }

    let length = match (cfg.max_new_tokens, cfg.max_length) {
        (Some(n), _) => LengthLimit::NewTokens(n),
        (None, Some(m)) => LengthLimit::Total(m),
        (None, None) => LengthLimit::NewTokens(hidden.max_length),
    };
    let mut b = PlanBuilder::default();
    if !extras.logit_bias.is_empty() {
        let stage = LogitBias::new(extras.logit_bias.iter().copied())?;
        b.push(stage, format!("LogitBias({} tokens)", extras.logit_bias.len()));
    }
    if let Some(bias) = &cfg.sequence_bias {
        let stage = SequenceBias::new(bias.iter().map(|(ids, b)| (ids.clone(), *b as f32)))?;
        b.push(stage, format!("SequenceBias({} sequences)", bias.len()));
    }
    if let Some(r) = cfg.repetition_penalty.filter(|&r| r != 1.0) {
        b.push(RepetitionPenalty::new(r as f32)?, format!("RepetitionPenalty({r})"));
    }
    if extras.presence != 0.0 || extras.frequency != 0.0 {
        let (p, f) = (extras.presence, extras.frequency);
        b.push(
            PresenceFrequencyPenalty::new(p, f)?,
            format!("PresenceFrequencyPenalty(presence={p}, frequency={f})"),
        );
    }
    extras.samplers.push_dry(&mut b)?;
    if let Some(size) = cfg.no_repeat_ngram_size.filter(|&s| s > 0) {
        b.push(NoRepeatNGram::new(size)?, format!("NoRepeatNGram(n={size})"));
    }
    if let Some(bad) = &cfg.bad_words_ids {
        b.push(
            BadWords::new(bad.iter().cloned(), eos)?,
            format!("BadWords({} sequences)", bad.len()),
        );
    }
    // Both need EOS ids; transformers silently leaves them out without.
    if !eos.is_empty() {
        match cfg.min_new_tokens {
            // transformers also adds MinLengthLogitsProcessor with
            // min_length = prompt length + min_new_tokens here: the same
            // condition, so one stage does both.
            Some(m) if m > 0 => {
                b.push(MinNewTokens::new(m, eos.iter().copied())?, format!("MinNewTokens({m})"))
            }
            // min_length = prompt length: never bans anything.
            Some(_) => {}
            None => {
                if let Some(len) = cfg.min_length.filter(|&l| l > 0) {
                    b.push(MinLength::new(len, eos.iter().copied())?, format!("MinLength({len})"));
                }
            }
        }
    }
    if let Some(bos) = cfg.forced_bos_token_id {
        b.push(ForcedBosToken::new(bos), format!("ForcedBosToken({bos})"));
    }
    if let Some(forced) = &cfg.forced_eos_token_id {
        let ids = forced.ids().iter().copied();
        // At the run's length limit, as the generator applies it.
        let (stage, at) = match length {
            LengthLimit::NewTokens(n) => {
                (ForcedEosToken::after_new_tokens(n, ids)?, format!("{n} new tokens"))
            }
            LengthLimit::Total(n) => (ForcedEosToken::new(n, ids)?, format!("length {n}")),
        };
        let label = format!("ForcedEosToken({:?} at {at})", stage.eos());
        b.push(stage, label);
    }
    if let Some((start, factor)) = cfg.exponential_decay_length_penalty {
        b.push(
            ExponentialDecayLengthPenalty::new(start, factor, eos.iter().copied())?,
            format!("ExponentialDecayLengthPenalty(start={start}, factor={factor})"),
        );
    }
    if let Some(ids) = &cfg.suppress_tokens {
        b.push(
            SuppressTokens::new(ids.iter().copied()),
            format!("SuppressTokens({} ids)", ids.len()),
        );
    }
    if let Some(ids) = &cfg.begin_suppress_tokens {
        b.push(
            SuppressTokensAtBegin::new(ids.iter().copied()),
            format!("SuppressTokensAtBegin({} ids)", ids.len()),
        );
    }

    let ext = &extras.samplers;
    if do_sample {
        if ext.dynatemp() && !ext.mirostat_v2() {
            // Validated finite and >= 0; 0 is not sampling here.
            ext.push_dynamic_temperature(&mut b, cfg.temperature.unwrap_or(1.0) as f32)?;
        } else if let Some(t) = cfg.temperature.filter(|&t| t != 1.0) {
            let t32 = t as f32;
            // Validated finite and >= 0; 0 (or an f32 underflow to 0) is rejected.
            if t32 <= 0.0 {
                return Err(Error::invalid(
                    "temperature",
                    "> 0 when do_sample is true (for greedy decoding set do_sample to false)",
                    t,
                ));
            }
            b.push(Temperature::new(t32)?, format!("Temperature({t})"));
        }
    }
    if do_sample && ext.mirostat_v2() {
        // As in llama.cpp, Mirostat 2.0 replaces the truncations.
        ext.push_mirostat(&mut b)?;
    } else if do_sample {
        ext.push_top_n_sigma(&mut b)?;
        if let Some(h) = cfg.top_h {
            b.push(TopH::new(h as f32)?, format!("TopH({h})"));
        }
        if let Some(k) = cfg.top_k.or(hidden.top_k).filter(|&k| k != 0) {
            // transformers' TopKLogitsWarper: top_k = max(top_k, min_tokens_to_keep).
            let k = k.max(keep);
            b.push(TopK::new(k)?, format!("TopK(k={k})"));
        }
        if let Some(p) = cfg.top_p.filter(|&p| p < 1.0) {
            b.push(TopP::new(p as f32)?.min_tokens_to_keep(keep)?, format!("TopP({p})"));
        }
        if let Some(p) = cfg.min_p {
            b.push(MinP::new(p as f32)?.min_tokens_to_keep(keep)?, format!("MinP({p})"));
        }
        if let Some(p) = cfg.typical_p.filter(|&p| p < 1.0) {
            b.push(Typical::new(p as f32)?.min_tokens_to_keep(keep)?, format!("Typical({p})"));
        }
        if let Some(e) = cfg.epsilon_cutoff.filter(|&e| e > 0.0 && e < 1.0) {
            let stage = EpsilonCutoff::new(e as f32)?.min_tokens_to_keep(keep)?;
            b.push(stage, format!("EpsilonCutoff({e})"));
        }
        if let Some(e) = cfg.eta_cutoff.filter(|&e| e > 0.0 && e < 1.0) {
            b.push(EtaCutoff::new(e as f32)?.min_tokens_to_keep(keep)?, format!("EtaCutoff({e})"));
        }
        ext.push_xtc(&mut b, keep, seed)?;
    }
    // After every other stage, as transformers adds it.
    if let Some(w) = &cfg.watermarking_config {
        let label = format!(
            "Watermark(greenlist_ratio={}, bias={}, seeding_scheme={}, context_width={})",
            w.greenlist_ratio,
            w.bias,
            w.seeding_scheme.name(),
            w.context_width
        );
        b.push(super::watermark_stage::WatermarkStage::new(w.clone())?, label);
    }
    if cfg.renormalize_logits == Some(true) {
        b.push(LogSoftmax::new(), "LogSoftmax".to_owned());
    }
    let guidance = cfg.guidance_scale.filter(|&s| s != 1.0).map(|s| s as f32);
    let lookup = match cfg.prompt_lookup_num_tokens {
        Some(k) if beams.is_some() => {
            return Err(Error::invalid(
                "prompt_lookup_num_tokens",
                "unset with num_beams > 1 (prompt lookup decodes one sequence)",
                k,
            ));
        }
        Some(k) => {
            let verification = if do_sample { Verification::Sampled } else { Verification::Greedy };
            Some(PromptLookup::new(k, cfg.max_matching_ngram_size.unwrap_or(2), verification)?)
        }
        None => None,
    };

    let mut extras = extras.clone();
    if let Some(stops) = &cfg.stop_strings {
        extras.stop_strings.splice(0..0, stops.iter().cloned());
    }
    let options = extras.options(length, eos)?;
    let plan = match beams {
        // One search returns the `num_return_sequences` hypotheses.
        Some(search) => b.finish(!do_sample, options, length, 1).with_beam_search(search),
        None => b.finish(!do_sample, options, length, n),
    };
    Ok(plan.with_guidance_scale(guidance).with_prompt_lookup(lookup))
}

/// The beam search of `num_beams > 1`, as transformers runs it: beam
/// sampling when `do_sample` is true.
fn beam_search(cfg: &GenerationConfig, do_sample: bool) -> Result<Option<BeamSearch>, Error> {
    let beams = cfg.num_beams.unwrap_or(1);
    if beams <= 1 {
        return Ok(None);
    }
    let mut search = BeamSearch::new(beams)?
        .with_length_penalty(cfg.length_penalty.unwrap_or(1.0) as f32)?
        .with_early_stopping(cfg.early_stopping.unwrap_or_default())
        .with_sampling(do_sample);
    if let Some(n) = cfg.num_return_sequences {
        search = search.with_num_return_sequences(n)?;
    }
    Ok(Some(search))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EosTokenId;

    fn stages(cfg: &GenerationConfig) -> Vec<String> {
        cfg.build().unwrap().stages().to_vec()
    }

    #[test]
    fn an_empty_config_is_plain_greedy_with_twenty_new_tokens() {
        let plan = GenerationConfig::default().build().unwrap();
        assert!(plan.stages().is_empty());
        assert!(plan.is_greedy());
        assert_eq!(plan.length(), LengthLimit::NewTokens(20));
        assert_eq!(plan.n(), 1);
        assert_eq!(plan.to_string(), "identity => Greedy");
    }

    #[test]
    fn warpers_only_when_sampling() {
        let mut cfg = GenerationConfig {
            temperature: Some(0.6),
            top_p: Some(0.9),
            min_p: Some(0.1),
            typical_p: Some(0.5),
            epsilon_cutoff: Some(0.01),
            eta_cutoff: Some(0.01),
            top_h: Some(0.5),
            repetition_penalty: Some(1.3),
            ..Default::default()
        };
        assert_eq!(stages(&cfg), ["RepetitionPenalty(1.3)"]);
        cfg.do_sample = Some(true);
        assert_eq!(
            stages(&cfg),
            [
                "RepetitionPenalty(1.3)",
                "Temperature(0.6)",
                "TopH(0.5)",
                "TopK(k=50)",
                "TopP(0.9)",
                "MinP(0.1)",
                "Typical(0.5)",
                "EpsilonCutoff(0.01)",
                "EtaCutoff(0.01)",
            ]
        );
    }

    #[test]
    fn neutral_values_add_nothing() {
        let cfg = GenerationConfig {
            do_sample: Some(true),
            temperature: Some(1.0),
            top_k: Some(0),
            top_p: Some(1.0),
            typical_p: Some(1.0),
            epsilon_cutoff: Some(0.0),
            eta_cutoff: Some(0.0),
            repetition_penalty: Some(1.0),
            no_repeat_ngram_size: Some(0),
            min_new_tokens: Some(0),
            min_length: Some(0),
            renormalize_logits: Some(false),
            eos_token_id: Some(EosTokenId::One(0)),
            ..Default::default()
        };
        assert!(stages(&cfg).is_empty(), "{:?}", stages(&cfg));
    }

    #[test]
    fn min_lengths_need_eos_and_min_new_tokens_wins() {
        let mut cfg =
            GenerationConfig { min_new_tokens: Some(3), min_length: Some(9), ..Default::default() };
        assert!(stages(&cfg).is_empty());
        cfg.eos_token_id = Some(EosTokenId::Many(vec![2, 3]));
        assert_eq!(stages(&cfg), ["MinNewTokens(3)"]);
        cfg.min_new_tokens = None;
        assert_eq!(stages(&cfg), ["MinLength(9)"]);
    }

    #[test]
    fn renormalization_is_last_even_when_greedy() {
        let cfg = GenerationConfig {
            renormalize_logits: Some(true),
            suppress_tokens: Some(vec![]),
            ..Default::default()
        };
        assert_eq!(stages(&cfg), ["SuppressTokens(0 ids)", "LogSoftmax"]);
    }

    #[test]
    fn sampling_only_errors() {
        let greedy_zero = GenerationConfig { temperature: Some(0.0), ..Default::default() };
        assert!(greedy_zero.build().is_ok());
        let sample_zero = GenerationConfig { do_sample: Some(true), ..greedy_zero };
        assert!(matches!(
            sample_zero.build(),
            Err(Error::InvalidParameter { name: "temperature", .. })
        ));
        let greedy_n = GenerationConfig { num_return_sequences: Some(2), ..Default::default() };
        assert!(matches!(
            greedy_n.build(),
            Err(Error::InvalidParameter { name: "num_return_sequences", .. })
        ));
    }

    #[test]
    fn length_limits() {
        let both = GenerationConfig {
            max_new_tokens: Some(5),
            max_length: Some(100),
            ..Default::default()
        };
        assert_eq!(both.build().unwrap().length(), LengthLimit::NewTokens(5));
        let total = GenerationConfig { max_length: Some(100), ..Default::default() };
        let plan = total.build().unwrap();
        assert_eq!(plan.length(), LengthLimit::Total(100));
        assert_eq!(plan.generate_options(30, 0).unwrap().max_new_tokens(), 70);
        assert!(plan.generate_options(100, 0).is_err());
    }
}
