//! Issue 13, item 12: every subscriber rollout leaves its old pods in the consumer group.
//! The subscriber removes consumers idle past `REDTAIL_DEAD_CONSUMER_IDLE_MS` that hold
//! nothing pending, counts them, and never removes one with pending entries.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use support::*;

const STREAM: &str = "redtail:logs";
const GROUP: &str = "redtail";

/// name → pending, from `XINFO CONSUMERS`.
fn consumers(redis: &RedisServer) -> BTreeMap<String, i64> {
    let reply: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(STREAM)
        .arg(GROUP)
        .query(&mut redis.conn())
        .unwrap_or_default();
    let mut out = BTreeMap::new();
    for consumer in reply {
        let fields: BTreeMap<String, redis::Value> =
            redis::from_redis_value(consumer).expect("consumer fields");
        let name: String = redis::from_redis_value(fields["name"].clone()).expect("name");
        let pending: i64 = redis::from_redis_value(fields["pending"].clone()).expect("pending");
        out.insert(name, pending);
    }
    out
}

#[test]
fn dead_consumers_are_removed_but_never_with_pending_entries() {
    let redis = RedisServer::start();
    let mut conn = redis.conn();
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", STREAM, GROUP, "0", "MKSTREAM"][..])
        .query(&mut conn)
        .expect("XGROUP CREATE");
    // old-pod-a: an earlier pod that read everything it got and acknowledged it.
    let _: i64 = redis::cmd("XGROUP")
        .arg(&["CREATECONSUMER", STREAM, GROUP, "old-pod-a"][..])
        .query(&mut conn)
        .expect("CREATECONSUMER");
    // old-pod-b: died holding one entry (not claimed: the claim idle time is long here).
    let _: String = redis::cmd("XADD")
        .arg(&[STREAM, "*", "line", "held by a dead pod"][..])
        .query(&mut conn)
        .expect("XADD");
    let held: redis::streams::StreamReadReply = redis::cmd("XREADGROUP")
        .arg(
            &[
                "GROUP",
                GROUP,
                "old-pod-b",
                "COUNT",
                "1",
                "STREAMS",
                STREAM,
                ">",
            ][..],
        )
        .query(&mut conn)
        .expect("XREADGROUP");
    let held_id = held.keys[0].ids[0].id.clone();
    assert_eq!(consumers(&redis).len(), 2);

    let scene = Scene::new();
    let mut env = scene.subscriber_env(&redis, "stream");
    env.push(("REDTAIL_DEAD_CONSUMER_IDLE_MS", "2000".to_string()));
    env.push(("REDTAIL_CLAIM_IDLE_MS", "600000".to_string()));
    let subscriber = scene.start("subscribe", &env);
    let removed = || {
        subscriber
            .metrics()
            .get("redtail_subscriber_dead_consumers_removed_total", &[])
            .unwrap_or(0.0)
    };
    wait_until(Duration::from_secs(30), "old-pod-a removed", || {
        !consumers(&redis).contains_key("old-pod-a")
    });
    wait_until(Duration::from_secs(10), "removal counted", || {
        removed() == 1.0
    });
    // Several more passes: the consumer with a pending entry and the live one stay.
    std::thread::sleep(Duration::from_secs(4));
    let now = consumers(&redis);
    assert_eq!(
        now.get("old-pod-b"),
        Some(&1),
        "kept while it holds an entry: {now:?}"
    );
    assert!(now.contains_key("c1"), "the live consumer stays: {now:?}");
    assert_eq!(removed(), 1.0);

    // Its entry is dealt with (claimed and acknowledged elsewhere): now old-pod-b goes too.
    let acked: i64 = redis::cmd("XACK")
        .arg(&[STREAM, GROUP, held_id.as_str()][..])
        .query(&mut conn)
        .expect("XACK");
    assert_eq!(acked, 1);
    wait_until(Duration::from_secs(30), "old-pod-b removed", || {
        !consumers(&redis).contains_key("old-pod-b")
    });
    wait_until(Duration::from_secs(10), "second removal counted", || {
        removed() == 2.0
    });
    assert!(consumers(&redis).contains_key("c1"));
}
