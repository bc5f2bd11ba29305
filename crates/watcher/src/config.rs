//! The watcher's settings, validated before anything is opened.

use std::path::PathBuf;
use std::time::Duration;

use redtail_bus::{Mode, RedisTarget};
use redtail_tail::StartAt;

use crate::WatcherError;

#[derive(Debug, Clone)]
pub struct Config {
    /// A file, or a glob in the last path component.
    pub log_path: PathBuf,
    pub checkpoint_path: PathBuf,
    pub checkpoint_every_lines: u64,
    pub checkpoint_interval: Duration,
    /// For files with no checkpoint on the very first start.
    pub start_at: StartAt,
    /// This watcher's id in Redis (`src` field, offsets hash field prefix): the pod name.
    pub source: String,
    pub max_line_bytes: usize,
    pub batch_max_lines: usize,
    /// Bounds one batch's memory and one script call's size.
    pub batch_max_bytes: usize,
    pub read_buffer_bytes: usize,
    pub poll_interval: Duration,
    pub target: RedisTarget,
    pub mode: Mode,
    /// Longest time a batch in flight keeps retrying after SIGTERM before the
    /// watcher gives up on it (it is re-read after the restart: nothing is lost).
    pub shutdown_timeout: Duration,
}

impl Config {
    pub fn validate(&self) -> Result<(), WatcherError> {
        let fail = |msg: String| Err(WatcherError::Config(msg));
        if self.source.is_empty() {
            return fail("the source id is empty".into());
        }
        if self.batch_max_lines == 0 || self.batch_max_lines > 100_000 {
            return fail(format!(
                "batch size {} is outside 1..=100000 lines",
                self.batch_max_lines
            ));
        }
        if self.max_line_bytes == 0 || self.max_line_bytes > 512 * 1024 * 1024 {
            return fail(format!(
                "max line size {} is outside 1..=512 MiB (Redis caps a value at 512 MiB)",
                self.max_line_bytes
            ));
        }
        if self.batch_max_bytes == 0 {
            return fail("the batch byte limit is 0".into());
        }
        if self.checkpoint_every_lines == 0 {
            return fail("checkpoint every 0 lines".into());
        }
        if let Mode::Stream { key, .. } = &self.mode {
            if key.is_empty() {
                return fail("the stream key is empty".into());
            }
        }
        self.target
            .validate()
            .map_err(|e| WatcherError::Config(e.to_string()))
    }
}
