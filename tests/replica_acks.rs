//! `REDTAIL_REPLICA_ACKS` at the bus level, against a real 3-primary / 3-replica cluster: the
//! replica count a batch is committed on must be that of the node that ran the batch's
//! script, counting that very write.
//!
//! The regression behind it: `primary_failover_with_replica_acks` lost ~180 lines in 2 of 6
//! runs. The watcher sent `WAIT` as a command of its own after the script. When the
//! connection it was blocked on broke (the primary killed under it), redis-rs retried the
//! `WAIT` on any connected node — another shard's primary answered at once with its own
//! replica count — or on a fresh connection to the same primary, where `WAIT` counts replicas
//! that have that connection's last write (none yet) instead of the batch. Either way the
//! batch was committed while it lived only on the primary about to be lost.

mod support;

use std::time::Duration;

use redtail_bus::{Connection, Mode, OutLine, PublishBatch, Publisher, RedisTarget};
use support::cluster::RedisCluster;

const SOURCE: &str = "acks-src";
const LINE: &[u8] = b"{\"seq\":0,\"message\":\"a line of a batch under test\"}";
const LINES_PER_BATCH: u64 = 10;

fn publisher(cluster: &RedisCluster) -> Publisher {
    let mut target = RedisTarget::new(cluster.seeds());
    target.cluster = true;
    let conn = Connection::new(target).expect("cluster connection");
    Publisher::new(
        conn,
        Mode::Stream {
            key: "redtail:logs".to_string(),
            maxlen: 0,
        },
    )
}

/// Batch `round`'s lines: `LINES_PER_BATCH` lines after the previous rounds' lines.
fn lines(round: u64) -> Vec<OutLine<'static>> {
    let size = LINE.len() as u64 + 1;
    (0..LINES_PER_BATCH)
        .map(|i| {
            let offset = (round * LINES_PER_BATCH + i) * size;
            OutLine {
                offset,
                end: offset + size,
                truncated: false,
                lines: 1,
                data: LINE,
            }
        })
        .collect()
}

fn batch(round: u64) -> PublishBatch<'static> {
    PublishBatch {
        source: SOURCE,
        fid: "1f-00000000000000aa",
        path: "/var/log/app/app.log",
        collected_us: 1_767_225_600_000_000,
        lines: lines(round),
    }
}

/// The primary of the source's slot keeps running but its only replica is stopped
/// (SIGSTOP: still connected, acknowledging nothing), so no new write can be acknowledged
/// by a replica. In each round a batch is published with `WAIT 1`, and while the `WAIT` is
/// blocked the primary drops the publisher's connection (`CLIENT KILL TYPE normal`), which
/// makes the client send it again. The count that comes back must never vouch for the
/// batch: a retry that lands on another shard's primary, or on a new connection that wrote
/// nothing, used to answer 1 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_wait_never_vouches_for_an_unreplicated_batch() {
    let cluster = RedisCluster::start();
    let primary = cluster.primary_of_key(&format!("redtail:logs:{{{SOURCE}}}"));
    let replica = cluster.replica_of(primary);
    let mut publisher = publisher(&cluster);
    // A first batch with the replica still running: WAIT succeeds, the setup is sound.
    let (outcome, acked) = publisher
        .publish_replicated(&batch(0), 1, Duration::from_millis(2000))
        .await
        .expect("first batch");
    assert_eq!((outcome.added, acked), (LINES_PER_BATCH, 1));
    cluster.node(replica).pause();

    const ROUNDS: u64 = 8;
    let mut vouched = Vec::new();
    for round in 1..=ROUNDS {
        let publishing = tokio::spawn(async move {
            let result = publisher
                .publish_replicated(&batch(round), 1, Duration::from_millis(2000))
                .await;
            (publisher, result)
        });
        // The script runs in a millisecond; the WAIT then blocks for up to 2 s.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let killed: i64 = tokio::task::block_in_place(|| {
            redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("normal")
                .query(&mut cluster.node(primary).conn())
                .expect("CLIENT KILL TYPE normal")
        });
        let (back, result) = publishing.await.expect("publishing task");
        publisher = back;
        eprintln!("round {round}: {killed} connection(s) killed, result {result:?}");
        if let Ok((_, acked)) = result {
            if acked >= 1 {
                vouched.push(round);
            }
        }
    }
    cluster.node(replica).resume();
    assert!(
        vouched.is_empty(),
        "rounds whose batch was reported acknowledged by a replica although the only replica \
         was stopped: {vouched:?}"
    );
}
