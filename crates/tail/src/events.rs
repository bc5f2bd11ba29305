//! The tailer's report channel: the library never logs or counts by itself; the
//! application implements this once (log + metric in one place).

use std::io;
use std::path::Path;

use crate::FileId;

/// Every method has an empty default, so an implementation picks what it needs.
/// Called from the tailer's thread, synchronously: keep the work small.
pub trait TailEvents: Send + Sync {
    /// The tailer starts delivering `path` from `offset`.
    fn file_opened(&self, _path: &Path, _id: &FileId, _offset: u64) {}
    /// The file at `path` was renamed or deleted away (`id` is the old file's).
    fn rotated(&self, _path: &Path, _id: &FileId) {}
    /// The file shrank below what was read (copy-truncate): it restarts at 0.
    fn truncated(&self, _path: &Path, _id: &FileId, _old_offset: u64) {}
    /// A line longer than `max_line_bytes` was cut; `length_seen` is its full length.
    fn oversized_line(&self, _path: &Path, _offset: u64, _length_seen: u64) {}
    /// A checkpointed file rotated while we were down was found among its siblings.
    fn found_rotated(&self, _from: &Path, _now_at: &Path, _id: &FileId) {}
    /// A checkpointed file cannot be found any more: its lines after `offset` are lost.
    fn file_lost(&self, _path: &Path, _id: &FileId, _offset: u64) {}
    /// Reading or listing failed; the tailer retries at the next re-check.
    fn read_error(&self, _path: &Path, _error: &io::Error) {}
    /// File-system notifications for `dir` could not be set up: polling only.
    fn watch_failed(&self, _dir: &Path, _error: &io::Error) {}
}

/// Reports nothing; for callers and tests that do not care.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl TailEvents for NoEvents {}
