//! The generator's metrics.

use prometheus::{IntCounter, IntGauge, Registry};
use redtail_telemetry::metrics::register;

/// Counters the generator updates as it writes.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `redtail_generator_lines_written_total`.
    pub lines_written: IntCounter,
    /// `redtail_generator_bytes_written_total`.
    pub bytes_written: IntCounter,
    /// `redtail_generator_rotations_total`.
    pub rotations: IntCounter,
    /// `redtail_generator_seq`: `seq` of the last line written, to compare with what arrives.
    pub seq: IntGauge,
}

impl Metrics {
    /// Registers the metrics in `registry` (or reuses them if already there).
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        Ok(Metrics {
            lines_written: register(
                registry,
                IntCounter::new(
                    "redtail_generator_lines_written_total",
                    "Lines appended to the log file.",
                )?,
            )?,
            bytes_written: register(
                registry,
                IntCounter::new(
                    "redtail_generator_bytes_written_total",
                    "Bytes appended to the log file, newlines included.",
                )?,
            )?,
            rotations: register(
                registry,
                IntCounter::new(
                    "redtail_generator_rotations_total",
                    "Times the log file was rotated by size.",
                )?,
            )?,
            seq: register(
                registry,
                IntGauge::new(
                    "redtail_generator_seq",
                    "Sequence number of the last line written.",
                )?,
            )?,
        })
    }
}
