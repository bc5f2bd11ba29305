//! How long the reader waits before its next read, so lines written at a live rate
//! go to Redis in batches instead of one by one.
//!
//! Why: each batch costs the watcher about the same whatever its size — a wake-up, a
//! read, a script call, its reply, the bookkeeping — and on a small VM the wake-ups
//! (context switches) are most of it. Without a linger every append became a batch of
//! one or two lines (measured: 138 CPU-µs per line at 1 000 lines/s, 21 µs at
//! 10 000/s). With one, a batch that stopped short of the limits is followed by a
//! sleep long enough for about [`TARGET_LINES`] more lines at the file's recent rate —
//! and, below [`FULL_RATE`], proportionally more: at 1 000 lines/s a batch of 20 lines
//! every 20 ms still cost ~2 % of a core (a batch costs ~200 µs here), so slow files get
//! fewer, fuller batches. Never shorter than [`MIN_LINGER`], never longer than the
//! configured maximum (`REDTAIL_BATCH_LINGER_MS`). So a busy file gets short waits
//! (≈ 3 ms at 10 000 lines/s: the p99 stays low), a slow one the maximum (100 ms by
//! default below ~1 700 lines/s: ≤ 1 % of a core at 1 000 lines/s, measured), and a
//! full batch (a backlog) is read after at once.
//!
//! The rate is the lines read over the last [`RATE_WINDOW`] or so (an exponentially
//! decayed count), not the last batch's: a writer is bursty at the millisecond scale (a
//! timer tick, a stalled CPU), and a read that woke on the first line of a burst saw
//! "1 line in 3 ms" — a slow file by the last batch alone — and waited the maximum,
//! which set the p99 at 10 000 lines/s to the maximum (measured: 34–50 ms). A quiet
//! spell longer than the window starts the estimate afresh: a new burst's rate is not
//! known yet, so its first batch is followed by the shortest wait, not the longest.
//!
//! The reader counts a batch as small only once it has caught up with its files (a read
//! found nothing since the last full batch): in a drain a batch can stop short at a
//! read-buffer boundary, and lingering there cut the drain rate by 40 %.
//! The delay it adds to a line is at most the maximum.

use std::time::{Duration, Instant};

use redtail_tail::{Batch, TailItem, Tailer};

/// Lines a lingering batch aims at. At 10 000 lines/s that is a 3 ms wait (measured at
/// 10 000 lines/s: 20 lines gave 3.7 CPU-µs per line and a p99 of 2.5 ms, 25 lines 3.3 µs
/// and 3.0 ms, 30 lines 2.7 µs and 3.5 ms; the targets are 5 µs and 5 ms, and the full
/// benchmark with 25 lines gave 4.9–5.2 µs and 3.1 ms, so 30 leaves room on both).
pub(crate) const TARGET_LINES: f64 = 30.0;
/// Below this rate the lines a lingering batch aims at grow as the rate falls (at half
/// this rate, twice [`TARGET_LINES`]): there the batches' fixed cost, not the lines',
/// is what a sidecar pays for.
pub(crate) const FULL_RATE: f64 = 10_000.0;
/// Shortest wait after a small batch: at 50 000 lines/s it keeps batches at ~100 lines.
pub(crate) const MIN_LINGER: Duration = Duration::from_millis(2);
/// Time constant of the rate estimate; also the quiet spell after which it starts afresh.
pub(crate) const RATE_WINDOW: Duration = Duration::from_millis(200);

#[derive(Debug, Clone)]
pub(crate) struct Linger {
    max: Duration,
    min: Duration,
    /// Lines read, each weighted by `exp(-age / RATE_WINDOW)`, as of `prev_read`.
    decayed_lines: f64,
    /// When the estimate started (the first batch after a quiet spell).
    estimate_since: Option<Instant>,
    /// When the previous batch was read.
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
            decayed_lines: 0.0,
            estimate_since: None,
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

    /// When the next read is due, if the reader lingers.
    pub fn until(&self) -> Option<Instant> {
        self.until
    }

    /// The sleep is over: read again.
    pub fn slept(&mut self) {
        self.until = None;
    }

    /// A batch of `lines` lines was read at `now`; `small` means it stopped short of the
    /// batch limits (the file had nothing more yet).
    pub fn batch_read(&mut self, now: Instant, lines: usize, small: bool) {
        let window = RATE_WINDOW.as_secs_f64();
        match self
            .prev_read
            .map(|prev| now.saturating_duration_since(prev))
        {
            Some(quiet) if quiet <= RATE_WINDOW => {
                self.decayed_lines *= (-quiet.as_secs_f64() / window).exp();
            }
            // A quiet spell (or the first batch): start afresh. This batch's lines were
            // written during the spell, so they say nothing about the new rate.
            _ => {
                self.decayed_lines = 0.0;
                self.estimate_since = Some(now);
            }
        }
        if self.estimate_since != Some(now) {
            self.decayed_lines += lines as f64;
        }
        self.prev_read = Some(now);
        if !small || self.max.is_zero() {
            self.until = None;
            return;
        }
        let span = self.estimate_since.map_or(0.0, |since| {
            now.saturating_duration_since(since).as_secs_f64()
        });
        // The decayed count over a span T weighs τ·(1 − e^(−T/τ)) seconds of a steady rate.
        let weighed = window * (1.0 - (-span / window).exp());
        let wait = if weighed <= 0.0 {
            // The first batch since a quiet spell: no rate yet; look again soon.
            self.min
        } else {
            let rate = (self.decayed_lines / weighed).max(1e-3);
            let secs = TARGET_LINES / rate * (FULL_RATE / rate).max(1.0);
            Duration::try_from_secs_f64(secs).unwrap_or(self.max)
        };
        self.until = Some(now + wait.clamp(self.min, self.max));
    }
}

/// Batch limits of every read, whichever thread makes it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BatchLimits {
    pub max_lines: usize,
    pub max_bytes: usize,
}

impl BatchLimits {
    /// A batch that stopped short of both limits: the file had no more complete lines yet,
    /// so more are likely still being written.
    pub fn is_small(&self, batch: &Batch) -> bool {
        batch.len() < self.max_lines && batch.bytes() < self.max_bytes / 2
    }
}

/// When the next read is due, and the read itself with its bookkeeping: one copy for both
/// threads that read (the reader, and the pipeline's while the reader is parked, see
/// `handoff.rs`), so that they cannot drift apart.
#[derive(Debug, Clone)]
pub(crate) struct Pace {
    pub linger: Linger,
    pub limits: BatchLimits,
    /// A read found nothing since the last full batch: the reader follows a live file, it
    /// is not draining a backlog. Only then is a short batch a sign of a slow writer; in a
    /// drain a batch can stop short at a read-buffer boundary, and lingering there cut the
    /// drain rate by 40 % (measured).
    pub caught_up: bool,
}

impl Pace {
    pub fn new(limits: BatchLimits, linger: Duration) -> Pace {
        Pace {
            linger: Linger::new(linger),
            limits,
            caught_up: false,
        }
    }

    /// The next item of `tailer`, with the linger told about it. `None`: nothing to read
    /// now, or a whole-tailer error (logged here; errors with a path are reported through
    /// `TailEvents`), retried at the next look.
    pub fn read(&mut self, tailer: &mut Tailer) -> Option<TailItem> {
        match tailer.next_item(self.limits.max_lines, self.limits.max_bytes) {
            Ok(Some(item)) => {
                if let TailItem::Lines(batch) = &item {
                    let small = self.limits.is_small(batch);
                    self.caught_up &= small;
                    let lingers = small && self.caught_up;
                    self.linger.batch_read(Instant::now(), batch.len(), lingers);
                }
                Some(item)
            }
            Ok(None) => {
                self.caught_up = true;
                None
            }
            Err(error) => {
                tracing::warn!(%error, reason = error.reason(), "Tailer error; retrying.");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Batches of `lines` every `every` for two seconds (the start has faded), then the wait.
    fn steady(l: &mut Linger, t: &mut Instant, every: Duration, lines: usize) -> Option<Duration> {
        let until = *t + Duration::from_secs(2);
        while *t < until {
            *t += every;
            l.batch_read(*t, lines, true);
        }
        l.remaining(*t)
    }

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
        l.batch_read(t0 + MS, 1024, false);
        assert_eq!(l.remaining(t0 + MS), None);
    }

    #[test]
    fn a_first_batch_is_followed_by_the_shortest_wait() {
        let t0 = Instant::now();
        let mut l = Linger::new(50 * MS);
        l.batch_read(t0, 3, true);
        assert_eq!(l.remaining(t0), Some(MIN_LINGER));
        l.slept();
        assert_eq!(l.remaining(t0), None);
        // 20 lines in those 2 ms: 10 000 lines/s, so 3 ms.
        let t1 = t0 + 2 * MS;
        l.batch_read(t1, 20, true);
        let wait = l.remaining(t1).expect("a wait");
        assert!(wait >= 29 * MS / 10 && wait <= 31 * MS / 10, "{wait:?}");
    }

    #[test]
    fn wait_follows_the_rate_within_bounds() {
        let mut t = Instant::now();
        let mut l = Linger::new(50 * MS);
        l.batch_read(t, 1, true);
        let near = |got: Option<Duration>, want: Duration| {
            let got = got.expect("a wait");
            let diff = got.abs_diff(want);
            assert!(diff <= want / 20, "wait {got:?}, expected about {want:?}");
        };
        // 10 000 lines/s: 30 lines take 3 ms.
        near(steady(&mut l, &mut t, 2 * MS, 20), 3 * MS);
        // 5 000 lines/s: 30 lines take 6 ms, twice that at half of FULL_RATE.
        near(steady(&mut l, &mut t, 4 * MS, 20), 12 * MS);
        // 1 000 lines/s: the maximum.
        assert_eq!(steady(&mut l, &mut t, 20 * MS, 20), Some(50 * MS));
        // 20 000 lines/s: no scaling; 30 lines take 1.5 ms, so the minimum.
        assert_eq!(steady(&mut l, &mut t, MS, 20), Some(MIN_LINGER));
    }

    /// The p99 bug: at 10 000 lines/s a read that woke on the first line of a burst saw
    /// "1 line in 3 ms" and waited the maximum. The rate over the window is unchanged.
    #[test]
    fn a_burst_s_first_line_does_not_read_as_a_slow_file() {
        let mut t = Instant::now();
        let mut l = Linger::new(50 * MS);
        l.batch_read(t, 1, true);
        steady(&mut l, &mut t, 2 * MS, 20);
        for _ in 0..50 {
            // A stalled writer: nothing for 3 ms, then one line, then the rest of the burst.
            t += 3 * MS;
            l.batch_read(t, 1, true);
            assert!(l.remaining(t).expect("a wait") <= 4 * MS);
            t += 2 * MS;
            l.batch_read(t, 49, true);
            assert!(l.remaining(t).expect("a wait") <= 4 * MS);
        }
    }

    #[test]
    fn a_quiet_spell_starts_the_estimate_afresh() {
        let mut t = Instant::now();
        let mut l = Linger::new(50 * MS);
        l.batch_read(t, 1, true);
        // A slow file first: the maximum.
        assert_eq!(steady(&mut l, &mut t, 20 * MS, 5), Some(50 * MS));
        // Then a second of nothing, and a burst at 10 000 lines/s.
        t += Duration::from_secs(1);
        l.batch_read(t, 1, true);
        assert_eq!(l.remaining(t), Some(MIN_LINGER));
        t += 2 * MS;
        l.batch_read(t, 20, true);
        assert!(l.remaining(t).expect("a wait") <= 4 * MS);
        // A backlog's lines count too, and fade within a few windows.
        let mut d = Linger::new(50 * MS);
        let mut t = Instant::now();
        d.batch_read(t, 1, true);
        for _ in 0..100 {
            t += MS;
            d.batch_read(t, 1024, false);
        }
        assert_eq!(steady(&mut d, &mut t, 20 * MS, 20), Some(50 * MS));
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
        assert_eq!(l.remaining(later), Some(MIN_LINGER));
        // A vanishing rate: the maximum, not an overflow.
        let much_later = later + RATE_WINDOW;
        l.batch_read(much_later, 0, true);
        assert_eq!(l.remaining(much_later), Some(20 * MS));
    }
}
