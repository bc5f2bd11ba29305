//! Environment → library configuration, one function per role.

use std::time::Duration;

use redtail_bus::Mode;
use redtail_tail::StartAt;

use crate::env::{ConfigError, Env};

/// Settings every role's process plumbing needs.
pub struct Process {
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub log_format: redtail_telemetry::logging::LogFormat,
    pub rust_log: String,
    pub shutdown_timeout: Duration,
    /// `/healthz` fails once the role's main loop made no progress for this long.
    pub liveness_timeout: Duration,
}

pub fn process(env: &Env, default_metrics_addr: &str) -> Result<Process, ConfigError> {
    Ok(Process {
        metrics_addr: env.metrics_addr(default_metrics_addr)?,
        log_format: env.log_format()?,
        rust_log: env.rust_log(),
        shutdown_timeout: env.millis("REDTAIL_SHUTDOWN_TIMEOUT_MS", 10_000, 100)?,
        liveness_timeout: env.millis("REDTAIL_LIVENESS_TIMEOUT_MS", 60_000, 1000)?,
    })
}

/// The host name: the pod name in Kubernetes.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
        })
        .unwrap_or_else(|| "localhost".to_string())
}

fn pubsub(env: &Env) -> Result<bool, ConfigError> {
    Ok(env.choice("REDTAIL_MODE", "stream", &["stream", "pubsub"])? == "pubsub")
}

pub fn generate(env: &Env) -> Result<redtail_generator::Config, ConfigError> {
    let seed = match env.optional_string("REDTAIL_SEED") {
        None => None,
        Some(_) => Some(env.u64("REDTAIL_SEED", 0)?),
    };
    let config = redtail_generator::Config {
        log_path: env.path("REDTAIL_LOG_PATH", "/var/log/app/app.log"),
        rate: env.u64("REDTAIL_RATE", 10)?,
        count: env.u64("REDTAIL_COUNT", 0)?,
        seed,
        rotate_bytes: env.u64("REDTAIL_ROTATE_BYTES", 0)?,
        rotate_keep: env.bounded("REDTAIL_ROTATE_KEEP", 5, 1, 1000)? as u32,
        host: host_name(),
        service: "app".to_string(),
    };
    config
        .validate()
        .map_err(|e| ConfigError(format!("redtail generate: {e}")))?;
    Ok(config)
}

pub fn watch(env: &Env) -> Result<redtail_watcher::Config, ConfigError> {
    let target = env.redis_target()?;
    let mode = if pubsub(env)? {
        Mode::PubSub {
            channel: env.string("REDTAIL_CHANNEL", "logs"),
        }
    } else {
        Mode::Stream {
            key: env.string("REDTAIL_STREAM", "redtail:logs"),
            maxlen: env.u64("REDTAIL_STREAM_MAXLEN", 1_000_000)?,
        }
    };
    let start_at = match env.choice("REDTAIL_START_AT", "beginning", &["beginning", "end"])? {
        "end" => StartAt::End,
        _ => StartAt::Beginning,
    };
    let config = redtail_watcher::Config {
        log_path: env.path("REDTAIL_LOG_PATH", "/var/log/app/app.log"),
        checkpoint_path: env.path(
            "REDTAIL_CHECKPOINT_PATH",
            "/var/lib/redtail/checkpoint.json",
        ),
        checkpoint_every_lines: env.bounded("REDTAIL_CHECKPOINT_EVERY_LINES", 1000, 1, u64::MAX)?,
        checkpoint_interval: env.millis("REDTAIL_CHECKPOINT_INTERVAL_MS", 1000, 10)?,
        start_at,
        source: env
            .optional_string("REDTAIL_SOURCE")
            .unwrap_or_else(host_name),
        max_line_bytes: env.bounded("REDTAIL_MAX_LINE_BYTES", 1_048_576, 1, 512 * 1024 * 1024)?
            as usize,
        batch_max_lines: env.bounded("REDTAIL_BATCH_MAX_LINES", 1024, 1, 100_000)? as usize,
        batch_max_bytes: env.bounded(
            "REDTAIL_BATCH_MAX_BYTES",
            1_048_576,
            1024,
            256 * 1024 * 1024,
        )? as usize,
        read_buffer_bytes: 256 * 1024,
        poll_interval: env.millis("REDTAIL_POLL_INTERVAL_MS", 250, 10)?,
        target,
        mode,
        shutdown_timeout: env.millis("REDTAIL_SHUTDOWN_TIMEOUT_MS", 10_000, 100)?,
        replica_acks: env.bounded("REDTAIL_REPLICA_ACKS", 0, 0, 64)? as u32,
        replica_ack_timeout: replica_ack_timeout(env)?,
    };
    config
        .validate()
        .map_err(|e| ConfigError(format!("redtail watch: {e}")))?;
    Ok(config)
}

/// `REDTAIL_REPLICA_ACK_TIMEOUT_MS`: a `WAIT` must end before the 5 s Redis response
/// timeout, or every shortfall would look like a dead connection.
fn replica_ack_timeout(env: &Env) -> Result<Duration, ConfigError> {
    let ms = env.bounded("REDTAIL_REPLICA_ACK_TIMEOUT_MS", 1000, 10, 4000)?;
    Ok(Duration::from_millis(ms))
}

pub fn subscribe(env: &Env) -> Result<redtail_subscriber::Config, ConfigError> {
    let target = env.redis_target()?;
    let output_format = match env.choice("REDTAIL_OUTPUT_FORMAT", "udm", &["udm", "raw"])? {
        "raw" => redtail_subscriber::OutputFormat::Raw,
        _ => redtail_subscriber::OutputFormat::Udm,
    };
    let output_path = match env.string("REDTAIL_OUTPUT_PATH", "-").as_str() {
        "-" => None,
        p => Some(std::path::PathBuf::from(p)),
    };
    let config = redtail_subscriber::Config {
        target,
        stream: env.string("REDTAIL_STREAM", "redtail:logs"),
        channel: env.string("REDTAIL_CHANNEL", "logs"),
        pubsub: pubsub(env)?,
        group: env.string("REDTAIL_GROUP", "redtail"),
        consumer: env
            .optional_string("REDTAIL_CONSUMER")
            .unwrap_or_else(host_name),
        output_format,
        output_path,
        claim_idle: env.millis("REDTAIL_CLAIM_IDLE_MS", 30_000, 10)?,
        batch_size: 512,
        block: Duration::from_secs(1),
        product_name: "redtail".to_string(),
        stream_refresh: env.millis("REDTAIL_STREAM_REFRESH_MS", 5000, 100)?,
        dead_consumer_idle: env.millis("REDTAIL_DEAD_CONSUMER_IDLE_MS", 3_600_000, 1000)?,
    };
    config
        .validate()
        .map_err(|e| ConfigError(format!("redtail subscribe: {e}")))?;
    Ok(config)
}
