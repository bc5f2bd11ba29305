//! Syslog lines: RFC 5424 and RFC 3164 (BSD), with or without the `<PRI>` that a file written
//! by rsyslog or journald usually drops, and rsyslog's file format with an ISO timestamp.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::fields::Fields;
use crate::format::Format;
use crate::level::{is_level_word, Level};
use crate::record::{FieldValue, Record};
use crate::time;

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// `<PRI>` at the start: the value (0 … 191) and the rest of the line.
fn pri(text: &str) -> Option<(u8, &str)> {
    let rest = text.strip_prefix('<')?;
    let end = rest.find('>')?;
    if end == 0 || end > 3 || !rest[..end].bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let value: u8 = rest[..end].parse().ok().filter(|v| *v <= 191)?;
    Some((value, &rest[end + 1..]))
}

/// Whether `text` has a syslog shape: a PRI, a BSD timestamp followed by a host, or an ISO
/// timestamp followed by a host and a `tag:`/`tag[pid]:`.
pub fn looks_like(text: &str, reference: DateTime<Utc>) -> bool {
    if pri(text).is_some() {
        return true;
    }
    if let Some((_, used)) = time::bsd_prefix(text.as_bytes(), reference) {
        return text[used..].starts_with(' ');
    }
    let body = text.strip_prefix("1 ").unwrap_or(text);
    match time::iso_prefix(body.as_bytes()) {
        Some((_, used)) => iso_header(&body[used..]).is_some(),
        None => false,
    }
}

/// ` host tag[pid]: ` after an ISO timestamp: (host, tag, pid, message).
fn iso_header(rest: &str) -> Option<(&str, &str, Option<&str>, &str)> {
    let rest = rest.strip_prefix(' ')?;
    let (host, rest) = rest.split_once(' ')?;
    if host.is_empty() || is_level_word(host.trim_matches(['[', ']', ':'])) {
        return None;
    }
    let (tag, pid, msg) = tag(rest)?;
    Some((host, tag, pid, msg))
}

/// `tag[pid]: msg` or `tag: msg`, the tag of letters, digits and `_.-/`.
fn tag(s: &str) -> Option<(&str, Option<&str>, &str)> {
    let end = s.find([':', '[', ' '])?;
    let name = &s[..end];
    if name.is_empty()
        || name.len() > 48
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'/'))
    {
        return None;
    }
    let mut rest = &s[end..];
    let mut pid = None;
    if let Some(r) = rest.strip_prefix('[') {
        let close = r.find(']')?;
        pid = Some(&r[..close]);
        rest = &r[close + 1..];
    }
    let msg = rest.strip_prefix(':')?;
    Some((name, pid, msg.strip_prefix(' ').unwrap_or(msg)))
}

/// Parses a syslog line; `reference` supplies the year a BSD timestamp lacks.
pub fn parse(text: &str, reference: DateTime<Utc>) -> Result<Record<'_>, &'static str> {
    let (priority, body) = match pri(text) {
        Some((p, body)) => (Some(p), body),
        None => (None, text),
    };
    let mut fields = Fields::new(Record::new(Format::Syslog));
    let parsed = if let Some(v5424) = body.strip_prefix("1 ") {
        rfc5424(v5424, &mut fields)
    } else {
        rfc3164(body, reference, &mut fields)
    };
    let mut record = fields.finish();
    let Some((time, message)) = parsed else {
        return Err(if priority.is_some() {
            "malformed syslog header"
        } else {
            "not a syslog line"
        });
    };
    record.time = time.or(record.time);
    record.message = Some(Cow::Borrowed(
        message.strip_prefix('\u{feff}').unwrap_or(message),
    ));
    if let Some(p) = priority {
        record.level = Some(Level::from_syslog(p % 8));
        record.push_field(
            Cow::Borrowed("facility"),
            FieldValue::Str(Cow::Borrowed(FACILITIES[usize::from(p / 8)])),
        );
    }
    Ok(record)
}

/// `TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD [MSG]` after the version.
fn rfc5424<'a>(s: &'a str, fields: &mut Fields<'a>) -> Option<(Option<DateTime<Utc>>, &'a str)> {
    let mut parts = s.splitn(6, ' ');
    let ts = parts.next()?;
    let host = parts.next()?;
    let app = parts.next()?;
    let procid = parts.next()?;
    let msgid = parts.next()?;
    let rest = parts.next().unwrap_or("");
    let time = if ts == "-" {
        None
    } else {
        Some(time::parse_str(ts)?)
    };
    let nil = |v: &str| v != "-" && !v.is_empty();
    let record = fields.record_mut();
    if nil(host) {
        record.host = Some(Cow::Borrowed(host));
    }
    if nil(app) {
        record.service = Some(Cow::Borrowed(app));
    }
    if nil(procid) {
        record.push_field(Cow::Borrowed("pid"), FieldValue::Str(Cow::Borrowed(procid)));
    }
    if nil(msgid) {
        record.push_field(
            Cow::Borrowed("msgid"),
            FieldValue::Str(Cow::Borrowed(msgid)),
        );
    }
    let msg = structured_data(rest, fields)?;
    Some((time, msg))
}

/// `-` or `[id k="v" …]…`; each parameter becomes a field (aliases apply: `user="alice"`
/// names the user). Returns the MSG after it.
fn structured_data<'a>(s: &'a str, fields: &mut Fields<'a>) -> Option<&'a str> {
    if let Some(rest) = s.strip_prefix('-') {
        return Some(rest.strip_prefix(' ').unwrap_or(rest));
    }
    let mut rest = s;
    while let Some(element) = rest.strip_prefix('[') {
        let id_end = element.find([' ', ']'])?;
        fields.add(
            Cow::Borrowed("sd_id"),
            FieldValue::Str(Cow::Borrowed(&element[..id_end])),
        );
        let mut r = &element[id_end..];
        loop {
            r = r.trim_start_matches(' ');
            if let Some(after) = r.strip_prefix(']') {
                rest = after;
                break;
            }
            let eq = r.find('=')?;
            let name = &r[..eq];
            let value = r[eq + 1..].strip_prefix('"')?;
            let (text, used) = sd_value(value)?;
            fields.add(Cow::Borrowed(name), FieldValue::Str(text));
            r = &value[used..];
        }
    }
    if rest.len() == s.len() {
        return None;
    }
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// A PARAM-VALUE after its quote: `\"`, `\\` and `\]` escaped (RFC 5424 section 6.3.3).
fn sd_value(s: &str) -> Option<(Cow<'_, str>, usize)> {
    let bytes = s.as_bytes();
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => {
                escaped = true;
                i += 2;
                continue;
            }
            b'"' => {
                let raw = &s[..i];
                let text = if escaped {
                    Cow::Owned(
                        raw.replace("\\\"", "\"")
                            .replace("\\]", "]")
                            .replace("\\\\", "\\"),
                    )
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

/// `Mmm dd hh:mm:ss HOST TAG: MSG` (or the ISO-timestamp variant).
fn rfc3164<'a>(
    s: &'a str,
    reference: DateTime<Utc>,
    fields: &mut Fields<'a>,
) -> Option<(Option<DateTime<Utc>>, &'a str)> {
    let (time, used) = match time::bsd_prefix(s.as_bytes(), reference) {
        Some(t) => t,
        None => time::iso_prefix(s.as_bytes())?,
    };
    let rest = s[used..].strip_prefix(' ')?;
    let record = fields.record_mut();
    let (host, after_host) = rest.split_once(' ').unwrap_or((rest, ""));
    match tag(after_host) {
        Some((name, pid, msg)) => {
            record.host = Some(Cow::Borrowed(host));
            record.service = Some(Cow::Borrowed(name));
            if let Some(pid) = pid {
                record.push_field(Cow::Borrowed("pid"), FieldValue::Str(Cow::Borrowed(pid)));
            }
            Some((Some(time), msg))
        }
        // No tag: RFC 3164 allows a bare message after the host.
        None => {
            record.host = Some(Cow::Borrowed(host));
            Some((Some(time), after_host))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{format, parse_str};

    fn reference() -> DateTime<Utc> {
        parse_str("2026-12-02T03:00:00Z").expect("ref")
    }

    struct Case {
        source: &'static str,
        line: &'static str,
        time: &'static str,
        host: Option<&'static str>,
        app: Option<&'static str>,
        level: Option<&'static str>,
        message: &'static str,
    }

    #[test]
    fn real_samples() {
        let cases = [
            Case {
                source: "RFC 5424 section 6.5, example 1",
                line: "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8",
                time: "2003-10-11T22:14:15.003000Z",
                host: Some("mymachine.example.com"),
                app: Some("su"),
                level: Some("crit"),
                message: "'su root' failed for lonvick on /dev/pts/8",
            },
            Case {
                source: "RFC 5424 section 6.5, example 2",
                line: "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
                time: "2003-08-24T12:14:15.000003Z",
                host: Some("192.0.2.1"),
                app: Some("myproc"),
                level: Some("notice"),
                message: "%% It's time to make the do-nuts.",
            },
            Case {
                source: "RFC 5424 section 6.5, example 3 (structured data)",
                line: "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] \u{feff}An application event log entry...",
                time: "2003-10-11T22:14:15.003000Z",
                host: Some("mymachine.example.com"),
                app: Some("evntslog"),
                level: Some("notice"),
                message: "An application event log entry...",
            },
            Case {
                source: "RFC 3164 section 5.4, example 1",
                line: "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
                time: "2026-10-11T22:14:15.000000Z",
                host: Some("mymachine"),
                app: Some("su"),
                level: Some("crit"),
                message: "'su root' failed for lonvick on /dev/pts/8",
            },
            Case {
                source: "Debian /var/log/auth.log (rsyslog traditional file format, no PRI)",
                line: "Dec  1 22:14:15 web-1 sshd[4242]: Accepted publickey for alice from 192.0.2.10 port 52144 ssh2",
                time: "2026-12-01T22:14:15.000000Z",
                host: Some("web-1"),
                app: Some("sshd"),
                level: None,
                message: "Accepted publickey for alice from 192.0.2.10 port 52144 ssh2",
            },
            Case {
                source: "rsyslog RSYSLOG_FileFormat (high-precision ISO timestamp)",
                line: "2026-12-01T22:14:15.123456+00:00 web-1 CRON[812]: (root) CMD (run-parts /etc/cron.hourly)",
                time: "2026-12-01T22:14:15.123456Z",
                host: Some("web-1"),
                app: Some("CRON"),
                level: None,
                message: "(root) CMD (run-parts /etc/cron.hourly)",
            },
        ];
        for c in cases {
            assert!(looks_like(c.line, reference()), "{}", c.source);
            let r = parse(c.line, reference()).unwrap_or_else(|e| panic!("{}: {e}", c.source));
            assert_eq!(
                r.time.map(|t| format(&t)).as_deref(),
                Some(c.time),
                "{}",
                c.source
            );
            assert_eq!(r.host.as_deref(), c.host, "{}", c.source);
            assert_eq!(r.service.as_deref(), c.app, "{}", c.source);
            assert_eq!(
                r.level.as_ref().map(|l| l.written.as_ref()),
                c.level,
                "{}",
                c.source
            );
            assert_eq!(r.message.as_deref(), Some(c.message), "{}", c.source);
        }
        let r = parse(
            "<165>1 2003-10-11T22:14:15.003Z h app - - [x@1 user=\"bob\" a=\"q\\\"]\"] m",
            reference(),
        )
        .expect("sd");
        assert_eq!(r.user.as_deref(), Some("bob"));
        assert!(r
            .fields
            .iter()
            .any(|(k, v)| k == "a" && v.as_text() == "q\"]"));
        assert!(r
            .fields
            .iter()
            .any(|(k, v)| k == "facility" && v.as_text() == "local4"));
    }

    #[test]
    fn not_syslog() {
        for line in [
            "2026-11-30T10:00:05Z INFO main: started",
            "hello world",
            "<999>oops",
            "Oct 11 22:14:15",
        ] {
            if looks_like(line, reference()) {
                panic!("{line} looks like syslog");
            }
        }
        assert!(parse("<34>garbage", reference()).is_err());
        assert!(parse("<34>1 notatime h a - - - m", reference()).is_err());
        assert!(parse("<34>1 - h a - - [unclosed m", reference()).is_err());
    }
}
