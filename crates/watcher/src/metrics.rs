//! The watcher's Prometheus metrics (names fixed by INTERFACE.md).

use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};
use redtail_tail::LossReason;
use redtail_telemetry::metrics::register;

/// Every counter and gauge the watcher exports. Cheap to clone (shared handles).
#[derive(Clone)]
pub struct Metrics {
    pub lines_published: IntCounter,
    pub bytes_published: IntCounter,
    pub lag_bytes: IntGaugeVec,
    pub committed_offset: IntGaugeVec,
    pub checkpoint_age_seconds: prometheus::Gauge,
    pub checkpoint_writes: IntCounter,
    pub checkpoint_errors: IntCounter,
    pub publish_duration: Histogram,
    pub publish_errors: IntCounterVec,
    pub duplicates_skipped: IntCounter,
    pub trim_errors: IntCounter,
    pub rotations: IntCounter,
    pub truncations: IntCounter,
    pub oversized_lines: IntCounter,
    pub files_lost: IntCounterVec,
    pub lost_bytes: IntCounter,
    pub descriptor_pressure: IntCounter,
    pub compressed_skipped: IntCounter,
    pub read_errors: IntCounter,
    pub watch_fallbacks: IntCounter,
    pub files_tracked: IntGauge,
    pub batch_lines: Histogram,
    pub replica_ack_failures: IntCounter,
}

impl Metrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let metrics = Self::register_all(registry)?;
        for reason in redtail_bus::BusError::REASONS {
            metrics.publish_errors.with_label_values(&[reason]);
        }
        Ok(metrics)
    }

    fn register_all(registry: &Registry) -> Result<Self, prometheus::Error> {
        let counter = |name: &str, help: &str| register(registry, IntCounter::new(name, help)?);
        Ok(Self {
            lines_published: counter(
                "redtail_watcher_lines_published_total",
                "Lines acknowledged by Redis (published now, not counting idempotent skips).",
            )?,
            bytes_published: counter(
                "redtail_watcher_bytes_published_total",
                "Line bytes acknowledged by Redis.",
            )?,
            lag_bytes: register(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "redtail_watcher_lag_bytes",
                        "Bytes present in the file but not yet published (file size - committed offset).",
                    ),
                    &["path"],
                )?,
            )?,
            committed_offset: register(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "redtail_watcher_committed_offset_bytes",
                        "Offset published to Redis and committed, for the file now at this path.",
                    ),
                    &["path"],
                )?,
            )?,
            checkpoint_age_seconds: register(
                registry,
                prometheus::Gauge::new(
                    "redtail_watcher_checkpoint_age_seconds",
                    "Seconds since the checkpoint file was last written (or confirmed current) successfully.",
                )?,
            )?,
            checkpoint_writes: counter(
                "redtail_watcher_checkpoint_writes_total",
                "Checkpoint files written.",
            )?,
            checkpoint_errors: counter(
                "redtail_watcher_checkpoint_errors_total",
                "Failed checkpoint writes (publishing goes on; Redis offsets still prevent duplicates).",
            )?,
            publish_duration: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "redtail_watcher_publish_duration_seconds",
                        "One batch round trip to Redis (successful attempts).",
                    )
                    .buckets(exponential_buckets(0.0001, 2.0, 18)?),
                )?,
            )?,
            publish_errors: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "redtail_watcher_publish_errors_total",
                        "Failed publish attempts, by reason.",
                    ),
                    &["reason"],
                )?,
            )?,
            duplicates_skipped: counter(
                "redtail_watcher_duplicates_skipped_total",
                "Lines Redis already had (idempotent skip after a retry or restart).",
            )?,
            trim_errors: counter(
                "redtail_watcher_trim_errors_total",
                "Batches published whose stream trim (XTRIM MAXLEN ~) Redis refused.",
            )?,
            rotations: counter(
                "redtail_watcher_rotations_total",
                "Files followed through rotation (rename, delete and re-create).",
            )?,
            truncations: counter(
                "redtail_watcher_truncations_total",
                "Files found truncated (copy-and-truncate) and restarted at offset 0.",
            )?,
            oversized_lines: counter(
                "redtail_watcher_oversized_lines_total",
                "Lines cut at REDTAIL_MAX_LINE_BYTES.",
            )?,
            files_lost: {
                let vec = register(
                    registry,
                    IntCounterVec::new(
                        Opts::new(
                            "redtail_watcher_files_lost_total",
                            "Files with bytes that can no longer be read (deleted or truncated before they were read, or compressed), by reason.",
                        ),
                        &["reason"],
                    )?,
                )?;
                for reason in [LossReason::Deleted, LossReason::Truncated, LossReason::Compressed] {
                    vec.with_label_values(&[reason.as_str()]);
                }
                vec
            },
            lost_bytes: counter(
                "redtail_watcher_lost_bytes_total",
                "Bytes that can no longer be read (the sum over redtail_watcher_files_lost_total).",
            )?,
            descriptor_pressure: counter(
                "redtail_watcher_descriptor_pressure_total",
                "Opens deferred for want of file descriptors (REDTAIL_MAX_OPEN_FILES or the process limit); retried.",
            )?,
            compressed_skipped: counter(
                "redtail_watcher_compressed_rotations_total",
                "Compressed rotations (app.log.2.gz) seen; they are not read.",
            )?,
            read_errors: counter(
                "redtail_watcher_read_errors_total",
                "Errors reading log files (retried at the next poll).",
            )?,
            watch_fallbacks: counter(
                "redtail_watcher_watch_fallbacks_total",
                "Times file notifications (inotify) could not be set up and the watcher fell back to polling.",
            )?,
            files_tracked: register(
                registry,
                IntGauge::new(
                    "redtail_watcher_files_tracked",
                    "Files the watcher is reading now.",
                )?,
            )?,
            replica_ack_failures: counter(
                "redtail_watcher_replica_ack_failures_total",
                "Batches that fewer than REDTAIL_REPLICA_ACKS replicas acknowledged in time (WAIT shortfall or error); the batch is sent again and not committed until they do.",
            )?,
            batch_lines: register(
                registry,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "redtail_watcher_batch_lines",
                        "Lines per published batch.",
                    )
                    .buckets(exponential_buckets(1.0, 2.0, 12)?),
                )?,
            )?,
        })
    }
}
