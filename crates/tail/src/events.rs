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
    /// Bytes that cannot be read any more: `unread` bytes after `offset` of the file
    /// (deleted or truncated before they were read, or rotated into a compressed file).
    fn file_lost(
        &self,
        _path: &Path,
        _id: &FileId,
        _offset: u64,
        _unread: u64,
        _reason: LossReason,
    ) {
    }
    /// A file was read to its end and is gone from every path the tailer looks at: its
    /// identity is forgotten.
    fn file_finished(&self, _path: &Path, _id: &FileId, _end: u64) {}
    /// Opening a file failed for want of file descriptors (or the open-file budget is
    /// used up by files that cannot be closed): retried at the next look.
    fn descriptor_pressure(&self, _path: &Path, _error: Option<&io::Error>) {}
    /// A compressed rotation (`app.log.2.gz`) was seen; it is not read.
    fn compressed_skipped(&self, _path: &Path) {}
    /// Reading or listing failed; the tailer retries at the next re-check.
    fn read_error(&self, _path: &Path, _error: &io::Error) {}
    /// File-system notifications for `dir` could not be set up: polling only.
    fn watch_failed(&self, _dir: &Path, _error: &io::Error) {}
}

/// Why bytes were lost (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LossReason {
    /// The file was deleted (or replaced while the watcher was down) before it was read.
    Deleted,
    /// The file was truncated (copy-truncate) before its end was read.
    Truncated,
    /// The file was rotated into a compressed file before it was read.
    Compressed,
}

impl LossReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LossReason::Deleted => "deleted",
            LossReason::Truncated => "truncated",
            LossReason::Compressed => "compressed",
        }
    }
}

/// Reports nothing; for callers and tests that do not care.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl TailEvents for NoEvents {}
