//! Log levels as written (`WARN`, `warning`, `30`, a syslog PRI) → UDM severity.
//!
//! Severity names are UDM's `SecurityResult.ProductSeverity`/`Severity` enum values.

use std::borrow::Cow;

/// A level: the text as written (for `security_result.severity_details`) and its severity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level<'a> {
    pub written: Cow<'a, str>,
    pub severity: Severity,
}

/// UDM `security_result.severity` values this project emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Unknown,
    Informational,
    Medium,
    Error,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "UNKNOWN_SEVERITY",
            Severity::Informational => "INFORMATIONAL",
            Severity::Medium => "MEDIUM",
            Severity::Error => "ERROR",
            Severity::Critical => "CRITICAL",
        }
    }
}

impl<'a> Level<'a> {
    /// A level word or number as written. Unknown words keep `UNKNOWN_SEVERITY`.
    pub fn from_text(written: Cow<'a, str>) -> Self {
        let severity = severity_of_text(&written);
        Level { written, severity }
    }

    /// A syslog severity (0 emerg … 7 debug), from a PRI or a numeric field.
    pub fn from_syslog(code: u8) -> Self {
        let (name, severity) = match code {
            0 => ("emerg", Severity::Critical),
            1 => ("alert", Severity::Critical),
            2 => ("crit", Severity::Critical),
            3 => ("err", Severity::Error),
            4 => ("warning", Severity::Medium),
            5 => ("notice", Severity::Informational),
            6 => ("info", Severity::Informational),
            _ => ("debug", Severity::Informational),
        };
        Level {
            written: Cow::Borrowed(name),
            severity,
        }
    }
}

/// The interface's table, case-insensitive; numbers are pino/bunyan levels (10 … 60) or
/// syslog severities (0 … 7).
pub fn severity_of_text(level: &str) -> Severity {
    let level = level.trim();
    if let Ok(n) = level.parse::<u32>() {
        return severity_of_number(n);
    }
    if level.len() > 16 {
        return Severity::Unknown;
    }
    let mut upper = [0u8; 16];
    for (dst, src) in upper.iter_mut().zip(level.bytes()) {
        *dst = src.to_ascii_uppercase();
    }
    match &upper[..level.len()] {
        b"TRACE" | b"DEBUG" | b"INFO" | b"NOTICE" | b"INFORMATION" | b"INFORMATIONAL"
        | b"VERBOSE" | b"FINE" | b"FINER" | b"FINEST" | b"D" | b"I" => Severity::Informational,
        b"WARN" | b"WARNING" | b"W" => Severity::Medium,
        b"ERROR" | b"ERR" | b"SEVERE" | b"E" => Severity::Error,
        b"CRITICAL" | b"CRIT" | b"FATAL" | b"ALERT" | b"EMERG" | b"EMERGENCY" | b"PANIC" | b"F" => {
            Severity::Critical
        }
        _ => Severity::Unknown,
    }
}

/// pino/bunyan: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal; 0 … 7 syslog.
pub fn severity_of_number(n: u32) -> Severity {
    match n {
        0..=2 => Severity::Critical,
        3 => Severity::Error,
        4 => Severity::Medium,
        5..=7 => Severity::Informational,
        10 | 20 | 30 => Severity::Informational,
        40 => Severity::Medium,
        50 => Severity::Error,
        60 => Severity::Critical,
        _ => Severity::Unknown,
    }
}

/// Whether a word (bracket- and colon-stripped) is a level name a text line would start
/// with. Single letters are not: `I` and `a` begin too many sentences.
pub fn is_level_word(word: &str) -> bool {
    word.len() > 1
        && word.len() <= 11
        && word.bytes().all(|b| b.is_ascii_alphabetic())
        && severity_of_text(word) != Severity::Unknown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_table() {
        for (level, want) in [
            ("DEBUG", "INFORMATIONAL"),
            ("info", "INFORMATIONAL"),
            ("TRACE", "INFORMATIONAL"),
            ("NOTICE", "INFORMATIONAL"),
            ("WARNING", "MEDIUM"),
            ("warn", "MEDIUM"),
            ("ERROR", "ERROR"),
            ("ERR", "ERROR"),
            ("CRITICAL", "CRITICAL"),
            ("FATAL", "CRITICAL"),
            ("ALERT", "CRITICAL"),
            ("EMERG", "CRITICAL"),
            ("PANIC", "CRITICAL"),
            ("30", "INFORMATIONAL"),
            ("40", "MEDIUM"),
            ("50", "ERROR"),
            ("60", "CRITICAL"),
            ("3", "ERROR"),
            ("7", "INFORMATIONAL"),
            ("99", "UNKNOWN_SEVERITY"),
            ("loud", "UNKNOWN_SEVERITY"),
            ("", "UNKNOWN_SEVERITY"),
            ("averyveryverylonglevelname", "UNKNOWN_SEVERITY"),
        ] {
            assert_eq!(severity_of_text(level).as_str(), want, "{level}");
        }
    }

    #[test]
    fn syslog_codes_and_level_words() {
        assert_eq!(Level::from_syslog(0).severity, Severity::Critical);
        assert_eq!(Level::from_syslog(3).written, "err");
        assert_eq!(Level::from_syslog(4).severity, Severity::Medium);
        assert_eq!(Level::from_syslog(6).severity, Severity::Informational);
        assert!(is_level_word("WARN") && is_level_word("error"));
        assert!(!is_level_word("I") && !is_level_word("the") && !is_level_word("40"));
    }
}
