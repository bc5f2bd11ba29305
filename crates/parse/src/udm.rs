//! The UDM event: typed, borrowed structs serialised straight to JSON.
//!
//! Field names and enum values follow Google SecOps' UDM field list
//! (cloud.google.com/chronicle/docs/reference/udm-field-list): `metadata.*`, `principal`/
//! `target` nouns, `network.http.*`, `extensions.auth.type`, and `security_result` as a
//! repeated field (a list) with `severity`, `severity_details` and a repeated `action`.

use std::fmt;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::ser::{SerializeMap, Serializer};
use serde::Serialize;

use crate::classify::{Classification, EventType};
use crate::level::Severity;
use crate::record::{FieldValue, Record};

/// What is known about a line besides its text.
#[derive(Debug, Default, Clone, Copy)]
pub struct Context<'a> {
    pub source: Option<&'a str>,
    pub path: Option<&'a str>,
    pub offset: Option<u64>,
    pub file_id: Option<&'a str>,
    pub stream_id: Option<&'a str>,
    /// The watcher cut the line at its size limit.
    pub truncated: bool,
    /// A multi-line event's line count.
    pub lines: Option<u64>,
    /// When the watcher read the line.
    pub collected: Option<DateTime<Utc>>,
    /// Fields of a foreign stream entry that has no `line`.
    pub extra: &'a [(String, Vec<u8>)],
}

/// Settings from `REDTAIL_UDM_*`.
#[derive(Debug, Clone)]
pub struct Options {
    pub vendor: Option<String>,
    /// Overrides the line's own service name.
    pub product: Option<String>,
    pub log_type: Option<String>,
    /// Longest serialised event, newline excluded.
    pub max_event_bytes: usize,
}

impl Options {
    pub const DEFAULT_MAX_EVENT_BYTES: usize = 1_000_000;
    /// Below this a cut event could not hold its own metadata (see [`crate::cap`]).
    pub const MIN_MAX_EVENT_BYTES: usize = 16_384;
}

impl Default for Options {
    fn default() -> Self {
        Options {
            vendor: None,
            product: None,
            log_type: None,
            max_event_bytes: Self::DEFAULT_MAX_EVENT_BYTES,
        }
    }
}

/// RFC 3339 UTC with microseconds, written without an intermediate `String`.
#[derive(Debug, Clone, Copy)]
pub struct Ts(pub DateTime<Utc>);

impl Ts {
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ` into a fixed buffer: three of these per event made
    /// `write!` with padding a visible share of the per-line cost.
    fn bytes(&self) -> [u8; 27] {
        let t = self.0;
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        let mut put = |at: usize, width: usize, mut v: u32| {
            for i in (0..width).rev() {
                out[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, t.year().clamp(0, 9999) as u32);
        put(5, 2, t.month());
        put(8, 2, t.day());
        put(11, 2, t.hour());
        put(14, 2, t.minute());
        put(17, 2, t.second());
        put(20, 6, t.timestamp_subsec_micros().min(999_999));
        out
    }
}

impl fmt::Display for Ts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bytes();
        // Only ASCII digits and separators were written.
        f.write_str(std::str::from_utf8(&b).unwrap_or("0000-00-00T00:00:00.000000Z"))
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let b = self.bytes();
        s.serialize_str(std::str::from_utf8(&b).unwrap_or("0000-00-00T00:00:00.000000Z"))
    }
}

#[derive(Debug, Serialize)]
pub struct Event<'r> {
    pub metadata: Metadata<'r>,
    #[serde(skip_serializing_if = "Noun::is_empty")]
    pub principal: Noun<'r>,
    #[serde(skip_serializing_if = "Noun::is_empty")]
    pub target: Noun<'r>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extensions: Option<Extensions>,
    pub security_result: [SecurityResult<'r>; 1],
    pub additional: Additional<'r>,
}

#[derive(Debug, Serialize)]
pub struct Metadata<'r> {
    pub event_timestamp: Ts,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collected_timestamp: Option<Ts>,
    pub ingested_timestamp: Ts,
    pub event_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor_name: Option<&'r str>,
    pub product_name: &'r str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_type: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'r str>,
}

#[derive(Debug, Default, Serialize)]
pub struct Noun<'r> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<&'r str>,
    /// UDM `ip` is repeated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<[&'r str; 1]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<User<'r>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<&'r str>,
}

impl Noun<'_> {
    fn is_empty(&self) -> bool {
        self.hostname.is_none() && self.ip.is_none() && self.user.is_none() && self.url.is_none()
    }
}

#[derive(Debug, Serialize)]
pub struct User<'r> {
    pub userid: &'r str,
}

#[derive(Debug, Serialize)]
pub struct Network<'r> {
    /// UDM `Network.ApplicationProtocol`.
    pub application_protocol: &'static str,
    pub http: HttpFields<'r>,
}

#[derive(Debug, Serialize)]
pub struct HttpFields<'r> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_code: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub referral_url: Option<&'r str>,
}

#[derive(Debug, Serialize)]
pub struct Extensions {
    pub auth: Auth,
}

#[derive(Debug, Serialize)]
pub struct Auth {
    /// UDM `Authentication.AuthType`: `MACHINE` for a log-in to a host (sshd), else
    /// `AUTHTYPE_UNSPECIFIED` (an application's own log-in).
    #[serde(rename = "type")]
    pub auth_type: &'static str,
}

#[derive(Debug, Serialize)]
pub struct SecurityResult<'r> {
    pub severity: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity_details: Option<&'r str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<[&'static str; 1]>,
}

/// `additional`: the line's other fields, then where it came from and any markers.
#[derive(Debug)]
pub struct Additional<'r> {
    pub fields: &'r [(std::borrow::Cow<'r, str>, FieldValue<'r>)],
    pub ctx: Context<'r>,
    pub parse_error: Option<&'static str>,
    /// Set when the event time is not the line's own: `collected_timestamp` or
    /// `ingested_timestamp`.
    pub time_from: Option<&'static str>,
    /// Set by the cap: the serialised size before the cut.
    pub cut_from_bytes: Option<usize>,
    /// The cap dropped the line's fields.
    pub fields_dropped: bool,
}

const CONTEXT_KEYS: [&str; 7] = [
    "source",
    "path",
    "offset",
    "file_id",
    "stream_id",
    "truncated",
    "lines",
];

impl Serialize for Additional<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if !self.fields_dropped {
            for (key, value) in self.fields {
                // A line field named like a context key is kept as `line_<name>`.
                if CONTEXT_KEYS.contains(&key.as_ref())
                    || matches!(
                        key.as_ref(),
                        "parse_error" | "event_time_from" | "event_cut" | "entry_fields"
                    )
                {
                    m.serialize_entry(&format_args!("line_{key}").to_string(), &Value(value))?;
                } else {
                    m.serialize_entry(key.as_ref(), &Value(value))?;
                }
            }
        }
        let c = &self.ctx;
        if let Some(v) = c.source {
            m.serialize_entry("source", v)?;
        }
        if let Some(v) = c.path {
            m.serialize_entry("path", v)?;
        }
        if let Some(v) = c.offset {
            m.serialize_entry("offset", &v)?;
        }
        if let Some(v) = c.file_id {
            m.serialize_entry("file_id", v)?;
        }
        if let Some(v) = c.stream_id {
            m.serialize_entry("stream_id", v)?;
        }
        if c.truncated {
            m.serialize_entry("truncated", &true)?;
        }
        if let Some(v) = c.lines {
            m.serialize_entry("lines", &v)?;
        }
        if !c.extra.is_empty() && !self.fields_dropped {
            m.serialize_entry("entry_fields", &ExtraFields(c.extra))?;
        }
        if let Some(v) = self.parse_error {
            m.serialize_entry("parse_error", v)?;
        }
        if let Some(v) = self.time_from {
            m.serialize_entry("event_time_from", v)?;
        }
        if let Some(v) = self.cut_from_bytes {
            m.serialize_entry("event_cut", &true)?;
            m.serialize_entry("event_original_bytes", &v)?;
        }
        m.end()
    }
}

struct Value<'v, 'r>(&'v FieldValue<'r>);

impl Serialize for Value<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            FieldValue::Str(v) => s.serialize_str(v),
            FieldValue::Json(raw) => raw.serialize(s),
            FieldValue::Int(n) => s.serialize_i64(*n),
        }
    }
}

struct ExtraFields<'a>(&'a [(String, Vec<u8>)]);

impl Serialize for ExtraFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            m.serialize_entry(k, &String::from_utf8_lossy(v))?;
        }
        m.end()
    }
}

/// The event of `record`. `ingested` is now; `product_fallback` the source when the line
/// names no service.
pub fn build<'r>(
    record: &'r Record<'r>,
    class: &'r Classification<'r>,
    ctx: Context<'r>,
    opts: &'r Options,
    ingested: DateTime<Utc>,
) -> Event<'r> {
    let (event_time, time_from) = match (record.time, ctx.collected) {
        (Some(t), _) => (t, None),
        (None, Some(c)) => (c, Some("collected_timestamp")),
        (None, None) => (ingested, Some("ingested_timestamp")),
    };
    let product_name = opts
        .product
        .as_deref()
        .or(record.service.as_deref())
        .or(ctx.source)
        .unwrap_or("redtail");
    let is_http = class.event_type == EventType::NetworkHttp;
    let is_auth = matches!(
        class.event_type,
        EventType::UserLogin | EventType::UserLogout
    );
    let client_ip = record
        .http
        .client_ip
        .as_deref()
        .or(class.login_ip.as_deref());
    let principal = Noun {
        hostname: record.host.as_deref().or(ctx.source),
        ip: client_ip.map(|ip| [ip]),
        user: None,
        url: None,
    };
    let user = class.user.as_deref().or(if is_http {
        record.user.as_deref()
    } else {
        None
    });
    let target = Noun {
        hostname: None,
        ip: None,
        user: user
            .filter(|_| is_auth || is_http)
            .map(|userid| User { userid }),
        url: if is_http {
            record.http.url.as_deref()
        } else {
            None
        },
    };
    let network = is_http.then_some(Network {
        application_protocol: "HTTP",
        http: HttpFields {
            method: record.http.method.as_deref(),
            response_code: record.http.status,
            user_agent: record.http.user_agent.as_deref(),
            referral_url: record.http.referrer.as_deref(),
        },
    });
    let extensions = is_auth.then_some(Extensions {
        auth: Auth {
            auth_type: if record.service.as_deref() == Some("sshd") {
                "MACHINE"
            } else {
                "AUTHTYPE_UNSPECIFIED"
            },
        },
    });
    let (severity, details) = match &record.level {
        Some(l) => (
            l.severity,
            Some(l.written.as_ref()).filter(|w| !w.is_empty()),
        ),
        None => (Severity::Unknown, None),
    };
    Event {
        metadata: Metadata {
            event_timestamp: Ts(event_time),
            collected_timestamp: ctx.collected.map(Ts),
            ingested_timestamp: Ts(ingested),
            event_type: class.event_type.as_str(),
            vendor_name: opts.vendor.as_deref(),
            product_name,
            log_type: opts.log_type.as_deref(),
            description: record.message.as_deref(),
        },
        principal,
        target,
        network,
        extensions,
        security_result: [SecurityResult {
            severity: severity.as_str(),
            severity_details: details,
            action: class.action.map(|a| [a.as_str()]),
        }],
        additional: Additional {
            fields: &record.fields,
            ctx,
            parse_error: record.error,
            time_from,
            cut_from_bytes: None,
            fields_dropped: false,
        },
    }
}
