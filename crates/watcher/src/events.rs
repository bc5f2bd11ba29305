//! Tail events turned into logs and metrics, in one place (the tail crate never logs).

use std::path::Path;

use redtail_tail::{FileId, TailEvents};

use crate::Metrics;

pub(crate) struct WatcherEvents {
    pub metrics: Metrics,
}

impl TailEvents for WatcherEvents {
    fn file_opened(&self, path: &Path, id: &FileId, offset: u64) {
        tracing::info!(path = %path.display(), fid = %id, offset, "Reading file.");
    }

    fn rotated(&self, path: &Path, id: &FileId) {
        self.metrics.rotations.inc();
        tracing::info!(path = %path.display(), fid = %id, "File rotated; reading the old one to its end first.");
    }

    fn truncated(&self, path: &Path, id: &FileId, old_offset: u64) {
        self.metrics.truncations.inc();
        tracing::warn!(path = %path.display(), fid = %id, old_offset, "File truncated; restarting it at offset 0.");
    }

    fn oversized_line(&self, path: &Path, offset: u64, length_seen: u64) {
        self.metrics.oversized_lines.inc();
        tracing::warn!(path = %path.display(), offset, length_seen, "Line longer than the limit; cut and flagged.");
    }

    fn found_rotated(&self, from: &Path, now_at: &Path, id: &FileId) {
        self.metrics.rotations.inc();
        tracing::info!(from = %from.display(), now_at = %now_at.display(), fid = %id, "File rotated while the watcher was down; finishing it first.");
    }

    fn file_lost(&self, path: &Path, id: &FileId, offset: u64) {
        self.metrics.files_lost.inc();
        tracing::error!(path = %path.display(), fid = %id, offset, "Checkpointed file not found any more; its unread lines are lost.");
    }

    fn read_error(&self, path: &Path, error: &std::io::Error) {
        self.metrics.read_errors.inc();
        tracing::warn!(path = %path.display(), %error, "Reading failed; retrying at the next poll.");
    }
}
