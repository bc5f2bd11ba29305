//! How the tailer learns that a look is due: the file-system watch (and the fallback
//! to polling when it cannot be set up), and pausing it while the caller lingers
//! between batches. A paused look reads every open file itself; the directory stamps
//! (`stamp.rs`) cover what changed in the gap before the watch is re-armed.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::Tailer;
use crate::file::Tracked;

/// Most files for which [`Tailer::pause_events`] pauses the watch: a paused look reads
/// every open file, which beats an event per append for a few files, not for thousands.
const PAUSE_MAX_FILES: usize = 16;

impl Tailer {
    /// The caller will look again by itself soon (it lingers between batches): stop
    /// file-system events until the next [`Tailer::wait`], which re-arms them. Meanwhile
    /// each [`Tailer::next_item`] reads every open file and checks the directory for
    /// entries that appeared, vanished or were renamed (see `signal.rs`). Only for a few
    /// files (`PAUSE_MAX_FILES`); with more, events say which file to read.
    pub fn pause_events(&mut self) {
        if self.signals.is_paused()
            || self.files.iter().filter(|f| !f.retired).count() > PAUSE_MAX_FILES
        {
            return;
        }
        // The stamps kept from the last paused spell (re-read at its end, once the watch
        // was back) are compared at the next look: changes since then in a directory the
        // watch does not cover (a symlink's target) show there, the others raised events.
        let dirs: Vec<Arc<Path>> = self.watched_dirs().map(Arc::from).collect();
        self.stamps.track(dirs.iter().map(|d| &**d));
        self.signals.pause();
    }

    /// The directories whose entries matter: the pattern's, and where each file lives
    /// now (a symlink's target directory holds its rotation set).
    pub(super) fn watched_dirs(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.pattern.dir()).chain(
            self.files
                .iter()
                .filter(|f| !f.retired)
                .filter_map(|f| f.location.parent()),
        )
    }

    /// Block until a file-system event arrives, the waker fires, or `timeout` passes
    /// (never past the next poll scan). With events paused it re-arms them and returns at
    /// once instead: the caller looks once more first, since a write between its last look
    /// and the re-armed watch raised no event.
    pub fn wait(&mut self, timeout: Duration) {
        if self.signals.is_paused() {
            self.signals.resume();
            // Compared once the watch is back: any later change raises an event (or, in
            // a directory it does not cover, shows at the next paused look).
            if self.stamps.changed() {
                self.scan_requested = true;
            }
            return;
        }
        let now = self.now();
        let until_poll = match self.last_scan {
            Some(at) => self.config.poll_interval.saturating_sub(now - at),
            None => Duration::ZERO,
        };
        let until_event = self
            .files
            .iter()
            .filter_map(Tracked::deadline)
            .min()
            .map_or(Duration::MAX, |due| due.saturating_duration_since(now));
        self.signals.wait(timeout.min(until_poll).min(until_event));
    }

    pub(super) fn ensure_watch(&mut self) {
        if let Some(e) = self.signals.ensure_watch() {
            if !self.watch_error_reported {
                self.watch_error_reported = true;
                self.events.watch_failed(self.pattern.dir(), &e);
            }
        }
    }

    pub(super) fn take_signals(&mut self) {
        if self.signals.take_own_look() {
            for f in self.files.iter_mut().filter(|f| !f.retired && f.is_open()) {
                f.dirty = true;
            }
            if self.signals.is_paused() && self.stamps.changed() {
                self.scan_requested = true;
            }
        }
        if self.signals.take_changed() {
            self.scan_requested = true;
        }
        for path in self.signals.take_touched() {
            let mut found = false;
            for f in self.files.iter_mut().filter(|f| *f.entry == *path) {
                f.dirty = true;
                found = true;
            }
            if !found {
                self.scan_requested = true;
            }
        }
    }
}
