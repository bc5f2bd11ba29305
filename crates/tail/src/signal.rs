//! Wake-ups for the tailer's thread: file-system events from notify, and the waker.
//!
//! notify's callback runs on notify's own thread and only flags and sends; the
//! channel holds at most one message, so a burst of events (one per append) costs
//! no memory and coalesces into one wake-up. The tailer trusts its own offsets,
//! never the event kinds: an event only means "look again".

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
        }
    }

    pub fn waker(&self) -> TailWaker {
        TailWaker {
            tx: self.tx.clone(),
        }
    }

    pub fn is_watching(&self) -> bool {
        self.watcher.is_some()
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
