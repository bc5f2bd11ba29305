//! JSON object lines: the generator's own, bunyan, pino, logrus, zap, ECS, Docker's json-file.
//!
//! The object is walked once with a serde visitor: keys are borrowed, values kept as raw JSON
//! text (`RawValue`), so nothing becomes a `serde_json::Value` tree. Only the aliased fields
//! (time, level, message, …) are decoded; the rest is copied verbatim into `additional`.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::fields::{self, Fields};
use crate::format::Format;
use crate::record::{FieldValue, Record};

/// Parses `text` as one JSON object; `Err` with a short reason otherwise.
pub fn parse(text: &str) -> Result<Record<'_>, &'static str> {
    Ok(walk(text, ObjectVisitor)?.finish())
}

/// `parse(text)`'s time and verdict without building the record: the object is validated
/// as fully, but only the time aliases are looked at (a record costs a copy of every
/// slot, the level and message decoded; raw output needs none of it).
pub fn time_of(text: &str) -> Result<Option<DateTime<Utc>>, &'static str> {
    Ok(walk(text, TimeVisitor)?.and_then(|(_, raw)| fields::time_of(&FieldValue::Json(raw))))
}

/// One object, nothing after it.
fn walk<'de, V: Visitor<'de>>(text: &'de str, visitor: V) -> Result<V::Value, &'static str> {
    let mut de = serde_json::Deserializer::from_str(text);
    let value = match de.deserialize_map(visitor) {
        Ok(value) => value,
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            return Err("not a JSON object")
        }
        Err(_) => return Err("invalid JSON"),
    };
    de.end().map_err(|_| "invalid JSON")?;
    Ok(value)
}

/// Whether a line looks like JSON (so auto-detection commits to it, and a failure is an error).
pub fn looks_like(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Fields<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut fields = Fields::new(Record::new(Format::Json));
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            fields.add(key, FieldValue::Json(value));
        }
        Ok(fields)
    }
}

/// The best-ranked time alias of an object, by [`fields::time_rank`]; the first one wins
/// a tie, as in [`Fields::add`].
struct TimeVisitor;

impl<'de> Visitor<'de> for TimeVisitor {
    type Value = Option<(u8, &'de RawValue)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut best: Option<(u8, &'de RawValue)> = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let value: &'de RawValue = map.next_value()?;
            if let Some(rank) = fields::time_rank(&key, &FieldValue::Json(value)) {
                if best.is_none_or(|(held, _)| rank < held) {
                    best = Some((rank, value));
                }
            }
        }
        Ok(best)
    }
}

/// A key borrowed from the line, or owned when it held an escape.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::Severity;
    use crate::time::format;

    struct Case {
        /// Where the sample comes from.
        source: &'static str,
        line: &'static str,
        time: Option<&'static str>,
        level: Option<(&'static str, Severity)>,
        message: Option<&'static str>,
        host: Option<&'static str>,
        /// Keys left for `additional`, in order.
        rest: &'static [&'static str],
    }

    #[test]
    fn real_samples() {
        let cases = [
            Case {
                source: "INTERFACE.md, redtail generate",
                line: r#"{"timestamp":"2026-11-23T23:10:01.123456Z","level":"INFO","message":"hi","seq":0,"service":"app","host":"h1"}"#,
                time: Some("2026-11-23T23:10:01.123456Z"),
                level: Some(("INFO", Severity::Informational)),
                message: Some("hi"),
                host: Some("h1"),
                rest: &["seq", "service"],
            },
            Case {
                source: "pino README (getpino.io), default output",
                line: r#"{"level":30,"time":1531171074631,"msg":"hello world","pid":657,"hostname":"Davids-MBP-3.fritz.box"}"#,
                time: Some("2018-07-09T21:17:54.631000Z"),
                level: Some(("30", Severity::Informational)),
                message: Some("hello world"),
                host: Some("Davids-MBP-3.fritz.box"),
                rest: &["pid"],
            },
            Case {
                source: "node-bunyan README, log record",
                line: r#"{"name":"myapp","hostname":"banana.local","pid":40161,"level":30,"msg":"hi","time":"2013-01-04T18:46:23.851Z","v":0}"#,
                time: Some("2013-01-04T18:46:23.851000Z"),
                level: Some(("30", Severity::Informational)),
                message: Some("hi"),
                host: Some("banana.local"),
                rest: &["name", "pid", "v"],
            },
            Case {
                source: "logrus README, JSONFormatter",
                line: r#"{"animal":"walrus","level":"info","msg":"A group of walrus emerges from the ocean","size":10,"time":"2014-03-10 19:57:38.562264131 -0400 EDT"}"#,
                time: None,
                level: Some(("info", Severity::Informational)),
                message: Some("A group of walrus emerges from the ocean"),
                host: None,
                rest: &["animal", "size", "time"],
            },
            Case {
                source: "zap's production JSON encoder (field names as zap writes them)",
                line: r#"{"level":"info","ts":1257894000.0,"caller":"main.go:12","msg":"failed to fetch URL","url":"http://example.com","attempt":3,"backoff":1}"#,
                time: Some("2009-11-10T23:00:00.000000Z"),
                level: Some(("info", Severity::Informational)),
                message: Some("failed to fetch URL"),
                host: None,
                rest: &["caller", "attempt", "backoff"],
            },
            Case {
                source: "Elastic ECS logging (ecs-logging-java), dotted keys",
                line: r#"{"@timestamp":"2019-08-06T12:09:12.375Z","log.level":"WARN","message":"Tomcat started","ecs.version":"1.2.0","process.thread.name":"main"}"#,
                time: Some("2019-08-06T12:09:12.375000Z"),
                level: Some(("WARN", Severity::Medium)),
                message: Some("Tomcat started"),
                host: None,
                rest: &["ecs.version", "process.thread.name"],
            },
            Case {
                source: "Docker json-file logging driver documentation",
                line: r#"{"log":"Log line is here\n","stream":"stdout","time":"2019-01-01T11:11:11.111111111Z"}"#,
                time: Some("2019-01-01T11:11:11.111111Z"),
                level: None,
                message: Some("Log line is here\n"),
                host: None,
                rest: &["stream"],
            },
            Case {
                source: "classic Python generator: local isoformat() and `type`",
                line: r#"{"timestamp":"2024-03-01T12:00:00.654321","type":"WARNING","message":"disk"}"#,
                time: Some("2024-03-01T12:00:00.654321Z"),
                level: Some(("WARNING", Severity::Medium)),
                message: Some("disk"),
                host: None,
                rest: &[],
            },
        ];
        for case in cases {
            let r = parse(case.line).unwrap_or_else(|e| panic!("{}: {e}", case.source));
            assert_eq!(r.format, Format::Json);
            assert_eq!(
                r.time.map(|t| format(&t)).as_deref(),
                case.time,
                "{}",
                case.source
            );
            assert_eq!(
                r.level.as_ref().map(|l| (l.written.as_ref(), l.severity)),
                case.level,
                "{}",
                case.source
            );
            assert_eq!(r.message.as_deref(), case.message, "{}", case.source);
            assert_eq!(r.host.as_deref(), case.host, "{}", case.source);
            let rest: Vec<_> = r.fields.iter().map(|(k, _)| k.as_ref()).collect();
            assert_eq!(rest, case.rest, "{}", case.source);
        }
    }

    #[test]
    fn escapes_nested_values_and_errors() {
        let r = parse(r#"{"msg":"a \"q\" \u00e9","k\u0065y":{"a":[1,2]},"host":{"name":"x"}}"#)
            .expect("object");
        assert_eq!(r.message.as_deref(), Some("a \"q\" é"));
        assert_eq!(r.fields[0].0, "key");
        assert_eq!(r.fields[0].1.as_text(), r#"{"a":[1,2]}"#);
        assert_eq!(r.fields[1].0, "host", "an object host stays in additional");
        assert_eq!(parse("[1,2]").err(), Some("not a JSON object"));
        assert_eq!(parse(r#"{"a":1"#).err(), Some("invalid JSON"));
        assert_eq!(parse(r#"{"a":1} x"#).err(), Some("invalid JSON"));
        assert_eq!(parse("").err(), Some("invalid JSON"));
    }
}
