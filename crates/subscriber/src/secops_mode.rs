//! `REDTAIL_SINK=secops`: the stream-mode read loop hands entries to the SecOps sink, which
//! acknowledges them itself once SecOps accepted them (see `redtail_secops`).
//!
//! Kept apart from `stream_mode` on purpose: the file output acknowledges per read, the
//! sink per sealed batch (after a 2xx), and mixing both in one loop would blur the one
//! invariant each relies on.

use std::sync::atomic::AtomicI64;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use prometheus::IntGauge;
use redtail_bus::consumer::{GroupMonitor, StreamConsumer, StreamConsumerConfig, StreamEntry};
use redtail_bus::Backoff;
use redtail_secops::{EventRenderer, Plumbing, SecopsConfig, Sink, Source};
use redtail_telemetry::readiness::{Liveness, Readiness};
use redtail_telemetry::shutdown::Shutdown;
use serde_json::Value;

use crate::health::RedisHealth;
use crate::udm::{render, LineContext, Options, Parser};
use crate::{Config, Metrics, SubscriberError};

/// The subscriber's parsing, as the sink needs it. Deterministic: the "ingested" time of an
/// event is its collection time, never the clock, so a resend renders the same bytes.
struct UdmRenderer {
    parser: Parser,
    options: Options,
}

impl UdmRenderer {
    fn context<'a>(entry: &'a StreamEntry, collected: DateTime<Utc>) -> LineContext<'a> {
        LineContext {
            source: entry.src.as_deref(),
            path: entry.path.as_deref(),
            offset: entry.off,
            file_id: entry.fid.as_deref(),
            stream_id: Some(&entry.id),
            truncated: entry.truncated,
            collected: Some(collected),
            extra: &entry.extra,
        }
    }
}

impl EventRenderer for UdmRenderer {
    fn line_time(&self, entry: &StreamEntry) -> Option<DateTime<Utc>> {
        let collected = redtail_secops::envelope::collection_time(entry);
        let line = entry.line.as_deref()?;
        crate::udm::line_time(&self.parser, line, collected)
    }

    fn udm(&self, entry: &StreamEntry, collected: DateTime<Utc>) -> Value {
        let ctx = Self::context(entry, collected).to_parse(entry.line.is_some());
        let mut buf = Vec::new();
        render(
            &self.parser,
            entry.line.as_deref(),
            ctx,
            &self.options,
            collected,
            &mut buf,
        );
        // `render` writes one JSON object (and a newline); it always parses.
        serde_json::from_slice(&buf).unwrap_or(Value::Null)
    }
}

pub(crate) async fn run(
    config: &Config,
    sink_config: SecopsConfig,
    metrics: Metrics,
    redis_up: IntGauge,
    readiness: Readiness,
    liveness: Liveness,
    shutdown: Shutdown,
) -> Result<(), SubscriberError> {
    let mut health = RedisHealth::new(
        redis_up,
        readiness.clone(),
        metrics.redis_errors.clone(),
        config.target.redacted(),
    );
    let api = sink_config.api;
    let mut sink = Sink::new(
        sink_config,
        Source {
            target: config.target.clone(),
            stream: config.stream.clone(),
            group: config.group.clone(),
            consumer: config.consumer.clone(),
            claim_idle: config.claim_idle,
        },
        Arc::new(UdmRenderer {
            parser: config.parser()?,
            options: config.udm.clone(),
        }),
        metrics.sink.clone(),
        Plumbing {
            readiness,
            liveness: liveness.clone(),
            shutdown: shutdown.clone(),
        },
    )?;
    if !sink.start().await? {
        return Ok(());
    }
    let mut consumer = StreamConsumer::new(
        config.target.clone(),
        StreamConsumerConfig {
            stream: config.stream.clone(),
            group: config.group.clone(),
            consumer: config.consumer.clone(),
            count: config.batch_size,
            block: config.block,
            claim_idle: config.claim_idle,
            claim_interval: config.claim_interval(),
        },
    )?;
    // The pending gauge as in file mode; lag stays 0 here (the sink's own gauge,
    // `redtail_subscriber_sink_oldest_unacked_seconds`, says how far behind it is).
    let gauges = tokio::spawn(crate::stream_mode::sample_gauges(
        GroupMonitor::new(config.target.clone(), &config.stream, &config.group)?,
        None,
        metrics.clone(),
        Arc::new(AtomicI64::new(crate::stream_mode::NONE_YET)),
        shutdown.clone(),
    ));
    tracing::info!(
        stream = %config.stream,
        group = %config.group,
        consumer = %config.consumer,
        %api,
        "Delivering the stream to Google SecOps."
    );
    let mut backoff = Backoff::default();
    loop {
        liveness.beat();
        if shutdown.is_triggered() {
            break;
        }
        let read = tokio::select! {
            biased;
            _ = shutdown.wait() => break,
            read = consumer.next_batch() => read,
        };
        match read {
            Ok(batch) => {
                health.up();
                backoff.reset();
                let redelivered = batch.entries.iter().filter(|e| e.redelivered).count();
                metrics.redeliveries.inc_by(redelivered as u64);
                if !batch.is_empty() {
                    sink.offer(batch).await?;
                }
            }
            Err(err) => {
                health.down(err)?;
                let delay = backoff.next_delay();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = shutdown.wait() => break,
                }
            }
        }
        sink.tick().await?;
    }
    gauges.abort();
    // Entries of an unsent or unfinished batch stay pending; the next run resends the
    // recorded batch unchanged and batches the rest anew.
    tracing::info!("Subscriber stopped.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use redtail_secops::envelope::Envelope;
    use redtail_secops::{Api, CredentialsSource};

    /// A resend is only absorbed by SecOps if it is the same bytes: rendering the same entry
    /// twice (fresh maps, fresh hasher seeds) must give the same fragment in every API.
    #[test]
    fn rendering_is_deterministic() {
        let renderer = UdmRenderer {
            parser: Parser::new(redtail_parse::ParseMode::Auto, None).expect("auto parser"),
            options: Options::default(),
        };
        let entry = StreamEntry {
            id: "1700000000000-7".into(),
            id_ms: 1_700_000_000_000,
            line: Some(
                br#"{"timestamp":"2023-11-14T22:13:19.5Z","level":"WARNING","message":"GET /a 200 3ms","seq":7,"service":"app","host":"h","k1":1,"k2":[1,2],"k3":{"z":1,"a":2},"user":"bob"}"#
                    .to_vec(),
            ),
            src: Some("pod-a".into()),
            path: Some("/var/log/app/app.log".into()),
            off: Some(700),
            fid: Some("f1".into()),
            collected_us: Some(1_700_000_000_123_456),
            ..StreamEntry::default()
        };
        for api in [Api::Logs, Api::Events, Api::Legacy] {
            let mut cfg = SecopsConfig::new(
                api,
                "https://h",
                CredentialsSource::Metadata("http://m".into()),
            );
            cfg.log_type = Some("JSON".into());
            let envelope = Envelope::new(&cfg);
            let first = envelope.fragment(&entry, &renderer).expect("renders");
            for _ in 0..20 {
                assert_eq!(
                    envelope.fragment(&entry, &renderer).expect("renders"),
                    first,
                    "{api}"
                );
            }
        }
        let t = renderer.line_time(&entry).expect("the line's time");
        assert_eq!(t.timestamp_millis(), 1_699_999_999_500);
    }
}
