use redtail_bus::BusError;
use redtail_checkpoint::CheckpointError;
use redtail_tail::TailError;

/// Why the watcher stopped. Retryable Redis trouble never ends up here.
#[derive(Debug, thiserror::Error)]
pub enum WatcherError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] CheckpointError),
    #[error("tail: {0}")]
    Tail(#[from] TailError),
    #[error("{0}")]
    Redis(#[from] BusError),
    #[error("starting the reader thread: {0}")]
    Thread(std::io::Error),
    #[error("the reader thread stopped unexpectedly")]
    ReaderGone,
}

impl WatcherError {
    pub fn reason(&self) -> &'static str {
        match self {
            WatcherError::Config(_) => "config",
            WatcherError::Checkpoint(e) => e.reason(),
            WatcherError::Tail(e) => e.reason(),
            WatcherError::Redis(e) => e.reason(),
            WatcherError::Thread(_) => "thread",
            WatcherError::ReaderGone => "reader_gone",
        }
    }
}
