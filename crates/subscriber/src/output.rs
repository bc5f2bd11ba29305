//! Where events go: stdout or a file opened for appending, behind one buffer.
//!
//! Async (tokio) I/O rather than `std::io`: a slow reader on the other end of stdout would
//! otherwise block a runtime worker thread, and with it the Redis I/O of this process.
//! `flush` returns once the bytes were handed to the kernel, which is the promise the
//! acknowledgement relies on (no fsync: a node crash may lose what the page cache held, as
//! for any log file).

use std::path::Path;

use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};

use crate::SubscriberError;

/// Large enough that a batch of typical lines is one write system call.
const BUFFER_BYTES: usize = 256 * 1024;

pub(crate) struct Output {
    writer: BufWriter<Box<dyn AsyncWrite + Send + Unpin>>,
    /// `stdout` or the path, for error messages.
    description: String,
}

impl Output {
    /// Opens `path` for appending (created if missing, its directory is not), or stdout.
    pub async fn open(path: Option<&Path>) -> Result<Self, SubscriberError> {
        let (inner, description): (Box<dyn AsyncWrite + Send + Unpin>, String) = match path {
            None => (Box::new(tokio::io::stdout()), "stdout".to_string()),
            Some(path) => {
                let description = path.display().to_string();
                let file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(|source| SubscriberError::Output {
                        target: description.clone(),
                        source,
                    })?;
                (Box::new(file), description)
            }
        };
        Ok(Output {
            writer: BufWriter::with_capacity(BUFFER_BYTES, inner),
            description,
        })
    }

    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), SubscriberError> {
        self.writer
            .write_all(bytes)
            .await
            .map_err(|source| self.error(source))
    }

    /// Pushes everything buffered to the kernel.
    pub async fn flush(&mut self) -> Result<(), SubscriberError> {
        self.writer
            .flush()
            .await
            .map_err(|source| self.error(source))
    }

    fn error(&self, source: std::io::Error) -> SubscriberError {
        SubscriberError::Output {
            target: self.description.clone(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_to_a_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.log");
        std::fs::write(&path, "before\n").expect("seed");
        let mut out = Output::open(Some(&path)).await.expect("open");
        out.write(b"one\n").await.expect("write");
        out.write(b"two\n").await.expect("write");
        out.flush().await.expect("flush");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "before\none\ntwo\n"
        );
    }

    #[tokio::test]
    async fn missing_directory_is_an_output_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no/such/dir/out.log");
        let err = Output::open(Some(&path)).await.err().expect("must fail");
        assert_eq!(err.reason(), "output");
        assert!(err.to_string().contains("out.log"));
    }
}
