//! The reading side: the tailer on its own OS thread, handing items to the
//! async publisher through a small bounded channel.
//!
//! Why a thread: the tailer does plain blocking `read`s with large buffers
//! (far faster than `tokio::fs`), and it sleeps in `wait` on inotify events.
//! Why a bounded channel of two: while Redis is down the channel fills, the
//! thread blocks, and the file itself is the buffer — memory stays at a couple
//! of batches whatever the outage length.
//!
//! Why it sleeps before some reads: see [`crate::linger`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use redtail_tail::{TailItem, TailWaker, Tailer};

use crate::handoff::{Handoff, Parked, Parking};
use crate::linger::{BatchLimits, Pace};
use tokio::sync::mpsc;

/// Items queued between the reader and the publisher. One is being built by
/// the reader, two wait here, one is in flight: a bounded pipeline.
pub(crate) const CHANNEL_DEPTH: usize = 2;

pub(crate) struct Reader {
    stop: Arc<AtomicBool>,
    drain: DrainSwitch,
    waker: TailWaker,
    room: RoomSignal,
    handoff: Handoff,
    handle: Option<JoinHandle<()>>,
}

/// Tells a reader waiting on a full channel that the pipeline took an item. Without it the
/// reader tried again only after its stall look (50 ms) or a file event: where the log
/// directory holds nothing else (a pod), a backlog drained at ~3 batches per 50 ms —
/// 52 k lines/s instead of 157 k/s in the same minute (scripts/bench.sh, 300 000 lines).
#[derive(Clone)]
pub(crate) struct RoomSignal {
    waiting: Arc<AtomicBool>,
    waker: TailWaker,
}

impl RoomSignal {
    /// The pipeline took an item: wake the reader if it waits for room (one flag test
    /// otherwise).
    pub fn took_item(&self) {
        if self.waiting.swap(false, Ordering::AcqRel) {
            self.waker.wake();
        }
    }
}

/// Turns the reader from "follow the files" into "hand out what they hold now, then end"
/// (SIGTERM). Cloneable so a shutdown task can flip it while the pipeline keeps consuming.
#[derive(Clone)]
pub(crate) struct DrainSwitch {
    flag: Arc<AtomicBool>,
    waker: TailWaker,
    handoff: Handoff,
}

impl DrainSwitch {
    /// Stop waiting for new data: the thread reads on until the tailer has nothing more to
    /// hand out, then ends, and the closed channel tells the pipeline the files are drained.
    pub fn drain(&self) {
        self.flag.store(true, Ordering::Release);
        self.waker.wake();
        self.handoff.wake_reader();
    }

    fn is_on(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }
}

pub(crate) struct ReadLimits {
    pub batch: BatchLimits,
    pub poll_interval: Duration,
    /// Longest wait after a batch that was not full (see [`crate::linger`]); zero = off.
    pub linger: Duration,
}

/// Hand `item` to the publisher. While the channel is full (Redis slow or down) keep
/// looking at the files, so that files rotated during the stall are found and held
/// open before the application deletes them; memory stays bounded (the tailer only
/// opens, it reads nothing while the channel is full). False: the publisher is gone.
fn send(
    tx: &mpsc::Sender<TailItem>,
    room: &RoomSignal,
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
                // Flag first, then try once more: an item taken in between is either seen
                // by this try or wakes the wait below.
                room.waiting.store(true, Ordering::Release);
                match tx.try_send(back) {
                    Ok(()) => {
                        room.waiting.store(false, Ordering::Release);
                        return true;
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => return false,
                    Err(mpsc::error::TrySendError::Full(back)) => item = back,
                }
                tailer.wait(limits.poll_interval.min(STALL_LOOK));
                tailer.discover();
            }
        }
    }
}

/// How often a stalled reader looks at the files at most.
const STALL_LOOK: Duration = Duration::from_millis(50);

impl Reader {
    /// Starts the thread. It ends when `stop` is called, when the receiver is dropped, or,
    /// once [`DrainSwitch::drain`] was called, when the tailer has nothing more to hand out.
    pub fn spawn(
        mut tailer: Tailer,
        limits: ReadLimits,
        tx: mpsc::Sender<TailItem>,
    ) -> std::io::Result<Reader> {
        let stop = Arc::new(AtomicBool::new(false));
        let handoff = Handoff::new();
        let handoff_for_thread = handoff.clone();
        let waker = tailer.waker();
        let thread_stop = stop.clone();
        let drain = DrainSwitch {
            flag: Arc::new(AtomicBool::new(false)),
            waker: waker.clone(),
            handoff: handoff.clone(),
        };
        let thread_drain = drain.clone();
        let room = RoomSignal {
            waiting: Arc::new(AtomicBool::new(false)),
            waker: waker.clone(),
        };
        let thread_room = room.clone();
        let handle = std::thread::Builder::new()
            .name("redtail-reader".into())
            .spawn(move || {
                let mut pace = Pace::new(limits.batch, limits.linger);
                let thread_handoff = handoff_for_thread;
                let mut drain_started: Option<Instant> = None;
                while !thread_stop.load(Ordering::Acquire) {
                    if drain_started.is_none() && thread_drain.is_on() {
                        drain_started = Some(Instant::now());
                        // Shutdown: look at every file now, and hand out open multi-line
                        // events instead of waiting for their timeout.
                        tailer.request_scan();
                        tailer.flush_open_events();
                    }
                    let rest = pace.linger.remaining(Instant::now());
                    if let (None, Some(rest)) = (drain_started, rest) {
                        // Deaf to file events on purpose: coalescing them is the point. The
                        // events themselves are paused too: each append would wake notify's
                        // thread for nothing (the next look reads anyway); the next wait
                        // re-arms them. The pipeline's thread makes the next reads while
                        // this one is parked (see `handoff.rs`); stop and drain take it back.
                        tailer.pause_events();
                        let leave = || thread_stop.load(Ordering::Acquire) || thread_drain.is_on();
                        let (back, refused) =
                            match thread_handoff.park(Parked { tailer, pace }, leave) {
                                Parking::Back(back) => (back, false),
                                Parking::Refused(back) => (back, true),
                            };
                        (tailer, pace) = (back.tailer, back.pace);
                        if refused {
                            // Publishing is stalled: sleep here (bounded by the linger, so
                            // stop() waits at most that long), then read and queue as usual.
                            std::thread::sleep(rest);
                            pace.linger.slept();
                        }
                        continue; // re-check stop
                    }
                    if let Some(item) = pace.read(&mut tailer) {
                        if !send(&tx, &thread_room, item, &mut tailer, &limits, &thread_stop) {
                            return; // publisher gone: shutting down
                        }
                        continue;
                    }
                    match drain_started {
                        None => tailer.wait(limits.poll_interval),
                        Some(started) => {
                            match drain_wait(started.elapsed(), limits.poll_interval) {
                                // Drained: dropping `tx` closes the channel, which is the signal.
                                None => return,
                                Some(wait) => tailer.wait(wait),
                            }
                        }
                    }
                }
            })?;
        Ok(Reader {
            stop,
            drain,
            waker,
            room,
            handoff,
            handle: Some(handle),
        })
    }

    /// For the pipeline: call [`RoomSignal::took_item`] after each item it takes.
    pub fn room_signal(&self) -> RoomSignal {
        self.room.clone()
    }

    pub fn drain_switch(&self) -> DrainSwitch {
        self.drain.clone()
    }

    /// Ask the thread to stop reading; it finishes the item it is building.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.waker.wake();
        self.handoff.wake_reader();
    }

    /// For the pipeline: the reads to make while the reader lingers (see `handoff.rs`).
    pub fn handoff(&self) -> Handoff {
        self.handoff.clone()
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

    use redtail_tail::{NoEvents, TailConfig};

    /// A backlog in a directory where nothing else is written (no file event wakes the
    /// reader): taking each item must let the reader go on at once. Before the room signal
    /// it waited its 50 ms stall look whenever the channel was full: 100 batches took
    /// ~2.5 s; with it ~0.15 s (1 ms per "publish").
    #[test]
    fn a_full_channel_does_not_stall_the_drain() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let line = "x".repeat(149) + "\n";
        std::fs::write(&log, line.repeat(100 * 1024)).unwrap();
        let config = TailConfig {
            poll_interval: Duration::from_secs(60),
            ..TailConfig::new(&log)
        };
        let tailer = Tailer::new(config, Vec::new(), Arc::new(NoEvents)).unwrap();
        let (tx, mut rx) = mpsc::channel(CHANNEL_DEPTH);
        let limits = ReadLimits {
            batch: BatchLimits {
                max_lines: 1024,
                max_bytes: 1 << 20,
            },
            poll_interval: Duration::from_secs(60),
            linger: Duration::ZERO,
        };
        let reader = Reader::spawn(tailer, limits, tx).unwrap();
        let room = reader.room_signal();
        let started = Instant::now();
        let mut lines = 0;
        while lines < 100 * 1024 {
            match rx.blocking_recv() {
                Some(TailItem::Lines(batch)) => {
                    lines += batch.len();
                    // A publish takes a while: the reader keeps the channel full.
                    std::thread::sleep(Duration::from_millis(1));
                }
                Some(_) => {}
                None => panic!("reader ended"),
            }
            room.took_item();
        }
        let took = started.elapsed();
        drop(rx);
        reader.join();
        assert!(
            took < Duration::from_millis(1500),
            "100 batches took {took:?}"
        );
    }

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
