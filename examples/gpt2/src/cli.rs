//! The command line: flags, the decoding setup they describe, and a run.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use decoding::processors::{MinP, RepetitionPenalty, Temperature, TopK, TopP};
use decoding::sampler::{Categorical, Greedy};
use decoding::structured::{Constraint, Grammar, StructuredError, TokenVocabulary};
use decoding::{
    BeamSearch, FinishReason, GenerateOptions, Generator, Pipeline, PromptLookup, Sampler,
    SpeculativeOptions, SpeculativeStats, TokenId, Verification,
};

use crate::lookup::{Located, SearchPaths, locate};
use crate::{Config, Dtype, Gpt2, Gpt2Beams, KernelPath, Tokenizer, Weights};

/// The sampler's seed when `--seed` is absent: the example's runs are
/// reproducible by default (the library draws a fresh seed per run when
/// none is given).
pub const DEFAULT_SEED: u64 = 0;

/// The seed's prompt, used when `--prompt` is absent.
pub const DEFAULT_PROMPT: &str = "My favourite movie is";

/// Tokens generated when `--max-new-tokens` is absent.
pub const DEFAULT_MAX_NEW_TOKENS: usize = 50;

/// Tokens the draft proposes per round when `--draft-tokens` is absent.
pub const DEFAULT_DRAFT_TOKENS: usize = 4;

/// The longest n-gram prompt lookup matches when `--prompt-lookup-ngram`
/// is absent (transformers' `max_matching_ngram_size` default).
pub const DEFAULT_LOOKUP_NGRAM: usize = 2;

/// The usage text.
pub const USAGE: &str = "\
GPT-2 text generation with the `decoding` crate.

Usage: gpt2 [OPTIONS]

With no option (or only --model, --seed, --threads, --kernels, --dtype) it shows the demonstration: the prompt
\"My favourite movie is\" decoded greedily, with temperature, with top-k and with top-p, and the
first step's candidate probabilities before and after each processor.

Options:
  --model DIR               Hugging Face model directory (config.json + model.safetensors);
                            default: GPT-2 from the Hugging Face cache, else the bundled model
  --prompt TEXT             prompt [default: \"My favourite movie is\"]
  --max-new-tokens N        tokens to generate [default: 50]
  --greedy                  always take the most likely token (the default without sampling flags)
  --temperature T           sample, dividing the logits by T (0 means greedy)
  --top-k K                 sample among the K most likely tokens (0: off)
  --top-p P                 sample from the smallest set with probability >= P (1: off)
  --min-p P                 sample among tokens with probability >= P * the top probability
  --repetition-penalty R    penalise tokens already in the sequence (1: off); also with --greedy
  --seed S                  random seed of the sampler [default: 0]
  --ignore-eos              keep going after <|endoftext|>
  --threads N               threads for each step's matrix products [default: 1]
  --kernels NAME            portable, avx2 or avx512 [default: the widest this CPU runs]
  --dtype TYPE              f32, f16 or bf16: the weights' precision in memory [default: the
                            file's; f16/bf16 files stay in 16 bits, f32 narrowed rounds]
  --draft DIR|bundled       speculative decoding with this draft model (a model directory, or
                            \"bundled\" for the bundled model); prints the acceptance statistics
  --draft-tokens K          tokens the draft proposes per round [default: 4]
  --prompt-lookup N         prompt lookup decoding: speculative decoding whose draft is up to N
                            tokens copied from where the last n-gram occurred earlier in the
                            prompt or the output (no draft model); prints the acceptance statistics
  --prompt-lookup-ngram M   the longest n-gram prompt lookup matches [default: 2]
  --num-beams N             beam search with N beams (1: off; beam sampling with sampling flags);
                            prints every hypothesis and its score
  --length-penalty L        beam search: a hypothesis scores sum / length^L [default: 1]
  --json-schema FILE        constrain the output to JSON valid against the schema in FILE
  --regex PATTERN           constrain the output to match PATTERN (Rust regex syntax, whole output)
  --grammar FILE            constrain the output to the GBNF grammar in FILE (llama.cpp's format,
                            `root ::= ...`); a file that starts with %llguidance is read as
                            llguidance's Lark-like syntax instead
  --choice A,B,C            constrain the output to one of the comma-separated strings
  --json                    print one JSON object instead of streaming text
  --demo                    show the demonstration even with other options
  -h, --help                print this help
";

/// Parsed command-line flags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    /// `--model DIR`.
    pub model: Option<PathBuf>,
    /// `--prompt TEXT`.
    pub prompt: Option<String>,
    /// `--max-new-tokens N`.
    pub max_new_tokens: Option<usize>,
    /// `--greedy`.
    pub greedy: bool,
    /// `--temperature T`.
    pub temperature: Option<f32>,
    /// `--top-k K`.
    pub top_k: Option<usize>,
    /// `--top-p P`.
    pub top_p: Option<f32>,
    /// `--min-p P`.
    pub min_p: Option<f32>,
    /// `--repetition-penalty R`.
    pub repetition_penalty: Option<f32>,
    /// `--seed S`.
    pub seed: Option<u64>,
    /// `--ignore-eos`.
    pub ignore_eos: bool,
    /// `--threads N`.
    pub threads: Option<usize>,
    /// `--kernels NAME`.
    pub kernels: Option<KernelPath>,
    /// `--dtype TYPE`.
    pub dtype: Option<Dtype>,
    /// `--draft DIR|bundled`.
    pub draft: Option<String>,
    /// `--draft-tokens K`.
    pub draft_tokens: Option<usize>,
    /// `--prompt-lookup N`.
    pub prompt_lookup: Option<usize>,
    /// `--prompt-lookup-ngram M`.
    pub prompt_lookup_ngram: Option<usize>,
    /// `--num-beams N`.
    pub num_beams: Option<usize>,
    /// `--length-penalty L`.
    pub length_penalty: Option<f32>,
    /// `--json-schema FILE`.
    pub json_schema: Option<PathBuf>,
    /// `--regex PATTERN`.
    pub regex: Option<String>,
    /// `--grammar FILE`.
    pub grammar: Option<PathBuf>,
    /// `--choice A,B,C`.
    pub choice: Option<String>,
    /// `--json`.
    pub json: bool,
    /// `--demo`.
    pub demo: bool,
    /// `-h` / `--help`.
    pub help: bool,
}

/// A constraint that cannot be built (an unreadable file, a malformed or
/// unsupported schema, an invalid regex or grammar), in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConstraintError(pub String);

impl From<StructuredError> for ConstraintError {
    fn from(e: StructuredError) -> Self {
        // The engine's messages may carry a multi-line state dump.
        let text = e.to_string();
        ConstraintError(text.lines().next().unwrap_or_default().trim_end().to_string())
    }
}

/// The constraint stage for `grammar` over the tokenizer's vocabulary, the
/// end-of-sequence id being `eos` (`<|endoftext|>` for GPT-2).
///
/// # Errors
///
/// [`ConstraintError`] with the one-line reason.
pub fn constraint(
    grammar: &Grammar,
    tokenizer: &Tokenizer,
    eos: TokenId,
) -> Result<Constraint, ConstraintError> {
    let vocab = TokenVocabulary::from_detokenizer(tokenizer, tokenizer.vocab_size(), &[eos])?;
    Ok(vocab.constraint(grammar)?)
}

/// A command-line mistake, reported with the usage hint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

impl Args {
    /// Parses flags (without the program name). `--flag value` and
    /// `--flag=value` are both accepted.
    ///
    /// # Errors
    ///
    /// [`UsageError`] for an unknown flag, a missing or malformed value, or
    /// `--greedy` together with a sampling flag.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self, UsageError> {
        let mut out = Args::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let arg = arg
                .into_string()
                .map_err(|a| UsageError(format!("argument {a:?} is not valid UTF-8")))?;
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |name: &str| -> Result<String, UsageError> {
                match inline.clone() {
                    Some(v) => Ok(v),
                    None => args
                        .next()
                        .ok_or_else(|| UsageError(format!("{name} needs a value")))?
                        .into_string()
                        .map_err(|a| UsageError(format!("{name}: {a:?} is not valid UTF-8"))),
                }
            };
            match flag.as_str() {
                "--model" => out.model = Some(PathBuf::from(value("--model")?)),
                "--prompt" => out.prompt = Some(value("--prompt")?),
                "--max-new-tokens" => out.max_new_tokens = Some(number(&flag, &value(&flag)?)?),
                "--temperature" => out.temperature = Some(number(&flag, &value(&flag)?)?),
                "--top-k" => out.top_k = Some(number(&flag, &value(&flag)?)?),
                "--top-p" => out.top_p = Some(number(&flag, &value(&flag)?)?),
                "--min-p" => out.min_p = Some(number(&flag, &value(&flag)?)?),
                "--repetition-penalty" => {
                    out.repetition_penalty = Some(number(&flag, &value(&flag)?)?);
                }
                "--seed" => out.seed = Some(number(&flag, &value(&flag)?)?),
                "--threads" => out.threads = Some(number(&flag, &value(&flag)?)?),
                "--kernels" => {
                    let name = value(&flag)?;
                    out.kernels = Some(KernelPath::parse(name.trim()).ok_or_else(|| {
                        UsageError(format!("--kernels: {name:?} is not portable, avx2 or avx512"))
                    })?);
                }
                "--dtype" => {
                    let name = value(&flag)?;
                    out.dtype = Some(Dtype::parse(name.trim()).ok_or_else(|| {
                        UsageError(format!("--dtype: {name:?} is not f32, f16 or bf16"))
                    })?);
                }
                "--draft" => out.draft = Some(value("--draft")?),
                "--draft-tokens" => out.draft_tokens = Some(number(&flag, &value(&flag)?)?),
                "--prompt-lookup" => out.prompt_lookup = Some(number(&flag, &value(&flag)?)?),
                "--prompt-lookup-ngram" => {
                    out.prompt_lookup_ngram = Some(number(&flag, &value(&flag)?)?);
                }
                "--num-beams" => out.num_beams = Some(number(&flag, &value(&flag)?)?),
                "--length-penalty" => out.length_penalty = Some(number(&flag, &value(&flag)?)?),
                "--json-schema" => out.json_schema = Some(PathBuf::from(value(&flag)?)),
                "--regex" => out.regex = Some(value(&flag)?),
                "--grammar" => out.grammar = Some(PathBuf::from(value(&flag)?)),
                "--choice" => out.choice = Some(value(&flag)?),
                "--greedy" | "--ignore-eos" | "--json" | "--demo" | "-h" | "--help"
                    if inline.is_some() =>
                {
                    return Err(UsageError(format!("{flag} takes no value")));
                }
                "--greedy" => out.greedy = true,
                "--ignore-eos" => out.ignore_eos = true,
                "--json" => out.json = true,
                "--demo" => out.demo = true,
                "-h" | "--help" => out.help = true,
                _ => return Err(UsageError(format!("unknown argument {arg:?} (see --help)"))),
            }
        }
        if out.greedy && out.samples() {
            return Err(UsageError(
                "--greedy cannot be combined with --temperature, --top-k, --top-p or --min-p"
                    .into(),
            ));
        }
        if out.threads == Some(0) {
            return Err(UsageError("--threads must be at least 1".into()));
        }
        if out.draft_tokens.is_some() && out.draft.is_none() {
            return Err(UsageError("--draft-tokens needs --draft".into()));
        }
        if out.draft_tokens == Some(0) {
            return Err(UsageError("--draft-tokens must be at least 1".into()));
        }
        if out.prompt_lookup == Some(0) {
            return Err(UsageError("--prompt-lookup must be at least 1".into()));
        }
        if out.prompt_lookup_ngram.is_some() && out.prompt_lookup.is_none() {
            return Err(UsageError("--prompt-lookup-ngram needs --prompt-lookup".into()));
        }
        if out.prompt_lookup_ngram == Some(0) {
            return Err(UsageError("--prompt-lookup-ngram must be at least 1".into()));
        }
        if out.prompt_lookup.is_some() && out.draft.is_some() {
            return Err(UsageError("--prompt-lookup cannot be combined with --draft".into()));
        }
        if out.num_beams == Some(0) {
            return Err(UsageError("--num-beams must be at least 1".into()));
        }
        if out.length_penalty.is_some() && out.num_beams.is_none() {
            return Err(UsageError("--length-penalty needs --num-beams".into()));
        }
        let constraints = usize::from(out.json_schema.is_some())
            + usize::from(out.regex.is_some())
            + usize::from(out.grammar.is_some())
            + usize::from(out.choice.is_some());
        if constraints > 1 {
            return Err(UsageError(
                "--json-schema, --regex, --grammar and --choice exclude each other".into(),
            ));
        }
        if constraints == 1 && out.ignore_eos {
            return Err(UsageError(
                "--ignore-eos cannot be combined with a constraint (the grammar decides where \
                 the output ends)"
                    .into(),
            ));
        }
        if out.num_beams.is_some_and(|n| n > 1) && out.draft.is_some() {
            return Err(UsageError("--num-beams cannot be combined with --draft".into()));
        }
        if out.num_beams.is_some_and(|n| n > 1) && out.prompt_lookup.is_some() {
            return Err(UsageError("--num-beams cannot be combined with --prompt-lookup".into()));
        }
        Ok(out)
    }

    /// Whether a constraint flag (`--json-schema`, `--regex`, `--grammar`,
    /// `--choice`) was given.
    pub fn constrained(&self) -> bool {
        self.json_schema.is_some()
            || self.regex.is_some()
            || self.grammar.is_some()
            || self.choice.is_some()
    }

    /// The grammar of the constraint flag, if one was given.
    ///
    /// # Errors
    ///
    /// [`ConstraintError`] when a file cannot be read, a schema is not JSON
    /// or a pattern is empty.
    pub fn grammar(&self) -> Result<Option<Grammar>, ConstraintError> {
        let read = |path: &PathBuf| {
            std::fs::read_to_string(path)
                .map_err(|e| ConstraintError(format!("{}: {e}", path.display())))
        };
        let grammar = if let Some(path) = &self.json_schema {
            Grammar::json_schema_str(&read(path)?)
        } else if let Some(pattern) = &self.regex {
            Grammar::regex(pattern.as_str())
        } else if let Some(path) = &self.grammar {
            Grammar::gbnf(&read(path)?)
        } else if let Some(list) = &self.choice {
            Grammar::choice(list.split(','))
        } else {
            return Ok(None);
        };
        grammar.map(Some).map_err(ConstraintError::from)
    }

    /// Whether a sampling flag was given.
    pub fn samples(&self) -> bool {
        self.temperature.is_some()
            || self.top_k.is_some()
            || self.top_p.is_some()
            || self.min_p.is_some()
    }

    /// Whether to show the demonstration: asked for, or no generation flag
    /// given.
    pub fn is_demo(&self) -> bool {
        self.demo
            || !(self.prompt.is_some()
                || self.max_new_tokens.is_some()
                || self.greedy
                || self.samples()
                || self.repetition_penalty.is_some()
                || self.ignore_eos
                || self.json
                || self.draft.is_some()
                || self.prompt_lookup.is_some()
                || self.num_beams.is_some()
                || self.constrained())
    }

    /// The processors these flags describe, in Hugging Face's order
    /// (repetition penalty, temperature, top-k, top-p, min-p), and the
    /// sampler: greedy unless a sampling flag was given.
    ///
    /// # Errors
    ///
    /// The processors' parameter errors (`--top-p 1.5`, ...).
    pub fn decoding(&self) -> Result<(Pipeline, Box<dyn Sampler + Send>), decoding::Error> {
        let mut pipeline = Pipeline::new();
        if let Some(r) = self.repetition_penalty {
            pipeline.push(RepetitionPenalty::new(r)?);
        }
        if let Some(t) = self.temperature {
            pipeline.push(Temperature::new(t)?);
        }
        // 0 and 1 switch top-k and top-p off, as transformers does.
        if let Some(k) = self.top_k.filter(|&k| k != 0) {
            pipeline.push(TopK::new(k)?);
        }
        if let Some(p) = self.top_p.filter(|&p| p != 1.0) {
            pipeline.push(TopP::new(p)?);
        }
        if let Some(p) = self.min_p {
            pipeline.push(MinP::new(p)?);
        }
        let sampler: Box<dyn Sampler + Send> =
            if self.samples() { Box::new(Categorical::new()) } else { Box::new(Greedy::new()) };
        Ok((pipeline, sampler))
    }
}

fn number<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, UsageError> {
    text.trim().parse().map_err(|_| UsageError(format!("{flag}: {text:?} is not a valid number")))
}

/// Finds and loads the model and its tokenizer, printing the lookup note
/// to stderr.
///
/// # Errors
///
/// The lookup's, the loader's and the tokenizer's errors.
pub fn load(args: &Args) -> Result<(Located, Gpt2, Tokenizer), crate::Gpt2Error> {
    let located = locate(args.model.as_deref(), &SearchPaths::from_env())?;
    if let Some(note) = located.note() {
        eprintln!("{note}");
    }
    let model = model_from(&located.dir, args)?;
    let tokenizer = match Tokenizer::from_dir(&located.dir)? {
        Some(t) => t,
        None => Tokenizer::gpt2()?,
    };
    Ok((located, model, tokenizer))
}

/// The model in `dir` with `--dtype`, `--kernels` and `--threads` applied.
///
/// # Errors
///
/// The loader's, and [`Gpt2Error::KernelUnavailable`](crate::Gpt2Error).
pub fn model_from(dir: &Path, args: &Args) -> Result<Gpt2, crate::Gpt2Error> {
    let config = Config::from_file(&dir.join("config.json"))?;
    let mut weights = Weights::from_file(&dir.join("model.safetensors"), &config)?;
    if let Some(dtype) = args.dtype {
        weights = weights.converted(dtype);
    }
    let model = Gpt2::new(config, weights)?.with_threads(args.threads.unwrap_or(1))?;
    match args.kernels {
        Some(path) => model.with_kernels(path),
        None => Ok(model),
    }
}

/// The generation options these flags describe.
///
/// # Errors
///
/// Invalid combinations, as [`GenerateOptions`] reports them.
pub fn options(
    args: &Args,
    model: &Gpt2,
    tokenizer: &Tokenizer,
) -> Result<GenerateOptions, decoding::Error> {
    let mut builder =
        GenerateOptions::builder(args.max_new_tokens.unwrap_or(DEFAULT_MAX_NEW_TOKENS))
            .seed(args.seed.unwrap_or(DEFAULT_SEED))
            .vocab_size(tokenizer.vocab_size());
    if let Some(eos) = eos_token(model, tokenizer).filter(|_| !args.ignore_eos) {
        builder = builder.eos_token(eos);
    }
    builder.build()
}

/// The end-of-sequence id: the model's `eos_token_id`, else the
/// tokenizer's `<|endoftext|>`.
pub fn eos_token(model: &Gpt2, tokenizer: &Tokenizer) -> Option<TokenId> {
    model.config().eos_token_id.or_else(|| tokenizer.added_token_id(crate::tokenizer::END_OF_TEXT))
}

/// The draft model's directory for `--draft`: `bundled` names the bundled
/// model, anything else is a model directory.
pub fn draft_dir(draft: &str) -> PathBuf {
    if draft == "bundled" { crate::lookup::bundled_dir() } else { PathBuf::from(draft) }
}

/// The speculative decoding these flags describe, if `--draft` was given:
/// greedy verification unless a sampling flag was given, as for
/// [`Args::decoding`]'s sampler.
///
/// # Errors
///
/// [`SpeculativeOptions::new`]'s.
pub fn speculative(args: &Args) -> Result<Option<SpeculativeOptions>, decoding::Error> {
    if args.draft.is_none() {
        return Ok(None);
    }
    let verification = if args.samples() { Verification::Sampled } else { Verification::Greedy };
    let k = args.draft_tokens.unwrap_or(DEFAULT_DRAFT_TOKENS);
    SpeculativeOptions::new(k, verification).map(Some)
}

/// The prompt lookup decoding these flags describe, if `--prompt-lookup`
/// was given: greedy verification unless a sampling flag was given.
///
/// # Errors
///
/// [`PromptLookup::new`]'s.
pub fn prompt_lookup(args: &Args) -> Result<Option<PromptLookup>, decoding::Error> {
    let Some(k) = args.prompt_lookup else {
        return Ok(None);
    };
    let verification = if args.samples() { Verification::Sampled } else { Verification::Greedy };
    let ngram = args.prompt_lookup_ngram.unwrap_or(DEFAULT_LOOKUP_NGRAM);
    PromptLookup::new(k, ngram, verification).map(Some)
}

/// The beam search these flags describe, if `--num-beams` is above 1: beam
/// sampling when a sampling flag is given (the processors of
/// [`Args::decoding`] then apply to the log-probabilities, as in
/// transformers).
///
/// # Errors
///
/// [`BeamSearch`]'s parameter errors (a non-finite length penalty).
pub fn beam_search(args: &Args) -> Result<Option<BeamSearch>, decoding::Error> {
    match args.num_beams {
        Some(n) if n > 1 => {
            let search =
                BeamSearch::new(n)?.with_length_penalty(args.length_penalty.unwrap_or(1.0))?;
            Ok(Some(search.with_sampling(args.samples())))
        }
        _ => Ok(None),
    }
}

/// One line of speculative statistics, for stderr.
pub fn stats_line(stats: &SpeculativeStats) -> String {
    let rate = stats.acceptance_rate().map_or("n/a".to_string(), |r| format!("{:.1}%", 100.0 * r));
    format!(
        "speculative: {} of {} drafted tokens accepted ({rate}), {} rounds, {} target calls for {} tokens",
        stats.accepted,
        stats.drafted,
        stats.rounds,
        stats.target_calls,
        stats.emitted()
    )
}

/// The name of a finish reason in the JSON output.
pub fn finish_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        FinishReason::Eos { .. } => "eos",
        FinishReason::StopSequence { .. } => "stop_sequence",
        FinishReason::StopString { .. } => "stop_string",
        FinishReason::Constraint => "constraint",
        FinishReason::Criterion => "criterion",
        FinishReason::Time => "time",
        _ => "other",
    }
}

/// Runs one generation: streams text to stdout (tokens/s to stderr) or
/// prints one JSON object.
///
/// # Errors
///
/// Any error of loading, encoding or generating, boxed.
pub fn generate(args: &Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (located, mut model, tokenizer) = load(args)?;
    let prompt_text = args.prompt.as_deref().unwrap_or(DEFAULT_PROMPT);
    let prompt = tokenizer.encode(prompt_text)?;
    let options = options(args, &model, &tokenizer)?;
    let (mut pipeline, sampler) = args.decoding()?;
    if let Some(grammar) = args.grammar()? {
        let eos = eos_token(&model, &tokenizer)
            .ok_or_else(|| ConstraintError("a constraint needs an end-of-sequence token".into()))?;
        // The constraint first: the sampling processors then choose among
        // the allowed tokens.
        pipeline = Pipeline::new().with(constraint(&grammar, &tokenizer, eos)?).with(pipeline);
    }
    let mut generator = Generator::new(pipeline, sampler, options);

    if let Some(search) = beam_search(args)? {
        let (kernels, weights_dtype) = (model.kernels(), model.weights().dtype());
        let mut beams = Gpt2Beams::new(model, search.num_beams());
        let start = Instant::now();
        let hypotheses = generator.beam_search(&mut beams, &prompt, &search)?;
        let elapsed = start.elapsed().as_secs_f64();
        let texts = hypotheses
            .iter()
            .map(|h| {
                let end = h.tokens.len()
                    - usize::from(matches!(h.finish_reason, FinishReason::Eos { .. }));
                tokenizer.decode(&h.tokens[..end])
            })
            .collect::<Result<Vec<_>, _>>()?;
        if args.json {
            let beams: Vec<_> = hypotheses
                .iter()
                .zip(&texts)
                .map(|(h, text)| {
                    serde_json::json!({
                        "generated_ids": h.tokens,
                        "text": text,
                        "score": h.score,
                        "finish_reason": finish_name(h.finish_reason),
                        "tokens_per_second": tokens_per_second(h.tokens.len(), elapsed),
                    })
                })
                .collect();
            let json = serde_json::json!({
                "model": located.dir.display().to_string(),
                "prompt": prompt_text,
                "prompt_ids": prompt,
                "num_beams": search.num_beams(),
                "length_penalty": search.length_penalty(),
                "beams": beams,
                "seconds": elapsed,
                "kernels": kernels.name(),
                "weights_dtype": weights_dtype.name(),
            });
            println!("{json}");
        } else {
            println!("{prompt_text}{}", texts[0]);
            for (i, (h, text)) in hypotheses.iter().zip(&texts).enumerate() {
                eprintln!(
                    "beam {i}: score {:.4} ({}): {text:?}",
                    h.score,
                    finish_name(h.finish_reason)
                );
            }
            eprintln!("{} beams in {elapsed:.2} s", search.num_beams());
        }
        return Ok(());
    }

    // Speculative decoding, with a draft model or a prompt lookup: the
    // run, what drafted, and the round size and verification.
    let drafted = if let Some(lookup) = prompt_lookup(args)? {
        let start = Instant::now();
        let out =
            generator.generate_prompt_lookup_text(&mut model, &tokenizer, &prompt, &lookup)?;
        let source = serde_json::json!({ "prompt_lookup": { "max_ngram": lookup.max_ngram() } });
        Some((out, start, source, lookup.draft_tokens(), lookup.verification()))
    } else if let Some(speculative) = speculative(args)? {
        let dir = draft_dir(args.draft.as_deref().unwrap_or_default());
        let mut draft = model_from(&dir, args)?;
        let start = Instant::now();
        let out = generator.generate_speculative_text(
            &mut model,
            &mut draft,
            &tokenizer,
            &prompt,
            &speculative,
        )?;
        let source = serde_json::json!({ "draft": dir.display().to_string() });
        Some((out, start, source, speculative.draft_tokens(), speculative.verification()))
    } else {
        None
    };
    if let Some((out, start, source, draft_tokens, verification)) = drafted {
        let elapsed = start.elapsed().as_secs_f64();
        let stats = generator.speculative_stats();
        let speed = tokens_per_second(out.tokens.len(), elapsed);
        if args.json {
            let mut json = serde_json::json!({
                "model": located.dir.display().to_string(),
                "prompt": prompt_text,
                "prompt_ids": prompt,
                "generated_ids": out.tokens,
                "text": out.text.unwrap_or_default(),
                "finish_reason": finish_name(out.finish_reason),
                "tokens_per_second": speed,
                "seconds": elapsed,
                "speculative": {
                    "draft_tokens": draft_tokens,
                    "verification": match verification {
                        Verification::Greedy => "greedy",
                        Verification::Sampled => "sampled",
                    },
                    "rounds": stats.rounds,
                    "drafted": stats.drafted,
                    "accepted": stats.accepted,
                    "acceptance_rate": stats.acceptance_rate(),
                    "target_calls": stats.target_calls,
                    "draft_calls": stats.draft_calls,
                },
            });
            if let (Some(json), serde_json::Value::Object(source)) = (json.as_object_mut(), source)
            {
                json.extend(source);
            }
            println!("{json}");
        } else {
            println!("{prompt_text}{}", out.text.unwrap_or_default());
            eprintln!(
                "{} tokens in {elapsed:.2} s: {speed:.1} tokens/s (finish: {})",
                out.tokens.len(),
                finish_name(out.finish_reason)
            );
            eprintln!("{}", stats_line(&stats));
        }
        return Ok(());
    }

    if args.json {
        let start = Instant::now();
        let out = generator.generate_text(&mut model, &tokenizer, &prompt)?;
        let elapsed = start.elapsed().as_secs_f64();
        let json = serde_json::json!({
            "model": located.dir.display().to_string(),
            "prompt": prompt_text,
            "prompt_ids": prompt,
            "generated_ids": out.tokens,
            "text": out.text.unwrap_or_default(),
            "finish_reason": finish_name(out.finish_reason),
            "tokens_per_second": tokens_per_second(out.tokens.len(), elapsed),
            "seconds": elapsed,
            "kernels": model.kernels().name(),
            "weights_dtype": model.weights().dtype().name(),
            "threads": args.threads.unwrap_or(1),
        });
        let mut json = json;
        if args.constrained() {
            // Only the end of the grammar (or an EOS it allowed) completes it.
            json["grammar_complete"] = serde_json::Value::Bool(matches!(
                out.finish_reason,
                FinishReason::Constraint | FinishReason::Eos { .. }
            ));
        }
        println!("{json}");
        return Ok(());
    }

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let start = Instant::now();
    let stream = generator.stream_text(&mut model, &tokenizer, &prompt)?;
    write!(out, "{prompt_text}")?;
    out.flush()?;
    let mut generated: Vec<TokenId> = Vec::new();
    let mut finish = FinishReason::Length;
    for step in stream {
        let step = match step {
            Ok(step) => step,
            Err(e) => {
                writeln!(out)?;
                return Err(e.into());
            }
        };
        write!(out, "{}", step.text)?;
        out.flush()?;
        generated.push(step.token);
        if let Some(reason) = step.finish_reason {
            finish = reason;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    writeln!(out)?;
    eprintln!(
        "{} tokens in {elapsed:.2} s: {:.1} tokens/s (finish: {}; {} kernels, {} weights, {} \
         thread(s))",
        generated.len(),
        tokens_per_second(generated.len(), elapsed),
        finish_name(finish),
        model.kernels(),
        model.weights().dtype().name(),
        args.threads.unwrap_or(1),
    );
    Ok(())
}

/// Generated tokens per second, 0 when nothing was generated.
pub fn tokens_per_second(tokens: usize, seconds: f64) -> f64 {
    if tokens == 0 || seconds <= 0.0 { 0.0 } else { tokens as f64 / seconds }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, UsageError> {
        Args::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn parses_every_flag_in_both_spellings() {
        let a = parse(&[
            "--model",
            "/m",
            "--prompt=Hi there",
            "--max-new-tokens",
            "7",
            "--temperature",
            "0.7",
            "--top-k=40",
            "--top-p",
            "0.9",
            "--min-p",
            "0.05",
            "--repetition-penalty",
            "1.2",
            "--seed",
            "42",
            "--json",
            "--ignore-eos",
            "--threads",
            "2",
            "--draft",
            "bundled",
            "--draft-tokens=3",
        ])
        .unwrap();
        assert_eq!(a.model, Some(PathBuf::from("/m")));
        assert_eq!(a.prompt.as_deref(), Some("Hi there"));
        assert_eq!(
            (a.max_new_tokens, a.top_k, a.seed, a.threads),
            (Some(7), Some(40), Some(42), Some(2))
        );
        assert_eq!((a.temperature, a.top_p, a.min_p), (Some(0.7), Some(0.9), Some(0.05)));
        assert_eq!(a.repetition_penalty, Some(1.2));
        assert_eq!((a.draft.as_deref(), a.draft_tokens), (Some("bundled"), Some(3)));
        let speculative = speculative(&a).unwrap().unwrap();
        assert_eq!(speculative.draft_tokens(), 3);
        assert_eq!(speculative.verification(), Verification::Sampled);
        assert!(a.json && a.ignore_eos && !a.greedy && !a.is_demo());
        let (pipeline, _) = a.decoding().unwrap();
        assert_eq!(pipeline.len(), 5);
        let b = parse(&["--prompt-lookup", "5", "--prompt-lookup-ngram=3"]).unwrap();
        let lookup = prompt_lookup(&b).unwrap().unwrap();
        assert_eq!((lookup.draft_tokens(), lookup.max_ngram()), (5, 3));
        assert_eq!(lookup.verification(), Verification::Greedy);
        let b = parse(&["--prompt-lookup", "5", "--top-k", "4"]).unwrap();
        let lookup = prompt_lookup(&b).unwrap().unwrap();
        assert_eq!((lookup.max_ngram(), lookup.verification()), (2, Verification::Sampled));
    }

    #[test]
    fn no_generation_flag_means_the_demonstration() {
        assert!(parse(&[]).unwrap().is_demo());
        assert!(parse(&["--model", "d", "--seed", "3", "--threads", "2"]).unwrap().is_demo());
        assert!(!parse(&["--greedy"]).unwrap().is_demo());
        assert!(!parse(&["--prompt", "x"]).unwrap().is_demo());
        assert!(!parse(&["--draft", "bundled"]).unwrap().is_demo());
        assert!(!parse(&["--prompt-lookup", "4"]).unwrap().is_demo());
        assert!(parse(&["--prompt", "x", "--demo"]).unwrap().is_demo());
    }

    #[test]
    fn greedy_unless_a_sampling_flag_is_given() {
        let a = parse(&["--prompt", "x"]).unwrap();
        assert!(!a.samples());
        assert!(a.decoding().unwrap().0.is_empty());
        let a = parse(&["--top-k", "0", "--top-p", "1"]).unwrap();
        assert!(a.samples());
        assert!(a.decoding().unwrap().0.is_empty(), "0 and 1 switch top-k and top-p off");
    }

    #[test]
    fn mistakes_are_usage_errors() {
        for (args, needle) in [
            (&["--top-k"][..], "needs a value"),
            (&["--top-k", "many"][..], "not a valid number"),
            (&["--max-new-tokens", "-1"][..], "not a valid number"),
            (&["--frobnicate"][..], "unknown argument"),
            (&["--greedy", "--temperature", "0.5"][..], "cannot be combined"),
            (&["--json=yes"][..], "takes no value"),
            (&["--threads", "0"][..], "at least 1"),
            (&["--draft-tokens", "2"][..], "needs --draft"),
            (&["--draft", "d", "--draft-tokens", "0"][..], "at least 1"),
            (&["--draft"][..], "needs a value"),
            (&["--num-beams", "0"][..], "at least 1"),
            (&["--length-penalty", "0.5"][..], "needs --num-beams"),
            (&["--num-beams", "4", "--draft", "bundled"][..], "cannot be combined"),
            (&["--prompt-lookup", "0"][..], "at least 1"),
            (&["--prompt-lookup", "3", "--prompt-lookup-ngram", "0"][..], "at least 1"),
            (&["--prompt-lookup-ngram", "2"][..], "needs --prompt-lookup"),
            (&["--prompt-lookup", "3", "--draft", "d"][..], "cannot be combined"),
            (&["--prompt-lookup", "3", "--num-beams", "2"][..], "cannot be combined"),
            (&["--kernels", "sse9"][..], "not portable, avx2 or avx512"),
            (&["--dtype", "f64"][..], "not f32, f16 or bf16"),
        ] {
            let err = parse(args).unwrap_err().0;
            assert!(err.contains(needle), "{args:?}: {err}");
        }
        assert!(parse(&["--top-p", "1.5"]).unwrap().decoding().is_err());
        assert!(parse(&["--temperature", "-1"]).unwrap().decoding().is_err());
        let nan = parse(&["--num-beams", "2", "--length-penalty", "NaN"]).unwrap();
        assert!(beam_search(&nan).is_err());
    }

    #[test]
    fn kernels_and_dtype_keep_the_demonstration() {
        let a = parse(&["--kernels", "avx2", "--dtype=BF16", "--threads", "2"]).unwrap();
        assert_eq!((a.kernels, a.dtype), (Some(KernelPath::Avx2Fma), Some(Dtype::Bf16)));
        assert!(a.is_demo());
        let a = parse(&["--kernels=portable", "--greedy"]).unwrap();
        assert_eq!(a.kernels, Some(KernelPath::Portable));
        assert!(!a.is_demo());
    }

    #[test]
    fn num_beams_above_one_is_a_beam_search() {
        let a = parse(&["--num-beams", "3", "--length-penalty=0.5"]).unwrap();
        assert!(!a.is_demo());
        let search = beam_search(&a).unwrap().unwrap();
        assert_eq!((search.num_beams(), search.length_penalty()), (3, 0.5));
        // One beam is plain greedy decoding, as in transformers.
        assert!(beam_search(&parse(&["--num-beams", "1"]).unwrap()).unwrap().is_none());
        assert!(beam_search(&parse(&["--prompt", "x"]).unwrap()).unwrap().is_none());
        assert!(!search.samples());
        let sampled = parse(&["--num-beams", "3", "--temperature", "0.7"]).unwrap();
        assert!(beam_search(&sampled).unwrap().unwrap().samples());
    }
}
