//! Pub/sub mode: several batches in flight.
//!
//! Why: a pub/sub drain is bound by the time Redis spends on each script call *plus* the
//! time it waits while the watcher turns one reply into the next request; with one batch
//! in flight that left Redis idle about a third of the time (0.49× the `PUBLISH` ceiling).
//! Here the next batches of the same file are sent while the oldest one runs, up to
//! [`IN_FLIGHT`] calls: on two shared cores the watcher's threads can be off the CPU for a
//! scheduler slice (a few ms) while Redis runs, and with only one call queued behind the
//! running one (~1.5 ms of work at 1 024 lines) Redis would run dry meanwhile.
//!
//! Why it stays exactly-once: each batch carries its predecessor's end as `after`, and the
//! script refuses it (writes nothing) unless the committed offset reached that end. So if
//! one fails, no batch behind it can land ahead of it and make its lines look committed:
//! the next one is refused, and so on down the window (each waits for an end that only the
//! one before it could commit). Anything but the happy path — an error, a refusal, a batch
//! that does not continue the same file — ends the window: what is in flight is awaited,
//! then the batches are sent again one at a time, in order, through [`Pipeline::publish`],
//! with its retries, backoff and shutdown handling, and the script skips whatever had landed.
//!
//! Stream mode does not use it: there Redis itself is the bound (busy ~90 % in a drain),
//! and one code path for the durable mode is worth more than a few per cent.

use std::collections::VecDeque;
use std::time::Instant;

use redtail_bus::{InFlight, Mode, OutLine, PublishBatch, PublishOutcome};
use redtail_tail::{Batch, TailItem};
use redtail_telemetry::shutdown::Shutdown;
use tokio::sync::mpsc;

use crate::pipeline::Pipeline;
use crate::WatcherError;

/// Batches chained in one window before the loop gets its turn again (its handoff timer,
/// its idle probe; the checkpoint flush and liveness are looked after here): at 1 024
/// lines a batch, about a quarter of a second of Redis work. Each end of a window lets
/// Redis run dry for one round trip.
const MAX_CHAIN: u32 = 256;

/// Most script calls in flight at once: ~6 ms of Redis work at 1 024 lines a batch. Memory:
/// each holds its batch (at most `REDTAIL_BATCH_MAX_LINES` lines) and its request.
const IN_FLIGHT: usize = 4;

/// A batch sent, and its call.
struct Sent {
    batch: Batch,
    call: InFlight,
    started: Instant,
}

impl Pipeline {
    /// Several in flight only where it pays and is simple: pub/sub mode, one Redis, no `WAIT`.
    pub(crate) fn windowed(&self) -> bool {
        matches!(self.publisher.mode(), Mode::PubSub { .. })
            && self.replica_acks == 0
            && !self.publisher.is_cluster()
    }

    /// Publishes `first` and, while it is in flight, each next batch the reader already has
    /// that continues the same file, up to [`IN_FLIGHT`] calls at once. Ends with every
    /// batch it took committed (or handed to the one-at-a-time path), and handles an item it
    /// took that was not such a batch.
    pub(crate) async fn publish_windowed(
        &mut self,
        first: Batch,
        rx: &mut mpsc::Receiver<TailItem>,
        shutdown: &Shutdown,
    ) -> Result<(), WatcherError> {
        let mut window: VecDeque<Sent> = VecDeque::with_capacity(IN_FLIGHT);
        // A batch taken from the reader that could not be sent: it goes the one-at-a-time
        // way after everything before it.
        let mut unsent = None;
        match self.start(&first, None).await {
            Some(call) => window.push_back(Sent {
                batch: first,
                call,
                started: Instant::now(),
            }),
            None => unsent = Some(first),
        }
        let mut leftover = None;
        let mut chained = 0;
        while let Some(oldest) = window.pop_front() {
            // Top up the window while the oldest call runs.
            while window.len() + 1 < IN_FLIGHT
                && unsent.is_none()
                && leftover.is_none()
                && chained < MAX_CHAIN
                && !shutdown.is_triggered()
            {
                let last = window.back().map_or(&oldest.batch, |s| &s.batch);
                let after = last.end();
                let taken = rx.try_recv();
                if taken.is_ok() {
                    self.room.took_item();
                }
                let next = match taken {
                    Ok(TailItem::Lines(b)) if continues(last, &b) => b,
                    Ok(other) => {
                        leftover = Some(other);
                        break;
                    }
                    Err(_) => break, // empty (or closed: run() sees that at its next recv)
                };
                chained += 1;
                match self.start(&next, Some(after)).await {
                    Some(call) => window.push_back(Sent {
                        batch: next,
                        call,
                        started: Instant::now(),
                    }),
                    None => unsent = Some(next),
                }
            }
            match self.publisher.outcome(oldest.call).await {
                Ok(outcome) if !outcome.refused => {
                    self.record(&oldest.batch, &outcome, oldest.started);
                    let committed = outcome.committed.max(oldest.batch.end());
                    self.commit_lines(&oldest.batch, committed);
                    // The checkpoint flush is the run loop's job too, but ending the window
                    // for it let Redis run dry once per flush: with the default of every
                    // 1 000 lines, after every window of 4 batches. The writer paces the
                    // writes themselves (`writer::MIN_WRITE_GAP`).
                    if self.policy.due(Instant::now()) {
                        self.flush();
                    }
                    self.liveness.beat();
                }
                failed => {
                    if let Err(error) = &failed {
                        self.metrics
                            .publish_errors
                            .with_label_values(&[error.reason()])
                            .inc();
                        self.health.refused(error);
                    }
                    // Every later call carries its predecessor's end: with this one not
                    // landed, none of them can have moved the offset (each is refused, or
                    // ran after this one did land after all). Their replies no longer
                    // matter: all of them go again, in order, after this one.
                    let mut again = vec![oldest.batch];
                    for sent in window.drain(..) {
                        let _ = self.publisher.outcome(sent.call).await;
                        again.push(sent.batch);
                    }
                    again.extend(unsent.take());
                    self.one_at_a_time(again, shutdown).await?;
                    break;
                }
            }
        }
        if let Some(batch) = unsent {
            self.one_at_a_time(vec![batch], shutdown).await?;
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

    /// The one-at-a-time path for `batches`, in order.
    async fn one_at_a_time(
        &mut self,
        batches: Vec<Batch>,
        shutdown: &Shutdown,
    ) -> Result<(), WatcherError> {
        for b in batches {
            if let Some(committed) = self.publish(&b, shutdown).await? {
                self.commit_lines(&b, committed);
            }
        }
        Ok(())
    }

    /// The metrics of an acknowledged batch (as [`Pipeline::publish`] records them).
    fn record(&mut self, batch: &Batch, outcome: &PublishOutcome, started: Instant) {
        // Redis answered: no idle probe is due (without this, pub/sub PINGed every ~2 s
        // while lines flowed).
        self.last_answer = Instant::now();
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
