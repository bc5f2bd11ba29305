//! The SIGTERM drain: stop waiting for new data, publish what the files already hold up to
//! their current end within a budget, then stop.
//!
//! The reader hands out what the tailer has (complete lines only: a partial last line of
//! an active file stays unread) and closes its channel when the tailer has nothing more;
//! the pipeline publishes until then or until the deadline. Anything not published by the
//! deadline is simply not committed: the restart reads it again, and Redis's offsets make
//! sure nothing that did reach Redis is sent twice.

use std::time::{Duration, Instant};

use redtail_bus::{BusError, PublishBatch, PublishOutcome, Publisher};
use redtail_telemetry::shutdown::Shutdown;

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

    pub fn deadline(&self) -> Option<tokio::time::Instant> {
        self.deadline.map(tokio::time::Instant::from_std)
    }

    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// One publish attempt; `None` when the drain deadline passed before Redis answered.
    /// A SIGTERM arriving during the attempt starts the drain and the attempt goes on within
    /// the budget. An attempt still running at the deadline is dropped. Safe: the script is
    /// atomic, and whether or not it ran, the restart resumes from Redis's offset when that
    /// is ahead of the checkpoint.
    pub async fn attempt(
        &mut self,
        publisher: &mut Publisher,
        request: &PublishBatch<'_>,
        shutdown: &Shutdown,
    ) -> Option<Result<PublishOutcome, BusError>> {
        let publish = publisher.publish(request);
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
        let wake = tokio::time::Instant::now() + delay;
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
        tokio::time::Instant::now() < deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
