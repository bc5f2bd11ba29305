use chrono::TimeZone;
use serde_json::json;

use super::*;

fn ingested() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 23, 10, 2).unwrap()
}

fn collected() -> DateTime<Utc> {
    Utc.timestamp_micros(1_795_475_401_500_000).unwrap()
}

fn ctx() -> LineContext<'static> {
    LineContext {
        source: Some("pod-a"),
        path: Some("/var/log/app/app.log"),
        offset: Some(1234),
        file_id: Some("2049:77"),
        stream_id: Some("1795475401500-0"),
        truncated: false,
        collected: Some(collected()),
        extra: &[],
    }
}

fn udm(line: &[u8]) -> UdmEvent {
    to_udm(Some(line), &ctx(), ingested(), "redtail")
}

#[test]
fn generator_line() {
    let line = br#"{"timestamp":"2026-11-23T23:10:01.123456Z","level":"INFO","message":"user logged in","seq":7,"service":"app","host":"web-1"}"#;
    let out = udm(line);
    assert_eq!(out.parse_error, None);
    assert_eq!(
        out.event,
        json!({
            "metadata": {
                "event_timestamp": "2026-11-23T23:10:01.123456Z",
                "collected_timestamp": "2026-11-23T23:10:01.500000Z",
                "ingested_timestamp": "2026-11-23T23:10:02.000000Z",
                "event_type": "GENERIC_EVENT",
                "product_name": "redtail",
                "vendor_name": "redtail",
                "description": "user logged in",
            },
            "principal": {"hostname": "web-1"},
            "security_result": {"severity": "INFORMATIONAL", "severity_details": "INFO"},
            "additional": {
                "seq": 7,
                "service": "app",
                "source": "pod-a",
                "path": "/var/log/app/app.log",
                "offset": 1234,
                "file_id": "2049:77",
                "stream_id": "1795475401500-0",
            },
        })
    );
    assert_eq!(out.line_time, Some(out.event_time));
    assert_eq!(
        timestamp::format(&out.event_time),
        "2026-11-23T23:10:01.123456Z"
    );
}

#[test]
fn classic_line_with_type_and_naive_timestamp() {
    let line = br#"{"timestamp": "2024-05-06T07:08:09.123456", "type": "warning", "msg": "disk 91% full", "hostname": "legacy"}"#;
    let out = udm(line);
    assert_eq!(out.parse_error, None);
    let e = &out.event;
    assert_eq!(
        e["metadata"]["event_timestamp"],
        "2024-05-06T07:08:09.123456Z"
    );
    assert_eq!(e["metadata"]["description"], "disk 91% full");
    assert_eq!(e["principal"]["hostname"], "legacy");
    assert_eq!(e["security_result"]["severity"], "MEDIUM");
    assert_eq!(e["security_result"]["severity_details"], "warning");
    assert!(
        e["additional"].get("type").is_none(),
        "consumed as the level"
    );
    assert!(e["additional"].get("msg").is_none());
}

#[test]
fn level_wins_over_type_and_severity() {
    let out = udm(br#"{"level":"ERROR","type":"audit","severity":"low"}"#);
    assert_eq!(out.event["security_result"]["severity"], "ERROR");
    assert_eq!(out.event["additional"]["type"], "audit");
    assert_eq!(out.event["additional"]["severity"], "low");
    let out = udm(br#"{"severity":"fatal"}"#);
    assert_eq!(out.event["security_result"]["severity"], "CRITICAL");
}

#[test]
fn severity_table() {
    for (level, want) in [
        ("DEBUG", "INFORMATIONAL"),
        ("debug", "INFORMATIONAL"),
        ("INFO", "INFORMATIONAL"),
        ("Info", "INFORMATIONAL"),
        ("WARNING", "MEDIUM"),
        ("WARN", "MEDIUM"),
        ("ERROR", "ERROR"),
        ("CRITICAL", "CRITICAL"),
        ("FATAL", "CRITICAL"),
        ("TRACE", "UNKNOWN_SEVERITY"),
        ("", "UNKNOWN_SEVERITY"),
        ("30", "UNKNOWN_SEVERITY"),
    ] {
        assert_eq!(severity(level), want, "{level}");
    }
    let numeric = udm(br#"{"level":30}"#);
    assert_eq!(
        numeric.event["security_result"]["severity"],
        "UNKNOWN_SEVERITY"
    );
    assert_eq!(numeric.event["security_result"]["severity_details"], "30");
}

#[test]
fn not_json() {
    let out = udm(b"plain text, not json");
    assert_eq!(out.parse_error, Some("invalid JSON"));
    let e = &out.event;
    assert_eq!(e["metadata"]["description"], "plain text, not json");
    assert_eq!(e["additional"]["raw"], "plain text, not json");
    assert_eq!(e["additional"]["parse_error"], "invalid JSON");
    assert_eq!(
        e["metadata"]["event_timestamp"],
        "2026-11-23T23:10:01.500000Z"
    );
    assert_eq!(e["principal"]["hostname"], "pod-a");
    assert_eq!(e["security_result"]["severity"], "UNKNOWN_SEVERITY");
    assert_eq!(out.line_time, None);
    assert_eq!(out.event_time, collected());
}

#[test]
fn not_utf8() {
    let out = udm(b"{\"message\":\"caf\xe9\"}");
    assert_eq!(out.parse_error, Some("invalid UTF-8"));
    assert_eq!(
        out.event["additional"]["raw"],
        "{\"message\":\"caf\u{fffd}\"}"
    );
    // Serialising the event gives valid UTF-8 JSON.
    let text = serde_json::to_string(&out.event).expect("serialise");
    assert!(text.contains("caf\u{fffd}"));
}

#[test]
fn json_but_not_an_object() {
    for (line, reason) in [
        (&b"[1,2,3]"[..], "not a JSON object"),
        (b"\"just a string\"", "not a JSON object"),
        (b"42", "not a JSON object"),
        (b"null", "not a JSON object"),
        (b"", "invalid JSON"),
        (b"{\"a\":", "invalid JSON"),
    ] {
        let out = udm(line);
        assert_eq!(
            out.parse_error,
            Some(reason),
            "{:?}",
            String::from_utf8_lossy(line)
        );
        assert_eq!(out.event["additional"]["parse_error"], reason);
    }
}

#[test]
fn huge_lines() {
    let message = "x".repeat(2 * 1024 * 1024);
    let line = format!(r#"{{"level":"INFO","message":"{message}"}}"#);
    let out = udm(line.as_bytes());
    assert_eq!(out.parse_error, None);
    assert_eq!(
        out.event["metadata"]["description"].as_str().map(str::len),
        Some(message.len())
    );

    let garbage = "é".repeat(600_000);
    let out = udm(garbage.as_bytes());
    assert_eq!(out.parse_error, Some("invalid JSON"));
    let description = out.event["metadata"]["description"].as_str().expect("text");
    assert!(description.len() <= PARSE_ERROR_DESCRIPTION_MAX);
    assert!(
        description.chars().all(|c| c == 'é'),
        "cut on a char boundary"
    );
    assert_eq!(
        out.event["additional"]["raw"].as_str().map(str::len),
        Some(garbage.len())
    );
}

#[test]
fn missing_fields() {
    let mut context = ctx();
    context.collected = None;
    let out = to_udm(Some(b"{\"seq\":1}"), &context, ingested(), "p");
    assert_eq!(out.parse_error, None);
    let e = &out.event;
    assert_eq!(
        e["metadata"]["event_timestamp"],
        "2026-11-23T23:10:02.000000Z"
    );
    assert!(e["metadata"].get("collected_timestamp").is_none());
    assert!(e["metadata"].get("description").is_none());
    assert_eq!(e["metadata"]["product_name"], "p");
    assert_eq!(
        e["principal"]["hostname"], "pod-a",
        "falls back to the source"
    );
    assert_eq!(e["security_result"]["severity"], "UNKNOWN_SEVERITY");
    assert!(e["security_result"].get("severity_details").is_none());
    assert_eq!(out.line_time, None);

    // Pub/sub: nothing known but the line.
    let bare = to_udm(Some(b"{}"), &LineContext::default(), ingested(), "p");
    assert!(bare.event.get("principal").is_none());
    assert_eq!(bare.event["additional"], json!({}));
}

#[test]
fn unreadable_timestamp_is_kept() {
    let out = udm(br#"{"timestamp":"last tuesday","message":"m"}"#);
    assert_eq!(out.parse_error, None);
    assert_eq!(out.line_time, None);
    assert_eq!(out.event["additional"]["timestamp"], "last tuesday");
    assert_eq!(
        out.event["metadata"]["event_timestamp"],
        "2026-11-23T23:10:01.500000Z"
    );
}

#[test]
fn truncated_line() {
    let mut context = ctx();
    context.truncated = true;
    let out = to_udm(
        Some(br#"{"level":"INFO","message":"aaaa"#),
        &context,
        ingested(),
        "r",
    );
    assert_eq!(out.parse_error, Some("invalid JSON"));
    assert_eq!(out.event["additional"]["truncated"], true);
    let whole = udm(br#"{"level":"INFO"}"#);
    assert!(whole.event["additional"].get("truncated").is_none());
}

#[test]
fn colliding_fields_are_kept() {
    let out = udm(br#"{"source":"nginx","offset":"x","stream_id":1}"#);
    let a = &out.event["additional"];
    assert_eq!(a["source"], "pod-a");
    assert_eq!(a["line_source"], "nginx");
    assert_eq!(a["line_offset"], "x");
    assert_eq!(a["line_stream_id"], 1);
}

#[test]
fn foreign_entry_without_line() {
    let extra = vec![("event".to_string(), b"deploy".to_vec())];
    let mut context = ctx();
    context.extra = &extra;
    let out = to_udm(None, &context, ingested(), "redtail");
    assert_eq!(out.parse_error, Some("no line field"));
    assert_eq!(out.event["additional"]["entry_fields"]["event"], "deploy");
    assert_eq!(
        out.event["metadata"]["description"],
        "stream entry without a line field"
    );
}

#[test]
fn structured_message_becomes_text() {
    let out = udm(br#"{"message":{"a":1},"host":null,"level":null,"type":"INFO"}"#);
    assert_eq!(out.event["metadata"]["description"], r#"{"a":1}"#);
    assert_eq!(
        out.event["principal"]["hostname"], "pod-a",
        "null host is absent"
    );
    assert_eq!(out.event["security_result"]["severity"], "INFORMATIONAL");
    assert_eq!(out.event["additional"]["level"], Value::Null);
}
