//! How a content ends — truncated in place (copy-truncate, or truncated and regrown)
//! or retired once it is gone from every listed path — and the memory of ended
//! contents that lets a copy found later (logrotate's `copytruncate` copies before it
//! truncates) continue where the original ended instead of being shipped twice.

use std::sync::Arc;
use std::time::Instant;

use super::Tailer;
use crate::{FileId, LossReason, TailItem};

/// Ended contents (truncated or retired) remembered for copy detection.
const ENDED_KEEP: usize = 64;

/// A content that ended (truncated, or retired): a copy of it found later (logrotate's
/// `copytruncate` copies before it truncates) continues where it ended.
pub(super) struct Ended {
    fingerprint: u64,
    /// 0 when unknown (a known identity never opened in this run).
    fp_len: usize,
    end: u64,
    /// `None` when only Redis knew the content (no check recorded): a copy is then
    /// recognised by its first line and length alone.
    check: Option<u64>,
}

pub(super) enum CopyOf {
    /// A file still being read holds the same content up to this offset: wait for it
    /// to be truncated.
    Live(FileId, u64),
    /// Content that ended (truncated, retired) at this offset: continue from there
    /// (and the index of that record, used once).
    Ended(u64, usize),
}

impl Tailer {
    /// The file's content restarted (copy-truncate, or truncated and regrown): finish the
    /// old content where it was handed out and start over at 0 as new content.
    pub(super) fn truncate(&mut self, i: usize, now: Instant, len: u64) {
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

    /// Forget a file that is gone from every path we list and was read as far as it can
    /// be. `loss`: bytes it still had unread cannot be read (no handle) — say why.
    pub(super) fn retire(&mut self, i: usize, loss: Option<LossReason>) {
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

    pub(super) fn remember_ended(
        &mut self,
        fingerprint: u64,
        fp_len: usize,
        end: u64,
        check: Option<u64>,
    ) {
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

    /// Whether the rotated file `i` is a copy of content the tailer read: the same first
    /// line and the same bytes before the position reached there.
    pub(super) fn copy_source(&self, i: usize, fp: u64, fp_len: usize) -> Option<CopyOf> {
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
    pub(super) fn settle_copies(&mut self, now: Instant) {
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
}
