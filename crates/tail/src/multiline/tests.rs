//! The aggregator's own rules: offsets, caps, timeouts, gaps, parsing of modes.

use super::*;

pub(super) fn config(mode: MultilineMode) -> MultilineConfig {
    MultilineConfig {
        mode,
        ..MultilineConfig::default()
    }
}

/// Feeds `text`'s lines (offsets as in a file) and finishes.
pub(super) fn group(config: MultilineConfig, text: &str) -> Vec<Event> {
    let t0 = Instant::now();
    let mut agg = Aggregator::new(config);
    let mut out = Vec::new();
    let mut offset = 0u64;
    for line in text.split_terminator('\n') {
        let end = offset + line.len() as u64 + 1;
        let l = InLine {
            offset,
            end,
            data: line.as_bytes(),
            truncated: false,
        };
        agg.push(l, t0, &mut out);
        offset = end;
    }
    out.extend(agg.finish());
    out
}

fn texts(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| String::from_utf8_lossy(&e.data).into_owned())
        .collect()
}

#[test]
fn modes_parse_and_bad_combinations_are_refused() {
    for (name, want) in [
        ("off", "off"),
        ("JAVA", "java"),
        (" python ", "python"),
        ("go", "go"),
        ("indented", "indented"),
    ] {
        assert_eq!(MultilineMode::parse(name, None).unwrap().name(), want);
    }
    let regex = MultilineMode::parse("regex", Some(r"^\d{4}-")).unwrap();
    assert_eq!(regex.name(), "regex");
    let err = |name, start| MultilineMode::parse(name, start).unwrap_err();
    assert_eq!(err("ruby", None).reason(), "unknown_mode");
    assert_eq!(err("regex", None), MultilineError::MissingStart);
    assert_eq!(err("java", Some("^x")), MultilineError::UnusedStart);
    let bad = err("regex", Some("(unclosed"));
    assert_eq!(bad.reason(), "bad_start");
    let text = bad.to_string();
    assert!(!text.contains('\n'), "one line: {text}");
    assert!(text.contains("unclosed group"), "{text}");
}

#[test]
fn config_check_refuses_zero_caps() {
    assert!(MultilineConfig::default().check().is_ok());
    let zero_lines = MultilineConfig {
        max_lines: 0,
        ..MultilineConfig::default()
    };
    assert!(zero_lines.check().is_err());
    let zero_timeout = MultilineConfig {
        timeout: Duration::ZERO,
        ..MultilineConfig::default()
    };
    assert!(zero_timeout.check().is_err());
}

#[test]
fn off_passes_every_line_through_at_once() {
    let mut agg = Aggregator::new(config(MultilineMode::Off));
    let mut out = Vec::new();
    let t0 = Instant::now();
    let line = InLine {
        offset: 10,
        end: 17,
        data: b"\tat x()",
        truncated: true,
    };
    agg.push(line, t0, &mut out);
    assert_eq!(
        out,
        vec![Event {
            offset: 10,
            end: 17,
            data: b"\tat x()".to_vec(),
            lines: 1,
            truncated: true
        }]
    );
    assert_eq!(agg.open_offset(), None);
    assert_eq!(agg.deadline(), None);
    assert_eq!(agg.finish(), None);
}

#[test]
fn indented_lines_join_and_offsets_span_the_event() {
    let events = group(config(MultilineMode::Indented), "a\n b\n\tc\nd\n");
    assert_eq!(texts(&events), vec!["a\n b\n\tc", "d"]);
    assert_eq!(
        (events[0].offset, events[0].end, events[0].lines),
        (0, 8, 3)
    );
    assert_eq!(
        (events[1].offset, events[1].end, events[1].lines),
        (8, 10, 1)
    );
}

#[test]
fn regex_start_pattern_starts_events() {
    let start = regex::bytes::Regex::new(r"^\d{4}-\d{2}-\d{2} ").unwrap();
    let text = "junk before\n2026-11-30 10:00:00 one\nmore\nand more\n2026-11-30 10:00:01 two\n";
    let events = group(config(MultilineMode::Regex(start)), text);
    assert_eq!(
        texts(&events),
        vec![
            "junk before",
            "2026-11-30 10:00:00 one\nmore\nand more",
            "2026-11-30 10:00:01 two"
        ]
    );
}

#[test]
fn timeout_emits_the_open_event_and_the_next_line_starts_fresh() {
    let t0 = Instant::now();
    let mut agg = Aggregator::new(config(MultilineMode::Indented));
    let mut out = Vec::new();
    let line = |offset: u64, data: &'static [u8]| InLine {
        offset,
        end: offset + data.len() as u64 + 1,
        data,
        truncated: false,
    };
    agg.push(line(0, b"head"), t0, &mut out);
    agg.push(line(5, b" more"), t0 + Duration::from_millis(600), &mut out);
    assert!(out.is_empty());
    assert_eq!(agg.open_offset(), Some(0));
    // The timeout counts from the last line, not the first.
    assert_eq!(agg.deadline(), Some(t0 + Duration::from_millis(1600)));
    assert_eq!(agg.flush_due(t0 + Duration::from_millis(1599)), None);
    let e = agg.flush_due(t0 + Duration::from_millis(1600)).unwrap();
    assert_eq!((e.offset, e.end, e.lines), (0, 11, 2));
    assert_eq!(agg.open_offset(), None);
    assert_eq!(agg.deadline(), None);
    // A continuation arriving late is an event of its own.
    agg.push(line(11, b" late"), t0 + Duration::from_secs(5), &mut out);
    assert!(out.is_empty());
    assert_eq!(agg.finish().unwrap().data, b" late");
}

#[test]
fn line_cap_cuts_the_event_and_keeps_the_line() {
    let mut c = config(MultilineMode::Indented);
    c.max_lines = 2;
    let events = group(c, "a\n 1\n 2\n 3\nb\n");
    assert_eq!(texts(&events), vec!["a\n 1", " 2\n 3", "b"]);
    assert_eq!(
        events.iter().map(|e| e.truncated).collect::<Vec<_>>(),
        vec![true, false, false],
        "only an event that was cut is flagged; one that ended at the cap is not"
    );
}

#[test]
fn byte_cap_cuts_before_the_line_that_does_not_fit() {
    let mut c = config(MultilineMode::Indented);
    c.max_bytes = 8;
    // "a\n 1\n 2" is 7 bytes; adding "\n 3" would make 10.
    let events = group(c, "a\n 1\n 2\n 3\n");
    assert_eq!(texts(&events), vec!["a\n 1\n 2", " 3"]);
    assert!(events[0].truncated);
    assert_eq!(events[1].offset, events[0].end);
    // A single line above the cap (only if the framer's limit is larger) is cut.
    let mut c = config(MultilineMode::Java);
    c.max_bytes = 4;
    let events = group(c, "abcdefgh\n");
    assert_eq!(texts(&events), vec!["abcd"]);
    assert!(events[0].truncated);
    assert_eq!(events[0].end, 9, "the whole line is consumed");
}

#[test]
fn a_gap_in_offsets_ends_the_event() {
    let t0 = Instant::now();
    let mut agg = Aggregator::new(config(MultilineMode::Indented));
    let mut out = Vec::new();
    agg.push(
        InLine {
            offset: 0,
            end: 2,
            data: b"a",
            truncated: false,
        },
        t0,
        &mut out,
    );
    agg.push(
        InLine {
            offset: 100,
            end: 103,
            data: b" b",
            truncated: false,
        },
        t0,
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].offset, out[0].end), (0, 2));
    assert_eq!(agg.open_offset(), Some(100));
}

#[test]
fn a_cut_line_marks_its_event() {
    let t0 = Instant::now();
    let mut agg = Aggregator::new(config(MultilineMode::Indented));
    let mut out = Vec::new();
    agg.push(
        InLine {
            offset: 0,
            end: 2,
            data: b"a",
            truncated: false,
        },
        t0,
        &mut out,
    );
    agg.push(
        InLine {
            offset: 2,
            end: 50,
            data: b" bbb",
            truncated: true,
        },
        t0,
        &mut out,
    );
    let e = agg.finish().unwrap();
    assert!(e.truncated);
    assert_eq!((e.offset, e.end, e.lines), (0, 50, 2));
}
