//! What the caller tells the tailer: which files, where to start, and the limits.

use std::path::PathBuf;
use std::time::Duration;

use crate::{FileId, TailError};

/// Where to start in a file that has no checkpoint, on the very first start only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StartAt {
    #[default]
    Beginning,
    /// Just after the last '\n' in the file: never in the middle of a line.
    End,
}

#[derive(Debug, Clone)]
pub struct TailConfig {
    /// A path, or a glob in the last component only (`/var/log/app/*.log`).
    pub pattern: PathBuf,
    /// Applies only to files found by the first scan of a fresh start (see `fresh_start`).
    /// Files that appear at run time always start at 0.
    pub start_at: StartAt,
    /// Longer lines are cut to this many bytes, flagged, and the rest skipped unbuffered.
    pub max_line_bytes: usize,
    /// Size of one `read()`.
    pub read_buffer_bytes: usize,
    /// Fallback re-check of the directory when no file-system event arrives.
    pub poll_interval: Duration,
    /// A file no longer at a matching path (renamed or deleted away) is read until it has
    /// not grown for this long; its unterminated last line is handed out only then.
    pub rotate_wait: Duration,
    /// Most files held open at once. Idle files are closed first; a file whose bytes
    /// can only be read through its handle (deleted) is never closed unread.
    pub max_open_files: usize,
    /// A file that has not grown for this long is closed (its position kept) and
    /// reopened when it grows.
    pub close_inactive: Duration,
    /// Use the birth time (`statx` btime) in file identities where the filesystem has one.
    pub birth_time: bool,
    /// Nothing is known of this source at all (no checkpoint file, no offsets in Redis):
    /// `start_at` applies to the files the first scan finds, and their rotated siblings
    /// are taken as already shipped. With `false`, or any `known` file, every file the
    /// tailer does not know is read from 0.
    pub fresh_start: bool,
    /// Multi-line events (off by default): consecutive lines that belong together are
    /// handed out as one [`crate::Line`].
    pub multiline: crate::MultilineConfig,
}

impl TailConfig {
    /// The defaults the watcher uses, for `pattern`.
    pub fn new(pattern: impl Into<PathBuf>) -> TailConfig {
        TailConfig {
            pattern: pattern.into(),
            start_at: StartAt::Beginning,
            max_line_bytes: 1 << 20,
            read_buffer_bytes: 256 << 10,
            poll_interval: Duration::from_millis(250),
            rotate_wait: Duration::from_secs(5),
            max_open_files: 256,
            close_inactive: Duration::from_secs(300),
            birth_time: true,
            fresh_start: true,
            multiline: crate::MultilineConfig::default(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), TailError> {
        if self.max_line_bytes == 0 {
            return Err(TailError::InvalidConfig(
                "max_line_bytes must be at least 1".into(),
            ));
        }
        if self.read_buffer_bytes == 0 {
            return Err(TailError::InvalidConfig(
                "read_buffer_bytes must be at least 1".into(),
            ));
        }
        if self.max_open_files < 2 {
            return Err(TailError::InvalidConfig(
                "max_open_files must be at least 2".into(),
            ));
        }
        Ok(())
    }
}

/// A file known from the checkpoint or from Redis: its identity, where it was last
/// seen, and the committed offset (always a line end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFile {
    pub id: FileId,
    /// Where it was last seen (the real file, symlinks resolved); empty when only Redis
    /// knows it.
    pub path: PathBuf,
    pub offset: u64,
    /// The file's size when last seen, if known: a file gone with `size > offset`
    /// lost bytes, one gone at `size == offset` lost nothing.
    pub size: Option<u64>,
    /// [`crate::check_hash`] of the bytes just before `offset`, if known: tells the same
    /// content from new content of the same length and first line.
    pub check: Option<u64>,
    /// It was deleted while being read: no file found later is it.
    pub deleted: bool,
}

impl KnownFile {
    /// Known only by its committed offset (from Redis).
    pub fn offset_only(id: FileId, offset: u64) -> KnownFile {
        KnownFile {
            id,
            path: PathBuf::new(),
            offset,
            size: None,
            check: None,
            deleted: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_limits_are_not() {
        let config = TailConfig::new("/var/log/app/app.log");
        assert!(config.validate().is_ok());
        let bad = TailConfig {
            max_line_bytes: 0,
            ..config.clone()
        };
        assert_eq!(bad.validate().unwrap_err().reason(), "invalid_config");
        let bad = TailConfig {
            read_buffer_bytes: 0,
            ..config
        };
        assert!(bad.validate().is_err());
    }
}
