//! redtail-subscriber: `redtail subscribe`.
//!
//! Consumes log lines from Redis, turns each into one output record (a UDM-shaped JSON event
//! or the raw line), writes them out, and — in stream mode — acknowledges them only after
//! they were written. Redis trouble never ends the role: it is retried with backoff while
//! `/readyz` and `redtail_watcher_redis_up` say so. Only an output failure, a configuration
//! error, or a Redis error that retrying cannot fix (credentials) returns an error.
#![forbid(unsafe_code)]

mod config;
mod error;
mod health;
mod metrics;
mod output;
mod pipeline;
mod pubsub_mode;
mod reader;
mod secops_mode;
mod stream_mode;
pub mod timestamp;
pub mod udm;

pub use config::{Config, OutputFormat};
pub use error::SubscriberError;
pub use metrics::Metrics;
pub use redtail_parse::{Format as ParseFormat, Options as UdmOptions, ParseMode};

use prometheus::IntGauge;
use redtail_telemetry::readiness::{Liveness, Readiness};
use redtail_telemetry::shutdown::Shutdown;

use crate::health::RedisHealth;
use crate::output::Output;
use crate::pipeline::Pipeline;

/// Runs the subscriber until `shutdown` fires (then finishes the batch in hand — written,
/// flushed and acknowledged — and returns `Ok`) or a fatal error occurs.
///
/// `redis_up` is the shared `redtail_watcher_redis_up` gauge (`CommonMetrics::redis_up`).
pub async fn run(
    config: Config,
    metrics: Metrics,
    redis_up: IntGauge,
    readiness: Readiness,
    liveness: Liveness,
    shutdown: Shutdown,
) -> Result<(), SubscriberError> {
    config.validate()?;
    if let Some(sink) = config.sink.clone() {
        let result = secops_mode::run(
            &config, *sink, metrics, redis_up, readiness, liveness, shutdown,
        )
        .await;
        if let Err(err) = &result {
            tracing::error!(error = %err, reason = err.reason(), "Subscriber failed.");
        }
        return result;
    }
    let output = Output::open(config.output_path.as_deref()).await?;
    let pipeline = Pipeline::new(
        output,
        config.output_format,
        config.parser()?,
        config.udm.clone(),
        metrics.clone(),
    );
    let health = RedisHealth::new(
        redis_up,
        readiness,
        metrics.redis_errors.clone(),
        config.target.redacted(),
    );
    let result = if config.pubsub {
        pubsub_mode::run(&config, pipeline, metrics, health, liveness, shutdown).await
    } else {
        stream_mode::run(&config, pipeline, metrics, health, liveness, shutdown).await
    };
    match &result {
        Ok(()) => tracing::info!("Subscriber stopped."),
        Err(err) => tracing::error!(error = %err, reason = err.reason(), "Subscriber failed."),
    }
    result
}
