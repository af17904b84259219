//! The HTTP routes and the OpenAI response shapes.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, Uri};
use axum::response::sse::{Event as SseEvent, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use decoding::{FinishReason, Step, TokenLogprobs};
use futures_util::stream::{self, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::engine::{Event, Job, Rejected};
use crate::error::ApiError;
use crate::request::{self, Endpoint, Prepared};
use crate::server::Shared;

/// Request bodies larger than this get a `413`.
const BODY_LIMIT: usize = 4 << 20;

/// The routes: `/v1/completions`, `/v1/chat/completions`, `/v1/models`,
/// `/health`; anything else is a `404` (`405` for a wrong method) in the
/// OpenAI error shape.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/completions", post(completions).fallback(method_not_allowed))
        .route("/v1/chat/completions", post(chat).fallback(method_not_allowed))
        .route("/v1/models", get(models).fallback(method_not_allowed))
        .route("/health", get(health).fallback(method_not_allowed))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("Method not allowed on `{}`", uri.path()),
        kind: "invalid_request_error",
        param: None,
        code: Some("method_not_allowed"),
    }
}

async fn health(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let s = shared.engine.stats();
    Json(json!({
        "status": "ok",
        "model": shared.model_name,
        "slots": {"total": shared.engine.slots(), "active": s.active.load(Ordering::SeqCst)},
        "queued": s.queued.load(Ordering::SeqCst),
        "sequences": {
            "completed": s.completed.load(Ordering::Relaxed),
            "cancelled": s.cancelled.load(Ordering::Relaxed),
        },
        "steps": s.steps.load(Ordering::Relaxed),
        "tokens": s.tokens.load(Ordering::Relaxed),
    }))
}

async fn models(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({
        "object": "list",
        "data": [{
            "id": shared.model_name,
            "object": "model",
            "created": 0,
            "owned_by": "decoding",
            "max_model_len": shared.context,
        }],
    }))
}

async fn completions(
    State(shared): State<Arc<Shared>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    generate(Endpoint::Completions, shared, body).await
}

async fn chat(State(shared): State<Arc<Shared>>, body: Result<Bytes, BytesRejection>) -> Response {
    generate(Endpoint::Chat, shared, body).await
}

async fn generate(
    endpoint: Endpoint,
    shared: Arc<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let status = rejection.status();
            let mut e = ApiError::invalid(None, rejection.body_text());
            e.status = status;
            return e.into_response();
        }
    };
    let mut prepared = match request::prepare(endpoint, &body, &shared) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let sequences = std::mem::take(&mut prepared.sequences);
    let choices = sequences.len();
    match shared.engine.submit(Job { sequences, events: tx }) {
        Ok(()) => {}
        Err(Rejected::QueueFull) => return ApiError::overloaded().into_response(),
        Err(Rejected::Stopped) => {
            return ApiError::internal("the decoding engine has stopped").into_response();
        }
    }
    let id = shared.requests.fetch_add(1, Ordering::Relaxed);
    let meta = Meta {
        id: match endpoint {
            Endpoint::Completions => format!("cmpl-{id}"),
            Endpoint::Chat => format!("chatcmpl-{id}"),
        },
        created: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        shared,
        prepared,
        choices,
    };
    if meta.prepared.stream { stream_response(meta, rx) } else { full_response(meta, rx).await }
}

/// What a response needs besides the steps.
struct Meta {
    id: String,
    created: u64,
    shared: Arc<Shared>,
    prepared: Prepared,
    choices: usize,
}

impl Meta {
    fn object(&self, chunk: bool) -> &'static str {
        match (self.prepared.endpoint, chunk) {
            (Endpoint::Completions, _) => "text_completion",
            (Endpoint::Chat, false) => "chat.completion",
            (Endpoint::Chat, true) => "chat.completion.chunk",
        }
    }

    fn envelope(&self, chunk: bool, choices: Value) -> Value {
        json!({
            "id": self.id,
            "object": self.object(chunk),
            "created": self.created,
            "model": self.shared.model_name,
            "system_fingerprint": Value::Null,
            "choices": choices,
        })
    }

    fn usage(&self, completion_tokens: usize) -> Value {
        let prompt_tokens = self.prepared.prompt_tokens;
        json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        })
    }

    fn echo(&self, choice: usize) -> Option<&str> {
        let n = self.prepared.n.max(1);
        self.prepared.echo.as_ref().and_then(|e| e.get(choice / n)).map(String::as_str)
    }

    fn token_text(&self, id: decoding::TokenId) -> String {
        self.shared
            .tokenizer
            .token_bytes(id)
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    }

    fn token_bytes(&self, id: decoding::TokenId) -> Vec<u8> {
        self.shared.tokenizer.token_bytes(id).map(<[u8]>::to_vec).unwrap_or_default()
    }
}

fn finish_name(reason: FinishReason) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        _ => "stop",
    }
}

/// The log-probabilities of some tokens, in the route's shape; `offset` is
/// the completion route's text offset of the first.
fn logprobs_json(meta: &Meta, records: &[TokenLogprobs], offset: usize) -> Value {
    let top = meta.prepared.logprobs.unwrap_or(0);
    match meta.prepared.endpoint {
        Endpoint::Completions => {
            let mut tokens = Vec::new();
            let mut lps = Vec::new();
            let mut tops = Vec::new();
            let mut offsets = Vec::new();
            let mut at = offset;
            for r in records {
                let text = meta.token_text(r.token);
                offsets.push(at);
                at += text.len();
                tokens.push(text);
                lps.push(r.raw);
                if top > 0 && r.raw.is_none() {
                    // An echoed prompt's first token: nothing predicts it.
                    tops.push(Value::Null);
                } else if top > 0 {
                    let map: serde_json::Map<String, Value> = r
                        .raw_top
                        .iter()
                        .map(|t| (meta.token_text(t.token), json!(t.logprob)))
                        .collect();
                    tops.push(Value::Object(map));
                }
            }
            json!({
                "tokens": tokens,
                "token_logprobs": lps,
                "top_logprobs": if top > 0 { json!(tops) } else { Value::Null },
                "text_offset": offsets,
            })
        }
        Endpoint::Chat => {
            let content: Vec<Value> = records
                .iter()
                .map(|r| {
                    let alternatives: Vec<Value> = r
                        .raw_top
                        .iter()
                        .map(|t| {
                            json!({
                                "token": meta.token_text(t.token),
                                "logprob": t.logprob,
                                "bytes": meta.token_bytes(t.token),
                            })
                        })
                        .collect();
                    json!({
                        "token": meta.token_text(r.token),
                        "logprob": r.raw,
                        "bytes": meta.token_bytes(r.token),
                        "top_logprobs": alternatives,
                    })
                })
                .collect();
            json!({ "content": content })
        }
    }
}

/// One choice's accumulated output.
#[derive(Default)]
struct ChoiceOut {
    text: String,
    /// The echoed prompt's records, then the generated tokens'.
    logprobs: Vec<TokenLogprobs>,
    tokens: usize,
    finish: Option<&'static str>,
    failed: Option<String>,
}

async fn full_response(meta: Meta, mut rx: mpsc::UnboundedReceiver<Event>) -> Response {
    let mut out: Vec<ChoiceOut> = (0..meta.choices).map(|_| ChoiceOut::default()).collect();
    let mut open = meta.choices;
    while open > 0 {
        let Some(event) = rx.recv().await else {
            return ApiError::internal("the decoding engine stopped").into_response();
        };
        match event {
            Event::Prompt { choice, records } => {
                if let Some(c) = out.get_mut(choice) {
                    c.logprobs.splice(0..0, records);
                }
            }
            Event::Step { choice, step } => {
                let Some(c) = out.get_mut(choice) else { continue };
                c.text.push_str(&step.text);
                c.tokens += 1;
                if let Some(l) = step.logprobs {
                    c.logprobs.push(l);
                }
                if let Some(reason) = step.finish_reason {
                    c.finish = Some(finish_name(reason));
                    open -= 1;
                }
            }
            Event::Failed { choice, message } => {
                if let Some(c) = out.get_mut(choice) {
                    c.failed = Some(message);
                }
                open -= 1;
            }
        }
    }
    if let Some(message) = out.iter().find_map(|c| c.failed.clone()) {
        return ApiError::internal(format!("generation failed: {message}")).into_response();
    }
    let completion_tokens = out.iter().map(|c| c.tokens).sum();
    let choices: Vec<Value> = out
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let logprobs = meta.prepared.logprobs.map(|_| logprobs_json(&meta, &c.logprobs, 0));
            match meta.prepared.endpoint {
                Endpoint::Completions => {
                    let text = match meta.echo(i) {
                        Some(prompt) => format!("{prompt}{}", c.text),
                        None => c.text.clone(),
                    };
                    json!({"index": i, "text": text, "logprobs": logprobs, "finish_reason": c.finish})
                }
                Endpoint::Chat => json!({
                    "index": i,
                    "message": {"role": "assistant", "content": c.text},
                    "logprobs": logprobs,
                    "finish_reason": c.finish,
                }),
            }
        })
        .collect();
    let mut body = meta.envelope(false, Value::Array(choices));
    body["usage"] = meta.usage(completion_tokens);
    Json(body).into_response()
}

/// The state of a streamed response.
struct StreamState {
    meta: Meta,
    rx: mpsc::UnboundedReceiver<Event>,
    open: usize,
    completion_tokens: usize,
    /// Text offset of each choice (completions' logprobs).
    offsets: Vec<usize>,
    started: bool,
    done: bool,
}

fn data(value: &Value) -> SseEvent {
    SseEvent::default().data(value.to_string())
}

impl StreamState {
    /// The first chunks: the assistant role (chat) or the echoed prompt.
    fn opening(&self) -> Vec<SseEvent> {
        let meta = &self.meta;
        (0..meta.choices)
            .filter_map(|i| match meta.prepared.endpoint {
                Endpoint::Chat => Some(json!({
                    "index": i,
                    "delta": {"role": "assistant", "content": ""},
                    "logprobs": Value::Null,
                    "finish_reason": Value::Null,
                })),
                // With log-probabilities, the echo waits for the prompt's.
                Endpoint::Completions if meta.prepared.logprobs.is_some() => None,
                Endpoint::Completions => meta.echo(i).map(|prompt| {
                    json!({"index": i, "text": prompt, "logprobs": Value::Null, "finish_reason": Value::Null})
                }),
            })
            .map(|choice| data(&meta.envelope(true, json!([choice]))))
            .collect()
    }

    fn step_chunk(&mut self, choice: usize, step: Step) -> Option<SseEvent> {
        let finish = step.finish_reason.map(finish_name);
        let records: Vec<TokenLogprobs> = step.logprobs.into_iter().collect();
        let wants_logprobs = self.meta.prepared.logprobs.is_some();
        // A step that releases no text is sent only to carry its
        // log-probabilities or the finish reason.
        if step.text.is_empty() && finish.is_none() && !wants_logprobs {
            return None;
        }
        let offset = self.offsets.get(choice).copied().unwrap_or(0);
        let logprobs = wants_logprobs.then(|| logprobs_json(&self.meta, &records, offset));
        if let Some(o) = self.offsets.get_mut(choice) {
            *o += records.iter().map(|r| self.meta.token_text(r.token).len()).sum::<usize>();
        }
        let body = match self.meta.prepared.endpoint {
            Endpoint::Completions => json!({
                "index": choice, "text": step.text, "logprobs": logprobs, "finish_reason": finish,
            }),
            Endpoint::Chat => {
                let delta =
                    if step.text.is_empty() { json!({}) } else { json!({"content": step.text}) };
                json!({"index": choice, "delta": delta, "logprobs": logprobs, "finish_reason": finish})
            }
        };
        Some(data(&self.meta.envelope(true, json!([body]))))
    }

    fn closing(&self) -> Vec<SseEvent> {
        let mut events = Vec::new();
        if self.meta.prepared.include_usage {
            let mut chunk = self.meta.envelope(true, json!([]));
            chunk["usage"] = self.meta.usage(self.completion_tokens);
            events.push(data(&chunk));
        }
        events.push(SseEvent::default().data("[DONE]"));
        events
    }

    /// The events for the next engine event (empty while nothing is to be
    /// sent); `None` once the stream is over.
    async fn next(mut self) -> Option<(Vec<SseEvent>, Self)> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            let opening = self.opening();
            return Some((opening, self));
        }
        if self.open == 0 {
            self.done = true;
            let closing = self.closing();
            return Some((closing, self));
        }
        let events = match self.rx.recv().await {
            Some(Event::Prompt { choice, records }) => {
                let logprobs = logprobs_json(&self.meta, &records, 0);
                if let Some(o) = self.offsets.get_mut(choice) {
                    *o = records.iter().map(|r| self.meta.token_text(r.token).len()).sum();
                }
                let prompt = self.meta.echo(choice).unwrap_or_default();
                let body = json!({"index": choice, "text": prompt, "logprobs": logprobs,
                    "finish_reason": Value::Null});
                vec![data(&self.meta.envelope(true, json!([body])))]
            }
            Some(Event::Step { choice, step }) => {
                self.completion_tokens += 1;
                if step.finish_reason.is_some() {
                    self.open -= 1;
                }
                self.step_chunk(choice, step).into_iter().collect()
            }
            Some(Event::Failed { message, .. }) => {
                self.open -= 1;
                vec![data(&ApiError::internal(format!("generation failed: {message}")).body())]
            }
            None => {
                self.done = true;
                let mut events =
                    vec![data(&ApiError::internal("the decoding engine stopped").body())];
                events.push(SseEvent::default().data("[DONE]"));
                events
            }
        };
        Some((events, self))
    }
}

fn stream_response(meta: Meta, rx: mpsc::UnboundedReceiver<Event>) -> Response {
    let state = StreamState {
        offsets: vec![0; meta.choices],
        open: meta.choices,
        meta,
        rx,
        completion_tokens: 0,
        started: false,
        done: false,
    };
    let events = stream::unfold(state, StreamState::next)
        .flat_map(|batch| stream::iter(batch.into_iter().map(Ok::<_, Infallible>)));
    Sse::new(events).into_response()
}
