//! What has been committed, per file: the single source for the checkpoint
//! and for the lag / committed-offset gauges.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use redtail_tail::FileId;

use crate::Metrics;

#[derive(Debug, Clone)]
struct PathState {
    /// The file the tailer reads at this path now (the newest Opened).
    id: FileId,
    committed: u64,
}

/// Shared between the publisher loop (writes) and the gauge updater (reads).
#[derive(Clone, Default)]
pub(crate) struct CommitState {
    inner: Arc<Mutex<HashMap<PathBuf, PathState>>>,
}

impl CommitState {
    pub fn opened(&self, path: &Path, id: FileId, offset: u64) {
        self.lock().insert(
            path.to_path_buf(),
            PathState {
                id,
                committed: offset,
            },
        );
    }

    pub fn committed(&self, path: &Path, id: FileId, offset: u64) {
        let mut map = self.lock();
        match map.get_mut(path) {
            Some(state) if state.id == id => state.committed = state.committed.max(offset),
            // Lines of an older (rotated) file: the path now belongs to a newer one.
            Some(_) => {}
            None => {
                map.insert(
                    path.to_path_buf(),
                    PathState {
                        id,
                        committed: offset,
                    },
                );
            }
        }
    }

    /// The file `id` is finished (rotated away and read to its end, deleted, truncated).
    /// When no newer file holds `path`, the path's state and its `{path}` series go: a glob
    /// over date-named files must not grow memory and series without bound. Returns whether
    /// the path was forgotten.
    pub fn finished(&self, path: &Path, id: FileId, metrics: &Metrics) -> bool {
        let mut map = self.lock();
        match map.get(path) {
            Some(state) if state.id == id => {
                map.remove(path);
                drop(map);
                let label = path.to_string_lossy();
                // Err only when the series was never created (no gauge tick yet): fine.
                let _ = metrics.lag_bytes.remove_label_values(&[&label]);
                let _ = metrics.committed_offset.remove_label_values(&[&label]);
                true
            }
            // A newer file is at the path now (rotation), or it was never tracked.
            _ => false,
        }
    }

    pub fn tracked(&self) -> usize {
        self.lock().len()
    }

    /// Recompute lag and committed gauges from the files' current sizes. Runs
    /// on a timer, independent of publishing, so lag keeps growing on the
    /// dashboard while Redis is down — exactly when it matters.
    pub fn update_gauges(&self, metrics: &Metrics) {
        let snapshot: Vec<(PathBuf, PathState)> = self
            .lock()
            .iter()
            .map(|(p, s)| (p.clone(), s.clone()))
            .collect();
        for (path, state) in snapshot {
            let label = path.to_string_lossy();
            let lag = match std::fs::metadata(&path) {
                // Same file: bytes beyond the committed offset.
                Ok(meta) if meta.ino() == state.id.ino => {
                    meta.len().saturating_sub(state.committed)
                }
                // A new file already sits at the path: all of it is still to ship.
                Ok(meta) => meta.len(),
                Err(_) => 0,
            };
            metrics
                .lag_bytes
                .with_label_values(&[&label])
                .set(clamp(lag));
            metrics
                .committed_offset
                .with_label_values(&[&label])
                .set(clamp(state.committed));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, PathState>> {
        // A panic while holding this lock leaves plain numbers behind: still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(ino: u64) -> FileId {
        FileId {
            ino,
            birth: 0,
            fingerprint: 7,
            generation: 0,
        }
    }

    fn series(metrics: &Metrics, name: &str) -> Vec<String> {
        let registry = prometheus::Registry::new();
        registry
            .register(Box::new(metrics.lag_bytes.clone()))
            .expect("register lag");
        registry
            .register(Box::new(metrics.committed_offset.clone()))
            .expect("register committed");
        registry
            .gather()
            .iter()
            .filter(|f| f.name() == name)
            .flat_map(|f| f.get_metric().iter())
            .flat_map(|m| m.get_label().iter().map(|l| l.value().to_string()))
            .collect()
    }

    #[test]
    fn finished_file_is_forgotten_unless_a_newer_one_holds_the_path() {
        let metrics = Metrics::register(&prometheus::Registry::new()).expect("metrics");
        let dir = tempfile::tempdir().expect("tempdir");
        let (a, b) = (dir.path().join("a.log"), dir.path().join("b.log"));
        std::fs::write(&a, b"x\n").expect("write a");
        std::fs::write(&b, b"y\n").expect("write b");
        let state = CommitState::default();
        state.opened(&a, id(1), 0);
        state.opened(&b, id(2), 0);
        state.committed(&a, id(1), 2);
        state.update_gauges(&metrics);
        assert_eq!(series(&metrics, "redtail_watcher_lag_bytes").len(), 2);

        // Rotation: a newer file (ino 3) took a.log before the old one finished.
        state.opened(&a, id(3), 0);
        assert!(
            !state.finished(&a, id(1), &metrics),
            "a.log is held by ino 3"
        );
        assert_eq!(state.tracked(), 2);

        // b.log deleted and finished: its state and both series go.
        assert!(state.finished(&b, id(2), &metrics));
        assert_eq!(state.tracked(), 1);
        let b_label = b.to_string_lossy().to_string();
        for name in [
            "redtail_watcher_lag_bytes",
            "redtail_watcher_committed_offset_bytes",
        ] {
            let labels = series(&metrics, name);
            assert!(!labels.contains(&b_label), "{name}: {labels:?}");
            assert_eq!(labels.len(), 1, "{name}: {labels:?}");
        }
        // Finishing twice (or an unknown file) is harmless.
        assert!(!state.finished(&b, id(2), &metrics));
    }
}
