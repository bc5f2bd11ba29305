//! The reading side: the tailer on its own OS thread, handing items to the
//! async publisher through a small bounded channel.
//!
//! Why a thread: the tailer does plain blocking `read`s with large buffers
//! (far faster than `tokio::fs`), and it sleeps in `wait` on inotify events.
//! Why a bounded channel of two: while Redis is down the channel fills, the
//! thread blocks, and the file itself is the buffer — memory stays at a couple
//! of batches whatever the outage length.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redtail_tail::{TailItem, TailWaker, Tailer};
use tokio::sync::mpsc;

/// Items queued between the reader and the publisher. One is being built by
/// the reader, two wait here, one is in flight: a bounded pipeline.
pub(crate) const CHANNEL_DEPTH: usize = 2;

pub(crate) struct Reader {
    stop: Arc<AtomicBool>,
    drain: DrainSwitch,
    waker: TailWaker,
    handle: Option<JoinHandle<()>>,
}

/// Turns the reader from "follow the files" into "hand out what they hold now, then end"
/// (SIGTERM). Cloneable so a shutdown task can flip it while the pipeline keeps consuming.
#[derive(Clone)]
pub(crate) struct DrainSwitch {
    flag: Arc<AtomicBool>,
    waker: TailWaker,
}

impl DrainSwitch {
    /// Stop waiting for new data: the thread reads on until the tailer has nothing more to
    /// hand out, then ends, and the closed channel tells the pipeline the files are drained.
    pub fn drain(&self) {
        self.flag.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn is_on(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

pub(crate) struct ReadLimits {
    pub max_lines: usize,
    pub max_bytes: usize,
    pub poll_interval: Duration,
}

impl Reader {
    /// Starts the thread. It ends when `stop` is called, when the receiver is dropped, or,
    /// once [`DrainSwitch::drain`] was called, when the tailer has nothing more to hand out.
    pub fn spawn(
        mut tailer: Tailer,
        limits: ReadLimits,
        tx: mpsc::Sender<TailItem>,
    ) -> std::io::Result<Reader> {
        let stop = Arc::new(AtomicBool::new(false));
        let waker = tailer.waker();
        let thread_stop = stop.clone();
        let drain = DrainSwitch {
            flag: Arc::new(AtomicBool::new(false)),
            waker: waker.clone(),
        };
        let thread_drain = drain.clone();
        let handle = std::thread::Builder::new()
            .name("redtail-reader".into())
            .spawn(move || {
                let mut drain_started: Option<Instant> = None;
                while !thread_stop.load(Ordering::Acquire) {
                    if drain_started.is_none() && thread_drain.is_on() {
                        drain_started = Some(Instant::now());
                    }
                    match tailer.next_item(limits.max_lines, limits.max_bytes) {
                        Ok(Some(item)) => {
                            if tx.blocking_send(item).is_err() {
                                return; // publisher gone: shutting down
                            }
                            continue;
                        }
                        Ok(None) => {}
                        // Reported through TailEvents where it has a path; a
                        // whole-tailer error is retried after a poll interval.
                        Err(error) => {
                            tracing::warn!(%error, reason = error.reason(), "Tailer error; retrying.");
                        }
                    }
                    match drain_started {
                        None => tailer.wait(limits.poll_interval),
                        Some(started) => match drain_wait(started.elapsed(), limits.poll_interval) {
                            // Drained: dropping `tx` closes the channel, which is the signal.
                            None => return,
                            Some(wait) => tailer.wait(wait),
                        },
                    }
                }
            })?;
        Ok(Reader {
            stop,
            drain,
            waker,
            handle: Some(handle),
        })
    }

    pub fn drain_switch(&self) -> DrainSwitch {
        self.drain.clone()
    }

    /// Ask the thread to stop reading; it finishes the item it is building.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// Wait for the thread to end (the receiver must be dropped first, or it
    /// may be blocked sending).
    pub fn join(mut self) {
        self.stop();
        if let Some(handle) = self.handle.take() {
            if handle.join().is_err() {
                tracing::error!("The reader thread panicked.");
            }
        }
    }
}

/// During a drain, after the tailer said "nothing now" `since_drain` into it: `None` when the
/// drain is complete, else how long to wait before asking again.
///
/// The tailer re-scans the directory (new files, rotations) on a file event or once a poll
/// interval passed since its last scan. So "nothing now" proves the files are drained only
/// if a scan happened after the drain began; the first "nothing now" given at least a poll
/// interval into the drain is such an answer (either a scan ran meanwhile, or that very call
/// ran one). Costs at most one poll interval of a shutdown with nothing left to read.
fn drain_wait(since_drain: Duration, poll_interval: Duration) -> Option<Duration> {
    if since_drain >= poll_interval {
        None
    } else {
        Some(poll_interval - since_drain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drain_ends_only_after_a_poll_interval() {
        let poll = Duration::from_millis(250);
        assert_eq!(drain_wait(Duration::ZERO, poll), Some(poll));
        assert_eq!(
            drain_wait(Duration::from_millis(100), poll),
            Some(Duration::from_millis(150))
        );
        assert_eq!(drain_wait(poll, poll), None);
        assert_eq!(drain_wait(Duration::from_secs(3), poll), None);
    }
}
