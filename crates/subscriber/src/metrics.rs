//! The subscriber's metrics (names fixed by the interface; see INTERFACE.md).

use prometheus::{
    Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
use redtail_telemetry::metrics::register;

/// Handles to every subscriber metric. Cloning shares the series.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// Events written out (and, in stream mode, then acknowledged).
    pub lines_received: IntCounter,
    /// Lines that were not what they were declared or looked like, by `format`.
    pub parse_errors: IntCounterVec,
    /// Events written out, by `format` and UDM `event_type`.
    pub events: IntCounterVec,
    /// Events cut at `REDTAIL_UDM_MAX_EVENT_BYTES`.
    pub events_cut: IntCounter,
    /// Ingested time − the line's own timestamp, for lines that carry one.
    pub end_to_end_latency: Histogram,
    /// now − timestamp of the newest event processed; 0 when the group is caught up.
    pub lag: Gauge,
    /// Entries delivered to the group and not acknowledged (all consumers).
    pub pending_entries: IntGauge,
    /// Entries processed more than once (own pending re-read, or claimed).
    pub redeliveries: IntCounter,
    /// Entries acknowledged (XACK answered with that many).
    pub acked: IntCounter,
    /// One batch: from the read returning to its XACK answered (stream) or flush (pub/sub).
    pub batch_duration: Histogram,
    /// Failed Redis round trips by reason.
    pub redis_errors: IntCounterVec,
    /// Pending entries whose content was trimmed away before they were processed.
    pub vanished_entries: IntCounter,
    /// `redtail_subscriber_sink_*` of the SecOps sink (registered always, so the series exist).
    pub sink: redtail_secops::SinkMetrics,
    /// Consumers removed from the group: long idle, nothing pending (earlier pods).
    pub dead_consumers_removed: IntCounter,
}

impl Metrics {
    /// Registers (or finds, see `redtail_telemetry::metrics::register`) every metric.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(Metrics {
            lines_received: register(
                registry,
                IntCounter::new(
                    "redtail_subscriber_lines_received_total",
                    "Events written out.",
                )?,
            )?,
            parse_errors: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "redtail_subscriber_parse_errors_total",
                        "Lines that were not what they were declared or looked like (broken JSON, a forced format that does not match, invalid UTF-8), by parser; written with a parse-error marker.",
                    ),
                    &["format"],
                )?,
            )?,
            events: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "redtail_subscriber_events_total",
                        "Events written out, by parser and UDM event type.",
                    ),
                    &["format", "event_type"],
                )?,
            )?,
            events_cut: register(
                registry,
                IntCounter::new(
                    "redtail_subscriber_events_cut_total",
                    "UDM events cut at REDTAIL_UDM_MAX_EVENT_BYTES (flagged in additional.event_cut).",
                )?,
            )?,
            end_to_end_latency: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "redtail_subscriber_end_to_end_latency_seconds",
                        "Time from the line's own timestamp to its ingestion by the subscriber.",
                    )
                    .buckets(latency_buckets()),
                )?,
            )?,
            lag: register(
                registry,
                Gauge::new(
                    "redtail_subscriber_lag_seconds",
                    "Now minus the timestamp of the newest event processed; 0 when caught up.",
                )?,
            )?,
            pending_entries: register(
                registry,
                IntGauge::new(
                    "redtail_subscriber_pending_entries",
                    "Entries delivered to the consumer group but not acknowledged.",
                )?,
            )?,
            redeliveries: register(
                registry,
                IntCounter::new(
                    "redtail_subscriber_redeliveries_total",
                    "Entries processed more than once (own pending re-read or claimed from another consumer).",
                )?,
            )?,
            acked: register(
                registry,
                IntCounter::new(
                    "redtail_subscriber_acked_total",
                    "Stream entries acknowledged.",
                )?,
            )?,
            batch_duration: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "redtail_subscriber_batch_duration_seconds",
                        "One batch from read to acknowledgement (stream) or flush (pub/sub).",
                    )
                    .buckets(batch_buckets()),
                )?,
            )?,
            redis_errors: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "redtail_subscriber_redis_errors_total",
                        "Failed Redis round trips of the subscriber, by reason.",
                    ),
                    &["reason"],
                )?,
            )?,
            vanished_entries: register(
                registry,
                IntCounter::new(
                    "redtail_subscriber_vanished_entries_total",
                    "Pending entries trimmed or deleted from the stream before they were processed.",
                )?,
            )?,
            sink: redtail_secops::SinkMetrics::register(registry)?,
            dead_consumers_removed: register(
                registry,
                IntCounter::new(
                    "redtail_subscriber_dead_consumers_removed_total",
                    "Consumers removed from the group after REDTAIL_DEAD_CONSUMER_IDLE_MS idle with nothing pending.",
                )?,
            )?,
        })
    }
}

/// 18 exponential buckets from 0.5 ms to exactly 60 s (factor ≈ 1.99): sub-millisecond
/// loopback latency and minute-long outages land in distinct buckets.
fn latency_buckets() -> Vec<f64> {
    exponential_between(0.0005, 60.0, 18)
}

/// 0.1 ms to 10 s: a batch is a read, a write and an XACK.
fn batch_buckets() -> Vec<f64> {
    exponential_between(0.0001, 10.0, 16)
}

fn exponential_between(first: f64, last: f64, count: usize) -> Vec<f64> {
    let factor = (last / first).powf(1.0 / (count - 1) as f64);
    let mut buckets: Vec<f64> = (0..count).map(|i| first * factor.powi(i as i32)).collect();
    // Pin the ends exactly, so the bucket labels read 0.0005 and 60 rather than 59.99999.
    buckets[0] = first;
    buckets[count - 1] = last;
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus::Encoder;

    #[test]
    fn buckets_span_the_promised_range() {
        let b = latency_buckets();
        assert_eq!(b.first(), Some(&0.0005));
        assert_eq!(b.last(), Some(&60.0));
        assert!(b.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn registers_every_name_twice_without_error() {
        let registry = Registry::new();
        let m = Metrics::register(&registry).expect("first");
        let again = Metrics::register(&registry).expect("second (demo shares a registry)");
        m.lines_received.inc();
        again.lines_received.inc();
        m.end_to_end_latency.observe(0.01);
        m.redis_errors.with_label_values(&["connect"]).inc();
        let mut out = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut out)
            .expect("encode");
        let text = String::from_utf8(out).expect("utf8");
        for name in [
            "redtail_subscriber_lines_received_total 2",
            "redtail_subscriber_end_to_end_latency_seconds_bucket{le=\"60\"}",
            "redtail_subscriber_lag_seconds",
            "redtail_subscriber_pending_entries",
            "redtail_subscriber_redeliveries_total",
            "redtail_subscriber_acked_total",
            "redtail_subscriber_batch_duration_seconds",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
    }
}
