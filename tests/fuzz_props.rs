//! Property-based fuzzing (proptest) of the two parsers that take untrusted
//! bytes: the tailer's line framer (through the public `Tailer`, on a real
//! file written in arbitrary chunks) and the subscriber's line → UDM parser.
//!
//! CI runs a short bounded pass; a long local run:
//! `PROPTEST_CASES=20000 cargo test --test fuzz_props --release`
//! (a failure prints the minimal input; proptest also saves it under
//! `tests/fuzz_props.proptest-regressions` so it is replayed first next time).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use redtail_subscriber::timestamp;
use redtail_subscriber::udm::{render, LineContext, Options, Parser};
use redtail_subscriber::ParseMode;
use redtail_tail::{KnownFile, NoEvents, StartAt, TailConfig, TailItem, Tailer};
use serde_json::{Map, Value};

/// PROPTEST_CASES when set, else `default` (a bounded run that suits CI).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        // Keep shrinking bounded so a failure in CI still reports quickly.
        max_shrink_iters: 2_000,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------ the framer

/// One delivered (or expected) line: offset, end, kept bytes, truncated.
type Framed = (u64, u64, Vec<u8>, bool);

/// What the framer must produce for `content`: every complete line, without
/// its `\n` and one `\r` before it, cut to `max_line` bytes and flagged when longer.
fn reference(content: &[u8], max_line: usize) -> Vec<Framed> {
    let mut out = Vec::new();
    let mut start = 0usize;
    for (i, &b) in content.iter().enumerate() {
        if b != b'\n' {
            continue;
        }
        let mut line = &content[start..i];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let kept = &line[..line.len().min(max_line)];
        out.push((
            start as u64,
            i as u64 + 1,
            kept.to_vec(),
            line.len() > max_line,
        ));
        start = i + 1;
    }
    out
}

/// Bytes with many line breaks and carriage returns, and any other byte value.
fn chunk() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            3 => Just(b'\n'),
            2 => Just(b'\r'),
            6 => b'a'..=b'z',
            2 => any::<u8>(),
        ],
        0..96,
    )
}

fn tail_config(path: &Path, max_line: usize, read_buf: usize) -> TailConfig {
    TailConfig {
        start_at: StartAt::Beginning,
        max_line_bytes: max_line,
        read_buffer_bytes: read_buf,
        poll_interval: Duration::from_millis(5),
        ..TailConfig::new(path)
    }
}

/// Drains the tailer until the delivered lines reach `want_end` (the end of
/// the last complete line in the file).
fn drain(
    tailer: &mut Tailer,
    max_lines: usize,
    want_end: u64,
    out: &mut Vec<Framed>,
    id: &mut Option<redtail_tail::FileId>,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reached = out.last().map_or(0, |l| l.1);
        match tailer.next_item(max_lines, 1 << 20).expect("next_item") {
            Some(TailItem::Opened { id: opened, .. }) => *id = Some(opened),
            Some(TailItem::Lines(batch)) => {
                for (i, line) in batch.lines.iter().enumerate() {
                    out.push((
                        line.offset,
                        line.end,
                        batch.line(i).to_vec(),
                        line.truncated,
                    ));
                }
            }
            Some(TailItem::Finished { .. }) | Some(TailItem::Deleted { .. }) => {
                panic!("the file was not rotated")
            }
            None if reached >= want_end => return,
            None => {
                assert!(
                    Instant::now() < deadline,
                    "stuck at {reached} of {want_end}"
                );
                tailer.wait(Duration::from_millis(5));
            }
        }
    }
}

proptest! {
    #![proptest_config(config(cases(48)))]

    /// Arbitrary bytes appended in arbitrary pieces, read with tiny buffers and
    /// line limits, with one crash-restart from the last delivered line end:
    /// the lines are exactly the reference's — offsets, bytes, cut flags — with
    /// no gap, no duplicate, and nothing delivered before its `\n` arrived.
    #[test]
    fn framer_matches_reference(
        chunks in prop::collection::vec(chunk(), 1..12),
        max_line in 1usize..40,
        read_buf in 1usize..24,
        max_lines in 1usize..8,
        restart_after in any::<prop::sample::Index>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        std::fs::write(&path, b"").unwrap();
        let mut tailer = Tailer::new(tail_config(&path, max_line, read_buf), vec![], Arc::new(NoEvents)).unwrap();
        let restart_at = restart_after.index(chunks.len());
        let mut written = Vec::new();
        let mut got = Vec::new();
        let mut id = None;
        for (i, piece) in chunks.iter().enumerate() {
            std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(piece).unwrap();
            written.extend_from_slice(piece);
            let want_end = written.iter().rposition(|&b| b == b'\n').map_or(0, |p| p as u64 + 1);
            drain(&mut tailer, max_lines, want_end, &mut got, &mut id);
            if i == restart_at {
                if let Some(fid) = id {
                    let offset = got.last().map_or(0, |l| l.1);
                    tailer = Tailer::new(
                        tail_config(&path, max_line, read_buf),
                        vec![KnownFile { id: fid, path: path.clone(), offset, size: None, check: None, deleted: false }],
                        Arc::new(NoEvents),
                    ).unwrap();
                    id = None;
                }
            }
        }
        let want = reference(&written, max_line);
        prop_assert_eq!(got.len(), want.len(), "line count; got {:?}", got);
        for (g, w) in got.iter().zip(&want) {
            prop_assert_eq!(g, w);
        }
    }
}

// ------------------------------------------------------------ the UDM parser

fn ingested() -> DateTime<Utc> {
    timestamp::from_micros(1_764_000_000_000_000).expect("a valid time")
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Decimals as logs carry them. (Arbitrary 17-digit floats come back one
        // ULP off: serde_json parses without its `float_roundtrip` feature.)
        (-1_000_000_000i64..1_000_000_000).prop_map(|n| Value::from(n as f64 / 1000.0)),
        ".{0,24}".prop_map(Value::from),
        timestamp_text().prop_map(Value::from),
        prop::sample::select(vec![
            "DEBUG", "info", "WARNING", "warn", "ERROR", "CRITICAL", "fatal", "TRACE", ""
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Timestamps as producers write them, well and badly formed.
fn timestamp_text() -> impl Strategy<Value = String> {
    (
        0u32..10_000,
        0u32..14,
        0u32..33,
        0u32..25,
        0u32..61,
        0u32..61,
        0u32..1_000_000,
        prop::sample::select(vec!["Z", "+02:00", "-0530", "", "+14:00", "z", " UTC"]),
        prop::sample::select(vec!["T", " ", "t", "X"]),
    )
        .prop_map(|(y, mo, d, h, mi, s, us, zone, sep)| {
            format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{s:02}.{us:06}{zone}")
        })
}

/// Objects whose keys are mostly the ones the parser gives meaning to.
fn log_object() -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        4 => prop::sample::select(vec![
            "timestamp", "level", "type", "severity", "message", "msg", "host",
            "hostname", "seq", "service",
        ])
        .prop_map(str::to_string),
        1 => ".{0,10}",
    ];
    prop::collection::btree_map(key, json_value(), 0..10).prop_map(|m| m.into_iter().collect())
}

/// Where the parser must put a log object's fields.
struct Expected {
    level: Option<String>,
    message: Option<String>,
    host: Option<String>,
    service: Option<String>,
    time: Option<DateTime<Utc>>,
    /// Everything else, unchanged, in `additional`.
    rest: Map<String, Value>,
}

/// The parser's documented behaviour, written independently: which field
/// feeds which UDM field (the first alias holding a scalar; the message takes
/// any value), and what stays in `additional`.
fn expected(mut fields: Map<String, Value>) -> Expected {
    let text = |v: Value| match v {
        Value::String(s) => s,
        other => other.to_string(),
    };
    let scalar = |v: &Value| !(v.is_null() || v.is_object() || v.is_array());
    let mut take = |keys: &[&str], any: bool| {
        let key = keys.iter().find(|k| {
            fields
                .get(**k)
                .is_some_and(|v| if any { !v.is_null() } else { scalar(v) })
        })?;
        fields.remove(*key).map(text)
    };
    let level = take(&["level", "type", "severity"], false);
    let message = take(&["message", "msg"], true);
    let host = take(&["host", "hostname"], false);
    // `service` names the product and stays in `additional` too.
    let service = fields
        .get("service")
        .filter(|v| scalar(v))
        .cloned()
        .map(text);
    let time = match fields.get("timestamp") {
        Some(Value::String(s)) => redtail_parse::time::from_field_text(s),
        Some(v @ Value::Number(_)) => timestamp::parse_timestamp(v),
        _ => None,
    };
    if time.is_some() {
        fields.remove("timestamp");
    }
    Expected {
        level,
        message,
        host,
        service,
        time,
        rest: fields,
    }
}

/// Lines in every format the parsers know, well and badly formed.
fn mixed_line() -> impl Strategy<Value = Vec<u8>> {
    let word = "[a-zA-Z0-9=\\\"\\[\\]<>:/. -]{0,12}";
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        ".{0,64}".prop_map(String::into_bytes),
        log_object().prop_map(|m| serde_json::to_vec(&Value::Object(m)).unwrap()),
        (0u8..200, word, word)
            .prop_map(
                |(p, a, b)| format!("<{p}>1 2026-11-30T10:00:05Z {a} {b} - - - m").into_bytes()
            ),
        (word, word).prop_map(|(a, b)| format!("<13>Dec  1 22:14:15 {a} {b}: msg").into_bytes()),
        (word, word, 100u16..700).prop_map(|(a, b, s)| format!(
            "{a} - {b} [10/Oct/2000:13:55:36 -0700] \"GET /{a} HTTP/1.0\" {s} 1 \"{b}\" \"{a}"
        )
        .into_bytes()),
        (word, word).prop_map(|(a, b)| format!("level={a} msg=\"{b}\" user={a}").into_bytes()),
        (word, timestamp_text())
            .prop_map(|(a, t)| format!("{t} WARN user {a} logged in\n\tat x\n{a}").into_bytes()),
    ]
}

/// JSON objects written by hand, so keys may repeat: the time aliases, holding times,
/// epochs, nulls, objects and anything else, in any order.
fn time_object() -> impl Strategy<Value = Vec<u8>> {
    let key = prop::sample::select(vec![
        "timestamp",
        "time",
        "ts",
        "@timestamp",
        "datetime",
        "msg",
        "t\\u0073",
    ]);
    let value = prop_oneof![
        timestamp_text().prop_map(Value::from),
        (-2_000_000_000_000i64..2_000_000_000_000_000_000).prop_map(Value::from),
        json_value(),
    ];
    prop::collection::vec((key, value), 0..6).prop_map(|pairs| {
        let body: Vec<String> = pairs.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
        format!("{{{}}}", body.join(",")).into_bytes()
    })
}

fn any_mode() -> impl Strategy<Value = ParseMode> {
    prop::sample::select(vec![
        "auto", "json", "logfmt", "syslog", "combined", "text", "regex",
    ])
    .prop_map(|m| m.parse().unwrap())
}

proptest! {
    #![proptest_config(config(cases(512)))]

    /// Any bytes, any parser, any cap: exactly one event — one line of valid JSON
    /// within the cap, with the UDM shape — never a panic; the parse-error marker
    /// on invalid UTF-8.
    #[test]
    fn udm_is_total_on_arbitrary_bytes(
        bytes in mixed_line(),
        padding in 0usize..40_000,
        mode in any_mode(),
        max in 16_384usize..30_000,
        truncated in any::<bool>(),
    ) {
        let mut bytes = bytes;
        // Some events far over the cap, with bytes that need escaping.
        bytes.extend(std::iter::repeat_n(b'\x01', padding));
        let regex = (mode == ParseMode::Forced(redtail_parse::Format::Regex))
            .then_some(r"^(?P<level>\w+) (?P<message>.*)$");
        let parser = Parser::new(mode, regex).unwrap();
        let opts = Options { max_event_bytes: max, ..Options::default() };
        let ctx = LineContext { source: Some("pod-1"), truncated, ..LineContext::default() };
        let mut buf = Vec::new();
        let r = render(&parser, Some(&bytes), ctx.to_parse(true), &opts, ingested(), &mut buf);
        prop_assert_eq!(buf.last(), Some(&b'\n'));
        let line = &buf[..buf.len() - 1];
        prop_assert!(!line.contains(&b'\n'));
        prop_assert!(line.len() <= max, "{} > {}", line.len(), max);
        let e: Value = serde_json::from_slice(line).unwrap();
        prop_assert!(matches!(
            e["metadata"]["event_type"].as_str(),
            Some("GENERIC_EVENT" | "USER_LOGIN" | "USER_LOGOUT" | "NETWORK_HTTP")
        ));
        let results = e["security_result"].as_array().unwrap();
        prop_assert_eq!(results.len(), 1);
        prop_assert!(matches!(
            results[0]["severity"].as_str(),
            Some("INFORMATIONAL" | "MEDIUM" | "ERROR" | "CRITICAL" | "UNKNOWN_SEVERITY")
        ));
        prop_assert!(e["metadata"]["event_timestamp"].as_str().and_then(timestamp::parse_str).is_some());
        if std::str::from_utf8(&bytes).is_err() {
            prop_assert_eq!(r.parse_error, Some("invalid UTF-8"));
            prop_assert_eq!(&e["additional"]["parse_error"], "invalid UTF-8");
        }
        prop_assert_eq!(r.cut, e["additional"]["event_cut"] == Value::Bool(true));
        if truncated {
            prop_assert_eq!(&e["additional"]["truncated"], &Value::Bool(true));
        }
    }

    /// Well-formed objects: every field lands where the interface says, and all
    /// the others are kept unchanged in `additional`.
    #[test]
    fn udm_maps_fields_as_documented(fields in log_object()) {
        let line = serde_json::to_vec(&Value::Object(fields.clone())).unwrap();
        let parser = Parser::new(ParseMode::Auto, None).unwrap();
        let mut buf = Vec::new();
        let r = render(&parser, Some(&line), LineContext::default().to_parse(true), &Options::default(), ingested(), &mut buf);
        prop_assert!(r.parse_error.is_none());
        let Expected { level, message, host, service, time, rest } = expected(fields);
        let e: Value = serde_json::from_slice(&buf).unwrap();
        prop_assert_eq!(
            e["security_result"][0]["severity"].as_str().unwrap(),
            level.as_deref().map_or("UNKNOWN_SEVERITY", |l| redtail_parse::level::severity_of_text(l).as_str())
        );
        prop_assert_eq!(e["metadata"]["description"].as_str(), message.as_deref());
        prop_assert_eq!(e["principal"]["hostname"].as_str(), host.as_deref());
        prop_assert_eq!(e["metadata"]["product_name"].as_str(), Some(service.as_deref().unwrap_or("redtail")));
        prop_assert_eq!(r.line_time, time);
        prop_assert_eq!(
            e["metadata"]["event_timestamp"].as_str().unwrap(),
            timestamp::format(&time.unwrap_or_else(ingested))
        );
        let mut additional = e["additional"].as_object().unwrap().clone();
        additional.remove("event_time_from");
        prop_assert_eq!(&additional, &rest);
    }

    /// The raw-output shortcut (`Parser::stamp`) tells of every line exactly what the
    /// full parse tells: format, time and parse error, for one line or an event of several.
    #[test]
    fn stamp_agrees_with_parse(
        first in prop_oneof![mixed_line(), time_object()],
        second in prop::option::of(prop_oneof![mixed_line(), time_object()]),
        mode in any_mode(),
    ) {
        let mut bytes = first;
        if let Some(more) = second {
            bytes.push(b'\n');
            bytes.extend(more);
        }
        let text = String::from_utf8_lossy(&bytes);
        let regex = (mode == ParseMode::Forced(redtail_parse::Format::Regex))
            .then_some(r"^(?P<level>\w+) (?P<message>.*)$");
        let parser = Parser::new(mode, regex).unwrap();
        let r = parser.parse(&text, ingested());
        let s = parser.stamp(&text, ingested());
        prop_assert_eq!((s.format, s.time, s.error), (r.format, r.time, r.error));
    }

    /// Timestamps: never a panic on any text; a zone-less time is UTC; an
    /// offset is applied.
    #[test]
    fn timestamps_parse_or_refuse(text in prop_oneof![".{0,40}", timestamp_text()],
                                  secs in 0i64..4_102_444_800, us in 0i64..1_000_000,
                                  offset_min in -840i32..=840) {
        let _ = timestamp::parse_str(&text);
        let _ = timestamp::parse_timestamp(&Value::from(text.as_str()));
        let t = timestamp::from_micros(secs * 1_000_000 + us).unwrap();
        let naive = t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string();
        prop_assert_eq!(timestamp::parse_str(&naive), Some(t));
        prop_assert_eq!(timestamp::parse_str(&naive.replacen('T', " ", 1)), Some(t));
        let zone = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
        let local = t.with_timezone(&zone).to_rfc3339();
        prop_assert_eq!(timestamp::parse_str(&local), Some(t));
    }
}
