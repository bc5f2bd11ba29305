//! How long the reader waits before its next read, so lines written at a live rate
//! go to Redis in batches instead of one by one.
//!
//! Why: each batch costs the watcher about the same whatever its size — a wake-up, a
//! read, a script call, its reply, the bookkeeping — and on a small VM the wake-ups
//! (context switches) are most of it. Without a linger every append became a batch of
//! one or two lines (measured: 138 CPU-µs per line at 1 000 lines/s, 21 µs at
//! 10 000/s). With one, a batch that stopped short of the limits is followed by a
//! sleep long enough for about [`TARGET_LINES`] more lines at the rate the last batch
//! came in at — and, below [`FULL_RATE`], proportionally more: at 1 000 lines/s a batch
//! of 20 lines every 20 ms still cost ~2 % of a core (a batch costs ~200 µs here), so
//! slow files get fewer, fuller batches. Never shorter than [`MIN_LINGER`], never longer
//! than the configured maximum (`REDTAIL_BATCH_LINGER_MS`). So a busy file gets short
//! waits (≈ 2 ms at 10 000 lines/s: the p99 stays low), a slow one the maximum (50 ms by
//! default at 2 000 lines/s and below: ≤ 1 % of a core at 1 000 lines/s, measured), and a
//! full batch (a backlog) is read after at once.
//! The reader counts a batch as small only once it has caught up with its files (a read
//! found nothing since the last full batch): in a drain a batch can stop short at a
//! read-buffer boundary, and lingering there cut the drain rate by 40 %.
//! The delay it adds to a line is at most the maximum.

use std::time::{Duration, Instant};

/// Lines a lingering batch aims at. At 10 000 lines/s that is a 2 ms wait.
pub(crate) const TARGET_LINES: u32 = 20;
/// Below this rate the lines a lingering batch aims at grow as the rate falls (at half
/// this rate, twice [`TARGET_LINES`]): there the batches' fixed cost, not the lines',
/// is what a sidecar pays for.
pub(crate) const FULL_RATE: u64 = 10_000;
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
        // The rate this batch came in at. A first batch has none yet: the maximum. (A
        // batch after a quiet spell gets a low rate and so a long wait: the spell counts.)
        let wait = match since_prev {
            Some(dt) => {
                let for_target = dt.saturating_mul(TARGET_LINES) / lines;
                // Below FULL_RATE, scaled by FULL_RATE / rate (the bounds below cap it).
                let rate_per_s = f64::from(lines) / dt.as_secs_f64().max(1e-9);
                for_target.mul_f64((FULL_RATE as f64 / rate_per_s).clamp(1.0, 1e6))
            }
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
        // No rate known yet: the maximum.
        l.batch_read(t0, 3, true);
        assert_eq!(l.remaining(t0), Some(20 * MS));
        l.slept();
        assert_eq!(l.remaining(t0), None);
        // 10 000 lines/s: 20 lines take 2 ms.
        let t1 = t0 + 4 * MS;
        l.batch_read(t1, 40, true);
        assert_eq!(l.remaining(t1), Some(2 * MS));
        assert_eq!(l.remaining(t1 + MS), Some(MS));
        assert_eq!(l.remaining(t1 + 2 * MS), None);
        // Far faster: never below the minimum.
        let t2 = t1 + MS;
        l.batch_read(t2, 500, true);
        assert_eq!(l.remaining(t2), Some(MIN_LINGER));
    }

    #[test]
    fn slow_files_aim_at_fuller_batches() {
        let mut t = Instant::now();
        let mut l = Linger::new(50 * MS);
        l.batch_read(t, 1, true);
        // Two seconds at a steady rate: the older history has faded.
        let mut steady = |l: &mut Linger, dt: Duration, lines: usize| {
            let until = t + Duration::from_secs(2);
            while t < until {
                t += dt;
                l.batch_read(t, lines, true);
            }
            l.remaining(t)
        };
        // 5 000 lines/s: 20 lines take 4 ms, twice that at half of FULL_RATE.
        assert_eq!(steady(&mut l, 4 * MS, 20), Some(8 * MS));
        // 1 000 lines/s: the maximum.
        assert_eq!(steady(&mut l, 20 * MS, 20), Some(50 * MS));
        // 20 000 lines/s: no scaling; 20 lines take 1 ms, so the minimum.
        assert_eq!(steady(&mut l, MS, 20), Some(MIN_LINGER));
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
