//! `REDTAIL_SINK=secops` against a loopback stub of the SecOps API and its token endpoint
//! (tests/secops_stub): the documented contract, not Google itself.
//!
//! Entries are added to the stream the way the watcher writes them (`line src path off fid
//! ct`); the real `redtail subscribe` binary delivers them. Backoffs are configured small,
//! every wait is a generous poll, no assertion depends on speed.

mod secops_stub;
mod support;

use std::collections::HashSet;
use std::time::Duration;

use chrono::Utc;
use secops_stub::rig::*;
use secops_stub::{key_file, test_key};
use support::*;

#[test]
fn logs_import_envelope_and_exactly_once() {
    let rig = rig(CLOUD);
    let lines = rig.add(0, 250, |_| None);
    let mut sub = rig.subscribe(&[("REDTAIL_SECOPS_BATCH_ENTRIES", "100")]);
    rig.wait_delivered(250);
    assert_each_once(&rig.stub, &lines, &[]);
    assert_nothing_acked_early(&rig.stub, &lines);
    let issued: HashSet<String> = rig.stub.issued_tokens().into_iter().collect();
    let seen = rig.stub.seen();
    assert!(seen.len() >= 3, "250 entries at 100 per request");
    for s in &seen {
        assert_eq!(s.method, "POST");
        assert_eq!(
            s.path,
            format!("/v1alpha/{INSTANCE}/logTypes/JSON/logs:import"),
            "one log type per request, in the path"
        );
        assert_eq!(s.header("content-type"), Some("application/json"));
        let token = s
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .expect("bearer token");
        assert!(issued.contains(token));
        assert!(s.body.len() <= 3_500_000);
        let v = s.json();
        let logs = v["inlineSource"]["logs"].as_array().expect("logs");
        assert!(logs.len() <= 100);
        for log in logs {
            let entry_time = parse_time(&log["logEntryTime"]);
            let collected = parse_time(&log["collectionTime"]);
            assert!(entry_time <= collected, "logEntryTime after collectionTime");
            assert_eq!(log["environmentNamespace"], "test-ns");
        }
    }
    assert!(
        rig.stub.jwt_errors().is_empty(),
        "{:?}",
        rig.stub.jwt_errors()
    );
    let m = sub.metrics();
    assert_eq!(m.value("redtail_subscriber_sink_entries_total"), 250.0);
    assert!(
        m.get("redtail_subscriber_sink_requests_total", &["code=\"200\""])
            .unwrap_or(0.0)
            >= 3.0
    );
    assert_eq!(m.value("redtail_subscriber_sink_deadletter_total"), 0.0);
    assert!(m.value("redtail_subscriber_sink_bytes_total") > 0.0);
    assert!(
        m.get(
            "redtail_subscriber_sink_request_duration_seconds_count",
            &[]
        )
        .unwrap_or(0.0)
            >= 3.0
    );
    assert_eq!(sub.http_get("/readyz").0, 200);
    let metrics_text = m.0.clone();
    assert_eq!(sub.terminate(LONG).code(), Some(0));
    assert_no_secrets(&rig, &sub, &metrics_text);
}

#[test]
fn events_import_with_gzip() {
    let rig = rig(CLOUD);
    let lines = rig.add(0, 20, |_| None);
    let _sub = rig.subscribe(&[
        ("REDTAIL_SECOPS_API", "events"),
        ("REDTAIL_SECOPS_GZIP", "true"),
        ("REDTAIL_SECOPS_LOG_TYPE", ""),
    ]);
    wait_until(LONG, "20 events", || {
        rig.stub
            .seen()
            .iter()
            .filter(|s| s.accepted())
            .map(|s| s.lines().len())
            .sum::<usize>()
            >= 20
            && rig.pending() == 0
    });
    let seen = rig.stub.seen();
    let mut descriptions = Vec::new();
    for s in &seen {
        assert_eq!(s.path, format!("/v1alpha/{INSTANCE}/events:import"));
        assert_eq!(s.header("content-encoding"), Some("gzip"));
        assert!(s.raw_len < s.body.len(), "compressed");
        for e in s.json()["inlineSource"]["events"].as_array().unwrap() {
            assert!(e["udm"]["metadata"]["event_timestamp"].is_string());
            descriptions.push(
                e["udm"]["metadata"]["description"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
    }
    let want: Vec<String> = (0..20).map(|i| format!("message {i}")).collect();
    assert_eq!(descriptions, want);
    for s in &seen {
        let pending = s.pending.as_ref().expect("probe");
        assert!(
            lines.iter().all(|(id, _)| pending.contains(id)),
            "acknowledged before the 2xx"
        );
    }
}

#[test]
fn legacy_batch_create() {
    let rig = rig("https://www.googleapis.com/auth/malachite-ingestion");
    let lines = rig.add(0, 15, |_| None);
    let _sub = rig.subscribe(&[
        ("REDTAIL_SECOPS_API", "legacy"),
        ("REDTAIL_SECOPS_INSTANCE", ""),
        (
            "REDTAIL_SECOPS_CUSTOMER_ID",
            "c0ffee00-0000-4000-8000-000000000000",
        ),
    ]);
    rig.wait_delivered(15);
    assert_each_once(&rig.stub, &lines, &[]);
    for s in rig.stub.seen() {
        assert_eq!(s.path, "/v2/unstructuredlogentries:batchCreate");
        let v = s.json();
        assert_eq!(v["customer_id"], "c0ffee00-0000-4000-8000-000000000000");
        assert_eq!(v["log_type"], "JSON");
        assert_eq!(v["namespace"], "test-ns");
        for e in v["entries"].as_array().unwrap() {
            assert!(parse_time(&e["ts_rfc3339"]) <= Utc::now());
        }
    }
    assert!(
        rig.stub.jwt_errors().is_empty(),
        "{:?}",
        rig.stub.jwt_errors()
    );
}

#[test]
fn metadata_server_tokens_without_a_key_file() {
    let rig = rig(CLOUD);
    // Shorter than the 300 s refresh margin: every request must come with a fresh token.
    rig.stub.set_token_lifetime(200);
    let lines = rig.add(0, 5, |_| None);
    let host = rig.stub.addr.to_string();
    let mut env = rig.env(&[("GCE_METADATA_HOST", &host)]);
    env.retain(|(k, _)| *k != "REDTAIL_SECOPS_CREDENTIALS");
    let _sub = Redtail::start("subscribe", rig.dir.path(), &env);
    rig.wait_delivered(5);
    assert_each_once(&rig.stub, &lines, &[]);
    let imports = rig.stub.seen().len() as u32;
    assert!(
        rig.stub.token_requests() > imports,
        "a token expiring within the margin is refreshed before each use"
    );
}

#[test]
fn startup_check_and_configuration_errors() {
    let rig = rig(CLOUD);
    let mut sub = rig.subscribe(&[("REDTAIL_SECOPS_LOG_TYPE", "NOSUCHTYPE")]);
    let status = sub.wait_exit(LONG);
    assert_eq!(status.code(), Some(1), "{}", sub.stderr());
    assert!(sub.stderr().contains("NOSUCHTYPE"), "{}", sub.stderr());

    let mut env = rig.env(&[]);
    env.retain(|(k, _)| *k != "REDTAIL_SECOPS_ENDPOINT");
    let mut sub = Redtail::start("subscribe", rig.dir.path(), &env);
    assert_eq!(sub.wait_exit(LONG).code(), Some(2));
    let stderr = sub.stderr();
    assert!(stderr.contains("REDTAIL_SECOPS_ENDPOINT"), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    // A key the token endpoint does not know (another key pair): the grant is refused, the
    // startup check says so in one line, and nothing of the key or a token is shown.
    let other = tempfile::tempdir().unwrap();
    let (other_pem, _) = test_key(other.path());
    let wrong = key_file(other.path(), &other_pem, &rig.stub.token_uri());
    let mut sub = rig.subscribe(&[("REDTAIL_SECOPS_CREDENTIALS", wrong.to_str().unwrap())]);
    assert_eq!(sub.wait_exit(LONG).code(), Some(1), "{}", sub.stderr());
    let stderr = sub.stderr();
    assert!(stderr.contains("refused the grant"), "{stderr}");
    assert!(rig
        .stub
        .jwt_errors()
        .iter()
        .any(|e| e.contains("signature")));
    for chunk in other_pem.lines().filter(|l| !l.starts_with("-----")) {
        assert!(!stderr.contains(chunk), "key material in the logs");
    }

    let bad_key = rig.dir.path().join("not-a-key.json");
    std::fs::write(
        &bad_key,
        r#"{"type":"service_account","private_key":"hunter2"}"#,
    )
    .unwrap();
    let mut sub = rig.subscribe(&[("REDTAIL_SECOPS_CREDENTIALS", bad_key.to_str().unwrap())]);
    assert_eq!(sub.wait_exit(LONG).code(), Some(2));
    let stderr = sub.stderr();
    assert!(
        stderr.starts_with("REDTAIL_SECOPS_CREDENTIALS")
            || stderr.contains("REDTAIL_SECOPS_CREDENTIALS:"),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2"), "{stderr}");
}

/// Throughput of the sink against the loopback stub (prints figures, asserts no speed):
/// `cargo test --test secops -- --ignored --nocapture throughput`.
#[test]
#[ignore]
fn throughput_through_the_stub() {
    for gzip in ["false", "true"] {
        let rig = rig(CLOUD);
        let n: u64 = 50_000;
        let mut conn = rig.redis.conn();
        let now = Utc::now();
        let mut bytes = 0usize;
        for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
            let mut pipe = redis::pipe();
            for seq in chunk {
                let line = format!(
                    r#"{{"timestamp":"{}","level":"INFO","message":"GET /api/items/{seq} 200 3ms","seq":{seq},"service":"app","host":"app-0"}}"#,
                    now.format("%Y-%m-%dT%H:%M:%S%.6fZ")
                );
                bytes += line.len();
                pipe.cmd("XADD")
                    .arg(STREAM)
                    .arg("*")
                    .arg("line")
                    .arg(line)
                    .arg("src")
                    .arg("app-0")
                    .arg("ct")
                    .arg(now.timestamp_micros())
                    .ignore();
            }
            pipe.query::<()>(&mut conn).unwrap();
        }
        let started = std::time::Instant::now();
        let _sub = rig.subscribe(&[("REDTAIL_SECOPS_GZIP", gzip)]);
        wait_until(Duration::from_secs(600), "all delivered", || {
            rig.stub
                .seen()
                .iter()
                .filter(|s| s.accepted())
                .map(|s| s.lines().len())
                .sum::<usize>() as u64
                >= n
                && rig.pending() == 0
        });
        let secs = started.elapsed().as_secs_f64();
        let seen = rig.stub.seen();
        let sent: usize = seen.iter().map(|s| s.raw_len).sum();
        println!(
            "gzip={gzip}: {n} lines ({:.1} MB of lines) in {secs:.2} s = {:.0} lines/s, {} requests, {:.1} MB on the wire",
            bytes as f64 / 1e6,
            n as f64 / secs,
            seen.len(),
            sent as f64 / 1e6
        );
    }
}
