//! Readiness (may this process receive work?) and liveness (is its main loop still turning?).
//!
//! Readiness is a set of named conditions that can fail and recover (Redis lost, Redis back),
//! not a one-way latch: Kubernetes should stop routing to a pod while its Redis is gone and
//! route again once it is back. Liveness is progress: a wedged main loop stops beating and
//! `/healthz` fails, so the kubelet restarts the container.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Named readiness conditions; ready when every registered condition is ok.
///
/// A condition exists from its first `set_ok`/`set_failing` on. With none registered the
/// process is ready, so a role that depends on Redis should call `set_failing("redis", ..)`
/// before it first connects.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    /// name → `None` when ok, `Some(reason)` when failing. A `BTreeMap` so the reported
    /// condition is deterministic (the first failing one by name).
    conditions: Arc<Mutex<BTreeMap<&'static str, Option<String>>>>,
}

impl Readiness {
    /// Marks `name` as satisfied.
    pub fn set_ok(&self, name: &'static str) {
        self.lock().insert(name, None);
    }

    /// Marks `name` as failing; `reason` is shown in the `/readyz` body.
    pub fn set_failing(&self, name: &'static str, reason: impl Into<String>) {
        self.lock().insert(name, Some(one_line(&reason.into())));
    }

    /// `Ok(())` when every condition is ok, else `Err("<name>: <reason>")` for the first
    /// failing condition in name order, on one line.
    pub fn check(&self) -> Result<(), String> {
        match self
            .lock()
            .iter()
            .find_map(|(name, state)| state.as_ref().map(|reason| (*name, reason)))
        {
            Some((name, reason)) => Err(format!("{name}: {reason}")),
            None => Ok(()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<&'static str, Option<String>>> {
        // The map is always left consistent (single inserts), so a panic elsewhere while the
        // lock was held does not make its content wrong: keep serving it.
        self.conditions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Collapses line breaks so the reason fits the promised one-line 503 body.
fn one_line(reason: &str) -> String {
    reason.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Progress of the role's main loop; failing once no beat arrived for `stale_after`.
///
/// Liveness means "stuck", never "busy": a role beats at every step that shows its loop is
/// turning — each loop turn, each attempt at a round trip (which has its own timeout), each
/// retry sleep — never from a timer that competes with the work for the loop's attention.
/// (A heartbeat branch in a `biased` select starves while batches keep arriving, and the
/// kubelet then kills a watcher in the middle of a long drain.) So a loop that is slow, or
/// backing off from a failing Redis, stays alive; only one that stops turning goes stale.
/// `stale_after` must exceed the longest single step (a Redis response timeout, a backoff
/// delay: 5 s each).
#[derive(Debug, Clone)]
pub struct Liveness {
    inner: Arc<LivenessInner>,
}

#[derive(Debug)]
struct LivenessInner {
    /// Reference point for `last_beat_us`; a monotonic clock, so wall-clock jumps do not
    /// make the process look dead. Tokio's, so tests can pause it (outside a runtime, or
    /// unpaused, it is the std monotonic clock).
    origin: Instant,
    /// Microseconds since `origin` of the last beat. An atomic so `beat()` is cheap enough to
    /// call on every loop iteration.
    last_beat_us: AtomicU64,
    stale_after: Duration,
}

impl Liveness {
    /// A heartbeat that counts its creation as the first beat (start-up gets one full period).
    pub fn new(stale_after: Duration) -> Self {
        Liveness {
            inner: Arc::new(LivenessInner {
                origin: Instant::now(),
                last_beat_us: AtomicU64::new(0),
                stale_after,
            }),
        }
    }

    /// Records that the main loop is alive.
    pub fn beat(&self) {
        let now = micros(self.inner.origin.elapsed());
        self.inner.last_beat_us.fetch_max(now, Ordering::Relaxed);
    }

    /// `Ok(())` while the last beat is at most `stale_after` old, else a one-line reason.
    pub fn check(&self) -> Result<(), String> {
        let now = micros(self.inner.origin.elapsed());
        let last = self.inner.last_beat_us.load(Ordering::Relaxed);
        let silent = Duration::from_micros(now.saturating_sub(last));
        if silent > self.inner.stale_after {
            Err(format!(
                "main loop silent for {:.1}s (limit {:.1}s)",
                silent.as_secs_f64(),
                self.inner.stale_after.as_secs_f64()
            ))
        } else {
            Ok(())
        }
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_reports_first_failing_condition_by_name() {
        let r = Readiness::default();
        assert_eq!(r.check(), Ok(()));
        r.set_ok("redis");
        r.set_ok("checkpoint");
        assert_eq!(r.check(), Ok(()));
        r.set_failing("redis", "connection refused");
        assert_eq!(r.check(), Err("redis: connection refused".to_string()));
        r.set_failing("checkpoint", "read-only\nfile system");
        assert_eq!(
            r.check(),
            Err("checkpoint: read-only file system".to_string())
        );
        r.set_ok("checkpoint");
        assert_eq!(r.check(), Err("redis: connection refused".to_string()));
        let clone = r.clone();
        clone.set_ok("redis");
        assert_eq!(r.check(), Ok(()));
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_goes_stale_without_beats_and_recovers() {
        let l = Liveness::new(Duration::from_secs(60));
        assert_eq!(l.check(), Ok(()));
        tokio::time::advance(Duration::from_secs(59)).await;
        assert_eq!(l.check(), Ok(()), "creation counts as the first beat");
        tokio::time::advance(Duration::from_secs(2)).await;
        let err = l.check().expect_err("stale");
        assert_eq!(err, "main loop silent for 61.0s (limit 60.0s)");
        l.clone().beat();
        assert_eq!(l.check(), Ok(()), "a beat from any clone counts");
        tokio::time::advance(Duration::from_secs(30)).await;
        l.beat();
        tokio::time::advance(Duration::from_secs(45)).await;
        assert_eq!(
            l.check(),
            Ok(()),
            "progress every 30 s keeps a 60 s limit happy"
        );
    }
}
