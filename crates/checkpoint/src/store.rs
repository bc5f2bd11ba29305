//! Durable storage of the checkpoint: atomic replace, crash recovery, corrupt-file quarantine.

use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::Utc;

use crate::error::CheckpointError;
use crate::format::{self, MAX_FILE_BYTES};
use crate::state::Checkpoint;

/// Checkpoints record which log files are being shipped and where; nobody else needs to read them.
const FILE_MODE: u32 = 0o600;

/// What happened while loading, for the caller to log (the library does not log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadNote {
    /// No checkpoint file: first start (or a fresh volume).
    Fresh,
    /// The stable file was read.
    Loaded { files: usize },
    /// A previous run died between writing the temp file and renaming it; the temp file was
    /// complete and newer than the stable one, so it was used (and renamed into place).
    RecoveredFromTemp { files: usize },
    /// The stable file was unreadable or invalid. It was renamed to `moved_to` (kept for a human to
    /// inspect, never deleted) and loading continued with an empty checkpoint.
    SetAside { moved_to: PathBuf, error: String },
}

/// What one candidate file held.
enum ReadOutcome {
    Missing,
    Valid(Checkpoint),
    Invalid(String),
}

/// Owns the checkpoint file `<dir>/<name>` and its companions `<name>.tmp` (the write in
/// progress) and `<name>.probe` (the writability check).
///
/// Single writer: one watcher per checkpoint path. The store remembers the bytes it last wrote or
/// loaded so that saving an unchanged state costs no disk I/O, which lets the caller save on every
/// timer tick without wearing the disk.
#[derive(Debug)]
pub struct CheckpointStore {
    path: PathBuf,
    dir: PathBuf,
    tmp_path: PathBuf,
    probe_path: PathBuf,
    /// Encoded form of the state on disk, `None` when the disk state is unknown or absent (the next
    /// save must write).
    last_encoded: Option<Vec<u8>>,
    last_written: Option<Instant>,
    set_aside: Option<PathBuf>,
}

impl CheckpointStore {
    /// Creates the directory if missing, checks it is writable (probe file), then loads.
    ///
    /// An unreadable or invalid checkpoint (bad JSON, unknown version, wrong shape) is renamed to
    /// `<name>.corrupt-<YYYYmmddTHHMMSSZ>` and treated as absent: the watcher then resumes from the
    /// offsets kept in Redis, which is better than refusing to start. A complete, valid
    /// `<name>.tmp` left by a run killed between write and rename is preferred over the stable file:
    /// it is only ever written after the stable one, so it holds the newer acknowledged offsets. An
    /// invalid temp file (killed mid-write) is deleted.
    pub fn open(path: &Path) -> Result<(CheckpointStore, Checkpoint, LoadNote), CheckpointError> {
        let Some(name) = path.file_name() else {
            return Err(CheckpointError::io(
                "open",
                path,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the checkpoint path has no file name",
                ),
            ));
        };
        let name = name.to_string_lossy();
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let mut store = CheckpointStore {
            path: path.to_path_buf(),
            tmp_path: dir.join(format!("{name}.tmp")),
            probe_path: dir.join(format!("{name}.probe")),
            dir,
            last_encoded: None,
            last_written: None,
            set_aside: None,
        };
        fs::create_dir_all(&store.dir).map_err(|source| CheckpointError::NotWritable {
            dir: store.dir.clone(),
            source,
        })?;
        store.check_writable()?;
        if fs::metadata(&store.path).is_ok_and(|m| m.is_dir()) {
            // Never "set aside" a directory: it is a misconfiguration, not a corrupt checkpoint.
            return Err(CheckpointError::io(
                "open",
                &store.path,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "is a directory, expected a checkpoint file",
                ),
            ));
        }

        let from_tmp = read_candidate(&store.tmp_path);
        let from_stable = read_candidate(&store.path);
        let (state, note) = match from_tmp {
            ReadOutcome::Valid(state) => {
                if let ReadOutcome::Invalid(_) = from_stable {
                    store.set_aside = Some(store.set_aside_stable()?);
                }
                // Best effort: if the rename fails the state is still in memory and `last_encoded`
                // stays `None`, so the next save rewrites both files; until then a crash would
                // recover from the same temp file again.
                if fs::rename(&store.tmp_path, &store.path).is_ok() {
                    let _ = sync_dir(&store.dir);
                    store.mark_on_disk(&state)?;
                }
                let files = state.len();
                (state, LoadNote::RecoveredFromTemp { files })
            }
            ReadOutcome::Missing | ReadOutcome::Invalid(_) => {
                if let ReadOutcome::Invalid(_) = from_tmp {
                    // Half-written by a run that was killed; the stable file is the truth. Best
                    // effort: the next save replaces it anyway.
                    let _ = fs::remove_file(&store.tmp_path);
                }
                match from_stable {
                    ReadOutcome::Valid(state) => {
                        store.mark_on_disk(&state)?;
                        let files = state.len();
                        (state, LoadNote::Loaded { files })
                    }
                    ReadOutcome::Missing => (Checkpoint::default(), LoadNote::Fresh),
                    ReadOutcome::Invalid(error) => {
                        let moved_to = store.set_aside_stable()?;
                        store.set_aside = Some(moved_to.clone());
                        (
                            Checkpoint::default(),
                            LoadNote::SetAside { moved_to, error },
                        )
                    }
                }
            }
        };
        Ok((store, state, note))
    }

    /// Atomic write: `<name>.tmp` (mode 0600), write, fsync, rename over the stable name, fsync the
    /// directory (without it the rename itself may not survive a power loss).
    ///
    /// Returns `Ok(false)` without touching the disk when `state` equals the last state written or
    /// loaded. On error the previous stable file is intact and the state is not marked written, so
    /// the next call retries.
    pub fn save(&mut self, state: &Checkpoint) -> Result<bool, CheckpointError> {
        let bytes = format::encode(state).map_err(CheckpointError::Encode)?;
        if self.last_encoded.as_deref() == Some(bytes.as_slice()) {
            return Ok(false);
        }
        if let Err(e) = self.write_temp(&bytes) {
            // Best effort; a leftover temp file is invalid or older-equal and handled at open.
            let _ = fs::remove_file(&self.tmp_path);
            return Err(e);
        }
        if let Err(source) = fs::rename(&self.tmp_path, &self.path) {
            let _ = fs::remove_file(&self.tmp_path);
            return Err(CheckpointError::io("rename", &self.path, source));
        }
        sync_dir(&self.dir)
            .map_err(|source| CheckpointError::io("sync directory", &self.dir, source))?;
        self.last_encoded = Some(bytes);
        self.last_written = Some(Instant::now());
        Ok(true)
    }

    /// Time of the last successful save or load (`None` before the first one when nothing was
    /// loaded), for `redtail_watcher_checkpoint_age_seconds`.
    pub fn last_written(&self) -> Option<Instant> {
        self.last_written
    }

    /// Check the directory is still writable by creating and removing a probe file. Used by
    /// readiness: a volume remounted read-only must show up before the next save fails.
    pub fn check_writable(&self) -> Result<(), CheckpointError> {
        let not_writable = |source| CheckpointError::NotWritable {
            dir: self.dir.clone(),
            source,
        };
        let probe = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(FILE_MODE)
            .open(&self.probe_path)
            .map_err(not_writable)?;
        drop(probe);
        fs::remove_file(&self.probe_path).map_err(not_writable)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where an invalid stable file was moved during [`CheckpointStore::open`], if one was. Also set
    /// when the note is `RecoveredFromTemp` and the stable file beside the temp file was invalid.
    pub fn set_aside_path(&self) -> Option<&Path> {
        self.set_aside.as_deref()
    }

    fn mark_on_disk(&mut self, state: &Checkpoint) -> Result<(), CheckpointError> {
        self.last_encoded = Some(format::encode(state).map_err(CheckpointError::Encode)?);
        self.last_written = Some(Instant::now());
        Ok(())
    }

    /// Writes and fsyncs the temp file. It is removed and created anew (`O_EXCL`, mode 0600) rather
    /// than truncated, so a wider mode or a symlink left at that name cannot leak or redirect it.
    fn write_temp(&self, bytes: &[u8]) -> Result<(), CheckpointError> {
        let tmp = &self.tmp_path;
        match fs::remove_file(tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(CheckpointError::io("remove stale temp file", tmp, source)),
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(FILE_MODE)
            .open(tmp)
            .map_err(|source| CheckpointError::io("create temp file", tmp, source))?;
        // The umask can only clear bits from 0600, but make the mode explicit regardless.
        file.set_permissions(Permissions::from_mode(FILE_MODE))
            .map_err(|source| CheckpointError::io("chmod temp file", tmp, source))?;
        file.write_all(bytes)
            .map_err(|source| CheckpointError::io("write", tmp, source))?;
        file.sync_all()
            .map_err(|source| CheckpointError::io("sync", tmp, source))
    }

    /// Renames the stable file to `<name>.corrupt-<UTC YYYYmmddTHHMMSSZ>` (with `-N` appended if
    /// that name is taken), keeping the evidence for a human instead of deleting it.
    fn set_aside_stable(&self) -> Result<PathBuf, CheckpointError> {
        let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
        let base = format!("{}.corrupt-{stamp}", self.path.to_string_lossy());
        let mut target = PathBuf::from(&base);
        let mut n = 1u32;
        while fs::symlink_metadata(&target).is_ok() {
            target = PathBuf::from(format!("{base}-{n}"));
            n += 1;
        }
        fs::rename(&self.path, &target)
            .map_err(|source| CheckpointError::io("set aside", &self.path, source))?;
        let _ = sync_dir(&self.dir);
        Ok(target)
    }
}

/// Reads and decodes one candidate file. Any failure other than absence makes it invalid: an
/// unreadable file cannot be trusted any more than a garbled one.
fn read_candidate(path: &Path) -> ReadOutcome {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return ReadOutcome::Missing,
        Err(e) => return ReadOutcome::Invalid(format!("cannot open: {e}")),
    };
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes) {
        return ReadOutcome::Invalid(format!("cannot read: {e}"));
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return ReadOutcome::Invalid(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    match format::decode(&bytes) {
        Ok(state) => ReadOutcome::Valid(state),
        Err(e) => ReadOutcome::Invalid(e),
    }
}

/// Makes a rename in `dir` durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
