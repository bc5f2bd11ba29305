//! `REDTAIL_SINK=secops` under faults injected by the loopback stub (tests/secops_stub):
//! every resend byte-identical, nothing acknowledged before a 2xx, refused entries in the
//! dead-letter stream, each line exactly once after de-duplication by body hash.

mod secops_stub;
mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use secops_stub::rig::*;
use secops_stub::{Fault, Rules};
use support::*;

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
