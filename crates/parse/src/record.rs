//! What a parser found in a line: the fields UDM gives a meaning to, and the rest.
//!
//! Everything borrows from the line where it can (`Cow::Borrowed`), so a typical line is
//! parsed without copying its text; only unescaped strings are owned.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use crate::format::Format;
use crate::level::Level;

/// A field value kept for `additional`.
#[derive(Debug, Clone)]
pub enum FieldValue<'a> {
    /// Text (written as a JSON string).
    Str(Cow<'a, str>),
    /// A JSON value copied verbatim from a JSON line (number, object, array, `true`…).
    Json(&'a RawValue),
    /// A number found by a parser (an access log's byte count, a syslog facility).
    Int(i64),
}

impl PartialEq for FieldValue<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (FieldValue::Str(a), FieldValue::Str(b)) => a == b,
            (FieldValue::Json(a), FieldValue::Json(b)) => a.get() == b.get(),
            (FieldValue::Int(a), FieldValue::Int(b)) => a == b,
            _ => false,
        }
    }
}

impl FieldValue<'_> {
    /// The value as text: a string as is, JSON as its source text.
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            FieldValue::Str(s) => Cow::Borrowed(s.as_ref()),
            FieldValue::Json(raw) => Cow::Borrowed(raw.get()),
            FieldValue::Int(n) => Cow::Owned(n.to_string()),
        }
    }
}

/// The HTTP request of an access log line or of fields that describe one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Http<'a> {
    pub method: Option<Cow<'a, str>>,
    pub url: Option<Cow<'a, str>>,
    pub status: Option<u16>,
    pub user_agent: Option<Cow<'a, str>>,
    pub referrer: Option<Cow<'a, str>>,
    /// The client address (`principal.ip`).
    pub client_ip: Option<Cow<'a, str>>,
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq)]
pub struct Record<'a> {
    /// The parser that produced this record (the `format` metric label).
    pub format: Format,
    /// `Some` when the line is not what it was declared or looked like; the record then
    /// holds what could be salvaged (at least the text as the message).
    pub error: Option<&'static str>,
    pub time: Option<DateTime<Utc>>,
    pub level: Option<Level<'a>>,
    pub message: Option<Cow<'a, str>>,
    pub host: Option<Cow<'a, str>>,
    pub user: Option<Cow<'a, str>>,
    /// `service`/`app`/the syslog APP-NAME: the default product name.
    pub service: Option<Cow<'a, str>>,
    pub http: Http<'a>,
    /// Everything else, in line order, keys unique.
    pub fields: Vec<(Cow<'a, str>, FieldValue<'a>)>,
}

impl<'a> Record<'a> {
    pub fn new(format: Format) -> Self {
        Record {
            format,
            error: None,
            time: None,
            level: None,
            message: None,
            host: None,
            user: None,
            service: None,
            http: Http::default(),
            fields: Vec::new(),
        }
    }

    /// A record of a line that failed `format`: its whole text is the message.
    pub fn failed(format: Format, reason: &'static str, text: &'a str) -> Self {
        let mut r = Record::new(format);
        r.error = Some(reason);
        r.message = Some(Cow::Borrowed(text));
        r
    }

    /// Keeps a field for `additional`; a repeated key keeps its first value and the later
    /// ones get a numbered key, so nothing is lost and the output has no duplicate keys.
    pub fn push_field(&mut self, key: Cow<'a, str>, value: FieldValue<'a>) {
        // Lines have a handful of fields; a linear scan beats hashing below ~32 keys, and the
        // quadratic worst case is bounded by the field cap.
        if self.fields.len() >= MAX_FIELDS {
            return self.overflow(key, value);
        }
        if !self.fields.iter().any(|(k, _)| *k == key) {
            self.fields.push((key, value));
            return;
        }
        // A few numbered copies; a key repeated more often than that is hostile or broken,
        // and its later values go to the overflow field (bounded work per line).
        for n in 2..10 {
            let candidate = format!("{key}_{n}");
            if !self.fields.iter().any(|(k, _)| *k == candidate) {
                self.fields.push((Cow::Owned(candidate), value));
                return;
            }
        }
        self.overflow(key, value)
    }

    /// Past `MAX_FIELDS` keys the rest is kept as one text field: a hostile line of 100 000
    /// tiny pairs stays linear to process and to read.
    fn overflow(&mut self, key: Cow<'a, str>, value: FieldValue<'a>) {
        let text = format!("{key}={}", value.as_text());
        if let Some((k, FieldValue::Str(s))) = self.fields.last_mut() {
            if k == OVERFLOW_KEY {
                let s = s.to_mut();
                s.push(' ');
                s.push_str(&text);
                return;
            }
        }
        self.fields.push((
            Cow::Borrowed(OVERFLOW_KEY),
            FieldValue::Str(Cow::Owned(text)),
        ));
    }
}

/// Most separate fields kept in `additional` (see [`Record::push_field`]).
pub const MAX_FIELDS: usize = 256;
/// Where fields beyond [`MAX_FIELDS`] go.
pub const OVERFLOW_KEY: &str = "more_fields";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_are_numbered_and_overflow_is_one_field() {
        let mut r = Record::new(Format::Logfmt);
        for v in ["a", "b", "c"] {
            r.push_field("k".into(), FieldValue::Str(v.into()));
        }
        let keys: Vec<_> = r.fields.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["k", "k_2", "k_3"]);
        for i in 0..1000 {
            r.push_field(format!("f{i}").into(), FieldValue::Int(i));
        }
        assert_eq!(r.fields.len(), MAX_FIELDS + 1);
        let (k, v) = r.fields.last().expect("overflow");
        assert_eq!(k, OVERFLOW_KEY);
        assert!(v.as_text().ends_with("f999=999"));
    }
}
