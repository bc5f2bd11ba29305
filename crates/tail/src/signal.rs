//! Wake-ups for the tailer's thread: file-system events from notify, and the waker.
//!
//! notify's callback runs on notify's own thread and only flags and sends; the
//! channel holds at most one message, so a burst of events (one per append) costs
//! no memory and coalesces into one wake-up. The tailer trusts its own offsets,
//! never the event kinds: an event only means "look again".
//!
//! Paused events: a file written at an ordinary rate produces one inotify event per
//! append, and notify's thread wakes for each of them — at 10 000 lines/s that alone was
//! ~40 % of the watcher's CPU (perf). While the reader lingers between batches it looks
//! at the files by itself anyway, so it pauses the watch ([`Signals::pause`]): the
//! tailer then reads its open files at each look, and a `stat` of the directories
//! (`stamp.rs`) stands in for the create/rename/delete events. When a look finds
//! nothing the watch is re-armed ([`Signals::resume`]) before the tailer sleeps.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use notify::event::ModifyKind;
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

/// Written files remembered between two looks; beyond that, a full scan.
const TOUCHED_MAX: usize = 1024;

/// Retry setting up the watch at most this often (the directory may appear later).
const WATCH_RETRY: Duration = Duration::from_secs(10);

/// Makes a blocked [`crate::Tailer::wait`] return (used for shutdown). A wake
/// sent while nobody waits makes the next wait return at once.
#[derive(Debug, Clone)]
pub struct TailWaker {
    tx: SyncSender<()>,
}

impl TailWaker {
    pub fn wake(&self) {
        poke(&self.tx);
    }
}

fn poke(tx: &SyncSender<()>) {
    match tx.try_send(()) {
        // Full: a wake-up is already pending, which is all we need.
        // Disconnected: the tailer is gone, nobody to wake.
        Ok(()) | Err(TrySendError::Full(())) | Err(TrySendError::Disconnected(())) => {}
    }
}

pub(crate) struct Signals {
    tx: SyncSender<()>,
    rx: Receiver<()>,
    /// Set by notify's callback: entries appeared, vanished or were renamed (or an
    /// event could not be classified): scan.
    fs_changed: Arc<AtomicBool>,
    /// Files whose content changed (a write): read them, no scan needed.
    touched: Arc<Mutex<Vec<PathBuf>>>,
    dir: PathBuf,
    watcher: Option<RecommendedWatcher>,
    last_attempt: Option<Instant>,
    /// The watch is paused (see the module doc).
    paused: bool,
    /// Set by [`Signals::resume`]: one more look without events is owed (what changed
    /// between the last paused look and the re-armed watch).
    owed_look: bool,
}

impl Signals {
    pub fn new(dir: &Path) -> Signals {
        let (tx, rx) = mpsc::sync_channel(1);
        Signals {
            tx,
            rx,
            fs_changed: Arc::new(AtomicBool::new(false)),
            touched: Arc::new(Mutex::new(Vec::new())),
            dir: dir.to_path_buf(),
            watcher: None,
            last_attempt: None,
            paused: false,
            owed_look: false,
        }
    }

    pub fn waker(&self) -> TailWaker {
        TailWaker {
            tx: self.tx.clone(),
        }
    }

    /// Whether a directory watch exists (armed or paused).
    pub fn is_watching(&self) -> bool {
        self.watcher.is_some()
    }

    /// Whether the watch is paused: the caller must look at its files by itself.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    /// Stop file events until [`Signals::resume`]. The caller reads the directories'
    /// stamps before this, so a change in between is either an event already flagged or
    /// a new stamp. Without a watch (polling) or if notify refuses, nothing changes.
    pub fn pause(&mut self) {
        if self.paused {
            return;
        }
        if let Some(watcher) = self.watcher.as_mut() {
            self.paused = watcher.unwatch(&self.dir).is_ok();
        }
    }

    /// Re-arm a paused watch. If notify refuses, the watcher is dropped (polling until
    /// [`Signals::ensure_watch`] succeeds again) and a full scan is flagged. Either way one
    /// more look is owed: changes between the last paused look and now raised no event
    /// (the caller compares its stamps after this, for the directory entries).
    pub fn resume(&mut self) {
        if !std::mem::take(&mut self.paused) {
            return;
        }
        let armed = self
            .watcher
            .as_mut()
            .is_some_and(|w| w.watch(&self.dir, RecursiveMode::NonRecursive).is_ok());
        if !armed {
            self.watcher = None;
            self.fs_changed.store(true, Ordering::SeqCst);
        }
        self.owed_look = true;
    }

    /// While paused, and once after a resume: true when the caller must read its open
    /// files by itself (no event will say which were written).
    pub fn take_own_look(&mut self) -> bool {
        std::mem::take(&mut self.owed_look) || self.paused
    }

    /// Set up the directory watch if there is none yet (at most every [`WATCH_RETRY`]).
    /// Returns the error of a failed attempt, for the caller to report.
    pub fn ensure_watch(&mut self) -> Option<io::Error> {
        if self.watcher.is_some() || self.last_attempt.is_some_and(|t| t.elapsed() < WATCH_RETRY) {
            return None;
        }
        self.last_attempt = Some(Instant::now());
        let tx = self.tx.clone();
        let flag = Arc::clone(&self.fs_changed);
        let touched = Arc::clone(&self.touched);
        let handler = move |event: notify::Result<notify::Event>| {
            match &event {
                // Our own opens show up as Access events: ignoring them avoids waking
                // ourselves in a loop.
                Ok(event) if matches!(event.kind, EventKind::Access(_)) => return,
                // A write: only that file needs a look (cheap at thousands of files).
                Ok(event)
                    if matches!(
                        event.kind,
                        EventKind::Modify(ModifyKind::Data(_)) | EventKind::Modify(ModifyKind::Any)
                    ) && !event.paths.is_empty() =>
                {
                    let mut list = touched.lock().unwrap_or_else(|e| e.into_inner());
                    if list.len() + event.paths.len() > TOUCHED_MAX {
                        flag.store(true, Ordering::SeqCst);
                    } else {
                        for p in &event.paths {
                            if !list.contains(p) {
                                list.push(p.clone());
                            }
                        }
                    }
                }
                // Anything else (create, remove, rename, errors such as a queue overflow):
                // look at the whole directory again.
                _ => flag.store(true, Ordering::SeqCst),
            }
            poke(&tx);
        };
        // The watch is on the directory, not the file: a watch on the file would follow
        // the old inode after a rename and never see the new file.
        let result =
            RecommendedWatcher::new(handler, notify::Config::default()).and_then(|mut watcher| {
                watcher.watch(&self.dir, RecursiveMode::NonRecursive)?;
                Ok(watcher)
            });
        match result {
            Ok(watcher) => {
                self.watcher = Some(watcher);
                // Things may have changed before the watch existed.
                self.fs_changed.store(true, Ordering::SeqCst);
                None
            }
            Err(e) => Some(io::Error::other(e)),
        }
    }

    /// Whether a file-system event arrived since the last call (clears the flag and
    /// any pending wake-up message).
    pub fn take_changed(&mut self) -> bool {
        while self.rx.try_recv().is_ok() {}
        self.fs_changed.swap(false, Ordering::SeqCst)
    }

    /// Files written since the last call.
    pub fn take_touched(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut *self.touched.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Block until an event or a wake-up arrives, or `timeout` passes.
    pub fn wait(&mut self, timeout: Duration) {
        match self.rx.recv_timeout(timeout) {
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
            // Cannot happen (we hold a sender), but never spin if it did.
            Err(RecvTimeoutError::Disconnected) => std::thread::sleep(timeout),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waker_interrupts_wait_and_is_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let mut signals = Signals::new(dir.path());
        let waker = signals.waker();
        waker.wake();
        waker.wake();
        let started = Instant::now();
        signals.wait(Duration::from_secs(5));
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(!signals.take_changed());
    }

    #[test]
    fn file_events_wake_and_flag() {
        let dir = tempfile::tempdir().unwrap();
        let mut signals = Signals::new(dir.path());
        assert!(signals.ensure_watch().is_none());
        assert!(signals.is_watching());
        assert!(signals.take_changed());
        std::fs::write(dir.path().join("a.log"), b"x\n").unwrap();
        let started = Instant::now();
        signals.wait(Duration::from_secs(5));
        assert!(started.elapsed() < Duration::from_secs(2));
        // The callback flags before it sends, so the flag is visible once woken.
        assert!(signals.take_changed());
    }

    /// Paused: appends wake nobody; a resume owes exactly one look and brings the events
    /// back.
    #[test]
    fn paused_watch_is_deaf_until_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.log");
        std::fs::write(&file, b"x\n").unwrap();
        let mut signals = Signals::new(dir.path());
        assert!(signals.ensure_watch().is_none());
        signals.take_changed();
        signals.pause();
        assert!(signals.is_paused());
        assert!(signals.take_own_look());
        assert!(signals.take_own_look(), "every look while paused");
        std::fs::write(&file, b"x\ny\n").unwrap();
        std::fs::write(dir.path().join("b.log"), b"z\n").unwrap();
        let started = Instant::now();
        signals.wait(Duration::from_millis(300));
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert!(signals.take_touched().is_empty());

        signals.resume();
        assert!(!signals.is_paused());
        assert!(signals.take_own_look(), "one look owed after a resume");
        assert!(!signals.take_own_look());
        signals.take_changed();
        std::fs::write(&file, b"x\ny\nw\n").unwrap();
        let started = Instant::now();
        signals.wait(Duration::from_secs(5));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "events are back"
        );
    }

    #[test]
    fn missing_directory_reports_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut signals = Signals::new(&dir.path().join("missing"));
        assert!(signals.ensure_watch().is_some());
        assert!(!signals.is_watching());
        // No retry before WATCH_RETRY.
        assert!(signals.ensure_watch().is_none());
    }
}
