//! Settling which identity an open file holds: a known one (resume at its committed
//! offset, or finish it when it was truncated or replaced while we were down), a copy
//! of ended content (continue it), or new content (a new identity, with a generation
//! whenever inode and first line alone could repeat an old one).

use std::cmp::Reverse;
use std::sync::Arc;
use std::time::Instant;

use super::endings::CopyOf;
use super::Tailer;
use crate::discovery::Place;
use crate::id::new_generation;
use crate::{FileId, KnownFile, LossReason, StartAt, TailItem};

/// Retired identities remembered, so that new content colliding with one (a reused
/// inode with the same first line, on a filesystem without birth times) gets a new
/// generation instead of the old one's committed offset.
const RETIRED_KEEP: usize = 4096;

impl Tailer {
    /// Keep the newest generation of each content; older ones are superseded.
    pub(super) fn take_known(&mut self, mut known: Vec<KnownFile>) {
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

    /// A known identity whose file is not there any more (a copy of it found later, such
    /// as copy-truncate's, continues where it ended).
    /// `in_place`: its inode and birth time hold other content now (truncated in place,
    /// copy-truncate's signature), so a copy with the same first line and at least its
    /// length continues it even without a recorded check.
    pub(super) fn known_gone(&mut self, k: &KnownFile, in_place: bool) {
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
    pub(super) fn resolve(&mut self, i: usize, now: Instant) {
        self.resolve_step(i, now, false);
    }

    /// `known_only`: settle only whether the file is a known identity (resumed, or found
    /// truncated); new content is decided in a second pass, once every known file's fate
    /// is settled (a copy of one may be among the new files).
    pub(super) fn resolve_step(&mut self, i: usize, now: Instant, known_only: bool) {
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
    pub(super) fn drop_replaced(&mut self, ino: u64, birth: u64) {
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

    pub(super) fn start_new(&mut self, i: usize, fingerprint: u64, offset: u64) {
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

    pub(super) fn remember_retired(&mut self, id: FileId) {
        if self.retired.len() >= RETIRED_KEEP {
            self.retired.pop_front();
        }
        self.retired.push_back(id);
    }
}
