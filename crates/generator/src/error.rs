//! The crate's error type.

use std::io;
use std::path::PathBuf;

/// Everything that can stop the generator.
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// A configuration value is out of range; `field` is the `Config` field name.
    #[error("invalid {field}: {message}")]
    InvalidConfig {
        /// The offending `Config` field.
        field: &'static str,
        /// What was expected.
        message: String,
    },
    /// The log file's directory could not be created.
    #[error("cannot create directory {}: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The log file could not be opened for appending.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// The end of an existing log file could not be read to resume `seq`.
    #[error("cannot read {} to resume the sequence: {source}", path.display())]
    Resume {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Appending a line failed (disk full, file system gone read-only…).
    #[error("cannot write to {}: {source}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// Renaming or deleting files during rotation failed.
    #[error("cannot rotate {}: {source}", path.display())]
    Rotate {
        /// The file being renamed or deleted.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A line could not be serialized (not expected: every field is a plain string or number).
    #[error("cannot serialize a log line: {0}")]
    Serialize(#[from] serde_json::Error),
}

impl GeneratorError {
    /// A short, fixed label for metrics and log fields.
    pub fn reason(&self) -> &'static str {
        match self {
            GeneratorError::InvalidConfig { .. } => "invalid_config",
            GeneratorError::CreateDir { .. } => "create_dir",
            GeneratorError::Open { .. } => "open",
            GeneratorError::Resume { .. } => "resume",
            GeneratorError::Write { .. } => "write",
            GeneratorError::Rotate { .. } => "rotate",
            GeneratorError::Serialize(_) => "serialize",
        }
    }
}
