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

    fn watch_failed(&self, dir: &Path, error: &std::io::Error) {
        // The tailer reports this once per tailer; counted so an alert can see a node out
        // of inotify instances or watches (new lines then wait up to a poll interval).
        self.metrics.watch_fallbacks.inc();
        tracing::warn!(dir = %dir.display(), %error, "File notifications unavailable; falling back to polling (raise fs.inotify.max_user_instances / max_user_watches).");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_watch_failure_is_counted() {
        let metrics = Metrics::register(&prometheus::Registry::new()).expect("metrics");
        let events = WatcherEvents {
            metrics: metrics.clone(),
        };
        let error = std::io::Error::other("inotify_init: too many open files");
        events.watch_failed(Path::new("/var/log/app"), &error);
        assert_eq!(metrics.watch_fallbacks.get(), 1);
    }
}
