//! Starting and stopping the server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use decoding::TokenId;
use decoding::config::GenerationConfig;
use gpt2::{Gpt2, Tokenizer};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::engine::{self, EngineConfig, EngineHandle};
use crate::routes;

/// Limits on what one request may ask for (larger asks get a `400`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `max_tokens` at most.
    pub max_tokens: usize,
    /// Prompt tokens at most (and always under the context length).
    pub max_prompt_tokens: usize,
    /// Sequences (prompts × `n`) at most.
    pub max_sequences: usize,
}

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The name clients pass as `model` (and `/v1/models` lists).
    pub model_name: String,
    /// Sequences decoded together at most (each holds a KV cache of
    /// `n_positions` positions).
    pub slots: usize,
    /// Requests waiting for a slot at most; more get a `503`.
    pub queue: usize,
    /// Threads of the model's matrix products.
    pub threads: usize,
    /// The request limits.
    pub limits: Limits,
    /// A pause after every batched step (`None`: no pause). Tests use it to
    /// keep sequences in flight long enough to cancel them.
    pub step_delay: Option<Duration>,
}

impl Default for ServerConfig {
    /// `gpt2`, 16 slots, a queue of 64 requests, 1 thread, at most 1024 new
    /// tokens, 1024 prompt tokens and 16 sequences per request.
    fn default() -> Self {
        ServerConfig {
            model_name: "gpt2".into(),
            slots: 16,
            queue: 64,
            threads: 1,
            limits: Limits { max_tokens: 1024, max_prompt_tokens: 1024, max_sequences: 16 },
            step_delay: None,
        }
    }
}

/// What every handler reads.
#[derive(Debug)]
pub struct Shared {
    /// The engine.
    pub engine: EngineHandle,
    /// The tokenizer.
    pub tokenizer: Arc<Tokenizer>,
    /// The model's generation config (the defaults of every request).
    pub generation: GenerationConfig,
    /// The served model's name.
    pub model_name: String,
    /// The context length (`n_positions`).
    pub context: usize,
    /// The request limits.
    pub limits: Limits,
    /// `<|endoftext|>`: the prompt of an empty prompt.
    pub start_token: TokenId,
    /// Request counter, for ids.
    pub requests: AtomicU64,
    /// The tokens' bytes, for output constraints (`response_format`).
    #[cfg(feature = "structured")]
    pub vocabulary: decoding::structured::TokenVocabulary,
}

/// A running server: its address, and a way to stop it.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

/// Everything the server serves: the model, its tokenizer and its
/// generation config.
#[derive(Debug)]
pub struct Served {
    /// The model.
    pub model: Gpt2,
    /// Its tokenizer.
    pub tokenizer: Tokenizer,
    /// Its generation config (`GenerationConfig::default()` when the
    /// directory has none).
    pub generation: GenerationConfig,
}

impl Served {
    /// Loads a model directory (`config.json`, `model.safetensors`, and
    /// optionally the tokenizer files and `generation_config.json`; GPT-2's
    /// own tokenizer when there are none).
    ///
    /// # Errors
    ///
    /// The model or tokenizer cannot be loaded, or the generation config is
    /// malformed.
    pub fn from_dir(
        dir: &std::path::Path,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let model = Gpt2::from_dir(dir)?;
        let tokenizer = match Tokenizer::from_dir(dir)? {
            Some(t) => t,
            None => Tokenizer::gpt2()?,
        };
        let path = dir.join("generation_config.json");
        let generation = if path.is_file() {
            GenerationConfig::from_file(&path)?
        } else {
            GenerationConfig::default()
        };
        Ok(Served { model, tokenizer, generation })
    }
}

impl Server {
    /// Binds `addr` (port 0: an ephemeral port) and serves `served` on the
    /// current Tokio runtime until [`Server::shutdown`] or drop.
    ///
    /// # Errors
    ///
    /// The address cannot be bound, or the engine thread cannot start.
    pub async fn start(
        addr: SocketAddr,
        served: Served,
        config: ServerConfig,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let Served { model, tokenizer, mut generation } = served;
        let context = model.max_positions();
        let start_token = model
            .config()
            .eos_token_id
            .or_else(|| tokenizer.added_token_id(gpt2::tokenizer::END_OF_TEXT))
            .unwrap_or(0);
        if generation.eos_token_id.is_none() {
            generation.eos_token_id = model.config().eos_token_id.map(Into::into);
        }
        let model = model.with_threads(config.threads.max(1)).map_err(std::io::Error::other)?;
        let tokenizer = Arc::new(tokenizer);
        #[cfg(feature = "structured")]
        let vocabulary = decoding::structured::TokenVocabulary::from_detokenizer(
            &*tokenizer,
            model.config().vocab_size,
            &[start_token],
        )
        .map_err(std::io::Error::other)?;
        let engine_config = EngineConfig {
            slots: config.slots,
            queue: config.queue,
            step_delay: config.step_delay,
        };
        let (engine, _thread) = engine::spawn(model, tokenizer.clone(), &engine_config)?;
        let shared = Arc::new(Shared {
            engine,
            tokenizer,
            generation,
            model_name: config.model_name,
            context,
            limits: config.limits,
            start_token,
            requests: AtomicU64::new(0),
            #[cfg(feature = "structured")]
            vocabulary,
        });
        let app = routes::router(shared);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = rx.await;
                })
                .await
        });
        Ok(Server { addr, shutdown: Some(tx), task: Some(task) })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting connections, lets the open ones finish, and waits.
    ///
    /// # Errors
    ///
    /// The server's accept loop failed.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }

    /// Serves until the task ends (Ctrl-C in `main`).
    ///
    /// # Errors
    ///
    /// The server's accept loop failed.
    pub async fn wait(mut self) -> std::io::Result<()> {
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
