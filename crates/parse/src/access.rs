//! Apache/nginx access logs: the Common Log Format and the combined format
//! (`%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"`), plus any extra quoted or bare
//! fields nginx configurations append (kept in `additional`).

use std::borrow::Cow;

use crate::format::Format;
use crate::level::{Level, Severity};
use crate::record::{FieldValue, Record};
use crate::time;

/// Whether the line has the access-log shape: `host ident user [time] "request" status`.
pub fn looks_like(text: &str) -> bool {
    let mut words = text.splitn(4, ' ');
    let (Some(host), Some(_), Some(_), Some(rest)) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return false;
    };
    // The bracket must hold an access-log time, so `INFO [main] x [y] "z"` stays text.
    !host.is_empty()
        && rest.starts_with('[')
        && rest
            .find("] \"")
            .is_some_and(|close| time::clf(&rest[1..close]).is_some())
}

/// Parses an access log line. `Err` when it does not have the shape.
pub fn parse(text: &str) -> Result<Record<'_>, &'static str> {
    let bad = "not an access log line";
    let mut words = text.splitn(4, ' ');
    let host = words.next().ok_or(bad)?;
    let ident = words.next().ok_or(bad)?;
    let user = words.next().ok_or(bad)?;
    let rest = words.next().ok_or(bad)?;
    let rest = rest.strip_prefix('[').ok_or(bad)?;
    let close = rest.find(']').ok_or(bad)?;
    let when = &rest[..close];
    let rest = rest[close + 1..].strip_prefix(" \"").ok_or(bad)?;
    let (request, used) = quoted(rest).ok_or(bad)?;
    let mut rest = rest[used..].trim_start();
    let (status, after) = rest.split_once(' ').unwrap_or((rest, ""));
    let status: u16 = status.parse().map_err(|_| bad)?;
    rest = after;
    let (bytes, after) = rest.split_once(' ').unwrap_or((rest, ""));
    rest = after;

    let mut r = Record::new(Format::Combined);
    r.time = time::clf(when);
    if r.time.is_none() {
        r.push_field(
            Cow::Borrowed("time_local"),
            FieldValue::Str(Cow::Borrowed(when)),
        );
    }
    r.http.client_ip = dash(host);
    if let Some(ident) = dash(ident) {
        r.push_field(Cow::Borrowed("ident"), FieldValue::Str(ident));
    }
    r.user = dash(user);
    r.http.status = (100..=999).contains(&status).then_some(status);
    // "GET /path HTTP/1.1"; a bad request (`"-"`, TLS bytes on a plain port) has no method.
    // An escaped (owned) request is kept whole: it is a bad request anyway.
    let parts = match &request {
        Cow::Borrowed(s) => {
            let mut p = s.splitn(3, ' ');
            (p.next(), p.next(), p.next())
        }
        Cow::Owned(_) => (None, None, None),
    };
    match parts {
        (Some(method), Some(url), protocol)
            if !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase()) =>
        {
            r.http.method = Some(Cow::Borrowed(method));
            r.http.url = Some(Cow::Borrowed(url));
            if let Some(p) = protocol {
                r.push_field(Cow::Borrowed("protocol"), FieldValue::Str(Cow::Borrowed(p)));
            }
        }
        _ => r.push_field(Cow::Borrowed("request"), FieldValue::Str(request.clone())),
    }
    if let Ok(n) = bytes.parse::<i64>() {
        r.push_field(Cow::Borrowed("bytes"), FieldValue::Int(n));
    }
    // Combined adds "referrer" "user agent"; common stops after the byte count.
    for i in 0..2 {
        let Some(q) = rest.strip_prefix('"') else {
            break;
        };
        let (value, used) = quoted(q).ok_or(bad)?;
        rest = q[used..].trim_start();
        let value = match value {
            Cow::Borrowed("-") => None,
            v => Some(v),
        };
        if i == 0 {
            r.http.referrer = value;
        } else if let Some(v) = value {
            r.http.user_agent = Some(v);
        }
    }
    if !rest.is_empty() {
        r.push_field(Cow::Borrowed("extra"), FieldValue::Str(Cow::Borrowed(rest)));
    }
    // No level is written; the status is the closest thing (not in severity_details).
    r.level = Some(Level {
        written: Cow::Borrowed(""),
        severity: match status {
            500.. => Severity::Error,
            400..=499 => Severity::Medium,
            _ => Severity::Informational,
        },
    });
    r.message = Some(Cow::Borrowed(text));
    Ok(r)
}

fn dash(s: &str) -> Option<Cow<'_, str>> {
    (s != "-" && !s.is_empty()).then_some(Cow::Borrowed(s))
}

/// A quoted field after its opening quote, nginx/Apache style (`\"` and `\\` escaped, other
/// bytes as `\xHH`): the decoded text and the bytes used including the closing quote.
fn quoted(s: &str) -> Option<(Cow<'_, str>, usize)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut escaped = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                escaped = true;
                i += 2;
            }
            b'"' => {
                let raw = &s[..i];
                let text = if escaped {
                    Cow::Owned(raw.replace("\\\"", "\"").replace("\\\\", "\\"))
                } else {
                    Cow::Borrowed(raw)
                };
                return Some((text, i + 1));
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format;

    #[test]
    fn real_samples() {
        // Apache httpd documentation, "Log Files", Common Log Format example.
        let r = parse(r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#)
            .expect("common");
        assert_eq!(
            r.time.map(|t| format(&t)).as_deref(),
            Some("2000-10-10T20:55:36.000000Z")
        );
        assert_eq!(r.http.client_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(r.user.as_deref(), Some("frank"));
        assert_eq!(r.http.method.as_deref(), Some("GET"));
        assert_eq!(r.http.url.as_deref(), Some("/apache_pb.gif"));
        assert_eq!(r.http.status, Some(200));
        assert_eq!(r.http.referrer, None);

        // Same page, Combined Log Format example.
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#;
        assert!(looks_like(line));
        let r = parse(line).expect("combined");
        assert_eq!(
            r.http.referrer.as_deref(),
            Some("http://www.example.com/start.html")
        );
        assert_eq!(
            r.http.user_agent.as_deref(),
            Some("Mozilla/4.08 [en] (Win98; I ;Nav)")
        );
        assert!(r
            .fields
            .iter()
            .any(|(k, v)| k == "bytes" && *v == FieldValue::Int(2326)));

        // nginx's default `combined`, a scanner's TLS hello on the plain port, an extra field.
        let r = parse(r#"203.0.113.7 - - [02/Dec/2026:02:30:57 +0000] "\x16\x03\x01\x02\x00\x01" 400 157 "-" "-" "198.51.100.2""#)
            .expect("bad request");
        assert_eq!(r.http.method, None);
        assert_eq!(r.http.status, Some(400));
        assert_eq!(r.level.as_ref().map(|l| l.severity), Some(Severity::Medium));
        assert!(r
            .fields
            .iter()
            .any(|(k, v)| k == "extra" && v.as_text() == "\"198.51.100.2\""));
        assert!(r.http.user_agent.is_none());
    }

    #[test]
    fn not_access_logs() {
        for line in [
            "hello world",
            "a b c [x",
            "a b c [10/Oct/2000:13:55:36 -0700] GET",
        ] {
            assert!(!looks_like(line) || parse(line).is_err(), "{line}");
        }
        assert!(parse(r#"h - - [x] "GET / HTTP/1.1" abc 1"#).is_err());
    }
}
