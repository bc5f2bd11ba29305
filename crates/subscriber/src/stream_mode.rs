//! Stream mode: read a batch, write it, flush, then one XACK. At-least-once.
//!
//! While a backlog drains, the next read is already in flight (read ahead, see
//! [`StreamConsumer::read_ahead`]): Redis and the reply decoding overlap the writing. A stop
//! writes and acknowledges the batch read ahead as well, so nothing is left pending.
//!
//! The order is the whole guarantee: an entry is acknowledged only after its event reached
//! the kernel, so a crash at any point leaves it pending and it is read again (by this
//! consumer at restart, or claimed by another). A failed acknowledgement is retried before
//! anything new is read, so a Redis blip never causes a duplicate by itself.
//!
//! With a cluster target the same loop reads every per-source stream through a
//! [`MultiStreamConsumer`] (streams found through the registry set); each batch is
//! acknowledged on the stream it came from.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use redtail_bus::consumer::{
    AckInFlight, ConsumerReaper, GroupMonitor, MultiStreamConsumer, StreamBatch, StreamConsumer,
    StreamConsumerConfig,
};
use redtail_bus::Backoff;
use redtail_telemetry::readiness::Liveness;
use redtail_telemetry::shutdown::Shutdown;

use crate::health::RedisHealth;
use crate::pipeline::{Item, Pipeline};
use crate::reader::{settle, Reader};
use crate::timestamp;
use crate::udm::LineContext;
use crate::{Config, Metrics, SubscriberError};

/// How often the pending/lag gauges are refreshed: often enough for a dashboard, rarely
/// enough to cost Redis nothing.
const GAUGE_INTERVAL: Duration = Duration::from_secs(2);

/// `newest_us` value meaning "no event processed yet".
pub(crate) const NONE_YET: i64 = i64::MIN;

/// Cluster mode: pause after a sweep of every stream found nothing. Bounds the idle cost
/// (one non-blocking read per stream per pause) and the added latency alike.
const CLUSTER_IDLE_WAIT: Duration = Duration::from_millis(100);

pub(crate) async fn run(
    config: &Config,
    mut pipeline: Pipeline,
    metrics: Metrics,
    mut health: RedisHealth,
    liveness: Liveness,
    shutdown: Shutdown,
) -> Result<(), SubscriberError> {
    let consumer_config = StreamConsumerConfig {
        stream: config.stream.clone(),
        group: config.group.clone(),
        consumer: config.consumer.clone(),
        count: config.batch_size,
        block: config.block,
        claim_idle: config.claim_idle,
        claim_interval: config.claim_interval(),
    };
    // Cluster: the streams being read, for the pending gauge (None: the one stream).
    let cluster_streams = config
        .target
        .cluster
        .then(|| Arc::new(Mutex::new(Vec::<String>::new())));
    let mut consumer = if config.target.cluster {
        Reader::Many(MultiStreamConsumer::new(
            config.target.clone(),
            consumer_config,
            config.stream_refresh,
            CLUSTER_IDLE_WAIT,
        )?)
    } else {
        Reader::One(StreamConsumer::new(config.target.clone(), consumer_config)?.read_ahead(true))
    };
    let monitor = GroupMonitor::new(config.target.clone(), &config.stream, &config.group)?;
    // Event time (µs) of the newest event of the last batch, shared with the gauge task.
    let newest_us = Arc::new(AtomicI64::new(NONE_YET));
    let gauges = tokio::spawn(sample_gauges(
        monitor,
        cluster_streams.clone(),
        metrics.clone(),
        Arc::clone(&newest_us),
        shutdown.clone(),
    ));
    let reaper = ConsumerReaper::new(
        config.target.clone(),
        &config.group,
        &config.consumer,
        config.dead_consumer_idle,
    )?;
    let reaping = tokio::spawn(reap_dead_consumers(
        reaper,
        config.stream.clone(),
        cluster_streams.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    tracing::info!(
        stream = %config.stream,
        group = %config.group,
        consumer = %config.consumer,
        output = %config.output_description(),
        format = %config.output_format,
        "Consuming the stream."
    );

    let mut backoff = Backoff::default();
    // Ids written out but not yet acknowledged (the acknowledgement failed), and their stream.
    let mut unacked: Vec<String> = Vec::new();
    let mut unacked_stream = String::new();
    // The last batch's XACK, sent without waiting; settled after the next batch is written
    // (or before anything else touches Redis after a failed read).
    let mut in_flight: Option<(AckInFlight, Instant)> = None;
    let result = async {
        loop {
            liveness.beat();
            if !unacked.is_empty() {
                match consumer.ack(&unacked_stream, &unacked).await {
                    Ok(n) => {
                        metrics.acked.inc_by(n);
                        unacked.clear();
                        health.up();
                        backoff.reset();
                    }
                    Err(err) => {
                        health.down(err)?;
                        if pause(&mut backoff, &shutdown).await {
                            return Ok(());
                        }
                        continue;
                    }
                }
            }
            if in_flight.is_some() && !consumer.has_read_ahead() {
                // The next read is a round trip (it may block until `block` runs out): settle
                // the XACK first, so the counters are current and a failed one is retried
                // before anything new is read.
                if let Err((failed, stream, err)) =
                    settle(&mut consumer, &mut in_flight, &metrics).await
                {
                    unacked = failed;
                    unacked_stream = stream;
                    health.down(err)?;
                    if pause(&mut backoff, &shutdown).await {
                        return Ok(());
                    }
                    continue;
                }
            }
            if shutdown.is_triggered() {
                return Ok(());
            }
            let read = tokio::select! {
                biased;
                _ = shutdown.wait() => return Ok(()),
                read = consumer.next_batch() => read,
            };
            let batch = match read {
                Ok(batch) => {
                    health.up();
                    backoff.reset();
                    if let (Some(shared), Reader::Many(m)) = (&cluster_streams, &consumer) {
                        let mut known = shared.lock().unwrap_or_else(|e| e.into_inner());
                        if known.len() != m.stream_count() {
                            *known = m.streams();
                        }
                    }
                    batch
                }
                Err(err) => {
                    // A failed read may mean a broken connection, and the pending re-read
                    // that follows: a failed XACK in flight is retried before it, so its
                    // entries are not delivered twice.
                    if let Err(failed) = settle(&mut consumer, &mut in_flight, &metrics).await {
                        unacked = failed.0;
                        unacked_stream.clone_from(&failed.1);
                    }
                    health.down(err)?;
                    if pause(&mut backoff, &shutdown).await {
                        return Ok(());
                    }
                    continue;
                }
            };
            if batch.is_empty() {
                if let Err(failed) = settle(&mut consumer, &mut in_flight, &metrics).await {
                    unacked = failed.0;
                    unacked_stream.clone_from(&failed.1);
                    health.down(failed.2)?;
                    if pause(&mut backoff, &shutdown).await {
                        return Ok(());
                    }
                }
                continue;
            }
            if consumer.has_read_ahead() {
                // The read ahead is a spawned task, and a task spawned here runs only once
                // this one yields (tokio's LIFO slot), which writing a batch does not do
                // before its flush: the read went out after the batch was written, and a
                // drain waited a whole round trip per batch (seen with strace). Yield once
                // so that it is sent now, and Redis works while this batch is written.
                tokio::task::yield_now().await;
            }
            let started = Instant::now();
            write_batch(&mut pipeline, &batch, &metrics, &newest_us).await?;
            let mut ids = batch.ack_ids();
            // The previous batch's XACK has long been answered (it went out before this
            // batch was written). If it failed, both batches are acknowledged the awaited way.
            // In flight only in standalone mode, so both ids lists are of one stream.
            if let Err((mut failed, _, err)) = settle(&mut consumer, &mut in_flight, &metrics).await
            {
                failed.append(&mut ids);
                unacked = failed;
                unacked_stream.clone_from(&batch.stream);
                health.down(err)?;
                if pause(&mut backoff, &shutdown).await {
                    return Ok(());
                }
                continue;
            }
            match consumer.send_ack(ids) {
                Ok(ack) => {
                    in_flight = Some((ack, started));
                    continue;
                }
                Err(ids) => unacked = ids,
            }
            unacked_stream.clone_from(&batch.stream);
            match consumer.ack(&unacked_stream, &unacked).await {
                Ok(n) => {
                    metrics.acked.inc_by(n);
                    unacked.clear();
                    metrics
                        .batch_duration
                        .observe(started.elapsed().as_secs_f64());
                }
                // Kept in `unacked`; retried at the top of the loop after the backoff.
                Err(err) => {
                    health.down(err)?;
                    if pause(&mut backoff, &shutdown).await {
                        return Ok(());
                    }
                }
            }
        }
    }
    .await;

    gauges.abort();
    reaping.abort();
    if let Err((failed, stream, err)) = settle(&mut consumer, &mut in_flight, &metrics).await {
        tracing::debug!(error = %err, "The last XACK failed; trying once more.");
        unacked = failed;
        unacked_stream = stream;
    }
    if !unacked.is_empty() {
        // Shutting down with a written batch unacknowledged: one last try. If it fails the
        // entries stay pending and are read again (at-least-once), which is all we can do.
        match consumer.ack(&unacked_stream, &unacked).await {
            Ok(n) => {
                metrics.acked.inc_by(n);
                unacked.clear();
            }
            Err(err) => tracing::warn!(
                entries = unacked.len(),
                error = %err,
                "Could not acknowledge the last batch; it will be delivered again."
            ),
        }
    }
    let result = match result {
        // A clean stop with nothing left unacknowledged: the batch read ahead is written
        // and acknowledged too, as if it had been read before the signal.
        Ok(()) if unacked.is_empty() => {
            finish_read_ahead(&mut consumer, &mut pipeline, &metrics, &newest_us).await
        }
        other => other,
    };
    let flushed = pipeline.flush().await;
    result.and(flushed)
}

/// Writes and acknowledges the batch read ahead, if any, at shutdown. A failed read or
/// acknowledgement only leaves entries pending (read again at the next start).
async fn finish_read_ahead(
    consumer: &mut Reader,
    pipeline: &mut Pipeline,
    metrics: &Metrics,
    newest_us: &AtomicI64,
) -> Result<(), SubscriberError> {
    let Some(Ok(batch)) = consumer.finish_read_ahead().await else {
        return Ok(());
    };
    if batch.is_empty() {
        return Ok(());
    }
    write_batch(pipeline, &batch, metrics, newest_us).await?;
    let ids = batch.ack_ids();
    match consumer.ack(&batch.stream, &ids).await {
        Ok(n) => metrics.acked.inc_by(n),
        Err(err) => tracing::warn!(
            entries = ids.len(),
            error = %err,
            "Could not acknowledge the last batch; it will be delivered again."
        ),
    }
    Ok(())
}

/// Writes every entry of `batch`, then flushes. Any output error is fatal: the batch is
/// then not acknowledged.
async fn write_batch(
    pipeline: &mut Pipeline,
    batch: &StreamBatch,
    metrics: &Metrics,
    newest_us: &AtomicI64,
) -> Result<(), SubscriberError> {
    let ingested = Utc::now();
    let mut newest = None;
    for entry in &batch.entries {
        let collected = entry
            .collected_us
            .and_then(timestamp::from_micros)
            .or_else(|| timestamp::from_millis(entry.id_ms));
        let item = Item {
            line: entry.line.as_deref(),
            ctx: LineContext {
                source: entry.src.as_deref(),
                path: entry.path.as_deref(),
                offset: entry.off,
                file_id: entry.fid.as_deref(),
                stream_id: Some(&entry.id),
                truncated: entry.truncated,
                collected,
                extra: &entry.extra,
            },
            redelivered: entry.redelivered,
        };
        let event_time = pipeline.write(&item, ingested).await?;
        newest = newest.max(Some(event_time));
    }
    pipeline.flush().await?;
    if !batch.vanished.is_empty() {
        metrics.vanished_entries.inc_by(batch.vanished.len() as u64);
        tracing::warn!(
            entries = batch.vanished.len(),
            "Pending entries were trimmed from the stream before they could be processed."
        );
    }
    if let Some(newest) = newest {
        newest_us.store(newest.timestamp_micros(), Ordering::Relaxed);
    }
    Ok(())
}

/// Sleeps the next backoff delay; `true` if shutdown began meanwhile.
async fn pause(backoff: &mut Backoff, shutdown: &Shutdown) -> bool {
    let delay = backoff.next_delay();
    tokio::select! {
        _ = tokio::time::sleep(delay) => shutdown.is_triggered(),
        _ = shutdown.wait() => true,
    }
}

/// Every [`ConsumerReaper::interval`]: removes the group's consumers that are long idle and
/// hold nothing pending (pods of earlier rollouts), on every stream read (cluster: each
/// per-source stream). A failure (Redis down, an ACL without `EVALSHA`/`XINFO`) is logged
/// once per reason and retried at the next pass; it never touches readiness.
async fn reap_dead_consumers(
    mut reaper: ConsumerReaper,
    stream: String,
    cluster_streams: Option<Arc<Mutex<Vec<String>>>>,
    metrics: Metrics,
    shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(reaper.interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_failure: Option<&'static str> = None;
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        let streams = match &cluster_streams {
            None => vec![stream.clone()],
            Some(shared) => shared.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        };
        for stream in &streams {
            match reaper.reap(stream).await {
                Ok(removed) => {
                    last_failure = None;
                    if !removed.is_empty() {
                        metrics.dead_consumers_removed.inc_by(removed.len() as u64);
                        tracing::info!(%stream, consumers = ?removed, "Removed dead consumers (long idle, nothing pending).");
                    }
                }
                Err(error) => {
                    if last_failure != Some(error.reason()) {
                        tracing::warn!(%stream, %error, reason = error.reason(), "Could not remove dead consumers; retrying later.");
                    }
                    last_failure = Some(error.reason());
                    break;
                }
            }
        }
    }
}

/// Refreshes `pending_entries` and `lag_seconds` every [`GAUGE_INTERVAL`].
///
/// Lag is "now − the newest processed event's time" while the group has work left, and 0
/// once it is caught up (nothing pending, nothing undelivered): an idle but healthy pipeline
/// must not look further and further behind.
pub(crate) async fn sample_gauges(
    mut monitor: GroupMonitor,
    cluster_streams: Option<Arc<Mutex<Vec<String>>>>,
    metrics: Metrics,
    newest_us: Arc<AtomicI64>,
    shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(GAUGE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.wait() => return,
            _ = tick.tick() => {}
        }
        let pending = match &cluster_streams {
            None => monitor.info().await.map(|info| info.pending),
            Some(shared) => {
                let streams = shared.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let mut total = Ok(0u64);
                for stream in &streams {
                    match monitor.info_of(stream).await {
                        Ok(info) => total = total.map(|t| t + info.pending),
                        Err(err) => {
                            total = Err(err);
                            break;
                        }
                    }
                }
                total
            }
        };
        match pending {
            Ok(pending) => {
                metrics
                    .pending_entries
                    .set(i64::try_from(pending).unwrap_or(i64::MAX));
            }
            Err(err) => {
                // The main loop reports Redis trouble; here it only means a stale gauge.
                tracing::debug!(error = %err, "Could not read the group's statistics.");
            }
        }
        // INTERFACE.md: now − timestamp of the newest event processed. It grows on
        // an idle pipeline too; the alert rule pairs it with publishing activity.
        let newest = newest_us.load(Ordering::Relaxed);
        let lag = if newest == NONE_YET {
            0.0
        } else {
            let now = Utc::now().timestamp_micros();
            (now.saturating_sub(newest)).max(0) as f64 / 1e6
        };
        metrics.lag.set(lag);
    }
}
