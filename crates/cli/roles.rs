//! Environment → library configuration, one function per role.

use std::time::Duration;

use redtail_bus::Mode;
use redtail_tail::{MultilineConfig, MultilineError, MultilineMode, StartAt};

use crate::env::{ConfigError, Env};
use crate::vars::{self, Command};

/// Settings every role's process plumbing needs.
#[derive(Debug)]
pub struct Process {
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub log_format: redtail_telemetry::logging::LogFormat,
    pub rust_log: String,
    pub shutdown_timeout: Duration,
    /// `/healthz` fails once the role's main loop made no progress for this long.
    pub liveness_timeout: Duration,
}

pub fn process(env: &Env, command: &Command) -> Result<Process, ConfigError> {
    Ok(Process {
        metrics_addr: env.metrics_addr(command)?,
        log_format: env.log_format()?,
        rust_log: env.rust_log(),
        shutdown_timeout: env.millis(&vars::SHUTDOWN_TIMEOUT_MS, 100)?,
        liveness_timeout: env.millis(&vars::LIVENESS_TIMEOUT_MS, 1000)?,
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
    Ok(env.choice(&vars::MODE, &["stream", "pubsub"])? == "pubsub")
}

pub fn generate(env: &Env) -> Result<redtail_generator::Config, ConfigError> {
    let seed = match env.optional_string(&vars::SEED) {
        None => None,
        Some(_) => Some(env.u64(&vars::SEED)?),
    };
    let config = redtail_generator::Config {
        log_path: env.path(&vars::GENERATE_LOG_PATH)?,
        rate: env.u64(&vars::RATE)?,
        count: env.u64(&vars::COUNT)?,
        seed,
        rotate_bytes: env.u64(&vars::ROTATE_BYTES)?,
        rotate_keep: env.bounded(&vars::ROTATE_KEEP, 1, 1000)? as u32,
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
            channel: env.string(&vars::CHANNEL)?,
        }
    } else {
        Mode::Stream {
            key: env.string(&vars::STREAM)?,
            maxlen: env.u64(&vars::STREAM_MAXLEN)?,
        }
    };
    let start_at = match env.choice(&vars::START_AT, &["beginning", "end"])? {
        "end" => StartAt::End,
        _ => StartAt::Beginning,
    };
    let max_line_bytes = env.bounded(&vars::MAX_LINE_BYTES, 1, 512 * 1024 * 1024)? as usize;
    let config = redtail_watcher::Config {
        log_path: env.path(&vars::WATCH_LOG_PATH)?,
        checkpoint_path: env.path(&vars::CHECKPOINT_PATH)?,
        checkpoint_every_lines: env.bounded(&vars::CHECKPOINT_EVERY_LINES, 1, u64::MAX)?,
        checkpoint_interval: env.millis(&vars::CHECKPOINT_INTERVAL_MS, 10)?,
        start_at,
        source: env.optional_string(&vars::SOURCE).unwrap_or_else(host_name),
        max_line_bytes,
        batch_max_lines: env.bounded(&vars::BATCH_MAX_LINES, 1, 100_000)? as usize,
        batch_max_bytes: env.bounded(&vars::BATCH_MAX_BYTES, 1024, 256 * 1024 * 1024)? as usize,
        batch_linger: Duration::from_millis(env.bounded(
            &vars::BATCH_LINGER_MS,
            0,
            redtail_watcher::Config::MAX_BATCH_LINGER.as_millis() as u64,
        )?),
        read_buffer_bytes: 256 * 1024,
        poll_interval: env.millis(&vars::POLL_INTERVAL_MS, 10)?,
        rotate_wait: env.millis(&vars::ROTATE_WAIT_MS, 0)?,
        max_open_files: env.bounded(&vars::MAX_OPEN_FILES, 2, 1_000_000)? as usize,
        close_inactive: env.millis(&vars::CLOSE_INACTIVE_MS, 100)?,
        target,
        mode,
        shutdown_timeout: env.millis(&vars::SHUTDOWN_TIMEOUT_MS, 100)?,
        replica_acks: env.bounded(&vars::REPLICA_ACKS, 0, 64)? as u32,
        replica_ack_timeout: replica_ack_timeout(env)?,
        multiline: multiline(env, max_line_bytes)?,
    };
    config
        .validate()
        .map_err(|e| ConfigError(format!("redtail watch: {e}")))?;
    Ok(config)
}

/// `REDTAIL_REPLICA_ACK_TIMEOUT_MS`: a `WAIT` must end before the 5 s Redis response
/// timeout, or every shortfall would look like a dead connection.
fn replica_ack_timeout(env: &Env) -> Result<Duration, ConfigError> {
    let ms = env.bounded(&vars::REPLICA_ACK_TIMEOUT_MS, 10, 4000)?;
    Ok(Duration::from_millis(ms))
}

/// `REDTAIL_MULTILINE*`: each mistake named by the variable that holds it.
fn multiline(env: &Env, max_line_bytes: usize) -> Result<MultilineConfig, ConfigError> {
    let name = env.string(&vars::MULTILINE)?;
    let start = env.optional_string(&vars::MULTILINE_START);
    let mode = MultilineMode::parse(&name, start.as_deref()).map_err(|e| {
        let var = match e {
            MultilineError::UnknownMode(_) => vars::MULTILINE.name,
            MultilineError::MissingStart
            | MultilineError::UnusedStart
            | MultilineError::BadStart(_) => vars::MULTILINE_START.name,
        };
        let detail = match &e {
            MultilineError::UnknownMode(_) => {
                format!("expected off, java, python, go, indented or regex, got {name:?}")
            }
            MultilineError::MissingStart => {
                "required with REDTAIL_MULTILINE=regex (a regex matching the first line of an event)"
                    .to_string()
            }
            MultilineError::UnusedStart => format!(
                "only used with REDTAIL_MULTILINE=regex, but REDTAIL_MULTILINE is {:?}",
                name.trim()
            ),
            MultilineError::BadStart(why) => format!("not a valid regex ({why})"),
        };
        ConfigError(format!("{var}: {detail}"))
    })?;
    Ok(MultilineConfig {
        mode,
        timeout: env.millis(&vars::MULTILINE_TIMEOUT_MS, 1)?,
        max_lines: env.bounded(&vars::MULTILINE_MAX_LINES, 1, 1_000_000)? as usize,
        max_bytes: max_line_bytes,
    })
}

pub fn subscribe(env: &Env) -> Result<redtail_subscriber::Config, ConfigError> {
    let target = env.redis_target()?;
    let output_format = match env.choice(&vars::OUTPUT_FORMAT, &["udm", "raw"])? {
        "raw" => redtail_subscriber::OutputFormat::Raw,
        _ => redtail_subscriber::OutputFormat::Udm,
    };
    let output_path = match env.string(&vars::OUTPUT_PATH)?.as_str() {
        "-" => None,
        p => Some(std::path::PathBuf::from(p)),
    };
    let config = redtail_subscriber::Config {
        target,
        stream: env.string(&vars::STREAM)?,
        channel: env.string(&vars::CHANNEL)?,
        pubsub: pubsub(env)?,
        group: env.string(&vars::GROUP)?,
        consumer: env
            .optional_string(&vars::CONSUMER)
            .unwrap_or_else(host_name),
        output_format,
        output_path,
        claim_idle: env.millis(&vars::CLAIM_IDLE_MS, 10)?,
        batch_size: 512,
        block: Duration::from_secs(1),
        parse: env.parse(
            &vars::PARSE,
            "auto, json, logfmt, syslog, combined, text or regex",
        )?,
        parse_regex: env.optional_string(&vars::PARSE_REGEX),
        udm: redtail_subscriber::UdmOptions {
            vendor: env.optional_string(&vars::UDM_VENDOR),
            product: env.optional_string(&vars::UDM_PRODUCT),
            log_type: env.optional_string(&vars::UDM_LOG_TYPE),
            max_event_bytes: env.bounded(
                &vars::UDM_MAX_EVENT_BYTES,
                redtail_subscriber::UdmOptions::MIN_MAX_EVENT_BYTES as u64,
                64 << 20,
            )? as usize,
        },
        stream_refresh: env.millis(&vars::STREAM_REFRESH_MS, 100)?,
        sink: crate::secops_env::sink(env)?.map(Box::new),
        dead_consumer_idle: env.millis(&vars::DEAD_CONSUMER_IDLE_MS, 1000)?,
    };
    if config.parse == redtail_subscriber::ParseMode::Forced(redtail_subscriber::ParseFormat::Regex)
    {
        if let Err(e) = config.parser() {
            let detail = e.to_string();
            let detail = detail
                .strip_prefix("invalid subscriber configuration: the parse regex ")
                .unwrap_or(&detail);
            return Err(ConfigError(format!("REDTAIL_PARSE_REGEX: {detail}")));
        }
    }
    config
        .validate()
        .map_err(|e| ConfigError(format!("redtail subscribe: {e}")))?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watch_with(pairs: &[(&str, &str)]) -> Result<redtail_watcher::Config, String> {
        let env = Env::from_iter(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .map_err(|e| e.0)?;
        watch(&env).map_err(|e| e.0)
    }

    #[test]
    fn multiline_defaults_to_off_with_the_line_cap() {
        let c = watch_with(&[("REDTAIL_MAX_LINE_BYTES", "4096")]).unwrap();
        assert!(c.multiline.mode.is_off());
        assert_eq!(c.multiline.timeout, Duration::from_millis(1000));
        assert_eq!(c.multiline.max_lines, 500);
        assert_eq!(c.multiline.max_bytes, 4096);
        let c = watch_with(&[
            ("REDTAIL_MULTILINE", "regex"),
            ("REDTAIL_MULTILINE_START", r"^\d{4}-\d{2}-\d{2}"),
            ("REDTAIL_MULTILINE_TIMEOUT_MS", "250"),
            ("REDTAIL_MULTILINE_MAX_LINES", "20"),
        ])
        .unwrap();
        assert_eq!(c.multiline.mode.name(), "regex");
        assert_eq!(c.multiline.timeout, Duration::from_millis(250));
        assert_eq!(c.multiline.max_lines, 20);
    }

    #[test]
    fn multiline_mistakes_name_their_variable_in_one_line() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("REDTAIL_MULTILINE", "ruby")],
                "REDTAIL_MULTILINE: expected off, java, python, go, indented or regex, got \"ruby\"",
            ),
            (
                &[("REDTAIL_MULTILINE", "regex")],
                "REDTAIL_MULTILINE_START: required with REDTAIL_MULTILINE=regex (a regex matching the first line of an event)",
            ),
            (
                &[("REDTAIL_MULTILINE_START", "^x")],
                "REDTAIL_MULTILINE_START: only used with REDTAIL_MULTILINE=regex, but REDTAIL_MULTILINE is \"off\"",
            ),
            (
                &[
                    ("REDTAIL_MULTILINE", "regex"),
                    ("REDTAIL_MULTILINE_START", "(unclosed"),
                ],
                "REDTAIL_MULTILINE_START: not a valid regex (unclosed group)",
            ),
            (
                &[("REDTAIL_MULTILINE_MAX_LINES", "0")],
                "REDTAIL_MULTILINE_MAX_LINES: expected an integer from 1 to 1000000, got 0",
            ),
            (
                &[("REDTAIL_MULTILINE_TIMEOUT_MS", "0")],
                "REDTAIL_MULTILINE_TIMEOUT_MS: expected at least 1 milliseconds, got 0",
            ),
        ];
        for (pairs, want) in cases {
            assert_eq!(watch_with(pairs).unwrap_err(), *want);
        }
    }
}
