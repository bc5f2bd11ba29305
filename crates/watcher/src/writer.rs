//! Checkpoint writes off the publish path.
//!
//! A checkpoint write is two fsyncs (file, directory): a few milliseconds on a
//! real disk, during which nothing would be sent to Redis if the publish loop
//! wrote it itself (measured: it cut the backlog drain by 3-4x and put 100 ms
//! into the p99 at 10 000 lines/s). So the loop hands the latest state to this
//! task and moves on; states that arrive while a write is running replace each
//! other, and only the newest is written. Safe because the checkpoint may lag
//! Redis (the publish script skips what Redis already has), never lead it —
//! and every state handed over here holds only acknowledged offsets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use redtail_checkpoint::{Checkpoint, CheckpointError, CheckpointStore};
use redtail_telemetry::readiness::Readiness;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::pipeline::now_ms;
use crate::Metrics;

/// Where write results go: metrics, readiness and the age gauge's clock.
pub(crate) struct Reporter {
    pub metrics: Metrics,
    pub readiness: Readiness,
    pub last_write: Arc<AtomicU64>,
}

impl Reporter {
    fn report(&self, result: &Result<bool, CheckpointError>) {
        match result {
            Ok(written) => {
                if *written {
                    self.metrics.checkpoint_writes.inc();
                    self.last_write.store(now_ms(), Ordering::Relaxed);
                }
                self.readiness.set_ok("checkpoint");
            }
            Err(error) => {
                self.metrics.checkpoint_errors.inc();
                tracing::warn!(%error, "Writing the checkpoint failed; publishing goes on, retrying.");
                self.readiness
                    .set_failing("checkpoint", format!("write failed: {error}"));
            }
        }
    }
}

/// The state to write, and whether it is the last one (shutdown).
type Request = (Checkpoint, bool);

pub(crate) struct CheckpointWriter {
    latest: watch::Sender<Request>,
    task: JoinHandle<()>,
}

impl CheckpointWriter {
    /// `retry`: how soon a failed write is tried again when no newer state comes.
    pub fn spawn(
        store: CheckpointStore,
        initial: Checkpoint,
        reporter: Reporter,
        retry: Duration,
    ) -> Self {
        let (latest, rx) = watch::channel((initial, false));
        let task = tokio::spawn(write_loop(store, rx, reporter, retry));
        Self { latest, task }
    }

    /// Ask for `state` to be written soon (replacing any state not yet written).
    pub fn request(&self, state: &Checkpoint) {
        self.latest.send_replace((state.clone(), false));
    }

    /// Write `state` now and wait for the writer to finish (shutdown).
    pub async fn finish(self, state: &Checkpoint) {
        self.latest.send_replace((state.clone(), true));
        if self.task.await.is_err() {
            tracing::error!("The checkpoint writer task failed.");
        }
    }
}

/// Shortest time from the start of one write to the start of the next. The flush policy
/// asks for a write every `REDTAIL_CHECKPOINT_EVERY_LINES` lines, which in a backlog drain
/// is hundreds of times a second: each write is a hop to the blocking pool, two fsyncs and
/// their I/O, and at that pace they held the pub/sub drain at ~700 k lines/s where it ran
/// at ~900 k/s with a write per window. States asked for meanwhile are merged, as while a
/// write runs, so the checkpoint lags Redis by at most this long's lines more than the
/// policy says. A shutdown's last write does not wait.
pub(crate) const MIN_WRITE_GAP: Duration = Duration::from_millis(100);

async fn write_loop(
    store: CheckpointStore,
    mut rx: watch::Receiver<Request>,
    reporter: Reporter,
    retry: Duration,
) {
    let mut store = Some(store);
    let mut failed = false;
    // A state came in during the gap after the last write: write it without waiting.
    let mut pending = false;
    loop {
        if !pending {
            let retry_due = async {
                if failed {
                    tokio::time::sleep(retry).await
                } else {
                    std::future::pending().await
                }
            };
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return; // writer dropped without finish(): nothing more to write
                    }
                }
                _ = retry_due => {}
            }
        }
        let started = tokio::time::Instant::now();
        let (state, last) = rx.borrow_and_update().clone();
        let Some(mut s) = store.take() else { return };
        // fsync blocks: keep it off the runtime's worker threads.
        let joined = tokio::task::spawn_blocking(move || {
            let result = s.save(&state);
            (s, result)
        })
        .await;
        match joined {
            Ok((s, result)) => {
                failed = result.is_err();
                reporter.report(&result);
                store = Some(s);
            }
            Err(_) => {
                tracing::error!(
                    "The checkpoint write panicked; the checkpoint is no longer written."
                );
                reporter
                    .readiness
                    .set_failing("checkpoint", "checkpoint writer crashed");
                return;
            }
        }
        if last {
            return;
        }
        // A state that came during the write is unseen: the first `changed()` below returns
        // at once and marks it pending again.
        pending = false;
        let next_at = started + MIN_WRITE_GAP;
        loop {
            tokio::select! {
                biased;
                changed = rx.changed() => {
                    if changed.is_err() {
                        break; // dropped: what is pending is written, then the loop ends
                    }
                    pending = true;
                    if rx.borrow().1 {
                        break; // shutdown's last state: now
                    }
                }
                _ = tokio::time::sleep_until(next_at) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use redtail_checkpoint::CheckpointStore;

    use super::*;

    fn state(offset: u64) -> Checkpoint {
        let mut c = Checkpoint::default();
        c.commit("1:2", Path::new("/var/log/app/app.log"), offset);
        c
    }

    fn offset_on_disk(path: &Path) -> u64 {
        let (_, loaded, _) = CheckpointStore::open(path).expect("reopen");
        loaded.get("1:2").map_or(0, |f| f.offset)
    }

    /// States asked for faster than MIN_WRITE_GAP are merged into one write per gap, the
    /// newest one; shutdown's last state is written at once, not after the gap.
    #[tokio::test(start_paused = true)]
    async fn writes_are_paced_and_the_last_state_is_not_delayed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("checkpoint.json");
        let (store, initial, _) = CheckpointStore::open(&path).expect("open");
        let registry = prometheus::Registry::new();
        let metrics = Metrics::register(&registry).expect("metrics");
        let reporter = Reporter {
            metrics: metrics.clone(),
            readiness: Readiness::default(),
            last_write: Arc::default(),
        };
        let writer = CheckpointWriter::spawn(store, initial, reporter, Duration::from_secs(1));
        // A lost state fails the test rather than hanging it.
        let written = |n: u64| {
            let metrics = metrics.clone();
            async move {
                let wait = async {
                    while metrics.checkpoint_writes.get() < n {
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                };
                tokio::time::timeout(Duration::from_secs(5), wait)
                    .await
                    .unwrap_or_else(|_| panic!("write {n} never came"));
            }
        };
        let t0 = tokio::time::Instant::now();
        writer.request(&state(10));
        written(1).await;
        // Fifty states within one gap: one more write, of the newest, after the gap.
        for i in 1..=50u64 {
            writer.request(&state(10 + i));
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        written(2).await;
        assert!(
            t0.elapsed() >= MIN_WRITE_GAP,
            "the second write waited for the gap"
        );
        assert_eq!(metrics.checkpoint_writes.get(), 2);
        assert_eq!(offset_on_disk(&path), 60);
        // Shutdown right after a write: its state is written without waiting for the gap.
        writer.request(&state(70));
        written(3).await;
        let t1 = tokio::time::Instant::now();
        writer.finish(&state(80)).await;
        assert!(
            t1.elapsed() < MIN_WRITE_GAP / 2,
            "finish waited {:?}",
            t1.elapsed()
        );
        assert_eq!(metrics.checkpoint_writes.get(), 4);
        assert_eq!(offset_on_disk(&path), 80);
    }
}
