//! The subscriber against a real `redis-server` (started by each test on its own port).

mod common;

use std::future::Future;
use std::time::Duration;

use common::*;
use redtail_subscriber::OutputFormat;

const STREAM: &str = "redtail:logs";
const GROUP: &str = "redtail";
const WAIT: Duration = Duration::from_secs(20);

/// Every test body runs under [`TEST_LIMIT`].
async fn bounded(test: impl Future<Output = ()>) {
    tokio::time::timeout(TEST_LIMIT, test)
        .await
        .expect("test exceeded its time limit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_the_group_then_consumes_and_acks_everything() {
    bounded(async {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let run = start(config(&redis.url(), "c1", dir.path().join("out.log")));
        // Before the task first runs, no condition is registered yet: wait for Redis itself.
        eventually(WAIT, "ready", || {
            run.redis_up.get() == 1 && run.readiness.check().is_ok()
        })
        .await;

        let mut conn = redis.async_conn().await;
        let groups: redis::Value = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(STREAM)
            .query_async(&mut conn)
            .await
            .expect("the stream was created (MKSTREAM) with its group");
        assert!(
            matches!(&groups, redis::Value::Array(g) if g.len() == 1),
            "{groups:?}"
        );

        xadd_lines(&mut conn, STREAM, &generator_lines(0, 500)).await;
        eventually(WAIT, "500 events", || run.lines().len() >= 500).await;
        let lines = run.lines();
        assert_eq!(seqs(&lines), (0..500).collect::<Vec<_>>());
        let event: serde_json::Value = serde_json::from_str(&lines[0]).expect("json");
        assert_eq!(event["metadata"]["event_type"], "GENERIC_EVENT");
        assert_eq!(event["security_result"][0]["severity"], "INFORMATIONAL");
        assert_eq!(event["additional"]["source"], "pod-test");
        assert!(event["metadata"]["collected_timestamp"].is_string());
        assert!(event["additional"]["stream_id"].is_string());

        eventually(WAIT, "acked", || run.metrics.acked.get() == 500).await;
        assert_eq!(pending(&mut conn, STREAM, GROUP).await, 0);
        assert_eq!(run.metrics.lines_received.get(), 500);
        assert_eq!(parse_errors(&run.metrics), 0);
        assert_eq!(run.metrics.redeliveries.get(), 0);
        assert_eq!(run.metrics.end_to_end_latency.get_sample_count(), 500);
        // The gauge task samples every 2 s. Lag is now − the newest event's own
        // timestamp (INTERFACE.md): the lines were stamped "now" when written, so
        // after 2.5 s idle it is about that, and it keeps growing while idle.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert_eq!(run.metrics.pending_entries.get(), 0);
        let lag = run.metrics.lag.get();
        assert!((0.4..30.0).contains(&lag), "lag {lag}");
        run.stop().await.expect("clean stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_entries_left_by_a_dead_consumer() {
    bounded(async {
        let redis = RedisServer::start();
        let mut conn = redis.async_conn().await;
        create_group(&mut conn, STREAM, GROUP).await;
        xadd_lines(&mut conn, STREAM, &generator_lines(0, 20)).await;
        // "dead" reads everything and dies before acknowledging.
        read_as(&mut conn, STREAM, GROUP, "dead").await;
        assert_eq!(pending(&mut conn, STREAM, GROUP).await, 20);

        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(&redis.url(), "alive", dir.path().join("out.log"));
        cfg.claim_idle = Duration::from_millis(300);
        let run = start(cfg);
        eventually(WAIT, "claimed entries written", || run.lines().len() >= 20).await;
        assert_eq!(run.metrics.redeliveries.get(), 20);
        xadd_lines(&mut conn, STREAM, &generator_lines(20, 30)).await;
        eventually(WAIT, "new entries too", || run.lines().len() >= 30).await;
        assert_eq!(seqs(&run.lines()), (0..30).collect::<Vec<_>>());
        eventually(WAIT, "all acked", || run.metrics.acked.get() == 30).await;
        assert_eq!(pending(&mut conn, STREAM, GROUP).await, 0);
        run.stop().await.expect("clean stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rereads_its_own_pending_entries_at_restart() {
    bounded(async {
        let redis = RedisServer::start();
        let mut conn = redis.async_conn().await;
        create_group(&mut conn, STREAM, GROUP).await;
        xadd_lines(&mut conn, STREAM, &generator_lines(0, 10)).await;
        // A previous life of "me" read all ten, then was killed before its XACK.
        let read = read_as(&mut conn, STREAM, GROUP, "me").await;
        // ...and one of them was trimmed away meanwhile: pending, but its content is gone.
        let first_id = read.keys[0].ids[0].id.clone();
        let _: u64 = redis::cmd("XDEL")
            .arg(STREAM)
            .arg(&first_id)
            .query_async(&mut conn)
            .await
            .expect("XDEL");

        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(&redis.url(), "me", dir.path().join("out.log"));
        cfg.claim_idle = Duration::from_secs(600);
        let run = start(cfg);
        eventually(WAIT, "own pending written", || run.lines().len() >= 9).await;
        assert_eq!(seqs(&run.lines()), (1..10).collect::<Vec<_>>());
        assert_eq!(run.metrics.redeliveries.get(), 9);
        eventually(WAIT, "all acked", || {
            run.metrics.acked.get() == 10 && run.metrics.vanished_entries.get() == 1
        })
        .await;
        assert_eq!(pending(&mut conn, STREAM, GROUP).await, 0);
        run.stop().await.expect("clean stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_output_is_byte_exact_and_bad_entries_do_not_stop_it() {
    bounded(async {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(&redis.url(), "c1", dir.path().join("out.log"));
        cfg.output_format = OutputFormat::Raw;
        let run = start(cfg);
        let mut conn = redis.async_conn().await;
        let lines = vec![
            br#"{"level":"INFO","message":"ok"}"#.to_vec(),
            b"not json \xff\xfe binary".to_vec(),
            b"[1,2]".to_vec(),
        ];
        xadd_lines(&mut conn, STREAM, &lines[..2]).await;
        // A foreign producer's entry without a `line` field.
        let _: String = redis::cmd("XADD")
            .arg(STREAM)
            .arg("*")
            .arg("event")
            .arg("deploy")
            .query_async(&mut conn)
            .await
            .expect("XADD");
        xadd_lines(&mut conn, STREAM, &lines[2..]).await;
        eventually(WAIT, "all acked", || run.metrics.acked.get() == 4).await;
        let out = std::fs::read(&run.output).expect("output");
        let mut want = Vec::new();
        for line in &lines {
            want.extend_from_slice(line);
            want.push(b'\n');
        }
        assert_eq!(out, want);
        // Only the invalid UTF-8 line: `[1,2]` is fine text, and an entry without a line
        // is not parsed in raw mode (nothing is written for it).
        assert_eq!(parse_errors(&run.metrics), 1);
        assert_eq!(run.metrics.lines_received.get(), 3);
        assert_eq!(pending(&mut conn, STREAM, GROUP).await, 0);
        run.stop().await.expect("clean stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreates_a_deleted_stream_and_group() {
    bounded(async {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let run = start(config(&redis.url(), "c1", dir.path().join("out.log")));
        let mut conn = redis.async_conn().await;
        eventually(WAIT, "ready", || run.redis_up.get() == 1).await;
        xadd_lines(&mut conn, STREAM, &generator_lines(0, 5)).await;
        eventually(WAIT, "5 events", || run.lines().len() >= 5).await;
        let _: u64 = redis::cmd("DEL")
            .arg(STREAM)
            .query_async(&mut conn)
            .await
            .expect("DEL");
        xadd_lines(&mut conn, STREAM, &generator_lines(5, 10)).await;
        eventually(WAIT, "10 events", || run.lines().len() >= 10).await;
        assert_eq!(seqs(&run.lines()), (0..10).collect::<Vec<_>>());
        run.stop().await.expect("clean stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovers_when_redis_restarts() {
    bounded(async {
        let mut redis = RedisServer::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let run = start(config(&redis.url(), "c1", dir.path().join("out.log")));
        {
            let mut conn = redis.async_conn().await;
            xadd_lines(&mut conn, STREAM, &generator_lines(0, 10)).await;
        }
        eventually(WAIT, "10 events", || run.lines().len() >= 10).await;
        eventually(WAIT, "acked", || run.metrics.acked.get() == 10).await;

        redis.kill();
        eventually(WAIT, "not ready while Redis is down", || {
            run.readiness.check().is_err() && run.redis_up.get() == 0
        })
        .await;
        let reason = run.readiness.check().expect_err("not ready");
        assert!(reason.starts_with("redis:"), "{reason}");
        tokio::time::sleep(Duration::from_millis(500)).await;

        redis.restart();
        let mut conn = redis.async_conn().await;
        xadd_lines(&mut conn, STREAM, &generator_lines(10, 20)).await;
        eventually(WAIT, "20 events", || run.lines().len() >= 20).await;
        assert_eq!(seqs(&run.lines()), (0..20).collect::<Vec<_>>());
        eventually(WAIT, "ready again", || {
            run.readiness.check().is_ok() && run.redis_up.get() == 1
        })
        .await;
        assert!(
            run.metrics
                .redis_errors
                .with_label_values(&["connect"])
                .get()
                >= 1
        );
        run.stop().await.expect("clean stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_receives_lines_and_resubscribes_after_client_kill() {
    bounded(async {
        let redis = RedisServer::start();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = config(&redis.url(), "c1", dir.path().join("out.log"));
        cfg.pubsub = true;
        let run = start(cfg);
        let mut conn = redis.async_conn().await;
        let probe = conn.clone();
        let subscribers = || {
            let mut conn = probe.clone();
            async move {
                let reply: (String, u64) = redis::cmd("PUBSUB")
                    .arg("NUMSUB")
                    .arg("logs")
                    .query_async(&mut conn)
                    .await
                    .expect("PUBSUB NUMSUB");
                reply.1
            }
        };
        let deadline = std::time::Instant::now() + WAIT;
        while subscribers().await == 0 {
            assert!(std::time::Instant::now() < deadline, "never subscribed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eventually(WAIT, "ready", || run.readiness.check().is_ok()).await;
        for line in generator_lines(0, 10) {
            let _: u64 = redis::cmd("PUBLISH")
                .arg("logs")
                .arg(line)
                .query_async(&mut conn)
                .await
                .expect("PUBLISH");
        }
        eventually(WAIT, "10 events", || run.lines().len() >= 10).await;
        let event: serde_json::Value = serde_json::from_str(&run.lines()[0]).expect("json");
        assert!(event["metadata"].get("collected_timestamp").is_none());
        assert_eq!(event["principal"]["hostname"], "h");

        let killed: u64 = redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query_async(&mut conn)
            .await
            .expect("CLIENT KILL");
        assert_eq!(killed, 1);
        eventually(WAIT, "the loss is noticed", || {
            run.metrics
                .redis_errors
                .with_label_values(&["connection"])
                .get()
                >= 1
        })
        .await;
        let deadline = std::time::Instant::now() + WAIT;
        while subscribers().await == 0 {
            assert!(std::time::Instant::now() < deadline, "never resubscribed");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for line in generator_lines(10, 20) {
            let _: u64 = redis::cmd("PUBLISH")
                .arg("logs")
                .arg(line)
                .query_async(&mut conn)
                .await
                .expect("PUBLISH");
        }
        eventually(WAIT, "20 events", || run.lines().len() >= 20).await;
        assert_eq!(seqs(&run.lines()), (0..20).collect::<Vec<_>>());
        eventually(WAIT, "ready again", || run.readiness.check().is_ok()).await;
        run.stop().await.expect("clean stop");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_error_is_fatal_and_nothing_is_acknowledged() {
    bounded(async {
        let full = std::path::Path::new("/dev/full");
        if !full.exists() {
            eprintln!("no /dev/full here; skipping");
            return;
        }
        let redis = RedisServer::start();
        let mut conn = redis.async_conn().await;
        let run = start(config(&redis.url(), "c1", full.to_path_buf()));
        xadd_lines(&mut conn, STREAM, &generator_lines(0, 5)).await;
        let result = tokio::time::timeout(WAIT, run.handle)
            .await
            .expect("the subscriber ends by itself")
            .expect("no panic");
        let err = result.expect_err("writing to /dev/full fails");
        assert_eq!(err.reason(), "output");
        assert_eq!(run.metrics.acked.get(), 0);
        assert_eq!(pending(&mut conn, STREAM, GROUP).await, 5);
    })
    .await;
}

/// `redtail_subscriber_parse_errors_total` summed over its `format` label.
fn parse_errors(metrics: &redtail_subscriber::Metrics) -> u64 {
    redtail_subscriber::ParseFormat::ALL
        .iter()
        .map(|f| metrics.parse_errors.with_label_values(&[f.as_str()]).get())
        .sum()
}

/// A backlog is read ahead (the next `XREADGROUP` in flight while a batch is written). A stop
/// in the middle writes and acknowledges the batch read ahead too: nothing is left pending,
/// and a restart continues with the next entry, none written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_mid_backlog_leaves_nothing_pending_and_the_restart_continues() {
    bounded(async {
        let redis = RedisServer::start();
        let mut conn = redis.async_conn().await;
        let total = 20_000u64;
        for from in (0..total).step_by(1000) {
            xadd_lines(&mut conn, STREAM, &generator_lines(from, from + 1000)).await;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out.log");
        let run = start(config(&redis.url(), "me", out.clone()));
        eventually(WAIT, "some of the backlog", || run.lines().len() >= 640).await;
        let metrics = run.metrics.clone();
        run.stop().await.expect("clean stop");
        let written = seqs(
            &std::fs::read_to_string(&out)
                .expect("read")
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>(),
        );
        let n = written.len() as u64;
        assert!(n < total, "stopped mid-backlog ({n} of {total})");
        assert_eq!(
            written,
            (0..n).collect::<Vec<_>>(),
            "a prefix of the backlog, each entry once"
        );
        assert_eq!(metrics.acked.get(), n, "every written entry acknowledged");
        assert_eq!(
            pending(&mut conn, STREAM, GROUP).await,
            0,
            "nothing left pending"
        );

        let run = start(config(&redis.url(), "me", out.clone()));
        eventually(WAIT, "the whole backlog", || {
            run.lines().len() as u64 >= total
        })
        .await;
        eventually(WAIT, "all acked", || run.metrics.acked.get() == total - n).await;
        assert_eq!(seqs(&run.lines()), (0..total).collect::<Vec<_>>());
        assert_eq!(run.metrics.redeliveries.get(), 0);
        assert_eq!(pending(&mut conn, STREAM, GROUP).await, 0);
        run.stop().await.expect("clean stop");
    })
    .await;
}
