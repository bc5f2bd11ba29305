//! `REDTAIL_SINK=secops` against a loopback stub of the SecOps API and its token endpoint
//! (tests/secops_stub): the documented contract, not Google itself.
//!
//! Entries are added to the stream the way the watcher writes them (`line src path off fid
//! ct`); the real `redtail subscribe` binary delivers them. Backoffs are configured small,
//! every wait is a generous poll, no assertion depends on speed.

mod secops_stub;
mod support;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secops_stub::{key_file, test_key, Fault, Rules, Stub};
use support::*;

const STREAM: &str = "redtail:logs";
const GROUP: &str = "redtail";
const INSTANCE: &str = "projects/p/locations/us/instances/i";
const CLOUD: &str = "https://www.googleapis.com/auth/cloud-platform";
const LONG: Duration = Duration::from_secs(60);

struct Rig {
    dir: tempfile::TempDir,
    redis: RedisServer,
    stub: Stub,
    pem: String,
    key: PathBuf,
}

fn rig(scope: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (pem, public) = test_key(dir.path());
    let stub = Stub::start(public, &["JSON", "NGINX"], scope);
    let key = key_file(dir.path(), &pem, &stub.token_uri());
    let redis = RedisServer::start();
    stub.probe_pending(&redis.url(), STREAM, GROUP);
    Rig {
        dir,
        redis,
        stub,
        pem,
        key,
    }
}

impl Rig {
    fn env(&self, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        let mut env: Vec<(&'static str, String)> = vec![
            ("REDTAIL_REDIS_URL", self.redis.url()),
            ("REDTAIL_SINK", "secops".into()),
            ("REDTAIL_SECOPS_ENDPOINT", self.stub.url()),
            ("REDTAIL_SECOPS_INSTANCE", INSTANCE.into()),
            ("REDTAIL_SECOPS_LOG_TYPE", "JSON".into()),
            ("REDTAIL_SECOPS_NAMESPACE", "test-ns".into()),
            ("REDTAIL_SECOPS_CREDENTIALS", self.key.display().to_string()),
            ("REDTAIL_SECOPS_BATCH_MS", "200".into()),
            ("REDTAIL_SECOPS_RETRY_BASE_MS", "20".into()),
            ("REDTAIL_SECOPS_TIMEOUT_MS", "3000".into()),
            ("REDTAIL_SECOPS_NOT_READY_RETRY_MS", "200".into()),
            ("REDTAIL_CONSUMER", "c1".into()),
            ("RUST_LOG", "info".into()),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k, v.to_string()));
        }
        env
    }

    fn subscribe(&self, extra: &[(&'static str, &str)]) -> Redtail {
        Redtail::start("subscribe", self.dir.path(), &self.env(extra))
    }

    /// Appends lines `from..from+n` (generator-shaped, with `seq`); returns `(id, line)`.
    fn add(
        &self,
        from: u64,
        n: u64,
        shape: impl Fn(u64) -> Option<String>,
    ) -> Vec<(String, Vec<u8>)> {
        let mut conn = self.redis.conn();
        (from..from + n)
            .map(|seq| {
                let now = Utc::now();
                let line = shape(seq).unwrap_or_else(|| {
                    format!(
                        r#"{{"timestamp":"{}","level":"INFO","message":"message {seq}","seq":{seq},"service":"app","host":"h"}}"#,
                        (now - chrono::Duration::milliseconds(5)).format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    )
                });
                let id: String = redis::cmd("XADD")
                    .arg(STREAM)
                    .arg("*")
                    .arg("line")
                    .arg(line.as_bytes())
                    .arg("src")
                    .arg("pod-a")
                    .arg("path")
                    .arg("/var/log/app/app.log")
                    .arg("off")
                    .arg(seq * 100)
                    .arg("fid")
                    .arg("f1")
                    .arg("ct")
                    .arg(now.timestamp_micros())
                    .query(&mut conn)
                    .unwrap();
                (id, line.into_bytes())
            })
            .collect()
    }

    fn pending(&self) -> u64 {
        let reply: redis::Value = redis::cmd("XPENDING")
            .arg(STREAM)
            .arg(GROUP)
            .query(&mut self.redis.conn())
            .unwrap_or(redis::Value::Nil);
        match reply {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n as u64,
                _ => 0,
            },
            _ => 0,
        }
    }

    fn dead_letters(&self) -> Vec<HashMap<String, Vec<u8>>> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(format!("{STREAM}:deadletter"))
            .arg("-")
            .arg("+")
            .query(&mut self.redis.conn())
            .unwrap();
        reply
            .ids
            .into_iter()
            .map(|e| {
                e.map
                    .into_iter()
                    .map(|(k, v)| match v {
                        redis::Value::BulkString(b) => (k, b),
                        other => (k, format!("{other:?}").into_bytes()),
                    })
                    .collect()
            })
            .collect()
    }

    fn wait_delivered(&self, n: usize) {
        wait_until(
            LONG,
            &format!("{n} lines delivered and acknowledged"),
            || self.stub.delivered_lines().len() >= n && self.pending() == 0,
        );
    }
}

/// Each line was accepted exactly once after de-duplication by body hash.
fn assert_each_once(stub: &Stub, lines: &[(String, Vec<u8>)], except: &[&[u8]]) {
    let delivered = stub.delivered_lines();
    let mut counts: HashMap<&[u8], usize> = HashMap::new();
    for l in &delivered {
        *counts.entry(l.as_slice()).or_default() += 1;
    }
    for (id, line) in lines {
        let want = usize::from(!except.contains(&line.as_slice()));
        assert_eq!(
            counts.get(line.as_slice()).copied().unwrap_or(0),
            want,
            "entry {id} delivered a wrong number of times"
        );
    }
    assert_eq!(
        delivered.len(),
        lines.len() - except.len(),
        "nothing extra delivered"
    );
}

/// Every request's entries were still pending in Redis when it arrived: nothing is
/// acknowledged before a 2xx.
fn assert_nothing_acked_early(stub: &Stub, lines: &[(String, Vec<u8>)]) {
    let id_of: HashMap<&[u8], &str> = lines
        .iter()
        .map(|(id, l)| (l.as_slice(), id.as_str()))
        .collect();
    for (i, seen) in stub.seen().iter().enumerate() {
        let pending = seen.pending.as_ref().expect("probe");
        for line in seen.lines() {
            let id = id_of.get(line.as_slice()).expect("a known line");
            assert!(
                pending.contains(*id),
                "request {i}: {id} was acknowledged before SecOps accepted it"
            );
        }
    }
}

fn assert_no_secrets(rig: &Rig, sub: &Redtail, metrics: &str) {
    let stderr = sub.stderr();
    let key_body: Vec<&str> = rig
        .pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for token in rig.stub.issued_tokens() {
        assert!(!stderr.contains(&token), "token in the logs");
        assert!(!metrics.contains(&token), "token in the metrics");
        assert!(!stderr.contains(token.trim_start_matches("ya29.")));
    }
    for chunk in key_body {
        assert!(!stderr.contains(chunk), "key material in the logs");
        assert!(!metrics.contains(chunk), "key material in the metrics");
    }
}

fn parse_time(v: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time string"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

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
fn faults_resend_the_same_bytes_and_ack_only_after_2xx() {
    let rig = rig(CLOUD);
    let lines = rig.add(0, 60, |_| None);
    rig.stub.push_faults([
        Fault::Unauthorized,
        Fault::Status(429, Some(1)),
        Fault::Status(503, None),
        Fault::Status(503, None),
        Fault::Status(503, None),
        Fault::Hang(Duration::from_secs(20)),
    ]);
    let mut sub = rig.subscribe(&[("REDTAIL_SECOPS_TIMEOUT_MS", "1500")]);
    rig.wait_delivered(60);
    let seen = rig.stub.seen();
    let statuses: Vec<u16> = seen.iter().map(|s| s.status).collect();
    assert_eq!(
        statuses,
        vec![401, 429, 503, 503, 503, 0, 200],
        "the scripted faults in order"
    );
    let first = &seen[0].hash;
    assert!(
        seen.iter().all(|s| &s.hash == first),
        "every resend is byte-identical"
    );
    assert!(
        seen[2].at.duration_since(seen[1].at) >= Duration::from_millis(900),
        "Retry-After: 1 honoured"
    );
    assert!(
        rig.stub.token_requests() >= 2,
        "the 401 made the sink fetch a new token"
    );
    assert_nothing_acked_early(&rig.stub, &lines);
    assert_each_once(&rig.stub, &lines, &[]);
    let m = sub.metrics();
    for (reason, at_least) in [
        ("unauthorized", 1.0),
        ("throttled", 1.0),
        ("server", 3.0),
        ("timeout", 1.0),
    ] {
        let label = format!("reason=\"{reason}\"");
        let got = m
            .get("redtail_subscriber_sink_retries_total", &[&label])
            .unwrap_or(0.0);
        assert!(got >= at_least, "retries{{{reason}}} = {got}");
    }
    assert_eq!(
        m.get(
            "redtail_subscriber_sink_requests_total",
            &["code=\"error\""]
        ),
        Some(1.0)
    );
    let metrics_text = m.0.clone();
    assert_eq!(sub.terminate(LONG).code(), Some(0));
    assert_no_secrets(&rig, &sub, &metrics_text);
}

#[test]
fn a_refused_entry_is_isolated_into_the_dead_letters() {
    let rig = rig(CLOUD);
    rig.stub.set_rules(Rules {
        reject_marker: Some("POISON".into()),
        ..Rules::default()
    });
    let lines = rig.add(0, 40, |seq| {
        (seq == 17).then(|| "POISON this is not a log the parser takes".to_string())
    });
    let sub = rig.subscribe(&[]);
    wait_until(LONG, "39 delivered, the poison dead-lettered", || {
        rig.stub.delivered_lines().len() == 39
            && rig.pending() == 0
            && rig.dead_letters().len() == 1
    });
    let poison = &lines[17];
    assert_each_once(&rig.stub, &lines, &[poison.1.as_slice()]);
    let dl = &rig.dead_letters()[0];
    assert_eq!(dl["id"], poison.0.as_bytes());
    assert_eq!(dl["line"], poison.1);
    let reason = String::from_utf8_lossy(&dl["reason"]).to_string();
    assert!(reason.starts_with("400"), "{reason}");
    assert_eq!(dl["src"], b"pod-a");
    assert_nothing_acked_early(&rig.stub, &lines);
    assert_eq!(
        sub.metrics()
            .value("redtail_subscriber_sink_deadletter_total"),
        1.0
    );
}

#[test]
fn too_large_requests_are_split() {
    let rig = rig(CLOUD);
    rig.stub.set_rules(Rules {
        max_entries: Some(8),
        ..Rules::default()
    });
    let lines = rig.add(0, 50, |_| None);
    let _sub = rig.subscribe(&[]);
    rig.wait_delivered(50);
    assert_each_once(&rig.stub, &lines, &[]);
    let seen = rig.stub.seen();
    assert!(seen.iter().any(|s| s.status == 413));
    assert!(seen
        .iter()
        .filter(|s| s.accepted())
        .all(|s| s.lines().len() <= 8));
    assert!(rig.dead_letters().is_empty());
}

#[test]
fn an_entry_over_the_cap_goes_to_the_dead_letters_alone() {
    let rig = rig(CLOUD);
    let big = format!(r#"{{"message":"{}"}}"#, "x".repeat(6000));
    let lines = rig.add(0, 10, |seq| (seq == 4).then(|| big.clone()));
    let _sub = rig.subscribe(&[("REDTAIL_SECOPS_BATCH_BYTES", "4096")]);
    wait_until(LONG, "9 delivered, 1 dead-lettered", || {
        rig.stub.delivered_lines().len() == 9 && rig.pending() == 0 && rig.dead_letters().len() == 1
    });
    assert_each_once(&rig.stub, &lines, &[big.as_bytes()]);
    let reason = String::from_utf8_lossy(&rig.dead_letters()[0]["reason"]).to_string();
    assert!(reason.contains("REDTAIL_SECOPS_BATCH_BYTES"), "{reason}");
    assert!(
        rig.stub.seen().iter().all(|s| s.body.len() <= 4096),
        "body over the cap"
    );
}

#[test]
fn forbidden_means_not_ready_and_nothing_acknowledged() {
    let rig = rig(CLOUD);
    rig.stub.set_rules(Rules {
        always: Some(403),
        ..Rules::default()
    });
    let lines = rig.add(0, 10, |_| None);
    let sub = rig.subscribe(&[("REDTAIL_SECOPS_MAX_AGE_MS", "300")]);
    wait_until(LONG, "/readyz names the 403", || {
        let (code, body) = sub.http_get("/readyz");
        code == 503 && body.contains("secops") && body.contains("403")
    });
    // Well past the maximum age: a configuration error does not age entries into the dead
    // letters, and nothing is acknowledged.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(rig.stub.seen().len() >= 2, "retried");
    assert_eq!(rig.pending(), 10);
    assert!(rig.dead_letters().is_empty());
    rig.stub.set_rules(Rules::default());
    rig.wait_delivered(10);
    assert_each_once(&rig.stub, &lines, &[]);
    wait_until(LONG, "ready again", || sub.http_get("/readyz").0 == 200);
    let hashes: HashSet<String> = rig.stub.seen().into_iter().map(|s| s.hash).collect();
    assert_eq!(hashes.len(), 1, "the same body throughout");
}

#[test]
fn a_batch_failing_past_the_maximum_age_is_dead_lettered() {
    let rig = rig(CLOUD);
    rig.stub.set_rules(Rules {
        always: Some(503),
        ..Rules::default()
    });
    let lines = rig.add(0, 5, |_| None);
    let sub = rig.subscribe(&[("REDTAIL_SECOPS_MAX_AGE_MS", "1500")]);
    wait_until(LONG, "5 dead letters, nothing pending", || {
        rig.dead_letters().len() == 5 && rig.pending() == 0
    });
    let dls = rig.dead_letters();
    for ((id, line), dl) in lines.iter().zip(&dls) {
        assert_eq!(&dl["id"], id.as_bytes());
        assert_eq!(&dl["line"], line);
        let reason = String::from_utf8_lossy(&dl["reason"]).to_string();
        assert!(
            reason.contains("REDTAIL_SECOPS_MAX_AGE_MS") && reason.contains("503"),
            "{reason}"
        );
    }
    assert!(rig.stub.delivered_lines().is_empty());
    assert_eq!(
        sub.metrics()
            .value("redtail_subscriber_sink_deadletter_total"),
        5.0
    );
}

/// kill -9 while a batch is in flight; the restarted consumer (or, with `other`, a second
/// consumer claiming the dead one's entries) sends the same body again.
fn kill9_then_resume(other: bool) {
    let rig = rig(CLOUD);
    rig.stub.set_rules(Rules {
        always: Some(503),
        ..Rules::default()
    });
    let lines = rig.add(0, 30, |_| None);
    let claim = [("REDTAIL_CLAIM_IDLE_MS", "1000")];
    let mut a = rig.subscribe(&claim);
    wait_until(LONG, "two attempts of the batch", || {
        rig.stub.seen().len() >= 2
    });
    a.kill9();
    let before = rig.stub.seen().len();
    let hash = rig.stub.seen()[0].hash.clone();
    assert_eq!(rig.pending(), 30, "nothing acknowledged");
    let _b = if other {
        rig.subscribe(&[("REDTAIL_CONSUMER", "c2"), claim[0]])
    } else {
        a.restart();
        a
    };
    wait_until(LONG, "the batch sent again after the restart", || {
        rig.stub.seen().len() > before
    });
    rig.stub.set_rules(Rules::default());
    rig.wait_delivered(30);
    let seen = rig.stub.seen();
    assert!(
        seen.iter().all(|s| s.hash == hash),
        "every attempt, before and after the kill, byte-identical"
    );
    assert!(seen.len() > before);
    assert_each_once(&rig.stub, &lines, &[]);
    assert_nothing_acked_early(&rig.stub, &lines);
}

#[test]
fn kill9_mid_batch_and_restart_resends_the_identical_body() {
    kill9_then_resume(false);
}

#[test]
fn another_consumer_claiming_a_dead_ones_batch_resends_it_identically() {
    kill9_then_resume(true);
}

#[test]
fn sigterm_during_a_request_that_never_returns_exits_promptly() {
    let rig = rig(CLOUD);
    rig.stub.set_rules(Rules {
        hold: Some(Duration::from_secs(120)),
        ..Rules::default()
    });
    let lines = rig.add(0, 10, |_| None);
    let mut sub = rig.subscribe(&[("REDTAIL_SECOPS_TIMEOUT_MS", "120000")]);
    wait_until(LONG, "the request in flight", || {
        !rig.stub.seen().is_empty()
    });
    let hash = rig.stub.seen()[0].hash.clone();
    assert_eq!(
        sub.terminate(Duration::from_secs(30)).code(),
        Some(0),
        "{}",
        sub.stderr()
    );
    assert_eq!(rig.pending(), 10, "nothing acknowledged without a reply");
    rig.stub.set_rules(Rules::default());
    sub.restart();
    rig.wait_delivered(10);
    assert!(
        rig.stub.seen().iter().all(|s| s.hash == hash),
        "the abandoned request is resent unchanged"
    );
    assert_each_once(&rig.stub, &lines, &[]);
}

/// A consumer frozen (SIGSTOP) past the claim idle time loses its batch to another one, then
/// wakes up: both may send the recorded batch (the same bytes), but no line ever travels in
/// two different bodies, so after de-duplication by hash each is delivered once.
#[test]
fn a_frozen_consumer_that_wakes_up_does_not_duplicate() {
    let rig = rig(CLOUD);
    rig.stub.set_rules(Rules {
        always: Some(503),
        ..Rules::default()
    });
    let mut lines = rig.add(0, 30, |_| None);
    let claim = ("REDTAIL_CLAIM_IDLE_MS", "1000");
    let a = rig.subscribe(&[claim]);
    wait_until(LONG, "A retrying its batch", || rig.stub.seen().len() >= 2);
    a.signal("STOP");
    let frozen_at = rig.stub.seen().len();
    let _b = rig.subscribe(&[("REDTAIL_CONSUMER", "c2"), claim]);
    wait_until(LONG, "B took the batch over", || {
        rig.stub.seen().len() >= frozen_at + 2
    });
    lines.extend(rig.add(30, 20, |_| None));
    std::thread::sleep(Duration::from_millis(1500));
    a.signal("CONT");
    std::thread::sleep(Duration::from_millis(1500));
    rig.stub.set_rules(Rules::default());
    rig.wait_delivered(50);
    assert_each_once(&rig.stub, &lines, &[]);
    // Distinct accepted bodies never share a line.
    let mut owner: HashMap<Vec<u8>, String> = HashMap::new();
    for s in rig.stub.seen().into_iter().filter(|s| s.accepted()) {
        for line in s.lines() {
            let prev = owner.insert(line, s.hash.clone());
            assert!(
                prev.is_none_or(|h| h == s.hash),
                "a line in two different bodies"
            );
        }
    }
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
