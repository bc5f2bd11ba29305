//! The tailing engine: discovers files, follows rotation and truncation, and hands
//! out complete lines in order.

use std::collections::{HashSet, VecDeque};
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::file::TrackedFile;
use crate::pattern::FilePattern;
use crate::signal::Signals;
use crate::{FileId, KnownFile, StartAt, TailConfig, TailError, TailEvents, TailItem, TailWaker};

/// What serving one file produced.
enum Served {
    Item(TailItem),
    /// Nothing to hand out now.
    Idle,
    /// A draining file is done (with its last item, if any): drop it.
    Done(Option<TailItem>),
}

/// A path matching the pattern, as stat'ed during a re-check.
struct Seen {
    path: PathBuf,
    dev: u64,
    ino: u64,
    len: u64,
}

/// Follows a file, or every file matching a glob, across rotation and truncation.
/// Runs on the caller's thread: [`Tailer::next_item`] never blocks, [`Tailer::wait`] does.
pub struct Tailer {
    config: TailConfig,
    pattern: FilePattern,
    events: Arc<dyn TailEvents>,
    /// Items decided during a re-check or at start (Finished of truncated or lost
    /// files, the last line of a truncated file); handed out before anything else.
    ready: VecDeque<TailItem>,
    /// Files no longer at a matching path, read to their end in order, before `active`.
    draining: VecDeque<TrackedFile>,
    /// Files at a path matching the pattern, served round-robin.
    active: Vec<TrackedFile>,
    next_active: usize,
    /// (dev, ino) of matches that could not be opened, reported once.
    unopenable: HashSet<(u64, u64)>,
    signals: Signals,
    watch_error_reported: bool,
    last_check: Instant,
}

impl Tailer {
    /// Discovers the files, matches them to `known` by identity, finds known files
    /// rotated while we were down among their siblings (read to their end first, oldest
    /// first), and watches the directory (polling only if that fails).
    pub fn new(
        config: TailConfig,
        known: Vec<KnownFile>,
        events: Arc<dyn TailEvents>,
    ) -> Result<Tailer, TailError> {
        config.validate()?;
        let pattern = FilePattern::parse(&config.pattern)?;
        let signals = Signals::new(pattern.dir());
        let mut tailer = Tailer {
            config,
            pattern,
            events,
            ready: VecDeque::new(),
            draining: VecDeque::new(),
            active: Vec::new(),
            next_active: 0,
            unopenable: HashSet::new(),
            signals,
            watch_error_reported: false,
            last_check: Instant::now(),
        };
        tailer.ensure_watch();
        tailer.start(known)?;
        Ok(tailer)
    }

    /// Files tracked with a known identity and their next read offset.
    pub fn files(&self) -> Vec<(FileId, Arc<Path>, u64)> {
        self.draining
            .iter()
            .chain(self.active.iter())
            .filter_map(|f| {
                f.id.map(|id| (id, Arc::clone(&f.path), f.framer.next_offset()))
            })
            .collect()
    }

    /// Raise a file's start position (more was committed than the checkpoint says).
    /// Only forward; ignored beyond the file's size (a truncation the caller cannot
    /// know about) or when lines past it were already handed out.
    pub fn advance_to(&mut self, id: &FileId, offset: u64) {
        let Some(f) = self
            .draining
            .iter_mut()
            .chain(self.active.iter_mut())
            .find(|f| f.id.as_ref() == Some(id))
        else {
            return;
        };
        if offset <= f.framer.next_offset() {
            return;
        }
        if f.len().is_ok_and(|len| offset <= len) {
            f.framer.reset(offset);
        }
    }

    /// The next thing to hand out, or `None` when nothing is ready. Re-checks the
    /// directory when a file-system event arrived or `poll_interval` passed.
    /// Problems with one file are reported through [`TailEvents::read_error`] and retried
    /// at the next re-check, so they never stop the other files.
    pub fn next_item(
        &mut self,
        max_lines: usize,
        max_bytes: usize,
    ) -> Result<Option<TailItem>, TailError> {
        let max_lines = max_lines.max(1);
        if self.signals.take_changed() || self.last_check.elapsed() >= self.config.poll_interval {
            self.recheck();
        }
        if let Some(item) = self.ready.pop_front() {
            return Ok(Some(item));
        }
        let events = Arc::clone(&self.events);
        while let Some(f) = self.draining.front_mut() {
            match serve(f, true, max_lines, max_bytes, &*events) {
                Served::Item(item) => return Ok(Some(item)),
                Served::Idle | Served::Done(None) => {
                    self.draining.pop_front();
                }
                Served::Done(Some(item)) => {
                    self.draining.pop_front();
                    return Ok(Some(item));
                }
            }
        }
        let n = self.active.len();
        for k in 0..n {
            let i = (self.next_active + k) % n;
            match serve(&mut self.active[i], false, max_lines, max_bytes, &*events) {
                Served::Item(item) => {
                    // After a batch, give the other files a turn.
                    self.next_active = if matches!(item, TailItem::Lines(_)) {
                        i + 1
                    } else {
                        i
                    };
                    return Ok(Some(item));
                }
                Served::Idle | Served::Done(_) => {}
            }
        }
        Ok(None)
    }

    /// Block until a file-system event arrives, the waker fires, or `timeout` passes
    /// (never past the next poll re-check).
    pub fn wait(&mut self, timeout: Duration) {
        let until_poll = self
            .config
            .poll_interval
            .saturating_sub(self.last_check.elapsed());
        self.signals.wait(timeout.min(until_poll));
    }

    pub fn waker(&self) -> TailWaker {
        self.signals.waker()
    }

    fn ensure_watch(&mut self) {
        if let Some(e) = self.signals.ensure_watch() {
            if !self.watch_error_reported {
                self.watch_error_reported = true;
                self.events.watch_failed(self.pattern.dir(), &e);
            }
        }
    }

    fn start(&mut self, known: Vec<KnownFile>) -> Result<(), TailError> {
        let first_start = known.is_empty();
        let dir_error = |source: io::Error| TailError::Io {
            path: self.pattern.dir().to_path_buf(),
            source,
        };
        let matches = self.pattern.list_matches().map_err(dir_error)?;
        let mut unresolved = known;
        // If two entries name the same content, the newest generation wins.
        unresolved.sort_by_key(|k| std::cmp::Reverse(k.id.generation));

        for path in matches {
            let Some((mut f, head)) = self.open_for_start(&path, false) else {
                continue;
            };
            let found = head.and_then(|(fp, len)| {
                unresolved
                    .iter()
                    .position(|k| k.id.matches(f.ino, fp))
                    .map(|i| (unresolved.remove(i), len))
            });
            if let Some((k, fp_len)) = found {
                self.resume(&mut f, k, fp_len);
                self.active.push(f);
                continue;
            }
            if first_start && self.config.start_at == StartAt::End {
                match f.last_line_end() {
                    Ok(end) => f.framer.reset(end),
                    Err(e) => {
                        self.events.read_error(&path, &e);
                        continue;
                    }
                }
            }
            if let Some((fp, fp_len)) = head {
                let id = FileId {
                    ino: f.ino,
                    fingerprint: fp,
                    generation: 0,
                };
                f.set_identity(id, fp_len);
            }
            self.active.push(f);
        }

        if !unresolved.is_empty() {
            self.find_rotated(&mut unresolved);
        }

        for k in unresolved {
            self.events.file_lost(&k.path, &k.id, k.offset);
            self.ready.push_back(TailItem::Finished {
                id: k.id,
                path: Arc::from(k.path.as_path()),
                end: k.offset,
            });
        }
        Ok(())
    }

    /// Find checkpointed files among the siblings (rotated while we were down) and queue
    /// them to be read to their end, oldest first. For a plain path, a sibling newer
    /// than the oldest one found (`P.1` when a known file is at `P.2`) was rotated away
    /// entirely while we were down: it is queued too, from its start.
    fn find_rotated(&mut self, unresolved: &mut Vec<KnownFile>) {
        let siblings = match self.pattern.list_siblings() {
            Ok(s) => s,
            Err(e) => {
                self.events.read_error(self.pattern.dir(), &e);
                return;
            }
        };
        let mut found_any = false;
        for path in siblings {
            let take_unknown = found_any && !self.pattern.is_glob();
            if unresolved.is_empty() && !take_unknown {
                break;
            }
            let Ok(meta) = fs::metadata(&path) else {
                continue;
            };
            if !take_unknown && !unresolved.iter().any(|k| k.id.ino == meta.ino()) {
                continue;
            }
            // A rotated file does not grow: a short unterminated content is its identity.
            let Some((mut f, head)) = self.open_for_start(&path, true) else {
                continue;
            };
            let Some((fp, fp_len)) = head else {
                continue; // empty: nothing to read
            };
            match unresolved.iter().position(|k| k.id.matches(f.ino, fp)) {
                Some(i) => {
                    let k = unresolved.remove(i);
                    self.events.found_rotated(&k.path, &path, &k.id);
                    self.resume(&mut f, k, fp_len);
                    found_any = true;
                }
                None if take_unknown => {
                    let id = FileId {
                        ino: f.ino,
                        fingerprint: fp,
                        generation: 0,
                    };
                    f.set_identity(id, fp_len);
                }
                None => continue,
            }
            self.draining.push_back(f);
        }
    }

    /// Open a file found at start and read its fingerprint; `None` if it cannot be read.
    fn open_for_start(
        &mut self,
        path: &Path,
        complete: bool,
    ) -> Option<(TrackedFile, Option<(u64, usize)>)> {
        let result = TrackedFile::open(path, 0, &self.config)
            .and_then(|f| f.head_fingerprint(complete).map(|head| (f, head)));
        match result {
            Ok(found) => Some(found),
            Err(e) => {
                if e.kind() != io::ErrorKind::NotFound {
                    self.events.read_error(path, &e);
                }
                None
            }
        }
    }

    /// Continue a checkpointed file at its offset, or from 0 if it is now shorter
    /// (truncated while we were down).
    fn resume(&mut self, f: &mut TrackedFile, k: KnownFile, fp_len: usize) {
        match f.len() {
            Ok(len) if len >= k.offset => {
                f.set_identity(k.id, fp_len);
                f.framer.reset(k.offset);
            }
            _ => {
                self.events.truncated(&f.path, &k.id, k.offset);
                self.ready.push_back(TailItem::Finished {
                    id: k.id,
                    path: Arc::clone(&f.path),
                    end: k.offset,
                });
                // Pending again; the same fingerprint will get a new generation.
                f.previous = Some(k.id);
                f.framer.reset(0);
            }
        }
    }

    /// Look at the directory again: rotation (the path names another file or none),
    /// truncation, and new matches. Trusts only what it sees, never event kinds.
    fn recheck(&mut self) {
        self.last_check = Instant::now();
        if !self.signals.is_watching() {
            self.ensure_watch();
        }
        let matches = match self.pattern.list_matches() {
            Ok(m) => m,
            Err(e) => {
                self.events.read_error(self.pattern.dir(), &e);
                return;
            }
        };
        let seen: Vec<Seen> = matches
            .into_iter()
            .filter_map(|path| {
                let meta = fs::metadata(&path).ok()?;
                Some(Seen {
                    dev: meta.dev(),
                    ino: meta.ino(),
                    len: meta.len(),
                    path,
                })
            })
            .collect();
        let mut claimed = vec![false; seen.len()];

        let mut i = 0;
        while i < self.active.len() {
            let f = &mut self.active[i];
            f.paused = false;
            let Some(j) = seen.iter().position(|s| s.dev == f.dev && s.ino == f.ino) else {
                // Renamed or deleted away: read the old handle to its end first.
                let mut f = self.active.remove(i);
                match f.id {
                    Some(id) => self.events.rotated(&f.path, &id),
                    None => f.rotation_unreported = true,
                }
                self.draining.push_back(f);
                continue;
            };
            claimed[j] = true;
            if *f.path != *seen[j].path {
                // Renamed to another matching name: the same file, followed by its handle.
                f.path = Arc::from(seen[j].path.as_path());
            }
            let truncated = seen[j].len < f.framer.read_pos()
                || match f.fingerprint_changed() {
                    Ok(changed) => changed,
                    Err(e) => {
                        self.events.read_error(&f.path, &e);
                        false
                    }
                };
            if truncated {
                self.truncate(i);
            }
            i += 1;
        }
        if self.next_active >= self.active.len() {
            self.next_active = 0;
        }

        self.unopenable
            .retain(|key| seen.iter().any(|s| (s.dev, s.ino) == *key));
        for (s, claimed) in seen.iter().zip(claimed) {
            if claimed {
                continue;
            }
            match TrackedFile::open(&s.path, 0, &self.config) {
                Ok(f) => {
                    self.unopenable.remove(&(f.dev, f.ino));
                    self.active.push(f);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    if self.unopenable.insert((s.dev, s.ino)) {
                        self.events.read_error(&s.path, &e);
                    }
                }
            }
        }
    }

    /// The file at `active[i]` shrank or its first bytes changed: finish the old content
    /// (its buffered unterminated rest is its last line) and restart at 0, pending.
    fn truncate(&mut self, i: usize) {
        let f = &mut self.active[i];
        if let Some(id) = f.id.take() {
            self.events.truncated(&f.path, &id, f.framer.read_pos());
            if let Some(batch) = f.take_final_batch(id, &*self.events) {
                self.ready.push_back(TailItem::Lines(batch));
            }
            self.ready.push_back(TailItem::Finished {
                id,
                path: Arc::clone(&f.path),
                end: f.framer.next_offset(),
            });
            f.previous = Some(id);
        }
        f.opened = false;
        f.framer.reset(0);
    }
}

/// Serve one file: settle its identity, announce it, then hand out a batch. A draining
/// file ends with `Finished` once read to its end (its unterminated rest included).
fn serve(
    f: &mut TrackedFile,
    draining: bool,
    max_lines: usize,
    max_bytes: usize,
    events: &dyn TailEvents,
) -> Served {
    if f.paused {
        return Served::Idle;
    }
    let id = match f.resolve_identity(draining) {
        Ok(Some(id)) => id,
        // Pending; a draining file without identity is empty: nothing was or will be read.
        Ok(None) => {
            return if draining {
                Served::Done(None)
            } else {
                Served::Idle
            }
        }
        Err(e) => return read_failed(f, draining, &e, events),
    };
    if draining && f.rotation_unreported {
        f.rotation_unreported = false;
        events.rotated(&f.path, &id);
    }
    if !f.opened {
        f.opened = true;
        let offset = f.framer.next_offset();
        events.file_opened(&f.path, &id, offset);
        return Served::Item(TailItem::Opened {
            id,
            path: Arc::clone(&f.path),
            offset,
        });
    }
    match f.read_batch(id, max_lines, max_bytes, draining, events) {
        Ok(Some(batch)) => Served::Item(TailItem::Lines(batch)),
        Ok(None) if draining => Served::Done(Some(TailItem::Finished {
            id,
            path: Arc::clone(&f.path),
            end: f.framer.next_offset(),
        })),
        Ok(None) => Served::Idle,
        Err(e) => read_failed(f, draining, &e, events),
    }
}

/// An active file is retried at the next re-check; a draining file is given up
/// (its remaining lines are lost) rather than blocking every other file.
fn read_failed(
    f: &mut TrackedFile,
    draining: bool,
    error: &io::Error,
    events: &dyn TailEvents,
) -> Served {
    events.read_error(&f.path, error);
    if !draining {
        f.paused = true;
        return Served::Idle;
    }
    Served::Done(f.id.map(|id| TailItem::Finished {
        id,
        path: Arc::clone(&f.path),
        end: f.framer.next_offset(),
    }))
}
