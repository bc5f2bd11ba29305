//! Directory stamps: how a look with file events paused (see `signal.rs`) notices entries
//! that appeared, vanished or were renamed, without an event and without listing.
//!
//! A create, rename or delete changes the directory's mtime and ctime (and on tmpfs its
//! size). Timestamps may be as coarse as the kernel's tick (before Linux 6.13's
//! multigrain timestamps): a change in the same tick as the `stat` that read them can
//! leave them as they were. So a stamp whose mtime or ctime was less than
//! [`STAMP_GRAIN`] old when read proves nothing: the next look scans anyway. The poll
//! scan (every poll interval) stays the backstop, as for a missed event.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Coarser than any kernel tick (CONFIG_HZ ≥ 100).
pub(crate) const STAMP_GRAIN: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy)]
struct DirStamp {
    fields: (u64, u64, u64, i64, i64, i64, i64),
    /// Old enough when read that a later change must show as different fields.
    settled: bool,
}

impl DirStamp {
    fn of(dir: &Path) -> Option<DirStamp> {
        let m = std::fs::metadata(dir).ok()?;
        let read_at = SystemTime::now();
        let old = |secs: i64, nanos: i64| {
            let (Ok(secs), Ok(nanos)) = (u64::try_from(secs), u32::try_from(nanos)) else {
                return false;
            };
            let at = UNIX_EPOCH + Duration::new(secs, nanos);
            read_at
                .duration_since(at)
                .is_ok_and(|age| age >= STAMP_GRAIN)
        };
        Some(DirStamp {
            fields: (
                m.dev(),
                m.ino(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
            ),
            settled: old(m.mtime(), m.mtime_nsec()) && old(m.ctime(), m.ctime_nsec()),
        })
    }
}

/// The stamps of a set of directories, read together.
#[derive(Debug, Default)]
pub(crate) struct DirStamps {
    dirs: Vec<(PathBuf, Option<DirStamp>)>,
}

impl DirStamps {
    /// Reads every stamp again: true unless each directory provably did not change since
    /// the last read (a missing or unreadable directory never proves it).
    pub fn changed(&mut self) -> bool {
        let mut changed = false;
        for (dir, stamp) in &mut self.dirs {
            let now = DirStamp::of(dir);
            let same =
                matches!((&*stamp, &now), (Some(a), Some(b)) if a.settled && a.fields == b.fields);
            changed |= !same;
            *stamp = now;
        }
        changed
    }

    /// Makes the set exactly the distinct directories of `dirs`: stamps of those already
    /// in it are kept; a new one has no stamp yet, so the next [`DirStamps::changed`] says
    /// changed (what happened there before is unknown) and reads it.
    pub fn track<'a>(&mut self, dirs: impl IntoIterator<Item = &'a Path>) {
        let mut old = std::mem::take(&mut self.dirs);
        for dir in dirs {
            if self.dirs.iter().any(|(d, _)| d == dir) {
                continue;
            }
            let stamp = old
                .iter()
                .position(|(d, _)| d == dir)
                .and_then(|i| old.swap_remove(i).1);
            self.dirs.push((dir.to_path_buf(), stamp));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_change_the_stamp_and_fresh_stamps_prove_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        std::thread::sleep(2 * STAMP_GRAIN);
        let mut stamps = DirStamps::default();
        stamps.track([dir.path(), other.path(), dir.path()]);
        assert_eq!(stamps.dirs.len(), 2);
        assert!(stamps.changed(), "never read: unknown");
        assert!(!stamps.changed(), "settled and unchanged");
        // Tracking the same set again keeps what was read.
        stamps.track([other.path(), dir.path()]);
        assert!(!stamps.changed());
        std::fs::write(other.path().join("a"), b"x").unwrap();
        assert!(stamps.changed(), "a new entry in the second directory");
        assert!(stamps.changed(), "read while fresh: proves nothing");
        std::thread::sleep(2 * STAMP_GRAIN);
        assert!(stamps.changed(), "the stamp kept was read while fresh");
        assert!(!stamps.changed());
        std::fs::rename(other.path().join("a"), other.path().join("b")).unwrap();
        assert!(stamps.changed(), "a rename");
        std::thread::sleep(2 * STAMP_GRAIN);
        stamps.changed();
        // Writing to a file is not an entry change.
        std::fs::write(other.path().join("b"), b"xy").unwrap();
        assert!(!stamps.changed());
        std::fs::remove_file(other.path().join("b")).unwrap();
        assert!(stamps.changed(), "a delete");
    }

    #[test]
    fn a_missing_directory_always_counts_as_changed() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join("gone");
        let mut stamps = DirStamps::default();
        stamps.track([gone.as_path()]);
        assert!(stamps.changed());
        assert!(stamps.changed());
        assert!(stamps.changed());
    }
}
