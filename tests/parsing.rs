//! End to end: a file of mixed formats → the real watcher → Redis → the real subscriber
//! (udm output) → for every line the UDM event its format promises: event type, parser,
//! severity, the line's own time, the fields of logins and HTTP requests, and parse errors
//! counted by format.

mod support;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use chrono::{DateTime, Utc};
use redtail_parse::samples::{sample, SHAPES};
use redtail_parse::{EventType, Format};
use serde_json::Value;
use support::*;

const T: Duration = Duration::from_secs(120);

#[test]
fn mixed_formats_become_the_promised_udm_events() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    let now = Utc::now();
    // What each line must become, by its byte offset in the file.
    let mut want: BTreeMap<u64, (Option<Format>, EventType, Option<&str>)> = BTreeMap::new();
    let mut file = std::fs::File::create(scene.log()).expect("log");
    let mut offset = 0u64;
    let mut add = |bytes: &[u8], expect: (Option<Format>, EventType, Option<&'static str>)| {
        file.write_all(bytes).expect("write");
        file.write_all(b"\n").expect("write");
        want.insert(offset, expect);
        offset += bytes.len() as u64 + 1;
    };
    for n in 0..(3 * SHAPES) {
        let s = sample(n, now, "web-1", false);
        add(s.text.as_bytes(), (Some(s.format), s.event_type, None));
    }
    add(
        br#"{"level":"INFO","message":"cut"#,
        (Some(Format::Json), EventType::Generic, Some("invalid JSON")),
    );
    add(
        b"2026-11-30 10:00:05,789 WARN caf\xe9 \xff",
        (
            Some(Format::Text),
            EventType::Generic,
            Some("invalid UTF-8"),
        ),
    );
    drop(file);
    let lines = want.len() as f64;

    let mut env = scene.subscriber_env(&redis, "stream");
    env.retain(|(k, _)| *k != "REDTAIL_OUTPUT_FORMAT");
    env.push(("REDTAIL_OUTPUT_FORMAT", "udm".to_string()));
    env.push(("REDTAIL_UDM_VENDOR", "Example Corp".to_string()));
    env.push(("REDTAIL_UDM_LOG_TYPE", "REDTAIL_APP".to_string()));
    let subscriber = scene.start("subscribe", &env);
    let _watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    wait_until(T, "every line written out", || {
        subscriber
            .metrics()
            .get("redtail_subscriber_lines_received_total", &[])
            == Some(lines)
    });

    let out = String::from_utf8(scene.output_bytes()).expect("UDM output is UTF-8");
    let events: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect();
    assert_eq!(events.len(), want.len());
    let mut http = 0;
    for e in &events {
        let offset = e["additional"]["offset"].as_u64().expect("offset");
        let (format, event_type, error) = want[&offset];
        let what = format!("{format:?} at {offset}: {e}");
        let m = &e["metadata"];
        assert_eq!(m["event_type"], event_type.as_str(), "{what}");
        assert_eq!(m["vendor_name"], "Example Corp");
        assert_eq!(m["log_type"], "REDTAIL_APP");
        assert_eq!(e["additional"]["parse_error"].as_str(), error, "{what}");
        assert_eq!(
            e["security_result"].as_array().map(Vec::len),
            Some(1),
            "{what}"
        );
        if error.is_none() {
            // The line's own time (to the second: access and BSD syslog times have no more),
            // not the collection time.
            let t: DateTime<Utc> = m["event_timestamp"]
                .as_str()
                .and_then(redtail_parse::time::parse_str)
                .expect("time");
            assert!((t - now).num_milliseconds().abs() < 1500, "{what}");
            assert!(e["additional"].get("event_time_from").is_none(), "{what}");
        }
        match event_type {
            EventType::NetworkHttp => {
                http += 1;
                let h = &e["network"]["http"];
                assert!(h["method"].is_string(), "{what}");
                assert!(
                    h["response_code"].is_u64(),
                    "response_code is a number: {what}"
                );
                assert!(e["target"]["url"].is_string(), "{what}");
                if format == Some(Format::Combined) {
                    assert!(e["principal"]["ip"][0].is_string(), "{what}");
                    assert!(h["user_agent"].is_string(), "{what}");
                }
            }
            EventType::UserLogin => {
                let action = &e["security_result"][0]["action"][0];
                assert!(action == "ALLOW" || action == "BLOCK", "{what}");
                assert!(e["target"]["user"]["userid"].is_string(), "{what}");
                assert!(e["extensions"]["auth"]["type"].is_string(), "{what}");
            }
            EventType::UserLogout => assert!(e["target"]["user"]["userid"].is_string(), "{what}"),
            EventType::Generic => {}
        }
    }
    assert!(http >= 9, "three of each HTTP shape");
    let s = subscriber.metrics();
    assert_eq!(
        s.get(
            "redtail_subscriber_parse_errors_total",
            &["format=\"json\""]
        ),
        Some(1.0)
    );
    assert_eq!(
        s.get(
            "redtail_subscriber_parse_errors_total",
            &["format=\"text\""]
        ),
        Some(1.0)
    );
    assert_eq!(s.value("redtail_subscriber_parse_errors_total"), 2.0);
    assert_eq!(s.value("redtail_subscriber_events_total"), lines);
    assert_eq!(
        s.get(
            "redtail_subscriber_events_total",
            &["format=\"combined\"", "event_type=\"NETWORK_HTTP\""]
        ),
        Some(6.0)
    );
    assert_eq!(
        s.get(
            "redtail_subscriber_events_total",
            &["format=\"syslog\"", "event_type=\"USER_LOGIN\""]
        ),
        Some(3.0)
    );
}
