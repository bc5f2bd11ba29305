//! Exponential backoff with full jitter, shared by every Redis retry loop.
//!
//! Why jitter: hundreds of watcher sidecars lose the same Redis at the same moment; without
//! jitter they all reconnect in lock-step and knock it over again when it comes back.

use std::time::Duration;

use rand::RngExt;

/// Delay sequence `base·2ⁿ` capped at `cap`, each delay drawn uniformly from
/// `[delay/2, delay]` so retries spread out but never collapse to zero.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    attempt: u32,
}

impl Backoff {
    /// The interface fixes the cap at 5 s; the base is small so a blip costs little.
    pub const DEFAULT_BASE: Duration = Duration::from_millis(50);
    pub const DEFAULT_CAP: Duration = Duration::from_secs(5);

    pub fn new(base: Duration, cap: Duration) -> Self {
        Self {
            base,
            cap: cap.max(base),
            attempt: 0,
        }
    }

    /// The delay before the next attempt; each call doubles the ceiling up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.attempt.min(20);
        self.attempt = self.attempt.saturating_add(1);
        let ceiling = self
            .base
            .checked_mul(1u32 << exp)
            .unwrap_or(self.cap)
            .min(self.cap);
        let ceiling_ms = ceiling.as_millis().max(1) as u64;
        let ms = rand::rng().random_range(ceiling_ms / 2..=ceiling_ms);
        Duration::from_millis(ms)
    }

    /// Number of attempts since the last success.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Called after a success: the next failure starts from the base again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new(Self::DEFAULT_BASE, Self::DEFAULT_CAP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_then_caps_with_jitter() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        let first = b.next_delay();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        for _ in 0..30 {
            let d = b.next_delay();
            assert!(d <= Duration::from_secs(5), "{d:?} above the cap");
        }
        // After many attempts the delay sits in [cap/2, cap].
        let late = b.next_delay();
        assert!(late >= Duration::from_millis(2500), "{late:?}");
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert!(b.next_delay() <= Duration::from_millis(100));
    }

    #[test]
    fn jitter_spreads_delays() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
            seen.insert(b.next_delay());
        }
        assert!(seen.len() > 5, "jitter should vary delays: {seen:?}");
    }
}
