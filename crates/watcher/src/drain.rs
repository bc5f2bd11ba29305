//! The SIGTERM drain: stop waiting for new data, publish what the files already hold up to
//! their current end within a budget, then stop.
//!
//! The reader hands out what the tailer has (complete lines only: a partial last line of
//! an active file stays unread) and closes its channel when the tailer has nothing more;
//! the pipeline publishes until then or until the deadline. Anything not published by the
//! deadline is simply not committed: the restart reads it again, and Redis's offsets make
//! sure nothing that did reach Redis is sent twice.

use std::time::Duration;

use redtail_bus::{BusError, PublishBatch, PublishOutcome, Publisher};
use redtail_telemetry::shutdown::Shutdown;
use tokio::time::Instant;

use crate::reader::DrainSwitch;

/// How much of `REDTAIL_SHUTDOWN_TIMEOUT_MS` the drain may spend publishing. The rest (a
/// quarter, at least 50 ms, at most 2 s) is kept for writing the checkpoint and exiting, so
/// a drain cut short still exits 0 before the process's hard deadline (which exits 1).
pub fn drain_budget(shutdown_timeout: Duration) -> Duration {
    let reserve = (shutdown_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(2));
    shutdown_timeout.saturating_sub(reserve)
}

pub(crate) struct Drain {
    budget: Duration,
    /// Set when shutdown began: past it, nothing more is published.
    deadline: Option<Instant>,
    /// Turns the reader to draining.
    switch: DrainSwitch,
}

impl Drain {
    pub fn new(budget: Duration, switch: DrainSwitch) -> Self {
        Drain {
            budget,
            deadline: None,
            switch,
        }
    }

    /// Starts the drain (once).
    pub fn start(&mut self) {
        if self.deadline.is_some() {
            return;
        }
        tracing::info!(
            budget_ms = self.budget.as_millis() as u64,
            "Shutting down: publishing what the files already hold."
        );
        self.deadline = Some(Instant::now() + self.budget);
        self.switch.drain();
    }

    pub fn started(&self) -> bool {
        self.deadline.is_some()
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// One publish attempt; `None` when the drain deadline passed before Redis answered.
    /// A SIGTERM arriving during the attempt starts the drain and the attempt goes on within
    /// the budget. An attempt still running at the deadline is dropped. Safe: the script is
    /// atomic, and whether or not it ran, the restart resumes from Redis's offset when that
    /// is ahead of the checkpoint.
    ///
    /// With `replicas` > 0 the attempt also waits (up to `ack_timeout`) for that many
    /// replicas, in the same round trip as the script (see `Publisher::publish_replicated`),
    /// and returns how many acknowledged; with 0, `None` in its place.
    pub async fn attempt(
        &mut self,
        publisher: &mut Publisher,
        request: &PublishBatch<'_>,
        replicas: u32,
        ack_timeout: Duration,
        shutdown: &Shutdown,
    ) -> Option<Result<(PublishOutcome, Option<u64>), BusError>> {
        let publish = async {
            if replicas == 0 {
                publisher.publish(request).await.map(|o| (o, None))
            } else {
                publisher
                    .publish_replicated(request, replicas, ack_timeout)
                    .await
                    .map(|(o, acked)| (o, Some(acked)))
            }
        };
        tokio::pin!(publish);
        if !self.started() {
            tokio::select! {
                biased;
                result = &mut publish => return Some(result),
                _ = shutdown.wait() => self.start(),
            }
        }
        let deadline = self.deadline()?;
        tokio::time::timeout_at(deadline, publish).await.ok()
    }

    /// Sleeps `delay` before a retry, cut short by the drain deadline; a SIGTERM arriving
    /// meanwhile starts the drain (the batch in hand is the first thing it publishes).
    /// `false` when the deadline passed: give up on the batch.
    pub async fn retry_pause(&mut self, delay: Duration, shutdown: &Shutdown) -> bool {
        let wake = Instant::now() + delay;
        if !self.started() {
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => return true,
                _ = shutdown.wait() => self.start(),
            }
        }
        let Some(deadline) = self.deadline() else {
            return true;
        };
        tokio::time::sleep_until(wake.min(deadline)).await;
        Instant::now() < deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use redtail_tail::{NoEvents, TailConfig, Tailer};

    use crate::reader::{ReadLimits, Reader};

    /// A drain whose switch belongs to a real (idle) reader thread on an empty directory.
    fn drain(
        budget: Duration,
    ) -> (
        Drain,
        Reader,
        tokio::sync::mpsc::Receiver<redtail_tail::TailItem>,
        tempfile::TempDir,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let tailer = Tailer::new(
            TailConfig::new(dir.path().join("app.log")),
            Vec::new(),
            Arc::new(NoEvents),
        )
        .expect("tailer");
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let limits = ReadLimits {
            batch: crate::linger::BatchLimits {
                max_lines: 10,
                max_bytes: 1 << 20,
            },
            poll_interval: Duration::from_millis(10),
            linger: Duration::ZERO,
        };
        let reader = Reader::spawn(tailer, limits, tx).expect("reader");
        (Drain::new(budget, reader.drain_switch()), reader, rx, dir)
    }

    #[tokio::test(start_paused = true)]
    async fn retry_pause_sleeps_the_delay_until_shutdown() {
        let (trigger, shutdown) = Shutdown::new();
        let (mut drain, reader, _rx, _dir) = drain(Duration::from_secs(8));
        let started = Instant::now();
        assert!(drain.retry_pause(Duration::from_secs(5), &shutdown).await);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert!(!drain.started());

        // SIGTERM during a 5 s pause: the drain starts, the pause still ends on time (the
        // batch is retried within the budget).
        let sigterm = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            trigger.trigger();
        });
        let started = Instant::now();
        assert!(drain.retry_pause(Duration::from_secs(5), &shutdown).await);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        assert!(drain.started());
        assert_eq!(
            drain.deadline(),
            Some(started + Duration::from_secs(1) + Duration::from_secs(8))
        );
        sigterm.await.expect("trigger task");
        drop(_rx);
        reader.join();
    }

    #[tokio::test(start_paused = true)]
    async fn retry_pause_gives_up_at_the_deadline() {
        let (trigger, shutdown) = Shutdown::new();
        let (mut drain, reader, _rx, _dir) = drain(Duration::from_secs(2));
        trigger.trigger();
        let started = Instant::now();
        // Not started yet: the first pause sees the trigger at once and starts the drain.
        assert!(drain.retry_pause(Duration::from_secs(1), &shutdown).await);
        assert_eq!(started.elapsed(), Duration::from_secs(1));
        // A pause that would pass the deadline ends at it, with "give up".
        assert!(!drain.retry_pause(Duration::from_secs(5), &shutdown).await);
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        drain.start(); // idempotent: the deadline does not move
        assert_eq!(drain.deadline(), Some(started + Duration::from_secs(2)));
        drop(_rx);
        reader.join();
    }

    #[test]
    fn budget_leaves_room_to_checkpoint_and_exit() {
        assert_eq!(
            drain_budget(Duration::from_secs(10)),
            Duration::from_secs(8)
        );
        assert_eq!(
            drain_budget(Duration::from_millis(1000)),
            Duration::from_millis(750)
        );
        assert_eq!(
            drain_budget(Duration::from_millis(100)),
            Duration::from_millis(50)
        );
        assert_eq!(
            drain_budget(Duration::from_secs(60)),
            Duration::from_secs(58)
        );
    }
}
