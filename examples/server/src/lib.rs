//! An OpenAI-compatible HTTP server over the `decoding` crate, serving the
//! GPT-2 example's model with continuous batching.
//!
//! - [`Server`] binds an address and serves `POST /v1/completions`,
//!   `POST /v1/chat/completions`, `GET /v1/models` and `GET /health`
//!   (axum on Tokio).
//! - [`request`] reads a body: every sampling parameter through
//!   [`OpenAiParams`](decoding::config::OpenAiParams), the prompt, the
//!   limits; errors come back in the OpenAI shape ([`ApiError`]).
//! - [`engine`] owns the model on one thread and decodes every active
//!   sequence with one batched forward step; requests join and leave the
//!   batch between steps.
//! - [`chat`] is the plain-text chat template GPT-2 continues.
//!
//! The README next to this crate has the command line, the endpoints, the
//! parameters and the benchmark.
//!
//! # Example
//!
//! ```no_run
//! use gpt2_server::{Served, Server, ServerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! let served = Served::from_dir(&gpt2::lookup::bundled_dir())?;
//! let server = Server::start("127.0.0.1:0".parse()?, served, ServerConfig::default()).await?;
//! println!("listening on http://{}", server.addr());
//! server.shutdown().await?;
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod chat;
pub mod engine;
mod error;
pub mod request;
mod routes;
mod server;

pub use self::error::ApiError;
pub use self::server::{Limits, Served, Server, ServerConfig, Shared};
