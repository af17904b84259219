//! Every constructor and configuration field against NaN, the infinities
//! and the overflow-prone extremes.
//!
//! One table: each entry sets one parameter (of a processor constructor,
//! of `GenerationConfig`, `OpenAiParams`, `LlamaCppSampling`,
//! `GenerateOptions`, `BeamSearch` or `SpeculativeOptions`) to each extreme
//! value of its type, the others at ordinary values. The contract checked:
//!
//! - NaN is always [`Error::InvalidParameter`];
//! - any other value is either `InvalidParameter` or accepted, and what is
//!   accepted decodes: on adversarial rows (ties, `±f32::MAX`, masked
//!   tokens) over a few steps, every processed row has no NaN and no
//!   `+inf`, masked tokens stay masked, a finite token is left, and the
//!   sampler draws a token (nothing panics).
//!
//! Configuration fields are also tried where the chosen mode skips their
//! stage (Mirostat 2.0, an empty `samplers` list, greedy decoding), since a
//! value that would be an error in use is an error there too.
//!
//! Below the table, one named regression test for each defect that the
//! table's class contains.

use decoding::config::{GenerationConfig, LlamaCppSampling, LlamaCppStage, OpenAiParams};
use decoding::processors::{
    BadWords, Dry, DynamicTemperature, EpsilonCutoff, EtaCutoff, LogitBias, MinLength,
    MinNewTokens, MinP, MirostatV2, NoRepeatNGram, PresenceFrequencyPenalty, RepetitionPenalty,
    SequenceBias, Temperature, TopH, TopK, TopNSigma, TopP, Typical, WindowedPenalties, Xtc,
};
use decoding::sampler::Categorical;
use decoding::{
    BeamSearch, Context, Error, GenerateOptions, LogitsProcessor, Pipeline, Sampler,
    SpeculativeOptions, TokenId, Verification, rng_from_seed,
};

const NEG: f32 = f32::NEG_INFINITY;

/// The f32 extremes: NaN, the infinities, the largest magnitudes, the
/// smallest positive normal and subnormal, zero of both signs, negative one.
const F32: [f32; 11] = [
    f32::NAN,
    f32::INFINITY,
    NEG,
    f32::MAX,
    f32::MIN,
    f32::MIN_POSITIVE,
    1e-45,
    0.0,
    -0.0,
    -1.0,
    1.0,
];

/// The f64 extremes, with the values that leave f32's range when a
/// configuration field is narrowed (`1e39` overflows, `1e-50` underflows).
const F64: [f64; 11] = [
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::MAX,
    1e39,
    -1e39,
    f64::MIN_POSITIVE,
    1e-50,
    0.0,
    -1.0,
    1.0,
];

/// The size extremes.
const SIZES: [usize; 5] = [0, 1, 2, usize::MAX / 2 + 1, usize::MAX];

const INTS: [i32; 6] = [i32::MIN, -2, -1, 0, 1, i32::MAX];

/// Rows over a vocabulary of 8: ties and a mask; the largest magnitudes;
/// a flat row.
fn rows() -> [[f32; 8]; 3] {
    [
        [0.0, 1.0, 2.0, NEG, 3.0, 3.0, -5.0, 0.5],
        [f32::MAX, f32::MIN, 0.0, 1e-38, NEG, f32::MAX, -1e30, 7.0],
        [1.0, 1.0, 1.0, 1.0, NEG, 1.0, 1.0, 1.0],
    ]
}

/// A history with repeats (penalties and n-gram bans apply), prompt of 4.
const HISTORY: [TokenId; 8] = [1, 2, 3, 1, 2, 3, 1, 2];

/// Runs `pipeline` and `sampler` for three steps on each row; describes the
/// first broken promise.
fn exercise(pipeline: &mut Pipeline, sampler: &mut dyn Sampler) -> Result<(), String> {
    let mut rng = rng_from_seed(7);
    for (r, row) in rows().iter().enumerate() {
        pipeline.reset();
        let mut history = HISTORY.to_vec();
        for step in 0..3 {
            let ctx = Context::new(&history, 4).map_err(|e| e.to_string())?;
            let mut processed = *row;
            pipeline
                .process(&ctx, &mut processed)
                .map_err(|e| format!("row {r} step {step}: process failed: {e}"))?;
            for (i, (&x, &y)) in row.iter().zip(&processed).enumerate() {
                if y.is_nan() || y == f32::INFINITY {
                    return Err(format!("row {r} step {step}: [{i}] = {y}"));
                }
                if x == NEG && y != NEG {
                    return Err(format!("row {r} step {step}: masked [{i}] became {y}"));
                }
            }
            if !processed.iter().any(|x| x.is_finite()) {
                return Err(format!("row {r} step {step}: every token masked: {processed:?}"));
            }
            let mut logits = *row;
            let token = pipeline
                .sample_token(&ctx, &mut logits, sampler, &mut rng)
                .map_err(|e| format!("row {r} step {step}: sampling failed: {e}"))?;
            if processed[token as usize] == NEG {
                return Err(format!("row {r} step {step}: drew masked token {token}"));
            }
            pipeline.accept(token);
            history.push(token);
        }
    }
    Ok(())
}

/// What a table entry built.
enum Built {
    Stage(Box<dyn LogitsProcessor + Send>),
    Plan(Box<decoding::config::DecodingPlan>),
    /// Options that need no decoding check here (sizes: see
    /// `tests/robustness` for runs at huge sizes).
    Options,
}

fn stage<P: LogitsProcessor + Send + 'static>(r: Result<P, Error>) -> Result<Built, Error> {
    r.map(|p| Built::Stage(Box::new(p)))
}

fn plan(r: Result<decoding::config::DecodingPlan, Error>) -> Result<Built, Error> {
    r.map(|p| Built::Plan(Box::new(p)))
}

/// Checks one outcome; `is_nan` says whether the value was NaN.
fn check(what: &str, value: &str, is_nan: bool, outcome: Result<Built, Error>) -> Vec<String> {
    if std::env::var_os("PARAMETERS_VERBOSE").is_some() {
        let verdict = match &outcome {
            Ok(_) => "accepted".to_string(),
            Err(e) => format!("{e}"),
        };
        eprintln!("{what} = {value}: {verdict}");
    }
    let fail = |m: String| vec![format!("{what} = {value}: {m}")];
    match outcome {
        Err(Error::InvalidParameter { .. }) => Vec::new(),
        Err(e) => fail(format!("not an InvalidParameter error: {e:?}")),
        Ok(_) if is_nan => fail("NaN accepted".into()),
        Ok(Built::Options) => Vec::new(),
        Ok(Built::Stage(p)) => {
            let mut pipeline = Pipeline::new();
            pipeline.push_boxed(p);
            exercise(&mut pipeline, &mut Categorical::new()).err().map_or(Vec::new(), fail)
        }
        Ok(Built::Plan(p)) => {
            if p.beam_search().is_some() {
                // Beam runs with huge sizes belong to tests/robustness.
                return Vec::new();
            }
            if let Err(e) = p.generate_options(4, 0) {
                if !matches!(e, Error::InvalidParameter { .. }) {
                    return fail(format!("generate_options: {e:?}"));
                }
            }
            let (mut pipeline, mut sampler, _) = p.into_parts();
            exercise(&mut pipeline, &mut sampler).err().map_or(Vec::new(), fail)
        }
    }
}

type F32Case = (&'static str, fn(f32) -> Result<Built, Error>);
type F64Case = (&'static str, fn(f64) -> Result<Built, Error>);
type SizeCase = (&'static str, fn(usize) -> Result<Built, Error>);
type IntCase = (&'static str, fn(i32) -> Result<Built, Error>);

fn f32_cases() -> Vec<F32Case> {
    vec![
        ("Temperature::new", |x| stage(Temperature::new(x))),
        ("TopP::new", |x| stage(TopP::new(x))),
        ("MinP::new", |x| stage(MinP::new(x))),
        ("Typical::new", |x| stage(Typical::new(x))),
        ("EpsilonCutoff::new", |x| stage(EpsilonCutoff::new(x))),
        ("EtaCutoff::new", |x| stage(EtaCutoff::new(x))),
        ("TopH::new", |x| stage(TopH::new(x))),
        ("TopNSigma::new", |x| stage(TopNSigma::new(x))),
        ("RepetitionPenalty::new", |x| stage(RepetitionPenalty::new(x))),
        ("PresenceFrequencyPenalty presence", |x| stage(PresenceFrequencyPenalty::new(x, 0.5))),
        ("PresenceFrequencyPenalty frequency", |x| stage(PresenceFrequencyPenalty::new(0.5, x))),
        ("WindowedPenalties repeat", |x| stage(WindowedPenalties::new(64, x, 0.1, 0.1))),
        ("WindowedPenalties frequency", |x| stage(WindowedPenalties::new(64, 1.1, x, 0.1))),
        ("WindowedPenalties presence", |x| stage(WindowedPenalties::new(64, 1.1, 0.1, x))),
        ("LogitBias bias", |x| stage(LogitBias::new([(1, x), (4, 1.0)]))),
        ("SequenceBias bias", |x| stage(SequenceBias::new([(vec![2, 3], x), (vec![5], 1.0)]))),
        ("Dry multiplier", |x| stage(Dry::new(x, 1.75, 2))),
        ("Dry base", |x| stage(Dry::new(0.8, x, 2))),
        ("DynamicTemperature temp", |x| stage(DynamicTemperature::new(x, 0.5, 1.0))),
        ("DynamicTemperature range", |x| stage(DynamicTemperature::new(1.0, x, 1.0))),
        ("DynamicTemperature exponent", |x| stage(DynamicTemperature::new(1.0, 0.5, x))),
        ("DynamicTemperature temp = range", |x| stage(DynamicTemperature::new(x, x, 1.0))),
        ("MirostatV2 tau", |x| stage(MirostatV2::new(x, 0.1))),
        ("MirostatV2 eta", |x| stage(MirostatV2::new(5.0, x))),
        ("MirostatV2 tau = eta", |x| stage(MirostatV2::new(x, x))),
        ("Xtc probability", |x| stage(Xtc::new(x, 0.1, 3))),
        ("Xtc threshold", |x| stage(Xtc::new(1.0, x, 3))),
        ("BeamSearch length_penalty", |x| {
            BeamSearch::new(2)?.with_length_penalty(x).map(|_| Built::Options)
        }),
        ("LlamaCppSampling top_p", |x| llama(|s| s.top_p = x)),
        ("LlamaCppSampling min_p", |x| llama(|s| s.min_p = x)),
        ("LlamaCppSampling typical_p", |x| llama(|s| s.typical_p = x)),
        ("LlamaCppSampling temperature", |x| llama(|s| s.temperature = x)),
        ("LlamaCppSampling repeat_penalty", |x| llama(|s| s.repeat_penalty = x)),
        ("LlamaCppSampling frequency_penalty", |x| llama(|s| s.frequency_penalty = x)),
        ("LlamaCppSampling presence_penalty", |x| llama(|s| s.presence_penalty = x)),
        ("LlamaCppSampling top_n_sigma", |x| llama(|s| s.top_n_sigma = x)),
        ("LlamaCppSampling xtc_probability", |x| llama(|s| s.xtc_probability = x)),
        ("LlamaCppSampling xtc_threshold", |x| llama(|s| s.xtc_threshold = x)),
        ("LlamaCppSampling dynatemp_range", |x| llama(|s| s.dynatemp_range = x)),
        ("LlamaCppSampling dynatemp_exponent", |x| {
            llama(|s| {
                s.dynatemp_range = 0.5;
                s.dynatemp_exponent = x;
            })
        }),
        ("LlamaCppSampling temperature = dynatemp_range", |x| {
            llama(|s| {
                s.temperature = x;
                s.dynatemp_range = x;
            })
        }),
        ("LlamaCppSampling mirostat_tau", |x| llama(|s| s.mirostat_tau = x)),
        ("LlamaCppSampling mirostat_eta", |x| llama(|s| s.mirostat_eta = x)),
        ("LlamaCppSampling dry_multiplier", |x| llama(|s| s.dry_multiplier = x)),
        ("LlamaCppSampling dry_base", |x| {
            llama(|s| {
                s.dry_multiplier = 0.8;
                s.dry_base = x;
            })
        }),
        ("LlamaCppSampling logit_bias", |x| llama(|s| s.logit_bias = vec![(1, x)])),
    ]
}

/// A llama.cpp preset with DRY's breakers given as ids, changed by `set`.
fn llama_with(set: impl FnOnce(&mut LlamaCppSampling)) -> LlamaCppSampling {
    let mut s = LlamaCppSampling {
        dry_sequence_breaker_ids: Some(vec![0]),
        eos_token_ids: vec![0],
        ..LlamaCppSampling::default()
    };
    set(&mut s);
    s
}

/// The preset built three ways: as set, with Mirostat 2.0 (which skips
/// every stage but temperature and Mirostat), and with no `samplers` at
/// all. The outcome must not depend on whether a field's stage runs: NaN
/// is rejected in each, and so is a value its stage would reject.
fn llama(set: impl Fn(&mut LlamaCppSampling)) -> Result<Built, Error> {
    let plain = llama_with(&set).build();
    let mirostat = llama_with(|s| {
        s.mirostat = 2;
        set(s);
    })
    .build();
    let no_samplers = llama_with(|s| {
        set(s);
        s.samplers = Vec::new();
    })
    .build();
    for other in [&mirostat, &no_samplers] {
        if let (Err(e), Ok(_)) | (Ok(_), Err(e)) = (&plain, other) {
            return Err(Error::Load {
                what: "a llama.cpp preset".into(),
                message: format!("accepted in one mode and not in another: {e}"),
            });
        }
    }
    plan(plain)
}

fn f64_cases() -> Vec<F64Case> {
    vec![
        ("GenerationConfig temperature", |x| hf(|c| c.temperature = Some(x))),
        ("GenerationConfig top_p", |x| hf(|c| c.top_p = Some(x))),
        ("GenerationConfig min_p", |x| hf(|c| c.min_p = Some(x))),
        ("GenerationConfig typical_p", |x| hf(|c| c.typical_p = Some(x))),
        ("GenerationConfig epsilon_cutoff", |x| hf(|c| c.epsilon_cutoff = Some(x))),
        ("GenerationConfig eta_cutoff", |x| hf(|c| c.eta_cutoff = Some(x))),
        ("GenerationConfig top_h", |x| hf(|c| c.top_h = Some(x))),
        ("GenerationConfig repetition_penalty", |x| hf(|c| c.repetition_penalty = Some(x))),
        ("GenerationConfig length_penalty", |x| {
            hf(|c| {
                c.num_beams = Some(2);
                c.length_penalty = Some(x);
            })
        }),
        ("GenerationConfig sequence_bias", |x| hf(|c| c.sequence_bias = Some(vec![(vec![3], x)]))),
        ("OpenAiParams temperature", |x| openai(|p| p.temperature = Some(x))),
        ("OpenAiParams top_p", |x| openai(|p| p.top_p = Some(x))),
        ("OpenAiParams presence_penalty", |x| openai(|p| p.presence_penalty = Some(x))),
        ("OpenAiParams frequency_penalty", |x| openai(|p| p.frequency_penalty = Some(x))),
        ("OpenAiParams min_p", |x| openai(|p| p.min_p = Some(x))),
        ("OpenAiParams repetition_penalty", |x| openai(|p| p.repetition_penalty = Some(x))),
        ("OpenAiParams logit_bias", |x| openai(|p| p.logit_bias = Some(vec![(1, x)]))),
        ("OpenAiParams top_n_sigma", |x| openai(|p| p.top_n_sigma = Some(x))),
        ("OpenAiParams xtc_probability", |x| openai(|p| p.xtc_probability = Some(x))),
        ("OpenAiParams xtc_threshold", |x| openai(|p| p.xtc_threshold = Some(x))),
        ("OpenAiParams dynatemp_range", |x| openai(|p| p.dynatemp_range = Some(x))),
        ("OpenAiParams dynatemp_exponent", |x| {
            openai(|p| {
                p.dynatemp_range = Some(0.5);
                p.dynatemp_exponent = Some(x);
            })
        }),
        ("OpenAiParams mirostat_tau", |x| openai(|p| p.mirostat_tau = Some(x))),
        ("OpenAiParams mirostat_eta", |x| openai(|p| p.mirostat_eta = Some(x))),
        ("OpenAiParams dry_multiplier", |x| openai(|p| p.dry_multiplier = Some(x))),
        ("OpenAiParams dry_base", |x| {
            openai(|p| {
                p.dry_multiplier = Some(0.8);
                p.dry_base = Some(x);
            })
        }),
    ]
}

/// A sampling `GenerationConfig` changed by `set`, built; the same field
/// must give the same verdict with `do_sample: false`, where the warpers
/// are not built.
fn hf(set: impl Fn(&mut GenerationConfig)) -> Result<Built, Error> {
    let mut sampling = GenerationConfig {
        do_sample: Some(true),
        eos_token_id: Some(decoding::config::EosTokenId::One(0)),
        ..GenerationConfig::default()
    };
    set(&mut sampling);
    let mut greedy = sampling.clone();
    greedy.do_sample = Some(false);
    let (s, g) = (sampling.build(), greedy.validate());
    if s.is_ok() && g.is_err() || s.as_ref().is_err_and(is_nan_error) && g.is_ok() {
        return Err(Error::Load {
            what: "a generation config".into(),
            message: "NaN accepted without sampling".into(),
        });
    }
    plan(s)
}

fn is_nan_error(e: &Error) -> bool {
    matches!(e, Error::InvalidParameter { value, .. } if value == "NaN")
}

/// An OpenAI-style request changed by `set`, built on an empty config, and
/// with Mirostat 2.0 (which skips the other samplers): the same verdict.
fn openai(set: impl Fn(&mut OpenAiParams)) -> Result<Built, Error> {
    let with = |mirostat| {
        let mut p = OpenAiParams {
            dry_sequence_breaker_ids: Some(vec![0]),
            mirostat,
            ..OpenAiParams::default()
        };
        set(&mut p);
        p
    };
    let (p, mirostat) = (with(None), with(Some(2)));
    let base = GenerationConfig::default();
    let (a, b) = (p.build(&base), mirostat.build(&base));
    if a.is_ok() != b.is_ok() {
        return Err(Error::Load {
            what: "a request".into(),
            message: format!("Mirostat 2.0 changes the verdict: {:?} vs {:?}", a.err(), b.err()),
        });
    }
    plan(a)
}

fn size_cases() -> Vec<SizeCase> {
    vec![
        ("TopK::new", |n| stage(TopK::new(n))),
        ("TopK::exact", |n| stage(TopK::new(n).map(TopK::exact))),
        ("TopK min_tokens_to_keep", |n| stage(TopK::new(1)?.min_tokens_to_keep(n))),
        ("TopP min_tokens_to_keep", |n| stage(TopP::new(0.5)?.min_tokens_to_keep(n))),
        ("MinP min_tokens_to_keep", |n| stage(MinP::new(0.5)?.min_tokens_to_keep(n))),
        ("Typical min_tokens_to_keep", |n| stage(Typical::new(0.5)?.min_tokens_to_keep(n))),
        ("EpsilonCutoff min_tokens_to_keep", |n| {
            stage(EpsilonCutoff::new(0.3)?.min_tokens_to_keep(n))
        }),
        ("EtaCutoff min_tokens_to_keep", |n| stage(EtaCutoff::new(0.3)?.min_tokens_to_keep(n))),
        ("Xtc min_keep", |n| stage(Xtc::new(1.0, 0.1, 3)?.min_keep(n))),
        ("NoRepeatNGram::new", |n| stage(NoRepeatNGram::new(n))),
        ("MinLength::new", |n| stage(MinLength::new(n, [0]))),
        ("MinNewTokens::new", |n| stage(MinNewTokens::new(n, [0]))),
        ("WindowedPenalties last_n", |n| stage(WindowedPenalties::new(n, 1.5, 0.5, 0.5))),
        ("Dry allowed_length", |n| stage(Dry::new(0.8, 1.75, n))),
        ("Dry penalty_last_n", |n| stage(Dry::new(0.8, 1.75, 2)?.penalty_last_n(n))),
        ("BadWords", |n| stage(BadWords::new([vec![2; n.min(4)]], &[0]))),
        ("BeamSearch::new", |n| BeamSearch::new(n).map(|_| Built::Options)),
        ("BeamSearch num_return_sequences", |n| {
            BeamSearch::new(4)?.with_num_return_sequences(n).map(|_| Built::Options)
        }),
        ("SpeculativeOptions draft_tokens", |n| {
            SpeculativeOptions::new(n, Verification::Sampled).map(|_| Built::Options)
        }),
        ("GenerateOptions max_new_tokens", |n| {
            GenerateOptions::builder(n).build().map(|_| Built::Options)
        }),
        ("GenerateOptions min_new_tokens", |n| {
            GenerateOptions::builder(16).min_new_tokens(n).build().map(|_| Built::Options)
        }),
        ("GenerateOptions vocab_size", |n| {
            GenerateOptions::builder(16).eos_token(0).vocab_size(n).build().map(|_| Built::Options)
        }),
        ("GenerateOptions top_logprobs", |n| {
            GenerateOptions::builder(16).top_logprobs(n).build().map(|_| Built::Options)
        }),
        ("GenerationConfig top_k", |n| hf(|c| c.top_k = Some(n))),
        ("GenerationConfig no_repeat_ngram_size", |n| hf(|c| c.no_repeat_ngram_size = Some(n))),
        ("GenerationConfig min_new_tokens", |n| hf(|c| c.min_new_tokens = Some(n))),
        ("GenerationConfig min_length", |n| hf(|c| c.min_length = Some(n))),
        ("GenerationConfig max_new_tokens", |n| hf(|c| c.max_new_tokens = Some(n))),
        ("GenerationConfig max_length", |n| hf(|c| c.max_length = Some(n))),
        ("GenerationConfig num_return_sequences", |n| hf(|c| c.num_return_sequences = Some(n))),
        ("GenerationConfig num_beams", |n| hf(|c| c.num_beams = Some(n))),
        ("OpenAiParams top_k", |n| openai(|p| p.top_k = Some(n))),
        ("OpenAiParams n", |n| openai(|p| p.n = Some(n))),
        ("OpenAiParams max_tokens", |n| openai(|p| p.max_tokens = Some(n))),
        ("OpenAiParams top_logprobs", |n| {
            openai(|p| {
                p.logprobs = Some(decoding::config::Logprobs::Enabled(true));
                p.top_logprobs = Some(n);
            })
        }),
        ("LlamaCppSampling min_keep", |n| llama(|s| s.min_keep = n)),
        ("LlamaCppSampling max_new_tokens", |n| llama(|s| s.max_new_tokens = n)),
    ]
}

fn int_cases() -> Vec<IntCase> {
    vec![
        ("LlamaCppSampling top_k", |n| llama(|s| s.top_k = n)),
        ("LlamaCppSampling penalty_last_n", |n| {
            llama(|s| {
                s.repeat_penalty = 1.2;
                s.penalty_last_n = n;
            })
        }),
        ("LlamaCppSampling mirostat", |n| llama(|s| s.mirostat = n)),
        ("LlamaCppSampling dry_allowed_length", |n| {
            llama(|s| {
                s.dry_multiplier = 0.8;
                s.dry_allowed_length = n;
            })
        }),
        ("LlamaCppSampling dry_penalty_last_n", |n| {
            llama(|s| {
                s.dry_multiplier = 0.8;
                s.dry_penalty_last_n = n;
            })
        }),
        ("OpenAiParams mirostat", |n| openai(|p| p.mirostat = Some(n))),
        ("OpenAiParams dry_allowed_length", |n| {
            openai(|p| {
                p.dry_multiplier = Some(0.8);
                p.dry_allowed_length = Some(n);
            })
        }),
        ("OpenAiParams dry_penalty_last_n", |n| {
            openai(|p| {
                p.dry_multiplier = Some(0.8);
                p.dry_penalty_last_n = Some(n);
            })
        }),
    ]
}

#[test]
fn every_parameter_rejects_nan_and_survives_its_extremes() {
    let mut failures = Vec::new();
    let mut checked = 0;
    for (what, build) in f32_cases() {
        for x in F32 {
            failures.extend(check(what, &format!("{x:e}"), x.is_nan(), build(x)));
            checked += 1;
        }
    }
    for (what, build) in f64_cases() {
        for x in F64 {
            let outcome = build(x);
            // A number beyond f32's range would be narrowed to an infinity,
            // a different value than the one written.
            if x.is_finite() && x.abs() > f64::from(f32::MAX) && outcome.is_ok() {
                failures.push(format!("{what} = {x:e}: accepted beyond f32's range"));
            }
            failures.extend(check(what, &format!("{x:e}"), x.is_nan(), outcome));
            checked += 1;
        }
    }
    for (what, build) in size_cases() {
        for n in SIZES {
            failures.extend(check(what, &n.to_string(), false, build(n)));
            checked += 1;
        }
    }
    for (what, build) in int_cases() {
        for n in INTS {
            failures.extend(check(what, &n.to_string(), false, build(n)));
            checked += 1;
        }
    }
    assert!(checked > 1000, "{checked} cases");
    assert!(
        failures.is_empty(),
        "{} of {checked} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The table itself must be able to fail: a processor that lets NaN
/// through, or writes it, is caught.
#[test]
fn the_checker_catches_what_it_claims_to() {
    #[derive(Debug)]
    struct WritesNan;
    impl LogitsProcessor for WritesNan {
        fn process(
            &mut self,
            _: &Context<'_>,
            scores: &mut decoding::Scores<'_>,
        ) -> Result<(), Error> {
            scores.values_mut()[0] = f32::NAN;
            Ok(())
        }
    }
    #[derive(Debug)]
    struct Revives;
    impl LogitsProcessor for Revives {
        fn process(
            &mut self,
            _: &Context<'_>,
            scores: &mut decoding::Scores<'_>,
        ) -> Result<(), Error> {
            scores.densify();
            scores.values_mut()[4] = 0.0;
            Ok(())
        }
    }
    assert!(!check("writes NaN", "1", false, stage(Ok(WritesNan))).is_empty());
    assert!(!check("revives", "1", false, stage(Ok(Revives))).is_empty());
    assert!(!check("NaN accepted", "NaN", true, stage(Temperature::new(1.0))).is_empty());
    assert!(check("fine", "1", false, stage(Temperature::new(1.0))).is_empty());
}

// ---------------------------------------------------------------------------
// Named regressions.
// ---------------------------------------------------------------------------

/// `DynamicTemperature::new(3e38, 3e38, 1.0)` was accepted: `T_max = temp +
/// range` overflowed f32 and `-inf / inf` made a masked token NaN. A range
/// whose sum with `temp` overflows f32 is now rejected; up to `f32::MAX`
/// the masked token stays `-inf`.
#[test]
fn dynamic_temperature_whose_maximum_overflows_f32_is_rejected() {
    assert!(matches!(
        DynamicTemperature::new(3e38, 3e38, 1.0),
        Err(Error::InvalidParameter { name: "dynatemp_range", .. })
    ));
    let half = f32::MAX / 2.0;
    let mut pipeline = Pipeline::new().with(DynamicTemperature::new(half, half, 1.0).unwrap());
    let mut row = [1.0, NEG, 2.0, 2.0];
    pipeline.process(&Context::empty(), &mut row).unwrap();
    assert_eq!(row[1], NEG);
    assert!(row.iter().all(|x| !x.is_nan()), "{row:?}");
    // The same bound through the llama.cpp preset.
    let preset = LlamaCppSampling { temperature: 3e38, dynatemp_range: 3e38, ..Default::default() };
    assert!(matches!(preset.build(), Err(Error::InvalidParameter { name: "dynatemp_range", .. })));
}

/// `Dry` returned `TokenOutOfRange` for a sequence breaker outside the
/// vocabulary that followed a repetition, though a breaker is never
/// penalized. Now only a token that would be penalized is range-checked.
#[test]
fn dry_ignores_an_out_of_range_sequence_breaker() {
    // "1 2 9 | 1 2": 9 follows the repetition "1 2" but is a breaker.
    let history = [1, 2, 9, 1, 2];
    let mut dry = Dry::new(1.0, 2.0, 2).unwrap().sequence_breakers([9]);
    let mut row = vec![0.0; 4];
    let mut live = Vec::new();
    let mut scores = decoding::Scores::new(&mut row, &mut live);
    dry.process(&Context::prompt_only(&history), &mut scores).unwrap();
    assert_eq!(row, [0.0; 4]);
    // A penalized token out of range is still an error.
    let mut dry = Dry::new(1.0, 2.0, 2).unwrap();
    let mut row = vec![0.0; 4];
    let mut scores = decoding::Scores::new(&mut row, &mut live);
    assert_eq!(
        dry.process(&Context::prompt_only(&history), &mut scores),
        Err(Error::TokenOutOfRange { id: 9, vocab_size: 4 })
    );
}

/// `LlamaCppSampling` let NaN through in `top_p`, `min_p` and `typical_p`
/// (a NaN compares false with the "off" thresholds, so the stage was left
/// out), and in every field of a stage the chosen mode skips
/// (`repeat_penalty: NaN` with Mirostat 2.0). Every field is now checked
/// whatever the mode.
#[test]
fn llama_cpp_sampling_rejects_nan_everywhere() {
    let named = |s: LlamaCppSampling| match s.build() {
        Err(Error::InvalidParameter { name, .. }) => name,
        other => panic!("accepted: {other:?}"),
    };
    let nan = f32::NAN;
    assert_eq!(named(LlamaCppSampling { top_p: nan, ..Default::default() }), "top_p");
    assert_eq!(named(LlamaCppSampling { min_p: nan, ..Default::default() }), "min_p");
    assert_eq!(named(LlamaCppSampling { typical_p: nan, ..Default::default() }), "typical_p");
    let mirostat = LlamaCppSampling { mirostat: 2, ..Default::default() };
    assert!(mirostat.build().is_ok());
    assert_eq!(
        named(LlamaCppSampling { repeat_penalty: nan, ..mirostat.clone() }),
        "repeat_penalty"
    );
    assert_eq!(named(LlamaCppSampling { top_p: -0.5, ..mirostat.clone() }), "top_p");
    assert_eq!(
        named(LlamaCppSampling { top_n_sigma: nan, samplers: vec![], ..Default::default() }),
        "top_n_sigma"
    );
    assert_eq!(
        named(LlamaCppSampling {
            min_p: nan,
            samplers: vec![LlamaCppStage::Temperature],
            ..Default::default()
        }),
        "min_p"
    );
}

/// Beam sampling from a `generation_config.json`: with `num_beams > 1`
/// transformers builds every sampling warper with `min_tokens_to_keep =
/// max(2, #eos + 1)`; the crate kept 1.
#[cfg(feature = "serde")]
#[test]
fn beam_sampling_warpers_keep_one_token_besides_every_eos() {
    let stages = |json: &str| GenerationConfig::from_json(json).unwrap().build().unwrap();
    // top_k = 1 becomes 2 (transformers: TopKLogitsWarper(top_k = max(1, 2))).
    let plan = stages(r#"{"num_beams": 2, "do_sample": true, "top_k": 1}"#);
    assert_eq!(plan.stages(), ["TopK(k=2)"]);
    // Without beams, or without sampling, nothing changes.
    assert_eq!(stages(r#"{"do_sample": true, "top_k": 1}"#).stages(), ["TopK(k=1)"]);
    // 3 beams, two EOS ids: top-p keeps 3 tokens where its mass needs 1.
    let plan = stages(
        r#"{"num_beams": 3, "do_sample": true, "top_k": 0, "top_p": 0.01, "eos_token_id": [5, 6]}"#,
    );
    let (mut pipeline, _, _) = plan.into_parts();
    let mut row = [9.0, 1.0, 2.0, 3.0, 0.0, 0.5, 0.25, -1.0];
    pipeline.process(&Context::empty(), &mut row).unwrap();
    let kept: Vec<usize> = (0..8).filter(|&i| row[i].is_finite()).collect();
    assert_eq!(kept, [0, 2, 3]);
    // One EOS id, or none: 2.
    for eos in [r#", "eos_token_id": 5"#, ""] {
        let plan = stages(&format!(
            r#"{{"num_beams": 3, "do_sample": true, "top_k": 0, "min_p": 0.9{eos}}}"#
        ));
        let (mut pipeline, _, _) = plan.into_parts();
        let mut row = [9.0, 1.0, 2.0, 3.0, 0.0, 0.5, 0.25, -1.0];
        pipeline.process(&Context::empty(), &mut row).unwrap();
        assert_eq!(row.iter().filter(|x| x.is_finite()).count(), 2, "{eos}");
    }
}
