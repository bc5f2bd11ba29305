//! Pub/sub mode: SUBSCRIBE, write what arrives, flush per burst. At-most-once: messages
//! published while we are not subscribed are lost (Redis keeps none), and there is nothing
//! to acknowledge.

use std::time::Instant;

use chrono::Utc;
use redtail_bus::consumer::{PubSubEvent, PubSubListener};
use redtail_telemetry::readiness::Liveness;
use redtail_telemetry::shutdown::Shutdown;

use crate::health::RedisHealth;
use crate::pipeline::{Item, Pipeline};
use crate::udm::LineContext;
use crate::{Config, Metrics, SubscriberError};

pub(crate) async fn run(
    config: &Config,
    mut pipeline: Pipeline,
    metrics: Metrics,
    mut health: RedisHealth,
    liveness: Liveness,
    shutdown: Shutdown,
) -> Result<(), SubscriberError> {
    let mut listener = PubSubListener::new(config.target.clone(), &config.channel)?;
    // Nothing is ever pending in pub/sub; export 0 rather than nothing.
    metrics.pending_entries.set(0);
    tracing::info!(
        channel = %config.channel,
        output = %config.output_description(),
        format = %config.output_format,
        "Subscribing (at-most-once: messages published while disconnected are lost)."
    );
    let result = async {
        loop {
            liveness.beat();
            let event = tokio::select! {
                biased;
                _ = shutdown.wait() => return Ok(()),
                event = listener.recv(config.batch_size) => event,
            };
            match event {
                // A full burst that nothing followed (quiet, or Redis gone) is written now.
                Ok(PubSubEvent::Subscribed) | Ok(PubSubEvent::Idle) => {
                    health.up();
                    pipeline.flush().await?;
                }
                Ok(PubSubEvent::Messages(messages)) => {
                    health.up();
                    let started = Instant::now();
                    let ingested = Utc::now();
                    let mut newest = None;
                    for message in &messages {
                        let item = Item {
                            line: Some(message),
                            ctx: LineContext::default(),
                            redelivered: false,
                        };
                        newest = newest.max(Some(pipeline.write(&item, ingested).await?));
                    }
                    // A full burst means more is already waiting: its bytes stay in the
                    // output buffer (written when full, 256 KiB) and the burst that catches up
                    // flushes (or the idle turn, or a lost connection, if nothing follows).
                    // Each flush of a file is a hop to tokio's blocking pool and back: one per
                    // burst of 512 was 15 % of a backlog drain's subscriber CPU. There is
                    // nothing to acknowledge here, so this moves no guarantee: a kill -9 loses
                    // the unflushed output either way (at-most-once).
                    if messages.len() < config.batch_size {
                        pipeline.flush().await?;
                    }
                    if let Some(newest) = newest {
                        // No backlog exists to be behind on: the lag is how old the newest
                        // message was when it arrived.
                        let lag = (ingested - newest).to_std().unwrap_or_default();
                        metrics.lag.set(lag.as_secs_f64());
                    }
                    metrics
                        .batch_duration
                        .observe(started.elapsed().as_secs_f64());
                }
                // The listener waits its own backoff before the next attempt.
                Err(err) => {
                    pipeline.flush().await?;
                    health.down(err)?
                }
            }
        }
    }
    .await;
    let flushed = pipeline.flush().await;
    result.and(flushed)
}
