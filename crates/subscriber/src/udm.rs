//! What the subscriber knows about a line besides its bytes, handed to `redtail-parse`,
//! which owns parsing and the UDM event itself (see that crate).

use chrono::{DateTime, Utc};

pub use redtail_parse::{render, stamp, Context, Options, Parser, Rendered};

/// What is known about a line besides its bytes (from the stream entry, if any).
#[derive(Debug, Default, Clone, Copy)]
pub struct LineContext<'a> {
    pub source: Option<&'a str>,
    pub path: Option<&'a str>,
    pub offset: Option<u64>,
    pub file_id: Option<&'a str>,
    pub stream_id: Option<&'a str>,
    pub truncated: bool,
    /// When the watcher read the line (`ct`, else the stream id's time; unknown in pub/sub).
    pub collected: Option<DateTime<Utc>>,
    /// Fields of the stream entry the subscriber does not read itself (`lines` of a
    /// multi-line event; everything of a foreign entry).
    pub extra: &'a [(String, Vec<u8>)],
}

impl<'a> LineContext<'a> {
    /// The parse crate's view. `has_line`: a foreign entry (no `line`) shows its fields.
    pub fn to_parse(&self, has_line: bool) -> Context<'a> {
        let lines = self
            .extra
            .iter()
            .find(|(k, _)| k == "lines")
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok());
        Context {
            source: self.source,
            path: self.path,
            offset: self.offset,
            file_id: self.file_id,
            stream_id: self.stream_id,
            truncated: self.truncated,
            lines,
            collected: self.collected,
            extra: if has_line { &[] } else { self.extra },
        }
    }
}

/// The line's own time as the configured parser reads it (`None` when it has none), without
/// building an event: for sinks that need `logEntryTime` of a raw line.
pub fn line_time(parser: &Parser, line: &[u8], collected: DateTime<Utc>) -> Option<DateTime<Utc>> {
    stamp(parser, line, collected).time
}
