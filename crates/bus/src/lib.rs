//! redtail-bus: everything that talks to Redis.
//!
//! - [`Publisher`]: the watcher's idempotent batch publish (one server-side
//!   script per batch that skips what Redis already has and advances the
//!   committed offset atomically with the XADDs / PUBLISHes).
//! - [`consumer`]: the subscriber's consumer-group reader and pub/sub listener.
//! - [`Connection`] / [`RedisTarget`]: URL, TLS and reconnect handling, for one server or a
//!   Redis Cluster ([`RedisConn`] is the connected handle of either).
//! - [`keys`]: key names of both layouts (one stream, or one stream per source in a cluster).
//! - [`Backoff`]: capped exponential backoff with jitter for every retry loop.
#![forbid(unsafe_code)]

mod backoff;
mod conn;
pub mod consumer;
mod error;
mod handle;
pub mod keys;
mod publisher;

pub use backoff::Backoff;
pub use conn::{redact_url, Connection, RedisTarget, CLUSTER_RETRIES};
pub use error::BusError;
pub use handle::RedisConn;
pub use publisher::{
    InFlight, Mode, OutLine, PublishBatch, PublishOutcome, Publisher, OFFSETS_KEY,
};
