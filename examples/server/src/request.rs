//! Reading a request body into the engine's sequences.
//!
//! Every sampling parameter goes through
//! [`OpenAiParams`](decoding::config::OpenAiParams) (its ranges, its
//! mapping onto the pipeline, the model's `generation_config.json` as the
//! defaults); this module reads what is the server's own: `model`, the
//! prompt or the messages, `stream`, `stream_options`, `echo`,
//! `ignore_eos`, and the limits on lengths.

use std::sync::Arc;

use decoding::config::{GenerationConfig, Logprobs, OpenAiParams};
use decoding::{Pipeline, TokenId};
use serde_json::{Map, Value};

use crate::chat;
use crate::engine::{JobSequence, SequenceGenerator};
use crate::error::ApiError;
use crate::server::Shared;

/// The two generation routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `POST /v1/completions`.
    Completions,
    /// `POST /v1/chat/completions`.
    Chat,
}

/// A request, checked and turned into sequences.
#[derive(Debug)]
pub struct Prepared {
    /// Which route.
    pub endpoint: Endpoint,
    /// The sequences, choice `i * n + c` for prompt `i`, choice `c`.
    pub sequences: Vec<JobSequence>,
    /// Stream the steps as server-sent events.
    pub stream: bool,
    /// Send a `usage` chunk before `[DONE]` (`stream_options.include_usage`).
    pub include_usage: bool,
    /// Log-probabilities requested: how many alternatives per token.
    pub logprobs: Option<usize>,
    /// The prompt text to put before each choice's text (`echo`).
    pub echo: Option<Vec<String>>,
    /// Tokens in the prompts (each counted once).
    pub prompt_tokens: usize,
    /// Choices per prompt.
    pub n: usize,
}

fn object(body: &[u8]) -> Result<(Map<String, Value>, &str), ApiError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::invalid(None, "The request body is not valid UTF-8"))?;
    let value: Value = serde_json::from_str(text).map_err(|e| {
        ApiError::invalid(None, format!("The request body is not valid JSON: {e}"))
            .with_code("invalid_json")
    })?;
    match value {
        Value::Object(map) => Ok((map, text)),
        _ => Err(ApiError::invalid(None, "The request body must be a JSON object")
            .with_code("invalid_json")),
    }
}

fn boolean(map: &Map<String, Value>, key: &str) -> Result<bool, ApiError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ApiError::wrong_type(key, "a boolean")),
    }
}

/// Checks the body of a generation request and builds its sequences.
///
/// # Errors
///
/// An [`ApiError`] naming the field at fault: malformed JSON, a field of
/// the wrong type, a value out of range, an unknown model, a prompt or a
/// length over the limits, a feature this server does not offer.
pub fn prepare(endpoint: Endpoint, body: &[u8], shared: &Shared) -> Result<Prepared, ApiError> {
    let (map, text) = object(body)?;
    match map.get("model") {
        Some(Value::String(m)) if m == &shared.model_name => {}
        Some(Value::String(m)) => return Err(ApiError::unknown_model(m, &shared.model_name)),
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(Some("model"), "`model` is required"));
        }
        Some(_) => return Err(ApiError::wrong_type("model", "a string")),
    }
    let stream = boolean(&map, "stream")?;
    let include_usage = match map.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => boolean(o, "include_usage")
            .map_err(|_| ApiError::wrong_type("stream_options.include_usage", "a boolean"))?,
        Some(_) => return Err(ApiError::wrong_type("stream_options", "an object")),
    };
    let echo = boolean(&map, "echo")?;
    let ignore_eos = boolean(&map, "ignore_eos")?;
    unsupported_fields(&map)?;
    let grammar = output_grammar(&map)?;

    let mut params = OpenAiParams::from_json(text)?;
    let tokenizer = &shared.tokenizer;
    let (prompts, mut stop) = match endpoint {
        Endpoint::Completions => (completion_prompts(map.get("prompt"), shared)?, Vec::new()),
        Endpoint::Chat => {
            let text = chat::render(map.get("messages"))?;
            (vec![encode(&text, shared, "messages")?], vec![chat::TURN_STOP.to_string()])
        }
    };
    if endpoint == Endpoint::Chat && echo {
        return Err(ApiError::unsupported("echo", "`echo` is for /v1/completions only"));
    }
    let logprobs = match (endpoint, params.logprobs) {
        (_, None | Some(Logprobs::Enabled(false))) => None,
        (_, Some(Logprobs::Enabled(true))) => Some(params.top_logprobs.unwrap_or(0)),
        (Endpoint::Completions, Some(Logprobs::Top(k))) => Some(k),
        (Endpoint::Chat, Some(Logprobs::Top(_))) => {
            return Err(ApiError::wrong_type(
                "logprobs",
                "a boolean on /v1/chat/completions (use top_logprobs for alternatives)",
            ));
        }
    };
    // `echo` with `logprobs`: the prompt tokens' log-probabilities too.
    let prompt_logprobs = if echo { logprobs } else { None };
    let n = params.n.unwrap_or(1);
    let total = prompts.len().saturating_mul(n);
    if total > shared.limits.max_sequences {
        return Err(ApiError::invalid(
            Some("n"),
            format!(
                "this request asks for {total} sequences (prompts × n); the limit is {}",
                shared.limits.max_sequences
            ),
        ));
    }
    // A constrained output ends where its grammar says, not at a turn.
    if grammar.is_some() {
        stop.clear();
    }
    if !stop.is_empty() {
        stop.extend(params.stop.take().unwrap_or_default());
        params.stop = Some(stop);
    }
    if params.dry_multiplier.is_some_and(|m| m > 0.0) {
        params = params.resolve_dry_breakers(|s| breaker_ids(tokenizer, s));
    }
    let mut generation = shared.generation.clone();
    if ignore_eos {
        generation.eos_token_id = None;
    }

    let longest = prompts.iter().map(Vec::len).max().unwrap_or(0);
    let max_tokens = max_tokens(endpoint, params.max_tokens, longest, shared)?;
    params.max_tokens = Some(max_tokens);
    // Checked once, so that an error names the parameter before any work.
    params.build(&generation)?;

    let mut sequences = Vec::with_capacity(total);
    for (i, prompt) in prompts.iter().enumerate() {
        let prompt: Arc<[TokenId]> = prompt.as_slice().into();
        for c in 0..n {
            sequences.push(JobSequence {
                choice: i * n + c,
                prompt: prompt.clone(),
                generator: generator(
                    &params,
                    &generation,
                    grammar.as_ref(),
                    (prompt.len(), c),
                    shared,
                )?,
                prompt_logprobs,
            });
        }
    }
    let echo = if echo {
        Some(prompts.iter().map(|p| tokenizer.decode(p).unwrap_or_default()).collect())
    } else {
        None
    };
    Ok(Prepared {
        endpoint,
        sequences,
        stream,
        include_usage,
        logprobs,
        echo,
        prompt_tokens: prompts.iter().map(Vec::len).sum(),
        n,
    })
}

/// Choice `choice`'s generator: the request's plan, its seed plus `choice`.
fn generator(
    params: &OpenAiParams,
    generation: &GenerationConfig,
    grammar: Option<&OutputGrammar>,
    (prompt_len, choice): (usize, usize),
    shared: &Shared,
) -> Result<SequenceGenerator, ApiError> {
    let plan = params.build(generation)?;
    let options = plan
        .generate_options(prompt_len, choice)?
        .to_builder()
        .vocab_size(shared.tokenizer.vocab_size())
        .build()?;
    let (pipeline, sampler, _) = plan.into_parts();
    let pipeline = constrained(pipeline, grammar, shared)?;
    Ok(SequenceGenerator::new(pipeline, sampler, options))
}

/// Fields this server refuses rather than ignores: they would change the
/// output in a way it cannot honour.
fn unsupported_fields(map: &Map<String, Value>) -> Result<(), ApiError> {
    match map.get("best_of") {
        None | Some(Value::Null) => {}
        Some(Value::Number(b)) if b.as_u64() == Some(1) => {}
        Some(_) => {
            return Err(ApiError::unsupported(
                "best_of",
                "`best_of` other than 1 is not supported",
            ));
        }
    }
    match map.get("suffix") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(_) => return Err(ApiError::unsupported("suffix", "`suffix` is not supported")),
    }
    for key in ["tools", "functions"] {
        if map.get(key).and_then(Value::as_array).is_some_and(|a| !a.is_empty()) {
            return Err(ApiError::unsupported(
                key,
                format!("`{key}` (tool calls) is not supported"),
            ));
        }
    }
    Ok(())
}

/// The prompts of a completion request: a string, a list of strings, a list
/// of token ids, or a list of lists of token ids.
fn completion_prompts(
    prompt: Option<&Value>,
    shared: &Shared,
) -> Result<Vec<Vec<TokenId>>, ApiError> {
    const EXPECTED: &str =
        "a string, a list of strings, a list of token ids or a list of lists of token ids";
    let Some(prompt) = prompt else {
        return Err(ApiError::invalid(Some("prompt"), "`prompt` is required"));
    };
    match prompt {
        Value::String(s) => Ok(vec![encode(s, shared, "prompt")?]),
        Value::Array(items) if items.is_empty() => {
            Err(ApiError::invalid(Some("prompt"), "`prompt` must not be an empty list"))
        }
        Value::Array(items) if items.iter().all(Value::is_string) => {
            items.iter().map(|s| encode(s.as_str().unwrap_or_default(), shared, "prompt")).collect()
        }
        Value::Array(items) if items.iter().all(Value::is_number) => Ok(vec![ids(items, shared)?]),
        Value::Array(items) if items.iter().all(Value::is_array) => items
            .iter()
            .map(|l| ids(l.as_array().map(Vec::as_slice).unwrap_or_default(), shared))
            .collect(),
        _ => Err(ApiError::wrong_type("prompt", EXPECTED)),
    }
}

/// A prompt of token ids, each in the vocabulary.
fn ids(items: &[Value], shared: &Shared) -> Result<Vec<TokenId>, ApiError> {
    let vocab = shared.tokenizer.vocab_size();
    let mut out = Vec::with_capacity(items.len());
    for v in items {
        match v.as_u64() {
            Some(id) if (id as usize) < vocab => out.push(id as TokenId),
            _ => {
                return Err(ApiError::invalid(
                    Some("prompt"),
                    format!("token id {v} is not in the vocabulary (0..{vocab})"),
                ));
            }
        }
    }
    checked(out, shared)
}

fn encode(text: &str, shared: &Shared, param: &str) -> Result<Vec<TokenId>, ApiError> {
    let ids = shared
        .tokenizer
        .encode(text)
        .map_err(|e| ApiError::invalid(Some(param), format!("cannot tokenize: {e}")))?;
    checked(ids, shared).map_err(|mut e| {
        e.param = Some(param.to_string());
        e
    })
}

/// An empty prompt becomes `<|endoftext|>` (GPT-2's start of a text); a
/// prompt over the limits is an error.
fn checked(mut ids: Vec<TokenId>, shared: &Shared) -> Result<Vec<TokenId>, ApiError> {
    if ids.is_empty() {
        ids.push(shared.start_token);
    }
    let limit = shared.limits.max_prompt_tokens.min(shared.context.saturating_sub(1));
    if ids.len() > limit {
        return Err(ApiError::invalid(
            Some("prompt"),
            format!(
                "the prompt has {} tokens; this server accepts at most {limit} (context length {})",
                ids.len(),
                shared.context
            ),
        )
        .with_code("context_length_exceeded"));
    }
    Ok(ids)
}

/// `max_tokens`, or the default (16 for completions, as OpenAI's legacy
/// API; the rest of the context for chat), checked against the limits.
fn max_tokens(
    endpoint: Endpoint,
    requested: Option<usize>,
    prompt_len: usize,
    shared: &Shared,
) -> Result<usize, ApiError> {
    let room = shared.context.saturating_sub(prompt_len);
    let limit = shared.limits.max_tokens;
    let Some(n) = requested else {
        let default = match endpoint {
            Endpoint::Completions => 16,
            Endpoint::Chat => usize::MAX,
        };
        return Ok(default.min(room).min(limit).max(1));
    };
    if n > limit {
        return Err(ApiError::invalid(
            Some("max_tokens"),
            format!("`max_tokens` is {n}; this server allows at most {limit}"),
        ));
    }
    if n > room {
        return Err(ApiError::invalid(
            Some("max_tokens"),
            format!(
                "the prompt ({prompt_len} tokens) and max_tokens ({n}) exceed the context length ({})",
                shared.context
            ),
        )
        .with_code("context_length_exceeded"));
    }
    Ok(n)
}

/// DRY's breakers: every token whose text contains the string.
fn breaker_ids(tokenizer: &gpt2::Tokenizer, s: &str) -> Vec<TokenId> {
    let needle = s.as_bytes();
    if needle.is_empty() {
        return Vec::new();
    }
    (0..tokenizer.vocab_size() as TokenId)
        .filter(|&id| {
            tokenizer.token_bytes(id).is_some_and(|b| b.windows(needle.len()).any(|w| w == needle))
        })
        .collect()
}

/// What `response_format` (or llama-server's `json_schema`) asks for.
#[derive(Debug)]
#[cfg_attr(not(feature = "structured"), allow(dead_code))] // The schema is only read with it.
enum Format {
    JsonObject,
    Schema(Value),
    /// llama-server's `grammar`: GBNF, or llguidance's Lark-like syntax
    /// after a `%llguidance` header.
    Gbnf(String),
}

/// The output's grammar, when the request constrains it: OpenAI's
/// `response_format` (`{"type": "json_object"}` or `{"type": "json_schema",
/// "json_schema": {"schema": ...}}`), or llama-server's `json_schema` or
/// `grammar` (GBNF; an empty string is no grammar). At most one of them.
fn output_grammar(map: &Map<String, Value>) -> Result<Option<OutputGrammar>, ApiError> {
    let from_openai = match map.get("response_format") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => match o.get("type").and_then(Value::as_str) {
            Some("text") => None,
            Some("json_object") => Some(Format::JsonObject),
            Some("json_schema") => {
                let schema = o.get("json_schema").and_then(|j| j.get("schema"));
                match schema {
                    Some(v @ (Value::Object(_) | Value::Bool(_))) => {
                        Some(Format::Schema(v.clone()))
                    }
                    _ => {
                        return Err(ApiError::wrong_type(
                            "response_format.json_schema.schema",
                            "a JSON schema (an object)",
                        ));
                    }
                }
            }
            _ => {
                return Err(ApiError::wrong_type(
                    "response_format.type",
                    "\"text\", \"json_object\" or \"json_schema\"",
                ));
            }
        },
        Some(_) => return Err(ApiError::wrong_type("response_format", "an object")),
    };
    let from_llama = match map.get("json_schema") {
        None | Some(Value::Null) => None,
        Some(v @ (Value::Object(_) | Value::Bool(_))) => Some(Format::Schema(v.clone())),
        Some(_) => return Err(ApiError::wrong_type("json_schema", "a JSON schema (an object)")),
    };
    let from_gbnf = match map.get("grammar") {
        None | Some(Value::Null) => None,
        Some(Value::String(g)) if g.trim().is_empty() => None,
        Some(Value::String(g)) => Some(("grammar", Format::Gbnf(g.clone()))),
        Some(_) => return Err(ApiError::wrong_type("grammar", "a string (a GBNF grammar)")),
    };
    let mut formats = [
        from_openai.map(|f| ("response_format", f)),
        from_llama.map(|f| ("json_schema", f)),
        from_gbnf,
    ]
    .into_iter()
    .flatten();
    let Some((field, format)) = formats.next() else { return Ok(None) };
    if let Some((second, _)) = formats.next() {
        return Err(ApiError::invalid(
            Some(second),
            format!(
                "give only one of `response_format`, `json_schema` and `grammar` (`{field}` is given too)"
            ),
        ));
    }
    grammar_of(field, format).map(Some)
}

/// The grammar of a requested format, with the field that asked for it.
#[cfg(feature = "structured")]
type OutputGrammar = (decoding::structured::Grammar, &'static str);

/// Without the feature no format can be honoured.
#[cfg(not(feature = "structured"))]
type OutputGrammar = std::convert::Infallible;

/// The output is compact JSON: no free whitespace between tokens (a small
/// model otherwise spends its tokens on blank lines), unless the schema sets
/// llguidance's own `x-guidance` options.
/// A GBNF grammar is translated here, so that a malformed one is a `400`
/// naming its line and column.
#[cfg(feature = "structured")]
fn grammar_of(field: &'static str, format: Format) -> Result<OutputGrammar, ApiError> {
    use decoding::structured::Grammar;
    let mut schema = match format {
        Format::JsonObject => serde_json::json!({"type": "object"}),
        Format::Schema(schema) => schema,
        Format::Gbnf(text) => {
            let grammar =
                Grammar::gbnf(&text).map_err(|e| ApiError::invalid(Some(field), e.to_string()))?;
            return Ok((grammar, field));
        }
    };
    if let Value::Object(o) = &mut schema {
        o.entry("x-guidance").or_insert_with(|| serde_json::json!({"whitespace_flexible": false}));
    }
    Ok((Grammar::json_schema(schema), field))
}

#[cfg(not(feature = "structured"))]
fn grammar_of(field: &'static str, format: Format) -> Result<OutputGrammar, ApiError> {
    let what = match format {
        Format::JsonObject => "a JSON object",
        Format::Schema(_) => "a JSON schema",
        Format::Gbnf(_) => "a grammar",
    };
    Err(ApiError::unsupported(
        field,
        format!(
            "constraining the output to {what} needs the server built with `--features structured`"
        ),
    ))
}

/// The pipeline of a constrained sequence: the constraint first, then the
/// request's stages.
#[cfg(feature = "structured")]
fn constrained(
    pipeline: Pipeline,
    grammar: Option<&OutputGrammar>,
    shared: &Shared,
) -> Result<Pipeline, ApiError> {
    let Some((grammar, field)) = grammar else { return Ok(pipeline) };
    let constraint = shared.vocabulary.constraint(grammar).map_err(|e| {
        ApiError::invalid(Some(field), format!("the output format cannot be used: {e}"))
    })?;
    Ok(Pipeline::new().with(constraint).with(pipeline))
}

#[cfg(not(feature = "structured"))]
fn constrained(
    pipeline: Pipeline,
    grammar: Option<&OutputGrammar>,
    _: &Shared,
) -> Result<Pipeline, ApiError> {
    match grammar {
        Some(never) => match *never {},
        None => Ok(pipeline),
    }
}
