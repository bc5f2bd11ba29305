//! One file the tailer follows: where it is, its identity, its read position, and its
//! handle and buffer — both optional, so that idle files cost neither a descriptor nor
//! memory.

use std::fs::File;
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use crate::discovery::{Candidate, Place};
use crate::framer::{FramedLine, Framer};
use crate::id::{check_hash, fingerprint, fnv1a64, read_head};
use crate::{Aggregator, Batch, Event, FileId, InLine, Line, TailConfig, TailEvents};

/// Chunk size when searching backwards for the last '\n' (start at end).
const BACKWARD_CHUNK: u64 = 64 << 10;

pub(crate) struct Tracked {
    /// Device and inode: while the tailer holds the file open the kernel cannot reuse
    /// the inode, and within one run the device does not change, so (dev, ino) says
    /// exactly whether a directory entry is this file. Never persisted.
    pub dev: u64,
    pub ino: u64,
    pub birth: u64,
    /// The path published with its lines: the match it was read at or rotated from.
    pub label: Arc<Path>,
    /// Where it is now (the directory entry, or the symlink's target).
    pub location: Arc<Path>,
    /// The entry to reopen it by (`location` unless it is a symlink's target).
    pub entry: Arc<Path>,
    pub place: Place,
    handle: Option<File>,
    /// `None` until the identity is settled (first line complete, matched against what
    /// is known).
    pub id: Option<FileId>,
    /// Bytes the fingerprint covers (re-checked to see truncate-then-regrow).
    pub fp_len: usize,
    /// The identity of the content this inode held before a truncation.
    pub previous: Option<FileId>,
    /// `Opened` was handed out for `id`.
    pub opened_sent: bool,
    pub framer: Framer,
    /// Size seen by the last stat or read.
    pub size: u64,
    pub mtime: i128,
    /// Last time the file grew (or was found); the rotate wait and idle close count from it.
    pub last_growth: Instant,
    /// Last time it was read or opened (which handle to close first).
    pub last_used: Instant,
    /// Rotated away, idle for the rotate wait, unterminated rest handed out.
    pub finished: bool,
    /// A copy of another file's content (copy-truncate): decided when that file is
    /// truncated or gone, or when the rotate wait runs out.
    /// (source identity, since when, the offset up to which both were found equal).
    pub copy_of: Option<(FileId, Instant, u64)>,
    /// Forgotten; removed from the tailer's list at the next call.
    pub retired: bool,
    /// `Deleted` was handed out for `id`.
    pub deleted_sent: bool,
    /// Something may be readable (grew, a modify event, or the last batch hit a limit).
    pub dirty: bool,
    /// [`check_hash`] at [`Tracked::handed_out`].
    pub check: u64,
    /// [`check_hash`] at the framer's position, when it is past `handed_out` (lines held in
    /// an open multi-line event).
    read_check: u64,
    /// Multi-line grouping (None when off): its open event holds lines the framer has
    /// consumed but that are not handed out yet.
    agg: Option<Aggregator>,
    multiline: Option<crate::MultilineConfig>,
}

impl Tracked {
    pub fn new(c: &Candidate, label: Arc<Path>, config: &TailConfig, now: Instant) -> Tracked {
        let entry: Arc<Path> = Arc::from(c.path.as_path());
        let location = c
            .real
            .as_deref()
            .map_or_else(|| Arc::clone(&entry), Arc::from);
        Tracked {
            dev: c.dev,
            ino: c.ino,
            birth: c.birth,
            label,
            location,
            entry,
            place: c.place,
            handle: None,
            id: None,
            fp_len: 0,
            previous: None,
            opened_sent: false,
            framer: Framer::new(0, config.max_line_bytes, config.read_buffer_bytes),
            size: c.len,
            mtime: c.mtime,
            last_growth: now,
            last_used: now,
            finished: false,
            copy_of: None,
            retired: false,
            deleted_sent: false,
            dirty: true,
            check: 0,
            read_check: 0,
            agg: None,
            multiline: (!config.multiline.mode.is_off()).then(|| config.multiline.clone()),
        }
    }

    /// Offset of the next byte not handed out: the framer's position, or the start of
    /// the open multi-line event.
    pub fn handed_out(&self) -> u64 {
        self.agg
            .as_ref()
            .and_then(Aggregator::open_offset)
            .unwrap_or_else(|| self.framer.next_offset())
    }

    /// When the open multi-line event is due, if there is one.
    pub fn deadline(&self) -> Option<std::time::Instant> {
        self.agg.as_ref().and_then(Aggregator::deadline)
    }

    /// The open multi-line event as a batch, if it is due (`now = None`: due anyway).
    pub fn take_open(&mut self, now: Option<Instant>) -> Option<Batch> {
        let agg = self.agg.as_mut()?;
        let event = match now {
            Some(now) => agg.flush_due(now)?,
            None => agg.finish()?,
        };
        let id = self.id?;
        let mut batch = self.empty_batch(id);
        push_event(&mut batch, event);
        self.seal(&mut batch);
        Some(batch)
    }

    pub fn key(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    pub fn is_open(&self) -> bool {
        self.handle.is_some()
    }

    /// Open by its directory entry, if that still is this file. `Ok(false)`: the entry
    /// names another file now (the next scan will sort it out).
    pub fn open(&mut self) -> io::Result<bool> {
        if self.handle.is_some() {
            return Ok(true);
        }
        let file = File::open(&self.entry)?;
        let meta = file.metadata()?;
        if (meta.dev(), meta.ino()) != self.key() {
            return Ok(false);
        }
        self.handle = Some(file);
        Ok(true)
    }

    pub fn close(&mut self) {
        self.handle = None;
        self.framer.release();
    }

    fn file(&self) -> io::Result<&File> {
        self.handle
            .as_ref()
            .ok_or_else(|| io::Error::other("file not open"))
    }

    /// Size and link count from the handle (valid after a rename or delete).
    pub fn fstat(&self) -> io::Result<(u64, u64)> {
        let meta = self.file()?.metadata()?;
        Ok((meta.len(), meta.nlink()))
    }

    /// Fingerprint of the current content; `complete` for a file that will not grow.
    pub fn head_fingerprint(&self, complete: bool) -> io::Result<Option<(u64, usize)>> {
        Ok(fingerprint(&read_head(self.file()?)?, complete))
    }

    /// Whether the bytes the fingerprint covers changed (truncated and regrown).
    pub fn fingerprint_changed(&self) -> io::Result<bool> {
        let Some(id) = self.id else { return Ok(false) };
        let head = read_head(self.file()?)?;
        Ok(head.len() < self.fp_len || fnv1a64(&head[..self.fp_len]) != id.fingerprint)
    }

    /// Whether the candidate `c` (same device and inode) is another file: this one is
    /// closed, so the kernel may have reused its inode, and `c` was born at another time.
    pub fn replaced_by(&self, c: &Candidate) -> bool {
        !self.is_open() && self.birth != 0 && c.birth != 0 && self.birth != c.birth
    }

    /// After reopening: whether the content read so far is still there (first line and
    /// the bytes before the next offset).
    pub fn content_changed(&self) -> bool {
        if self.fingerprint_changed().unwrap_or(true) {
            return true;
        }
        let next = self.handed_out();
        let consumed = self.framer.next_offset();
        let len = self.fstat().map_or(0, |(len, _)| len);
        if len < consumed {
            return true;
        }
        let differs =
            |end: u64, check: u64| end > 0 && self.check_at(end).map_or(true, |c| c != check);
        // With an open multi-line event the framer is past what was handed out: what it
        // consumed must still be there too.
        differs(next, self.check) || (consumed > next && differs(consumed, self.read_check))
    }

    /// [`check_hash`] of this file at `end` (needs `end <= size`).
    pub fn check_at(&self, end: u64) -> io::Result<u64> {
        check_hash(self.file()?, end)
    }

    /// Offset just after the last '\n' of the file (0 if it has none).
    pub fn last_line_end(&self) -> io::Result<u64> {
        let file = self.file()?;
        let mut end = file.metadata()?.len();
        let mut chunk = vec![0u8; BACKWARD_CHUNK as usize];
        while end > 0 {
            let start = end.saturating_sub(BACKWARD_CHUNK);
            let buf = &mut chunk[..(end - start) as usize];
            file.read_exact_at(buf, start)?;
            if let Some(i) = memchr::memrchr(b'\n', buf) {
                return Ok(start + i as u64 + 1);
            }
            end = start;
        }
        Ok(0)
    }

    /// Start (or restart) delivering at `offset`, a line start.
    pub fn start_at(&mut self, id: FileId, offset: u64) {
        self.id = Some(id);
        self.agg = self.multiline.clone().map(Aggregator::new);
        self.deleted_sent = false;
        self.framer.reset(offset);
        self.opened_sent = false;
        self.check = if offset == 0 {
            0
        } else {
            self.check_at(offset).unwrap_or(0)
        };
        self.read_check = self.check;
    }

    /// Read complete lines into one batch, up to the limits. `finishing`: the file will
    /// not grow, so its unterminated rest is a line too. `None` = nothing to hand out.
    pub fn read_batch(
        &mut self,
        max_lines: usize,
        max_bytes: usize,
        finishing: bool,
        now: Instant,
        events: &dyn TailEvents,
    ) -> io::Result<Option<Batch>> {
        if self.agg.is_none() {
            let mut batch = self.read_lines(max_lines, max_bytes, finishing, events)?;
            if let Some(batch) = batch.as_mut() {
                self.seal(batch);
            }
            return Ok(batch);
        }
        // Multi-line: lines go through the aggregator; read on until an event is
        // complete or the file is at its end.
        loop {
            let lines = self.read_lines(max_lines, max_bytes, finishing, events)?;
            let (Some(id), Some(agg)) = (self.id, self.agg.as_mut()) else {
                return Ok(None);
            };
            let mut done: Vec<Event> = Vec::new();
            if let Some(lines) = &lines {
                for (i, line) in lines.lines.iter().enumerate() {
                    let input = InLine {
                        offset: line.offset,
                        end: line.end,
                        data: lines.line(i),
                        truncated: line.truncated,
                    };
                    agg.push(input, now, &mut done);
                }
            }
            if finishing && lines.is_none() {
                done.extend(agg.finish());
            }
            if done.is_empty() {
                if lines.is_none() {
                    return Ok(None);
                }
                continue;
            }
            let mut batch = self.empty_batch(id);
            for event in done {
                push_event(&mut batch, event);
            }
            self.seal(&mut batch);
            return Ok(Some(batch));
        }
    }

    /// Complete lines, one [`Line`] each (no multi-line grouping); not sealed (the
    /// caller sets the check at what it hands out).
    fn read_lines(
        &mut self,
        max_lines: usize,
        max_bytes: usize,
        finishing: bool,
        events: &dyn TailEvents,
    ) -> io::Result<Option<Batch>> {
        let Some(id) = self.id else { return Ok(None) };
        let mut batch = self.empty_batch(id);
        let mut full = false;
        // After a short read the file is at its end: one more read would return nothing
        // (one syscall per batch saved at live rates). Not when finishing: that needs the
        // empty read to take the unterminated rest.
        let mut at_end = false;
        loop {
            while batch.lines.len() < max_lines {
                let Some(line) = self.framer.peek() else {
                    break;
                };
                if !batch.lines.is_empty() && batch.data.len() + line.range.len() > max_bytes {
                    full = true;
                    break;
                }
                self.push(&mut batch, &line, events);
                self.framer.consume(&line);
            }
            if full || batch.lines.len() >= max_lines || batch.data.len() >= max_bytes {
                self.dirty = true;
                break;
            }
            if at_end && !finishing {
                break;
            }
            let file = self
                .handle
                .as_ref()
                .ok_or_else(|| io::Error::other("file not open"))?;
            // What the last look saw, plus slack for what was written since.
            let want = usize::try_from(self.size.saturating_sub(self.framer.read_pos()))
                .unwrap_or(usize::MAX)
                .saturating_add(4096);
            let n = match self
                .framer
                .fill_upto(want, |buf, pos| file.read_at(buf, pos))
            {
                Ok(n) => n,
                // Hand out what we have; the error comes back on the next call.
                Err(_) if !batch.is_empty() => break,
                Err(e) => return Err(e),
            };
            at_end = self.framer.at_file_end();
            if n == 0 {
                if finishing && batch.is_empty() {
                    if let Some(line) = self.framer.take_partial() {
                        self.push(&mut batch, &line, events);
                    }
                }
                break;
            }
        }
        self.size = self.size.max(self.framer.read_pos());
        if self.agg.is_some() && !batch.is_empty() {
            self.read_check = self.check_at(self.framer.next_offset()).unwrap_or(0);
        }
        Ok((!batch.is_empty()).then_some(batch))
    }

    fn empty_batch(&self, id: FileId) -> Batch {
        Batch {
            id,
            path: Arc::clone(&self.label),
            location: Arc::clone(&self.location),
            data: Vec::new(),
            lines: Vec::new(),
            check: 0,
            size: self.size,
        }
    }

    fn seal(&mut self, batch: &mut Batch) {
        let end = batch.end();
        self.check = self.check_at(end).unwrap_or(0);
        batch.check = self.check;
        batch.size = self.size;
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
            lines: 1,
        });
        if line.truncated {
            events.oversized_line(&self.label, line.offset, line.length_seen);
        }
    }
}

fn push_event(batch: &mut Batch, event: Event) {
    let start = batch.data.len();
    batch.data.extend_from_slice(&event.data);
    batch.lines.push(Line {
        offset: event.offset,
        end: event.end,
        data: start..batch.data.len(),
        truncated: event.truncated,
        lines: event.lines,
    });
}
