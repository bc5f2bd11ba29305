//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum TailError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid file pattern: {0}")]
    InvalidPattern(String),
    #[error("invalid file id {0:?}: expected <ino hex>-<16 hex digits>[-<generation>]")]
    InvalidFileId(String),
    #[error("invalid tail configuration: {0}")]
    InvalidConfig(String),
}

impl TailError {
    /// Short, fixed label for metrics (bounded cardinality).
    pub fn reason(&self) -> &'static str {
        match self {
            TailError::Io { .. } => "io",
            TailError::InvalidPattern(_) => "invalid_pattern",
            TailError::InvalidFileId(_) => "invalid_file_id",
            TailError::InvalidConfig(_) => "invalid_config",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_and_messages() {
        let e = TailError::Io {
            path: PathBuf::from("/x/app.log"),
            source: io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
        };
        assert_eq!(e.reason(), "io");
        assert_eq!(e.to_string(), "/x/app.log: denied");
        assert_eq!(
            TailError::InvalidPattern("a".into()).reason(),
            "invalid_pattern"
        );
        assert_eq!(
            TailError::InvalidFileId("a".into()).reason(),
            "invalid_file_id"
        );
        assert_eq!(
            TailError::InvalidConfig("a".into()).reason(),
            "invalid_config"
        );
    }
}
