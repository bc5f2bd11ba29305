//! Metrics and health endpoints of the real processes: counters equal what
//! happened, lag and readiness follow Redis going away and coming back, and
//! every metric the dashboard and alerts use exists in a real scrape.

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::time::Duration;

use support::*;

const T: Duration = Duration::from_secs(120);

fn line_count(path: &std::path::Path) -> u64 {
    std::fs::read(path)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count() as u64)
        .unwrap_or(0)
}

#[test]
fn counters_match_a_known_number_of_lines() {
    const N: u64 = 4000;
    let redis = RedisServer::start();
    let scene = Scene::new();
    let subscriber = scene.start("subscribe", &scene.subscriber_env(&redis, "stream"));
    let watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    let mut generator = scene.start("generate", &scene.generator_env(2000, N));
    // While it runs, the generator's counter brackets what the file holds.
    let mut scrapes = 0;
    while generator.is_running() && scrapes < 10 {
        let before = line_count(&scene.log());
        let (status, body) = match std::panic::catch_unwind(|| generator.http_get("/metrics")) {
            Ok(r) => r,
            Err(_) => break, // it exited between the check and the request
        };
        if status != 200 {
            break;
        }
        let written = Metrics(body).value("redtail_generator_lines_written_total") as u64;
        let after = line_count(&scene.log());
        assert!(
            before <= written && written <= after,
            "generator counter {written} outside [{before}, {after}]"
        );
        scrapes += 1;
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(scrapes > 0, "the generator was never scraped");
    assert!(generator.wait_exit(T).success());
    assert_eq!(line_count(&scene.log()), N);

    let size = scene.log_bytes();
    wait_until(T, "watcher published everything", || {
        watcher
            .metrics()
            .get("redtail_watcher_lines_published_total", &[])
            == Some(N as f64)
    });
    wait_until(T, "subscriber received everything", || {
        subscriber
            .metrics()
            .get("redtail_subscriber_lines_received_total", &[])
            == Some(N as f64)
    });
    wait_until(Duration::from_secs(10), "lag reaches 0", || {
        watcher.metrics().get("redtail_watcher_lag_bytes", &[]) == Some(0.0)
    });
    let w = watcher.metrics();
    assert_eq!(
        w.value("redtail_watcher_committed_offset_bytes"),
        size as f64
    );
    // Every line except its newline.
    assert_eq!(
        w.value("redtail_watcher_bytes_published_total"),
        (size - N) as f64
    );
    assert_eq!(w.value("redtail_watcher_duplicates_skipped_total"), 0.0);
    assert_eq!(w.value("redtail_watcher_redis_up"), 1.0);
    assert!(w.value("redtail_watcher_publish_duration_seconds_count") >= 1.0);
    assert_eq!(w.get("redtail_build_info", &["role=\"watch\""]), Some(1.0));
    let s = subscriber.metrics();
    assert_eq!(
        s.value("redtail_subscriber_end_to_end_latency_seconds_count"),
        N as f64
    );
    assert_eq!(s.value("redtail_subscriber_parse_errors_total"), 0.0);
    wait_until(Duration::from_secs(10), "pending gauge at 0", || {
        subscriber
            .metrics()
            .get("redtail_subscriber_pending_entries", &[])
            == Some(0.0)
    });
}

#[test]
fn readiness_and_gauges_follow_redis() {
    let mut redis = RedisServer::start_durable();
    let scene = Scene::new();
    let watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    let subscriber = scene.start("subscribe", &scene.subscriber_env(&redis, "stream"));
    let mut generator = scene.start("generate", &scene.generator_env(500, 0));
    wait_until(T, "both ready", || {
        watcher.http_get("/readyz").0 == 200 && subscriber.http_get("/readyz").0 == 200
    });
    wait_until(T, "lines flowing", || {
        output_lines(&scene.output_bytes()).len() > 200
    });

    redis.kill();
    wait_until(Duration::from_secs(10), "watcher not ready", || {
        watcher.http_get("/readyz").0 == 503
    });
    wait_until(Duration::from_secs(10), "subscriber not ready", || {
        subscriber.http_get("/readyz").0 == 503
    });
    let (_, reason) = watcher.http_get("/readyz");
    assert!(
        reason.contains("redis"),
        "503 body names the failing condition: {reason:?}"
    );
    assert_eq!(watcher.metrics().value("redtail_watcher_redis_up"), 0.0);
    assert_eq!(subscriber.metrics().value("redtail_watcher_redis_up"), 0.0);
    let lag1 = watcher.metrics().value("redtail_watcher_lag_bytes");
    std::thread::sleep(Duration::from_millis(2500));
    let lag2 = watcher.metrics().value("redtail_watcher_lag_bytes");
    assert!(
        lag2 > lag1,
        "lag must grow while Redis is down: {lag1} -> {lag2}"
    );
    assert_eq!(
        watcher.http_get("/healthz").0,
        200,
        "alive while Redis is down"
    );

    redis.restart();
    wait_until(Duration::from_secs(20), "watcher ready again", || {
        watcher.http_get("/readyz").0 == 200
    });
    wait_until(Duration::from_secs(20), "subscriber ready again", || {
        subscriber.http_get("/readyz").0 == 200
    });
    wait_until(Duration::from_secs(20), "lag back near 0", || {
        watcher.metrics().value("redtail_watcher_lag_bytes") < 50_000.0
    });
    assert_eq!(watcher.metrics().value("redtail_watcher_redis_up"), 1.0);
    assert!(
        watcher
            .metrics()
            .get("redtail_watcher_publish_errors_total", &[])
            .unwrap_or(0.0)
            > 0.0,
        "the failed attempts are counted"
    );
    assert!(generator.terminate(Duration::from_secs(10)).success());
}

/// Metric names in a PromQL-bearing file: every `redtail_…` identifier, with
/// histogram series suffixes folded to the family name.
fn metric_names_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("redtail_") {
        let start = i + pos;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        if boundary {
            let mut name = &text[start..end];
            for suffix in ["_bucket", "_sum", "_count"] {
                if let Some(base) = name.strip_suffix(suffix) {
                    if base.ends_with("_seconds") || base.ends_with("_lines") {
                        name = base;
                    }
                }
            }
            names.insert(name.to_string());
        }
        i = end.max(start + 1);
    }
    names
}

#[test]
fn dashboard_and_alerts_use_only_real_metrics() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    let mut gen_env = scene.generator_env(200, 0);
    gen_env.push(("REDTAIL_ROTATE_BYTES", "1000000".to_string()));
    let generator = scene.start("generate", &gen_env);
    let watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    let subscriber = scene.start("subscribe", &scene.subscriber_env(&redis, "stream"));
    wait_until(T, "lines flowing", || {
        output_lines(&scene.output_bytes()).len() > 20
    });
    let mut scraped: BTreeSet<String> = BTreeSet::new();
    for p in [&generator, &watcher, &subscriber] {
        scraped.extend(p.metrics().names());
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let mut used = BTreeSet::new();
    for file in [
        "deploy/grafana/redtail.json",
        "deploy/prometheus/redtail-rules.yaml",
    ] {
        let text = std::fs::read_to_string(format!("{root}/{file}")).expect(file);
        let names = metric_names_in(&text);
        assert!(names.len() > 5, "{file} uses only {} metrics?", names.len());
        used.extend(names);
    }
    let missing: Vec<&String> = used.iter().filter(|n| !scraped.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "used by the dashboard or alerts but not exported: {missing:?}\nscraped: {scraped:?}"
    );
    // And every metric INTERFACE.md names is exported.
    for name in [
        "redtail_build_info",
        "redtail_generator_lines_written_total",
        "redtail_generator_bytes_written_total",
        "redtail_watcher_lines_published_total",
        "redtail_watcher_bytes_published_total",
        "redtail_watcher_lag_bytes",
        "redtail_watcher_committed_offset_bytes",
        "redtail_watcher_checkpoint_age_seconds",
        "redtail_watcher_publish_duration_seconds",
        "redtail_watcher_publish_errors_total",
        "redtail_watcher_duplicates_skipped_total",
        "redtail_watcher_rotations_total",
        "redtail_watcher_truncations_total",
        "redtail_watcher_oversized_lines_total",
        "redtail_watcher_redis_up",
        "redtail_subscriber_lines_received_total",
        "redtail_subscriber_parse_errors_total",
        "redtail_subscriber_end_to_end_latency_seconds",
        "redtail_subscriber_lag_seconds",
        "redtail_subscriber_pending_entries",
        "redtail_subscriber_redeliveries_total",
    ] {
        assert!(scraped.contains(name), "{name} is not exported");
    }
}

fn raw_request(addr: &str, request: &[u8]) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn health_endpoints_answer_correctly() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 10);
    let watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    wait_until(T, "ready", || watcher.http_get("/readyz").0 == 200);
    assert_eq!(watcher.http_get("/healthz").0, 200);
    assert_eq!(watcher.http_get("/nope").0, 404);
    let addr = watcher.admin_addr();
    let bad = raw_request(&addr, b"GARBAGE\r\n\r\n");
    assert!(
        bad.is_empty() || bad.starts_with("HTTP/1.1 400"),
        "malformed request answered {bad:?}"
    );
    // The process is unharmed.
    assert_eq!(watcher.http_get("/healthz").0, 200);
    assert_eq!(watcher.http_get("/metrics").0, 200);
    // Ready means Redis answers, not that the backlog is out: under load (the whole suite
    // on 2 cores) the scrape came before the first batch's reply.
    wait_until(T, "10 lines published", || {
        watcher
            .http_get("/metrics")
            .1
            .contains("redtail_watcher_lines_published_total 10")
    });
}
