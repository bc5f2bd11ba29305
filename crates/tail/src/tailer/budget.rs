//! The open-file budget: files are opened within `max_open_files`, the least recently
//! used idle file is closed to make room, and idle files are closed after
//! `close_inactive`. A closed file is reopened (and checked for truncation) when it
//! grows; a file that can no longer be reopened by path is never closed.

use std::io;
use std::time::Instant;

use super::Tailer;
use crate::discovery::Place;

impl Tailer {
    /// How many files are open now (for tests and the open-file budget).
    pub fn open_files(&self) -> usize {
        self.files.iter().filter(|f| f.is_open()).count()
    }

    /// Open file `i` within the open-file budget (closing the least recently used idle
    /// file if needed). False when it cannot be opened now; retried later.
    pub(super) fn ensure_open(&mut self, i: usize, now: Instant) -> bool {
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
    pub(super) fn close_one_idle(&mut self, except: usize) -> bool {
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

    pub(super) fn close_idle(&mut self, now: Instant) {
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
}

fn is_out_of_descriptors(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}
