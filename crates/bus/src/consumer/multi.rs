//! Cluster mode: one consumer group read across every per-source stream.
//!
//! In a cluster each watcher writes its own stream (`redtail:logs:{<source>}`, see
//! [`crate::keys`]), and one `XREADGROUP` cannot span slots. So this reader keeps one
//! [`StreamConsumer`] per stream, all on one shared cluster connection, and sweeps them in
//! turn with non-blocking reads:
//!
//! - the streams come from the registry set (`<prefix>:streams`) the watchers `SADD` into,
//!   re-read every `refresh_interval`: a new source is picked up without a restart, and its
//!   group is created from the start of its stream (`0`), so nothing it wrote before being
//!   found is skipped;
//! - several subscribers in one group share the work per entry (each stream's group hands an
//!   entry to one consumer), and each per-stream reader re-reads its own pending entries and
//!   claims those of dead consumers exactly as in standalone mode;
//! - a stream whose shard fails (failover in progress) is skipped for a backoff delay instead
//!   of stalling the others;
//! - when a whole sweep finds nothing, the reader sleeps `idle_wait` (a blocking read would
//!   hold up the node's shared connection for every other stream on that node).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::reply::StreamEntry;
use super::stream::{BatchOrigin, StreamBatch, StreamConsumer, StreamConsumerConfig};
use crate::keys::registry_key;
use crate::{Backoff, BusError, Connection, RedisTarget};

/// One per-stream reader and its own retry state.
struct Member {
    consumer: StreamConsumer,
    backoff: Backoff,
    /// Skip this stream until then (its shard failed).
    retry_at: Option<Instant>,
}

/// A consumer-group reader over every stream listed in the registry set.
pub struct MultiStreamConsumer {
    conn: Connection,
    registry: String,
    /// Template for the per-stream readers (`stream` is the prefix).
    template: StreamConsumerConfig,
    members: BTreeMap<String, Member>,
    /// Round-robin position: the stream after this key is read next.
    cursor: Option<String>,
    refresh_interval: Duration,
    next_refresh: Instant,
    idle_wait: Duration,
}

impl MultiStreamConsumer {
    /// `cfg.stream` is the stream prefix (`redtail:logs`); the registry is
    /// `<prefix>:streams`. `cfg.block` is ignored: reads never block.
    pub fn new(
        target: RedisTarget,
        cfg: StreamConsumerConfig,
        refresh_interval: Duration,
        idle_wait: Duration,
    ) -> Result<Self, BusError> {
        if cfg.count == 0 {
            return Err(BusError::Config("the read count must be at least 1".into()));
        }
        if refresh_interval.is_zero() {
            return Err(BusError::Config(
                "the stream refresh interval must be above 0".into(),
            ));
        }
        let template = StreamConsumerConfig {
            block: Duration::ZERO,
            ..cfg
        };
        Ok(Self {
            conn: Connection::new(target)?,
            registry: registry_key(&template.stream),
            template,
            members: BTreeMap::new(),
            cursor: None,
            refresh_interval,
            next_refresh: Instant::now(),
            idle_wait,
        })
    }

    /// The registry set this reader follows.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// How many streams are read now.
    pub fn stream_count(&self) -> usize {
        self.members.len()
    }

    /// The streams read now, sorted.
    pub fn streams(&self) -> Vec<String> {
        self.members.keys().cloned().collect()
    }

    /// The next non-empty batch of one stream, or an empty batch after a sweep of every stream
    /// found nothing (having waited `idle_wait`). An error only when no stream could be read
    /// at all in this sweep (the registry or every shard unreachable).
    pub async fn next_batch(&mut self) -> Result<StreamBatch, BusError> {
        if Instant::now() >= self.next_refresh {
            match self.refresh().await {
                Ok(()) => self.next_refresh = Instant::now() + self.refresh_interval,
                // With streams already known, reading them matters more than finding new
                // ones: retry the registry soon, keep reading.
                Err(err) if self.members.is_empty() => return Err(err),
                Err(err) => {
                    tracing::warn!(registry = %self.registry, error = %err, "Could not re-read the stream registry.");
                    self.next_refresh = Instant::now() + self.refresh_interval / 4;
                }
            }
        }
        let order = self.sweep_order();
        let mut last_error = None;
        let mut read_any = false;
        for key in order {
            let Some(member) = self.members.get_mut(&key) else {
                continue;
            };
            if member.retry_at.is_some_and(|at| Instant::now() < at) {
                continue;
            }
            self.cursor = Some(key.clone());
            match member.consumer.next_batch().await {
                Ok(batch) => {
                    read_any = true;
                    member.backoff.reset();
                    member.retry_at = None;
                    if !batch.is_empty() {
                        return Ok(batch);
                    }
                }
                Err(err) if !err.is_retryable() => return Err(err),
                Err(err) => {
                    if member.backoff.attempts() == 0 {
                        tracing::warn!(stream = %key, error = %err, "Reading a stream failed; skipping it for a while.");
                    }
                    member.retry_at = Some(Instant::now() + member.backoff.next_delay());
                    last_error = Some(err);
                }
            }
        }
        match last_error {
            Some(err) if !read_any => Err(err),
            _ => {
                tokio::time::sleep(self.idle_wait).await;
                Ok(StreamBatch {
                    stream: String::new(),
                    origin: BatchOrigin::New,
                    entries: Vec::<StreamEntry>::new(),
                    vanished: Vec::new(),
                })
            }
        }
    }

    /// Acknowledges `ids` on `stream` (the batch's [`StreamBatch::stream`]).
    pub async fn ack(&mut self, stream: &str, ids: &[String]) -> Result<u64, BusError> {
        match self.members.get_mut(stream) {
            Some(member) => member.consumer.ack(ids).await,
            // Not ours (cannot happen: members are never removed); nothing to acknowledge.
            None => Ok(0),
        }
    }

    /// Streams in read order: the one after the cursor first, wrapping around.
    fn sweep_order(&self) -> Vec<String> {
        let keys: Vec<String> = self.members.keys().cloned().collect();
        let start = match &self.cursor {
            Some(c) => keys.iter().position(|k| k > c).unwrap_or(0),
            None => 0,
        };
        keys[start..]
            .iter()
            .chain(&keys[..start])
            .cloned()
            .collect()
    }

    /// `SMEMBERS` of the registry; a reader for each stream not seen before. Streams are
    /// never dropped: one that disappears from the registry (lost in a failover before a
    /// watcher re-added it) may still hold entries.
    async fn refresh(&mut self) -> Result<(), BusError> {
        let mut conn = self.conn.get().await?;
        let members: Vec<String> = match redis::cmd("SMEMBERS")
            .arg(&self.registry)
            .query_async(&mut conn)
            .await
        {
            Ok(m) => m,
            Err(e) => return Err(self.conn.on_error(e.into())),
        };
        for stream in members {
            if self.members.contains_key(&stream) {
                continue;
            }
            let cfg = StreamConsumerConfig {
                stream: stream.clone(),
                ..self.template.clone()
            };
            let consumer = StreamConsumer::with_connection(self.conn.clone(), cfg)?;
            tracing::info!(%stream, "Found a new stream; reading it.");
            self.members.insert(
                stream,
                Member {
                    consumer,
                    backoff: Backoff::default(),
                    retry_at: None,
                },
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> StreamConsumerConfig {
        StreamConsumerConfig {
            stream: "redtail:logs".into(),
            group: "g".into(),
            consumer: "c".into(),
            count: 10,
            block: Duration::from_secs(1),
            claim_idle: Duration::from_secs(30),
            claim_interval: Duration::from_secs(15),
        }
    }

    fn cluster_target() -> RedisTarget {
        let mut t = RedisTarget::new("redis://127.0.0.1:1,redis://127.0.0.1:2");
        t.cluster = true;
        t
    }

    #[test]
    fn registry_follows_the_prefix_and_reads_never_block() {
        let m = MultiStreamConsumer::new(
            cluster_target(),
            cfg(),
            Duration::from_secs(5),
            Duration::from_millis(100),
        )
        .unwrap();
        assert_eq!(m.registry(), "redtail:logs:streams");
        assert_eq!(m.template.block, Duration::ZERO);
        assert!(m.streams().is_empty());
    }

    #[test]
    fn rejects_bad_settings() {
        let mut zero = cfg();
        zero.count = 0;
        assert!(MultiStreamConsumer::new(
            cluster_target(),
            zero,
            Duration::from_secs(5),
            Duration::ZERO
        )
        .is_err());
        assert!(
            MultiStreamConsumer::new(cluster_target(), cfg(), Duration::ZERO, Duration::ZERO)
                .is_err()
        );
    }

    #[test]
    fn sweep_starts_after_the_cursor_and_wraps() {
        let mut m = MultiStreamConsumer::new(
            cluster_target(),
            cfg(),
            Duration::from_secs(5),
            Duration::ZERO,
        )
        .unwrap();
        for key in ["a", "b", "c"] {
            let consumer = StreamConsumer::with_connection(
                m.conn.clone(),
                StreamConsumerConfig {
                    stream: key.into(),
                    ..m.template.clone()
                },
            )
            .unwrap();
            m.members.insert(
                key.to_string(),
                Member {
                    consumer,
                    backoff: Backoff::default(),
                    retry_at: None,
                },
            );
        }
        assert_eq!(m.sweep_order(), vec!["a", "b", "c"]);
        m.cursor = Some("b".into());
        assert_eq!(m.sweep_order(), vec!["c", "a", "b"]);
        m.cursor = Some("c".into());
        assert_eq!(m.sweep_order(), vec!["a", "b", "c"]);
    }
}
