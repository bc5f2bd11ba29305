//! `REDTAIL_PARSE=regex`: the user's regular expression with named groups. Group names with a
//! UDM meaning (`timestamp`, `level`, `message`, `host`, `user`, `src_ip`, `method`, `url`,
//! `status`, `user_agent`, `referrer`, and the other key aliases) fill their slot; the other
//! groups go to `additional`.

use std::borrow::Cow;

use regex::Regex;

use crate::fields::Fields;
use crate::format::Format;
use crate::record::{FieldValue, Record};

/// A compiled user pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    regex: Regex,
}

impl Pattern {
    /// Compiles `source`; it must have at least one named group.
    pub fn new(source: &str) -> Result<Self, String> {
        let regex = Regex::new(source).map_err(|e| {
            // The regex crate's message spans lines; the configuration error is one line.
            let text = e.to_string();
            let last = text
                .lines()
                .last()
                .unwrap_or("invalid regex")
                .trim()
                .to_string();
            format!("does not compile: {last}")
        })?;
        if regex.capture_names().flatten().next().is_none() {
            return Err("has no named group, e.g. (?P<message>.*)".to_string());
        }
        Ok(Pattern { regex })
    }

    pub fn parse<'a>(&'a self, text: &'a str) -> Result<Record<'a>, &'static str> {
        let caps = self.regex.captures(text).ok_or("regex did not match")?;
        let mut fields = Fields::new(Record::new(Format::Regex));
        for name in self.regex.capture_names().flatten() {
            if let Some(m) = caps.name(name) {
                fields.add(
                    Cow::Borrowed(name),
                    FieldValue::Str(Cow::Borrowed(m.as_str())),
                );
            }
        }
        let mut record = fields.finish();
        if record.message.is_none() {
            record.message = Some(Cow::Borrowed(text));
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::format;

    #[test]
    fn named_groups_fill_slots() {
        let p = Pattern::new(
            r"^(?P<timestamp>\S+) (?P<level>\w+) (?P<src_ip>[\d.]+) (?P<method>[A-Z]+) (?P<url>\S+) (?P<status>\d{3}) (?P<ms>\d+)ms(?: (?P<message>.*))?$",
        )
        .expect("compiles");
        let r = p
            .parse("2026-11-30T10:00:05Z INFO 10.0.0.1 GET /health 200 3ms ok")
            .expect("match");
        assert_eq!(
            r.time.map(|t| format(&t)).as_deref(),
            Some("2026-11-30T10:00:05.000000Z")
        );
        assert_eq!(r.http.client_ip.as_deref(), Some("10.0.0.1"));
        assert_eq!(r.http.status, Some(200));
        assert_eq!(r.message.as_deref(), Some("ok"));
        assert_eq!(r.fields.len(), 1);
        assert_eq!(r.fields[0].0, "ms");
        assert!(p.parse("nope").is_err());
    }

    #[test]
    fn bad_patterns_are_refused_in_one_line() {
        let e = Pattern::new("(unclosed").expect_err("bad");
        assert!(
            e.starts_with("does not compile") && !e.contains('\n'),
            "{e}"
        );
        let e = Pattern::new(r"(\d+) plain").expect_err("unnamed");
        assert!(e.contains("named group"));
    }
}
