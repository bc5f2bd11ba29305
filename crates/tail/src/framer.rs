//! Splits the bytes of one file into complete lines with exact file offsets.
//!
//! The framer owns the only buffer a tracked file has. Its size is bounded by
//! `max_line_bytes + 1 + read_buffer_bytes` whatever the file holds: a line that
//! grows past the limit keeps only its first `max_line_bytes` bytes and the rest
//! is skipped as it is read, so a 5 MiB line never sits in memory whole.
//! A cut line is only handed out once its end is known, because the caller
//! commits `end` and must never commit a position in the middle of a line.

use std::io;
use std::ops::Range;

/// A line found in the framer's buffer. `range` indexes [`Framer::bytes`] and stays
/// valid until the next [`Framer::fill_upto`] or [`Framer::reset`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FramedLine {
    pub offset: u64,
    pub end: u64,
    pub range: Range<usize>,
    pub truncated: bool,
    /// Length of the line's content as found in the file (without '\n'), for reporting cut lines.
    pub length_seen: u64,
}

/// State of a line that outgrew the limit: its kept prefix is `buf[start..start + max_line]`.
#[derive(Debug, Clone, Copy)]
struct Cut {
    /// Bytes of the line (prefix + skipped) that lie before `buf[scan]`.
    seen: u64,
}

#[derive(Debug)]
pub(crate) struct Framer {
    buf: Vec<u8>,
    /// Index of the first byte not yet handed out (start of the next line).
    start: usize,
    /// Index from which `buf` has not been searched for '\n' yet.
    scan: usize,
    /// File offset of `buf[start]`.
    line_offset: u64,
    /// File offset just after the last byte read.
    read_pos: u64,
    cut: Option<Cut>,
    max_line: usize,
    read_size: usize,
    /// The last fill read less than it asked for: the file ended there (a regular file
    /// returns short reads only at its end), so asking again now would read nothing.
    short_fill: bool,
}

impl Framer {
    pub fn new(offset: u64, max_line: usize, read_size: usize) -> Framer {
        Framer {
            buf: Vec::new(),
            start: 0,
            scan: 0,
            line_offset: offset,
            read_pos: offset,
            cut: None,
            max_line: max_line.max(1),
            read_size: read_size.max(1),
            short_fill: false,
        }
    }

    /// Whether the last [`Framer::fill_upto`] stopped at the file's end (see `short_fill`).
    pub fn at_file_end(&self) -> bool {
        self.short_fill
    }

    /// Offset of the next line to hand out: everything before it was delivered.
    pub fn next_offset(&self) -> u64 {
        self.line_offset
    }

    /// Offset just after the last byte read from the file.
    pub fn read_pos(&self) -> u64 {
        self.read_pos
    }

    pub fn bytes(&self, range: Range<usize>) -> &[u8] {
        &self.buf[range]
    }

    /// Allocated buffer size; exposed so tests can check memory stays bounded.
    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Forget everything buffered and continue at `offset` (a line start).
    pub fn reset(&mut self, offset: u64) {
        self.buf.clear();
        self.start = 0;
        self.scan = 0;
        self.line_offset = offset;
        self.read_pos = offset;
        self.cut = None;
    }

    /// Free the buffer of a file that is idle (at its end for now): what was read past the
    /// last complete line is read again when the file grows. Memory then stays with the
    /// files being read, not with every file followed. Kept while a cut line is being
    /// skipped (re-reading it would be wasted work).
    pub fn release(&mut self) {
        if self.cut.is_none() {
            let offset = self.line_offset;
            self.reset(offset);
            self.buf = Vec::new();
        }
    }

    /// The next complete line, without consuming it (see [`Framer::consume`]).
    /// Searching is remembered, so peeking again is cheap.
    pub fn peek(&mut self) -> Option<FramedLine> {
        let found = memchr::memchr(b'\n', &self.buf[self.scan..]).map(|i| self.scan + i);
        match (self.cut, found) {
            (None, Some(nl)) => {
                let mut content_end = nl;
                if content_end > self.start && self.buf[content_end - 1] == b'\r' {
                    content_end -= 1;
                }
                let content = (content_end - self.start) as u64;
                let truncated = content_end - self.start > self.max_line;
                let kept_end = content_end.min(self.start + self.max_line);
                Some(FramedLine {
                    offset: self.line_offset,
                    end: self.line_offset + (nl + 1 - self.start) as u64,
                    range: self.start..kept_end,
                    truncated,
                    length_seen: content,
                })
            }
            (Some(cut), Some(nl)) => {
                let with_newline = cut.seen + (nl - self.scan) as u64 + 1;
                let cr = nl > self.scan && self.buf[nl - 1] == b'\r';
                Some(FramedLine {
                    offset: self.line_offset,
                    end: self.line_offset + with_newline,
                    range: self.start..self.start + self.max_line,
                    truncated: true,
                    length_seen: with_newline - 1 - u64::from(cr),
                })
            }
            (None, None) => {
                self.scan = self.buf.len();
                // +1: a line of exactly max_line bytes may still be followed by "\r\n".
                let pending = self.buf.len() - self.start;
                if pending > self.max_line + 1 {
                    let keep = self.start + self.max_line;
                    self.cut = Some(Cut {
                        seen: pending as u64,
                    });
                    self.buf.truncate(keep);
                    self.scan = keep;
                }
                None
            }
            (Some(mut cut), None) => {
                cut.seen += (self.buf.len() - self.scan) as u64;
                self.cut = Some(cut);
                self.buf.truncate(self.scan);
                None
            }
        }
    }

    /// Hand out `line` (which must come from the last [`Framer::peek`]).
    pub fn consume(&mut self, line: &FramedLine) {
        let consumed = (line.end - self.line_offset) as usize;
        match self.cut.take() {
            // For a cut line the skipped bytes are not in the buffer: the '\n' is at `scan + ..`.
            Some(cut) => {
                let after_scan = (line.end - self.line_offset - cut.seen) as usize;
                self.start = self.scan + after_scan;
            }
            None => self.start += consumed,
        }
        self.scan = self.start;
        self.line_offset = line.end;
    }

    /// The unterminated rest of a file that will not grow any more (rotated away,
    /// deleted or truncated), as a final line ending at the read position.
    pub fn take_partial(&mut self) -> Option<FramedLine> {
        // Make sure the whole buffer was searched (and the cut state is current).
        if let Some(line) = self.peek() {
            self.consume(&line);
            return Some(line);
        }
        if self.read_pos == self.line_offset {
            return None;
        }
        let kept = self.buf.len() - self.start;
        let length_seen = match self.cut {
            Some(cut) => cut.seen,
            None => kept as u64,
        };
        let kept = kept.min(self.max_line);
        let line = FramedLine {
            offset: self.line_offset,
            end: self.read_pos,
            range: self.start..self.start + kept,
            truncated: length_seen > self.max_line as u64,
            length_seen,
        };
        self.cut = None;
        self.start = self.buf.len();
        self.scan = self.start;
        self.line_offset = self.read_pos;
        Some(line)
    }

    /// Read once more from the file. Call only after [`Framer::peek`] returned `None`:
    /// that is what bounds the buffer (nothing complete is left in it).
    /// Returns the number of bytes read; 0 = end of file for now.
    #[cfg(test)]
    pub fn fill(
        &mut self,
        read_at: impl FnMut(&mut [u8], u64) -> io::Result<usize>,
    ) -> io::Result<usize> {
        self.fill_upto(usize::MAX, read_at)
    }

    /// Read once more from the file (see `fill`), at most `want` bytes (at least a page): a small file is
    /// read with a small buffer, so a thousand small files never cost a thousand full
    /// read buffers.
    pub fn fill_upto(
        &mut self,
        want: usize,
        mut read_at: impl FnMut(&mut [u8], u64) -> io::Result<usize>,
    ) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scan -= self.start;
            self.start = 0;
        }
        let len = self.buf.len();
        let size = self.read_size.min(want.max(4096));
        // reserve_exact: the default doubling growth would break the memory bound.
        self.buf.reserve_exact(size);
        self.buf.resize(len + size, 0);
        let result = loop {
            match read_at(&mut self.buf[len..], self.read_pos) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = *result.as_ref().unwrap_or(&0);
        self.short_fill = n < size;
        self.buf.truncate(len + n);
        self.read_pos += n as u64;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one read at a time and collects (offset, end, data, truncated).
    fn frame(chunks: &[&[u8]], max_line: usize, finish: bool) -> Vec<(u64, u64, Vec<u8>, bool)> {
        let mut framer = Framer::new(0, max_line, 4);
        let mut out = Vec::new();
        let data: Vec<u8> = chunks.concat();
        loop {
            while let Some(line) = framer.peek() {
                out.push((
                    line.offset,
                    line.end,
                    framer.bytes(line.range.clone()).to_vec(),
                    line.truncated,
                ));
                framer.consume(&line);
            }
            let n = framer
                .fill(|buf, pos| {
                    let pos = pos as usize;
                    let n = buf.len().min(data.len() - pos);
                    buf[..n].copy_from_slice(&data[pos..pos + n]);
                    Ok(n)
                })
                .unwrap();
            if n == 0 {
                break;
            }
        }
        if finish {
            if let Some(line) = framer.take_partial() {
                out.push((
                    line.offset,
                    line.end,
                    framer.bytes(line.range.clone()).to_vec(),
                    line.truncated,
                ));
            }
        }
        out
    }

    #[test]
    fn splits_on_newline_and_strips_one_cr() {
        let lines = frame(&[b"ab\r\n\ncd\r\r\ne\rf\n"], 100, false);
        assert_eq!(
            lines,
            vec![
                (0, 4, b"ab".to_vec(), false),
                (4, 5, b"".to_vec(), false),
                (5, 10, b"cd\r".to_vec(), false),
                (10, 14, b"e\rf".to_vec(), false),
            ]
        );
    }

    #[test]
    fn partial_line_waits_for_its_newline() {
        let lines = frame(&[b"one\ntw"], 100, false);
        assert_eq!(lines, vec![(0, 4, b"one".to_vec(), false)]);
        let lines = frame(&[b"one\ntw", b"o\n"], 100, false);
        assert_eq!(lines[1], (4, 8, b"two".to_vec(), false));
    }

    #[test]
    fn final_partial_is_delivered_only_when_finished() {
        let lines = frame(&[b"one\ntwo\r"], 100, true);
        assert_eq!(lines[1], (4, 8, b"two\r".to_vec(), false));
        let lines = frame(&[b"one\n"], 100, true);
        assert_eq!(lines.len(), 1);
    }

    #[test]
    fn long_lines_are_cut_and_the_rest_skipped() {
        let long = [b'x'; 30];
        let mut input = long.to_vec();
        input.extend_from_slice(b"\r\nshort\n");
        let lines = frame(&[&input], 10, false);
        assert_eq!(lines[0], (0, 32, vec![b'x'; 10], true));
        assert_eq!(lines[1], (32, 38, b"short".to_vec(), false));
    }

    #[test]
    fn limit_is_on_content_not_on_the_line_ending() {
        // Exactly max bytes + "\r\n" is not cut; max + 1 bytes is.
        let lines = frame(&[b"0123456789\r\n0123456789a\n"], 10, false);
        assert_eq!(lines[0], (0, 12, b"0123456789".to_vec(), false));
        assert_eq!(lines[1], (12, 24, b"0123456789".to_vec(), true));
    }

    #[test]
    fn cut_unterminated_line_at_eof() {
        let lines = frame(&[&[b'y'; 25]], 10, true);
        assert_eq!(lines, vec![(0, 25, vec![b'y'; 10], true)]);
    }

    #[test]
    fn non_utf8_passes_through() {
        let lines = frame(&[b"\xff\xfe\x00bin\n"], 100, false);
        assert_eq!(lines[0].2, b"\xff\xfe\x00bin".to_vec());
    }

    #[test]
    fn memory_stays_bounded_on_a_huge_line() {
        let max_line = 1 << 20;
        let read_size = 64 << 10;
        let mut framer = Framer::new(0, max_line, read_size);
        let total: usize = 5 << 20;
        let mut max_capacity = 0;
        let mut lines = Vec::new();
        loop {
            while let Some(line) = framer.peek() {
                lines.push(line.clone());
                framer.consume(&line);
            }
            max_capacity = max_capacity.max(framer.capacity());
            let n = framer
                .fill(|buf, pos| {
                    let pos = pos as usize;
                    let n = buf.len().min(total + 1 - pos);
                    for (i, b) in buf[..n].iter_mut().enumerate() {
                        *b = if pos + i == total { b'\n' } else { b'z' };
                    }
                    Ok(n)
                })
                .unwrap();
            if n == 0 {
                break;
            }
        }
        assert!(
            max_capacity <= max_line + 1 + read_size,
            "capacity {max_capacity}"
        );
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].end, total as u64 + 1);
        assert!(lines[0].truncated);
        assert_eq!(lines[0].length_seen, total as u64);
        assert_eq!(lines[0].range.len(), max_line);
    }
}
