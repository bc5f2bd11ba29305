//! The timer the pipeline sleeps on until a lingering read is due: a `timerfd`, awaited
//! through tokio's reactor, so the thread wakes once, at the deadline.
//!
//! Why not `tokio::time::sleep_until`: tokio's timers live in a hierarchical wheel whose
//! first level spans 64 ms, and a deadline that crosses a 64 ms boundary is filed one level
//! up, fires at the boundary and is filed again. Measured with `strace` at 1 000 lines/s
//! (50 ms lingers): 70 such extra wake-ups per 39 batches — and at that rate a wake-up is
//! most of what a batch costs. Where a `timerfd` cannot be made, tokio's timer is used.

use std::io;
use std::os::fd::OwnedFd;
use std::time::Instant;

use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
    Timespec,
};
use tokio::io::unix::AsyncFd;

pub(crate) struct ReadTimer {
    fd: Option<AsyncFd<OwnedFd>>,
    /// The deadline the timerfd is armed for.
    armed: Option<Instant>,
}

impl ReadTimer {
    /// Must be called within the tokio runtime (the fd is registered with its reactor).
    pub fn new() -> ReadTimer {
        ReadTimer {
            fd: timerfd().ok(),
            armed: None,
        }
    }

    /// [`ReadTimer::wait_until`], or never when there is no deadline.
    pub async fn wait_until_opt(&mut self, at: Option<Instant>) {
        match at {
            Some(at) => self.wait_until(at).await,
            None => std::future::pending().await,
        }
    }

    /// Completes at `at` (at once if it has passed). Cancel-safe: dropped before the
    /// deadline, the timer stays armed, and the next wait for the same deadline goes on.
    pub async fn wait_until(&mut self, at: Instant) {
        let Some(fd) = &self.fd else {
            return tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
        };
        if self.armed != Some(at) {
            if arm(fd.get_ref(), at).is_err() {
                return tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            }
            self.armed = Some(at);
        }
        loop {
            let Ok(mut ready) = fd.readable().await else {
                return tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await;
            };
            if read_expirations(fd.get_ref()) {
                // The expiration is consumed: the fd is not readable until the timer fires
                // again, so the next wait goes straight to the reactor (without this, it
                // began with a read failing with EAGAIN: one syscall per batch).
                ready.clear_ready();
                self.armed = None;
                return;
            }
            // EAGAIN: readiness left over from before the last re-arm.
            ready.clear_ready();
        }
    }
}

/// True when the timer fired (its expiration count was read); false on `EAGAIN`.
fn read_expirations(fd: &OwnedFd) -> bool {
    let mut expirations = [0u8; 8];
    matches!(rustix::io::read(fd, &mut expirations), Ok(8))
}

fn timerfd() -> io::Result<AsyncFd<OwnedFd>> {
    let fd = timerfd_create(
        TimerfdClockId::Monotonic,
        TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
    )?;
    // Deprecated in tokio 1.54 because an arbitrary `AsRawFd` may close or swap its
    // descriptor while registered; an `OwnedFd` owned by the `AsyncFd` cannot, and the
    // replacement (`register`) is `unsafe`, which this crate forbids.
    #[allow(deprecated)]
    AsyncFd::new(fd)
}

/// One-shot, relative to now (std's `Instant` is CLOCK_MONOTONIC too, but opaque). A
/// deadline already passed is armed 1 ns ahead (a zero value would disarm).
fn arm(fd: &OwnedFd, at: Instant) -> io::Result<()> {
    let rest = at.saturating_duration_since(Instant::now());
    let spec = Itimerspec {
        it_interval: Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        },
        it_value: Timespec {
            tv_sec: rest.as_secs() as _,
            tv_nsec: rest.subsec_nanos().max(u32::from(rest.is_zero())) as _,
        },
    };
    timerfd_settime(fd, TimerfdTimerFlags::empty(), &spec)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn fires_at_the_deadline_not_before() {
        let mut timer = ReadTimer::new();
        assert!(timer.fd.is_some(), "timerfd available here");
        for ms in [0, 1, 20, 70] {
            let started = Instant::now();
            let at = started + Duration::from_millis(ms);
            timer.wait_until(at).await;
            assert!(Instant::now() >= at, "woke early for {ms} ms");
        }
    }

    #[tokio::test]
    async fn a_wait_dropped_early_and_a_new_deadline_both_hold() {
        let mut timer = ReadTimer::new();
        let far = Instant::now() + Duration::from_secs(30);
        // Dropped before it fires: the timer stays armed for `far`.
        let dropped = tokio::time::timeout(Duration::from_millis(5), timer.wait_until(far)).await;
        assert!(dropped.is_err());
        // A nearer deadline re-arms it.
        let near = Instant::now() + Duration::from_millis(10);
        tokio::time::timeout(Duration::from_secs(5), timer.wait_until(near))
            .await
            .expect("re-armed for the nearer deadline");
        assert!(Instant::now() >= near);
        // A deadline in the past completes at once.
        tokio::time::timeout(Duration::from_secs(1), timer.wait_until(near))
            .await
            .expect("a passed deadline completes");
    }
}
