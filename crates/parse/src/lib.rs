//! redtail-parse: log lines → UDM events. No I/O, no clock, no logging: everything a line
//! becomes is decided here, so it can be tested and fuzzed alone.
//!
//! [`render`] is the whole path: decode (invalid UTF-8 is decoded lossily and flagged), pick
//! a parser ([`Parser`], per line in `auto`), classify ([`classify`]), build the typed event
//! ([`udm`]) and serialise it within the size cap ([`cap`]). Nothing on the way builds a
//! `serde_json::Value`.
#![forbid(unsafe_code)]

mod access;
pub mod cap;
pub mod classify;
mod fields;
pub mod format;
mod json;
pub mod level;
mod logfmt;
mod parser;
mod pattern;
pub mod record;
pub mod samples;
mod syslog;
mod text;
pub mod time;
pub mod udm;

pub use classify::{Action, EventType};
pub use format::{Format, ParseMode};
pub use level::Severity;
pub use parser::{Parser, Stamp};
pub use record::Record;
pub use udm::{Context, Options};

use std::borrow::Cow;

use chrono::{DateTime, Utc};

/// What the caller needs for metrics after [`render`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rendered {
    pub format: Format,
    pub event_type: EventType,
    /// A short reason when the line was not what it was declared or looked like.
    pub parse_error: Option<&'static str>,
    /// The line's own time, when it had one (latency is measured from it).
    pub line_time: Option<DateTime<Utc>>,
    /// `metadata.event_timestamp`.
    pub event_time: DateTime<Utc>,
    /// The event was cut at the cap.
    pub cut: bool,
}

/// Appends the UDM event of `line` (`None`: a stream entry without a line) plus `\n` to
/// `buf`. Total: every input gives exactly one event of at most `opts.max_event_bytes`.
pub fn render(
    parser: &Parser,
    line: Option<&[u8]>,
    ctx: Context<'_>,
    opts: &Options,
    ingested: DateTime<Utc>,
    buf: &mut Vec<u8>,
) -> Rendered {
    let (text, utf8_error) = match line {
        Some(bytes) => decode(bytes),
        None => (Cow::Borrowed(""), false),
    };
    let reference = ctx.collected.unwrap_or(ingested);
    let mut record = match line {
        Some(_) => parser.parse(&text, reference),
        None => {
            let mut r = Record::failed(
                Format::Text,
                "no line field",
                "stream entry without a line field",
            );
            r.format = parser.declared_format();
            r
        }
    };
    if utf8_error {
        record.error = Some("invalid UTF-8");
    }
    let class = classify::classify(&mut record);
    let mut event = udm::build(&record, &class, ctx, opts, ingested);
    let event_time = event.metadata.event_timestamp.0;
    let cut = cap::write_capped(buf, &mut event, opts.max_event_bytes);
    buf.push(b'\n');
    Rendered {
        format: record.format,
        event_type: class.event_type,
        parse_error: record.error,
        line_time: record.time,
        event_time,
        cut,
    }
}

/// [`Parser::stamp`] of a line's bytes: what raw output needs, with invalid UTF-8 (decoded
/// lossily) reported as the parse error, as [`render`] reports it.
pub fn stamp(parser: &Parser, line: &[u8], reference: DateTime<Utc>) -> Stamp {
    let (text, utf8_error) = decode(line);
    let mut stamp = parser.stamp(&text, reference);
    if utf8_error {
        stamp.error = Some("invalid UTF-8");
    }
    stamp
}

/// The line as text, and whether it was not valid UTF-8 (then decoded lossily).
fn decode(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(t) => (Cow::Borrowed(t), false),
        Err(_) => (String::from_utf8_lossy(bytes), true),
    }
}
