//! ACL users with the README's minimal rules: both roles run under them without a
//! refusal, what they must not do is refused, and a missing rule never duplicates.

use std::time::Duration;

use crate::support::*;
use crate::T;

/// The minimal rules of the README's Security section (password appended).
pub(crate) const WATCHER_RULES: &str = "on resetkeys ~redtail:offsets ~redtail:logs resetchannels &logs -@all +ping +evalsha +eval +script|load +hmget +hscan +hget +hset +hdel +xadd +xtrim +publish";
pub(crate) const SUBSCRIBER_RULES: &str = "on resetkeys ~redtail:logs resetchannels &logs -@all +ping +xreadgroup +xack +xgroup|create +xautoclaim +xpending +xinfo|groups +subscribe +evalsha +script|load +xinfo|consumers +xgroup|delconsumer";

pub(crate) fn acl_setuser(redis: &RedisServer, user: &str, rules: &str, password: &str) {
    let mut cmd = redis::cmd("ACL");
    cmd.arg("SETUSER").arg(user);
    for rule in rules.split_whitespace() {
        cmd.arg(rule);
    }
    cmd.arg(format!(">{password}"));
    let _: String = cmd.query(&mut redis.conn()).expect("ACL SETUSER");
}

fn user_conn(redis: &RedisServer, user: &str, password: &str) -> redis::Connection {
    redis::Client::open(format!(
        "redis://{user}:{password}@127.0.0.1:{}",
        redis.port
    ))
    .unwrap()
    .get_connection_with_timeout(Duration::from_secs(2))
    .expect("connect as ACL user")
}

fn refused(conn: &mut redis::Connection, args: &[&str]) -> String {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    match cmd.query::<redis::Value>(conn) {
        Ok(v) => panic!("{args:?} was allowed: {v:?}"),
        Err(e) => {
            assert_eq!(e.code(), Some("NOPERM"), "{args:?}: {e}");
            e.to_string()
        }
    }
}

fn acl_log_len(redis: &RedisServer) -> usize {
    let log: Vec<redis::Value> = redis::cmd("ACL")
        .arg("LOG")
        .arg(1000)
        .query(&mut redis.conn())
        .unwrap();
    log.len()
}

/// Both roles, in both modes, under ACL users with the minimal rules; ACL LOG
/// stays empty (nothing they do is refused); then what they must not do is refused.
#[test]
fn acl_users_with_minimal_rules() {
    let redis = RedisServer::start();
    acl_setuser(&redis, "redtail-watcher", WATCHER_RULES, "w-pass-1");
    acl_setuser(&redis, "redtail-subscriber", SUBSCRIBER_RULES, "s-pass-2");
    let url = |user: &str, pw: &str| format!("redis://{user}:{pw}@127.0.0.1:{}", redis.port);
    let set_url = |mut env: Vec<(&'static str, String)>, u: String| {
        env.retain(|(k, _)| *k != "REDTAIL_REDIS_URL");
        env.push(("REDTAIL_REDIS_URL", u));
        env
    };

    for (mode, n) in [("stream", 5_000u64), ("pubsub", 2_000)] {
        let mut scene = Scene::new();
        // Same first line, maybe a recycled inode: a distinct source keeps the
        // second run from being taken for the first run's (committed) file.
        scene.source = format!("acl-{mode}");
        let mut subscriber = scene.start(
            "subscribe",
            &set_url(
                scene.subscriber_env(&redis, mode),
                url("redtail-subscriber", "s-pass-2"),
            ),
        );
        wait_until(T, "subscriber ready", || {
            subscriber.http_get("/readyz").0 == 200
        });
        let mut watcher = scene.start(
            "watch",
            &set_url(
                scene.watcher_env(&redis, mode),
                url("redtail-watcher", "w-pass-1"),
            ),
        );
        prewrite_lines(&scene.log(), 0, n);
        wait_until(T, &format!("{mode}: all lines at the subscriber"), || {
            seq_counts(output_lines(&scene.output_bytes())).len() == n as usize
        });
        assert_exactly_once(
            &seq_counts(output_lines(&scene.output_bytes())),
            n,
            &format!("{mode} subscriber output under ACL users"),
        );
        assert!(watcher.terminate(Duration::from_secs(15)).success());
        assert!(subscriber.terminate(Duration::from_secs(15)).success());
        assert_eq!(
            acl_log_len(&redis),
            0,
            "{mode}: a role was refused something it needs: {:?}",
            redis_admin(&redis, &["ACL", "LOG"])
        );
    }
    assert_exactly_once(
        &stream_seq_counts(&redis, "redtail:logs"),
        5_000,
        "stream under ACL users",
    );

    // What the roles must not do.
    let mut w = user_conn(&redis, "redtail-watcher", "w-pass-1");
    refused(&mut w, &["FLUSHALL"]);
    refused(&mut w, &["CONFIG", "GET", "requirepass"]);
    refused(&mut w, &["KEYS", "*"]);
    refused(&mut w, &["HGET", "session:42", "token"]); // allowed command, foreign key
    refused(&mut w, &["XADD", "other:stream", "*", "a", "b"]);
    refused(
        &mut w,
        &[
            "XREADGROUP",
            "GROUP",
            "redtail",
            "x",
            "STREAMS",
            "redtail:logs",
            ">",
        ],
    );
    let mut s = user_conn(&redis, "redtail-subscriber", "s-pass-2");
    refused(&mut s, &["FLUSHALL"]);
    refused(&mut s, &["XADD", "redtail:logs", "*", "line", "forged"]);
    refused(&mut s, &["HSET", "redtail:offsets", "src:fid", "0"]);
    refused(&mut s, &["XRANGE", "session:stream", "-", "+"]);
    refused(&mut s, &["PUBLISH", "logs", "forged"]);
    refused(&mut s, &["EVAL", "return redis.call('FLUSHALL')", "0"]);
    assert!(acl_log_len(&redis) >= 12, "the refusals are in ACL LOG");
}

/// A watcher user without `+xtrim` (an older copy of the rules): the stream
/// trim is refused inside the publish script. Every batch must still be
/// published exactly once — the offset is stored before the trim — and the
/// refusal counted, not retried into duplicates.
#[test]
fn refused_trim_never_duplicates() {
    let redis = RedisServer::start();
    let rules = WATCHER_RULES.replace(" +xtrim", "");
    acl_setuser(&redis, "old-watcher", &rules, "w-pass-3");
    let scene = Scene::new();
    let mut env = scene.watcher_env(&redis, "stream");
    env.retain(|(k, _)| *k != "REDTAIL_REDIS_URL");
    env.push((
        "REDTAIL_REDIS_URL",
        format!("redis://old-watcher:w-pass-3@127.0.0.1:{}", redis.port),
    ));
    env.push(("REDTAIL_STREAM_MAXLEN", "1000".to_string()));
    prewrite_lines(&scene.log(), 0, 5_000);
    let watcher = scene.start("watch", &env);
    wait_until(T, "all published", || {
        watcher
            .metrics()
            .get("redtail_watcher_lines_published_total", &[])
            == Some(5_000.0)
    });
    std::thread::sleep(Duration::from_millis(300));
    assert_exactly_once(
        &stream_seq_counts(&redis, "redtail:logs"),
        5_000,
        "stream with the trim refused",
    );
    let m = watcher.metrics();
    assert!(m.value("redtail_watcher_trim_errors_total") >= 1.0);
    assert_eq!(m.value("redtail_watcher_duplicates_skipped_total"), 0.0);
    assert!(
        watcher.stderr().contains("refused XTRIM"),
        "{}",
        watcher.stderr()
    );
}
