//! Pub/sub mode: two batches in flight.
//!
//! Why: a pub/sub drain is bound by the time Redis spends on each script call *plus* the
//! time it waits while the watcher turns one reply into the next request; with one batch
//! in flight that left Redis idle about a third of the time (0.49× the `PUBLISH` ceiling).
//! Here the next batch of the same file is sent while the previous one runs.
//!
//! Why it stays exactly-once: the second batch carries the first one's end as `after`,
//! and the script refuses it (writes nothing) unless the committed offset reached that
//! end. So if the first fails, the second cannot land ahead of it and make its lines look
//! committed. Anything but the happy path — an error, a refusal, a batch that does not
//! continue the same file — ends the window: what is in flight is awaited, then the
//! batches are sent again one at a time through [`Pipeline::publish`], with its retries,
//! backoff and shutdown handling, and the script skips whatever had landed.
//!
//! Stream mode does not use it: there Redis itself is the bound (busy ~90 % in a drain),
//! and one code path for the durable mode is worth more than a few per cent.

use std::time::Instant;

use redtail_bus::{InFlight, Mode, OutLine, PublishBatch, PublishOutcome};
use redtail_tail::{Batch, TailItem};
use redtail_telemetry::shutdown::Shutdown;
use tokio::sync::mpsc;

use crate::pipeline::Pipeline;
use crate::WatcherError;

/// Batches chained in one window before the loop looks at its timers again (checkpoint
/// flush, liveness): at 1 024 lines a batch, well under a second of work.
const MAX_CHAIN: u32 = 64;

impl Pipeline {
    /// Two in flight only where it pays and is simple: pub/sub mode, one Redis, no `WAIT`.
    pub(crate) fn windowed(&self) -> bool {
        matches!(self.publisher.mode(), Mode::PubSub { .. })
            && self.replica_acks == 0
            && !self.publisher.is_cluster()
    }

    /// Publishes `first` and, while it is in flight, each next batch the reader already has
    /// that continues the same file. Ends with every batch it took committed (or handed to
    /// the one-at-a-time path), and handles an item it took that was not such a batch.
    pub(crate) async fn publish_windowed(
        &mut self,
        first: Batch,
        rx: &mut mpsc::Receiver<TailItem>,
        shutdown: &Shutdown,
    ) -> Result<(), WatcherError> {
        let mut current = first;
        let mut started = Instant::now();
        let Some(mut call) = self.start(&current, None).await else {
            return self.one_at_a_time(current, None, shutdown).await;
        };
        let mut leftover = None;
        let mut chained = 0;
        loop {
            let mut next = None;
            if chained < MAX_CHAIN && !shutdown.is_triggered() && !self.policy.due(Instant::now()) {
                match rx.try_recv() {
                    Ok(TailItem::Lines(b)) if continues(&current, &b) => next = Some(b),
                    Ok(other) => leftover = Some(other),
                    Err(_) => {} // empty (or closed: run() sees that at its next recv)
                }
            }
            let next_started = Instant::now();
            let next_call = match &next {
                Some(b) => self.start(b, Some(current.end())).await,
                None => None,
            };
            match self.publisher.outcome(call).await {
                Ok(outcome) if !outcome.refused => {
                    self.record(&current, &outcome, started);
                    self.commit_lines(&current, outcome.committed.max(current.end()));
                }
                failed => {
                    if let Err(error) = &failed {
                        self.metrics
                            .publish_errors
                            .with_label_values(&[error.reason()])
                            .inc();
                        self.health.refused(error);
                    }
                    if let Some(c) = next_call {
                        // Its fate no longer matters: it is sent again below, after `current`.
                        let _ = self.publisher.outcome(c).await;
                    }
                    self.one_at_a_time(current, next, shutdown).await?;
                    break;
                }
            }
            match (next, next_call) {
                (Some(b), Some(c)) => {
                    current = b;
                    call = c;
                    started = next_started;
                    chained += 1;
                }
                (Some(b), None) => {
                    self.one_at_a_time(b, None, shutdown).await?;
                    break;
                }
                (None, _) => break,
            }
        }
        match leftover {
            Some(item) => self.handle(item, shutdown).await,
            None => Ok(()),
        }
    }

    /// Sends `batch` without waiting; `None` when it could not be sent (the caller then
    /// publishes it one at a time, which retries).
    async fn start(&mut self, batch: &Batch, after: Option<u64>) -> Option<InFlight> {
        let fid = batch.id.to_string();
        let path = batch.path.to_string_lossy();
        let request = request(&self.source, &fid, &path, batch);
        self.publisher.start(&request, after).await.ok()
    }

    /// The one-at-a-time path for `batch`, then `then`.
    async fn one_at_a_time(
        &mut self,
        batch: Batch,
        then: Option<Batch>,
        shutdown: &Shutdown,
    ) -> Result<(), WatcherError> {
        for b in std::iter::once(batch).chain(then) {
            if let Some(committed) = self.publish(&b, shutdown).await? {
                self.commit_lines(&b, committed);
            }
        }
        Ok(())
    }

    /// The metrics of an acknowledged batch (as [`Pipeline::publish`] records them).
    fn record(&self, batch: &Batch, outcome: &PublishOutcome, started: Instant) {
        self.metrics
            .publish_duration
            .observe(started.elapsed().as_secs_f64());
        self.metrics.batch_lines.observe(batch.lines.len() as f64);
        self.health.accepted();
        let skipped = (outcome.skipped as usize).min(batch.lines.len());
        let added_bytes: usize = batch.lines[skipped..].iter().map(|l| l.data.len()).sum();
        self.metrics.lines_published.inc_by(outcome.added);
        self.metrics.bytes_published.inc_by(added_bytes as u64);
        self.metrics.duplicates_skipped.inc_by(outcome.skipped);
    }
}

/// `next` holds the lines right after `current`'s in the same file.
fn continues(current: &Batch, next: &Batch) -> bool {
    next.id == current.id && next.lines.first().map(|l| l.offset) == Some(current.end())
}

fn request<'a>(source: &'a str, fid: &'a str, path: &'a str, batch: &'a Batch) -> PublishBatch<'a> {
    PublishBatch {
        source,
        fid,
        path,
        collected_us: chrono::Utc::now().timestamp_micros(),
        lines: batch
            .lines
            .iter()
            .map(|l| OutLine {
                offset: l.offset,
                end: l.end,
                truncated: l.truncated,
                lines: 1,
                data: &batch.data[l.data.clone()],
            })
            .collect(),
    }
}
