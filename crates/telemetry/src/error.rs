//! The crate's error type.

/// Everything that can fail while setting up a process's telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `REDTAIL_LOG_FORMAT` held something other than `text` or `json`.
    #[error("unknown log format {0:?}: expected one of `text`, `json`")]
    InvalidLogFormat(String),
    /// The `RUST_LOG` directive string did not parse.
    #[error("invalid log filter {filter:?}: {message}")]
    InvalidLogFilter {
        /// The filter as given.
        filter: String,
        /// The parser's explanation.
        message: String,
    },
    /// A global tracing subscriber was already installed (init called twice).
    #[error("a global log subscriber is already installed: {0}")]
    SubscriberInstalled(String),
}

impl TelemetryError {
    /// A short, fixed label for metrics and log fields (never built from `Debug` output).
    pub fn reason(&self) -> &'static str {
        match self {
            TelemetryError::InvalidLogFormat(_) => "invalid_log_format",
            TelemetryError::InvalidLogFilter { .. } => "invalid_log_filter",
            TelemetryError::SubscriberInstalled(_) => "subscriber_installed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_distinct_and_messages_name_the_value() {
        let errors = [
            TelemetryError::InvalidLogFormat("xml".into()),
            TelemetryError::InvalidLogFilter {
                filter: "=[".into(),
                message: "bad".into(),
            },
            TelemetryError::SubscriberInstalled("twice".into()),
        ];
        let reasons: std::collections::BTreeSet<_> = errors.iter().map(|e| e.reason()).collect();
        assert_eq!(reasons.len(), errors.len());
        assert!(errors[0].to_string().contains("\"xml\""));
        assert!(errors[0].to_string().contains("`text`, `json`"));
    }
}
