//! One file the tailer follows: its open handle, identity and read position.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;

use crate::framer::{FramedLine, Framer};
use crate::id::{fingerprint, fnv1a64, new_generation, read_head};
use crate::{Batch, FileId, Line, TailConfig, TailEvents};

/// Chunk size when searching backwards for the last '\n' (start at end).
const BACKWARD_CHUNK: u64 = 64 << 10;

pub(crate) struct TrackedFile {
    pub path: Arc<Path>,
    /// Kept open so a file renamed or deleted away can still be read to its end.
    file: File,
    /// Device and inode of the open handle: while it is open the kernel cannot reuse
    /// the inode, so (dev, ino) says exactly whether a path still names this file.
    pub dev: u64,
    pub ino: u64,
    /// `None` while pending: the first line is incomplete and shorter than 1024 bytes.
    pub id: Option<FileId>,
    /// Bytes the fingerprint covers, re-read at each re-check to detect truncate-then-regrow.
    fp_len: usize,
    /// Identity of the content before a truncation: new content with the same inode
    /// and fingerprint needs a new generation.
    pub previous: Option<FileId>,
    /// `Opened` was handed out.
    pub opened: bool,
    pub framer: Framer,
    /// A read failed: skip the file until the next re-check instead of spinning.
    pub paused: bool,
    /// Rotated away while its identity was pending: report once it is known.
    pub rotation_unreported: bool,
}

impl TrackedFile {
    pub fn open(path: &Path, offset: u64, config: &TailConfig) -> io::Result<TrackedFile> {
        let file = File::open(path)?;
        let meta = file.metadata()?;
        Ok(TrackedFile {
            path: Arc::from(path),
            file,
            dev: meta.dev(),
            ino: meta.ino(),
            id: None,
            fp_len: 0,
            previous: None,
            opened: false,
            framer: Framer::new(offset, config.max_line_bytes, config.read_buffer_bytes),
            paused: false,
            rotation_unreported: false,
        })
    }

    /// Current size, from the open handle (valid after a rename or delete).
    pub fn len(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }

    /// Fingerprint of the current content and the bytes it covers; `complete` for a
    /// file that will not grow any more.
    pub fn head_fingerprint(&self, complete: bool) -> io::Result<Option<(u64, usize)>> {
        Ok(fingerprint(&read_head(&self.file)?, complete))
    }

    pub fn set_identity(&mut self, id: FileId, fp_len: usize) {
        self.id = Some(id);
        self.fp_len = fp_len;
    }

    /// Compute the identity of a pending file if its content allows it now.
    pub fn resolve_identity(&mut self, complete: bool) -> io::Result<Option<FileId>> {
        if self.id.is_some() {
            return Ok(self.id);
        }
        let Some((fp, fp_len)) = self.head_fingerprint(complete)? else {
            return Ok(None);
        };
        let generation = match self.previous {
            Some(prev) if prev.matches(self.ino, fp) => new_generation(prev.generation),
            _ => 0,
        };
        self.set_identity(
            FileId {
                ino: self.ino,
                fingerprint: fp,
                generation,
            },
            fp_len,
        );
        Ok(self.id)
    }

    /// Whether the bytes the fingerprint covers changed: the file was truncated and
    /// grew again past our offset between two looks.
    pub fn fingerprint_changed(&self) -> io::Result<bool> {
        let Some(id) = self.id else { return Ok(false) };
        let head = read_head(&self.file)?;
        Ok(head.len() < self.fp_len || fnv1a64(&head[..self.fp_len]) != id.fingerprint)
    }

    /// Offset just after the last '\n' of the file (0 if it has none).
    pub fn last_line_end(&self) -> io::Result<u64> {
        let mut end = self.len()?;
        let mut chunk = vec![0u8; BACKWARD_CHUNK as usize];
        while end > 0 {
            let start = end.saturating_sub(BACKWARD_CHUNK);
            let buf = &mut chunk[..(end - start) as usize];
            self.file.read_exact_at(buf, start)?;
            if let Some(i) = memchr::memrchr(b'\n', buf) {
                return Ok(start + i as u64 + 1);
            }
            end = start;
        }
        Ok(0)
    }

    /// Read complete lines into one batch, up to the limits. `finishing`: the file will
    /// not grow (rotated away), so its unterminated rest is a line too.
    /// `None` = at end of file with nothing to hand out.
    pub fn read_batch(
        &mut self,
        id: FileId,
        max_lines: usize,
        max_bytes: usize,
        finishing: bool,
        events: &dyn TailEvents,
    ) -> io::Result<Option<Batch>> {
        let mut batch = Batch {
            id,
            path: Arc::clone(&self.path),
            data: Vec::new(),
            lines: Vec::new(),
        };
        loop {
            while batch.lines.len() < max_lines {
                let Some(line) = self.framer.peek() else {
                    break;
                };
                if !batch.lines.is_empty() && batch.data.len() + line.range.len() > max_bytes {
                    return Ok(Some(batch));
                }
                self.push(&mut batch, &line, events);
                self.framer.consume(&line);
            }
            if batch.lines.len() >= max_lines || batch.data.len() >= max_bytes {
                return Ok(Some(batch));
            }
            let file = &self.file;
            let n = match self.framer.fill(|buf, pos| file.read_at(buf, pos)) {
                Ok(n) => n,
                // Hand out what we have; the error comes back on the next call.
                Err(_) if !batch.is_empty() => return Ok(Some(batch)),
                Err(e) => return Err(e),
            };
            if n == 0 {
                if finishing && batch.is_empty() {
                    if let Some(line) = self.framer.take_partial() {
                        self.push(&mut batch, &line, events);
                    }
                }
                return Ok((!batch.is_empty()).then_some(batch));
            }
        }
    }

    /// The unterminated rest already read, as a final line (the file was truncated).
    pub fn take_final_batch(&mut self, id: FileId, events: &dyn TailEvents) -> Option<Batch> {
        let line = self.framer.take_partial()?;
        let mut batch = Batch {
            id,
            path: Arc::clone(&self.path),
            data: Vec::new(),
            lines: Vec::new(),
        };
        self.push(&mut batch, &line, events);
        Some(batch)
    }

    fn push(&self, batch: &mut Batch, line: &FramedLine, events: &dyn TailEvents) {
        let start = batch.data.len();
        batch
            .data
            .extend_from_slice(self.framer.bytes(line.range.clone()));
        batch.lines.push(Line {
            offset: line.offset,
            end: line.end,
            data: start..batch.data.len(),
            truncated: line.truncated,
        });
        if line.truncated {
            events.oversized_line(&self.path, line.offset, line.length_seen);
        }
    }
}
