//! Which lines continue an event: one small state machine per preset.
//!
//! Every rule looks only at the lines of the event it is deciding about (its
//! state is reset by [`Grouper::first`] at each event's first line), never at
//! earlier events. That is what makes event boundaries a pure function of the
//! line sequence: a watcher restarted at an event's first line rebuilds exactly
//! the same events as the one that was killed.
//!
//! The presets are plain byte matchers (no regex): they run once per line on
//! the watcher's hot path, and lines need not be UTF-8.

use regex::bytes::Regex;

/// How lines are grouped into events (`REDTAIL_MULTILINE`).
#[derive(Debug, Clone)]
pub enum MultilineMode {
    /// Every line is its own event (the default).
    Off,
    /// A log line and its Java stack trace (`at`, `Caused by:`, `... N more`, ...).
    Java,
    /// A `Traceback (most recent call last):` block through its final exception line,
    /// chained tracebacks included.
    Python,
    /// A `panic:` / `fatal error:` line with its goroutine dump, blank lines included.
    Go,
    /// A line starting with a space or a tab continues the event.
    Indented,
    /// A line matching the pattern starts an event; any other line continues it.
    /// Bytes, not `str`: lines are published as they are and need not be UTF-8.
    Regex(Regex),
}

/// A `REDTAIL_MULTILINE` / `REDTAIL_MULTILINE_START` combination that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultilineError {
    #[error("unknown mode {0:?}: expected off, java, python, go, indented or regex")]
    UnknownMode(String),
    #[error("mode regex needs a start pattern (a regex matching an event's first line)")]
    MissingStart,
    #[error("a start pattern is only used with mode regex")]
    UnusedStart,
    #[error("the start pattern is not a valid regex: {0}")]
    BadStart(String),
}

impl MultilineError {
    /// A short, bounded label (for metrics and tests).
    pub fn reason(&self) -> &'static str {
        match self {
            MultilineError::UnknownMode(_) => "unknown_mode",
            MultilineError::MissingStart => "missing_start",
            MultilineError::UnusedStart => "unused_start",
            MultilineError::BadStart(_) => "bad_start",
        }
    }
}

impl MultilineMode {
    /// The mode named `name` (case-insensitive); `start` is the pattern for `regex`,
    /// and is refused with any other mode (it would silently do nothing).
    pub fn parse(name: &str, start: Option<&str>) -> Result<MultilineMode, MultilineError> {
        let mode = match name.trim().to_ascii_lowercase().as_str() {
            "off" => MultilineMode::Off,
            "java" => MultilineMode::Java,
            "python" => MultilineMode::Python,
            "go" => MultilineMode::Go,
            "indented" => MultilineMode::Indented,
            "regex" => {
                let pattern = start.ok_or(MultilineError::MissingStart)?;
                let regex = Regex::new(pattern).map_err(|e| {
                    // regex's syntax errors span several lines (pattern, caret, message):
                    // keep the message, so a configuration error stays one line.
                    let text = e.to_string();
                    let last = text.lines().rev().find(|l| !l.trim().is_empty());
                    MultilineError::BadStart(
                        last.unwrap_or("invalid pattern")
                            .trim()
                            .trim_start_matches("error: ")
                            .to_string(),
                    )
                })?;
                return Ok(MultilineMode::Regex(regex));
            }
            _ => return Err(MultilineError::UnknownMode(name.to_string())),
        };
        if start.is_some() {
            return Err(MultilineError::UnusedStart);
        }
        Ok(mode)
    }

    /// Whether lines are grouped at all (callers may bypass the aggregator when not).
    pub fn is_off(&self) -> bool {
        matches!(self, MultilineMode::Off)
    }

    /// The `REDTAIL_MULTILINE` word for this mode (for logs and `--help`).
    pub fn name(&self) -> &'static str {
        match self {
            MultilineMode::Off => "off",
            MultilineMode::Java => "java",
            MultilineMode::Python => "python",
            MultilineMode::Go => "go",
            MultilineMode::Indented => "indented",
            MultilineMode::Regex(_) => "regex",
        }
    }
}

/// Where a Python traceback block stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Py {
    /// The event is a log line (a traceback may follow it).
    Line,
    /// Inside `Traceback (most recent call last):`: indented frames until the exception line.
    Frames,
    /// Just after the final `SomeError: ...` line: a chain may follow.
    Raised,
    /// One blank line after the exception line.
    RaisedBlank,
    /// After "During handling of the above exception..." / "The above exception was...".
    Chained,
}

/// Where a Go crash dump stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GoState {
    /// The event is a log line.
    Line,
    /// Only `runtime: ...` lines so far: the runtime's words before a `fatal error:`
    /// (`runtime: goroutine stack exceeds 1000000000-byte limit`).
    Preamble,
    /// Inside a `panic:` / `fatal error:` dump.
    Dump,
}

/// A mode plus the state of the event being built.
#[derive(Debug)]
pub(crate) struct Grouper {
    mode: MultilineMode,
    py: Py,
    go: GoState,
}

impl Grouper {
    pub(crate) fn new(mode: MultilineMode) -> Self {
        Grouper {
            mode,
            py: Py::Line,
            go: GoState::Line,
        }
    }

    pub(crate) fn mode(&self) -> &MultilineMode {
        &self.mode
    }

    /// `line` is the first line of a new event: forget everything before it.
    pub(crate) fn first(&mut self, line: &[u8]) {
        self.py = if is_python_traceback_start(line) {
            Py::Frames
        } else {
            Py::Line
        };
        self.go = if is_go_crash_start(line) {
            GoState::Dump
        } else if line.starts_with(GO_RUNTIME) {
            GoState::Preamble
        } else {
            GoState::Line
        };
    }

    /// Does `line` continue the open event, which has `lines` lines so far?
    /// Updates the state only when it does; otherwise the caller calls [`Grouper::first`].
    pub(crate) fn continues(&mut self, line: &[u8], lines: u32) -> bool {
        match &self.mode {
            MultilineMode::Off => false,
            MultilineMode::Indented => starts_with_blank(line),
            MultilineMode::Regex(start) => !start.is_match(line),
            MultilineMode::Java => java_continues(line, lines),
            MultilineMode::Python => match python_next(self.py, line) {
                Some(next) => {
                    self.py = next;
                    true
                }
                None => false,
            },
            MultilineMode::Go => match go_next(self.go, line) {
                Some(next) => {
                    self.go = next;
                    true
                }
                None => false,
            },
        }
    }
}

fn starts_with_blank(line: &[u8]) -> bool {
    matches!(line.first(), Some(b' ' | b'\t'))
}

fn trim_start(line: &[u8]) -> &[u8] {
    let n = line
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t'))
        .count();
    &line[n..]
}

fn is_blank(line: &[u8]) -> bool {
    trim_start(line).is_empty()
}

// ---- Java ----

fn java_continues(line: &[u8], lines: u32) -> bool {
    // Tab-indented frames, `... N more`, nested `Suppressed:` / `Caused by:`.
    if starts_with_blank(line) && !is_blank(line) {
        return true;
    }
    line.starts_with(b"at ")
        || line.starts_with(b"Caused by: ")
        || line.starts_with(b"Suppressed: ")
        || is_java_frames_omitted(line)
        // `log.error("msg", e)`: the exception line comes right after the log line.
        || (lines == 1 && is_java_exception_line(line))
}

/// `... 27 more` (JDK) or `... 12 common frames omitted` (Logback).
fn is_java_frames_omitted(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"... ") else {
        return false;
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    digits > 0 && (rest[digits..] == *b" more" || rest[digits..].starts_with(b" common frames"))
}

/// `java.lang.IllegalStateException: boom`: a qualified class name (at least one
/// dot) ending in `Exception`, `Error` or `Throwable`, then the end or `: message`.
pub(crate) fn is_java_exception_line(line: &[u8]) -> bool {
    let name_len = line
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'$'))
        .count();
    let (name, rest) = line.split_at(name_len);
    let qualified = name.contains(&b'.')
        && name.first().is_some_and(|b| b.is_ascii_alphabetic())
        && !name.ends_with(b".")
        && !name.windows(2).any(|w| w == b"..");
    let class_like =
        name.ends_with(b"Exception") || name.ends_with(b"Error") || name.ends_with(b"Throwable");
    qualified && class_like && (rest.is_empty() || rest.starts_with(b": ") || rest == b":")
}

// ---- Python ----

const PY_TRACEBACK: &[u8] = b"Traceback (most recent call last):";
const PY_GROUP_TRACEBACK: &[u8] = b"+ Exception Group Traceback (most recent call last):";
const PY_DURING: &[u8] = b"During handling of the above exception, another exception occurred:";
const PY_CAUSE: &[u8] = b"The above exception was the direct cause of the following exception:";

/// `Traceback (most recent call last):`, or Python 3.11's indented
/// `  + Exception Group Traceback (most recent call last):`.
fn is_python_traceback_start(line: &[u8]) -> bool {
    line == PY_TRACEBACK || trim_start(line) == PY_GROUP_TRACEBACK
}

/// The state after `line` if it continues the event, or None if it starts a new one.
fn python_next(state: Py, line: &[u8]) -> Option<Py> {
    match state {
        // `logger.exception(...)`: the traceback follows the log line.
        Py::Line => is_python_traceback_start(line).then_some(Py::Frames),
        Py::Frames if starts_with_blank(line) => Some(Py::Frames),
        Py::Frames => is_python_exception_line(line).then_some(Py::Raised),
        Py::Raised if is_blank(line) => Some(Py::RaisedBlank),
        Py::Raised | Py::RaisedBlank => {
            (line == PY_DURING || line == PY_CAUSE).then_some(Py::Chained)
        }
        Py::Chained if is_blank(line) => Some(Py::Chained),
        Py::Chained => is_python_traceback_start(line).then_some(Py::Frames),
    }
}

/// The last line of a traceback: `ValueError: bad`, `KeyboardInterrupt`,
/// `requests.exceptions.ConnectionError: ...` (a dotted identifier, then the end or `:`).
fn is_python_exception_line(line: &[u8]) -> bool {
    if !line
        .first()
        .is_some_and(|b| b.is_ascii_alphabetic() || *b == b'_')
    {
        return false;
    }
    let name_len = line
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_'))
        .count();
    let rest = &line[name_len..];
    rest.is_empty() || rest.starts_with(b":")
}

// ---- Go ----

const GO_RUNTIME: &[u8] = b"runtime: ";

/// The state after `line` if it continues the event, or None if it starts a new one.
fn go_next(state: GoState, line: &[u8]) -> Option<GoState> {
    match state {
        GoState::Line => None,
        GoState::Preamble if line.starts_with(GO_RUNTIME) => Some(GoState::Preamble),
        GoState::Preamble => is_go_crash_start(line).then_some(GoState::Dump),
        GoState::Dump => go_dump_line(line).then_some(GoState::Dump),
    }
}

fn is_go_crash_start(line: &[u8]) -> bool {
    line.starts_with(b"panic: ") || line.starts_with(b"fatal error: ")
}

/// A line that belongs to a Go crash dump (after its `panic:` line).
fn go_dump_line(line: &[u8]) -> bool {
    if is_blank(line) || starts_with_blank(line) {
        return true; // blank separators between goroutines, `\t/path/file.go:12 +0x1d`
    }
    const PREFIXES: &[&[u8]] = &[
        b"goroutine ",
        b"created by ",
        b"[signal ",
        b"[recovered]",
        b"[originating from goroutine",
        b"runtime stack:",
        GO_RUNTIME,
        b"...additional frames elided...",
        b"exit status ",
        b"panic(",
    ];
    PREFIXES.iter().any(|p| line.starts_with(p)) || is_go_frame(line)
}

/// `main.main()`, `net/http.(*conn).serve(0xc000...)`: a function with its arguments,
/// no space before the first `(` (which tells it from a log line that ends in `)`).
fn is_go_frame(line: &[u8]) -> bool {
    let Some(paren) = line.iter().position(|b| *b == b'(') else {
        return false;
    };
    let name = &line[..paren];
    !name.is_empty()
        && !name.contains(&b' ')
        && !name.first().is_some_and(|b| b.is_ascii_digit())
        && line.ends_with(b")")
}
