//! Pub/sub mode keeps two batches in flight (crates/watcher/src/window.rs). The promise
//! still holds when the watcher's connections are killed under it: every seq reaches the
//! connected subscriber exactly once, in order, and the offsets end at the file's size.

mod support;

use std::time::{Duration, Instant};

use support::*;

const LONG: Duration = Duration::from_secs(180);

#[test]
fn pubsub_backlog_exactly_once_under_connection_kills() {
    // Small enough that the subscriber never nears Redis's pub/sub output-buffer limit.
    const N: u64 = 60_000;
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, N);
    let size = scene.log_bytes();
    let subscriber = scene.start("subscribe", &scene.subscriber_env(&redis, "pubsub"));
    wait_until(Duration::from_secs(20), "subscriber ready", || {
        subscriber.http_get("/readyz").0 == 200
    });
    // Small batches: many windows, many chances for a kill to land between two calls.
    let mut env = scene.watcher_env(&redis, "pubsub");
    env.push(("REDTAIL_BATCH_MAX_LINES", "64".into()));
    let watcher = scene.start("watch", &env);
    let mut rng = Rng::from_env_or_clock("REDTAIL_FAULT_SEED");
    let mut killed = 0u64;
    let deadline = Instant::now() + LONG;
    let mut rounds = 0;
    while redis_committed(&redis, &scene.source) < size && rounds < 40 {
        assert!(
            Instant::now() < deadline,
            "backlog did not drain under kills"
        );
        // TYPE normal: the watcher's connections; the subscriber's SUBSCRIBE one survives.
        if let Ok(redis::Value::Int(n)) = redis_admin(&redis, &["CLIENT", "KILL", "TYPE", "normal"])
        {
            killed += n as u64;
        }
        rounds += 1;
        std::thread::sleep(rng.millis(5, 40));
    }
    wait_until(LONG, "everything committed", || {
        redis_committed(&redis, &scene.source) == size
    });
    wait_until(LONG, "everything at the subscriber", || {
        output_lines(&scene.output_bytes()).len() >= N as usize
    });
    std::thread::sleep(Duration::from_millis(300)); // a duplicate would show up now
    eprintln!("{rounds} CLIENT KILL rounds, {killed} connections killed");
    let out = scene.output_bytes();
    let lines = output_lines(&out);
    assert_exactly_once(&seq_counts(lines.iter().copied()), N, "subscriber output");
    assert_in_order(&lines, "subscriber output");
    // A batch whose reply a kill swallowed is counted as skipped at its resend, not as
    // published: each line is counted once, as one or the other.
    let m = watcher.metrics();
    let published = m.value("redtail_watcher_lines_published_total");
    let skipped = m.value("redtail_watcher_duplicates_skipped_total");
    eprintln!("published {published}, skipped at a resend {skipped}");
    assert_eq!(published + skipped, N as f64);
    drop(watcher);
    drop(subscriber);
}

/// The window writes the checkpoint itself (crates/watcher/src/window.rs): a long drain with
/// `REDTAIL_CHECKPOINT_EVERY_LINES` at one batch writes it while it runs, paced by the
/// checkpoint writer (at most one write per 100 ms, states merged), and ends with the
/// checkpoint at most the policy's lines behind Redis.
#[test]
fn a_long_pubsub_drain_writes_the_checkpoint_as_it_goes() {
    const N: u64 = 60_000;
    const BATCH: u64 = 64;
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, N);
    let size = scene.log_bytes();
    let mut env = scene.watcher_env(&redis, "pubsub");
    env.push(("REDTAIL_BATCH_MAX_LINES", BATCH.to_string()));
    env.push(("REDTAIL_CHECKPOINT_EVERY_LINES", BATCH.to_string()));
    // No timed flushes: every write below was asked for by committed lines.
    env.push(("REDTAIL_CHECKPOINT_INTERVAL_MS", "600000".into()));
    let watcher = scene.start("watch", &env);
    wait_until(LONG, "everything committed", || {
        redis_committed(&redis, &scene.source) == size
    });
    // The last lines (fewer than REDTAIL_CHECKPOINT_EVERY_LINES) wait for the interval;
    // the write of the state before them may still be waiting out its gap.
    wait_until(
        Duration::from_secs(10),
        "the checkpoint near the end",
        || size - checkpoint_offset(&scene.checkpoint()) < size / N * BATCH * 2,
    );
    let writes = watcher
        .metrics()
        .value("redtail_watcher_checkpoint_writes_total");
    eprintln!("{writes} checkpoint writes for {} batches", N / BATCH);
    assert!(writes >= 1.0);
    drop(watcher);
}
