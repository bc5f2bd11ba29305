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

use std::future::Future;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use redtail_tail::{TailItem, Tailer};

use crate::linger::Pace;

/// What the reader thread hands over while it is parked.
pub(crate) struct Parked {
    pub tailer: Tailer,
    pub pace: Pace,
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
    /// are found and held open (see `send` in `reader.rs`); it does not park while this is
    /// above 0. A count, so that stalls may overlap.
    stalls: usize,
}

/// A publish or PING taking longer than this gives the reader its files back (see
/// [`Handoff::hand_back_if_slow`]); the reader's own stall look is as often.
pub(crate) const STALLED_AFTER: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub(crate) struct Handoff {
    shared: Arc<(Mutex<Slot>, Condvar)>,
    /// Raised when the reader parks: the pipeline may be asleep with no read due yet (it
    /// looked before the reader parked). A permit is kept if it is not waiting.
    parked_signal: Arc<tokio::sync::Notify>,
}

impl Handoff {
    pub fn new() -> Handoff {
        let slot = Slot {
            parked: None,
            give_back: false,
            stalls: 0,
        };
        Handoff {
            shared: Arc::new((Mutex::new(slot), Condvar::new())),
            parked_signal: Arc::new(tokio::sync::Notify::new()),
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
        if slot.stalls > 0 {
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

    /// Pipeline side: runs `work`, a Redis round trip the pipeline's loop waits for (a
    /// publish, a PING). If it takes longer than [`STALLED_AFTER`] (Redis slow, frozen or
    /// down), a parked reader is given its files back and none parks until `work` is done:
    /// a parked reader looks at nothing, and files rotated away and deleted meanwhile would
    /// be lost (measured: 10 files in a 3 s outage, `tests/rotation.rs`). Every Redis call
    /// that loop awaits goes through here.
    pub async fn hand_back_if_slow<F: Future>(&self, work: F) -> F::Output {
        tokio::pin!(work);
        tokio::select! {
            biased;
            done = &mut work => return done,
            _ = tokio::time::sleep(STALLED_AFTER) => {}
        }
        let _stalled = Stalled::new(self);
        work.await
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
                Some(parked.pace.linger.until().unwrap_or_else(Instant::now))
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
        parked.pace.linger.slept();
        let item = parked.pace.read(&mut parked.tailer);
        let lingers = parked.pace.linger.remaining(Instant::now()).is_some();
        if lingers && matches!(item, Some(TailItem::Lines(_))) {
            // The next read is this thread's again: keep file events off meanwhile.
            parked.tailer.pause_events();
        } else {
            slot.give_back = true;
            self.shared.1.notify_all();
        }
        item
    }
}

/// The stall of [`Handoff::hand_back_if_slow`]; ends when dropped, also when the round trip
/// is cancelled (shutdown), so a stall cannot outlive it.
struct Stalled<'a>(&'a Handoff);

impl<'a> Stalled<'a> {
    fn new(handoff: &'a Handoff) -> Stalled<'a> {
        let mut slot = handoff.slot();
        slot.stalls += 1;
        if slot.parked.is_some() {
            slot.give_back = true;
            handoff.shared.1.notify_all();
        }
        Stalled(handoff)
    }
}

impl Drop for Stalled<'_> {
    fn drop(&mut self) {
        self.0.slot().stalls -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::thread::JoinHandle;

    use redtail_tail::{NoEvents, TailConfig};

    use crate::linger::BatchLimits;

    const LIMITS: BatchLimits = BatchLimits {
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

    /// `lines` in a new log, read by the reader's part: a tailer past its `Opened` item and
    /// its first batch, with a pace that lingers after it (caught up, small batch).
    fn started(lines: &[&str]) -> (tempfile::TempDir, std::path::PathBuf, Parked) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        append(&log, lines);
        let config = TailConfig {
            poll_interval: Duration::from_secs(60),
            ..TailConfig::new(&log)
        };
        let mut tailer = Tailer::new(config, Vec::new(), Arc::new(NoEvents)).unwrap();
        let mut pace = Pace::new(LIMITS, Duration::from_millis(50));
        pace.caught_up = true;
        loop {
            match pace.read(&mut tailer) {
                Some(TailItem::Lines(batch)) => {
                    assert_eq!(texts(Some(TailItem::Lines(batch))), lines);
                    return (dir, log, Parked { tailer, pace });
                }
                Some(_) => continue,
                None => panic!("nothing to read"),
            }
        }
    }

    /// The reader thread parks `parked` (leaving when `leave` turns true); returns once the
    /// pipeline side sees it parked.
    fn park_in_thread(
        handoff: &Handoff,
        parked: Parked,
        leave: Arc<AtomicBool>,
    ) -> JoinHandle<Parking> {
        let reader_side = handoff.clone();
        let reader =
            std::thread::spawn(move || reader_side.park(parked, || leave.load(Ordering::Acquire)));
        let deadline = Instant::now() + Duration::from_secs(5);
        while handoff.due().is_none() {
            assert!(Instant::now() < deadline, "reader never parked");
            std::thread::sleep(Duration::from_millis(1));
        }
        reader
    }

    fn back_of(parking: Parking) -> Parked {
        match parking {
            Parking::Back(parked) => parked,
            Parking::Refused(_) => panic!("refused"),
        }
    }

    fn stays() -> Arc<AtomicBool> {
        Arc::new(AtomicBool::new(false))
    }

    /// The reads made here continue exactly where the reader stopped, a small batch keeps
    /// the reader parked, and the read that finds nothing hands the tailer back — which
    /// then goes on from the same place: no line read twice, none skipped.
    #[test]
    fn reads_here_continue_the_reader_s_and_hand_back_when_the_file_is_quiet() {
        let (_dir, log, parked) = started(&["a1", "a2"]);
        let handoff = Handoff::new();
        let reader = park_in_thread(&handoff, parked, stays());
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
        assert_eq!(texts(back.pace.read(&mut back.tailer)), ["d1"]);
    }

    /// A full batch means a backlog: the reader thread takes over again (it reads ahead
    /// while this thread publishes).
    #[test]
    fn a_full_batch_hands_the_tailer_back() {
        let (_dir, log, parked) = started(&["a1"]);
        let handoff = Handoff::new();
        let reader = park_in_thread(&handoff, parked, stays());
        append(&log, &["b1", "b2", "b3", "b4", "b5", "b6"]);
        assert_eq!(texts(handoff.read()), ["b1", "b2", "b3", "b4"]);
        let mut back = back_of(reader.join().unwrap());
        assert!(!back.pace.caught_up, "a full batch is not caught up");
        assert_eq!(texts(back.pace.read(&mut back.tailer)), ["b5", "b6"]);
    }

    /// Stop and drain reach a parked reader: it returns with its state, and the pipeline
    /// no longer sees a read due. Also checks that parking raises the pipeline's signal.
    #[test]
    fn a_parked_reader_leaves_when_told() {
        let (_dir, _log, parked) = started(&["a1"]);
        let handoff = Handoff::new();
        let signal = handoff.parked_signal();
        let leave = stays();
        let reader = park_in_thread(&handoff, parked, leave.clone());
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
        assert!(back.pace.caught_up);
        assert!(handoff.due().is_none());
        assert!(handoff.read().is_none());
    }

    /// A round trip slower than STALLED_AFTER gives a parked reader its files back, and no
    /// reader parks until it is over (it must look at the files itself meanwhile); a quick
    /// one leaves the reader parked. The same guard covers publishes and the idle PING (a
    /// PING to a frozen Redis once left a parked reader blind: review of `b7d14d9`).
    #[tokio::test(start_paused = true)]
    async fn a_slow_round_trip_hands_the_files_back_and_refuses_parking() {
        let (_dir, log, parked) = started(&["a1"]);
        let handoff = Handoff::new();
        let reader = park_in_thread(&handoff, parked, stays());

        let quick = handoff.hand_back_if_slow(tokio::time::sleep(STALLED_AFTER / 2));
        quick.await;
        assert!(
            handoff.due().is_some(),
            "a quick round trip keeps it parked"
        );

        let during = handoff.hand_back_if_slow(async {
            tokio::time::sleep(STALLED_AFTER * 3).await;
            let deadline = Instant::now() + Duration::from_secs(5);
            while !reader.is_finished() {
                assert!(
                    Instant::now() < deadline,
                    "a slow round trip left it parked"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
            let back = back_of(reader.join().unwrap());
            assert!(handoff.due().is_none());
            let Parking::Refused(back) = handoff.park(back, || false) else {
                panic!("parked while stalled");
            };
            back
        });
        let back = during.await;

        // Over: parking works again, and the reads go on where they were.
        let reader = park_in_thread(&handoff, back, stays());
        append(&log, &["b1"]);
        assert_eq!(texts(handoff.read()), ["b1"]);
        assert!(handoff.read().is_none());
        assert!(matches!(reader.join().unwrap(), Parking::Back(_)));
    }

    /// A round trip cancelled during its stall (shutdown) ends the stall too.
    #[tokio::test(start_paused = true)]
    async fn a_cancelled_round_trip_ends_its_stall() {
        let (_dir, _log, parked) = started(&["a1"]);
        let handoff = Handoff::new();
        let slow = handoff.hand_back_if_slow(std::future::pending::<()>());
        let cancelled = tokio::time::timeout(STALLED_AFTER * 2, slow).await;
        assert!(cancelled.is_err());
        let reader = park_in_thread(&handoff, parked, stays());
        assert!(handoff.read().is_none(), "parked again, and nothing new");
        assert!(matches!(reader.join().unwrap(), Parking::Back(_)));
    }
}
