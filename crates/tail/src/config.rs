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
    /// Applies only to files found at start when `known` is empty (first start ever).
    /// With any known entries every unknown file starts at 0: it appeared while we were down.
    /// Files that appear at run time always start at 0.
    pub start_at: StartAt,
    /// Longer lines are cut to this many bytes, flagged, and the rest skipped unbuffered.
    pub max_line_bytes: usize,
    /// Size of one `read()`.
    pub read_buffer_bytes: usize,
    /// Fallback re-check of the directory when no file-system event arrives.
    pub poll_interval: Duration,
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
        Ok(())
    }
}

/// A file from the checkpoint: its identity, where it was, and the committed offset
/// (always a line end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownFile {
    pub id: FileId,
    pub path: PathBuf,
    pub offset: u64,
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
