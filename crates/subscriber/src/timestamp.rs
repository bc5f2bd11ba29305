//! Timestamps for the subscriber's own needs (stream ids, the watcher's `ct`, a JSON field's
//! value). The formats lines carry are read by `redtail_parse::time`; this keeps the
//! `serde_json::Value` entry point for callers that hold one (the SecOps sink).

use chrono::{DateTime, TimeZone, Utc};
use serde_json::Value;

pub use redtail_parse::time::{format, parse_str};

/// A timestamp field's value as UTC, or `None` when it is not a time we recognise.
pub fn parse_timestamp(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::String(s) => redtail_parse::time::parse_str(s),
        Value::Number(n) => n.as_f64().and_then(redtail_parse::time::from_epoch),
        _ => None,
    }
}

/// Microseconds since the epoch (the watcher's `ct`) as UTC.
pub fn from_micros(us: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_micros(us).single()
}

/// Milliseconds since the epoch (a stream id's time part) as UTC.
pub fn from_millis(ms: u64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(i64::try_from(ms).ok()?).single()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fmt(v: Value) -> Option<String> {
        parse_timestamp(&v).map(|dt| format(&dt))
    }

    #[test]
    fn values() {
        assert_eq!(
            fmt(json!("2026-11-23T23:10:01+02:00")).as_deref(),
            Some("2026-11-23T21:10:01.000000Z")
        );
        let want = Some("2023-11-14T22:13:20.000000Z");
        assert_eq!(fmt(json!(1_700_000_000)).as_deref(), want);
        assert_eq!(fmt(json!(1_700_000_000_000u64)).as_deref(), want);
        assert_eq!(fmt(json!(1e21)), None, "past year 9999 in any unit");
        for v in [json!(true), json!(null), json!({"a": 1}), json!("x")] {
            assert_eq!(parse_timestamp(&v), None, "{v}");
        }
    }

    #[test]
    fn micros_and_millis() {
        assert_eq!(
            from_micros(1_700_000_000_123_456)
                .map(|d| format(&d))
                .as_deref(),
            Some("2023-11-14T22:13:20.123456Z")
        );
        assert_eq!(
            from_millis(1_700_000_000_123)
                .map(|d| format(&d))
                .as_deref(),
            Some("2023-11-14T22:13:20.123000Z")
        );
        assert_eq!(from_millis(u64::MAX), None);
    }
}
