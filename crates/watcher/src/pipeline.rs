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
use crate::handoff::Handoff;
use crate::health::RedisHealth;
use crate::read_timer::ReadTimer;
use crate::reader::RoomSignal;
use crate::state::CommitState;
use crate::writer::CheckpointWriter;
use crate::{Metrics, WatcherError};

pub(crate) fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

pub(crate) struct Pipeline {
    pub source: String,
    pub publisher: Publisher,
    /// Files whose content is gone for good: their Redis offsets are deleted after the
    /// next successful publish (hygiene; a failure only leaves a stale field).
    pub forget: Vec<String>,
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
    /// Told after each item taken from the reader (it may wait for room: `reader.rs`).
    pub room: RoomSignal,
    /// The reads made on this thread while the reader lingers (`handoff.rs`).
    pub handoff: Handoff,
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
        let mut read_timer = ReadTimer::new();
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.liveness.beat();
            let flush_at = self
                .policy
                .next_deadline()
                .map(tokio::time::Instant::from_std);
            let give_up_at = self.drain.deadline();
            // The reader lingers and left its next read to this thread: due then, once
            // everything it sent before is handled (it sends nothing while parked).
            let read_at = if rx.is_empty() {
                self.handoff.due()
            } else {
                None
            };
            // Not parked yet (or items still queued): its parking is what to wake for.
            let parked = self.handoff.parked_signal();
            tokio::select! {
                biased;
                _ = shutdown.wait(), if !self.drain.started() => self.drain.start(),
                _ = sleep_until_opt(give_up_at) => {
                    tracing::warn!(budget_ms = self.drain.budget().as_millis() as u64, "Shutdown drain out of time; the rest is read again after the restart.");
                    return Ok(());
                }
                item = rx.recv() => {
                    self.room.took_item();
                    match item {
                        Some(item) => self.dispatch_guarded(item, &mut rx, shutdown).await?,
                        None if self.drain.started() => {
                            tracing::info!("Shutdown drain complete: everything the files held is published.");
                            return Ok(());
                        }
                        None => return Err(WatcherError::ReaderGone),
                    }
                }
                _ = parked.notified(), if read_at.is_none() => {}
                _ = read_timer.wait_until_opt(read_at) => {
                    if let Some(item) = self.handoff.read() {
                        self.dispatch_guarded(item, &mut rx, shutdown).await?;
                    }
                }
                _ = sleep_until_opt(flush_at) => {}
                _ = beat.tick() => self.probe_if_idle(shutdown).await,
            }
            if self.policy.due(Instant::now()) {
                self.flush();
            }
        }
    }

    /// [`Pipeline::dispatch`], giving the reader its files back if Redis is slow
    /// ([`Handoff::hand_back_if_slow`]).
    async fn dispatch_guarded(
        &mut self,
        item: TailItem,
        rx: &mut mpsc::Receiver<TailItem>,
        shutdown: &Shutdown,
    ) -> Result<(), WatcherError> {
        let handoff = self.handoff.clone();
        handoff
            .hand_back_if_slow(self.dispatch(item, rx, shutdown))
            .await
    }

    /// One item from the reader, taken from the channel or read here (`handoff.rs`).
    async fn dispatch(
        &mut self,
        item: TailItem,
        rx: &mut mpsc::Receiver<TailItem>,
        shutdown: &Shutdown,
    ) -> Result<(), WatcherError> {
        match item {
            TailItem::Lines(batch) if self.windowed() => {
                self.publish_windowed(batch, rx, shutdown).await
            }
            item => self.handle(item, shutdown).await,
        }
    }

    /// Nothing published for a while: PING on the publish connection, so that a Redis gone
    /// meanwhile shows in `redis_up` and `/readyz` before the next line does.
    async fn probe_if_idle(&mut self, shutdown: &Shutdown) {
        if self.drain.started() || self.last_answer.elapsed() < IDLE_PROBE_AFTER {
            return;
        }
        // A PING to a Redis that froze blocks up to its response timeout: like a publish,
        // it gives the reader its files back if slow, or files rotated away and deleted
        // during the freeze would be lost (review: up to 17 % of a pub/sub run's lines,
        // with a DEBUG SLEEP timed to hit the PING).
        let handoff = self.handoff.clone();
        let ping = async {
            tokio::select! {
                pinged = self.publisher.connection().ping() => Some(pinged),
                _ = shutdown.wait() => None,
            }
        };
        let Some(pinged) = handoff.hand_back_if_slow(ping).await else {
            return;
        };
        match pinged {
            Ok(()) => {
                self.last_answer = Instant::now();
                self.health.accepted();
            }
            Err(error) => self.health.unreachable(&error),
        }
    }

    pub(crate) async fn handle(
        &mut self,
        item: TailItem,
        shutdown: &Shutdown,
    ) -> Result<(), WatcherError> {
        match item {
            TailItem::Opened {
                id,
                path,
                location,
                offset,
                check,
            } => {
                self.state.opened(&path, id, offset);
                self.state.update_gauges(&self.metrics);
                self.metrics.files_tracked.set(self.state.tracked() as i64);
                // Every file the tailer starts goes into the checkpoint, even at 0: if
                // it is rotated away while the watcher is down, only a checkpoint entry
                // lets the restart find it among the siblings and finish it. (A new
                // generation at 0 matters too: without it a restart would take the file
                // for generation 0, whose Redis offset would hide its lines.)
                let fid = id.to_string();
                if offset > 0 && !self.raise_offset(&fid, offset, shutdown).await? {
                    // Shutdown ran out of patience: not recorded; read again after restart.
                    return Ok(());
                }
                self.checkpoint
                    .record(&fid, &location, offset, None, Some(check));
                self.policy.note_committed(1);
            }
            TailItem::Lines(batch) => {
                if let Some(committed) = self.publish(&batch, shutdown).await? {
                    self.commit_lines(&batch, committed);
                    self.forget_gone().await;
                }
            }
            TailItem::Deleted { id } => {
                self.checkpoint.mark_deleted(&id.to_string());
                self.policy.note_committed(1);
            }
            TailItem::Finished {
                id,
                path,
                end,
                gone,
            } => {
                tracing::debug!(path = %path.display(), fid = %id, end, gone, "File finished.");
                if self.state.finished(&path, id, &self.metrics) {
                    self.metrics.files_tracked.set(self.state.tracked() as i64);
                }
                // Every line of it was handed out before this item, and the tailer
                // never hands this identity out again: its entry can go.
                let fid = id.to_string();
                self.checkpoint.remove(&fid);
                if gone {
                    self.forget.push(fid);
                }
                self.policy.note_committed(1);
            }
        }
        Ok(())
    }

    /// Redis acknowledged `batch` up to `committed`: record it for the checkpoint and gauges.
    pub(crate) fn commit_lines(&mut self, batch: &Batch, committed: u64) {
        self.state.committed(&batch.path, batch.id, committed);
        // The check describes the bytes before the batch's end; Redis may hold more (a
        // restart from an older checkpoint): then no check.
        let check = (committed == batch.end()).then_some(batch.check);
        self.checkpoint.record(
            &batch.id.to_string(),
            &batch.location,
            committed,
            Some(batch.size.max(committed)),
            check,
        );
        self.policy.note_committed(batch.lines.len() as u64);
    }

    /// Publish one batch, retrying with backoff until Redis takes it.
    /// Returns the committed offset, or None when shutdown ran out of patience
    /// (the batch was not committed and is read again after the restart).
    pub(crate) async fn publish(
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
                lines: l.lines,
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
                .attempt(
                    &mut self.publisher,
                    &request,
                    self.replica_acks,
                    self.replica_ack_timeout,
                    shutdown,
                )
                .await;
            let Some(attempt) = attempt else {
                return Ok(None);
            };
            let failure = match attempt {
                Ok((outcome, acked)) => {
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
                    match enough_replicas(acked, self.replica_acks) {
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

    /// Record in Redis that a file starts at `offset` (see [`TailItem::Opened`]), retrying
    /// with backoff like a batch. False: shutdown gave up first.
    async fn raise_offset(
        &mut self,
        fid: &str,
        offset: u64,
        shutdown: &Shutdown,
    ) -> Result<bool, WatcherError> {
        let mut backoff = Backoff::default();
        loop {
            match self.publisher.raise_offset(&self.source, fid, offset).await {
                Ok(()) => {
                    self.health.accepted();
                    return Ok(true);
                }
                Err(error) if error.is_retryable() => {
                    self.metrics
                        .publish_errors
                        .with_label_values(&[error.reason()])
                        .inc();
                    self.health.refused(&error);
                    if backoff.attempts() == 0 {
                        tracing::warn!(%error, fid, "Recording a start offset failed; retrying with backoff.");
                    }
                }
                Err(error) => return Err(WatcherError::Redis(error)),
            }
            if !self.drain.retry_pause(backoff.next_delay(), shutdown).await {
                return Ok(false);
            }
            self.liveness.beat();
        }
    }

    /// Delete the Redis offsets of contents that are gone (after a publish proved Redis
    /// answers). Best effort: a failure keeps them for the next try.
    async fn forget_gone(&mut self) {
        if self.forget.is_empty() {
            return;
        }
        match self.publisher.forget_all(&self.source, &self.forget).await {
            Ok(()) => self.forget.clear(),
            // Refused (an ACL without HDEL): the offsets only stay; do not ask again.
            Err(error) if !error.is_retryable() => {
                tracing::warn!(%error, "Redis refused HDEL of finished files' offsets; they stay in the offsets hash.");
                self.forget.clear();
            }
            Err(_) => {}
        }
    }

    /// Shutdown: write the final state and wait until it is on disk.
    pub async fn finish(&mut self) {
        if let Some(writer) = self.writer.take() {
            writer.finish(&self.checkpoint).await;
        }
    }
}

/// Whether the replicas that acknowledged a batch (`None`: not asked, `replica_acks` is 0)
/// are enough to commit it. Redis replication is asynchronous: without `WAIT`, a batch
/// acknowledged by a primary that fails before replicating it is lost while the checkpoint
/// already moved past it. With it, the batch is committed locally only once that many
/// replicas hold it; a shortfall sends the same batch again (idempotent: on a primary that
/// kept it, nothing is appended; on a promoted replica that never got it, the missing lines
/// are appended) and waits again.
fn enough_replicas(acked: Option<u64>, replica_acks: u32) -> Result<(), Attempt> {
    match acked {
        Some(acked) if acked < u64::from(replica_acks) => Err(Attempt::Replicas { acked }),
        _ => Ok(()),
    }
}

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
