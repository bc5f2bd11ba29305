//! redtail-bus: everything that talks to Redis.
//!
//! - [`Publisher`]: the watcher's idempotent batch publish (one server-side
//!   script per batch that skips what Redis already has and advances the
//!   committed offset atomically with the XADDs / PUBLISHes).
//! - [`consumer`]: the subscriber's consumer-group reader and pub/sub listener.
//! - [`Connection`] / [`RedisTarget`]: URL, TLS and reconnect handling.
//! - [`Backoff`]: capped exponential backoff with jitter for every retry loop.
#![forbid(unsafe_code)]

pub mod consumer;
mod backoff;
mod conn;
mod error;
mod publisher;

pub use backoff::Backoff;
pub use conn::{redact_url, Connection, RedisTarget};
pub use error::BusError;
pub use publisher::{Mode, OutLine, PublishBatch, PublishOutcome, Publisher, OFFSETS_KEY};
