//! What the tailer hands out: lines in batches, and the start/end of each file.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use crate::FileId;

/// One complete line of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// File offset of the line's first byte.
    pub offset: u64,
    /// File offset just after its '\n' (after the skipped rest of a cut line; the end of
    /// file for the unterminated last line of a file rotated away). Committing `end`
    /// is always safe: it is never in the middle of a line.
    pub end: u64,
    /// Range in [`Batch::data`]: the line without '\n' and without one '\r' before it;
    /// for a cut line, its first `max_line_bytes` bytes.
    pub data: Range<usize>,
    /// The line was longer than `max_line_bytes` and was cut (for a multi-line event:
    /// a line of it was, or the event reached its line or byte cap).
    pub truncated: bool,
    /// Lines it holds: 1, or more for a multi-line event (its lines joined by `\n`).
    pub lines: u32,
}

/// Consecutive complete lines of one file, in file order. The lines are ranges in one
/// buffer so that a batch costs one allocation, not one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub id: FileId,
    /// The path published with the lines: the match the file was read at (for a
    /// rotated file, the match it was rotated from).
    pub path: Arc<Path>,
    /// Where the file is now (symlinks resolved): the checkpoint's hint.
    pub location: Arc<Path>,
    pub data: Vec<u8>,
    pub lines: Vec<Line>,
    /// [`crate::check_hash`] of the bytes just before [`Batch::end`].
    pub check: u64,
    /// The file's size as far as it was read.
    pub size: u64,
}

impl Batch {
    /// The bytes of line `i`. Panics if `i >= self.len()`, like slice indexing.
    pub fn line(&self, i: usize) -> &[u8] {
        &self.data[self.lines[i].data.clone()]
    }

    /// End of the last line: the offset to commit once the whole batch is delivered
    /// (0 for an empty batch, which the tailer never hands out).
    pub fn end(&self) -> u64 {
        self.lines.last().map_or(0, |l| l.end)
    }

    pub fn len(&self) -> usize {
        self.lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Total line bytes (what `max_bytes` bounds).
    pub fn bytes(&self) -> usize {
        self.data.len()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TailItem {
    /// The tailer starts delivering this file from `offset`; comes once per file,
    /// before its first lines. An offset above 0 (a copy continued where its original
    /// ended, a file skipped on purpose) must be recorded in Redis too, not only in the
    /// checkpoint: after a lost checkpoint Redis alone says where to resume.
    Opened {
        id: FileId,
        path: Arc<Path>,
        location: Arc<Path>,
        offset: u64,
        /// [`crate::check_hash`] of the bytes before `offset` (0 at offset 0).
        check: u64,
    },
    /// 1..=max_lines complete lines of one file, in file order.
    Lines(Batch),
    /// The file was deleted; it is still read to its end through the handle held. Recorded
    /// so that a restart never takes a new file on the same inode for it.
    Deleted { id: FileId },
    /// No more lines will come under this id: the file was read to its end and is gone
    /// from every path the tailer looks at, or its content was truncated. The caller
    /// drops its checkpoint entry. Also sent, without a prior `Opened`, for a known id
    /// that is gone at start, so stale entries get dropped too.
    Finished {
        id: FileId,
        path: Arc<Path>,
        end: u64,
        /// The content is gone for good (deleted, truncated): its committed offset in
        /// Redis can be forgotten too.
        gone: bool,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_accessors() {
        let batch = Batch {
            id: FileId {
                ino: 1,
                birth: 0,
                fingerprint: 2,
                generation: 0,
            },
            path: Arc::from(Path::new("/a")),
            location: Arc::from(Path::new("/a")),
            check: 0,
            size: 9,
            data: b"onetwo".to_vec(),
            lines: vec![
                Line {
                    offset: 0,
                    end: 4,
                    data: 0..3,
                    truncated: false,
                    lines: 1,
                },
                Line {
                    offset: 4,
                    end: 9,
                    data: 3..6,
                    truncated: false,
                    lines: 1,
                },
            ],
        };
        assert_eq!(batch.line(0), b"one");
        assert_eq!(batch.line(1), b"two");
        assert_eq!(batch.end(), 9);
        assert_eq!(batch.len(), 2);
        assert!(!batch.is_empty());
        assert_eq!(batch.bytes(), 6);
    }
}
