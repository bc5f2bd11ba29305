//! Tail events turned into logs and metrics, in one place (the tail crate never logs).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use redtail_tail::{FileId, LossReason, TailEvents};

use crate::Metrics;

pub(crate) struct WatcherEvents {
    pub metrics: Metrics,
    /// Unix second of the last descriptor-pressure warning (logged at most every 10 s).
    pub pressure_logged: AtomicU64,
}

impl WatcherEvents {
    pub fn new(metrics: Metrics) -> Self {
        Self {
            metrics,
            pressure_logged: AtomicU64::new(0),
        }
    }
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
        tracing::info!(from = %from.display(), now_at = %now_at.display(), fid = %id, "File moved while the watcher was down; finishing it first.");
    }

    fn file_lost(&self, path: &Path, id: &FileId, offset: u64, unread: u64, reason: LossReason) {
        self.metrics
            .files_lost
            .with_label_values(&[reason.as_str()])
            .inc();
        self.metrics.lost_bytes.inc_by(unread);
        tracing::error!(path = %path.display(), fid = %id, offset, unread_bytes = unread, reason = reason.as_str(), "Bytes of this file can no longer be read; they are lost.");
    }

    fn file_finished(&self, path: &Path, id: &FileId, end: u64) {
        tracing::info!(path = %path.display(), fid = %id, end, "File read to its end and gone; forgotten.");
    }

    fn descriptor_pressure(&self, path: &Path, error: Option<&std::io::Error>) {
        self.metrics.descriptor_pressure.inc();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.pressure_logged.load(Ordering::Relaxed);
        if now >= last + 10
            && self
                .pressure_logged
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let error = error
                .map(ToString::to_string)
                .unwrap_or_else(|| "REDTAIL_MAX_OPEN_FILES reached".into());
            tracing::warn!(path = %path.display(), %error, "Out of file descriptors; opening deferred (raise REDTAIL_MAX_OPEN_FILES / the open-file limit, or lower REDTAIL_CLOSE_INACTIVE_MS).");
        }
    }

    fn compressed_skipped(&self, path: &Path) {
        self.metrics.compressed_skipped.inc();
        tracing::debug!(path = %path.display(), "Compressed rotation seen; not read.");
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
        let events = WatcherEvents::new(metrics.clone());
        let error = std::io::Error::other("inotify_init: too many open files");
        events.watch_failed(Path::new("/var/log/app"), &error);
        assert_eq!(metrics.watch_fallbacks.get(), 1);
    }
}
