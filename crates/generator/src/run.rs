//! The generator's main loop: pace, pick, encode, append, count.

use std::time::Duration;

use redtail_telemetry::readiness::Liveness;
use redtail_telemetry::shutdown::Shutdown;
use tokio::time::{sleep_until, Instant};

use crate::file::LogFile;
use crate::line::{encode, LineFields};
use crate::messages::LinePicker;
use crate::{Config, GeneratorError, Metrics};

/// Lines written between two returns to the runtime, so other tasks (the admin server,
/// signal handling) run even at full speed.
const YIELD_EVERY: u64 = 1000;

/// When the schedule falls further behind than this (the disk was slow, the process was
/// stopped), the backlog is dropped rather than written as one huge burst.
const MAX_CATCH_UP: Duration = Duration::from_secs(5);

/// What a finished run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GeneratorSummary {
    /// Lines written by this run.
    pub lines: u64,
    /// The `seq` the next line would have had.
    pub next_seq: u64,
}

/// Appends lines to `config.log_path` until `config.count` lines are written (if not 0) or
/// `shutdown` fires; the line being written when shutdown fires is finished first.
pub async fn run(
    config: Config,
    metrics: Metrics,
    liveness: Liveness,
    shutdown: Shutdown,
) -> Result<GeneratorSummary, GeneratorError> {
    config.validate()?;
    let seed = config.seed.unwrap_or_else(rand::random);
    let (mut log, mut seq) =
        LogFile::open(&config.log_path, config.rotate_bytes, config.rotate_keep)?;
    tracing::info!(
        path = %config.log_path.display(),
        rate = config.rate,
        count = config.count,
        seed,
        first_seq = seq,
        "Generator started."
    );
    let mut picker = LinePicker::new(seed);
    let mut buf = Vec::with_capacity(512);
    let mut schedule = Schedule::new(config.rate, Instant::now());
    let mut written: u64 = 0;

    'run: loop {
        liveness.beat();
        if config.count > 0 && written >= config.count {
            break;
        }
        let now = Instant::now();
        if let Some(behind) = schedule.behind(written, now) {
            if behind > MAX_CATCH_UP {
                tracing::warn!(
                    behind_ms = u64::try_from(behind.as_millis()).unwrap_or(u64::MAX),
                    "Generator fell behind its rate; skipping the backlog."
                );
                schedule.restart(written, now);
            }
        }
        let due = schedule.due_count(now);
        if written >= due {
            tokio::select! {
                () = sleep_until(schedule.due_at(written)) => continue,
                () = shutdown.wait() => break,
            }
        }
        let mut burst = (due - written).min(YIELD_EVERY);
        if config.count > 0 {
            burst = burst.min(config.count - written);
        }
        for _ in 0..burst {
            if shutdown.is_triggered() {
                break 'run;
            }
            let (level, message) = picker.next_line();
            encode(
                &mut buf,
                &LineFields {
                    at: chrono::Utc::now(),
                    level,
                    message: &message,
                    seq,
                    service: &config.service,
                    host: &config.host,
                },
            )?;
            let appended = log.append(&buf)?;
            if appended.rotated {
                metrics.rotations.inc();
            }
            metrics.lines_written.inc();
            metrics.bytes_written.inc_by(appended.bytes);
            metrics.seq.set(i64::try_from(seq).unwrap_or(i64::MAX));
            seq += 1;
            written += 1;
        }
        tokio::task::yield_now().await;
    }

    tracing::info!(lines = written, next_seq = seq, "Generator stopped.");
    Ok(GeneratorSummary {
        lines: written,
        next_seq: seq,
    })
}

/// When each line is due: line `n` at `origin + (n - base) / rate`.
///
/// Due times are computed from the origin, never from the previous sleep, so timer lateness
/// never accumulates: a late wake-up simply finds several lines due and writes them at once.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    /// Lines per second; 0 = unpaced.
    rate: u64,
    origin: Instant,
    /// Lines written before `origin` (non-zero after a restart).
    base: u64,
}

const NANOS_PER_SEC: u128 = 1_000_000_000;

impl Schedule {
    fn new(rate: u64, origin: Instant) -> Self {
        Schedule {
            rate,
            origin,
            base: 0,
        }
    }

    /// How many lines (counted from the run's start) are due by `now`.
    fn due_count(&self, now: Instant) -> u64 {
        if self.rate == 0 {
            return u64::MAX;
        }
        let elapsed = now.saturating_duration_since(self.origin).as_nanos();
        let due = elapsed * u128::from(self.rate) / NANOS_PER_SEC + 1;
        self.base
            .saturating_add(u64::try_from(due).unwrap_or(u64::MAX))
    }

    /// When line `n` is due.
    fn due_at(&self, n: u64) -> Instant {
        if self.rate == 0 {
            return self.origin;
        }
        let nanos = u128::from(n.saturating_sub(self.base)) * NANOS_PER_SEC / u128::from(self.rate);
        let offset = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
        // Far beyond any process lifetime if it overflows; waiting "forever" is then correct.
        self.origin
            .checked_add(offset)
            .unwrap_or_else(|| self.origin + Duration::from_secs(86_400 * 365 * 30))
    }

    /// How late line `n` is at `now`, if it is late at all (never for an unpaced schedule).
    fn behind(&self, n: u64, now: Instant) -> Option<Duration> {
        if self.rate == 0 {
            return None;
        }
        now.checked_duration_since(self.due_at(n))
    }

    /// Re-anchors the schedule so line `n` is due `now`.
    fn restart(&mut self, n: u64, now: Instant) {
        self.origin = now;
        self.base = n;
    }
}

#[cfg(test)]
mod tests;
