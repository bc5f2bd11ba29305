//! Choosing the parser of a line (`auto`) or applying the forced one, and the multi-line
//! rule: the first line decides the format, the whole text is the description.

use std::borrow::Cow;

use chrono::{DateTime, Utc};

use crate::format::{Format, ParseMode};
use crate::pattern::Pattern;
use crate::record::Record;
use crate::{access, json, logfmt, syslog, text};

/// A configured parser (`REDTAIL_PARSE`, `REDTAIL_PARSE_REGEX`).
#[derive(Debug, Clone)]
pub struct Parser {
    mode: ParseMode,
    pattern: Option<Pattern>,
}

impl Parser {
    /// `regex` is required with `ParseMode::Forced(Format::Regex)` and ignored otherwise.
    /// The error is one line, for the configuration message.
    pub fn new(mode: ParseMode, regex: Option<&str>) -> Result<Self, String> {
        let pattern = match (mode, regex) {
            (ParseMode::Forced(Format::Regex), None) => {
                return Err("is required with REDTAIL_PARSE=regex".to_string())
            }
            (ParseMode::Forced(Format::Regex), Some(src)) => Some(Pattern::new(src)?),
            _ => None,
        };
        Ok(Parser { mode, pattern })
    }

    pub fn mode(&self) -> ParseMode {
        self.mode
    }

    /// The format label of a line no parser saw (an entry without a line).
    pub fn declared_format(&self) -> Format {
        match self.mode {
            ParseMode::Auto => Format::Text,
            ParseMode::Forced(f) => f,
        }
    }

    /// What raw output needs of a line: the format, time and parse error that
    /// [`Parser::parse`] gives, without the record. A JSON line (the usual one) is validated
    /// and only its time aliases are decoded; any other line is parsed in full.
    pub fn stamp(&self, text: &str, reference: DateTime<Utc>) -> Stamp {
        let (first, _) = first_line(text);
        if self.format_of(first, reference) == Format::Json {
            if let Ok(time) = json::time_of(text) {
                return Stamp {
                    format: Format::Json,
                    time,
                    error: None,
                };
            }
        }
        let r = self.parse(text, reference);
        Stamp {
            format: r.format,
            time: r.time,
            error: r.error,
        }
    }

    /// Parses `text`; `reference` (the collection time) gives a BSD syslog line its year.
    pub fn parse<'a>(&'a self, text: &'a str, reference: DateTime<Utc>) -> Record<'a> {
        let (first, more) = first_line(text);
        let format = self.format_of(first, reference);
        if format == Format::Json {
            // Pretty-printed JSON grouped into one event parses whole.
            if let Ok(r) = json::parse(text) {
                return r;
            }
        }
        let parsed = match format {
            Format::Json => json::parse(first),
            Format::Logfmt => logfmt::parse(first),
            Format::Syslog => syslog::parse(first, reference),
            Format::Combined => access::parse(first),
            Format::Text => Ok(text::parse(first)),
            Format::Regex => match &self.pattern {
                // A multi-line event is matched whole, so `(?s)` patterns see every line.
                Some(p) => {
                    return p
                        .parse(text)
                        .unwrap_or_else(|e| salvage(Format::Regex, e, text))
                }
                None => Err("no regex configured"),
            },
        };
        match parsed {
            Ok(mut r) => {
                if more {
                    extend_message(&mut r, text, first);
                }
                r
            }
            Err(reason) => salvage(format, reason, text),
        }
    }

    fn format_of(&self, first: &str, reference: DateTime<Utc>) -> Format {
        match self.mode {
            ParseMode::Forced(f) => f,
            ParseMode::Auto => detect(first, reference),
        }
    }
}

/// What [`Parser::stamp`] tells of a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub format: Format,
    pub time: Option<DateTime<Utc>>,
    /// As [`Record::error`].
    pub error: Option<&'static str>,
}

/// The first line of an event, and whether more follow.
fn first_line(text: &str) -> (&str, bool) {
    match memchr::memchr(b'\n', text.as_bytes()) {
        Some(i) => (&text[..i], true),
        None => (text, false),
    }
}

/// INTERFACE.md's order: JSON object → syslog shape → access log → mostly `key=value` → text.
fn detect(first: &str, reference: DateTime<Utc>) -> Format {
    if json::looks_like(first) {
        Format::Json
    } else if syslog::looks_like(first, reference) {
        Format::Syslog
    } else if access::looks_like(first) {
        Format::Combined
    } else if logfmt::looks_like(first) {
        Format::Logfmt
    } else {
        Format::Text
    }
}

/// A line that is not what it was declared or looked like: the text parser still finds a
/// time and a level if it can, the whole text is the message, and the error is kept.
fn salvage<'a>(format: Format, reason: &'static str, text: &'a str) -> Record<'a> {
    let mut r = text::parse(text);
    r.format = format;
    r.error = Some(reason);
    r.fields.clear();
    r.message = Some(Cow::Borrowed(text));
    r
}

/// The message of the first line, followed by the other lines of the event.
fn extend_message<'a>(r: &mut Record<'a>, text: &'a str, first: &'a str) {
    let first_end = first.as_ptr() as usize + first.len();
    match &r.message {
        // A message that ends the first line: the rest of the text follows it in memory.
        Some(Cow::Borrowed(m))
            if !m.is_empty()
                && m.as_ptr() as usize >= text.as_ptr() as usize
                && m.as_ptr() as usize + m.len() == first_end =>
        {
            let start = m.as_ptr() as usize - text.as_ptr() as usize;
            r.message = Some(Cow::Borrowed(&text[start..]));
        }
        Some(m) => {
            let joined = format!("{m}{}", &text[first.len()..]);
            r.message = Some(Cow::Owned(joined));
        }
        None => r.message = Some(Cow::Borrowed(text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_str;

    fn reference() -> DateTime<Utc> {
        parse_str("2026-12-02T03:00:00Z").expect("ref")
    }

    #[test]
    fn auto_detects_each_format() {
        let p = Parser::new(ParseMode::Auto, None).expect("auto");
        for (line, want) in [
            (r#"{"msg":"x"}"#, Format::Json),
            ("<34>Oct 11 22:14:15 mymachine su: x", Format::Syslog),
            ("Dec  1 22:14:15 web-1 sshd[1]: x", Format::Syslog),
            (
                r#"1.2.3.4 - - [10/Oct/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1"#,
                Format::Combined,
            ),
            ("level=info msg=hi a=b", Format::Logfmt),
            (
                "2026-11-30 10:00:05,789 WARN [main] x user=alice",
                Format::Text,
            ),
            ("", Format::Text),
        ] {
            let r = p.parse(line, reference());
            assert_eq!(r.format, want, "{line}");
            assert_eq!(r.error, None, "{line}");
        }
        let r = p.parse(r#"{"broken": "#, reference());
        assert_eq!((r.format, r.error), (Format::Json, Some("invalid JSON")));
        assert_eq!(r.message.as_deref(), Some(r#"{"broken": "#));
    }

    #[test]
    fn multi_line_first_line_decides_whole_text_is_message() {
        let p = Parser::new(ParseMode::Auto, None).expect("auto");
        let trace = "2026-11-30 10:00:05,789 ERROR [main] Request failed\njava.lang.IllegalStateException: boom\n\tat com.example.App.main(App.java:10)";
        let r = p.parse(trace, reference());
        assert_eq!(r.format, Format::Text);
        assert_eq!(r.level.as_ref().map(|l| l.severity.as_str()), Some("ERROR"));
        assert_eq!(
            r.message.as_deref(),
            Some("[main] Request failed\njava.lang.IllegalStateException: boom\n\tat com.example.App.main(App.java:10)")
        );
        let r = p.parse("{\"msg\":\"a\"}\n  more", reference());
        assert_eq!(r.message.as_deref(), Some("a\n  more"));
        let r = p.parse("{\n  \"msg\": \"pretty\"\n}", reference());
        assert_eq!(
            (r.format, r.message.as_deref()),
            (Format::Json, Some("pretty"))
        );
    }

    #[test]
    fn stamp_tells_what_parse_tells() {
        let trace = "2026-11-30 10:00:05,789 ERROR [main] failed\n\tat a.B.c(B.java:1)";
        let lines = [
            r#"{"timestamp":"2026-11-23T23:10:01.123456Z","level":"INFO","message":"hi"}"#,
            // The best-ranked alias wins wherever it is; an unreadable one is no time.
            r#"{"ts":1257894000.5,"@timestamp":"2019-08-06T12:09:12.375Z","time":1531171074631}"#,
            r#"{"time":"2014-03-10 19:57:38.562264131 -0400 EDT","ts":1}"#,
            // A null or an object cannot be a time, so the next alias is taken.
            r#"{"timestamp":null,"time":{"a":1},"ts":1700000000}"#,
            r#"{"timestamp":"2026-01-01T00:00:00Z","timestamp":"2027-01-01T00:00:00Z"}"#,
            r#"{"ti\u006de":"2026-01-01T00:00:00Z"}"#,
            "{\n  \"time\": \"2026-01-01T00:00:00Z\"\n}",
            "{\"ts\":1700000000}\n  not json",
            r#"{"broken": "#,
            "[1,2]",
            "{} trailing",
            trace,
            "<34>Oct 11 22:14:15 mymachine su: x",
            "level=info ts=2026-01-01T00:00:00Z msg=hi",
            "",
        ];
        for mode in [
            ParseMode::Auto,
            ParseMode::Forced(Format::Json),
            ParseMode::Forced(Format::Text),
        ] {
            let p = Parser::new(mode, None).expect("parser");
            for line in lines {
                let r = p.parse(line, reference());
                let want = Stamp {
                    format: r.format,
                    time: r.time,
                    error: r.error,
                };
                assert_eq!(p.stamp(line, reference()), want, "{mode:?} {line}");
            }
        }
        let p = Parser::new(ParseMode::Auto, None).expect("auto");
        let s = p.stamp(lines[1], reference());
        assert_eq!(
            s.time,
            parse_str("2018-07-09T21:17:54.631Z"),
            "time beats ts"
        );
        assert_eq!(
            p.stamp(lines[3], reference()).time.map(|t| t.timestamp()),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn forced_mismatch_is_an_error_of_that_format() {
        for (format, line) in [
            (Format::Json, "plain"),
            (Format::Syslog, "plain"),
            (Format::Combined, "plain"),
            (Format::Logfmt, "plain words"),
        ] {
            let p = Parser::new(ParseMode::Forced(format), None).expect("forced");
            let r = p.parse(line, reference());
            assert_eq!(r.format, format);
            assert!(r.error.is_some(), "{format}");
            assert_eq!(r.message.as_deref(), Some(line));
        }
        let p = Parser::new(
            ParseMode::Forced(Format::Regex),
            Some(r"^(?P<level>\w+) (?P<message>.*)$"),
        )
        .expect("regex");
        assert_eq!(
            p.parse("WARN disk low", reference()).message.as_deref(),
            Some("disk low")
        );
        assert_eq!(p.parse("", reference()).error, Some("regex did not match"));
        assert!(Parser::new(ParseMode::Forced(Format::Regex), None).is_err());
        assert!(Parser::new(ParseMode::Forced(Format::Regex), Some("(")).is_err());
    }
}
