//! The watcher's runtime under the conditions a Kubernetes install meets (issue 13, items 1,
//! 2, 9, 10): a slow Redis during a long drain must not look dead; SIGTERM ships what the
//! files hold; `redis_up` and `/readyz` mean "batches are accepted"; files that are gone
//! leave no state or series behind.

mod support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::*;

const LONG: Duration = Duration::from_secs(120);
const STREAM: &str = "redtail:logs";

/// A background connection that keeps Redis busy in `DEBUG SLEEP <secs>` steps until
/// stopped: every command of every client waits behind it. The steps follow each other
/// within a millisecond: a longer gap lets a fast client through many times per step.
struct SlowRedis {
    stop: Arc<AtomicBool>,
    sleeps: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl SlowRedis {
    fn start(redis: &RedisServer, secs: f64) -> SlowRedis {
        let stop = Arc::new(AtomicBool::new(false));
        let sleeps = Arc::new(AtomicU64::new(0));
        let mut conn = redis.conn();
        let thread = {
            let (stop, sleeps) = (stop.clone(), sleeps.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let slept: redis::RedisResult<String> =
                        redis::cmd("DEBUG").arg("SLEEP").arg(secs).query(&mut conn);
                    match slept {
                        Ok(_) => {
                            sleeps.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(e) => eprintln!("DEBUG SLEEP failed: {e}"),
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        SlowRedis {
            stop,
            sleeps,
            thread: Some(thread),
        }
    }

    fn stop(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().expect("slow thread");
        }
        self.sleeps.load(Ordering::Relaxed)
    }
}

impl Drop for SlowRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Item 1: a long backlog drain against a Redis that answers every command only after a
/// 300 ms `DEBUG SLEEP`, with a 2 s liveness limit. The loop is busy the whole time, never
/// stuck: `/healthz` must stay 200 while lines keep being committed.
#[test]
fn liveness_stays_ok_while_a_slow_redis_drains_a_backlog() {
    let redis = RedisServer::start_debuggable();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 100_000);
    let size = scene.log_bytes();
    let mut env = scene.watcher_env(&redis, "stream");
    env.push(("REDTAIL_LIVENESS_TIMEOUT_MS", "2000".to_string()));
    env.push(("REDTAIL_BATCH_MAX_LINES", "200".to_string()));
    let watcher = scene.start("watch", &env);
    wait_until(LONG, "draining", || {
        redis_committed(&redis, &scene.source) > 0
    });

    let mut slow = SlowRedis::start(&redis, 0.3);
    let committed_before = redis_committed(&redis, &scene.source);
    let until = Instant::now() + Duration::from_secs(8);
    let mut probes = 0;
    while Instant::now() < until {
        let (status, body) = watcher.http_get("/healthz");
        assert_eq!(status, 200, "busy is not stuck: {body}");
        probes += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let committed_slow = redis_committed(&redis, &scene.source);
    assert!(slow.stop() >= 10, "Redis was kept slow");
    assert!(probes >= 10);
    assert!(
        committed_slow > committed_before && committed_slow < size,
        "the drain went on, slowly, during the probes: {committed_before} -> {committed_slow} of {size}"
    );
    wait_until(LONG, "everything committed", || {
        redis_committed(&redis, &scene.source) == size
    });
    assert_exactly_once(
        &stream_seq_counts(&redis, STREAM),
        100_000,
        "stream after a slow drain",
    );
}

/// Item 2: SIGTERM early in a 300 000-line backlog (plus a partial last line): the watcher
/// publishes everything up to the last complete line, writes the checkpoint there and
/// exits 0 within its shutdown timeout. The partial line is not published.
#[test]
fn sigterm_drains_the_backlog_then_exits_0() {
    const N: u64 = 300_000;
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, N);
    let complete = scene.log_bytes();
    append(&scene.log(), b"{\"partial\":\"no newline yet\"");
    let mut env = scene.watcher_env(&redis, "stream");
    env.push(("REDTAIL_SHUTDOWN_TIMEOUT_MS", "60000".to_string()));
    let mut watcher = scene.start("watch", &env);
    wait_until(LONG, "draining started", || {
        redis_committed(&redis, &scene.source) > 0
    });
    let at_signal = redis_committed(&redis, &scene.source);
    let signalled = Instant::now();
    let status = watcher.terminate(Duration::from_secs(75));
    let took = signalled.elapsed();
    assert!(
        status.success(),
        "exit {status:?}; stderr:\n{}",
        watcher.stderr()
    );
    assert!(
        took < Duration::from_secs(60),
        "within the timeout: {took:?}"
    );
    assert!(
        at_signal < complete,
        "SIGTERM came before the drain was done ({at_signal} of {complete})"
    );
    assert_eq!(redis_committed(&redis, &scene.source), complete);
    assert_eq!(checkpoint_offset(&scene.checkpoint()), complete);
    let entries = redis.stream_lines(STREAM);
    assert!(
        entries.iter().all(|e| !e.line.starts_with(b"{\"partial\"")),
        "a partial last line is not published"
    );
    assert_exactly_once(
        &seq_counts(entries.iter().map(|e| e.line.as_slice())),
        N,
        "stream after a SIGTERM drain",
    );
    assert!(
        watcher.stderr().contains("Shutdown drain complete"),
        "{}",
        watcher.stderr()
    );
}

/// Item 2, the other side: a shutdown timeout far too short for the backlog (and a slow
/// Redis). The watcher still exits 0, on time, with a checkpoint that never leads Redis;
/// after the restart every line is in the stream exactly once.
#[test]
fn sigterm_with_a_too_short_timeout_exits_0_and_the_restart_sends_no_duplicate() {
    const N: u64 = 300_000;
    let redis = RedisServer::start_debuggable();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, N);
    let size = scene.log_bytes();
    let mut env = scene.watcher_env(&redis, "stream");
    env.push(("REDTAIL_SHUTDOWN_TIMEOUT_MS", "1000".to_string()));
    let mut watcher = scene.start("watch", &env);
    wait_until(LONG, "draining started", || {
        redis_committed(&redis, &scene.source) > 0
    });
    let mut slow = SlowRedis::start(&redis, 0.2);
    std::thread::sleep(Duration::from_millis(300));
    let signalled = Instant::now();
    let status = watcher.terminate(Duration::from_secs(30));
    let took = signalled.elapsed();
    slow.stop();
    assert!(
        status.success(),
        "exit {status:?}; stderr:\n{}",
        watcher.stderr()
    );
    // 1 s timeout; the slack is for a loaded machine, not for the watcher.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let committed = redis_committed(&redis, &scene.source);
    assert!(
        committed < size,
        "the drain was cut short ({committed} of {size})"
    );
    assert!(checkpoint_offset(&scene.checkpoint()) <= committed);
    assert!(
        watcher.stderr().contains("out of time"),
        "{}",
        watcher.stderr()
    );

    watcher.restart();
    wait_until(LONG, "everything committed after the restart", || {
        redis_committed(&redis, &scene.source) == size
    });
    assert_exactly_once(
        &stream_seq_counts(&redis, STREAM),
        N,
        "stream after a cut-short drain and a restart",
    );
}

/// Item 9, OOM: Redis refuses the publish script while PING still works. `redis_up` stays
/// 0 and `/readyz` stays 503 naming `oom` — no flapping — until room is made.
#[test]
fn redis_up_and_readiness_mean_batches_accepted_under_oom() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 1000);
    let watcher = scene.start("watch", &scene.watcher_env(&redis, "stream"));
    wait_until(LONG, "first lines committed and ready", || {
        redis.xlen(STREAM) == 1000 && watcher.http_get("/readyz").0 == 200
    });
    redis_admin(&redis, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]).unwrap();
    redis_admin(&redis, &["CONFIG", "SET", "maxmemory", "1"]).unwrap();
    prewrite_lines(&scene.log(), 1000, 1000);
    assert_refused_steadily(&watcher, "oom");
    assert_eq!(redis.xlen(STREAM), 1000, "nothing got through");

    redis_admin(&redis, &["CONFIG", "SET", "maxmemory", "0"]).unwrap();
    let size = scene.log_bytes();
    wait_until(LONG, "everything committed after room was made", || {
        redis_committed(&redis, &scene.source) == size
    });
    wait_until(Duration::from_secs(10), "ready again", || {
        watcher.http_get("/readyz").0 == 200
    });
    assert_eq!(watcher.metrics().value("redtail_watcher_redis_up"), 1.0);
    assert_exactly_once(&stream_seq_counts(&redis, STREAM), 2000, "stream after OOM");
}

/// Item 9, ACL: a user that may PING and read but not run scripts. Not ready, `noperm` in
/// the 503 body, steadily; once the ACL is fixed everything ships once.
#[test]
fn redis_up_and_readiness_mean_batches_accepted_under_an_acl_refusal() {
    let redis = RedisServer::start();
    redis_admin(
        &redis,
        &[
            "ACL", "SETUSER", "shipper", "on", ">s3cret", "~*", "&*", "+@all", "-evalsha", "-eval",
        ],
    )
    .unwrap();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 1000);
    let mut env = scene.watcher_env(&redis, "stream");
    env.push((
        "REDTAIL_REDIS_URL",
        format!("redis://shipper:s3cret@127.0.0.1:{}", redis.port),
    ));
    let watcher = scene.start("watch", &env);
    assert_refused_steadily(&watcher, "noperm");
    assert_eq!(redis.xlen(STREAM), 0, "nothing got through");

    redis_admin(&redis, &["ACL", "SETUSER", "shipper", "+evalsha", "+eval"]).unwrap();
    let size = scene.log_bytes();
    wait_until(LONG, "everything committed once the ACL allows it", || {
        redis_committed(&redis, &scene.source) == size
    });
    wait_until(Duration::from_secs(10), "ready again", || {
        watcher.http_get("/readyz").0 == 200
    });
    assert_exactly_once(
        &stream_seq_counts(&redis, STREAM),
        1000,
        "stream after NOPERM",
    );
}

/// Waits until the watcher reports the refusal, then checks that it keeps saying so for
/// 4 s (the old PING loop flipped the gauge back to 1 every second).
fn assert_refused_steadily(watcher: &Redtail, reason: &str) {
    wait_until(Duration::from_secs(30), "refusal reported", || {
        let (status, body) = watcher.http_get("/readyz");
        status == 503 && body.contains(reason)
    });
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        let (status, body) = watcher.http_get("/readyz");
        assert_eq!(status, 503, "ready while batches are refused: {body}");
        assert!(
            body.starts_with("redis: ") && body.contains(reason),
            "the 503 body names the reason: {body}"
        );
        assert_eq!(
            watcher.metrics().value("redtail_watcher_redis_up"),
            0.0,
            "redis_up while batches are refused"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let refused = watcher
        .metrics()
        .get(
            "redtail_watcher_publish_errors_total",
            &[&format!("reason=\"{reason}\"")],
        )
        .unwrap_or(0.0);
    assert!(refused > 0.0, "refusals counted as {reason}");
}

/// Item 10: a glob over date-named files. Once a file is deleted (after it was shipped),
/// its per-path state and its `{path}` series go; the file still there keeps them.
#[test]
fn finished_files_leave_no_state_or_series_behind() {
    let redis = RedisServer::start();
    let scene = Scene::new();
    let days = ["app-20261130.log", "app-20261201.log", "app-20261202.log"];
    for (i, day) in days.iter().enumerate() {
        prewrite_lines(&scene.path(day), i as u64 * 100, 100);
    }
    let mut env = scene.watcher_env(&redis, "stream");
    env.push((
        "REDTAIL_LOG_PATH",
        scene.path("app-*.log").display().to_string(),
    ));
    let watcher = scene.start("watch", &env);
    let series = |day: &str| {
        let label = format!("path=\"{}\"", scene.path(day).display());
        let m = watcher.metrics();
        (
            m.get("redtail_watcher_lag_bytes", &[&label]),
            m.get("redtail_watcher_committed_offset_bytes", &[&label]),
        )
    };
    wait_until(LONG, "all shipped, every path has its series", || {
        redis.xlen(STREAM) == 300 && days.iter().all(|d| series(d).1.is_some_and(|c| c > 0.0))
    });
    assert_eq!(
        watcher.metrics().value("redtail_watcher_files_tracked"),
        3.0
    );

    std::fs::remove_file(scene.path(days[0])).unwrap();
    std::fs::remove_file(scene.path(days[1])).unwrap();
    wait_until(Duration::from_secs(30), "deleted files forgotten", || {
        series(days[0]) == (None, None)
            && series(days[1]) == (None, None)
            && watcher.metrics().value("redtail_watcher_files_tracked") == 1.0
    });
    // Still gone a few gauge ticks later (the gauge loop must not bring them back).
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(series(days[0]), (None, None));
    assert!(
        series(days[2]).1.is_some(),
        "the remaining file keeps its series"
    );
    assert_eq!(
        watcher.metrics().value("redtail_watcher_files_lost_total"),
        0.0,
        "deleting a shipped file loses nothing"
    );
}

/// Item 10, the silent fallback: in a user namespace whose inotify instance limit is 0 (the
/// state of a busy node out of `fs.inotify.max_user_instances`), the watcher says once that
/// it polls, counts it, and still ships every line by polling.
#[test]
fn inotify_failure_is_logged_once_counted_and_polling_ships_everything() {
    let probe = std::process::Command::new("unshare")
        .args(["-U", "-r", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: this kernel or sandbox allows no user namespaces (unshare -U -r)");
        return;
    }
    let redis = RedisServer::start();
    let scene = Scene::new();
    prewrite_lines(&scene.log(), 0, 500);
    let no_inotify = [
        "unshare",
        "-U",
        "-r",
        "sh",
        "-c",
        "echo 0 > /proc/sys/user/max_inotify_instances && exec \"$0\" \"$@\"",
    ];
    let watcher = Redtail::start_wrapped(
        "watch",
        scene.dir.path(),
        &scene.watcher_env(&redis, "stream"),
        &no_inotify,
    );
    wait_until(LONG, "first lines shipped by polling", || {
        redis.xlen(STREAM) == 500
    });
    prewrite_lines(&scene.log(), 500, 500);
    wait_until(LONG, "later lines shipped by polling", || {
        redis.xlen(STREAM) == 1000
    });
    assert_eq!(
        watcher
            .metrics()
            .value("redtail_watcher_watch_fallbacks_total"),
        1.0
    );
    let log = watcher.stderr();
    assert_eq!(
        log.matches("falling back to polling").count(),
        1,
        "logged once: {log}"
    );
    assert_exactly_once(
        &stream_seq_counts(&redis, STREAM),
        1000,
        "stream while polling",
    );
}

fn append(path: &std::path::Path, bytes: &[u8]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open log");
    f.write_all(bytes).expect("append");
}
