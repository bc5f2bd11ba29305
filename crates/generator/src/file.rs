//! The log file: append whole lines, rotate by rename, and find where the sequence left off.
//!
//! Plain `std::fs`: every operation is one small syscall on a local file (a line append, a
//! handful of renames at rotation, one bounded read at start-up), cheaper than a hop to the
//! blocking pool, and it keeps the write of each line a single `write` on an `O_APPEND` file,
//! so a tailer never sees half a line for longer than that call.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::GeneratorError;

/// How much of a file's end is read to find its last line; generator lines are ~200 bytes.
const TAIL_WINDOW: u64 = 64 * 1024;

/// What one append did, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Bytes written (the line, plus a `\n` closing a partial line left by a crash).
    pub bytes: u64,
    /// Whether the file was rotated before this line.
    pub rotated: bool,
}

/// The open log file and the rotation policy.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    /// Opened with `O_APPEND`: every write lands at the current end, even after a truncation.
    file: File,
    /// Bytes in the file as far as we know (our own writes since the last stat).
    size: u64,
    /// The file ended without `\n` when opened (a partial line from a crash): the first append
    /// closes that line first, so our line does not get glued to it.
    needs_newline: bool,
    /// Rotate before a line would make the file larger than this; 0 = never.
    rotate_bytes: u64,
    /// Rotated files kept.
    rotate_keep: u32,
}

impl LogFile {
    /// Opens (creating it and its directory if needed) `path` for appending, and returns the
    /// `seq` to continue with: the last generator line's `seq` + 1 in `path` — or in `<path>.1`
    /// when `path` is empty or missing (it was just rotated) — else 0.
    pub fn open(
        path: &Path,
        rotate_bytes: u64,
        rotate_keep: u32,
    ) -> Result<(LogFile, u64), GeneratorError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| GeneratorError::CreateDir {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let file = open_append(path)?;
        let resume_err = |source| GeneratorError::Resume {
            path: path.to_path_buf(),
            source,
        };
        let size = file.metadata().map_err(resume_err)?.len();
        let (last, ends_with_newline) = read_last_line(path).map_err(resume_err)?;
        let last = if size == 0 {
            let previous = rotated_path(path, 1);
            match read_last_line(&previous) {
                Ok((line, _)) => line,
                Err(err) if err.kind() == io::ErrorKind::NotFound => None,
                Err(source) => {
                    return Err(GeneratorError::Resume {
                        path: previous,
                        source,
                    })
                }
            }
        } else {
            last
        };
        let next_seq = match last.as_deref().map(parse_seq) {
            Some(Some(seq)) => seq.saturating_add(1),
            Some(None) => {
                tracing::info!(path = %path.display(), "The log does not end with a generator line; seq starts at 0.");
                0
            }
            None => 0,
        };
        let log = LogFile {
            path: path.to_path_buf(),
            file,
            size,
            needs_newline: size > 0 && !ends_with_newline,
            rotate_bytes,
            rotate_keep,
        };
        Ok((log, next_seq))
    }

    /// Appends `line` (which ends in `\n`) with one write, rotating first if it would not fit.
    pub fn append(&mut self, line: &[u8]) -> Result<Appended, GeneratorError> {
        let len = line.len() as u64;
        let mut rotated = false;
        if self.rotate_bytes > 0
            && self.size > 0
            && self.size.saturating_add(len) > self.rotate_bytes
        {
            // Confirm with the file system: someone may have truncated the file behind us.
            if let Ok(meta) = self.file.metadata() {
                self.size = meta.len();
            }
            if self.size > 0 && self.size.saturating_add(len) > self.rotate_bytes {
                self.rotate()?;
                rotated = true;
            }
        }
        let written = if self.needs_newline {
            let mut fixed = Vec::with_capacity(line.len() + 1);
            fixed.push(b'\n');
            fixed.extend_from_slice(line);
            self.write(&fixed)?;
            fixed.len() as u64
        } else {
            self.write(line)?;
            len
        };
        self.needs_newline = false;
        self.size += written;
        Ok(Appended {
            bytes: written,
            rotated,
        })
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), GeneratorError> {
        self.file
            .write_all(bytes)
            .map_err(|source| GeneratorError::Write {
                path: self.path.clone(),
                source,
            })
    }

    /// Drops `<path>.<keep>`, shifts `.n` to `.n+1`, renames the file to `.1` and opens a new one.
    fn rotate(&mut self) -> Result<(), GeneratorError> {
        let keep = self.rotate_keep.max(1);
        let oldest = rotated_path(&self.path, keep);
        ignore_missing(fs::remove_file(&oldest)).map_err(|source| GeneratorError::Rotate {
            path: oldest,
            source,
        })?;
        for n in (1..keep).rev() {
            let from = rotated_path(&self.path, n);
            ignore_missing(fs::rename(&from, rotated_path(&self.path, n + 1)))
                .map_err(|source| GeneratorError::Rotate { path: from, source })?;
        }
        ignore_missing(fs::rename(&self.path, rotated_path(&self.path, 1))).map_err(|source| {
            GeneratorError::Rotate {
                path: self.path.clone(),
                source,
            }
        })?;
        self.file = open_append(&self.path)?;
        self.size = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        self.needs_newline = false;
        tracing::debug!(path = %self.path.display(), keep, "Rotated the log file.");
        Ok(())
    }
}

/// `<path>.<n>`, the n-th rotated file.
pub fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn open_append(path: &Path) -> Result<File, GeneratorError> {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .map_err(|source| GeneratorError::Open {
            path: path.to_path_buf(),
            source,
        })
}

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// The last complete line of the file at `path` (without its `\n`), if any within the last
/// [`TAIL_WINDOW`] bytes, and whether the file ends with `\n` (an empty file counts as yes).
fn read_last_line(path: &Path) -> io::Result<(Option<Vec<u8>>, bool)> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let start = len.saturating_sub(TAIL_WINDOW);
    file.seek(SeekFrom::Start(start))?;
    let mut tail = Vec::with_capacity((len - start) as usize);
    file.take(TAIL_WINDOW).read_to_end(&mut tail)?;
    let ends_with_newline = tail.last().is_none_or(|b| *b == b'\n');
    Ok((
        last_complete_line(&tail, start == 0).map(<[u8]>::to_vec),
        ends_with_newline,
    ))
}

/// The last `\n`-terminated line in `tail`. `at_file_start` says whether `tail` begins at
/// offset 0; if not, a line with no `\n` before it in the window may be cut and is not trusted.
fn last_complete_line(tail: &[u8], at_file_start: bool) -> Option<&[u8]> {
    let end = tail.iter().rposition(|b| *b == b'\n')?;
    let body = &tail[..end];
    let begin = match body.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None if at_file_start => 0,
        None => return None,
    };
    let line = &tail[begin..end];
    Some(line.strip_suffix(b"\r").unwrap_or(line))
}

/// The `seq` of a generator line, or `None` for anything else.
fn parse_seq(line: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct Seq {
        seq: u64,
    }
    serde_json::from_slice::<Seq>(line).ok().map(|s| s.seq)
}

#[cfg(test)]
mod tests;
