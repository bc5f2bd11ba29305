//! A scan: list every rotation set afresh and bring the tracked files up to date with
//! it — files that grew, were truncated, rotated away, left every listed path, or are
//! new — and, at the first scan, find known identities where they were last seen.
//! Needs no memory of the previous scan, so a stall or a restart ends in the same place.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::Tailer;
use crate::discovery::{birth_of, Candidate, Place};
use crate::file::Tracked;
use crate::{KnownFile, LossReason};

impl Tailer {
    pub(super) fn scan_due(&self) -> bool {
        self.scan_requested
            || self
                .last_scan
                .is_none_or(|at| self.now() - at >= self.config.poll_interval)
    }

    /// List every rotation set afresh and bring the files up to date with it.
    pub(super) fn scan(&mut self) {
        self.scan_files();
        if self.signals.is_paused() {
            // A file found in a directory not stamped yet (a symlink's new target).
            let dirs: Vec<Arc<Path>> = self.watched_dirs().map(Arc::from).collect();
            self.stamps.track(dirs.iter().map(|d| &**d));
        }
    }

    pub(super) fn scan_files(&mut self) {
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
    pub(super) fn update_seen(&mut self, i: usize, c: &Candidate, now: Instant) {
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
    pub(super) fn went_outside(&mut self, i: usize, now: Instant, new_compressed: bool) {
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
    pub(super) fn add(&mut self, c: Candidate, now: Instant) {
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

    pub(super) fn is_known_inode(&self, i: usize) -> bool {
        let ino = self.files[i].ino;
        self.unresolved.iter().any(|k| k.id.ino == ino)
    }

    /// Known files no scan found: look where they were last seen (an old symlink target,
    /// a file moved out of the directory) and finish them there; the rest are gone.
    pub(super) fn settle_unresolved(&mut self, now: Instant) {
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

    pub(super) fn find_at_hint(&self, k: &KnownFile) -> Option<Candidate> {
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
}
