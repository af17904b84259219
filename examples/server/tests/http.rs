//! The server over real TCP on an ephemeral loopback port, with the bundled
//! model: every endpoint, streaming, choices, stop strings, log-probabilities,
//! the error shapes, concurrency, determinism and cancellation.

use std::time::Duration;

use futures_util::StreamExt;
use gpt2_server::{Served, Server, ServerConfig};
use serde_json::{Value, json};

async fn start(config: ServerConfig) -> Server {
    let served = Served::from_dir(&gpt2::lookup::bundled_dir()).expect("the bundled model loads");
    Server::start("127.0.0.1:0".parse().unwrap(), served, config).await.expect("the server starts")
}

fn config() -> ServerConfig {
    ServerConfig { slots: 8, queue: 64, ..ServerConfig::default() }
}

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(server: &Server) -> Self {
        Client { http: reqwest::Client::new(), base: format!("http://{}", server.addr()) }
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, body.to_string()).await
    }

    async fn post_raw(&self, path: &str, body: String) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("a response");
        let status = r.status().as_u16();
        (status, r.json().await.expect("a JSON body"))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.expect("a response");
        let status = r.status().as_u16();
        (status, r.json().await.expect("a JSON body"))
    }

    /// A streamed request: every `data:` payload, `[DONE]` included.
    async fn stream(&self, path: &str, body: &Value) -> Vec<String> {
        let r = self.http.post(format!("{}{path}", self.base)).json(body).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"),
            "{:?}",
            r.headers()
        );
        let text = r.text().await.unwrap();
        sse_payloads(&text)
    }
}

fn sse_payloads(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|event| {
            let lines: Vec<&str> = event
                .lines()
                .filter_map(|l| l.strip_prefix("data: ").or(l.strip_prefix("data:")))
                .collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        })
        .collect()
}

/// The chunks of a stream (JSON), checking that it ends with `[DONE]`.
fn chunks(payloads: &[String]) -> Vec<Value> {
    assert_eq!(payloads.last().map(String::as_str), Some("[DONE]"), "{payloads:?}");
    payloads[..payloads.len() - 1].iter().map(|p| serde_json::from_str(p).unwrap()).collect()
}

/// Each choice's text, concatenated from the chunks, and its finish reason.
fn streamed_choices(chunks: &[Value], chat: bool) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for c in chunks {
        for choice in c["choices"].as_array().unwrap() {
            let i = choice["index"].as_u64().unwrap() as usize;
            if out.len() <= i {
                out.resize(i + 1, (String::new(), None));
            }
            let text = if chat { &choice["delta"]["content"] } else { &choice["text"] };
            out[i].0.push_str(text.as_str().unwrap_or(""));
            if let Some(f) = choice["finish_reason"].as_str() {
                assert!(out[i].1.is_none(), "two finish reasons for choice {i}");
                out[i].1 = Some(f.to_string());
            }
        }
    }
    out
}

fn text(body: &Value, i: usize) -> &str {
    body["choices"][i]["text"].as_str().expect("a text")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_models() {
    let server = start(config()).await;
    let client = Client::new(&server);
    let (status, health) = client.get("/health").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["slots"]["total"], 8);
    let (status, models) = client.get("/v1/models").await;
    assert_eq!(status, 200);
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "gpt2");
    assert_eq!(models["data"][0]["object"], "model");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_completion_has_its_text_usage_and_finish_reason() {
    let server = start(config()).await;
    let client = Client::new(&server);
    let body = json!({"model": "gpt2", "prompt": "Once upon a time", "max_tokens": 12,
        "seed": 5, "ignore_eos": true});
    let (status, out) = client.post("/v1/completions", &body).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["object"], "text_completion");
    assert_eq!(out["choices"][0]["finish_reason"], "length");
    assert_eq!(out["usage"]["completion_tokens"], 12);
    assert_eq!(out["usage"]["prompt_tokens"], 4);
    assert_eq!(out["usage"]["total_tokens"], 16);
    assert!(!text(&out, 0).is_empty());
    // The same seed, the same text; another seed, another text.
    let (_, again) = client.post("/v1/completions", &body).await;
    assert_eq!(text(&again, 0), text(&out, 0));
    let (_, other) = client
        .post(
            "/v1/completions",
            &json!({"model": "gpt2",
        "prompt": "Once upon a time", "max_tokens": 12, "seed": 6, "ignore_eos": true}),
        )
        .await;
    assert_ne!(text(&other, 0), text(&out, 0));
    // Token ids are the same prompt as their text.
    let ids = gpt2::Tokenizer::gpt2().unwrap().encode("Once upon a time").unwrap();
    let (_, by_ids) = client
        .post(
            "/v1/completions",
            &json!({"model": "gpt2",
        "prompt": ids, "max_tokens": 12, "seed": 5, "ignore_eos": true}),
        )
        .await;
    assert_eq!(text(&by_ids, 0), text(&out, 0));
    // A list of prompts: one choice each, in order.
    let (status, two) = client
        .post(
            "/v1/completions",
            &json!({"model": "gpt2",
        "prompt": ["Once upon a time", "The king"], "max_tokens": 12, "seed": 5,
        "ignore_eos": true}),
        )
        .await;
    assert_eq!(status, 200, "{two}");
    assert_eq!(two["choices"].as_array().unwrap().len(), 2);
    assert_eq!(text(&two, 0), text(&out, 0));
    assert_eq!(two["choices"][1]["index"], 1);
    assert_eq!(two["usage"]["completion_tokens"], 24);
    // Echo puts the prompt first.
    let (_, echoed) = client
        .post(
            "/v1/completions",
            &json!({"model": "gpt2",
        "prompt": "Once upon a time", "max_tokens": 12, "seed": 5, "ignore_eos": true,
        "echo": true}),
        )
        .await;
    assert_eq!(text(&echoed, 0), format!("Once upon a time{}", text(&out, 0)));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streaming_gives_the_non_streamed_text() {
    let server = start(config()).await;
    let client = Client::new(&server);
    for (path, chat) in [("/v1/completions", false), ("/v1/chat/completions", true)] {
        let mut body = json!({"model": "gpt2", "max_tokens": 40, "seed": 11,
            "temperature": 0.9, "top_p": 0.95, "n": 2, "stop": ["\n\n"]});
        if chat {
            body["messages"] = json!([{"role": "user", "content": "Tell me a story"}]);
        } else {
            body["prompt"] = json!("The castle stood");
        }
        let (status, full) = client.post(path, &body).await;
        assert_eq!(status, 200, "{full}");
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
        let payloads = client.stream(path, &body).await;
        let chunks = chunks(&payloads);
        let streamed = streamed_choices(&chunks, chat);
        assert_eq!(streamed.len(), 2);
        for (i, (text, finish)) in streamed.iter().enumerate() {
            let expected = if chat {
                full["choices"][i]["message"]["content"].as_str().unwrap()
            } else {
                full["choices"][i]["text"].as_str().unwrap()
            };
            assert_eq!(text, expected, "{path} choice {i}");
            assert_eq!(finish.as_deref(), full["choices"][i]["finish_reason"].as_str());
        }
        let usage = &chunks.last().unwrap()["usage"];
        assert_eq!(usage, &full["usage"], "{path}");
        if chat {
            assert_eq!(chunks[0]["object"], "chat.completion.chunk");
            assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
        }
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_of_n_choices_is_the_lone_run_with_its_seed() {
    let server = start(config()).await;
    let client = Client::new(&server);
    let (status, three) = client
        .post(
            "/v1/completions",
            &json!({"model": "gpt2",
        "prompt": "In the beginning", "max_tokens": 20, "seed": 100, "n": 3,
        "ignore_eos": true}),
        )
        .await;
    assert_eq!(status, 200, "{three}");
    let texts: Vec<&str> = (0..3).map(|i| text(&three, i)).collect();
    assert!(texts[0] != texts[1] && texts[1] != texts[2], "{texts:?}");
    for (c, expected) in texts.iter().enumerate() {
        let (_, alone) = client
            .post(
                "/v1/completions",
                &json!({"model": "gpt2",
            "prompt": "In the beginning", "max_tokens": 20, "seed": 100 + c,
            "ignore_eos": true}),
            )
            .await;
        assert_eq!(text(&alone, 0), *expected, "choice {c}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_string_cuts_the_text_and_says_stop() {
    let server = start(config()).await;
    let client = Client::new(&server);
    let greedy = json!({"model": "gpt2", "prompt": "The king said", "max_tokens": 30,
        "temperature": 0, "ignore_eos": true});
    let (_, free) = client.post("/v1/completions", &greedy).await;
    let full = text(&free, 0).to_string();
    // A stop string from the middle of the greedy text.
    let chars: Vec<char> = full.chars().collect();
    let stop: String = chars[chars.len() / 2..chars.len() / 2 + 3].iter().collect();
    let at = full.find(&stop).unwrap();
    let mut body = greedy.clone();
    body["stop"] = json!([stop.clone(), "never appears 12345"]);
    let (status, stopped) = client.post("/v1/completions", &body).await;
    assert_eq!(status, 200, "{stopped}");
    assert_eq!(text(&stopped, 0), &full[..at], "stop {stop:?}");
    assert_eq!(stopped["choices"][0]["finish_reason"], "stop");
    assert!(stopped["usage"]["completion_tokens"].as_u64().unwrap() < 30);
    // Streamed: the same cut, the stop string never sent.
    body["stream"] = json!(true);
    let streamed = streamed_choices(&chunks(&client.stream("/v1/completions", &body).await), false);
    assert_eq!(streamed[0].0, &full[..at]);
    assert_eq!(streamed[0].1.as_deref(), Some("stop"));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_probabilities_in_both_shapes() {
    let server = start(config()).await;
    let client = Client::new(&server);
    // Completions: an integer, the alternatives per token.
    let (status, out) = client
        .post(
            "/v1/completions",
            &json!({"model": "gpt2",
        "prompt": "The queen", "max_tokens": 8, "temperature": 0, "logprobs": 3,
        "ignore_eos": true}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let lp = &out["choices"][0]["logprobs"];
    let tokens = lp["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), 8);
    let joined: String = tokens.iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(joined, text(&out, 0));
    for (i, top) in lp["top_logprobs"].as_array().unwrap().iter().enumerate() {
        let top = top.as_object().unwrap();
        assert_eq!(top.len(), 3);
        let chosen = lp["token_logprobs"][i].as_f64().unwrap();
        assert!(chosen <= 0.0);
        // Greedy: the chosen token is the most likely one.
        let best = top.values().map(|v| v.as_f64().unwrap()).fold(f64::MIN, f64::max);
        assert_eq!(chosen, best, "token {i}");
    }
    let offsets: Vec<u64> =
        lp["text_offset"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(offsets[0], 0);
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
    // Chat: a boolean and top_logprobs.
    let (status, out) = client
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt2",
        "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6,
        "logprobs": true, "top_logprobs": 2, "seed": 3, "ignore_eos": true}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let content = out["choices"][0]["logprobs"]["content"].as_array().unwrap();
    assert_eq!(content.len(), 6);
    for entry in content {
        assert!(entry["logprob"].as_f64().unwrap() <= 0.0);
        assert_eq!(entry["top_logprobs"].as_array().unwrap().len(), 2);
        assert!(entry["bytes"].is_array());
    }
    // Streamed, every token carries its entry: the same as non-streamed.
    let payloads = client
        .stream(
            "/v1/chat/completions",
            &json!({"model": "gpt2",
        "messages": [{"role": "user", "content": "Hello"}], "max_tokens": 6,
        "logprobs": true, "top_logprobs": 2, "seed": 3, "ignore_eos": true, "stream": true}),
        )
        .await;
    let streamed: Vec<Value> = chunks(&payloads)
        .iter()
        .filter_map(|c| c["choices"][0]["logprobs"]["content"].as_array().cloned())
        .flatten()
        .collect();
    assert_eq!(&streamed, content);
    server.shutdown().await.unwrap();
}

/// Route, body, status, `param`, `code`.
type ErrorCase = (&'static str, String, u16, Option<&'static str>, Option<&'static str>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_openai_errors() {
    let server = start(config()).await;
    let client = Client::new(&server);
    let long_prompt = "word ".repeat(400);
    let cases: Vec<ErrorCase> = vec![
        ("/v1/completions", "{not json".into(), 400, None, Some("invalid_json")),
        ("/v1/completions", "[1, 2]".into(), 400, None, Some("invalid_json")),
        ("/v1/completions", json!({"prompt": "x"}).to_string(), 400, Some("model"), None),
        ("/v1/completions", json!({"model": 3, "prompt": "x"}).to_string(), 400, Some("model"), None),
        ("/v1/completions", json!({"model": "gpt-4", "prompt": "x"}).to_string(), 404, Some("model"), Some("model_not_found")),
        ("/v1/completions", json!({"model": "gpt2"}).to_string(), 400, Some("prompt"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": 5}).to_string(), 400, Some("prompt"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": [1, "a"]}).to_string(), 400, Some("prompt"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": [99999999]}).to_string(), 400, Some("prompt"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "temperature": -1}).to_string(), 400, Some("temperature"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "temperature": "hot"}).to_string(), 400, Some("temperature"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "top_p": 2}).to_string(), 400, Some("top_p"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "n": 0}).to_string(), 400, Some("n"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "n": 1000}).to_string(), 400, Some("n"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "max_tokens": -3}).to_string(), 400, Some("max_tokens"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "max_tokens": 100000}).to_string(), 400, Some("max_tokens"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "max_tokens": 300}).to_string(), 400, Some("max_tokens"), Some("context_length_exceeded")),
        ("/v1/completions", json!({"model": "gpt2", "prompt": long_prompt}).to_string(), 400, Some("prompt"), Some("context_length_exceeded")),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "stream": "yes"}).to_string(), 400, Some("stream"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "logit_bias": {"a": 1}}).to_string(), 400, Some("logit_bias"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "presence_penalty": 5}).to_string(), 400, Some("presence_penalty"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "stop": [""]}).to_string(), 400, Some("stop"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "seed": -1}).to_string(), 400, Some("seed"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "best_of": 3}).to_string(), 400, Some("best_of"), Some("unsupported")),
        ("/v1/chat/completions", json!({"model": "gpt2", "messages": [{"role": "user", "content": "x"}], "echo": true}).to_string(), 400, Some("echo"), Some("unsupported")),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}}).to_string(), 400, Some("response_format.json_schema.schema"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "response_format": {"type": "xml"}}).to_string(), 400, Some("response_format.type"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "grammar": 3}).to_string(), 400, Some("grammar"), None),
        ("/v1/completions", json!({"model": "gpt2", "prompt": "x", "grammar": "root ::= \"a\"", "json_schema": {}}).to_string(), 400, Some("grammar"), None),
        ("/v1/chat/completions", json!({"model": "gpt2"}).to_string(), 400, Some("messages"), None),
        ("/v1/chat/completions", json!({"model": "gpt2", "messages": [{"role": "tool", "content": "x"}]}).to_string(), 400, Some("messages[0].role"), Some("unsupported")),
        ("/v1/chat/completions", json!({"model": "gpt2", "messages": [{"role": "user", "content": "x"}], "logprobs": 2}).to_string(), 400, Some("logprobs"), None),
        ("/v1/chat/completions", json!({"model": "gpt2", "messages": [{"role": "user", "content": "x"}], "top_logprobs": 30, "logprobs": true}).to_string(), 400, Some("top_logprobs"), None),
    ];
    // Without the structured-outputs feature, a constrained format is refused.
    #[cfg(not(feature = "structured"))]
    let cases = {
        let mut cases = cases;
        cases.push((
            "/v1/completions",
            json!({"model": "gpt2", "prompt": "x", "response_format": {"type": "json_object"}})
                .to_string(),
            400,
            Some("response_format"),
            Some("unsupported"),
        ));
        cases.push((
            "/v1/completions",
            json!({"model": "gpt2", "prompt": "x", "grammar": "root ::= \"a\""}).to_string(),
            400,
            Some("grammar"),
            Some("unsupported"),
        ));
        cases
    };
    // With it, a malformed GBNF grammar is a 400 naming the field.
    #[cfg(feature = "structured")]
    let cases = {
        let mut cases = cases;
        for grammar in ["root ::= item", "root ::= [a-", "root = \"a\""] {
            cases.push((
                "/v1/completions",
                json!({"model": "gpt2", "prompt": "x", "grammar": grammar}).to_string(),
                400,
                Some("grammar"),
                None,
            ));
        }
        cases
    };
    for (path, body, status, param, code) in cases {
        let (got, out) = client.post_raw(path, body.clone()).await;
        assert_eq!(got, status, "{body}: {out}");
        let error = &out["error"];
        assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}: {out}");
        assert!(error["type"].is_string(), "{body}: {out}");
        assert_eq!(error["param"].as_str(), param, "{body}: {out}");
        assert_eq!(error["code"].as_str(), code, "{body}: {out}");
    }
    let (status, out) = client.get("/v1/nothing").await;
    assert_eq!((status, out["error"]["code"].as_str()), (404, Some("not_found")));
    let (status, out) = client.get("/v1/completions").await;
    assert_eq!((status, out["error"]["code"].as_str()), (405, Some("method_not_allowed")));
    // The server is still serving.
    let (status, _) = client
        .post(
            "/v1/completions",
            &json!({"model": "gpt2", "prompt": "x",
        "max_tokens": 2}),
        )
        .await;
    assert_eq!(status, 200);
    server.shutdown().await.unwrap();
}

/// The streamed ids of one request (from the chat log-probabilities, one
/// entry per token) and its text.
async fn streamed_tokens(client: &Client, seed: u64) -> (Vec<Value>, String) {
    let payloads = client
        .stream(
            "/v1/completions",
            &json!({"model": "gpt2", "prompt": format!("Story number {seed}:"),
                "max_tokens": 24, "seed": seed, "temperature": 1.0, "logprobs": 0,
                "ignore_eos": true, "stream": true}),
        )
        .await;
    let chunks = chunks(&payloads);
    let mut tokens = Vec::new();
    let mut text = String::new();
    for c in &chunks {
        let choice = &c["choices"][0];
        text.push_str(choice["text"].as_str().unwrap_or(""));
        tokens.extend(choice["logprobs"]["tokens"].as_array().cloned().unwrap_or_default());
    }
    (tokens, text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_concurrent_streams_each_get_their_lone_tokens() {
    // A short pause per step keeps the streams overlapping on a slow machine.
    let server =
        start(ServerConfig { step_delay: Some(Duration::from_millis(2)), ..config() }).await;
    let client = std::sync::Arc::new(Client::new(&server));
    let mut alone = Vec::new();
    for seed in 0..32 {
        alone.push(streamed_tokens(&client, seed).await);
    }
    let (_, before) = client.get("/health").await;
    let tasks: Vec<_> = (0..32)
        .map(|seed| {
            let client = client.clone();
            tokio::spawn(async move { streamed_tokens(&client, seed).await })
        })
        .collect();
    for (seed, task) in tasks.into_iter().enumerate() {
        let (tokens, text) = task.await.unwrap();
        assert_eq!(tokens.len(), 24, "seed {seed}: lost or duplicated tokens");
        assert_eq!((&tokens, &text), (&alone[seed].0, &alone[seed].1), "seed {seed}");
    }
    let (_, after) = client.get("/health").await;
    // 32 × 24 tokens in fewer batched steps than tokens: they shared steps.
    let steps = after["steps"].as_u64().unwrap() - before["steps"].as_u64().unwrap();
    let tokens = after["tokens"].as_u64().unwrap() - before["tokens"].as_u64().unwrap();
    assert_eq!(tokens, 32 * 24);
    assert!(steps < tokens / 2, "{steps} steps for {tokens} tokens");
    assert_eq!(after["slots"]["active"], 0);
    server.shutdown().await.unwrap();
}

async fn wait_for(client: &Client, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let (_, health) = client.get("/health").await;
        if ok(&health) {
            return health;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_frees_its_slot() {
    let server =
        start(ServerConfig { step_delay: Some(Duration::from_millis(20)), ..config() }).await;
    let client = Client::new(&server);
    let r = client
        .http
        .post(format!("{}/v1/completions", client.base))
        .json(&json!({"model": "gpt2", "prompt": "A long tale", "max_tokens": 200,
            "ignore_eos": true, "stream": true}))
        .send()
        .await
        .unwrap();
    let mut body = r.bytes_stream();
    // Two events in: it is decoding.
    let mut seen = 0;
    while seen < 2 {
        let bytes = body.next().await.unwrap().unwrap();
        seen += bytes.windows(6).filter(|w| w == b"data: ").count();
    }
    let (_, health) = client.get("/health").await;
    assert_eq!(health["slots"]["active"], 1);
    drop(body);
    // 200 steps would take 4 s; the slot is free long before.
    let health = wait_for(&client, "the slot to be freed", |h| h["slots"]["active"] == 0).await;
    assert_eq!(health["sequences"]["cancelled"], 1);
    assert_eq!(health["sequences"]["completed"], 0);
    let (status, out) = client
        .post(
            "/v1/completions",
            &json!({"model": "gpt2",
        "prompt": "x", "max_tokens": 3}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_is_a_503() {
    let server = start(ServerConfig {
        slots: 1,
        queue: 1,
        step_delay: Some(Duration::from_millis(20)),
        ..ServerConfig::default()
    })
    .await;
    let client = std::sync::Arc::new(Client::new(&server));
    let long = json!({"model": "gpt2", "prompt": "A long tale", "max_tokens": 100,
        "ignore_eos": true});
    // One decodes, one waits in the queue.
    let first = {
        let (client, long) = (client.clone(), long.clone());
        tokio::spawn(async move { client.post("/v1/completions", &long).await })
    };
    wait_for(&client, "the first to decode", |h| h["slots"]["active"] == 1).await;
    let second = {
        let (client, long) = (client.clone(), long.clone());
        tokio::spawn(async move { client.post("/v1/completions", &long).await })
    };
    wait_for(&client, "the second to queue", |h| h["queued"] == 1).await;
    let (status, out) = client.post("/v1/completions", &long).await;
    assert_eq!(status, 503, "{out}");
    assert_eq!(out["error"]["code"], "server_overloaded");
    first.abort();
    second.abort();
    server.shutdown().await.ok();
}

/// `response_format` with a JSON schema: every choice is valid JSON of that
/// shape, streamed or not.
#[cfg(feature = "structured")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn response_format_constrains_the_output_to_the_schema() {
    let server = start(config()).await;
    let client = Client::new(&server);
    let schema = json!({
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 8}, "alive": {"type": "boolean"}},
        "required": ["name", "alive"],
        "additionalProperties": false
    });
    let body = json!({"model": "gpt2", "prompt": "A record:", "max_tokens": 60, "seed": 1,
        "n": 3, "response_format": {"type": "json_schema",
            "json_schema": {"name": "record", "schema": schema, "strict": true}}});
    let (status, out) = client.post("/v1/completions", &body).await;
    assert_eq!(status, 200, "{out}");
    for i in 0..3 {
        assert_eq!(out["choices"][i]["finish_reason"], "stop", "{out}");
        let value: Value = serde_json::from_str(text(&out, i)).expect("valid JSON");
        let object = value.as_object().expect("an object");
        assert_eq!(object.len(), 2, "{value}");
        assert!(object["name"].as_str().is_some_and(|s| s.chars().count() <= 8), "{value}");
        assert!(object["alive"].is_boolean(), "{value}");
    }
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let choices =
        streamed_choices(&chunks(&client.stream("/v1/completions", &streamed).await), false);
    for (i, (t, _)) in choices.iter().enumerate() {
        assert_eq!(t, text(&out, i));
    }
    // Chat with a JSON object.
    let (status, out) = client
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt2",
        "messages": [{"role": "user", "content": "Answer in JSON"}], "max_tokens": 80,
        "seed": 2, "response_format": {"type": "json_object"}}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    if out["choices"][0]["finish_reason"] == "stop" {
        let content = out["choices"][0]["message"]["content"].as_str().unwrap();
        let value: Value = serde_json::from_str(content).expect("valid JSON");
        assert!(value.is_object(), "{value}");
    }
    server.shutdown().await.unwrap();
}

/// llama-server's `grammar` (GBNF): every choice is in the grammar's
/// language, streamed or not; a `%llguidance` header means Lark.
#[cfg(feature = "structured")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gbnf_grammar_constrains_the_output() {
    let server = start(config()).await;
    let client = Client::new(&server);
    // JSON arrays of one to four integers in [1, 999].
    let grammar = "root ::= \"[\" num (\",\" \" \"? num){0,3} \"]\"\nnum ::= [1-9] [0-9]{0,2}\n";
    let body = json!({"model": "gpt2", "prompt": "Numbers:", "max_tokens": 40, "seed": 3,
        "n": 3, "grammar": grammar});
    let (status, out) = client.post("/v1/completions", &body).await;
    assert_eq!(status, 200, "{out}");
    for i in 0..3 {
        assert_eq!(out["choices"][i]["finish_reason"], "stop", "{out}");
        let numbers: Vec<u64> = serde_json::from_str(text(&out, i)).expect("a JSON array");
        assert!((1..=4).contains(&numbers.len()), "{out}");
        assert!(numbers.iter().all(|n| (1..=999).contains(n)), "{out}");
        assert!(!text(&out, i).contains("  ") && !text(&out, i).contains(" ,"), "{out}");
    }
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let choices =
        streamed_choices(&chunks(&client.stream("/v1/completions", &streamed).await), false);
    assert_eq!(choices.len(), 3);
    for (i, (t, _)) in choices.iter().enumerate() {
        assert_eq!(t, text(&out, i));
    }
    // A recursive grammar: balanced parentheses around digits.
    let body = json!({"model": "gpt2", "prompt": "Nested:", "max_tokens": 30, "seed": 5,
        "grammar": "root ::= \"(\" (root | [0-9]) \")\""});
    let (status, out) = client.post("/v1/completions", &body).await;
    assert_eq!(status, 200, "{out}");
    let t = text(&out, 0);
    if out["choices"][0]["finish_reason"] == "stop" {
        let depth = t.chars().take_while(|&c| c == '(').count();
        assert!(depth >= 1 && t.len() == 2 * depth + 1, "{t:?}");
        assert!(t[depth..=depth].chars().all(|c| c.is_ascii_digit()), "{t:?}");
        assert!(t[depth + 1..].chars().all(|c| c == ')'), "{t:?}");
    } else {
        assert!(t.chars().all(|c| c == '(' || c == ')' || c.is_ascii_digit()), "{t:?}");
    }
    // Chat, with llguidance's own syntax after the header.
    let (status, out) = client
        .post(
            "/v1/chat/completions",
            &json!({"model": "gpt2", "messages": [{"role": "user", "content": "Yes or no?"}],
                "max_tokens": 10, "seed": 4,
                "grammar": "%llguidance {}\nstart: \"yes\" | \"no\""}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    let content = out["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(content == "yes" || content == "no", "{content:?}");
    assert_eq!(out["choices"][0]["finish_reason"], "stop", "{out}");
    server.shutdown().await.unwrap();
}

/// `echo` with `logprobs`: the prompt's tokens come first in the
/// log-probabilities (the first with none), the generated part is the
/// non-echoed response's, and a prompt token's log-probability is the one
/// the same token gets when it is generated after the same prefix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_with_logprobs_scores_the_prompt_tokens() {
    let server = start(config()).await;
    let client = Client::new(&server);
    // Over 32 tokens: the prompt's rows come in more than one model call.
    let prompt = "The quick brown fox jumps over the lazy dog. ".repeat(4);
    let body = json!({"model": "gpt2", "prompt": prompt, "max_tokens": 5, "temperature": 0,
        "logprobs": 2, "ignore_eos": true});
    let (status, plain) = client.post("/v1/completions", &body).await;
    assert_eq!(status, 200, "{plain}");
    let mut echoed_body = body.clone();
    echoed_body["echo"] = json!(true);
    let (status, echoed) = client.post("/v1/completions", &echoed_body).await;
    assert_eq!(status, 200, "{echoed}");
    assert_eq!(text(&echoed, 0), format!("{prompt}{}", text(&plain, 0)));
    let n_prompt = echoed["usage"]["prompt_tokens"].as_u64().unwrap() as usize;
    assert!(n_prompt > 32, "{n_prompt}");
    let (lp, plain_lp) = (&echoed["choices"][0]["logprobs"], &plain["choices"][0]["logprobs"]);
    let tokens = lp["tokens"].as_array().unwrap();
    assert_eq!(tokens.len(), n_prompt + 5);
    let joined: String = tokens.iter().map(|t| t.as_str().unwrap()).collect();
    assert_eq!(joined, text(&echoed, 0));
    // The prompt's part: nothing for the first token, then a log-probability
    // and two alternatives that rank at least as high.
    assert!(lp["token_logprobs"][0].is_null() && lp["top_logprobs"][0].is_null(), "{lp}");
    for i in 1..n_prompt {
        let chosen = lp["token_logprobs"][i].as_f64().unwrap();
        let top = lp["top_logprobs"][i].as_object().unwrap();
        assert_eq!(top.len(), 2, "{i}");
        let best = top.values().map(|v| v.as_f64().unwrap()).fold(f64::MIN, f64::max);
        assert!(chosen <= best && best <= 0.0, "{i}: {chosen} {best}");
    }
    // The generated part is the plain response's, offsets shifted by the prompt.
    for key in ["tokens", "token_logprobs", "top_logprobs"] {
        assert_eq!(
            lp[key].as_array().unwrap()[n_prompt..],
            plain_lp[key].as_array().unwrap()[..],
            "{key}"
        );
    }
    let offsets: Vec<u64> =
        lp["text_offset"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(offsets[0], 0);
    assert!(offsets.windows(2).all(|w| w[0] <= w[1]));
    for (o, p) in offsets[n_prompt..].iter().zip(plain_lp["text_offset"].as_array().unwrap()) {
        assert_eq!(*o, p.as_u64().unwrap() + prompt.len() as u64);
    }

    // Streamed: the echo chunk carries the prompt's part, then each token its own.
    let mut streamed_body = echoed_body.clone();
    streamed_body["stream"] = json!(true);
    let payloads = client.stream("/v1/completions", &streamed_body).await;
    let parts: Vec<Value> = chunks(&payloads)
        .iter()
        .filter(|c| !c["choices"][0]["logprobs"].is_null())
        .map(|c| c["choices"][0]["logprobs"].clone())
        .collect();
    assert_eq!(chunks(&payloads)[0]["choices"][0]["text"], prompt.as_str());
    for key in ["tokens", "token_logprobs", "top_logprobs", "text_offset"] {
        let streamed: Vec<Value> =
            parts.iter().flat_map(|p| p[key].as_array().unwrap().clone()).collect();
        assert_eq!(&streamed, lp[key].as_array().unwrap(), "{key}");
    }

    // A prompt token scores what the same token scores when generated after
    // the same prefix.
    let tokenizer = gpt2::Tokenizer::gpt2().unwrap();
    let prefix = tokenizer.encode("The capital of France is").unwrap();
    let (_, one) = client
        .post(
            "/v1/completions",
            &json!({"model": "gpt2", "prompt": prefix, "max_tokens": 1, "temperature": 0,
                "logprobs": 1, "ignore_eos": true}),
        )
        .await;
    let generated = text(&one, 0).to_string();
    let expected = one["choices"][0]["logprobs"]["token_logprobs"][0].as_f64().unwrap();
    let id = tokenizer.encode(&generated).unwrap();
    assert_eq!(id.len(), 1, "{generated:?}");
    let mut longer = prefix.clone();
    longer.push(id[0]);
    let (_, scored) = client
        .post(
            "/v1/completions",
            &json!({"model": "gpt2", "prompt": longer, "max_tokens": 1, "echo": true,
                "logprobs": 1, "ignore_eos": true}),
        )
        .await;
    let lp = &scored["choices"][0]["logprobs"];
    let got = lp["token_logprobs"][prefix.len()].as_f64().unwrap();
    // The same row (a prompt row is the bits of a step's) and the same
    // arithmetic (the crate's raw record): the same number.
    assert_eq!(got, expected);
    assert_eq!(lp["tokens"][prefix.len()], generated.as_str());
    // A one-token prompt: only the null entry before the generated one.
    let (_, single) = client
        .post(
            "/v1/completions",
            &json!({"model": "gpt2", "prompt": [464], "max_tokens": 2, "echo": true,
                "logprobs": 0, "ignore_eos": true}),
        )
        .await;
    let lp = &single["choices"][0]["logprobs"];
    assert_eq!(lp["tokens"].as_array().unwrap().len(), 3, "{lp}");
    assert!(lp["token_logprobs"][0].is_null() && lp["token_logprobs"][1].is_number(), "{lp}");
    server.shutdown().await.unwrap();
}
