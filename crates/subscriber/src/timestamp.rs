//! Reading the timestamps log lines actually carry.
//!
//! Our generator writes RFC 3339 UTC; the classic Python generator wrote local
//! `datetime.isoformat()` without a zone, which we take as UTC (the interface says so: the
//! pod's local zone is unknowable here, and UTC is what containers run in by default).

use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, TimeZone, Utc};
use serde_json::Value;

/// A timestamp field's value as UTC, or `None` when it is not a time we recognise.
///
/// Times past year 9999 (a huge epoch number, or `9999-12-31T23:59:59-01:00`) are refused:
/// RFC 3339 has four-digit years, so `metadata.event_timestamp` would become `+10000-…`, which
/// downstream parsers reject. The line keeps its raw value in `additional.timestamp` instead.
pub fn parse_timestamp(value: &Value) -> Option<DateTime<Utc>> {
    let parsed = match value {
        Value::String(s) => parse_str(s),
        Value::Number(n) => n.as_f64().and_then(from_epoch_number),
        _ => None,
    };
    parsed.filter(|dt| dt.year() <= 9999)
}

/// RFC 3339 (`Z` or an offset, with or without a colon), or a naive
/// `YYYY-MM-DDTHH:MM:SS[.fraction]`; a space or lowercase `t` may separate date and time.
pub fn parse_str(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    // Normalise the date/time separator so one set of formats covers all three spellings.
    let normalised;
    let s = match s.as_bytes().get(10) {
        Some(b' ') | Some(b't') if s.is_char_boundary(10) && s.is_char_boundary(11) => {
            normalised = format!("{}T{}", &s[..10], &s[11..]);
            normalised.as_str()
        }
        _ => s,
    };
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    if let Ok(dt) = DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(dt.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

/// Unix time as a number: seconds, milliseconds or microseconds, told apart by magnitude
/// (seconds stay below 1e11 until the year 5138; milliseconds below 1e14 until 5138 too).
fn from_epoch_number(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let micros = if n < 1e11 {
        n * 1e6
    } else if n < 1e14 {
        n * 1e3
    } else {
        n
    };
    if micros > i64::MAX as f64 {
        return None;
    }
    Utc.timestamp_micros(micros as i64).single()
}

/// Microseconds since the epoch (the watcher's `ct`) as UTC.
pub fn from_micros(us: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_micros(us).single()
}

/// Milliseconds since the epoch (a stream id's time part) as UTC.
pub fn from_millis(ms: u64) -> Option<DateTime<Utc>> {
    Utc.timestamp_millis_opt(i64::try_from(ms).ok()?).single()
}

/// RFC 3339, UTC, microseconds: `2026-11-23T23:10:01.123456Z`.
pub fn format(dt: &DateTime<Utc>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fmt(v: Value) -> Option<String> {
        parse_timestamp(&v).map(|dt| format(&dt))
    }

    #[test]
    fn rfc3339_forms() {
        assert_eq!(
            fmt(json!("2026-11-23T23:10:01.123456Z")).as_deref(),
            Some("2026-11-23T23:10:01.123456Z")
        );
        assert_eq!(
            fmt(json!("2026-11-23T23:10:01+02:00")).as_deref(),
            Some("2026-11-23T21:10:01.000000Z")
        );
        assert_eq!(
            fmt(json!("2026-11-23 23:10:01.5-0130")).as_deref(),
            Some("2026-11-24T00:40:01.500000Z")
        );
        assert_eq!(
            fmt(json!("2026-11-23t23:10:01.123456789z")).as_deref(),
            Some("2026-11-23T23:10:01.123456Z"),
            "nanoseconds are cut to microseconds"
        );
    }

    #[test]
    fn naive_forms_are_utc() {
        assert_eq!(
            fmt(json!("2024-03-01T12:00:00.654321")).as_deref(),
            Some("2024-03-01T12:00:00.654321Z")
        );
        assert_eq!(
            fmt(json!("2024-03-01T12:00:00")).as_deref(),
            Some("2024-03-01T12:00:00.000000Z")
        );
        assert_eq!(
            fmt(json!("2024-03-01 12:00:00.1")).as_deref(),
            Some("2024-03-01T12:00:00.100000Z")
        );
    }

    #[test]
    fn epoch_numbers() {
        let want = Some("2023-11-14T22:13:20.000000Z");
        assert_eq!(fmt(json!(1_700_000_000)).as_deref(), want);
        assert_eq!(fmt(json!(1_700_000_000_000u64)).as_deref(), want);
        assert_eq!(fmt(json!(1_700_000_000_000_000u64)).as_deref(), want);
        assert_eq!(
            fmt(json!(1_700_000_000.25)).as_deref(),
            Some("2023-11-14T22:13:20.250000Z")
        );
        assert_eq!(fmt(json!(-5)), None);
    }

    #[test]
    fn beyond_year_9999_is_refused() {
        // Found by tests/fuzz_props.rs: formatted, these would not be RFC 3339.
        assert_eq!(fmt(json!(253_402_300_799_999_984u64)), None);
        assert_eq!(fmt(json!("9999-12-31T23:59:59-01:00")), None);
        assert_eq!(
            fmt(json!("9999-12-31T23:59:59Z")).as_deref(),
            Some("9999-12-31T23:59:59.000000Z")
        );
    }

    #[test]
    fn garbage_is_none() {
        for v in [
            json!("yesterday"),
            json!(""),
            json!("2024-13-01T00:00:00"),
            json!("2024-01-01"),
            json!("ééééééééééééé"),
            json!(true),
            json!(null),
            json!({"a": 1}),
        ] {
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
