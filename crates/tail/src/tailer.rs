//! The tailing engine: composes discovery (rotation sets), identity, the per-file state
//! and the framer, and decides what to read next.
//!
//! The invariant: for every identity the engine knows, committed ≤ handed out ≤ read ≤
//! size, and the engine keeps reading that identity, wherever it lives now, until it is
//! at its end and has been idle for the rotate wait, or its bytes are gone (reported).
//! A scan never depends on having seen the previous state: it lists every match and
//! every rotated sibling afresh, so several rotations between two looks, a stall, or a
//! restart all end in the same place.
//!
//! This file holds the engine's state and what it hands out (`next_item`, `serve`);
//! its parts live beside it: `scan` (listing the rotation sets), `identity` (which
//! identity a file holds), `endings` (truncation, retirement, copies of ended
//! content), `budget` (open descriptors) and `watch` (file-system events, pausing).

mod budget;
mod endings;
mod identity;
mod scan;
mod watch;

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::discovery::{FilePattern, Place};
use crate::file::Tracked;
use crate::signal::Signals;
use crate::stamp::DirStamps;
use crate::{FileId, KnownFile, TailConfig, TailError, TailEvents, TailItem, TailWaker};

/// Follows a file, or every file matching a glob, and their rotation sets.
/// Runs on the caller's thread: [`Tailer::next_item`] never blocks, [`Tailer::wait`] does.
pub struct Tailer {
    config: TailConfig,
    pattern: FilePattern,
    events: Arc<dyn TailEvents>,
    /// Items decided during a scan (finished, truncated or superseded files, the last
    /// line of a truncated file); handed out before anything else.
    ready: VecDeque<TailItem>,
    files: Vec<Tracked>,
    /// Known identities (checkpoint ∪ Redis) not matched to a file yet.
    unresolved: Vec<KnownFile>,
    /// Known identities that were deleted while being read: settled as gone at the
    /// first scan.
    deleted_known: Vec<KnownFile>,
    /// Nothing was known at start: `start_at` applies to the first scan's files.
    fresh_start: bool,
    /// Files found by the first scan of a fresh start, with where they were then.
    first_scan: HashMap<(u64, u64), Place>,
    scanned: bool,
    retired: VecDeque<FileId>,
    ended: VecDeque<endings::Ended>,
    compressed_seen: HashSet<(u64, u64)>,
    /// Files whose open failed (other than for descriptors), reported once.
    unopenable: HashSet<(u64, u64)>,
    signals: Signals,
    watch_error_reported: bool,
    last_scan: Option<Instant>,
    scan_requested: bool,
    next_active: usize,
    /// The stamps of the directories that matter (`stamp.rs`), compared at each look while
    /// events are paused and when they are re-armed; kept in between.
    stamps: DirStamps,
    /// Hand out open multi-line events without waiting for their timeout.
    flush_open: bool,
    /// Added to the clock (tests).
    skew: Duration,
}

impl Tailer {
    /// Takes what is known of this source (checkpoint ∪ Redis offsets) and watches the
    /// directory (polling only if that fails). Does no file I/O: the first scan happens
    /// at the first [`Tailer::next_item`].
    pub fn new(
        config: TailConfig,
        known: Vec<KnownFile>,
        events: Arc<dyn TailEvents>,
    ) -> Result<Tailer, TailError> {
        config.validate()?;
        let pattern = FilePattern::parse(&config.pattern)?;
        let signals = Signals::new(pattern.dir());
        let fresh_start = config.fresh_start && known.is_empty();
        let mut tailer = Tailer {
            config,
            pattern,
            events,
            ready: VecDeque::new(),
            files: Vec::new(),
            unresolved: Vec::new(),
            deleted_known: Vec::new(),
            fresh_start,
            first_scan: HashMap::new(),
            scanned: false,
            retired: VecDeque::new(),
            ended: VecDeque::new(),
            compressed_seen: HashSet::new(),
            unopenable: HashSet::new(),
            signals,
            watch_error_reported: false,
            last_scan: None,
            scan_requested: true,
            next_active: 0,
            stamps: DirStamps::default(),
            flush_open: false,
            skew: Duration::ZERO,
        };
        tailer.ensure_watch();
        tailer.take_known(known);
        Ok(tailer)
    }

    /// The next thing to hand out, or `None` when nothing is ready. Scans when a
    /// file-system event arrived or `poll_interval` passed. Problems with one file are
    /// reported through [`TailEvents`] and retried later; they never stop the others.
    pub fn next_item(
        &mut self,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Option<TailItem>, TailError> {
        let max_lines = max_lines.max(1);
        self.sweep();
        self.take_signals();
        if self.scan_due() {
            self.scan();
        }
        if let Some(item) = self.ready.pop_front() {
            return Ok(Some(item));
        }
        // Multi-line events whose timeout ran out (or all open ones, when flushing).
        let due = (!self.flush_open).then(|| self.now());
        for f in self.files.iter_mut().filter(|f| !f.retired) {
            if let Some(batch) = f.take_open(due) {
                return Ok(Some(TailItem::Lines(batch)));
            }
        }
        // Files no longer at a matching path first, oldest first: they are bounded and
        // must be finished before the file that replaced them.
        let mut draining: Vec<usize> = (0..self.files.len())
            .filter(|&i| self.files[i].place != Place::Match && !self.files[i].retired)
            .collect();
        draining.sort_by_key(|&i| self.files[i].mtime);
        for i in draining {
            if let Some(item) = self.serve(i, max_lines, max_bytes) {
                return Ok(Some(item));
            }
            if let Some(item) = self.ready.pop_front() {
                return Ok(Some(item));
            }
        }
        let n = self.files.len();
        for k in 0..n {
            let i = (self.next_active + k) % n;
            if self.files[i].place != Place::Match || self.files[i].retired {
                continue;
            }
            if let Some(item) = self.serve(i, max_lines, max_bytes) {
                // After a batch, give the other files a turn.
                self.next_active = if matches!(item, TailItem::Lines(_)) {
                    i + 1
                } else {
                    i
                };
                return Ok(Some(item));
            }
            if let Some(item) = self.ready.pop_front() {
                return Ok(Some(item));
            }
        }
        Ok(None)
    }

    /// Scan now if one is due, without handing anything out: the reader calls this
    /// while the publisher is stalled (Redis down), so files rotated during the stall
    /// are found — and held open — before they are deleted.
    pub fn discover(&mut self) {
        self.sweep();
        self.take_signals();
        if self.scan_due() {
            self.scan();
        }
    }

    /// Hand out every open multi-line event now, without waiting for its timeout
    /// (shutdown: an event is published at shutdown, not left half-read).
    pub fn flush_open_events(&mut self) {
        self.flush_open = true;
    }

    /// Make the next [`Tailer::next_item`] scan first (shutdown drain: see every byte the
    /// files hold now).
    pub fn request_scan(&mut self) {
        self.scan_requested = true;
    }

    pub fn waker(&self) -> TailWaker {
        self.signals.waker()
    }

    /// Files with a settled identity: (id, published path, next offset). For tests and
    /// diagnostics.
    pub fn files(&self) -> Vec<(FileId, Arc<Path>, u64)> {
        self.files
            .iter()
            .filter(|f| !f.retired)
            .filter_map(|f| f.id.map(|id| (id, Arc::clone(&f.label), f.handed_out())))
            .collect()
    }

    #[cfg(test)]
    pub(crate) fn advance_clock(&mut self, by: Duration) {
        self.skew += by;
    }

    fn now(&self) -> Instant {
        Instant::now() + self.skew
    }

    fn sweep(&mut self) {
        if self.files.iter().any(|f| f.retired) {
            self.files.retain(|f| !f.retired);
            if self.next_active >= self.files.len() {
                self.next_active = 0;
            }
        }
    }

    /// Serve file `i`: settle its identity, announce it, hand out a batch, and finish
    /// it once it is away from its path, at its end and idle for the rotate wait.
    fn serve(&mut self, i: usize, max_lines: usize, max_bytes: usize) -> Option<TailItem> {
        let now = self.now();
        {
            let f = &self.files[i];
            if f.retired || f.copy_of.is_some() {
                return None;
            }
            let known_idle = f.id.is_some() && f.opened_sent && !f.dirty;
            if f.place == Place::Match && known_idle {
                return None;
            }
            if f.finished && !f.dirty && f.place != Place::Outside {
                return None;
            }
        }
        if !self.ensure_open(i, now) {
            return None;
        }
        if self.files[i].id.is_none() {
            self.resolve(i, now);
            if self.files[i].id.is_none() {
                return self.ready.pop_front();
            }
        }
        let events = Arc::clone(&self.events);
        let f = &mut self.files[i];
        let id = f.id?;
        if !f.opened_sent {
            f.opened_sent = true;
            let offset = f.framer.next_offset();
            events.file_opened(&f.label, &id, offset);
            return Some(TailItem::Opened {
                id,
                path: Arc::clone(&f.label),
                location: Arc::clone(&f.location),
                offset,
                check: f.check,
            });
        }
        if f.place == Place::Outside && !f.deleted_sent && f.fstat().is_ok_and(|(_, n)| n == 0) {
            f.deleted_sent = true;
            return Some(TailItem::Deleted { id });
        }
        let before = f.size;
        match f.read_batch(max_lines, max_bytes, false, now, &*events) {
            Ok(Some(batch)) => {
                f.last_used = now;
                if f.size > before {
                    f.last_growth = now;
                }
                return Some(TailItem::Lines(batch));
            }
            Ok(None) => {}
            Err(e) => {
                events.read_error(&f.label, &e);
                f.dirty = false;
                return None;
            }
        }
        f.dirty = false;
        if f.size > before {
            f.last_growth = now;
        }
        match f.fstat() {
            Ok((len, _)) if len < f.framer.read_pos() => {
                self.truncate(i, now, len);
                return self.ready.pop_front();
            }
            Ok((len, _)) if len > f.size => {
                f.size = len;
                f.last_growth = now;
                f.dirty = true;
                return None;
            }
            _ => {}
        }
        if f.place == Place::Match {
            f.framer.release();
            return None;
        }
        if now - f.last_growth < self.config.rotate_wait {
            return None;
        }
        // Rotated away, at its end and idle for the rotate wait: its unterminated rest
        // is its last line, then it is finished.
        if !f.finished {
            f.finished = true;
            if let Ok(Some(batch)) = f.read_batch(max_lines, max_bytes, true, now, &*events) {
                return Some(TailItem::Lines(batch));
            }
        }
        if f.place == Place::Outside {
            self.retire(i, None);
            return self.ready.pop_front();
        }
        // Still in the rotation set: kept open (its inode cannot be reused while we hold
        // it) until it is idle for `close_inactive` or the budget needs the descriptor;
        // read again if it ever grows.
        f.framer.release();
        None
    }
}
