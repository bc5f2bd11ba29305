//! redtail-secops: delivery of stream entries to Google SecOps (Chronicle).
//!
//! Three APIs (`logs:import` with raw lines, `events:import` with UDM events, the legacy
//! `unstructuredlogentries:batchCreate`), one guarantee: nothing is acknowledged in Redis
//! before SecOps answered 2xx for it, and whatever is sent again (retry, restart, another
//! consumer's claim) is the byte-identical body, so SecOps' content-based batch
//! de-duplication absorbs it. What SecOps refuses for good goes to `<stream>:deadletter`
//! with the reason. The crate never reads the environment; the binary builds
//! [`SecopsConfig`].
#![forbid(unsafe_code)]

/// Runs a Redis operation of the sink until it succeeds, backing off (and beating liveness)
/// in between; `None` when shutdown began first. Redis trouble never loses an entry here:
/// whatever was not acknowledged stays pending and is delivered again.
macro_rules! redis_retry {
    ($sink:ident, $op:expr) => {{
        let mut backoff = redtail_bus::Backoff::new(
            crate::sink::REDIS_BACKOFF.0,
            crate::sink::REDIS_BACKOFF.1,
        );
        loop {
            let result = $op.await;
            match result {
                Ok(v) => break Some(v),
                Err(err) => {
                    tracing::warn!(error = %err, "Redis trouble in the SecOps sink; retrying.");
                    $sink.metrics.retries.with_label_values(&["redis"]).inc();
                    if !$sink.wait(backoff.next_delay()).await {
                        break None;
                    }
                }
            }
        }
    }};
}

pub mod auth;
mod client;
mod config;
pub mod envelope;
mod error;
pub mod http;
pub mod inflight;
mod metrics;
mod sink;

pub use client::{classify, Verdict};
pub use config::{Api, CredentialsSource, SecopsConfig};
pub use envelope::EventRenderer;
pub use error::SecopsError;
pub use metrics::{SinkMetrics, RETRY_REASONS};
pub use sink::{Plumbing, Sink, Source, READINESS};
