//! The formats a line can be parsed as, and how the choice is configured.

use std::fmt;
use std::str::FromStr;

/// A parser. Its name is the `format` label of the subscriber's metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Logfmt,
    Syslog,
    /// Apache/nginx common and combined access logs.
    Combined,
    Text,
    Regex,
}

impl Format {
    pub const ALL: [Format; 6] = [
        Format::Json,
        Format::Logfmt,
        Format::Syslog,
        Format::Combined,
        Format::Text,
        Format::Regex,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Logfmt => "logfmt",
            Format::Syslog => "syslog",
            Format::Combined => "combined",
            Format::Text => "text",
            Format::Regex => "regex",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `REDTAIL_PARSE`: decide per line, or force one parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParseMode {
    #[default]
    Auto,
    Forced(Format),
}

impl FromStr for ParseMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(ParseMode::Auto);
        }
        Format::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .map(ParseMode::Forced)
            .ok_or_else(|| {
                format!(
                    "expected one of auto, json, logfmt, syslog, combined, text, regex, got {s:?}"
                )
            })
    }
}

impl fmt::Display for ParseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseMode::Auto => f.write_str("auto"),
            ParseMode::Forced(format) => format.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Format::ALL {
            let mode: ParseMode = f.as_str().parse().expect("known");
            assert_eq!(mode, ParseMode::Forced(f));
            assert_eq!(mode.to_string(), f.as_str());
        }
        assert_eq!("auto".parse(), Ok(ParseMode::Auto));
        assert!("JSON".parse::<ParseMode>().is_err());
        assert!("xml".parse::<ParseMode>().is_err());
    }
}
