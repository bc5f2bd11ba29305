//! redtail-watcher: the sidecar. Tails the log file(s), publishes every
//! complete line to Redis exactly once, and checkpoints what was committed.
//!
//! ```text
//! reader thread (tail)  ──bounded channel──▶  pipeline (publish → commit → checkpoint;
//!                                               redis_up/readiness, idle PING, liveness)
//!                                              gauges task (lag, checkpoint age)
//! ```
#![forbid(unsafe_code)]

mod config;
mod drain;
mod error;
mod events;
mod handoff;
mod health;
mod linger;
mod metrics;
mod pipeline;
mod read_timer;
mod reader;
mod state;
mod window;
mod writer;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus::IntGauge;
use redtail_bus::{Backoff, Connection, Publisher};
use redtail_checkpoint::{CheckpointStore, FlushPolicy, LoadNote};
use redtail_tail::{FileId, KnownFile, TailConfig, Tailer};
use redtail_telemetry::readiness::{Liveness, Readiness};
use redtail_telemetry::shutdown::Shutdown;
use tokio::sync::mpsc;

pub use config::Config;
pub use error::WatcherError;
pub use metrics::Metrics;

pub use drain::drain_budget;
use drain::Drain;
use health::RedisHealth;
use linger::BatchLimits;
use pipeline::{now_ms, Pipeline};
use reader::{ReadLimits, Reader, CHANNEL_DEPTH};
use state::CommitState;
use writer::{CheckpointWriter, Reporter};

/// Gauge-loop ticks (seconds) between two registry `SADD`s in cluster mode.
const REGISTER_EVERY: u64 = 5;

/// Readiness condition name (the "redis" one is written by [`RedisHealth`] alone).
const READY_CHECKPOINT: &str = "checkpoint";

/// Runs the watcher until `shutdown`: then it stops waiting for new data, publishes what
/// the files hold up to their current end (within [`drain_budget`]),
/// writes the checkpoint and returns Ok.
pub async fn run(
    config: Config,
    metrics: Metrics,
    redis_up: IntGauge,
    readiness: Readiness,
    liveness: Liveness,
    shutdown: Shutdown,
) -> Result<(), WatcherError> {
    config.validate()?;
    readiness.set_failing(READY_CHECKPOINT, "not loaded yet");
    let health = RedisHealth::new(redis_up, readiness.clone());

    let (mut store, checkpoint, note) = CheckpointStore::open(&config.checkpoint_path)?;
    log_load_note(&config, &note);
    if matches!(note, LoadNote::Fresh) {
        // Record at once that this source has started: a restart, even one before the first
        // line is published, is then no fresh start (`REDTAIL_START_AT`, and "rotated
        // siblings predate us", apply to the very first start only).
        store.save(&checkpoint)?;
    }
    let last_write = Arc::new(AtomicU64::new(now_ms()));
    readiness.set_ok(READY_CHECKPOINT);

    let events = Arc::new(events::WatcherEvents::new(metrics.clone()));
    let mut publisher =
        Publisher::new(Connection::new(config.target.clone())?, config.mode.clone());

    // Redis is the authoritative record of what was published: every file it knows
    // for this source joins the checkpoint's, each at the larger of the two offsets.
    let Some(redis_offsets) = fetch_offsets(
        &mut publisher,
        &config.source,
        &health,
        &liveness,
        &shutdown,
    )
    .await?
    else {
        return Ok(()); // shut down before Redis ever answered: nothing was read
    };
    let fresh_start =
        matches!(note, LoadNote::Fresh) && checkpoint.is_empty() && redis_offsets.is_empty();
    let known = known_files(&checkpoint, &redis_offsets);
    let tail_config = TailConfig {
        pattern: config.log_path.clone(),
        start_at: config.start_at,
        max_line_bytes: config.max_line_bytes,
        read_buffer_bytes: config.read_buffer_bytes,
        poll_interval: config.poll_interval,
        rotate_wait: config.rotate_wait,
        max_open_files: open_file_budget(config.max_open_files),
        close_inactive: config.close_inactive,
        birth_time: true,
        fresh_start,
        multiline: config.multiline.clone(),
    };
    let tailer = Tailer::new(tail_config, known, events)?;

    let state = CommitState::default();
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let reader = Reader::spawn(
        tailer,
        ReadLimits {
            batch: BatchLimits {
                max_lines: config.batch_max_lines,
                max_bytes: config.batch_max_bytes,
            },
            poll_interval: config.poll_interval,
            linger: config.batch_linger,
        },
        tx,
    )
    .map_err(WatcherError::Thread)?;

    let gauges = tokio::spawn(gauge_loop(
        config.clone(),
        state.clone(),
        metrics.clone(),
        last_write.clone(),
        shutdown.clone(),
    ));

    let writer = CheckpointWriter::spawn(
        store,
        checkpoint.clone(),
        Reporter {
            metrics: metrics.clone(),
            readiness: readiness.clone(),
            last_write: last_write.clone(),
        },
        config.checkpoint_interval,
    );
    let mut pipeline = Pipeline {
        source: config.source.clone(),
        publisher,
        forget: Vec::new(),
        writer: Some(writer),
        checkpoint,
        policy: FlushPolicy::new(config.checkpoint_every_lines, config.checkpoint_interval),
        state,
        metrics,
        health,
        liveness,
        drain: Drain::new(drain_budget(config.shutdown_timeout), reader.drain_switch()),
        last_answer: Instant::now(),
        replica_acks: config.replica_acks,
        replica_ack_timeout: config.replica_ack_timeout,
        room: reader.room_signal(),
        handoff: reader.handoff(),
    };
    tracing::info!(pattern = %config.log_path.display(), source = %config.source, redis = %config.target.redacted(), cluster = config.target.cluster, replica_acks = config.replica_acks, "Watching.");
    let result = pipeline.run(rx, &shutdown).await;
    // rx is gone: the reader thread's next send fails and it ends.
    reader.stop();
    if tokio::task::spawn_blocking(move || reader.join())
        .await
        .is_err()
    {
        tracing::error!("Joining the reader thread failed.");
    }
    pipeline.finish().await;
    gauges.abort();
    if result.is_ok() {
        tracing::info!("Watcher stopped; checkpoint written.");
    }
    result
}

fn log_load_note(config: &Config, note: &LoadNote) {
    let path = config.checkpoint_path.display();
    match note {
        LoadNote::Fresh => tracing::info!(%path, "No checkpoint yet; starting fresh."),
        LoadNote::Loaded { files } => tracing::info!(%path, files, "Checkpoint loaded."),
        LoadNote::RecoveredFromTemp { files } => {
            tracing::warn!(%path, files, "Checkpoint recovered from an interrupted write.")
        }
        LoadNote::SetAside { moved_to, error } => tracing::warn!(
            %path, moved_to = %moved_to.display(), %error,
            "Checkpoint unreadable; set aside and starting without it (Redis offsets still prevent duplicates)."
        ),
    }
}

/// What is known of this source: the checkpoint's files and Redis's, each at the larger
/// of the two offsets (a check or size recorded for a smaller offset is dropped or
/// raised accordingly).
fn known_files(
    checkpoint: &redtail_checkpoint::Checkpoint,
    redis: &[(String, u64)],
) -> Vec<KnownFile> {
    let mut known: BTreeMap<String, KnownFile> = BTreeMap::new();
    for (fid, entry) in &checkpoint.files {
        match fid.parse::<FileId>() {
            Ok(id) => {
                known.insert(
                    fid.clone(),
                    KnownFile {
                        id,
                        path: entry.path.clone(),
                        offset: entry.offset,
                        size: entry.size,
                        check: entry.check,
                        deleted: entry.deleted,
                    },
                );
            }
            Err(_) => tracing::warn!(
                fid,
                "Ignoring a checkpoint entry with an unreadable file id."
            ),
        }
    }
    for (fid, offset) in redis {
        match known.get_mut(fid) {
            Some(k) if *offset > k.offset => {
                tracing::info!(path = %k.path.display(), fid, checkpoint = k.offset, redis = offset, "Redis has more committed than the checkpoint; resuming from Redis.");
                k.offset = *offset;
                k.check = None;
                k.size = k.size.map(|s| s.max(*offset));
            }
            Some(_) => {}
            None => match fid.parse::<FileId>() {
                Ok(id) => {
                    known.insert(fid.clone(), KnownFile::offset_only(id, *offset));
                }
                Err(_) => {
                    tracing::warn!(fid, "Ignoring a Redis offset with an unreadable file id.")
                }
            },
        }
    }
    known.into_values().collect()
}

/// `wanted` files open at most, but never so many that the process runs out of
/// descriptors for its sockets, the directory listing and the admin server.
fn open_file_budget(wanted: usize) -> usize {
    const RESERVED: u64 = 64;
    let Some(limit) = soft_open_file_limit() else {
        return wanted;
    };
    let room = usize::try_from(limit.saturating_sub(RESERVED).max(2)).unwrap_or(usize::MAX);
    if wanted > room {
        tracing::warn!(
            wanted,
            limit,
            using = room,
            "REDTAIL_MAX_OPEN_FILES is above what the open-file limit leaves room for; using less."
        );
        return room;
    }
    wanted
}

/// The soft `RLIMIT_NOFILE`, from /proc (no unsafe code needed).
fn soft_open_file_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Register the stream (cluster) and read every Redis-side offset of the source, retrying until Redis
/// answers. None = shutdown first.
async fn fetch_offsets(
    publisher: &mut Publisher,
    source: &str,
    health: &RedisHealth,
    liveness: &Liveness,
    shutdown: &Shutdown,
) -> Result<Option<Vec<(String, u64)>>, WatcherError> {
    let mut backoff = Backoff::default();
    loop {
        liveness.beat();
        let attempt = async {
            // Cluster: make the stream findable before its first line (no-op otherwise).
            publisher.register(source).await?;
            publisher.source_offsets(source).await
        };
        let attempt = tokio::select! {
            attempt = attempt => attempt,
            _ = shutdown.wait() => return Ok(None),
        };
        match attempt {
            Ok(offsets) => {
                health.accepted();
                return Ok(Some(offsets));
            }
            Err(error) if error.is_retryable() => {
                health.unreachable(&error);
                if backoff.attempts() == 0 {
                    tracing::warn!(%error, "Redis not answering at start; retrying with backoff.");
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff.next_delay()) => {}
                    _ = shutdown.wait() => return Ok(None),
                }
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Every second: lag and committed gauges from the files' sizes and the checkpoint age. In
/// a cluster, also the stream's registry entry every [`REGISTER_EVERY`] ticks: a registry
/// set lost in a failover is rebuilt by the watchers. It does not touch `redis_up` or
/// readiness: those mean "batches are accepted", which only the pipeline knows.
async fn gauge_loop(
    config: Config,
    state: CommitState,
    metrics: Metrics,
    last_write: Arc<AtomicU64>,
    shutdown: Shutdown,
) {
    let mut registry = match config.target.cluster {
        false => None,
        true => match Connection::new(config.target.clone()) {
            Ok(conn) => Some(Publisher::new(conn, config.mode.clone())),
            Err(error) => {
                tracing::error!(%error, "Cannot build the registry connection.");
                None
            }
        },
    };
    let mut ticks: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        state.update_gauges(&metrics);
        let age_ms = now_ms().saturating_sub(last_write.load(Ordering::Relaxed));
        metrics.checkpoint_age_seconds.set(age_ms as f64 / 1000.0);
        ticks += 1;
        if let Some(registry) = registry
            .as_mut()
            .filter(|_| ticks.is_multiple_of(REGISTER_EVERY))
        {
            if let Err(error) = registry.register(&config.source).await {
                tracing::debug!(%error, "Refreshing the stream's registry entry failed; retrying.");
            }
        }
    }
}
