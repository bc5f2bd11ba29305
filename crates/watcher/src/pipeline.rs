//! publish → commit → checkpoint: the loop that owns the committed state.
//!
//! Invariant: an offset enters the checkpoint only after Redis acknowledged the
//! script call that stored the same offset in `redtail:offsets`. The checkpoint
//! may lag behind Redis (then the script skips the re-sent lines), never lead it.

use std::time::{Duration, Instant};

use redtail_bus::{Backoff, OutLine, PublishBatch, Publisher};
use redtail_checkpoint::{Checkpoint, FlushPolicy};
use redtail_tail::{Batch, TailItem};
use redtail_telemetry::readiness::Liveness;
use redtail_telemetry::shutdown::Shutdown;
use tokio::sync::mpsc;

use crate::drain::Drain;
use crate::health::RedisHealth;
use crate::state::CommitState;
use crate::writer::CheckpointWriter;
use crate::{Metrics, WatcherError};

pub(crate) fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

pub(crate) struct Pipeline {
    pub source: String,
    pub publisher: Publisher,
    /// Files the tailer finished whose checkpoint entries wait for a successor.
    pub finished: Vec<String>,
    /// Writes the checkpoint file in the background; `None` once finished.
    pub writer: Option<CheckpointWriter>,
    pub checkpoint: Checkpoint,
    pub policy: FlushPolicy,
    pub state: CommitState,
    pub metrics: Metrics,
    /// The one writer of `redis_up` and readiness "redis" (see `health.rs`).
    pub health: RedisHealth,
    /// Beaten at every step that shows progress (see [`Pipeline::run`]).
    pub liveness: Liveness,
    /// The SIGTERM drain: its deadline, and the switch that turns the reader to draining.
    pub drain: Drain,
    /// When Redis last answered on the publish connection; the idle probe runs when this
    /// is [`IDLE_PROBE_AFTER`] old.
    pub last_answer: Instant,
    /// `WAIT` for this many replicas after each batch before committing it locally; 0 = off.
    pub replica_acks: u32,
    pub replica_ack_timeout: Duration,
}

/// With nothing published for this long, the pipeline PINGs on the publish connection so
/// that `redis_up` and `/readyz` notice a Redis that went away while no line was written.
const IDLE_PROBE_AFTER: Duration = Duration::from_secs(1);

/// Why one publish attempt did not end in a commit.
enum Attempt {
    /// Redis refused or the connection failed.
    Redis(redtail_bus::BusError),
    /// The batch is in Redis but fewer than `replica_acks` replicas confirmed it.
    Replicas { acked: u64 },
}

impl Pipeline {
    /// Runs until the SIGTERM drain is done or out of time (Ok), or a non-retryable failure
    /// (Err).
    ///
    /// Liveness is progress, not a timer competing with work: every turn of this loop, every
    /// publish attempt and every retry sleep beats, so a long drain against a slow Redis
    /// stays alive, and only a loop that stops turning (a step with no timeout that never
    /// ends) goes stale. The 1 s tick keeps an idle loop turning.
    pub async fn run(
        &mut self,
        mut rx: mpsc::Receiver<TailItem>,
        shutdown: &Shutdown,
    ) -> Result<(), WatcherError> {
        let mut beat = tokio::time::interval(Duration::from_secs(1));
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.liveness.beat();
            let flush_at = self
                .policy
                .next_deadline()
                .map(tokio::time::Instant::from_std);
            let give_up_at = self.drain.deadline();
            tokio::select! {
                biased;
                _ = shutdown.wait(), if !self.drain.started() => self.drain.start(),
                _ = sleep_until_opt(give_up_at) => {
                    tracing::warn!(budget_ms = self.drain.budget().as_millis() as u64, "Shutdown drain out of time; the rest is read again after the restart.");
                    return Ok(());
                }
                item = rx.recv() => match item {
                    Some(item) => self.handle(item, shutdown).await?,
                    None if self.drain.started() => {
                        tracing::info!("Shutdown drain complete: everything the files held is published.");
                        return Ok(());
                    }
                    None => return Err(WatcherError::ReaderGone),
                },
                _ = sleep_until_opt(flush_at) => {}
                _ = beat.tick() => self.probe_if_idle(shutdown).await,
            }
            if self.policy.due(Instant::now()) {
                self.flush();
            }
        }
    }

    /// Nothing published for a while: PING on the publish connection, so that a Redis gone
    /// meanwhile shows in `redis_up` and `/readyz` before the next line does.
    async fn probe_if_idle(&mut self, shutdown: &Shutdown) {
        if self.drain.started() || self.last_answer.elapsed() < IDLE_PROBE_AFTER {
            return;
        }
        let pinged = tokio::select! {
            pinged = self.publisher.connection().ping() => pinged,
            _ = shutdown.wait() => return,
        };
        match pinged {
            Ok(()) => {
                self.last_answer = Instant::now();
                self.health.accepted();
            }
            Err(error) => self.health.unreachable(&error),
        }
    }

    async fn handle(&mut self, item: TailItem, shutdown: &Shutdown) -> Result<(), WatcherError> {
        match item {
            TailItem::Opened { id, path, offset } => {
                self.state.opened(&path, id, offset);
                self.state.update_gauges(&self.metrics);
                self.metrics.files_tracked.set(self.state.tracked() as i64);
                // Every file the tailer starts goes into the checkpoint, even at 0: if
                // it is rotated away while the watcher is down, only a checkpoint entry
                // lets the restart find it among the siblings and finish it. (A new
                // generation at 0 matters too: without it a restart would take the file
                // for generation 0, whose Redis offset would hide its lines.)
                self.checkpoint.commit(&id.to_string(), &path, offset);
                // Finished files are dropped only now that a newer file is recorded, so
                // the checkpoint never goes empty between a rotation and the next file.
                for finished in self.finished.drain(..) {
                    self.checkpoint.remove(&finished);
                }
                self.policy.note_committed(1);
            }
            TailItem::Lines(batch) => {
                if let Some(committed) = self.publish(&batch, shutdown).await? {
                    self.state.committed(&batch.path, batch.id, committed);
                    self.checkpoint
                        .commit(&batch.id.to_string(), &batch.path, committed);
                    self.policy.note_committed(batch.lines.len() as u64);
                }
            }
            TailItem::Finished { id, path, end } => {
                tracing::debug!(path = %path.display(), fid = %id, end, "File finished.");
                if self.state.finished(&path, id, &self.metrics) {
                    self.metrics.files_tracked.set(self.state.tracked() as i64);
                }
                // Removed from the checkpoint at the next Opened (see there): dropping
                // it now could leave an empty checkpoint if the watcher stops before the
                // next file is recorded, and a restart would then not look for that
                // file among the rotated siblings.
                self.finished.push(id.to_string());
            }
        }
        Ok(())
    }

    /// Publish one batch, retrying with backoff until Redis takes it.
    /// Returns the committed offset, or None when shutdown ran out of patience
    /// (the batch was not committed and is read again after the restart).
    async fn publish(
        &mut self,
        batch: &Batch,
        shutdown: &Shutdown,
    ) -> Result<Option<u64>, WatcherError> {
        let fid = batch.id.to_string();
        let path = batch.path.to_string_lossy();
        let lines: Vec<OutLine<'_>> = batch
            .lines
            .iter()
            .map(|l| OutLine {
                offset: l.offset,
                end: l.end,
                truncated: l.truncated,
                data: &batch.data[l.data.clone()],
            })
            .collect();
        let request = PublishBatch {
            source: &self.source,
            fid: &fid,
            path: &path,
            collected_us: chrono::Utc::now().timestamp_micros(),
            lines,
        };
        let mut backoff = Backoff::default();
        // After a WAIT shortfall the same batch is sent again: lines the script then skips
        // are not duplicates of anything, so they are not counted as such.
        let mut resend = false;
        loop {
            self.liveness.beat();
            let started = Instant::now();
            let attempt = self
                .drain
                .attempt(&mut self.publisher, &request, shutdown)
                .await;
            let Some(attempt) = attempt else {
                return Ok(None);
            };
            let failure = match attempt {
                Ok(outcome) => {
                    self.metrics
                        .publish_duration
                        .observe(started.elapsed().as_secs_f64());
                    self.metrics.batch_lines.observe(request.lines.len() as f64);
                    self.last_answer = Instant::now();
                    let skipped = (outcome.skipped as usize).min(request.lines.len());
                    let added_bytes: usize =
                        request.lines[skipped..].iter().map(|l| l.data.len()).sum();
                    self.metrics.lines_published.inc_by(outcome.added);
                    self.metrics.bytes_published.inc_by(added_bytes as u64);
                    if !resend {
                        self.metrics.duplicates_skipped.inc_by(outcome.skipped);
                        if let Some(error) = &outcome.trim_error {
                            // Published fine, but the stream is not being trimmed: say
                            // so once, count every time (memory will grow in Redis).
                            if self.metrics.trim_errors.get() == 0 {
                                tracing::warn!(%error, "Redis refused XTRIM; the stream is not trimmed (check the ACL).");
                            }
                            self.metrics.trim_errors.inc();
                        }
                    }
                    let waited = await_replicas(
                        &mut self.publisher,
                        &self.source,
                        self.replica_acks,
                        self.replica_ack_timeout,
                    )
                    .await;
                    match waited {
                        Ok(()) => {
                            self.health.accepted();
                            if backoff.attempts() > 0 {
                                tracing::info!(
                                    attempts = backoff.attempts(),
                                    "Publishing again after Redis trouble."
                                );
                            }
                            return Ok(Some(outcome.committed.max(batch.end())));
                        }
                        Err(failure) => failure,
                    }
                }
                Err(error) => Attempt::Redis(error),
            };
            match failure {
                Attempt::Redis(error) => {
                    self.metrics
                        .publish_errors
                        .with_label_values(&[error.reason()])
                        .inc();
                    self.health.refused(&error);
                    if !error.is_retryable() {
                        return Err(WatcherError::Redis(error));
                    }
                    if backoff.attempts() == 0 {
                        tracing::warn!(%error, reason = error.reason(), "Publishing failed; retrying with backoff.");
                    } else {
                        tracing::debug!(%error, attempt = backoff.attempts(), "Publishing failed again.");
                    }
                }
                Attempt::Replicas { acked } => {
                    self.metrics.replica_ack_failures.inc();
                    self.health.under_replicated(acked, self.replica_acks);
                    resend = true;
                    if backoff.attempts() == 0 {
                        tracing::warn!(
                            acked,
                            wanted = self.replica_acks,
                            "Too few replicas acknowledged the batch; not committing it, sending it again."
                        );
                    }
                }
            }
            let delay = backoff.next_delay();
            if !self.drain.retry_pause(delay, shutdown).await {
                tracing::warn!(
                    "Shutting down with a batch unpublished; it is read again after the restart."
                );
                return Ok(None);
            }
            self.liveness.beat();
        }
    }

    /// Hand the current state to the checkpoint writer (it writes only if
    /// something changed, off this loop, newest state wins).
    pub fn flush(&mut self) {
        if let Some(writer) = &self.writer {
            writer.request(&self.checkpoint);
        }
        self.policy.flushed(Instant::now());
    }

    /// Shutdown: write the final state and wait until it is on disk.
    pub async fn finish(&mut self) {
        // Finished files with no successor recorded yet: drop them only if something
        // else keeps the checkpoint non-empty (see `handle`).
        let finished = &self.finished;
        if self
            .checkpoint
            .files
            .keys()
            .any(|fid| !finished.contains(fid))
        {
            for finished in self.finished.drain(..) {
                self.checkpoint.remove(&finished);
            }
        }
        if let Some(writer) = self.writer.take() {
            writer.finish(&self.checkpoint).await;
        }
    }
}

/// `WAIT replica_acks timeout` after a batch (when configured). Redis replication is
/// asynchronous: without it, a batch acknowledged by a primary that fails before
/// replicating it is lost while the checkpoint already moved past it. With it, the batch
/// is committed locally only once that many replicas hold it; a shortfall sends the same
/// batch again (idempotent: on a primary that kept it, nothing is appended; on a promoted
/// replica that never got it, the missing lines are appended) and waits again.
async fn await_replicas(
    publisher: &mut Publisher,
    source: &str,
    replicas: u32,
    timeout: Duration,
) -> Result<(), Attempt> {
    if replicas == 0 {
        return Ok(());
    }
    match publisher.wait_replicas(source, replicas, timeout).await {
        Ok(acked) if acked >= u64::from(replicas) => Ok(()),
        Ok(acked) => Err(Attempt::Replicas { acked }),
        Err(error) => Err(Attempt::Redis(error)),
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
