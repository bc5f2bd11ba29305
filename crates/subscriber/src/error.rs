//! Errors that end `redtail subscribe`. Redis trouble is not among them unless it cannot be
//! retried (bad credentials): the loops retry everything else with backoff.

use redtail_bus::BusError;

#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    /// A configuration value is unusable; found before any socket or file is opened.
    #[error("invalid subscriber configuration: {0}")]
    Config(String),
    /// A Redis failure that retrying cannot fix (authentication, TLS material).
    #[error("{0}")]
    Bus(#[from] BusError),
    /// Opening or writing the output failed. Fatal by design: what was not written is not
    /// acknowledged, and continuing would only pile up entries we cannot deliver.
    #[error("output {target}: {source}")]
    Output {
        target: String,
        #[source]
        source: std::io::Error,
    },
    #[error("registering metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The SecOps sink cannot go on (bad credentials, the startup check refused).
    #[error("{0}")]
    Sink(#[from] redtail_secops::SecopsError),
}

impl SubscriberError {
    /// A bounded label for metrics and exit reporting.
    pub fn reason(&self) -> &'static str {
        match self {
            SubscriberError::Config(_) => "config",
            SubscriberError::Bus(e) => e.reason(),
            SubscriberError::Output { .. } => "output",
            SubscriberError::Metrics(_) => "metrics",
            SubscriberError::Sink(e) => e.reason(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_labels() {
        assert_eq!(SubscriberError::Config("x".into()).reason(), "config");
        let out = SubscriberError::Output {
            target: "stdout".into(),
            source: std::io::Error::other("full"),
        };
        assert_eq!(out.reason(), "output");
        assert!(out.to_string().contains("stdout"));
        assert_eq!(
            SubscriberError::Bus(BusError::Config("bad".into())).reason(),
            "config"
        );
    }
}
