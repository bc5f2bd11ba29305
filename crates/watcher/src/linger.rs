//! How long the reader waits before its next read, so lines written at a live rate
//! go to Redis in batches instead of one by one.
//!
//! Why: each batch costs the watcher about the same whatever its size — a wake-up, a
//! read, a script call, its reply, the bookkeeping — and on a small VM the wake-ups
//! (context switches) are most of it. Without a linger every append became a batch of
//! one or two lines (measured: 138 CPU-µs per line at 1 000 lines/s, 21 µs at
//! 10 000/s). With one, a batch that stopped short of the limits is followed by a
//! sleep long enough for about [`TARGET_LINES`] more lines at the rate the last batch
//! came in at, never shorter than [`MIN_LINGER`] and never longer than the configured
//! maximum (`REDTAIL_BATCH_LINGER_MS`). So a busy file gets short waits (≈ 2 ms at
//! 10 000 lines/s: the p99 stays low), a slow one long waits (the maximum at 1 000
//! lines/s: few, fuller batches), and a full batch (a backlog) is read after at once.
//! The reader counts a batch as small only once it has caught up with its files (a read
//! found nothing since the last full batch): in a drain a batch can stop short at a
//! read-buffer boundary, and lingering there cut the drain rate by 40 %.
//! The delay it adds to a line is at most the maximum.

use std::time::{Duration, Instant};

/// Lines a lingering batch aims at. At 10 000 lines/s that is a 2 ms wait.
pub(crate) const TARGET_LINES: u32 = 20;
/// Shortest wait after a small batch: at 50 000 lines/s it keeps batches at ~100 lines.
pub(crate) const MIN_LINGER: Duration = Duration::from_millis(2);

#[derive(Debug, Clone)]
pub(crate) struct Linger {
    max: Duration,
    min: Duration,
    /// When the previous batch was read: the rate estimate's clock.
    prev_read: Option<Instant>,
    /// No read before this instant.
    until: Option<Instant>,
}

impl Linger {
    /// `max` zero turns lingering off.
    pub fn new(max: Duration) -> Linger {
        Linger {
            max,
            min: MIN_LINGER.min(max),
            prev_read: None,
            until: None,
        }
    }

    /// How long to sleep before the next read, if at all.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        self.until
            .map(|until| until.saturating_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// The sleep is over: read again.
    pub fn slept(&mut self) {
        self.until = None;
    }

    /// A batch of `lines` lines was read at `now`; `small` means it stopped short of the
    /// batch limits (the file had nothing more yet).
    pub fn batch_read(&mut self, now: Instant, lines: usize, small: bool) {
        let since_prev = self
            .prev_read
            .map(|prev| now.saturating_duration_since(prev));
        self.prev_read = Some(now);
        if !small || self.max.is_zero() {
            self.until = None;
            return;
        }
        let lines = u32::try_from(lines.max(1)).unwrap_or(u32::MAX);
        // Time for TARGET_LINES lines at the rate this batch arrived at; a first batch (or
        // one after a long quiet spell) gives a long estimate, capped by `max`.
        let wait = match since_prev {
            Some(dt) => dt.saturating_mul(TARGET_LINES) / lines,
            None => self.max,
        };
        self.until = Some(now + wait.clamp(self.min, self.max));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn off_never_waits() {
        let t0 = Instant::now();
        let mut l = Linger::new(Duration::ZERO);
        l.batch_read(t0, 1, true);
        assert_eq!(l.remaining(t0), None);
    }

    #[test]
    fn full_batches_are_read_back_to_back() {
        let t0 = Instant::now();
        let mut l = Linger::new(20 * MS);
        l.batch_read(t0, 1024, false);
        assert_eq!(l.remaining(t0), None);
    }

    #[test]
    fn wait_follows_the_rate_within_bounds() {
        let t0 = Instant::now();
        let mut l = Linger::new(20 * MS);
        // First batch: nothing to estimate from, the maximum.
        l.batch_read(t0, 3, true);
        assert_eq!(l.remaining(t0), Some(20 * MS));
        l.slept();
        assert_eq!(l.remaining(t0), None);
        // 10 000 lines/s: 40 lines in 4 ms → 20 lines take 2 ms.
        let t1 = t0 + 4 * MS;
        l.batch_read(t1, 40, true);
        assert_eq!(l.remaining(t1), Some(2 * MS));
        assert_eq!(l.remaining(t1 + MS), Some(MS));
        assert_eq!(l.remaining(t1 + 2 * MS), None);
        // 1 000 lines/s: 20 lines take 20 ms, the maximum.
        let t2 = t1 + 10 * MS;
        l.batch_read(t2, 10, true);
        assert_eq!(l.remaining(t2), Some(20 * MS));
        // 100 lines/s: capped at the maximum.
        let t3 = t2 + 20 * MS;
        l.batch_read(t3, 2, true);
        assert_eq!(l.remaining(t3), Some(20 * MS));
        // 100 000 lines/s: never below the minimum.
        let t4 = t3 + MS;
        l.batch_read(t4, 100, true);
        assert_eq!(l.remaining(t4), Some(MIN_LINGER));
    }

    #[test]
    fn minimum_never_exceeds_a_small_maximum() {
        let t0 = Instant::now();
        let mut l = Linger::new(MS);
        l.batch_read(t0, 1, true);
        l.batch_read(t0 + Duration::from_micros(10), 500, true);
        assert_eq!(l.remaining(t0 + Duration::from_micros(10)), Some(MS));
    }

    #[test]
    fn a_long_quiet_spell_does_not_overflow() {
        let t0 = Instant::now();
        let mut l = Linger::new(20 * MS);
        l.batch_read(t0, 1, true);
        let later = t0 + Duration::from_secs(86_400 * 365);
        l.batch_read(later, 1, true);
        assert_eq!(l.remaining(later), Some(20 * MS));
    }
}
