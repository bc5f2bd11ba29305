//! The tailing engine: composes discovery (rotation sets), identity, the per-file state
//! and the framer, and decides what to read next.
//!
//! The invariant: for every identity the engine knows, committed ≤ handed out ≤ read ≤
//! size, and the engine keeps reading that identity, wherever it lives now, until it is
//! at its end and has been idle for the rotate wait, or its bytes are gone (reported).
//! A scan never depends on having seen the previous state: it lists every match and
//! every rotated sibling afresh, so several rotations between two looks, a stall, or a
//! restart all end in the same place.

use std::cmp::Reverse;
use std::collections::{HashMap, HashSet, VecDeque};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::discovery::{birth_of, Candidate, FilePattern, Place};
use crate::file::Tracked;
use crate::id::new_generation;
use crate::signal::Signals;
use crate::stamp::DirStamps;
use crate::{
    FileId, KnownFile, LossReason, StartAt, TailConfig, TailError, TailEvents, TailItem, TailWaker,
};

/// Retired identities remembered, so that new content colliding with one (a reused
/// inode with the same first line, on a filesystem without birth times) gets a new
/// generation instead of the old one's committed offset.
const RETIRED_KEEP: usize = 4096;
/// Ended contents (truncated or retired) remembered for copy detection.
const ENDED_KEEP: usize = 64;
/// Most files for which [`Tailer::pause_events`] pauses the watch: a paused look reads
/// every open file, which beats an event per append for a few files, not for thousands.
const PAUSE_MAX_FILES: usize = 16;

/// A content that ended (truncated, or retired): a copy of it found later (logrotate's
/// `copytruncate` copies before it truncates) continues where it ended.
struct Ended {
    fingerprint: u64,
    /// 0 when unknown (a known identity never opened in this run).
    fp_len: usize,
    end: u64,
    /// `None` when only Redis knew the content (no check recorded): a copy is then
    /// recognised by its first line and length alone.
    check: Option<u64>,
}

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
    ended: VecDeque<Ended>,
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
    fn watched_dirs(&self) -> impl Iterator<Item = &Path> {
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

    /// How many files are open now (for tests and the open-file budget).
    pub fn open_files(&self) -> usize {
        self.files.iter().filter(|f| f.is_open()).count()
    }

    #[cfg(test)]
    pub(crate) fn advance_clock(&mut self, by: Duration) {
        self.skew += by;
    }

    fn now(&self) -> Instant {
        Instant::now() + self.skew
    }

    fn ensure_watch(&mut self) {
        if let Some(e) = self.signals.ensure_watch() {
            if !self.watch_error_reported {
                self.watch_error_reported = true;
                self.events.watch_failed(self.pattern.dir(), &e);
            }
        }
    }

    /// Keep the newest generation of each content; older ones are superseded.
    fn take_known(&mut self, mut known: Vec<KnownFile>) {
        known.sort_by_key(|k| Reverse(k.id.generation));
        for k in known {
            if k.deleted {
                // Deleted while it was read: its handle died with the last run.
                self.deleted_known.push(k);
                continue;
            }
            if self.unresolved.iter().any(|u| u.id.same_content(&k.id)) {
                self.ready.push_back(TailItem::Finished {
                    id: k.id,
                    path: Arc::from(k.path.as_path()),
                    end: k.offset,
                    gone: true,
                });
            } else {
                self.unresolved.push(k);
            }
        }
    }

    fn sweep(&mut self) {
        if self.files.iter().any(|f| f.retired) {
            self.files.retain(|f| !f.retired);
            if self.next_active >= self.files.len() {
                self.next_active = 0;
            }
        }
    }

    fn take_signals(&mut self) {
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

    fn scan_due(&self) -> bool {
        self.scan_requested
            || self
                .last_scan
                .is_none_or(|at| self.now() - at >= self.config.poll_interval)
    }

    /// List every rotation set afresh and bring the files up to date with it.
    fn scan(&mut self) {
        self.scan_files();
        if self.signals.is_paused() {
            // A file found in a directory not stamped yet (a symlink's new target).
            let dirs: Vec<Arc<Path>> = self.watched_dirs().map(Arc::from).collect();
            self.stamps.track(dirs.iter().map(|d| &**d));
        }
    }

    fn scan_files(&mut self) {
        let now = self.now();
        self.last_scan = Some(now);
        self.scan_requested = false;
        if !self.signals.is_watching() {
            self.ensure_watch();
        }
        let candidates = match self.pattern.scan(self.config.birth_time) {
            Ok(c) => c,
            Err(e) => {
                self.events.read_error(self.pattern.dir(), &e);
                return;
            }
        };
        let index: HashMap<(u64, u64), usize> = self
            .files
            .iter()
            .enumerate()
            .filter(|(_, f)| !f.retired)
            .map(|(i, f)| (f.key(), i))
            .collect();
        let mut seen = vec![false; self.files.len()];
        let mut fresh: Vec<Candidate> = Vec::new();
        let mut compressed = HashSet::new();
        let mut new_compressed = false;
        for c in candidates {
            let key = (c.dev, c.ino);
            if c.place == Place::Compressed {
                if !self.compressed_seen.contains(&key) {
                    self.events.compressed_skipped(&c.path);
                    new_compressed = true;
                }
                compressed.insert(key);
                continue;
            }
            match index.get(&key) {
                // Closed, and the inode now holds a file born later: ours was deleted
                // and its inode reused.
                Some(&i) if self.files[i].replaced_by(&c) => {
                    if !self.files[i].retired {
                        self.retire(i, Some(LossReason::Deleted));
                    }
                    if !fresh.iter().any(|f| (f.dev, f.ino) == key) {
                        fresh.push(c);
                    }
                }
                Some(&i) if seen[i] && c.place != Place::Match => {}
                Some(&i) => {
                    seen[i] = true;
                    self.update_seen(i, &c, now);
                }
                None if fresh.iter().any(|f| (f.dev, f.ino) == key) => {}
                None => fresh.push(c),
            }
        }
        self.compressed_seen = compressed;
        for (i, seen) in seen.into_iter().enumerate() {
            if !seen && !self.files[i].retired {
                self.went_outside(i, now, new_compressed);
            }
        }
        let first_new = self.files.len();
        for c in fresh {
            self.add(c, now);
        }
        // Files that are known identities first: a copy among the others is recognised
        // only once the original's fate (truncated, gone) is settled.
        let last_new = self.files.len();
        for i in first_new..last_new {
            if self.files[i].id.is_none() && self.is_known_inode(i) && self.ensure_open(i, now) {
                self.resolve_step(i, now, true);
            }
        }
        // After the first scan, what is known but nowhere to be found is gone (or at its
        // last known place outside the directory) — settled before new files are, since
        // a copy of a gone file continues it.
        if !self.scanned {
            self.scanned = true;
            for k in std::mem::take(&mut self.deleted_known) {
                self.known_gone(&k, false);
            }
            self.settle_unresolved(now);
        }
        for i in first_new..last_new {
            if self.files[i].id.is_none() && self.ensure_open(i, now) {
                self.resolve_step(i, now, false);
            }
        }
        self.settle_copies(now);
        self.close_idle(now);
    }

    /// A file already tracked, as this scan saw it.
    fn update_seen(&mut self, i: usize, c: &Candidate, now: Instant) {
        let f = &mut self.files[i];
        f.entry = Arc::from(c.path.as_path());
        f.location = c
            .real
            .as_deref()
            .map_or_else(|| Arc::clone(&f.entry), Arc::from);
        if f.place == Place::Match && c.place != Place::Match {
            if let Some(id) = &f.id {
                self.events.rotated(&f.label, id);
            }
            f.last_growth = now;
        }
        if c.place == Place::Match {
            // Renamed to another matching name (a glob): the same file, followed.
            f.label = Arc::clone(&f.entry);
        }
        f.place = c.place;
        if c.len > f.size {
            f.size = c.len;
            f.last_growth = now;
            f.dirty = true;
            f.finished = false;
        }
        let changed = c.mtime != f.mtime;
        f.mtime = c.mtime;
        // Modified: is what was read still there (first line, and the bytes before the
        // next offset)? Truncated and regrown past our offset between two looks, it is not.
        let regrown = changed && f.is_open() && f.id.is_some() && f.content_changed();
        if c.len < f.framer.read_pos() || regrown {
            self.truncate(i, now, c.len);
        } else if c.len < f.size {
            f.size = c.len;
        }
    }

    /// The file left every path we list (deleted, moved away, a symlink retargeted).
    fn went_outside(&mut self, i: usize, now: Instant, new_compressed: bool) {
        let f = &mut self.files[i];
        if f.place == Place::Outside {
            return;
        }
        if f.place == Place::Match {
            if let Some(id) = &f.id {
                self.events.rotated(&f.label, id);
            }
            f.last_growth = now;
        }
        f.place = Place::Outside;
        f.dirty = true;
        // Truncated (and maybe regrown) before it left: finish the old content first.
        if f.is_open() && f.id.is_some() && f.content_changed() {
            let len = f.fstat().map_or(0, |(len, _)| len);
            self.truncate(i, now, len);
        }
        let f = &mut self.files[i];
        if !f.is_open() || f.finished {
            // Nothing more can be read through a handle: what was not read is lost.
            let reason = if new_compressed {
                LossReason::Compressed
            } else {
                LossReason::Deleted
            };
            self.retire(i, Some(reason));
        }
    }

    /// A file the scan found that no tracked file is.
    fn add(&mut self, c: Candidate, now: Instant) {
        let label = match c.place {
            Place::Match => c.path.clone(),
            _ => c
                .path
                .file_name()
                .and_then(|n| self.pattern.home_of(n))
                .unwrap_or_else(|| c.path.clone()),
        };
        let f = Tracked::new(&c, Arc::from(label.as_path()), &self.config, now);
        if self.fresh_start && !self.scanned {
            self.first_scan.insert(f.key(), f.place);
        }
        self.files.push(f);
        let i = self.files.len() - 1;
        // Opened at once (within the budget), so that a deletion right after cannot take
        // its bytes away; identified by the caller.
        self.ensure_open(i, now);
    }

    fn is_known_inode(&self, i: usize) -> bool {
        let ino = self.files[i].ino;
        self.unresolved.iter().any(|k| k.id.ino == ino)
    }

    /// Known files no scan found: look where they were last seen (an old symlink target,
    /// a file moved out of the directory) and finish them there; the rest are gone.
    fn settle_unresolved(&mut self, now: Instant) {
        let pending: HashSet<u64> = self
            .files
            .iter()
            .filter(|f| f.id.is_none())
            .map(|f| f.ino)
            .collect();
        let (keep, leftovers): (Vec<KnownFile>, Vec<KnownFile>) =
            std::mem::take(&mut self.unresolved)
                .into_iter()
                .partition(|k| pending.contains(&k.id.ino));
        self.unresolved = keep;
        for k in leftovers {
            if let Some(c) = self.find_at_hint(&k) {
                let label = self.pattern.plain_path().unwrap_or_else(|| k.path.clone());
                let f = Tracked::new(&c, Arc::from(label.as_path()), &self.config, now);
                self.files.push(f);
                self.unresolved.push(k);
                let i = self.files.len() - 1;
                if self.ensure_open(i, now) {
                    self.resolve(i, now);
                }
                continue;
            }
            self.known_gone(&k, false);
        }
    }

    fn find_at_hint(&self, k: &KnownFile) -> Option<Candidate> {
        if k.path.as_os_str().is_empty() {
            return None;
        }
        let meta = fs::metadata(&k.path).ok()?;
        let birth = if self.config.birth_time {
            birth_of(&meta)
        } else {
            0
        };
        let same_inode = meta.is_file()
            && meta.ino() == k.id.ino
            && (k.id.birth == 0 || birth == 0 || birth == k.id.birth);
        let tracked = self
            .files
            .iter()
            .any(|f| !f.retired && f.key() == (meta.dev(), meta.ino()));
        (same_inode && !tracked).then(|| {
            Candidate::new(
                k.path.clone(),
                None,
                Place::Outside,
                &meta,
                self.config.birth_time,
            )
        })
    }

    /// A known identity whose file is not there any more (a copy of it found later, such
    /// as copy-truncate's, continues where it ended).
    /// `in_place`: its inode and birth time hold other content now (truncated in place,
    /// copy-truncate's signature), so a copy with the same first line and at least its
    /// length continues it even without a recorded check.
    fn known_gone(&mut self, k: &KnownFile, in_place: bool) {
        if k.check.is_some() || in_place {
            self.remember_ended(k.id.fingerprint, 0, k.offset, k.check);
        }
        self.remember_retired(k.id);
        if let Some(size) = k.size.filter(|&s| s > k.offset) {
            self.events.file_lost(
                &k.path,
                &k.id,
                k.offset,
                size - k.offset,
                LossReason::Deleted,
            );
        }
        self.ready.push_back(TailItem::Finished {
            id: k.id,
            path: Arc::from(k.path.as_path()),
            end: k.offset,
            gone: true,
        });
    }

    /// Settle the identity of an open file whose first line is complete: a known
    /// identity (resume), a copy of a known content (continue it), or a new file.
    fn resolve(&mut self, i: usize, now: Instant) {
        self.resolve_step(i, now, false);
    }

    /// `known_only`: settle only whether the file is a known identity (resumed, or found
    /// truncated); new content is decided in a second pass, once every known file's fate
    /// is settled (a copy of one may be among the new files).
    fn resolve_step(&mut self, i: usize, now: Instant, known_only: bool) {
        let f = &self.files[i];
        if f.id.is_some() || f.copy_of.is_some() {
            return;
        }
        let complete = f.place != Place::Match;
        let (fp, fp_len) = match f.head_fingerprint(complete) {
            Ok(Some(head)) => head,
            Ok(None) => return, // first line incomplete: pending
            Err(e) => {
                self.events.read_error(&f.label, &e);
                return;
            }
        };
        let (ino, birth, key) = (f.ino, f.birth, f.key());
        let len = f.fstat().map_or(f.size, |(len, _)| len);
        self.files[i].fp_len = fp_len;
        self.files[i].size = len;

        if let Some(pos) = self
            .unresolved
            .iter()
            .position(|k| k.id.matches(ino, birth, fp))
        {
            let k = self.unresolved.remove(pos);
            let f = &mut self.files[i];
            let intact = len >= k.offset
                && match k.check {
                    Some(check) if k.offset > 0 => f.check_at(k.offset).ok() == Some(check),
                    _ => true,
                };
            if intact {
                if !k.path.as_os_str().is_empty() && *k.path != *f.location {
                    self.events.found_rotated(&k.path, &f.location, &k.id);
                }
                f.start_at(k.id, k.offset);
                self.drop_replaced(ino, birth);
                return;
            }
            // Truncated (or replaced by identical-looking content) while we were down.
            self.events.truncated(&f.label, &k.id, k.offset);
            self.remember_ended(k.id.fingerprint, fp_len, k.offset, k.check);
            self.ready.push_back(TailItem::Finished {
                id: k.id,
                path: Arc::clone(&self.files[i].label),
                end: k.offset,
                gone: true,
            });
            self.files[i].previous = Some(k.id);
        }
        self.drop_replaced(ino, birth);
        if known_only {
            return;
        }

        if self.files[i].place != Place::Match {
            if let Some(source) = self.copy_source(i, fp, fp_len) {
                match source {
                    CopyOf::Live(id, equal) => self.files[i].copy_of = Some((id, now, equal)),
                    CopyOf::Ended(end, at) => {
                        // One copy continues an ended content, not every file that
                        // starts the same way.
                        self.ended.remove(at);
                        self.start_new(i, fp, end);
                    }
                }
                return;
            }
        }
        let offset = if let Some(&first_place) = self.first_scan.get(&key) {
            match (first_place, self.config.start_at) {
                (Place::Match, StartAt::Beginning) => 0,
                (Place::Match, StartAt::End) => match self.files[i].last_line_end() {
                    Ok(end) => end,
                    Err(e) => {
                        self.events.read_error(&self.files[i].label, &e);
                        return;
                    }
                },
                // Rotated before we ever ran: taken as shipped by whatever ran before.
                _ => len,
            }
        } else {
            0
        };
        self.start_new(i, fp, offset);
    }

    /// Known identities of an inode that now holds other content: replaced while we
    /// were down (a reused inode): gone.
    fn drop_replaced(&mut self, ino: u64, birth: u64) {
        let replaced: Vec<KnownFile> = self
            .unresolved
            .iter()
            .filter(|k| k.id.ino == ino)
            .cloned()
            .collect();
        if replaced.is_empty() {
            return;
        }
        self.unresolved.retain(|k| k.id.ino != ino);
        for k in replaced {
            let in_place = k.id.birth == 0 || birth == 0 || k.id.birth == birth;
            self.known_gone(&k, in_place);
        }
    }

    fn start_new(&mut self, i: usize, fingerprint: u64, offset: u64) {
        let f = &self.files[i];
        let base = FileId {
            ino: f.ino,
            birth: f.birth,
            fingerprint,
            generation: 0,
        };
        let previous = f.previous;
        let key = f.key();
        let collisions = self
            .files
            .iter()
            .filter(|g| g.key() != key && !g.retired)
            .filter_map(|g| g.id)
            .chain(self.retired.iter().copied())
            .chain(self.unresolved.iter().map(|k| k.id))
            .chain(previous)
            .filter(|id| id.same_content(&base))
            .map(|id| id.generation)
            .max();
        // Without a birth time, (inode, first line) is not unique over time: a reused
        // inode with the same header would get a retired identity back, whose offset Redis
        // may still hold. A generation (a timestamp, unique across restarts) makes every
        // new content's identity new.
        let id = match (collisions, base.birth) {
            (Some(generation), _) => FileId {
                generation: new_generation(generation),
                ..base
            },
            (None, 0) => FileId {
                generation: new_generation(0),
                ..base
            },
            (None, _) => base,
        };
        let f = &mut self.files[i];
        f.copy_of = None;
        f.start_at(id, offset);
        f.size = f.size.max(offset);
    }

    /// Whether the rotated file `i` is a copy of content the tailer read: the same first
    /// line and the same bytes before the position reached there.
    fn copy_source(&self, i: usize, fp: u64, fp_len: usize) -> Option<CopyOf> {
        let f = &self.files[i];
        // More than the first line must be equal: files that share only a header line
        // are different files.
        let same = |end: u64, check: Option<u64>| {
            end > fp_len as u64
                && f.size >= end
                && check.is_none_or(|c| f.check_at(end).ok() == Some(c))
        };
        // Content that ended (truncated, gone) first: copy-truncate's copy continues it.
        let ended = self
            .ended
            .iter()
            .enumerate()
            .rev()
            .find(|(_, e)| {
                e.fingerprint == fp && (e.fp_len == 0 || e.fp_len == fp_len) && same(e.end, e.check)
            })
            .map(|(at, e)| CopyOf::Ended(e.end, at));
        if ended.is_some() {
            return ended;
        }
        self.files
            .iter()
            .filter(|g| !g.retired && g.key() != f.key())
            .find_map(|g| {
                let id = g.id?;
                let end = g.handed_out();
                (id.fingerprint == fp && g.fp_len == fp_len && same(end, Some(g.check)))
                    .then_some(CopyOf::Live(id, end))
            })
    }

    /// Copies waiting for their source: once the source is truncated or gone, continue
    /// where it ended; a copy of a live file (a plain `cp`) holds nothing new.
    fn settle_copies(&mut self, now: Instant) {
        for i in 0..self.files.len() {
            let Some((source, since, equal)) = self.files[i].copy_of else {
                continue;
            };
            if self.files[i].retired {
                continue;
            }
            let live = self
                .files
                .iter()
                .any(|g| !g.retired && g.id == Some(source));
            let (fp, fp_len) = match self.files[i].head_fingerprint(true) {
                Ok(Some(head)) => head,
                _ => continue,
            };
            if live {
                if now - since >= self.config.rotate_wait {
                    // A plain copy of a live file: what the source holds too is shipped
                    // from there; only what differs is the copy's own.
                    let f = &self.files[i];
                    let size = f.size;
                    let prefix = self
                        .files
                        .iter()
                        .find(|g| !g.retired && g.id == Some(source))
                        .is_some_and(|g| {
                            g.size >= size
                                && size > 0
                                && g.check_at(size)
                                    .ok()
                                    .is_some_and(|c| f.check_at(size).ok() == Some(c))
                        });
                    self.start_new(i, fp, if prefix { size } else { equal });
                }
                continue;
            }
            let end = match self.copy_source(i, fp, fp_len) {
                Some(CopyOf::Ended(end, at)) => {
                    self.ended.remove(at);
                    end
                }
                _ => 0,
            };
            self.start_new(i, fp, end);
        }
    }

    /// The file's content restarted (copy-truncate, or truncated and regrown): finish the
    /// old content where it was handed out and start over at 0 as new content.
    fn truncate(&mut self, i: usize, now: Instant, len: u64) {
        let events = Arc::clone(&self.events);
        let f = &mut self.files[i];
        if let Some(id) = f.id {
            // What was read but not handed out (an unterminated rest, an open multi-line
            // event) is not handed out now: copy-truncate's copy holds it too and
            // continues from here, with the check of exactly what was handed out.
            events.truncated(&f.label, &id, f.handed_out());
            let end = f.handed_out();
            let (fp_len, check, label) = (f.fp_len, f.check, Arc::clone(&f.label));
            if f.opened_sent || end > 0 {
                self.ready.push_back(TailItem::Finished {
                    id,
                    path: label,
                    end,
                    gone: true,
                });
            }
            self.remember_ended(id.fingerprint, fp_len, end, Some(check));
            self.files[i].previous = Some(id);
        }
        let f = &mut self.files[i];
        f.id = None;
        f.opened_sent = false;
        f.framer.reset(0);
        f.check = 0;
        f.size = len;
        f.last_growth = now;
        f.dirty = true;
        f.finished = false;
    }

    fn remember_retired(&mut self, id: FileId) {
        if self.retired.len() >= RETIRED_KEEP {
            self.retired.pop_front();
        }
        self.retired.push_back(id);
    }

    fn remember_ended(&mut self, fingerprint: u64, fp_len: usize, end: u64, check: Option<u64>) {
        if self.ended.len() >= ENDED_KEEP {
            self.ended.pop_front();
        }
        self.ended.push_back(Ended {
            fingerprint,
            fp_len,
            end,
            check,
        });
    }

    /// Forget a file that is gone from every path we list and was read as far as it can
    /// be. `loss`: bytes it still had unread cannot be read (no handle) — say why.
    fn retire(&mut self, i: usize, loss: Option<LossReason>) {
        let f = &mut self.files[i];
        f.retired = true;
        let gone = f.fstat().map_or(true, |(_, nlink)| nlink == 0);
        let end = f.handed_out();
        let unread = f.size.saturating_sub(f.framer.read_pos().max(end));
        let label = Arc::clone(&f.label);
        f.close();
        let Some(id) = f.id else {
            if f.size > 0 && !f.opened_sent {
                if let Some(reason) = loss {
                    let id = FileId {
                        ino: f.ino,
                        birth: f.birth,
                        fingerprint: 0,
                        generation: 0,
                    };
                    self.events.file_lost(&label, &id, 0, f.size, reason);
                }
            }
            return;
        };
        if let Some(reason) = loss.filter(|_| unread > 0) {
            self.events.file_lost(&label, &id, end, unread, reason);
        }
        self.events.file_finished(&label, &id, end);
        let (fp_len, check) = (f.fp_len, f.check);
        self.remember_retired(id);
        self.remember_ended(id.fingerprint, fp_len, end, Some(check));
        if self.files[i].opened_sent {
            self.ready.push_back(TailItem::Finished {
                id,
                path: label,
                end,
                gone,
            });
        }
    }

    /// Open file `i` within the open-file budget (closing the least recently used idle
    /// file if needed). False when it cannot be opened now; retried later.
    fn ensure_open(&mut self, i: usize, now: Instant) -> bool {
        if self.files[i].is_open() {
            return true;
        }
        if self.open_files() >= self.config.max_open_files && !self.close_one_idle(i) {
            self.events.descriptor_pressure(&self.files[i].label, None);
            return false;
        }
        let was_known = self.files[i].id.is_some();
        match self.files[i].open() {
            Ok(true) => {
                let f = &mut self.files[i];
                f.last_used = now;
                self.unopenable.remove(&f.key());
                // Closed while idle: it may have been truncated and regrown meanwhile, or
                // deleted and its inode reused by a file with the same first line.
                if was_known && f.content_changed() {
                    let len = f.fstat().map_or(0, |(len, _)| len);
                    self.truncate(i, now, len);
                }
                true
            }
            Ok(false) => {
                self.scan_requested = true;
                false
            }
            Err(e) if is_out_of_descriptors(&e) => {
                self.events
                    .descriptor_pressure(&self.files[i].label, Some(&e));
                self.close_one_idle(i);
                false
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                self.scan_requested = true;
                false
            }
            Err(e) => {
                if self.unopenable.insert(self.files[i].key()) {
                    self.events.read_error(&self.files[i].label, &e);
                }
                false
            }
        }
    }

    /// Close the least recently used file that can be reopened and has nothing unread.
    fn close_one_idle(&mut self, except: usize) -> bool {
        let victim = self
            .files
            .iter()
            .enumerate()
            .filter(|&(j, f)| {
                j != except
                    && f.is_open()
                    && !f.retired
                    && f.place != Place::Outside
                    && f.copy_of.is_none()
                    && (f.finished || (!f.dirty && f.framer.read_pos() >= f.size))
            })
            .min_by_key(|(_, f)| f.last_used)
            .map(|(j, _)| j);
        match victim {
            Some(j) => {
                self.files[j].close();
                true
            }
            None => false,
        }
    }

    fn close_idle(&mut self, now: Instant) {
        let limit = self.config.close_inactive;
        for f in self.files.iter_mut() {
            if f.is_open()
                && f.place != Place::Outside
                && f.copy_of.is_none()
                && !f.dirty
                && f.framer.read_pos() >= f.size
                && now - f.last_growth >= limit
            {
                f.close();
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

enum CopyOf {
    /// A file still being read holds the same content up to this offset: wait for it
    /// to be truncated.
    Live(FileId, u64),
    /// Content that ended (truncated, retired) at this offset: continue from there
    /// (and the index of that record, used once).
    Ended(u64, usize),
}

fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}
