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
