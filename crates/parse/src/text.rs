//! Plain text lines as frameworks write them: an optional leading timestamp
//! (`2026-11-30 10:00:05,789`, ISO 8601, `[…]`-bracketed, Go's `2026/11/30 10:00:05`) and a
//! level word among the first few words (`WARN`, `[ERROR]`, `level:`), then the message.
//! Always succeeds: any text is at least a message.

use std::borrow::Cow;

use crate::format::Format;
use crate::level::{is_level_word, Level};
use crate::record::{FieldValue, Record};
use crate::time;

/// How many words after the timestamp may come before the level (`- name - WARNING`).
const LEVEL_SEARCH_WORDS: usize = 4;

pub fn parse(text: &str) -> Record<'_> {
    let mut r = Record::new(Format::Text);
    let mut rest = text;
    let (bracketed, inner) = match rest.strip_prefix('[') {
        Some(inner) => (true, inner),
        None => (false, rest),
    };
    if let Some((t, used)) = time::iso_prefix(inner.as_bytes()) {
        let after = &inner[used..];
        let after = if bracketed {
            after.strip_prefix(']').map(Some).unwrap_or(None)
        } else {
            Some(after)
        };
        if let Some(after) = after {
            r.time = Some(t);
            rest = after;
        }
    }
    // The level: the first of the next few words that is a level name.
    let mut cursor = rest;
    for _ in 0..LEVEL_SEARCH_WORDS {
        let trimmed = cursor.trim_start();
        if trimmed.is_empty() {
            break;
        }
        let end = trimmed.find([' ', '\t']).unwrap_or(trimmed.len());
        let word = &trimmed[..end];
        let (name, after_word) = level_in(word);
        if is_level_word(name) {
            let skipped = rest[..rest.len() - trimmed.len()].trim_matches([' ', '-', '|', ':']);
            if !skipped.is_empty() {
                r.push_field(
                    Cow::Borrowed("context"),
                    FieldValue::Str(Cow::Borrowed(skipped)),
                );
            }
            r.level = Some(Level::from_text(Cow::Borrowed(name)));
            rest = &trimmed[word.len() - after_word.len()..];
            break;
        }
        cursor = &trimmed[end..];
    }
    let message = rest.trim_start_matches([' ', '\t', '-', '|', ':']);
    let message = if message.is_empty() {
        rest.trim()
    } else {
        message
    };
    r.message = Some(Cow::Borrowed(if message.is_empty() {
        text
    } else {
        message
    }));
    r
}

/// A level candidate in a word: `WARN`, `[WARN]`, `<warn>`, `WARN:` or `WARNING:root:msg`
/// (Python's default format). Returns the name and what follows it in the word.
fn level_in(word: &str) -> (&str, &str) {
    let w = word.trim_start_matches(['[', '<', '(']);
    let end = w
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(w.len());
    let name = &w[..end];
    let after = w[end..].trim_start_matches([']', '>', ')', ':']);
    (name, after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::level::Severity;
    use crate::time::format;

    /// (source, line, time, level, message)
    type Case = (
        &'static str,
        &'static str,
        Option<&'static str>,
        Option<(&'static str, Severity)>,
        &'static str,
    );

    #[test]
    fn real_samples() {
        let cases: &[Case] = &[
            (
                "log4j/logback default-style pattern (%d %-5level [%thread] %logger - %msg)",
                "2026-11-30 10:00:05,789 WARN  [main] c.e.app.Pool - Connection pool low",
                Some("2026-11-30T10:00:05.789000Z"),
                Some(("WARN", Severity::Medium)),
                "[main] c.e.app.Pool - Connection pool low",
            ),
            (
                "Python logging, '%(asctime)s - %(name)s - %(levelname)s - %(message)s' (logging cookbook)",
                "2005-03-19 15:10:26,618 - simple_example - WARNING - warn message",
                Some("2005-03-19T15:10:26.618000Z"),
                Some(("WARNING", Severity::Medium)),
                "warn message",
            ),
            (
                "Python logging basicConfig default format (logging HOWTO)",
                "WARNING:root:Watch out!",
                None,
                Some(("WARNING", Severity::Medium)),
                "root:Watch out!",
            ),
            (
                "Go standard library log package",
                "2009/11/10 23:00:00 Hello, log file!",
                Some("2009-11-10T23:00:00.000000Z"),
                None,
                "Hello, log file!",
            ),
            (
                "Spring Boot default console format",
                "2026-11-30T10:00:05.789Z  INFO 1 --- [main] o.s.b.w.e.tomcat.TomcatWebServer : Tomcat started on port 8080 (http)",
                Some("2026-11-30T10:00:05.789000Z"),
                Some(("INFO", Severity::Informational)),
                "1 --- [main] o.s.b.w.e.tomcat.TomcatWebServer : Tomcat started on port 8080 (http)",
            ),
            (
                "bracketed timestamp and level (Rails/Rack style)",
                "[2026-11-30 10:00:05] [ERROR] payment failed for order 42",
                Some("2026-11-30T10:00:05.000000Z"),
                Some(("ERROR", Severity::Error)),
                "payment failed for order 42",
            ),
            (
                "no timestamp, no level",
                "just a sentence with I and a",
                None,
                None,
                "just a sentence with I and a",
            ),
        ];
        for (source, line, time, level, message) in cases {
            let r = parse(line);
            assert_eq!(r.time.map(|t| format(&t)).as_deref(), *time, "{source}");
            assert_eq!(
                r.level.as_ref().map(|l| (l.written.as_ref(), l.severity)),
                *level,
                "{source}"
            );
            assert_eq!(r.message.as_deref(), Some(*message), "{source}");
        }
        let r = parse("2005-03-19 15:10:26,618 - simple_example - WARNING - warn message");
        assert_eq!(r.fields[0].1.as_text(), "simple_example");
        assert_eq!(parse("   ").message.as_deref(), Some("   "));
    }
}
