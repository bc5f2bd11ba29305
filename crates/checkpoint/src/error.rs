//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Why a checkpoint operation failed.
///
/// Every variant that touches the disk names the path involved, because the operator reading the
/// message has to fix a volume mount or a permission, and "permission denied" alone does not say where.
#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    /// The checkpoint directory cannot be created or written to. Without it the watcher would
    /// re-read (and, in pub/sub mode, re-publish) everything after a restart, so this is fatal at
    /// start and makes the watcher not ready afterwards.
    #[error("checkpoint directory {dir} is not writable: {source}")]
    NotWritable {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A read, write, sync or rename failed. `op` names the step so a full disk (`write`) can be
    /// told apart from a broken filesystem (`sync directory`).
    #[error("checkpoint {op} failed for {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The state could not be serialised. Our types always serialise, so this exists only so
    /// that a future field that can fail does not need an `expect`.
    #[error("cannot encode checkpoint: {0}")]
    Encode(#[source] serde_json::Error),
}

impl CheckpointError {
    /// A short, fixed label for the `reason` of an error metric (never built from `Debug`).
    pub fn reason(&self) -> &'static str {
        match self {
            CheckpointError::NotWritable { .. } => "not_writable",
            CheckpointError::Io { .. } => "io",
            CheckpointError::Encode(_) => "encode",
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        CheckpointError::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_fixed_labels_and_messages_name_paths() {
        let not_writable = CheckpointError::NotWritable {
            dir: PathBuf::from("/var/lib/redtail"),
            source: io::Error::from(io::ErrorKind::PermissionDenied),
        };
        assert_eq!(not_writable.reason(), "not_writable");
        assert!(not_writable.to_string().contains("/var/lib/redtail"));

        let io_err = CheckpointError::io(
            "rename",
            "/var/lib/redtail/checkpoint.json",
            io::Error::from(io::ErrorKind::Other),
        );
        assert_eq!(io_err.reason(), "io");
        let msg = io_err.to_string();
        assert!(msg.contains("rename"), "{msg}");
        assert!(msg.contains("/var/lib/redtail/checkpoint.json"), "{msg}");

        let encode = CheckpointError::Encode(serde::ser::Error::custom("boom"));
        assert_eq!(encode.reason(), "encode");
        assert!(encode.to_string().contains("boom"));
    }
}
