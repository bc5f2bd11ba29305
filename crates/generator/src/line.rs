//! Serialization of one generated line, exactly as INTERFACE.md specifies it.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

use crate::messages::Level;

/// One log line. serde serializes fields in declaration order, which *is* the contract:
/// `timestamp, level, message, seq, service, host`.
#[derive(Debug, Serialize)]
struct LogLine<'a> {
    timestamp: &'a str,
    level: &'static str,
    message: &'a str,
    seq: u64,
    service: &'a str,
    host: &'a str,
}

/// The fields of a line that the caller chooses.
#[derive(Debug, Clone, Copy)]
pub struct LineFields<'a> {
    /// When the line is written.
    pub at: DateTime<Utc>,
    /// Severity.
    pub level: Level,
    /// Free text; escaped by serde_json.
    pub message: &'a str,
    /// Position in the unbroken sequence.
    pub seq: u64,
    /// `service` field.
    pub service: &'a str,
    /// `host` field.
    pub host: &'a str,
}

/// Replaces `buf` with the line's JSON followed by `\n`, ready for a single `write`.
/// The buffer is reused between lines to avoid an allocation per line.
pub fn encode(buf: &mut Vec<u8>, fields: &LineFields<'_>) -> Result<(), serde_json::Error> {
    buf.clear();
    // RFC 3339, UTC, microseconds, `Z`: 2026-11-23T23:10:01.123456Z.
    let timestamp = fields.at.to_rfc3339_opts(SecondsFormat::Micros, true);
    serde_json::to_writer(
        &mut *buf,
        &LogLine {
            timestamp: &timestamp,
            level: fields.level.as_str(),
            message: fields.message,
            seq: fields.seq,
            service: fields.service,
            host: fields.host,
        },
    )?;
    buf.push(b'\n');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn encoded(message: &str, at: DateTime<Utc>) -> String {
        let mut buf = b"stale content".to_vec();
        encode(
            &mut buf,
            &LineFields {
                at,
                level: Level::Warning,
                message,
                seq: 41,
                service: "app",
                host: "node-1",
            },
        )
        .expect("encode");
        String::from_utf8(buf).expect("utf8")
    }

    #[test]
    fn exact_format_and_key_order() {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 23, 23, 10, 1)
            .single()
            .expect("valid date")
            + chrono::Duration::microseconds(123_456);
        assert_eq!(
            encoded("GET / 200 3ms", at),
            "{\"timestamp\":\"2026-11-23T23:10:01.123456Z\",\"level\":\"WARNING\",\
             \"message\":\"GET / 200 3ms\",\"seq\":41,\"service\":\"app\",\"host\":\"node-1\"}\n"
        );
        // Whole seconds still carry six fractional digits.
        let whole = Utc.timestamp_opt(0, 0).single().expect("epoch");
        assert!(encoded("m", whole).contains("\"1970-01-01T00:00:00.000000Z\""));
    }

    #[test]
    fn messages_are_escaped_and_round_trip() {
        let message = "user \"o'brien\"\tpath C:\\tmp\nline two — zoë";
        let line = encoded(message, Utc::now());
        assert_eq!(
            line.matches('\n').count(),
            1,
            "only the terminating newline"
        );
        assert!(line.ends_with('\n'));
        let value: serde_json::Value = serde_json::from_str(line.trim_end()).expect("valid json");
        assert_eq!(value["message"], message);
        assert_eq!(value["seq"], 41);
    }
}
