//! logfmt (`key=value key2="quoted value"`), as written by Heroku, Go's `log/slog`
//! TextHandler, logrus' TextFormatter, Grafana and Prometheus components.

use std::borrow::Cow;

use crate::fields::Fields;
use crate::format::Format;
use crate::record::{FieldValue, Record};

/// Parses every `key=value` pair (bare words become keys with an empty value, as in the
/// go-logfmt reference decoder). `Err` when the line has no pair at all.
pub fn parse(text: &str) -> Result<Record<'_>, &'static str> {
    let mut fields = Fields::new(Record::new(Format::Logfmt));
    let mut pairs = 0;
    for (key, value) in Pairs::new(text) {
        match value {
            Some(v) => {
                pairs += 1;
                fields.add(Cow::Borrowed(key), FieldValue::Str(v));
            }
            None => fields.add(Cow::Borrowed(key), FieldValue::Str(Cow::Borrowed(""))),
        }
    }
    if pairs == 0 {
        return Err("no key=value pair");
    }
    Ok(fields.finish())
}

/// "Mostly `key=value` pairs": at least two pairs, and pairs are at least two thirds of the
/// words (a text line with one `user=alice` in its message is not logfmt).
pub fn looks_like(text: &str) -> bool {
    let (mut pairs, mut words) = (0usize, 0usize);
    for (_, value) in Pairs::new(text) {
        words += 1;
        pairs += usize::from(value.is_some());
        if words > 64 {
            break;
        }
    }
    pairs >= 2 && pairs * 3 >= words * 2
}

/// Iterates `(key, Some(value))` for pairs and `(word, None)` for bare words.
struct Pairs<'a> {
    rest: &'a str,
}

impl<'a> Pairs<'a> {
    fn new(text: &'a str) -> Self {
        Pairs { rest: text }
    }
}

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, Option<Cow<'a, str>>);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.rest.trim_start_matches([' ', '\t']);
        if s.is_empty() {
            return None;
        }
        let key_end = s.find([' ', '\t', '=', '"']).unwrap_or(s.len());
        let key = &s[..key_end];
        let after = &s[key_end..];
        if key.is_empty() {
            // A stray `=` or quote: skip one character so the loop always advances.
            let skip = s.chars().next().map_or(1, char::len_utf8);
            self.rest = &s[skip..];
            return self.next();
        }
        let Some(value_part) = after.strip_prefix('=') else {
            self.rest = after;
            return Some((key, None));
        };
        if let Some(quoted) = value_part.strip_prefix('"') {
            let (value, used) = unquote(quoted);
            self.rest = &quoted[used..];
            return Some((key, Some(value)));
        }
        let end = value_part.find([' ', '\t']).unwrap_or(value_part.len());
        self.rest = &value_part[end..];
        Some((key, Some(Cow::Borrowed(&value_part[..end]))))
    }
}

/// A quoted value after its opening quote: the text (escapes `\"`, `\\`, `\n`, `\t`, `\r`
/// decoded) and the bytes used including the closing quote (or to the end, if unclosed).
fn unquote(s: &str) -> (Cow<'_, str>, usize) {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return (Cow::Borrowed(&s[..i]), i + 1),
            b'\\' => break,
            _ => i += 1,
        }
    }
    if i == bytes.len() {
        return (Cow::Borrowed(s), s.len());
    }
    let mut out = String::with_capacity(s.len());
    out.push_str(&s[..i]);
    let mut chars = s[i..].char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '"' => return (Cow::Owned(out), i + at + 1),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, other)) => out.push(other),
                None => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    (Cow::Owned(out), s.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format;

    #[test]
    fn real_samples() {
        // Go log/slog TextHandler documentation (pkg.go.dev/log/slog).
        let r = parse(r#"time=2022-11-08T15:28:26.000-05:00 level=INFO msg=hello count=3"#)
            .expect("slog");
        assert_eq!(
            r.time.map(|t| format(&t)).as_deref(),
            Some("2022-11-08T20:28:26.000000Z")
        );
        assert_eq!(r.level.as_ref().map(|l| l.written.as_ref()), Some("INFO"));
        assert_eq!(r.message.as_deref(), Some("hello"));
        assert_eq!(r.fields.len(), 1);

        // Brandur Leach, "logfmt" (brandur.org/logfmt), the format's introduction.
        let r = parse(r#"at=info method=GET path=/ host=mutelight.org fwd="124.133.52.161" dyno=web.2 connect=4ms service=8ms status=200 bytes=1653"#)
            .expect("heroku router");
        assert_eq!(r.http.method.as_deref(), Some("GET"));
        assert_eq!(r.http.url.as_deref(), Some("/"));
        assert_eq!(r.http.status, Some(200));
        assert_eq!(r.host.as_deref(), Some("mutelight.org"));
        assert_eq!(
            r.service.as_deref(),
            Some("8ms"),
            "`service` is an alias, even here"
        );
        let keys: Vec<_> = r.fields.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["at", "fwd", "dyno", "connect", "bytes", "service"]);

        // logrus TextFormatter (no TTY), from its README.
        let r = parse(r#"time="2015-03-26T01:27:38-04:00" level=warning msg="The group's number increased tremendously!" number=122 omg=true"#)
            .expect("logrus");
        assert_eq!(
            r.level.as_ref().map(|l| l.severity.as_str()),
            Some("MEDIUM")
        );
        assert_eq!(
            r.message.as_deref(),
            Some("The group's number increased tremendously!")
        );
        assert_eq!(
            r.time.map(|t| format(&t)).as_deref(),
            Some("2015-03-26T05:27:38.000000Z")
        );
    }

    #[test]
    fn quoting_bare_words_and_detection() {
        let r = parse(r#"msg="say \"hi\"\n" flag a=1 b="unclosed"#).expect("pairs");
        assert_eq!(r.message.as_deref(), Some("say \"hi\"\n"));
        let keys: Vec<_> = r
            .fields
            .iter()
            .map(|(k, v)| (k.as_ref(), v.as_text().into_owned()))
            .collect();
        assert_eq!(
            keys,
            [
                ("flag", "".to_string()),
                ("a", "1".to_string()),
                ("b", "unclosed".to_string())
            ]
        );
        assert!(looks_like("a=1 b=2 c"));
        assert!(!looks_like(
            "2026-11-30 10:00:05,789 WARN [main] user=alice"
        ));
        assert!(!looks_like("just some words"));
        assert!(parse("no pairs here").is_err());
        assert!(parse("= = \"").is_err());
    }
}
