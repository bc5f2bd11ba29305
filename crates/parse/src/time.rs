//! Reading the timestamps log lines actually carry, without allocating.
//!
//! ISO 8601 / RFC 3339 (with `T`, `t` or a space; `.` or `,` before the fraction, as Python's
//! logging and log4j write it; `Z`, `±hh:mm`, `±hhmm`, `±hh` or no zone), epoch numbers, the
//! BSD syslog `Oct 11 22:14:15` and the access log's `10/Oct/2000:13:55:36 -0700`.
//! A time without a zone is UTC: the zone of the pod that wrote it is unknowable here, and UTC
//! is what containers run in by default. Years past 9999 are refused: RFC 3339 output has four
//! digits, and downstream parsers reject `+10000-…`.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, SecondsFormat, TimeZone, Utc};

/// A whole string as a time (surrounding whitespace allowed).
pub fn parse_str(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    match iso_prefix(s.as_bytes()) {
        Some((t, used)) if used == s.len() => Some(t),
        _ => None,
    }
}

/// Unix time as a number: s, ms, µs or ns, told apart by magnitude (seconds stay below 1e11
/// until the year 5138, and so on by factors of 1000).
pub fn from_epoch(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let micros = if n < 1e11 {
        n * 1e6
    } else if n < 1e14 {
        n * 1e3
    } else if n < 1e17 {
        n
    } else {
        n / 1e3
    };
    if micros > 253_402_300_799_999_999.0 {
        return None;
    }
    Utc.timestamp_micros(micros as i64).single()
}

/// A decimal text (`1700000000`, `1700000000.25`) as an epoch time.
pub fn from_epoch_text(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() || s.len() > 24 || !s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    from_epoch(s.parse().ok()?)
}

/// A field value that should be a time: ISO text, else an epoch number written as text.
pub fn from_field_text(s: &str) -> Option<DateTime<Utc>> {
    parse_str(s).or_else(|| from_epoch_text(s))
}

/// RFC 3339, UTC, microseconds: `2026-11-23T23:10:01.123456Z`.
pub fn format(dt: &DateTime<Utc>) -> String {
    dt.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An ISO date-time at the start of `b`: the time and how many bytes it took.
/// `YYYY-MM-DD` or `YYYY/MM/DD`, a separator, `HH:MM:SS`, optional fraction, optional zone.
pub fn iso_prefix(b: &[u8]) -> Option<(DateTime<Utc>, usize)> {
    if b.len() < 19 {
        return None;
    }
    let year = digits(b, 0, 4)?;
    let dash = b[4];
    if !(dash == b'-' || dash == b'/') || b[7] != dash {
        return None;
    }
    let month = digits(b, 5, 2)?;
    let day = digits(b, 8, 2)?;
    if !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (hour, minute, second) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    let mut i = 19;
    let mut nanos = 0u32;
    if i + 1 < b.len() && matches!(b[i], b'.' | b',') && b[i + 1].is_ascii_digit() {
        i += 1;
        let mut scale = 100_000_000u32;
        while i < b.len() && b[i].is_ascii_digit() {
            nanos += u32::from(b[i] - b'0') * scale;
            scale /= 10;
            i += 1;
        }
    }
    let mut offset_secs = 0i32;
    match b.get(i) {
        Some(b'Z' | b'z') => i += 1,
        Some(&sign @ (b'+' | b'-')) => {
            if let Some((secs, used)) = zone(&b[i + 1..]) {
                offset_secs = if sign == b'-' { -secs } else { secs };
                i += 1 + used;
            }
        }
        _ => {}
    }
    let naive = NaiveDate::from_ymd_opt(year as i32, month, day)?.and_hms_nano_opt(
        hour,
        minute,
        second.min(59),
        nanos,
    )?;
    let t = FixedOffset::east_opt(offset_secs)?
        .from_local_datetime(&naive)
        .single()?
        .with_timezone(&Utc);
    // Truncated to microseconds, the precision of the output.
    let t = t - Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos() % 1000));
    (t.year() <= 9999).then_some((t, i))
}

/// `hh:mm`, `hhmm` or `hh` after a zone sign: seconds east and bytes used.
fn zone(b: &[u8]) -> Option<(i32, usize)> {
    let hours = digits(b, 0, 2)?;
    let (minutes, used) = if b.get(2) == Some(&b':') {
        (digits(b, 3, 2)?, 5)
    } else if let Some(m) = digits(b, 2, 2) {
        (m, 4)
    } else {
        (0, 2)
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(((hours * 3600 + minutes * 60) as i32, used))
}

fn digits(b: &[u8], at: usize, n: usize) -> Option<u32> {
    let s = b.get(at..at + n)?;
    s.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

fn month(b: &[u8]) -> Option<u32> {
    let m = b.get(..3)?;
    MONTHS
        .iter()
        .position(|name| name.eq_ignore_ascii_case(m))
        .map(|i| i as u32 + 1)
}

/// The BSD syslog time `Mmm dd hh:mm:ss` (day space-padded) at the start of `b`. It has no
/// year: the year of `reference` (the collection time), or the one before when that would
/// put the line more than a day in the future (a December line read in January).
pub fn bsd_prefix(b: &[u8], reference: DateTime<Utc>) -> Option<(DateTime<Utc>, usize)> {
    if b.len() < 15 || b[3] != b' ' || b[6] != b' ' || b[9] != b':' || b[12] != b':' {
        return None;
    }
    let m = month(b)?;
    let day = match (b[4], b[5]) {
        (b' ', d) if d.is_ascii_digit() => u32::from(d - b'0'),
        _ => digits(b, 4, 2)?,
    };
    let (hour, minute, second) = (digits(b, 7, 2)?, digits(b, 10, 2)?, digits(b, 13, 2)?);
    let at = |year: i32| {
        NaiveDate::from_ymd_opt(year, m, day)?
            .and_hms_opt(hour, minute, second.min(59))
            .map(|n| n.and_utc())
    };
    let mut year = reference.year();
    let mut t = at(year);
    if t.is_some_and(|t| t > reference + Duration::days(1)) || t.is_none() {
        year -= 1;
        t = at(year);
    }
    // A fraction (`Oct 11 22:14:15.123`, rsyslog's high-precision option) is kept.
    let mut i = 15;
    let mut t = t?;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut scale = 100_000u32;
        let mut micros = 0u32;
        while i < b.len() && b[i].is_ascii_digit() {
            micros += u32::from(b[i] - b'0') * scale;
            scale /= 10;
            i += 1;
        }
        t += Duration::microseconds(i64::from(micros));
    }
    Some((t, i))
}

/// The access log's `10/Oct/2000:13:55:36 -0700` (the text between the brackets).
pub fn clf(s: &str) -> Option<DateTime<Utc>> {
    let b = s.as_bytes();
    if b.len() < 20 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' {
        return None;
    }
    let day = digits(b, 0, 2)?;
    let m = month(&b[3..])?;
    let year = digits(b, 7, 4)?;
    let (hour, minute, second) = (digits(b, 12, 2)?, digits(b, 15, 2)?, digits(b, 18, 2)?);
    let naive =
        NaiveDate::from_ymd_opt(year as i32, m, day)?.and_hms_opt(hour, minute, second.min(59))?;
    let mut offset = 0;
    let rest = s[20..].trim_start();
    if let Some(sign @ (b'+' | b'-')) = rest.bytes().next() {
        let (secs, _) = zone(&rest.as_bytes()[1..])?;
        offset = if sign == b'-' { -secs } else { secs };
    }
    let t = FixedOffset::east_opt(offset)?
        .from_local_datetime(&naive)
        .single()?
        .with_timezone(&Utc);
    (t.year() <= 9999).then_some(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(s: &str) -> Option<String> {
        parse_str(s).map(|t| format(&t))
    }

    #[test]
    fn iso_forms() {
        for (input, want) in [
            ("2026-11-23T23:10:01.123456Z", "2026-11-23T23:10:01.123456Z"),
            ("2026-11-23T23:10:01+02:00", "2026-11-23T21:10:01.000000Z"),
            ("2026-11-23 23:10:01.5-0130", "2026-11-24T00:40:01.500000Z"),
            (
                "2026-11-23t23:10:01.123456789z",
                "2026-11-23T23:10:01.123456Z",
            ),
            // Python logging's default asctime; log4j's ISO8601 pattern.
            ("2026-11-30 10:00:05,789", "2026-11-30T10:00:05.789000Z"),
            ("2024-03-01T12:00:00", "2024-03-01T12:00:00.000000Z"),
            ("2024/03/01 12:00:00", "2024-03-01T12:00:00.000000Z"),
            ("2024-03-01T12:00:00+05", "2024-03-01T07:00:00.000000Z"),
            ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59.000000Z"),
        ] {
            assert_eq!(iso(input).as_deref(), Some(want), "{input}");
        }
        for bad in [
            "yesterday",
            "",
            "2024-13-01T00:00:00",
            "2024-01-01",
            "2024-01-01T00:00:00 trailing",
            "9999-12-31T23:59:59-01:00",
            "ééééééééééééééééééééé",
        ] {
            assert_eq!(iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn epochs_in_every_unit() {
        let want = Some("2023-11-14T22:13:20.000000Z".to_string());
        for n in [1.7e9, 1.7e12, 1.7e15, 1.7e18] {
            assert_eq!(from_epoch(n).map(|t| format(&t)), want, "{n}");
        }
        assert_eq!(
            from_epoch_text("1700000000.25")
                .map(|t| format(&t))
                .as_deref(),
            Some("2023-11-14T22:13:20.250000Z")
        );
        assert_eq!(from_epoch(-1.0), None);
        assert_eq!(from_epoch(f64::NAN), None);
        assert_eq!(from_epoch(1e300), None);
        assert_eq!(from_epoch_text("12a"), None);
    }

    #[test]
    fn bsd_and_clf() {
        let reference = parse_str("2026-01-02T00:00:00Z").expect("ref");
        // RFC 3164 section 5.4's example; read in January, it is last year's October.
        let (t, used) = bsd_prefix(b"Oct 11 22:14:15 mymachine su: x", reference).expect("bsd");
        assert_eq!(format(&t), "2025-10-11T22:14:15.000000Z");
        assert_eq!(used, 15);
        let (t, _) = bsd_prefix(b"Jan  2 00:10:00 host", reference).expect("padded day");
        assert_eq!(format(&t), "2026-01-02T00:10:00.000000Z");
        assert!(bsd_prefix(b"Foo 11 22:14:15 host", reference).is_none());
        // Apache's documentation example.
        assert_eq!(
            clf("10/Oct/2000:13:55:36 -0700")
                .map(|t| format(&t))
                .as_deref(),
            Some("2000-10-10T20:55:36.000000Z")
        );
        assert_eq!(clf("10/Foo/2000:13:55:36 -0700"), None);
    }
}
