//! The process's own logs: a global `tracing` subscriber writing to stderr.
//!
//! Stdout is left alone because `redtail subscribe` writes its events there. JSON output puts
//! event fields at the top level (`flatten_event`) so log pipelines can index them directly.

use std::io::IsTerminal;
use std::str::FromStr;

use tracing_subscriber::fmt::time::SystemTime;
use tracing_subscriber::EnvFilter;

use crate::TelemetryError;

/// Shape of the process's own log lines (`REDTAIL_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines; coloured only when stderr is a terminal.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl FromStr for LogFormat {
    type Err = TelemetryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(TelemetryError::InvalidLogFormat(other.to_string())),
        }
    }
}

/// Parses a `RUST_LOG`-style directive string, so a typo is reported instead of ignored.
fn parse_filter(filter: &str) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::builder()
        .parse(filter)
        .map_err(|err| TelemetryError::InvalidLogFilter {
            filter: filter.to_string(),
            message: err.to_string(),
        })
}

/// Installs the global subscriber on stderr. `filter` is the `RUST_LOG` value (the binary
/// passes `"info"` when unset). Fails on a bad filter or if a subscriber is already installed.
pub fn init(format: LogFormat, filter: &str) -> Result<(), TelemetryError> {
    let filter = parse_filter(filter)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // SystemTime renders RFC 3339 UTC with microseconds, e.g. 2026-11-23T23:10:01.123456Z.
        .with_timer(SystemTime);
    let installed = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    installed.map_err(|err| TelemetryError::SubscriberInstalled(err.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_parses_and_lists_allowed_values() {
        assert_eq!("text".parse::<LogFormat>().unwrap(), LogFormat::Text);
        assert_eq!("json".parse::<LogFormat>().unwrap(), LogFormat::Json);
        let err = "JSON".parse::<LogFormat>().unwrap_err();
        assert!(err.to_string().contains("text"), "{err}");
        assert!(err.to_string().contains("json"), "{err}");
    }

    #[test]
    fn filters_are_validated() {
        assert!(parse_filter("info").is_ok());
        assert!(parse_filter("warn,redtail_watcher=debug").is_ok());
        let err = parse_filter("redtail=[").unwrap_err();
        assert_eq!(err.reason(), "invalid_log_filter");
    }

    #[test]
    fn init_rejects_a_bad_filter_and_a_second_install() {
        assert!(matches!(
            init(LogFormat::Json, "info,=[bad"),
            Err(TelemetryError::InvalidLogFilter { .. })
        ));
        // The first successful init in this test binary wins; a second one must fail cleanly.
        let first = init(LogFormat::Json, "info");
        let second = init(LogFormat::Text, "info");
        assert!(first.is_ok());
        assert!(matches!(
            second,
            Err(TelemetryError::SubscriberInstalled(_))
        ));
    }
}
