//! Redis misbehaving in the ways operators meet: paused, slow, out of memory,
//! restarted empty, connections killed. The promise under each: nothing lost,
//! nothing duplicated into the stream, the reason visible in the metrics.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;

const LONG: Duration = Duration::from_secs(120);
const STREAM: &str = "redtail:logs";

fn errors(watcher: &Redtail, reason: &str) -> f64 {
    watcher
        .metrics()
        .get(
            "redtail_watcher_publish_errors_total",
            &[&format!("reason=\"{reason}\"")],
        )
        .unwrap_or(0.0)
}

/// `CLIENT PAUSE` for 10 s, then a slow Redis (every command waits behind a
/// 300 ms `DEBUG SLEEP`): the pause is seen as timeouts, counted and retried;
/// slowness below the response timeout is not an error at all.
#[test]
fn paused_then_slow_redis() {
    let redis = RedisServer::start_debuggable();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 20_000);
    let watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    let mut generator = scene.start("generate", &scene.generator_env(1000, 16_000));
    wait_until(LONG, "backlog published", || redis.xlen(STREAM) >= 20_000);

    let paused_at = Instant::now();
    redis_admin(&redis, &["CLIENT", "PAUSE", "10000", "ALL"]).expect("CLIENT PAUSE");
    wait_until(Duration::from_secs(9), "not ready while paused", || {
        watcher.http_get("/readyz").0 == 503
    });
    wait_until(Duration::from_secs(10), "a timeout counted", || {
        errors(&watcher, "timeout") > 0.0
    });
    assert!(
        paused_at.elapsed() < Duration::from_secs(10),
        "the pause must be detected while it lasts"
    );
    wait_until(Duration::from_secs(30), "ready after the pause", || {
        watcher.http_get("/readyz").0 == 200
    });

    // Slow phase: a background connection keeps Redis busy 300 ms at a time.
    let timeouts_before = errors(&watcher, "timeout");
    let committed_before = redis_committed(&redis, &scene.source);
    let stop = Arc::new(AtomicBool::new(false));
    let sleeps = Arc::new(AtomicU64::new(0));
    let slow = {
        let (stop, sleeps) = (stop.clone(), sleeps.clone());
        let mut conn = redis.conn();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let _: redis::RedisResult<String> =
                    redis::cmd("DEBUG").arg("SLEEP").arg(0.3).query(&mut conn);
                sleeps.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(4));
    stop.store(true, Ordering::Relaxed);
    slow.join().expect("slow thread");
    assert!(sleeps.load(Ordering::Relaxed) >= 8);
    assert!(
        redis_committed(&redis, &scene.source) > committed_before,
        "progress while Redis is slow"
    );
    assert_eq!(
        errors(&watcher, "timeout"),
        timeouts_before,
        "slowness under the response timeout is not a failure"
    );

    assert!(generator.wait_exit(LONG).success());
    let size = scene.log_bytes();
    wait_until(LONG, "everything committed", || {
        redis_committed(&redis, &scene.source) == size
    });
    assert_exactly_once(
        &stream_seq_counts(&redis, STREAM),
        36_000,
        "stream after pause + slowness",
    );
}

/// `maxmemory` with `noeviction`: the publish script is refused with OOM,
/// nothing half-written, the reason counted as `oom`, the lag visible; once
/// room is made every line arrives once.
#[test]
fn out_of_memory_then_room() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 10_000);
    let mut watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    wait_until(LONG, "first lines", || redis.xlen(STREAM) == 10_000);

    let used = redis_info_u64(&redis, "memory", "used_memory");
    redis_admin(&redis, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]).unwrap();
    // Below what is used: every write is refused, reads still work.
    redis_admin(
        &redis,
        &["CONFIG", "SET", "maxmemory", &(used / 2).to_string()],
    )
    .unwrap();
    prewrite_lines(&scene.log(), 10_000, 20_000);
    wait_until(Duration::from_secs(20), "OOM counted", || {
        errors(&watcher, "oom") > 0.0
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(redis.xlen(STREAM), 10_000, "a refused batch writes nothing");
    let lag = watcher.metrics().value("redtail_watcher_lag_bytes");
    assert!(lag > 1_000_000.0, "lag shows the stuck lines: {lag}");
    assert!(watcher.is_running());

    redis_admin(&redis, &["CONFIG", "SET", "maxmemory", "0"]).unwrap();
    let size = scene.log_bytes();
    wait_until(LONG, "everything committed after room was made", || {
        redis_committed(&redis, &scene.source) == size
    });
    assert_exactly_once(
        &stream_seq_counts(&redis, STREAM),
        30_000,
        "stream after OOM",
    );
    let m = watcher.metrics();
    assert_eq!(m.value("redtail_watcher_lines_published_total"), 30_000.0);
}

/// Redis restarted WITHOUT persistence loses the stream and `redtail:offsets`.
/// A running watcher continues from its position, a restarted one from its
/// checkpoint file: neither re-sends what the file says was committed. The
/// subscriber recreates its group and carries on.
#[test]
fn redis_restarted_empty_resumes_from_checkpoint() {
    let mut redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 30_000);
    let mut wenv = scene.watcher_env(&redis, "stream");
    wenv.push(("REDTAIL_CHECKPOINT_INTERVAL_MS", "100".to_string()));
    let mut watcher = scene.start("watch", &wenv);
    let subscriber = scene.start("subscribe", &scene.subscriber_env(&redis, "stream"));
    let size = scene.log_bytes();
    wait_until(LONG, "first 30 000 delivered and checkpointed", || {
        checkpoint_offset(&scene.checkpoint()) == size
            && output_lines(&scene.output_bytes()).len() == 30_000
    });

    // 1. Redis loses everything while the watcher runs.
    redis.restart();
    assert_eq!(redis.xlen(STREAM), 0, "the restarted Redis is empty");
    prewrite_lines(&scene.log(), 30_000, 10_000);
    let size = scene.log_bytes();
    wait_until(LONG, "new lines committed to the new Redis", || {
        redis_committed(&redis, &scene.source) == size
            && checkpoint_offset(&scene.checkpoint()) == size
    });
    let counts = stream_seq_counts(&redis, STREAM);
    assert_eq!(
        counts.keys().next().copied(),
        Some(30_000),
        "nothing committed before was re-sent"
    );
    assert_eq!(counts.len(), 10_000);
    assert!(counts.values().all(|&c| c == 1));

    // 2. Redis loses everything while the watcher is down too: the checkpoint
    //    file is then the only record, and it is enough.
    watcher.kill9();
    redis.restart();
    prewrite_lines(&scene.log(), 40_000, 5_000);
    watcher.restart();
    let size = scene.log_bytes();
    wait_until(LONG, "resumed from the checkpoint file", || {
        redis_committed(&redis, &scene.source) == size
    });
    let counts = stream_seq_counts(&redis, STREAM);
    assert_eq!(counts.keys().next().copied(), Some(40_000));
    assert_eq!(counts.len(), 5_000);
    assert!(counts.values().all(|&c| c == 1));

    wait_until(
        LONG,
        "subscriber caught up after two empty restarts",
        || seq_counts(output_lines(&scene.output_bytes())).len() == 45_000,
    );
    assert_exactly_once(
        &seq_counts(output_lines(&scene.output_bytes())),
        45_000,
        "subscriber output",
    );
    drop(subscriber);
}

/// `CLIENT KILL TYPE normal` every 20–120 ms while a 200 000-line backlog
/// drains through watcher and subscriber: no loss, no duplicate in the stream.
#[test]
fn connections_killed_repeatedly_during_backlog() {
    const N: u64 = 200_000;
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, N);
    let size = scene.log_bytes();
    let watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    let subscriber = scene.start("subscribe", &scene.subscriber_env(&redis, "stream"));
    wait_until(LONG, "draining", || {
        redis_committed(&redis, &scene.source) > 0
    });
    let mut rng = Rng::from_env_or_clock("REDTAIL_FAULT_SEED");
    let mut kills = 0u64;
    let mut killed_clients = 0u64;
    let deadline = Instant::now() + LONG;
    while redis_committed(&redis, &scene.source) < size
        || output_lines(&scene.output_bytes()).len() < N as usize
    {
        assert!(
            Instant::now() < deadline,
            "backlog did not drain under kills"
        );
        if let Ok(redis::Value::Int(n)) = redis_admin(&redis, &["CLIENT", "KILL", "TYPE", "normal"])
        {
            killed_clients += n as u64;
        }
        kills += 1;
        std::thread::sleep(rng.millis(20, 120));
        if kills >= 60 {
            break; // enough faults; let the rest drain undisturbed
        }
    }
    wait_until(LONG, "everything committed", || {
        redis_committed(&redis, &scene.source) == size
    });
    wait_until(LONG, "everything at the subscriber", || {
        seq_counts(output_lines(&scene.output_bytes())).len() == N as usize
    });
    eprintln!("{kills} CLIENT KILL rounds, {killed_clients} connections killed");
    assert!(killed_clients >= 10, "the kills hit connections");
    assert_exactly_once(
        &stream_seq_counts(&redis, STREAM),
        N,
        "stream under CLIENT KILL",
    );
    let out = seq_counts(output_lines(&scene.output_bytes()));
    assert_none_missing(&out, N, "subscriber output under CLIENT KILL");
    let m = watcher.metrics();
    let failed: f64 = ["connection", "timeout", "connect"]
        .iter()
        .map(|r| errors(&watcher, r))
        .sum();
    assert!(failed > 0.0, "the killed connections are counted");
    // A reply lost to a kill after the script ran: the retry finds those lines
    // committed and skips them, so they are counted as skipped, not published.
    assert_eq!(
        m.value("redtail_watcher_lines_published_total")
            + m.value("redtail_watcher_duplicates_skipped_total"),
        N as f64
    );
    drop(subscriber);
}
