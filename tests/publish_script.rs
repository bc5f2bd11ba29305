//! The publish script against a real `redis-server`, through the bus crate's `Publisher`:
//! the entry layout of every kind of line (plain, cut, multi-line event), and the
//! idempotent skip of a re-sent or overlapping batch.

mod support;

use redtail_bus::{Connection, Mode, OutLine, PublishBatch, Publisher, RedisTarget};
use support::RedisServer;

const STREAM: &str = "t:logs";

fn line(offset: u64, data: &'static [u8], truncated: bool, lines: u32) -> OutLine<'static> {
    // A cut line's end lies beyond its bytes; any increasing end does for the script.
    let end = offset + data.len() as u64 + if truncated { 100 } else { 1 };
    OutLine {
        offset,
        end,
        truncated,
        lines,
        data,
    }
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

/// Every entry as its field/value pairs, in stream order.
fn entries(redis: &RedisServer) -> Vec<Vec<(String, Vec<u8>)>> {
    let reply: Vec<(String, Vec<Vec<u8>>)> = redis::cmd("XRANGE")
        .arg(STREAM)
        .arg("-")
        .arg("+")
        .query(&mut redis.conn())
        .expect("XRANGE");
    reply
        .into_iter()
        .map(|(_, flat)| {
            flat.chunks(2)
                .map(|kv| (String::from_utf8_lossy(&kv[0]).into_owned(), kv[1].clone()))
                .collect()
        })
        .collect()
}

fn field_names(entry: &[(String, Vec<u8>)]) -> Vec<&str> {
    entry.iter().map(|(k, _)| k.as_str()).collect()
}

fn value<'a>(entry: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    entry
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
        .unwrap_or_else(|| panic!("no field {name} in {entry:?}"))
}

#[tokio::test]
async fn entry_layout_and_idempotent_skip() {
    let redis = RedisServer::start();
    let conn = Connection::new(RedisTarget::new(redis.url())).expect("connection");
    let mut publisher = Publisher::new(
        conn,
        Mode::Stream {
            key: STREAM.into(),
            maxlen: 1000,
        },
    );
    let event =
        b"java.lang.IllegalStateException: boom\n\tat a.B.c(B.java:1)\n\tat d.E.f(E.java:2)";
    let first = vec![
        line(0, b"plain", false, 1),
        line(6, b"cut", true, 1),
        line(109, event, false, 3),
        line(300, b"cut event\n\tat x", true, 2),
    ];
    let outcome = publisher
        .publish(&batch(first.clone()))
        .await
        .expect("publish");
    assert_eq!((outcome.added, outcome.skipped), (4, 0));
    assert_eq!(outcome.committed, first[3].end);

    let got = entries(&redis);
    assert_eq!(got.len(), 4);
    assert_eq!(
        field_names(&got[0]),
        ["line", "src", "path", "off", "fid", "ct"]
    );
    assert_eq!(value(&got[0], "line"), b"plain");
    assert_eq!(value(&got[0], "off"), b"0");
    assert_eq!(value(&got[0], "src"), b"pod-a");
    assert_eq!(value(&got[0], "fid"), b"1f-00000000000000aa");
    assert_eq!(value(&got[0], "ct"), b"1767225600000000");
    assert_eq!(
        field_names(&got[1]),
        ["line", "src", "path", "off", "fid", "trunc", "ct"]
    );
    assert_eq!(value(&got[1], "trunc"), b"1");
    assert_eq!(
        field_names(&got[2]),
        ["line", "src", "path", "off", "fid", "lines", "ct"]
    );
    assert_eq!(value(&got[2], "line"), event);
    assert_eq!(value(&got[2], "lines"), b"3");
    assert_eq!(value(&got[2], "off"), b"109");
    assert_eq!(
        field_names(&got[3]),
        ["line", "src", "path", "off", "fid", "trunc", "lines", "ct"]
    );
    assert_eq!(value(&got[3], "lines"), b"2");

    // The same batch again (a lost reply): nothing appended, everything skipped.
    let again = publisher
        .publish(&batch(first.clone()))
        .await
        .expect("retry");
    assert_eq!((again.added, again.skipped), (0, 4));
    assert_eq!(again.committed, first[3].end);
    assert_eq!(entries(&redis).len(), 4);

    // A batch overlapping the committed end (a restart from an older checkpoint).
    let next_off = first[3].end;
    let overlap = vec![first[2], first[3], line(next_off, b"new", false, 1)];
    let out = publisher.publish(&batch(overlap)).await.expect("overlap");
    assert_eq!((out.added, out.skipped), (1, 2));
    let got = entries(&redis);
    assert_eq!(got.len(), 5);
    assert_eq!(value(&got[4], "line"), b"new");
    assert_eq!(out.committed, next_off + 4);

    let stored: String = redis::cmd("HGET")
        .arg("redtail:offsets")
        .arg("pod-a:1f-00000000000000aa")
        .query(&mut redis.conn())
        .expect("HGET");
    assert_eq!(stored, (next_off + 4).to_string());
}

/// A batch sent behind one still in flight carries that one's end as `after`: refused,
/// with nothing written, until the committed offset reaches it.
#[tokio::test]
async fn a_batch_cannot_overtake_its_predecessor() {
    let redis = RedisServer::start();
    let conn = Connection::new(RedisTarget::new(redis.url())).expect("connection");
    let mut publisher = Publisher::new(
        conn,
        Mode::Stream {
            key: STREAM.into(),
            maxlen: 0,
        },
    );
    let a = vec![line(0, b"one", false, 1), line(4, b"two", false, 1)];
    let b = vec![line(8, b"three", false, 1)];
    // The script must be cached for EVALSHA: the first call goes the one-at-a-time way.
    let warm = publisher
        .publish(&batch(vec![line(0, b"one", false, 1)]))
        .await
        .expect("first line");
    assert_eq!(warm.committed, 4);

    // b behind a, but a never landed (committed is 4, a ends at 8): refused.
    let call = publisher
        .start(&batch(b.clone()), Some(8))
        .await
        .expect("start");
    let refused = publisher.outcome(call).await.expect("reply");
    assert!(refused.refused);
    assert_eq!((refused.added, refused.committed), (0, 4));
    assert_eq!(entries(&redis).len(), 1);

    // a then b, both in flight: both land, in order.
    let call_a = publisher.start(&batch(a), None).await.expect("start a");
    let call_b = publisher.start(&batch(b), Some(8)).await.expect("start b");
    let out_a = publisher.outcome(call_a).await.expect("a");
    let out_b = publisher.outcome(call_b).await.expect("b");
    assert_eq!((out_a.added, out_a.skipped, out_a.refused), (1, 1, false));
    assert_eq!(
        (out_b.added, out_b.refused, out_b.committed),
        (1, false, 14)
    );
    let lines: Vec<Vec<u8>> = entries(&redis)
        .iter()
        .map(|e| value(e, "line").to_vec())
        .collect();
    assert_eq!(lines, [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]);
}
