//! The sink's metrics (names fixed by INTERFACE.md).

use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, Opts, Registry};
use redtail_telemetry::metrics::register;

/// Every `reason` of `redtail_subscriber_sink_retries_total`, started at 0 so `rate()` and
/// alerts see a series before the first failure.
pub const RETRY_REASONS: &[&str] = &[
    "unauthorized",
    "throttled",
    "server",
    "timeout",
    "connection",
    "token",
    "not_ready",
    "too_large",
    "rejected",
    "redis",
];

#[derive(Debug, Clone)]
pub struct SinkMetrics {
    /// Replies by HTTP status (`error` when none came: timeout, connection).
    pub requests: IntCounterVec,
    /// Entries SecOps accepted (2xx).
    pub entries: IntCounter,
    /// Uncompressed body bytes SecOps accepted.
    pub bytes: IntCounter,
    pub retries: IntCounterVec,
    pub deadletter: IntCounter,
    pub request_duration: Histogram,
    /// Age of the oldest entry held and not yet acknowledged (0 when none).
    pub oldest_unacked: Gauge,
}

impl SinkMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = SinkMetrics {
            requests: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "redtail_subscriber_sink_requests_total",
                        "Requests to the SecOps API by reply status (error: no reply).",
                    ),
                    &["code"],
                )?,
            )?,
            entries: register(
                registry,
                IntCounter::new(
                    "redtail_subscriber_sink_entries_total",
                    "Entries accepted by SecOps (2xx).",
                )?,
            )?,
            bytes: register(
                registry,
                IntCounter::new(
                    "redtail_subscriber_sink_bytes_total",
                    "Uncompressed request body bytes accepted by SecOps.",
                )?,
            )?,
            retries: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "redtail_subscriber_sink_retries_total",
                        "Requests that have to be sent again (or split), by reason.",
                    ),
                    &["reason"],
                )?,
            )?,
            deadletter: register(
                registry,
                IntCounter::new(
                    "redtail_subscriber_sink_deadletter_total",
                    "Entries written to the dead-letter stream instead of SecOps.",
                )?,
            )?,
            request_duration: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "redtail_subscriber_sink_request_duration_seconds",
                        "One request to the SecOps API, until its reply (or timeout).",
                    )
                    .buckets(vec![
                        0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                    ]),
                )?,
            )?,
            oldest_unacked: register(
                registry,
                Gauge::new(
                    "redtail_subscriber_sink_oldest_unacked_seconds",
                    "Age of the oldest entry the sink holds and has not acknowledged.",
                )?,
            )?,
        };
        // The statuses the retry matrix names, so the series exist before the first request
        // (dashboards and alerts select on them).
        for code in [
            "200", "400", "401", "403", "404", "408", "413", "429", "500", "503", "error",
        ] {
            m.requests.with_label_values(&[code]);
        }
        for reason in RETRY_REASONS {
            m.retries.with_label_values(&[reason]);
        }
        Ok(m)
    }
}
