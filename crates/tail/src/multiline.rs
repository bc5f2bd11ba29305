//! Multi-line events: consecutive lines of one file that belong together (a
//! log line and its stack trace) become one event, published as one entry.
//!
//! Pure and synchronous on purpose: no I/O, no clock (the caller passes `now`),
//! no logging. The tail engine feeds each file's complete lines, in order, to
//! that file's [`Aggregator`] and publishes what comes out.
//!
//! Exactly-once rests on two properties, both tested in `multiline/prop_tests.rs`:
//! - an event's committed end ([`Event::end`]) is the end of its last line, and
//!   nothing at or after [`Aggregator::open_offset`] has been handed out, so
//!   committing event ends never skips or repeats a line;
//! - boundaries are a pure function of the line sequence (plus timeouts): the
//!   grouping state is reset at every event's first line, so a watcher restarted
//!   at the last committed end re-reads the open event's lines and rebuilds the
//!   same events as the one that was killed.
//!
//! Memory: an open event never holds more than `max_bytes` of data. At the line
//! or byte cap the open event is emitted flagged `truncated` and the line that
//! did not fit becomes the first line of the next event: no line is dropped.
//!
//! The engine's per-file loop, in short:
//! ```
//! use std::time::Instant;
//! use redtail_tail::{Aggregator, InLine, MultilineConfig, MultilineMode};
//!
//! let config = MultilineConfig { mode: MultilineMode::Java, ..MultilineConfig::default() };
//! let mut agg = Aggregator::new(config);
//! let mut ready = Vec::new();
//! let file = b"ERROR failed\njava.lang.IllegalStateException: boom\n\tat A.a(A.java:1)\nINFO next\n";
//! let mut offset = 0;
//! for raw in file.split_inclusive(|b| *b == b'\n') {
//!     let end = offset + raw.len() as u64;
//!     let line = InLine { offset, end, data: &raw[..raw.len() - 1], truncated: false };
//!     agg.push(line, Instant::now(), &mut ready);
//!     offset = end;
//! }
//! // Ready to publish: the log line with its trace, one event of 3 lines.
//! assert_eq!((ready.len(), ready[0].lines), (1, 3));
//! // Its end is the offset to commit once Redis has it; "INFO next" is still open,
//! // and nothing from its first byte on may be committed yet.
//! assert_eq!(Some(ready[0].end), agg.open_offset());
//! // Idle: wait until `agg.deadline()`, then publish `agg.flush_due(now)`.
//! // File finished (rotated away and idle, truncated) or shutting down:
//! assert_eq!(agg.finish().unwrap().data, b"INFO next");
//! ```

mod presets;

#[cfg(test)]
mod preset_tests;
#[cfg(test)]
mod prop_tests;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use presets::Grouper;
pub use presets::{MultilineError, MultilineMode};

/// How lines are grouped (`REDTAIL_MULTILINE*`; `max_bytes` is `REDTAIL_MAX_LINE_BYTES`).
#[derive(Debug, Clone)]
pub struct MultilineConfig {
    pub mode: MultilineMode,
    /// An open event is emitted after this long without a new line.
    pub timeout: Duration,
    /// Most lines in one event (at least 1).
    pub max_lines: usize,
    /// Most bytes of one event's data (its lines joined by `\n`).
    pub max_bytes: usize,
}

impl MultilineConfig {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1000);
    pub const DEFAULT_MAX_LINES: usize = 500;

    /// Why this configuration cannot work, if it cannot.
    pub fn check(&self) -> Result<(), String> {
        if self.max_lines == 0 {
            return Err("multi-line events of at most 0 lines".into());
        }
        if self.max_bytes == 0 {
            return Err("multi-line events of at most 0 bytes".into());
        }
        if self.timeout.is_zero() {
            return Err("a multi-line timeout of 0".into());
        }
        Ok(())
    }
}

impl Default for MultilineConfig {
    fn default() -> Self {
        MultilineConfig {
            mode: MultilineMode::Off,
            timeout: Self::DEFAULT_TIMEOUT,
            max_lines: Self::DEFAULT_MAX_LINES,
            max_bytes: 1 << 20,
        }
    }
}

/// One complete line of a file, as the framer cut it.
#[derive(Debug, Clone, Copy)]
pub struct InLine<'a> {
    /// Byte offset of the line's first byte.
    pub offset: u64,
    /// Byte offset just after its `\n`: where reading resumes once it is published.
    pub end: u64,
    /// The line without its `\n` (nor a `\r` before it).
    pub data: &'a [u8],
    /// The framer cut it at `REDTAIL_MAX_LINE_BYTES`.
    pub truncated: bool,
}

/// One event: one or more consecutive lines of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Offset of its first line (the `off` field).
    pub offset: u64,
    /// Just after its last line: the offset to commit once it is published.
    pub end: u64,
    /// Its lines joined by `\n`, without a final one.
    pub data: Vec<u8>,
    /// How many lines it holds (`lines <n>` when above 1).
    pub lines: u32,
    /// A line of it was cut, or the event itself was cut at the line or byte cap
    /// (its continuation is the next event).
    pub truncated: bool,
}

/// The event being built and when it is due.
#[derive(Debug)]
struct Open {
    event: Event,
    /// When it is emitted if no line continues it (None: too far to represent).
    due: Option<Instant>,
}

/// Groups one file's lines into events. One per file: the grouping state is per file.
#[derive(Debug)]
pub struct Aggregator {
    grouper: Grouper,
    timeout: Duration,
    max_lines: usize,
    max_bytes: usize,
    open: Option<Open>,
}

impl Aggregator {
    pub fn new(config: MultilineConfig) -> Self {
        Aggregator {
            grouper: Grouper::new(config.mode),
            timeout: config.timeout,
            max_lines: config.max_lines.max(1),
            max_bytes: config.max_bytes.max(1),
            open: None,
        }
    }

    /// With `off`, every line is its own event at once; the engine can skip the
    /// aggregator entirely and save the copy [`Aggregator::push`] makes.
    pub fn is_off(&self) -> bool {
        self.grouper.mode().is_off()
    }

    /// Feeds the next complete line of this file. A completed event (the open one,
    /// ended by this line) is pushed to `out`; with `off`, the line itself is.
    /// At most one event per call.
    pub fn push(&mut self, line: InLine<'_>, now: Instant, out: &mut Vec<Event>) {
        if self.is_off() {
            let (data, cut) = self.capped(line.data);
            out.push(Event {
                offset: line.offset,
                end: line.end,
                data: data.to_vec(),
                lines: 1,
                truncated: line.truncated || cut,
            });
            return;
        }
        if let Some(mut open) = self.open.take() {
            // A gap (the caller skipped bytes) always ends the event: an event's
            // range must be exactly the lines it holds.
            let contiguous = line.offset == open.event.end;
            if contiguous && self.grouper.continues(line.data, open.event.lines) {
                let fits_lines = (open.event.lines as usize) < self.max_lines;
                let fits_bytes = open.event.data.len() + 1 + line.data.len() <= self.max_bytes;
                if fits_lines && fits_bytes {
                    reserve_capped(&mut open.event.data, 1 + line.data.len(), self.max_bytes);
                    open.event.data.push(b'\n');
                    open.event.data.extend_from_slice(line.data);
                    open.event.lines += 1;
                    open.event.end = line.end;
                    open.event.truncated |= line.truncated;
                    open.due = now.checked_add(self.timeout);
                    self.open = Some(open);
                    return;
                }
                // At the cap: this event is cut here, the line begins its continuation.
                open.event.truncated = true;
            }
            out.push(open.event);
        }
        self.start(line, now);
    }

    /// The open event, if it has waited `timeout` since its last line.
    pub fn flush_due(&mut self, now: Instant) -> Option<Event> {
        let due = self.open.as_ref()?.due?;
        if now >= due {
            self.open.take().map(|open| open.event)
        } else {
            None
        }
    }

    /// When the open event becomes due (for the caller's wait), if any.
    pub fn deadline(&self) -> Option<Instant> {
        self.open.as_ref().and_then(|open| open.due)
    }

    /// The file is finished (rotated away and idle, truncated) or the process shuts
    /// down: the open event, as it is.
    pub fn finish(&mut self) -> Option<Event> {
        self.open.take().map(|open| open.event)
    }

    /// Offset of the open event's first line: nothing at or after it has been handed out.
    pub fn open_offset(&self) -> Option<u64> {
        self.open.as_ref().map(|open| open.event.offset)
    }

    /// Memory held by the open event's data (allocated, not just used): at most `max_bytes`.
    pub fn open_bytes(&self) -> usize {
        self.open
            .as_ref()
            .map_or(0, |open| open.event.data.capacity())
    }

    fn start(&mut self, line: InLine<'_>, now: Instant) {
        self.grouper.first(line.data);
        let (data, cut) = self.capped(line.data);
        let mut buf = Vec::with_capacity(data.len());
        buf.extend_from_slice(data);
        self.open = Some(Open {
            event: Event {
                offset: line.offset,
                end: line.end,
                data: buf,
                lines: 1,
                truncated: line.truncated || cut,
            },
            due: now.checked_add(self.timeout),
        });
    }

    /// A single line longer than `max_bytes` (the framer already cuts lines at
    /// this size, so only a caller with a larger limit gets here) is cut to it.
    fn capped<'a>(&self, data: &'a [u8]) -> (&'a [u8], bool) {
        if data.len() > self.max_bytes {
            (&data[..self.max_bytes], true)
        } else {
            (data, false)
        }
    }
}

/// Makes room for `more` bytes, growing geometrically (amortised O(1) appends) but
/// never past `cap`: `Vec`'s own doubling could allocate up to twice the cap.
/// The caller has checked that `data.len() + more <= cap`.
fn reserve_capped(data: &mut Vec<u8>, more: usize, cap: usize) {
    let need = data.len() + more;
    if need > data.capacity() {
        let target = need.max(data.capacity().saturating_mul(2)).min(cap);
        data.reserve_exact(target - data.len());
    }
}
