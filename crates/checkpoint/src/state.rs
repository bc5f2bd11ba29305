//! The in-memory checkpoint: committed offsets keyed by file identity.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, SubsecRound, Utc};

/// Where reading of one file may safely resume.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FileEntry {
    /// The path the file was last seen at. A hint only: after a rotation the same identity lives
    /// at `app.log.1`, and the watcher finds it again by identity, not by name.
    pub path: PathBuf,
    /// End of the last line Redis acknowledged: everything before it is published.
    pub offset: u64,
    /// The file's size when `offset` was recorded, if known: at a restart, a file gone
    /// with `size > offset` lost bytes; one gone at `size == offset` lost nothing.
    pub size: Option<u64>,
    /// Hash of the bytes just before `offset` (the tail crate's check), if known: tells the
    /// same content from new content with the same first line at a restart.
    pub check: Option<u64>,
    /// The file was deleted (it is still being read through a handle): after a restart
    /// it cannot be found again, and no file on its inode is it.
    pub deleted: bool,
    /// When `offset` last moved (microsecond precision, the precision stored on disk, so that a
    /// state survives a save/load round trip unchanged).
    pub updated: DateTime<Utc>,
}

impl FileEntry {
    /// Moves to `offset` (not below the current one: the caller checks) at `path`; `None`
    /// keeps the recorded size or check.
    fn advance(
        &mut self,
        path: &Path,
        offset: u64,
        size: Option<u64>,
        check: Option<u64>,
        now: DateTime<Utc>,
    ) {
        if offset > self.offset {
            // The check hashed the bytes before the old offset: it says nothing of the new one.
            self.check = None;
        }
        self.offset = offset;
        if self.path != path {
            self.path = path.to_path_buf();
        }
        if size.is_some() {
            self.size = size;
        }
        if check.is_some() {
            self.check = check;
        }
        self.updated = now;
    }
}

/// Committed offsets of every tracked file, keyed by the tail crate's `FileId` rendered as a
/// string. The key is opaque here: this crate must not need to change when identities do.
///
/// A `BTreeMap` keeps the on-disk order stable (sorted by fid), so an unchanged state always
/// encodes to the same bytes and the store can skip the write.
#[derive(Default, Clone, PartialEq, Eq, Debug)]
pub struct Checkpoint {
    pub files: BTreeMap<String, FileEntry>,
}

impl Checkpoint {
    pub fn get(&self, fid: &str) -> Option<&FileEntry> {
        self.files.get(fid)
    }

    /// Record a committed offset (the end of the last line Redis acknowledged).
    ///
    /// Offsets only move forward for a given fid: a lower value is ignored, because acknowledgements
    /// of concurrent batches may arrive late and must never rewind a checkpoint (which would
    /// re-publish lines). A truncated file restarts at 0 under a new fid (the tail crate bumps the
    /// identity's generation), never by moving an existing fid backward. The same offset under a new
    /// path (the file was rotated by rename) updates the path.
    pub fn commit(&mut self, fid: &str, path: &Path, offset: u64) {
        self.commit_at(fid, path, offset, Utc::now());
    }

    /// [`Checkpoint::commit`] with an explicit clock, for deterministic tests and replays.
    pub fn commit_at(&mut self, fid: &str, path: &Path, offset: u64, now: DateTime<Utc>) {
        self.record_at(fid, path, offset, None, None, now);
    }

    /// [`Checkpoint::commit`] with the file's size and the check at `offset` (see
    /// [`FileEntry`]); `None` keeps what is recorded for the same offset.
    pub fn record(
        &mut self,
        fid: &str,
        path: &Path,
        offset: u64,
        size: Option<u64>,
        check: Option<u64>,
    ) {
        self.record_at(fid, path, offset, size, check, Utc::now());
    }

    pub(crate) fn record_at(
        &mut self,
        fid: &str,
        path: &Path,
        offset: u64,
        size: Option<u64>,
        check: Option<u64>,
        now: DateTime<Utc>,
    ) {
        let now = now.trunc_subsecs(6);
        match self.files.get_mut(fid) {
            Some(entry) => {
                let stale = offset < entry.offset;
                let unchanged = offset == entry.offset
                    && entry.path == path
                    && size.is_none_or(|s| entry.size == Some(s))
                    && check.is_none_or(|c| entry.check == Some(c));
                if !stale && !unchanged {
                    entry.advance(path, offset, size, check, now);
                }
            }
            None => {
                // A new file is an empty record at `offset` taken through the same update as a
                // known one, so the first commit and later ones cannot drift apart.
                let mut entry = FileEntry {
                    path: path.to_path_buf(),
                    offset,
                    size: None,
                    check: None,
                    deleted: false,
                    updated: now,
                };
                entry.advance(path, offset, size, check, now);
                self.files.insert(fid.to_owned(), entry);
            }
        }
    }

    /// The file was deleted while it is still being read (see [`FileEntry::deleted`]).
    pub fn mark_deleted(&mut self, fid: &str) {
        if let Some(entry) = self.files.get_mut(fid) {
            entry.deleted = true;
        }
    }

    /// The file was read to its end and is gone from every tracked path: drop it, so the checkpoint
    /// does not grow with every rotation. Returns whether it was tracked.
    pub fn remove(&mut self, fid: &str) -> bool {
        self.files.remove(fid).is_some()
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
    }

    #[test]
    fn commit_inserts_then_moves_forward() {
        let mut cp = Checkpoint::default();
        cp.commit_at("a-1", Path::new("/l/app.log"), 10, t(0));
        assert_eq!(cp.get("a-1").unwrap().offset, 10);
        cp.commit_at("a-1", Path::new("/l/app.log"), 25, t(1));
        let e = cp.get("a-1").unwrap();
        assert_eq!((e.offset, e.updated), (25, t(1)));
    }

    #[test]
    fn offset_never_moves_backward() {
        let mut cp = Checkpoint::default();
        cp.commit_at("a-1", Path::new("/l/app.log"), 100, t(0));
        cp.commit_at("a-1", Path::new("/l/app.log.1"), 40, t(5));
        let e = cp.get("a-1").unwrap();
        assert_eq!(e.offset, 100);
        assert_eq!(
            e.path,
            Path::new("/l/app.log"),
            "a stale commit changes nothing"
        );
        assert_eq!(e.updated, t(0));
    }

    #[test]
    fn same_offset_is_a_no_op_unless_the_path_changed() {
        let mut cp = Checkpoint::default();
        cp.commit_at("a-1", Path::new("/l/app.log"), 100, t(0));
        let before = cp.clone();
        cp.commit_at("a-1", Path::new("/l/app.log"), 100, t(9));
        assert_eq!(
            cp, before,
            "re-committing the same position must not dirty the state"
        );

        cp.commit_at("a-1", Path::new("/l/app.log.1"), 100, t(10));
        let e = cp.get("a-1").unwrap();
        assert_eq!(e.path, Path::new("/l/app.log.1"));
        assert_eq!(e.updated, t(10));
    }

    #[test]
    fn first_record_and_later_ones_keep_size_and_check_alike() {
        let mut cp = Checkpoint::default();
        let p = Path::new("/l/app.log");
        cp.record_at("a-1", p, 10, Some(50), Some(7), t(0));
        let e = cp.get("a-1").unwrap();
        assert_eq!(
            (e.offset, e.size, e.check, e.updated),
            (10, Some(50), Some(7), t(0))
        );
        // Forward without a check: the old check described other bytes, so it goes; the size stays.
        cp.record_at("a-1", p, 20, None, None, t(1));
        let e = cp.get("a-1").unwrap();
        assert_eq!(
            (e.offset, e.size, e.check, e.updated),
            (20, Some(50), None, t(1))
        );
        // Same offset with a new check fills it in; with the same one it is a no-op.
        cp.record_at("a-1", p, 20, None, Some(9), t(2));
        assert_eq!(cp.get("a-1").unwrap().check, Some(9));
        let before = cp.clone();
        cp.record_at("a-1", p, 20, Some(50), Some(9), t(3));
        assert_eq!(cp, before);
    }

    #[test]
    fn updated_is_truncated_to_microseconds() {
        let mut cp = Checkpoint::default();
        let precise = Utc.timestamp_opt(1_800_000_000, 123_456_789).unwrap();
        cp.commit_at("a-1", Path::new("/x"), 1, precise);
        assert_eq!(
            cp.get("a-1").unwrap().updated.timestamp_subsec_nanos(),
            123_456_000
        );
    }

    #[test]
    fn remove_reports_whether_tracked() {
        let mut cp = Checkpoint::default();
        cp.commit("a-1", Path::new("/x"), 1);
        assert_eq!(cp.len(), 1);
        assert!(cp.remove("a-1"));
        assert!(!cp.remove("a-1"));
        assert!(cp.is_empty());
        assert!(cp.get("a-1").is_none());
    }
}
