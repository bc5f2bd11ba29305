//! When to write the checkpoint: after N committed lines or T elapsed, whichever comes first.

use std::time::{Duration, Instant};

/// Bounds how much work a crash can cost (at most `every_lines` lines or `interval` of progress
/// re-read from the last checkpoint; Redis offsets then skip the duplicates) while keeping fsyncs
/// rare under load. Pure bookkeeping over `Instant`s given by the caller, so it is trivially
/// testable and has no timer of its own: the caller sleeps until [`FlushPolicy::next_deadline`].
/// The flush at shutdown is explicit and does not go through this policy.
#[derive(Debug, Clone)]
pub struct FlushPolicy {
    every_lines: u64,
    interval: Duration,
    pending: u64,
    last_flush: Instant,
}

impl FlushPolicy {
    /// `every_lines == 0` is taken as 1 (flush after every committed line): "after zero lines"
    /// would otherwise mean "always", even with nothing to write.
    pub fn new(every_lines: u64, interval: Duration) -> Self {
        Self::starting_at(every_lines, interval, Instant::now())
    }

    /// [`FlushPolicy::new`] with an explicit start time (the time the interval counts from).
    pub fn starting_at(every_lines: u64, interval: Duration, now: Instant) -> Self {
        FlushPolicy {
            every_lines: every_lines.max(1),
            interval,
            pending: 0,
            last_flush: now,
        }
    }

    /// Count lines whose offsets were committed (acknowledged by Redis) since the last flush.
    pub fn note_committed(&mut self, lines: u64) {
        self.pending = self.pending.saturating_add(lines);
    }

    /// Lines committed since the last flush.
    pub fn pending(&self) -> u64 {
        self.pending
    }

    /// True when `every_lines` lines are pending, or some are and `interval` has passed since the
    /// last flush. Never true with nothing pending: an idle watcher does not rewrite its checkpoint.
    pub fn due(&self, now: Instant) -> bool {
        if self.pending == 0 {
            return false;
        }
        self.pending >= self.every_lines || self.next_deadline().is_some_and(|d| now >= d)
    }

    /// When [`FlushPolicy::due`] becomes true by time alone; `None` when nothing is pending (or the
    /// interval is too large to represent, i.e. never).
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.pending == 0 {
            return None;
        }
        self.last_flush.checked_add(self.interval)
    }

    /// The checkpoint was written (or found unchanged) at `now`: start counting again.
    pub fn flushed(&mut self, now: Instant) {
        self.pending = 0;
        self.last_flush = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn due_by_lines() {
        let t0 = Instant::now();
        let mut p = FlushPolicy::starting_at(1000, SEC, t0);
        p.note_committed(999);
        assert!(!p.due(t0));
        p.note_committed(1);
        assert!(p.due(t0), "1000 lines are due before the interval");
        p.flushed(t0);
        assert_eq!(p.pending(), 0);
        assert!(!p.due(t0));
        p.note_committed(5000);
        assert!(p.due(t0));
    }

    #[test]
    fn due_by_time_only_when_something_is_pending() {
        let t0 = Instant::now();
        let mut p = FlushPolicy::starting_at(1000, SEC, t0);
        assert!(!p.due(t0 + 10 * SEC), "nothing pending, nothing due");
        p.note_committed(1);
        assert!(!p.due(t0 + SEC - Duration::from_nanos(1)));
        assert!(p.due(t0 + SEC));
        assert!(p.due(t0 + 5 * SEC));

        p.flushed(t0 + 5 * SEC);
        p.note_committed(3);
        assert!(!p.due(t0 + 5 * SEC + SEC / 2));
        assert!(p.due(t0 + 6 * SEC));
    }

    #[test]
    fn interval_counts_from_the_last_flush() {
        let t0 = Instant::now();
        let mut p = FlushPolicy::starting_at(1000, SEC, t0);
        // Idle for a long time, then one line: it is due at once, so a quiet file's progress is
        // not held back for a further interval.
        p.note_committed(1);
        assert!(p.due(t0 + 30 * SEC));
    }

    #[test]
    fn next_deadline() {
        let t0 = Instant::now();
        let mut p = FlushPolicy::starting_at(1000, SEC, t0);
        assert_eq!(p.next_deadline(), None);
        p.note_committed(1);
        assert_eq!(p.next_deadline(), Some(t0 + SEC));
        let t1 = t0 + 3 * SEC;
        p.flushed(t1);
        assert_eq!(p.next_deadline(), None);
        p.note_committed(2);
        assert_eq!(p.next_deadline(), Some(t1 + SEC));
        assert!(!p.due(t1 + SEC - Duration::from_millis(1)));
        assert!(p.due(p.next_deadline().unwrap()));
    }

    #[test]
    fn huge_interval_never_becomes_due_by_time() {
        let t0 = Instant::now();
        let mut p = FlushPolicy::starting_at(10, Duration::MAX, t0);
        p.note_committed(1);
        assert_eq!(p.next_deadline(), None);
        assert!(!p.due(t0 + 1000 * SEC));
        p.note_committed(9);
        assert!(p.due(t0));
    }

    #[test]
    fn zero_lines_means_every_line_and_zero_interval_means_at_once() {
        let t0 = Instant::now();
        let mut p = FlushPolicy::starting_at(0, Duration::ZERO, t0);
        assert!(!p.due(t0));
        p.note_committed(1);
        assert!(p.due(t0));
        assert_eq!(p.next_deadline(), Some(t0));
    }

    #[test]
    fn pending_saturates() {
        let mut p = FlushPolicy::new(u64::MAX, SEC);
        p.note_committed(u64::MAX);
        p.note_committed(5);
        assert_eq!(p.pending(), u64::MAX);
        assert!(p.due(Instant::now()));
    }
}
