//! The pub/sub publish script (`crates/bus/src/publish_pubsub.lua`) against a real
//! `redis-server` with a real subscriber connected: each line is published once as its bare
//! bytes, in order; a re-sent or overlapping batch publishes only what is new; a batch behind
//! one that did not land is refused however deep the window; and a batch Redis refuses (out
//! of memory, an ACL without the channel) sends nothing and commits nothing.

mod support;

use std::time::Duration;

use redtail_bus::{Connection, Mode, OutLine, PublishBatch, Publisher, RedisTarget};
use support::{redis_admin, redis_info_u64, RedisServer};

const CHANNEL: &str = "t:chan";
const FIELD: &str = "pod-a:1f-00000000000000aa";
/// Published on a second connection after each step: everything the script published
/// before it arrives before it (one subscriber sees one server's messages in order).
const MARK: &[u8] = b"--mark--";

fn line(offset: u64, data: &'static [u8]) -> OutLine<'static> {
    OutLine {
        offset,
        end: offset + data.len() as u64 + 1,
        truncated: false,
        lines: 1,
        data,
    }
}

/// Consecutive lines from `offset`.
fn lines(mut offset: u64, data: &[&'static [u8]]) -> Vec<OutLine<'static>> {
    data.iter()
        .map(|d| {
            let l = line(offset, d);
            offset = l.end;
            l
        })
        .collect()
}

fn batch(lines: Vec<OutLine<'static>>) -> PublishBatch<'static> {
    PublishBatch {
        source: "pod-a",
        fid: "1f-00000000000000aa",
        path: "/var/log/app/app.log",
        collected_us: 1_767_225_600_000_000,
        lines,
    }
}

fn publisher(url: String) -> Publisher {
    let conn = Connection::new(RedisTarget::new(url)).expect("connection");
    Publisher::new(
        conn,
        Mode::PubSub {
            channel: CHANNEL.into(),
        },
    )
}

fn committed(redis: &RedisServer) -> Option<u64> {
    redis::cmd("HGET")
        .arg("redtail:offsets")
        .arg(FIELD)
        .query(&mut redis.conn())
        .expect("HGET")
}

/// What the subscriber received since the last call (up to a fresh mark).
fn received(redis: &RedisServer, sub: &mut redis::PubSub<'_>) -> Vec<Vec<u8>> {
    let _: i64 = redis::cmd("PUBLISH")
        .arg(CHANNEL)
        .arg(MARK)
        .query(&mut redis.conn())
        .expect("PUBLISH mark");
    let mut out = Vec::new();
    loop {
        let payload: Vec<u8> = sub
            .get_message()
            .expect("message")
            .get_payload()
            .expect("payload");
        if payload == MARK {
            return out;
        }
        out.push(payload);
    }
}

fn bytes(data: &[&[u8]]) -> Vec<Vec<u8>> {
    data.iter().map(|d| d.to_vec()).collect()
}

#[tokio::test]
async fn lines_once_in_order_and_resends_skipped() {
    let redis = RedisServer::start();
    let mut sub_conn = redis.conn();
    let mut sub = sub_conn.as_pubsub();
    sub.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    sub.subscribe(CHANNEL).expect("SUBSCRIBE");
    let mut publisher = publisher(redis.url());

    let first = lines(0, &[b"one", b"two \xff binary"]);
    let out = publisher
        .publish(&batch(first.clone()))
        .await
        .expect("first");
    assert_eq!((out.added, out.skipped, out.refused), (2, 0, false));
    assert_eq!(out.committed, first[1].end);
    assert_eq!(
        received(&redis, &mut sub),
        bytes(&[b"one", b"two \xff binary"])
    );

    // The same batch again (a lost reply): nothing published, everything skipped.
    let again = publisher
        .publish(&batch(first.clone()))
        .await
        .expect("again");
    assert_eq!((again.added, again.skipped), (0, 2));
    assert_eq!(again.committed, first[1].end);
    assert!(received(&redis, &mut sub).is_empty());

    // Overlapping the committed end (a restart from an older checkpoint): only the new.
    let mut overlap = vec![first[1]];
    overlap.extend(lines(first[1].end, &[b"three", b"four"]));
    let out = publisher
        .publish(&batch(overlap.clone()))
        .await
        .expect("overlap");
    assert_eq!((out.added, out.skipped), (2, 1));
    assert_eq!(out.committed, overlap[2].end);
    assert_eq!(received(&redis, &mut sub), bytes(&[b"three", b"four"]));

    // A cut line: its bytes alone (no flag on the channel), its end far beyond them.
    let cut = OutLine {
        offset: overlap[2].end,
        end: overlap[2].end + 5000,
        truncated: true,
        lines: 1,
        data: b"cut",
    };
    let out = publisher.publish(&batch(vec![cut])).await.expect("cut");
    assert_eq!((out.added, out.committed), (1, cut.end));
    assert_eq!(received(&redis, &mut sub), bytes(&[b"cut"]));
    assert_eq!(committed(&redis), Some(cut.end));
}

/// Four calls in flight, the second one failing (here: refused, as when its own
/// predecessor never landed — the state a lost connection leaves): the two behind it carry
/// their predecessors' ends and are refused too, so the offset never moves past the failed
/// one. Sent again one at a time, every line arrives once, in order.
#[tokio::test]
async fn a_failed_batch_in_a_deep_window_stops_every_later_one() {
    let redis = RedisServer::start();
    let mut sub_conn = redis.conn();
    let mut sub = sub_conn.as_pubsub();
    sub.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    sub.subscribe(CHANNEL).expect("SUBSCRIBE");
    let mut publisher = publisher(redis.url());
    // The script must be cached for EVALSHA: the first call goes the one-at-a-time way.
    let warm = lines(0, &[b"zero"]);
    publisher.publish(&batch(warm.clone())).await.expect("warm");
    assert_eq!(received(&redis, &mut sub), bytes(&[b"zero"]));

    let a = lines(warm[0].end, &[b"a1", b"a2"]);
    let b = lines(a[1].end, &[b"b1", b"b2"]);
    let c = lines(b[1].end, &[b"c1"]);
    let d = lines(c[0].end, &[b"d1", b"d2"]);
    let call_a = publisher.start(&batch(a.clone()), None).await.expect("a");
    // b "fails": it waits for an offset that is never committed.
    let call_b = publisher
        .start(&batch(b.clone()), Some(a[1].end + 1))
        .await
        .expect("b");
    let call_c = publisher
        .start(&batch(c.clone()), Some(b[1].end))
        .await
        .expect("c");
    let call_d = publisher
        .start(&batch(d.clone()), Some(c[0].end))
        .await
        .expect("d");
    let out_a = publisher.outcome(call_a).await.expect("reply a");
    assert_eq!((out_a.added, out_a.refused), (2, false));
    for (name, call) in [("b", call_b), ("c", call_c), ("d", call_d)] {
        let out = publisher.outcome(call).await.expect("reply");
        assert!(out.refused, "{name} must be refused: {out:?}");
        assert_eq!((out.added, out.committed), (0, a[1].end), "{name}");
    }
    assert_eq!(committed(&redis), Some(a[1].end));
    assert_eq!(received(&redis, &mut sub), bytes(&[b"a1", b"a2"]));

    // The one-at-a-time path after the failure: b, c, d in order, each line once.
    for again in [&b, &c, &d] {
        let out = publisher
            .publish(&batch(again.clone()))
            .await
            .expect("again");
        assert_eq!((out.skipped, out.refused), (0, false));
    }
    assert_eq!(
        received(&redis, &mut sub),
        bytes(&[b"b1", b"b2", b"c1", b"d1", b"d2"])
    );
    assert_eq!(committed(&redis), Some(d[1].end));
}

/// Under `maxmemory` the script's `HSET` is refused. Before, the `PUBLISH`es ran first (they
/// are no writes to Redis) and every retry sent the batch to the subscriber again; now a
/// refused batch sends nothing, however often it is retried, and goes out once after.
#[tokio::test]
async fn out_of_memory_sends_nothing_until_room_is_made() {
    let redis = RedisServer::start();
    let mut sub_conn = redis.conn();
    let mut sub = sub_conn.as_pubsub();
    sub.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    sub.subscribe(CHANNEL).expect("SUBSCRIBE");
    let mut publisher = publisher(redis.url());
    let warm = lines(0, &[b"zero"]);
    publisher.publish(&batch(warm.clone())).await.expect("warm");
    assert_eq!(received(&redis, &mut sub), bytes(&[b"zero"]));

    let used = redis_info_u64(&redis, "memory", "used_memory");
    redis_admin(&redis, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]).unwrap();
    redis_admin(
        &redis,
        &["CONFIG", "SET", "maxmemory", &(used / 2).to_string()],
    )
    .unwrap();
    let next = lines(warm[0].end, &[b"one", b"two"]);
    for _ in 0..3 {
        let error = publisher
            .publish(&batch(next.clone()))
            .await
            .expect_err("refused under maxmemory");
        assert_eq!(error.reason(), "oom");
    }
    assert!(received(&redis, &mut sub).is_empty(), "nothing sent");
    assert_eq!(committed(&redis), Some(warm[0].end));

    redis_admin(&redis, &["CONFIG", "SET", "maxmemory", "0"]).unwrap();
    let out = publisher.publish(&batch(next.clone())).await.expect("room");
    assert_eq!(out.added, 2);
    assert_eq!(received(&redis, &mut sub), bytes(&[b"one", b"two"]));
}

/// The offset is stored before the `PUBLISH`es, so a `PUBLISH` refused after it would lose
/// the batch. The one refusal possible, an ACL without the channel, is checked first:
/// refused, nothing is committed, and the lines go out once the ACL allows them.
#[tokio::test]
async fn a_channel_the_acl_denies_commits_nothing() {
    let redis = RedisServer::start();
    let rules = [
        "ACL",
        "SETUSER",
        "w",
        "on",
        ">pw",
        "resetkeys",
        "~redtail:offsets",
        "resetchannels",
        "&elsewhere",
        "-@all",
        "+ping",
        "+evalsha",
        "+eval",
        "+script|load",
        "+hget",
        "+hset",
        "+publish",
    ];
    redis_admin(&redis, &rules).expect("ACL SETUSER");
    let mut sub_conn = redis.conn();
    let mut sub = sub_conn.as_pubsub();
    sub.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    sub.subscribe(CHANNEL).expect("SUBSCRIBE");
    let mut publisher = publisher(format!("redis://w:pw@127.0.0.1:{}", redis.port));
    let first = lines(0, &[b"one", b"two"]);
    let error = publisher
        .publish(&batch(first.clone()))
        .await
        .expect_err("channel denied");
    assert_eq!(error.reason(), "noperm");
    assert_eq!(committed(&redis), None, "nothing committed");
    assert!(received(&redis, &mut sub).is_empty());

    redis_admin(&redis, &["ACL", "SETUSER", "w", &format!("&{CHANNEL}")]).unwrap();
    let out = publisher
        .publish(&batch(first.clone()))
        .await
        .expect("allowed");
    assert_eq!((out.added, out.skipped), (2, 0));
    assert_eq!(received(&redis, &mut sub), bytes(&[b"one", b"two"]));
    assert_eq!(committed(&redis), Some(first[1].end));
}
