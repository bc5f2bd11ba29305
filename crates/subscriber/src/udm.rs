//! A log line → one UDM-shaped JSON event.
//!
//! Total by design: every input (invalid UTF-8, not JSON, a JSON array, an entry without a
//! line) yields an event, so one bad producer can neither stop the subscriber nor make it
//! drop lines silently. Bad lines carry `additional.parse_error` and the lossy text.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::timestamp;

/// Longest `metadata.description` for a line that did not parse; the full text is in
/// `additional.raw`, so a megabyte of garbage is not written out twice.
pub const PARSE_ERROR_DESCRIPTION_MAX: usize = 4096;

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
    /// Fields of a foreign stream entry, shown when it has no `line`.
    pub extra: &'a [(String, Vec<u8>)],
}

/// The event plus what the caller needs for metrics.
#[derive(Debug, Clone)]
pub struct UdmEvent {
    pub event: Value,
    /// Short reason when the line was not a UTF-8 JSON object.
    pub parse_error: Option<&'static str>,
    /// The line's own timestamp, when it had a recognisable one (latency is measured from it).
    pub line_time: Option<DateTime<Utc>>,
    /// `metadata.event_timestamp`: the line's time, else the collected time, else ingestion.
    pub event_time: DateTime<Utc>,
}

/// Builds the event of `line` (`None`: a stream entry without a `line` field).
pub fn to_udm(
    line: Option<&[u8]>,
    ctx: &LineContext<'_>,
    ingested: DateTime<Utc>,
    product_name: &str,
) -> UdmEvent {
    match decode(line) {
        Ok(fields) => from_object(fields, ctx, ingested, product_name),
        Err(reason) => from_unparsed(line, reason, ctx, ingested, product_name),
    }
}

fn decode(line: Option<&[u8]>) -> Result<Map<String, Value>, &'static str> {
    let bytes = line.ok_or("no line field")?;
    let text = std::str::from_utf8(bytes).map_err(|_| "invalid UTF-8")?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err("not a JSON object"),
        Err(_) => Err("invalid JSON"),
    }
}

fn from_object(
    mut fields: Map<String, Value>,
    ctx: &LineContext<'_>,
    ingested: DateTime<Utc>,
    product_name: &str,
) -> UdmEvent {
    let line_time = match fields.remove("timestamp") {
        Some(raw) => match timestamp::parse_timestamp(&raw) {
            Some(t) => Some(t),
            None => {
                // Keep what we could not read rather than drop it.
                fields.insert("timestamp".to_string(), raw);
                None
            }
        },
        None => None,
    };
    let level = take_first(&mut fields, &["level", "type", "severity"]).map(text_of);
    let description = take_first(&mut fields, &["message", "msg"]).map(text_of);
    let hostname = take_first(&mut fields, &["host", "hostname"])
        .map(text_of)
        .or_else(|| ctx.source.map(str::to_string));

    let event_time = line_time.or(ctx.collected).unwrap_or(ingested);
    let mut security_result = Map::new();
    security_result.insert(
        "severity".into(),
        Value::from(level.as_deref().map_or("UNKNOWN_SEVERITY", severity)),
    );
    if let Some(level) = level {
        security_result.insert("severity_details".into(), Value::from(level));
    }
    let mut additional = fields;
    add_context(&mut additional, ctx);
    UdmEvent {
        event: assemble(
            metadata(event_time, ctx, ingested, product_name, description),
            hostname,
            Some(security_result),
            additional,
        ),
        parse_error: None,
        line_time,
        event_time,
    }
}

fn from_unparsed(
    line: Option<&[u8]>,
    reason: &'static str,
    ctx: &LineContext<'_>,
    ingested: DateTime<Utc>,
    product_name: &str,
) -> UdmEvent {
    let event_time = ctx.collected.unwrap_or(ingested);
    let mut additional = Map::new();
    additional.insert("parse_error".into(), Value::from(reason));
    let description = match line {
        Some(bytes) => {
            let text = String::from_utf8_lossy(bytes).into_owned();
            let description = cut(&text, PARSE_ERROR_DESCRIPTION_MAX).to_string();
            additional.insert("raw".into(), Value::from(text));
            description
        }
        None => {
            let fields: Map<String, Value> = ctx
                .extra
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(String::from_utf8_lossy(v))))
                .collect();
            additional.insert("entry_fields".into(), Value::Object(fields));
            "stream entry without a line field".to_string()
        }
    };
    add_context(&mut additional, ctx);
    UdmEvent {
        event: assemble(
            metadata(event_time, ctx, ingested, product_name, Some(description)),
            ctx.source.map(str::to_string),
            None,
            additional,
        ),
        parse_error: Some(reason),
        line_time: None,
        event_time,
    }
}

fn metadata(
    event_time: DateTime<Utc>,
    ctx: &LineContext<'_>,
    ingested: DateTime<Utc>,
    product_name: &str,
    description: Option<String>,
) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(
        "event_timestamp".into(),
        timestamp::format(&event_time).into(),
    );
    if let Some(collected) = ctx.collected {
        m.insert(
            "collected_timestamp".into(),
            timestamp::format(&collected).into(),
        );
    }
    m.insert(
        "ingested_timestamp".into(),
        timestamp::format(&ingested).into(),
    );
    m.insert("event_type".into(), "GENERIC_EVENT".into());
    m.insert("product_name".into(), product_name.into());
    m.insert("vendor_name".into(), "redtail".into());
    if let Some(description) = description {
        m.insert("description".into(), description.into());
    }
    m
}

fn assemble(
    metadata: Map<String, Value>,
    hostname: Option<String>,
    security_result: Option<Map<String, Value>>,
    additional: Map<String, Value>,
) -> Value {
    let mut event = Map::new();
    event.insert("metadata".into(), Value::Object(metadata));
    if let Some(hostname) = hostname {
        let mut principal = Map::new();
        principal.insert("hostname".into(), hostname.into());
        event.insert("principal".into(), Value::Object(principal));
    }
    let security_result = security_result.unwrap_or_else(|| {
        let mut m = Map::new();
        m.insert("severity".into(), "UNKNOWN_SEVERITY".into());
        m
    });
    event.insert("security_result".into(), Value::Object(security_result));
    event.insert("additional".into(), Value::Object(additional));
    Value::Object(event)
}

/// Adds where the line came from. A line field of the same name is kept as `line_<name>`
/// instead of being overwritten.
fn add_context(additional: &mut Map<String, Value>, ctx: &LineContext<'_>) {
    let mut put = |key: &str, value: Value| {
        if let Some(previous) = additional.insert(key.to_string(), value) {
            additional.insert(format!("line_{key}"), previous);
        }
    };
    if let Some(v) = ctx.source {
        put("source", v.into());
    }
    if let Some(v) = ctx.path {
        put("path", v.into());
    }
    if let Some(v) = ctx.offset {
        put("offset", v.into());
    }
    if let Some(v) = ctx.file_id {
        put("file_id", v.into());
    }
    if let Some(v) = ctx.stream_id {
        put("stream_id", v.into());
    }
    if ctx.truncated {
        put("truncated", true.into());
    }
}

/// Removes and returns the first of `keys` present (null counts as absent).
fn take_first(fields: &mut Map<String, Value>, keys: &[&str]) -> Option<Value> {
    keys.iter()
        .find(|k| fields.get(**k).is_some_and(|v| !v.is_null()))
        .and_then(|k| fields.remove(*k))
}

/// A string as is; anything else as its JSON text (a numeric level, a structured message).
fn text_of(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

/// The interface's level → UDM severity table (case-insensitive).
pub fn severity(level: &str) -> &'static str {
    match level.trim().to_ascii_uppercase().as_str() {
        "DEBUG" | "INFO" => "INFORMATIONAL",
        "WARNING" | "WARN" => "MEDIUM",
        "ERROR" => "ERROR",
        "CRITICAL" | "FATAL" => "CRITICAL",
        _ => "UNKNOWN_SEVERITY",
    }
}

/// At most `max` bytes of `s`, cut on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
#[path = "udm_tests.rs"]
mod tests;
