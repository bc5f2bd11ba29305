//! While the reader lingers, the pipeline's own thread does its next reads.
//!
//! Why: at a live rate every batch cost three wake-ups — the reader's timer, the reader
//! waking the pipeline's thread to hand it the batch, and Redis' reply — and on a small VM
//! a wake-up (a context switch, often an inter-processor interrupt) is most of what a batch
//! costs. A reader about to linger instead parks here with its tailer; the pipeline sleeps
//! until the read is due on its own timer, reads (a live batch is a few KiB from the page
//! cache), and publishes what it read without a hand-over: two wake-ups per batch.
//!
//! The tailer is given back to the reader thread — which then goes on exactly as before —
//! as soon as a read finds nothing (the file went quiet: waiting on file events is the
//! reader's job), returns anything but a small batch (a backlog, a new file, a rotation),
//! or fails; and when the reader is stopped or drained. Reads happen one at a time, in
//! order: the reader only parks after its last item went into the channel, and the
//! pipeline only reads here when the channel is empty.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use redtail_tail::{TailItem, Tailer};

use crate::linger::Linger;

/// What the reader thread hands over while it is parked.
pub(crate) struct Parked {
    pub tailer: Tailer,
    pub linger: Linger,
    /// The reader's "found nothing since the last full batch" (see `reader.rs`).
    pub caught_up: bool,
}

/// How [`Handoff::park`] ended.
pub(crate) enum Parking {
    /// Taken and given back (or not taken: stop or drain came first).
    Back(Parked),
    /// Refused: a publish is stalled; the reader lingers by itself instead.
    Refused(Parked),
}

struct Slot {
    parked: Option<Parked>,
    /// The pipeline is done with the parked state: the reader takes it back.
    give_back: bool,
    /// A publish is taking long (Redis slow or down): the reader keeps its files and
    /// looks at them meanwhile, so that files rotated away and deleted during the stall
    /// are found and held open (see `send` in `reader.rs`); it does not park.
    stalled: bool,
}

/// Batch limits of a read made here (the reader's own).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HandoffLimits {
    pub max_lines: usize,
    pub max_bytes: usize,
}

impl HandoffLimits {
    /// A batch that stopped short of both limits: the file had no more complete lines yet.
    pub fn is_small(&self, batch: &redtail_tail::Batch) -> bool {
        batch.len() < self.max_lines && batch.bytes() < self.max_bytes / 2
    }
}

#[derive(Clone)]
pub(crate) struct Handoff {
    shared: Arc<(Mutex<Slot>, Condvar)>,
    /// Raised when the reader parks: the pipeline may be asleep with no read due yet (it
    /// looked before the reader parked). A permit is kept if it is not waiting.
    parked_signal: Arc<tokio::sync::Notify>,
    limits: HandoffLimits,
}

impl Handoff {
    pub fn new(limits: HandoffLimits) -> Handoff {
        let slot = Slot {
            parked: None,
            give_back: false,
            stalled: false,
        };
        Handoff {
            shared: Arc::new((Mutex::new(slot), Condvar::new())),
            parked_signal: Arc::new(tokio::sync::Notify::new()),
            limits,
        }
    }

    fn slot(&self) -> MutexGuard<'_, Slot> {
        // A panic while holding the lock (a tailer bug) leaves the slot consistent: every
        // change to it is a single assignment.
        self.shared.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reader side: hand `parked` over and block until it comes back — the pipeline gave it
    /// back, or `leave()` turned true (stop, drain; checked under the lock, and every such
    /// change is followed by [`Handoff::wake_reader`], so none is missed).
    pub fn park(&self, parked: Parked, leave: impl Fn() -> bool) -> Parking {
        let mut slot = self.slot();
        if leave() {
            return Parking::Back(parked);
        }
        if slot.stalled {
            return Parking::Refused(parked);
        }
        slot.parked = Some(parked);
        slot.give_back = false;
        self.parked_signal.notify_one();
        loop {
            slot = self.shared.1.wait(slot).unwrap_or_else(|e| e.into_inner());
            if slot.give_back || leave() {
                if let Some(parked) = slot.parked.take() {
                    return Parking::Back(parked);
                }
            }
        }
    }

    /// Pipeline side: a publish is taking long. A parked reader is given its files back,
    /// and none parks until [`Handoff::unstall`].
    pub fn stall(&self) {
        let mut slot = self.slot();
        slot.stalled = true;
        if slot.parked.is_some() {
            slot.give_back = true;
            self.shared.1.notify_all();
        }
    }

    /// Pipeline side: the publish that stalled is done.
    pub fn unstall(&self) {
        self.slot().stalled = false;
    }

    /// Wake a parked reader so that it checks its stop and drain flags.
    pub fn wake_reader(&self) {
        let _slot = self.slot();
        self.shared.1.notify_all();
    }

    /// Pipeline side: completes when the reader parked since it last completed.
    pub fn parked_signal(&self) -> Arc<tokio::sync::Notify> {
        self.parked_signal.clone()
    }

    /// Pipeline side: when the parked reader's next read is due; `None` when no reader is
    /// parked here.
    pub fn due(&self) -> Option<Instant> {
        let slot = self.slot();
        match &slot.parked {
            Some(parked) if !slot.give_back => {
                Some(parked.linger.until().unwrap_or_else(Instant::now))
            }
            _ => None,
        }
    }

    /// Pipeline side, once [`Handoff::due`] has passed: the read the reader would have
    /// made. A small batch keeps the reader parked (the next read is due after the linger);
    /// anything else gives the tailer back to the reader thread first.
    pub fn read(&self) -> Option<TailItem> {
        let mut slot = self.slot();
        if slot.give_back {
            return None;
        }
        let parked = slot.parked.as_mut()?;
        parked.linger.slept();
        let read = parked
            .tailer
            .next_item(self.limits.max_lines, self.limits.max_bytes);
        let now = Instant::now();
        let keep = match &read {
            Ok(Some(TailItem::Lines(batch))) => {
                let small = self.limits.is_small(batch);
                parked.caught_up &= small;
                parked
                    .linger
                    .batch_read(now, batch.len(), small && parked.caught_up);
                parked.linger.remaining(now).is_some()
            }
            Ok(Some(_)) => false,
            Ok(None) => {
                parked.caught_up = true;
                false
            }
            Err(error) => {
                tracing::warn!(%error, reason = error.reason(), "Tailer error; retrying.");
                false
            }
        };
        if keep {
            // The next read is this thread's again: keep file events off meanwhile.
            parked.tailer.pause_events();
        } else {
            slot.give_back = true;
            self.shared.1.notify_all();
        }
        read.ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use redtail_tail::{NoEvents, TailConfig};

    const LIMITS: HandoffLimits = HandoffLimits {
        max_lines: 4,
        max_bytes: 1 << 20,
    };

    fn append(path: &std::path::Path, lines: &[&str]) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        for line in lines {
            writeln!(f, "{line}").unwrap();
        }
    }

    fn texts(item: Option<TailItem>) -> Vec<String> {
        match item {
            Some(TailItem::Lines(batch)) => (0..batch.len())
                .map(|i| String::from_utf8_lossy(batch.line(i)).into_owned())
                .collect(),
            other => panic!("expected lines, got {other:?}"),
        }
    }

    /// A tailer past its `Opened` item, and the first batch it read (the reader's part).
    fn started(log: &std::path::Path) -> (Tailer, Vec<String>) {
        let config = TailConfig {
            poll_interval: Duration::from_secs(60),
            ..TailConfig::new(log)
        };
        let mut tailer = Tailer::new(config, Vec::new(), Arc::new(NoEvents)).unwrap();
        loop {
            match tailer
                .next_item(LIMITS.max_lines, LIMITS.max_bytes)
                .unwrap()
            {
                Some(TailItem::Lines(batch)) => {
                    let first = texts(Some(TailItem::Lines(batch)));
                    return (tailer, first);
                }
                Some(_) => continue,
                None => panic!("nothing to read"),
            }
        }
    }

    fn back_of(parking: Parking) -> Parked {
        match parking {
            Parking::Back(parked) => parked,
            Parking::Refused(_) => panic!("refused"),
        }
    }

    fn wait_parked(handoff: &Handoff) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while handoff.due().is_none() {
            assert!(Instant::now() < deadline, "reader never parked");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The reads made here continue exactly where the reader stopped, a small batch keeps
    /// the reader parked, and the read that finds nothing hands the tailer back — which
    /// then goes on from the same place: no line read twice, none skipped.
    #[test]
    fn reads_here_continue_the_reader_s_and_hand_back_when_the_file_is_quiet() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, &["a1", "a2"]);
        let (tailer, first) = started(&log);
        assert_eq!(first, ["a1", "a2"]);

        let handoff = Handoff::new(LIMITS);
        let mut linger = Linger::new(Duration::from_millis(50));
        linger.batch_read(Instant::now(), 2, true);
        let parked = Parked {
            tailer,
            linger,
            caught_up: true,
        };
        let reader_side = handoff.clone();
        let reader = std::thread::spawn(move || reader_side.park(parked, || false));

        wait_parked(&handoff);
        append(&log, &["b1", "b2", "b3"]);
        assert_eq!(texts(handoff.read()), ["b1", "b2", "b3"]);
        assert!(
            handoff.due().is_some(),
            "a small batch keeps the reader parked"
        );
        append(&log, &["c1"]);
        assert_eq!(texts(handoff.read()), ["c1"]);
        assert!(handoff.read().is_none(), "nothing new");
        assert!(handoff.due().is_none(), "handed back");

        let mut back = back_of(reader.join().unwrap());
        append(&log, &["d1"]);
        let next = back.tailer.next_item(4, 1 << 20).unwrap();
        assert_eq!(texts(next), ["d1"]);
    }

    /// A full batch means a backlog: the reader thread takes over again (it reads ahead
    /// while this thread publishes).
    #[test]
    fn a_full_batch_hands_the_tailer_back() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, &["a1"]);
        let (tailer, _) = started(&log);
        let handoff = Handoff::new(LIMITS);
        let mut linger = Linger::new(Duration::from_millis(50));
        linger.batch_read(Instant::now(), 1, true);
        let reader_side = handoff.clone();
        let reader = std::thread::spawn(move || {
            reader_side.park(
                Parked {
                    tailer,
                    linger,
                    caught_up: true,
                },
                || false,
            )
        });
        wait_parked(&handoff);
        append(&log, &["b1", "b2", "b3", "b4", "b5", "b6"]);
        assert_eq!(texts(handoff.read()), ["b1", "b2", "b3", "b4"]);
        let mut back = back_of(reader.join().unwrap());
        assert!(!back.caught_up, "a full batch is not caught up");
        assert_eq!(
            texts(back.tailer.next_item(4, 1 << 20).unwrap()),
            ["b5", "b6"]
        );
    }

    /// Stop and drain reach a parked reader: it returns with its state, and the pipeline
    /// no longer sees a read due. Also checks that parking raises the pipeline's signal.
    #[test]
    fn a_parked_reader_leaves_when_told() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, &["a1"]);
        let (tailer, _) = started(&log);
        let handoff = Handoff::new(LIMITS);
        let mut linger = Linger::new(Duration::from_millis(50));
        linger.batch_read(Instant::now(), 1, true);
        let leave = Arc::new(AtomicBool::new(false));
        let (reader_side, reader_leave) = (handoff.clone(), leave.clone());
        let signal = handoff.parked_signal();
        let reader = std::thread::spawn(move || {
            reader_side.park(
                Parked {
                    tailer,
                    linger,
                    caught_up: true,
                },
                || reader_leave.load(Ordering::Acquire),
            )
        });
        wait_parked(&handoff);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime
            .block_on(async {
                tokio::time::timeout(Duration::from_secs(1), signal.notified()).await
            })
            .expect("parking raises the signal");
        leave.store(true, Ordering::Release);
        handoff.wake_reader();
        let back = back_of(reader.join().unwrap());
        assert!(back.caught_up);
        assert!(handoff.due().is_none());
        assert!(handoff.read().is_none());
    }

    /// A stalled publish gives a parked reader its files back at once, and no reader parks
    /// until the stall is over (it must look at the files itself meanwhile).
    #[test]
    fn a_stall_hands_the_files_back_and_refuses_parking() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, &["a1"]);
        let (tailer, _) = started(&log);
        let handoff = Handoff::new(LIMITS);
        let mut linger = Linger::new(Duration::from_millis(50));
        linger.batch_read(Instant::now(), 1, true);
        let reader_side = handoff.clone();
        let reader = std::thread::spawn(move || {
            reader_side.park(
                Parked {
                    tailer,
                    linger,
                    caught_up: true,
                },
                || false,
            )
        });
        wait_parked(&handoff);
        handoff.stall();
        let back = back_of(reader.join().unwrap());
        assert!(handoff.due().is_none());
        let Parking::Refused(back) = handoff.park(back, || false) else {
            panic!("parked while stalled");
        };
        handoff.unstall();
        let reader_side = handoff.clone();
        let reader = std::thread::spawn(move || reader_side.park(back, || false));
        wait_parked(&handoff);
        append(&log, &["b1"]);
        assert_eq!(texts(handoff.read()), ["b1"]);
        assert!(handoff.read().is_none());
        assert!(matches!(reader.join().unwrap(), Parking::Back(_)));
    }
}
