//! End-to-end: the real binary against a real redis-server, under restarts
//! and faults. Every test checks the promise: every seq exactly once into
//! Redis (stream mode), nothing missing at the subscriber.

mod support;

use std::time::{Duration, Instant};

use support::*;

const LONG: Duration = Duration::from_secs(180);

fn stream_seqs(redis: &RedisServer) -> std::collections::BTreeMap<u64, u32> {
    let entries = redis.stream_lines("redtail:logs");
    seq_counts(entries.iter().map(|e| e.line.as_slice()))
}

/// 100 000 lines already in the file, then live generation continuing the
/// sequence: the subscriber's raw output holds every seq once, in order.
fn backlog_then_live(mode: &str) {
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 100_000);
    let subscriber = scene.start("subscribe", &scene.subscriber_env(&redis, mode));
    // Pub/sub is at-most-once: the subscriber must listen before lines flow.
    wait_until(Duration::from_secs(20), "subscriber ready", || {
        subscriber.http_get("/readyz").0 == 200
    });
    let watcher = scene.start("watch", &scene.watcher_env(&redis, mode));
    let mut generator = scene.start("generate", &scene.generator_env(2000, 3000));
    assert!(
        generator.wait_exit(LONG).success(),
        "generator failed: {}",
        generator.stderr()
    );
    wait_until(LONG, "103 000 lines at the subscriber", || {
        output_lines(&scene.output_bytes()).len() >= 103_000
    });
    std::thread::sleep(Duration::from_millis(300)); // anything extra would show up now
    let out = scene.output_bytes();
    let lines = output_lines(&out);
    assert_exactly_once(
        &seq_counts(lines.iter().copied()),
        103_000,
        "subscriber output",
    );
    assert_in_order(&lines, "subscriber output");
    if mode == "stream" {
        assert_exactly_once(&stream_seqs(&redis), 103_000, "stream");
    }
    let m = watcher.metrics();
    assert_eq!(m.value("redtail_watcher_lines_published_total"), 103_000.0);
    drop(watcher);
    drop(subscriber);
}

#[test]
fn backlog_then_live_stream() {
    backlog_then_live("stream");
}

#[test]
fn backlog_then_live_pubsub() {
    backlog_then_live("pubsub");
}

/// kill -9 of the watcher at 5 moments while it drains a 200 000-line
/// backlog: every seq exactly once in the stream.
#[test]
fn watcher_kill9_during_backlog() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    const N: u64 = 200_000;
    prewrite_lines(&scene.log(), 0, N);
    let size = scene.log_bytes();
    let mut watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    let mut resumed_from_redis = 0;
    for round in 1..=5u64 {
        // Kill at a different point of the drain each time.
        let target = size * round / 7;
        wait_until(LONG, "progress before the kill", || {
            redis_committed(&redis, &scene.source) >= target
        });
        std::thread::sleep(Duration::from_millis(7 * round));
        watcher.kill9();
        watcher.restart();
        wait_until(
            Duration::from_secs(20),
            "restarted watcher logs its start",
            || watcher.stderr().contains("Watching."),
        );
        if watcher.stderr().contains("resuming from Redis") {
            resumed_from_redis += 1;
        }
    }
    wait_until(LONG, "everything committed", || {
        redis_committed(&redis, &scene.source) == size
    });
    assert_exactly_once(&stream_seqs(&redis), N, "stream after 5 kill -9");
    assert_eq!(redis.xlen("redtail:logs"), N);
    // The checkpoint usually lags Redis at a kill: the restart must take Redis's offset.
    assert!(
        resumed_from_redis > 0,
        "no restart resumed from the Redis-side offset"
    );
}

/// A reply lost after Redis ran the script (Redis busy past the response
/// timeout): the retry is skipped by the script, not published twice.
#[test]
fn lost_reply_is_skipped_not_duplicated() {
    let redis = RedisServer::start_debuggable();
    let scene = Scene::new();
    const N: u64 = 150_000;
    prewrite_lines(&scene.log(), 0, N);
    let size = scene.log_bytes();
    let watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    wait_until(LONG, "draining", || {
        redis_committed(&redis, &scene.source) > 0
    });
    // Block Redis longer than the watcher's 5 s response timeout while a batch is queued.
    let _: redis::RedisResult<String> = redis::cmd("DEBUG")
        .arg("SLEEP")
        .arg(6.5)
        .query(&mut redis.conn());
    wait_until(LONG, "everything committed", || {
        redis_committed(&redis, &scene.source) == size
    });
    assert_exactly_once(&stream_seqs(&redis), N, "stream after a lost reply");
    let m = watcher.metrics();
    assert!(
        m.value("redtail_watcher_duplicates_skipped_total") > 0.0,
        "expected an idempotent skip"
    );
    assert!(
        m.get(
            "redtail_watcher_publish_errors_total",
            &["reason=\"timeout\""]
        )
        .unwrap_or(0.0)
            > 0.0
    );
}

/// SIGTERM mid-stream: exit 0, checkpoint current; the restart continues
/// with no loss and no duplicate.
#[test]
fn watcher_sigterm_and_restart() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 50_000);
    let mut generator = scene.start("generate", &scene.generator_env(2000, 6000));
    let mut watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    wait_until(LONG, "some lines published", || {
        redis.xlen("redtail:logs") > 52_000
    });
    let status = watcher.terminate(Duration::from_secs(15));
    assert!(
        status.success(),
        "watcher exit status {status:?}: {}",
        watcher.stderr()
    );
    // The checkpoint file holds what Redis committed: nothing newer, nothing older.
    let checkpoint: serde_json::Value =
        serde_json::from_slice(&std::fs::read(scene.checkpoint()).expect("checkpoint written"))
            .expect("checkpoint json");
    let file_offset: u64 = checkpoint["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|f| f["offset"].as_u64().unwrap())
        .sum();
    assert_eq!(
        file_offset,
        redis_committed(&redis, &scene.source),
        "checkpoint is current at exit"
    );
    watcher.restart();
    assert!(generator.wait_exit(LONG).success());
    let size = scene.log_bytes();
    wait_until(LONG, "everything committed", || {
        redis_committed(&redis, &scene.source) == size
    });
    assert_exactly_once(
        &stream_seqs(&redis),
        56_000,
        "stream after SIGTERM + restart",
    );
}

fn vm_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Redis down for 5 s during live generation (AOF always): no loss, and the
/// watcher's memory does not grow with the outage (the file is the buffer).
#[test]
fn redis_outage_during_live_generation() {
    let mut redis = RedisServer::start_durable();
    let scene = Scene::new();
    let mut generator = scene.start("generate", &scene.generator_env(3000, 30_000));
    let watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    let subscriber = scene.start("subscribe", &scene.subscriber_env(&redis, "stream"));
    wait_until(LONG, "flowing", || {
        output_lines(&scene.output_bytes()).len() > 3000
    });
    let pid = watcher.pid().expect("watcher pid");
    redis.kill();
    std::thread::sleep(Duration::from_millis(500));
    let rss_start = vm_rss_kib(pid);
    std::thread::sleep(Duration::from_millis(4500));
    let rss_end = vm_rss_kib(pid);
    let (ready, _) = watcher.http_get("/readyz");
    assert_eq!(ready, 503, "not ready while Redis is down");
    redis.restart();
    assert!(generator.wait_exit(LONG).success());
    wait_until(LONG, "all 30 000 lines at the subscriber", || {
        seq_counts(output_lines(&scene.output_bytes())).len() == 30_000
    });
    assert_exactly_once(&stream_seqs(&redis), 30_000, "stream after a Redis outage");
    assert_none_missing(
        &seq_counts(output_lines(&scene.output_bytes())),
        30_000,
        "subscriber output",
    );
    assert!(
        rss_end <= rss_start + 2048,
        "watcher memory grew during the outage: {rss_start} KiB -> {rss_end} KiB"
    );
    drop(subscriber);
}

/// The generator rotates every ~1000 lines; the watcher follows, and also
/// finds files rotated while it was stopped.
#[test]
fn rotation_live_and_while_stopped() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    let mut gen_env = scene.generator_env(4000, 40_000);
    gen_env.push(("REDTAIL_ROTATE_BYTES", "180000".to_string()));
    gen_env.push(("REDTAIL_ROTATE_KEEP", "100".to_string()));
    // Watcher first: files rotated before its very first start are not its business
    // (only the file at REDTAIL_LOG_PATH is), so none may exist yet.
    let mut watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    wait_until(LONG, "watcher ready", || {
        watcher.http_get("/readyz").0 == 200
    });
    let mut generator = scene.start("generate", &gen_env);
    wait_until(LONG, "a few rotations", || scene.path("app.log.3").exists());
    assert!(watcher.terminate(Duration::from_secs(15)).success());
    // Stay down across at least two more rotations.
    let rotated_before = (1..200)
        .filter(|i| scene.path(&format!("app.log.{i}")).exists())
        .count();
    wait_until(LONG, "two rotations while stopped", || {
        (1..200)
            .filter(|i| scene.path(&format!("app.log.{i}")).exists())
            .count()
            >= rotated_before + 2
    });
    watcher.restart();
    assert!(generator.wait_exit(LONG).success());
    wait_until(LONG, "all 40 000 lines in the stream", || {
        redis.xlen("redtail:logs") >= 40_000
    });
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(&stream_seqs(&redis), 40_000, "stream across rotations");
    assert!(watcher.metrics().value("redtail_watcher_rotations_total") >= 2.0);
}

/// kill -9 of the subscriber: nothing lost; duplicates only among the
/// entries in flight (at most one read batch).
#[test]
fn subscriber_kill9_and_restart() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 60_000);
    let _watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    let mut subscriber = scene.start("subscribe", &scene.subscriber_env(&redis, "stream"));
    wait_until(LONG, "subscriber half way", || {
        output_lines(&scene.output_bytes()).len() > 20_000
    });
    subscriber.kill9();
    subscriber.restart();
    wait_until(LONG, "all lines at the subscriber", || {
        seq_counts(output_lines(&scene.output_bytes())).len() == 60_000
    });
    let counts = seq_counts(output_lines(&scene.output_bytes()));
    assert_none_missing(&counts, 60_000, "subscriber output");
    let (_, dups) = loss_and_dups(&counts, 60_000);
    assert!(
        dups.len() <= 512,
        "{} duplicates: more than one batch in flight",
        dups.len()
    );
    let start = Instant::now();
    wait_until(Duration::from_secs(20), "pending drained", || {
        let pending: redis::Value = redis::cmd("XPENDING")
            .arg("redtail:logs")
            .arg("redtail")
            .query(&mut redis.conn())
            .unwrap();
        matches!(&pending, redis::Value::Array(v) if matches!(v.first(), Some(redis::Value::Int(0))))
    });
    assert!(start.elapsed() < Duration::from_secs(20));
}

/// The watcher stops right after a rotation, before the new file has a line
/// (so before it is even opened); while it is down that file gets lines and
/// is rotated away too. The checkpoint must still lead the restart to it:
/// a finished file stays recorded until its successor is.
#[test]
fn stop_between_rotation_and_next_file() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 100);
    let mut watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    wait_until(LONG, "first file published", || {
        redis.xlen("redtail:logs") == 100
    });
    std::fs::rename(scene.log(), scene.path("app.log.1")).unwrap();
    std::fs::File::create(scene.log()).unwrap();
    wait_until(LONG, "rotation seen", || {
        watcher
            .metrics()
            .get("redtail_watcher_rotations_total", &[])
            .unwrap_or(0.0)
            >= 1.0
    });
    assert!(watcher.terminate(Duration::from_secs(15)).success());
    // While down: the (empty) new file gets lines and is rotated away as well.
    prewrite_lines(&scene.log(), 100, 100);
    std::fs::rename(scene.path("app.log.1"), scene.path("app.log.2")).unwrap();
    std::fs::rename(scene.log(), scene.path("app.log.1")).unwrap();
    prewrite_lines(&scene.log(), 200, 100);
    watcher.restart();
    wait_until(LONG, "all 300 lines", || redis.xlen("redtail:logs") >= 300);
    std::thread::sleep(Duration::from_millis(500));
    assert_exactly_once(
        &stream_seqs(&redis),
        300,
        "stream after a stop between files",
    );
}
