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
use std::time::Duration;

use redtail_tail::{TailItem, TailWaker, Tailer};
use tokio::sync::mpsc;

/// Items queued between the reader and the publisher. One is being built by
/// the reader, two wait here, one is in flight: a bounded pipeline.
pub(crate) const CHANNEL_DEPTH: usize = 2;

pub(crate) struct Reader {
    stop: Arc<AtomicBool>,
    waker: TailWaker,
    handle: Option<JoinHandle<()>>,
}

pub(crate) struct ReadLimits {
    pub max_lines: usize,
    pub max_bytes: usize,
    pub poll_interval: Duration,
}

/// Hand `item` to the publisher. While the channel is full (Redis slow or down) keep
/// looking at the files, so that files rotated during the stall are found and held
/// open before the application deletes them; memory stays bounded (the tailer only
/// opens, it reads nothing while the channel is full). False: the publisher is gone.
fn send(
    tx: &mpsc::Sender<TailItem>,
    item: TailItem,
    tailer: &mut Tailer,
    limits: &ReadLimits,
    stop: &AtomicBool,
) -> bool {
    let mut item = item;
    loop {
        match tx.try_send(item) {
            Ok(()) => return true,
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
            Err(mpsc::error::TrySendError::Full(back)) => {
                if stop.load(Ordering::Acquire) {
                    // Shutting down: the publisher drains; block for the slot.
                    return tx.blocking_send(back).is_ok();
                }
                item = back;
                tailer.wait(limits.poll_interval.min(STALL_LOOK));
                tailer.discover();
            }
        }
    }
}

/// How often a stalled reader looks at the files at most.
const STALL_LOOK: Duration = Duration::from_millis(50);

impl Reader {
    /// Starts the thread. It ends when `stop` is called or the receiver is dropped.
    pub fn spawn(
        mut tailer: Tailer,
        limits: ReadLimits,
        tx: mpsc::Sender<TailItem>,
    ) -> std::io::Result<Reader> {
        let stop = Arc::new(AtomicBool::new(false));
        let waker = tailer.waker();
        let thread_stop = stop.clone();
        let handle = std::thread::Builder::new()
            .name("redtail-reader".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Acquire) {
                    match tailer.next_item(limits.max_lines, limits.max_bytes) {
                        Ok(Some(item)) => {
                            if !send(&tx, item, &mut tailer, &limits, &thread_stop) {
                                return; // publisher gone: shutting down
                            }
                        }
                        Ok(None) => tailer.wait(limits.poll_interval),
                        Err(error) => {
                            // Reported through TailEvents where it has a path; a
                            // whole-tailer error is retried after a poll interval.
                            tracing::warn!(%error, reason = error.reason(), "Tailer error; retrying.");
                            tailer.wait(limits.poll_interval);
                        }
                    }
                }
            })?;
        Ok(Reader {
            stop,
            waker,
            handle: Some(handle),
        })
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
