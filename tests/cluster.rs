//! Redis Cluster end-to-end: the real binary against a real 3-primary / 3-replica cluster
//! (`REDTAIL_REDIS_CLUSTER=true`). Every test checks the promise per source: every seq
//! exactly once in that source's stream, and at least once at the subscribers.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use support::cluster::RedisCluster;
use support::*;

const LONG: Duration = Duration::from_secs(120);

fn stream_key(source: &str) -> String {
    format!("redtail:logs:{{{source}}}")
}

/// One source: its log file, its watcher's checkpoint and process directory.
struct Source {
    name: String,
    log: PathBuf,
    dir: PathBuf,
}

impl Source {
    fn new(scene: &Scene, i: usize) -> Source {
        let name = format!("src-{i}");
        let dir = scene.path(&name);
        std::fs::create_dir_all(&dir).expect("source dir");
        Source {
            log: dir.join("app.log"),
            name,
            dir,
        }
    }

    fn watcher(&self, cluster: &RedisCluster, extra: &[(&'static str, String)]) -> Redtail {
        let mut env = vec![
            ("REDTAIL_REDIS_URL", cluster.seeds()),
            ("REDTAIL_REDIS_CLUSTER", "true".to_string()),
            ("REDTAIL_LOG_PATH", self.log.display().to_string()),
            (
                "REDTAIL_CHECKPOINT_PATH",
                self.dir.join("state/checkpoint.json").display().to_string(),
            ),
            ("REDTAIL_SOURCE", self.name.clone()),
            ("REDTAIL_POLL_INTERVAL_MS", "100".to_string()),
        ];
        env.extend(extra.iter().cloned());
        Redtail::start("watch", &self.dir, &env)
    }

    fn generator(&self, rate: u64, count: u64) -> Redtail {
        let env = vec![
            ("REDTAIL_LOG_PATH", self.log.display().to_string()),
            ("REDTAIL_RATE", rate.to_string()),
            ("REDTAIL_COUNT", count.to_string()),
            ("REDTAIL_SEED", "7".to_string()),
        ];
        Redtail::start("generate", &self.dir, &env)
    }

    fn size(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }
}

/// A subscriber writing UDM events (which carry the source and the seq) to its own file.
fn subscriber(scene: &Scene, cluster: &RedisCluster, consumer: &str) -> (Redtail, PathBuf) {
    let dir = scene.path(consumer);
    std::fs::create_dir_all(&dir).expect("subscriber dir");
    let output = dir.join("out.log");
    let env = vec![
        ("REDTAIL_REDIS_URL", cluster.seeds()),
        ("REDTAIL_REDIS_CLUSTER", "true".to_string()),
        ("REDTAIL_OUTPUT_FORMAT", "udm".to_string()),
        ("REDTAIL_OUTPUT_PATH", output.display().to_string()),
        ("REDTAIL_CONSUMER", consumer.to_string()),
        ("REDTAIL_STREAM_REFRESH_MS", "500".to_string()),
        ("REDTAIL_CLAIM_IDLE_MS", "5000".to_string()),
    ];
    (Redtail::start("subscribe", &dir, &env), output)
}

/// seq counts per source in UDM output files.
fn output_counts(outputs: &[PathBuf]) -> HashMap<String, BTreeMap<u64, u32>> {
    let mut counts: HashMap<String, BTreeMap<u64, u32>> = HashMap::new();
    for path in outputs {
        let bytes = std::fs::read(path).unwrap_or_default();
        for line in output_lines(&bytes) {
            let Ok(event) = serde_json::from_slice::<serde_json::Value>(line) else {
                continue;
            };
            let additional = &event["additional"];
            let (Some(source), Some(seq)) =
                (additional["source"].as_str(), additional["seq"].as_u64())
            else {
                continue;
            };
            *counts
                .entry(source.to_string())
                .or_default()
                .entry(seq)
                .or_insert(0) += 1;
        }
    }
    counts
}

fn wait_all_committed(cluster: &RedisCluster, sources: &[Source]) {
    wait_until(
        LONG,
        "every source fully committed in its offsets hash",
        || {
            sources
                .iter()
                .all(|s| cluster.committed(&s.name) == s.size())
        },
    );
}

/// Every seq of every source exactly once in its own stream.
fn assert_streams_exactly_once(cluster: &RedisCluster, sources: &[Source], expected: u64) {
    for s in sources {
        let entries = cluster.stream_lines(&stream_key(&s.name));
        assert!(
            entries.iter().all(|e| e.src == s.name),
            "foreign entry in {}",
            s.name
        );
        assert_exactly_once(
            &seq_counts(entries.iter().map(|e| e.line.as_slice())),
            expected,
            &format!("stream of {}", s.name),
        );
    }
}

/// Every seq of every source at least once at the subscribers (waits for it).
fn wait_outputs_complete(outputs: &[PathBuf], sources: &[Source], expected: u64) {
    let complete = || {
        let counts = output_counts(outputs);
        sources.iter().all(|s| {
            counts
                .get(&s.name)
                .is_some_and(|c| c.len() as u64 >= expected)
        })
    };
    let deadline = Instant::now() + LONG;
    while !complete() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let counts = output_counts(outputs);
    for s in sources {
        let empty = BTreeMap::new();
        assert_none_missing(
            counts.get(&s.name).unwrap_or(&empty),
            expected,
            &format!("subscriber output of {}", s.name),
        );
    }
}

/// 10 watchers (10 sources: a prewritten backlog, then live generation) and 2 subscribers
/// started before any stream exists: each stream is found through the registry, the two
/// subscribers share the work, every seq lands exactly once in its stream and at least once
/// in the outputs, and the streams sit on more than one shard.
#[test]
fn ten_sources_two_subscribers() {
    let started = Instant::now();
    let cluster = RedisCluster::start();
    let scene = Scene::new();
    let (sub1, out1) = subscriber(&scene, &cluster, "c1");
    let (sub2, out2) = subscriber(&scene, &cluster, "c2");
    const BACKLOG: u64 = 2000;
    const LIVE: u64 = 1000;
    let sources: Vec<Source> = (0..10).map(|i| Source::new(&scene, i)).collect();
    for s in &sources {
        prewrite_lines(&s.log, 0, BACKLOG);
    }
    let watchers: Vec<Redtail> = sources.iter().map(|s| s.watcher(&cluster, &[])).collect();
    let mut generators: Vec<Redtail> = sources.iter().map(|s| s.generator(500, LIVE)).collect();
    for g in &mut generators {
        assert!(
            g.wait_exit(LONG).success(),
            "generator failed: {}",
            g.stderr()
        );
    }
    wait_all_committed(&cluster, &sources);

    let registry = cluster.smembers("redtail:logs:streams");
    let expected: BTreeSet<String> = sources.iter().map(|s| stream_key(&s.name)).collect();
    assert_eq!(registry.into_iter().collect::<BTreeSet<_>>(), expected);
    assert_streams_exactly_once(&cluster, &sources, BACKLOG + LIVE);
    let shards: BTreeSet<u16> = sources
        .iter()
        .map(|s| cluster.primary_of_key(&stream_key(&s.name)))
        .collect();
    assert!(shards.len() > 1, "all streams on one shard: {shards:?}");

    let outputs = [out1.clone(), out2.clone()];
    wait_outputs_complete(&outputs, &sources, BACKLOG + LIVE);
    let lines = |p: &PathBuf| output_lines(&std::fs::read(p).unwrap_or_default()).len();
    assert!(
        lines(&out1) > 0 && lines(&out2) > 0,
        "both subscribers should share the work: {} and {} events",
        lines(&out1),
        lines(&out2)
    );
    for w in &watchers {
        let m = w.metrics();
        assert_eq!(
            m.value("redtail_watcher_lines_published_total"),
            (BACKLOG + LIVE) as f64
        );
    }
    drop((sub1, sub2));
    eprintln!("ten_sources_two_subscribers: {:?}", started.elapsed());
}

/// A primary killed (-9) during live generation after its replica was cut off, and that
/// replica promoted at once (`CLUSTER FAILOVER TAKEOVER`): the writes the primary
/// acknowledged after the cut are gone from the cluster. With `REDTAIL_REPLICA_ACKS=1` the
/// watchers committed none of them locally (WAIT fell short), so they send them again to the
/// new primary: every seq exactly once in every stream, and the pipeline goes on. A watcher on
/// the same shard *without* WAIT shows what the option buys: its lines from the cut-off window
/// are missing (Redis replication is asynchronous). The old primary then comes back as a
/// replica of the new one, and WAIT succeeds again.
#[test]
fn primary_failover_with_replica_acks() {
    let started = Instant::now();
    let mut cluster = RedisCluster::start();
    let scene = Scene::new();
    let sources: Vec<Source> = (0..3).map(|i| Source::new(&scene, i)).collect();
    let victim = cluster.primary_of_key(&stream_key("src-0"));
    let replica = cluster.replica_of(victim);
    // A source without WAIT whose stream lives on the same shard as src-0's.
    let nowait_name = (0..1000)
        .map(|i| format!("nowait-{i}"))
        .find(|n| cluster.primary_of_key(&stream_key(n)) == victim)
        .expect("a source name on the victim shard");
    let nowait = Source {
        log: scene.path("nowait.log"),
        dir: scene.path("nowait"),
        name: nowait_name,
    };
    std::fs::create_dir_all(&nowait.dir).expect("dir");
    let acks = [
        ("REDTAIL_REPLICA_ACKS", "1".to_string()),
        ("REDTAIL_REPLICA_ACK_TIMEOUT_MS", "300".to_string()),
    ];
    let mut watchers: Vec<Redtail> = sources.iter().map(|s| s.watcher(&cluster, &acks)).collect();
    let _nowait_watcher = nowait.watcher(&cluster, &[]);
    let (sub, out) = subscriber(&scene, &cluster, "c1");
    const N: u64 = 8000;
    let mut generators: Vec<Redtail> = sources
        .iter()
        .chain([&nowait])
        .map(|s| s.generator(1000, N))
        .collect();
    wait_until(LONG, "src-0 well under way", || {
        cluster.committed("src-0") > 2000 * 180
    });
    // Cut the replica off: stop it, and close its link from the primary's side so nothing
    // more reaches even its socket buffer. The primary keeps acknowledging writes (below the
    // node timeout nobody notices).
    cluster.node(replica).pause();
    let _: redis::Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("replica")
        .query(&mut cluster.node(victim).conn())
        .expect("CLIENT KILL TYPE replica");
    std::thread::sleep(Duration::from_millis(1200));
    let before = (cluster.committed("src-0"), cluster.committed(&nowait.name));
    cluster.kill_primary_and_take_over(victim, replica);
    assert_eq!(cluster.primary_of_key(&stream_key("src-0")), replica);
    let after = (cluster.committed("src-0"), cluster.committed(&nowait.name));
    eprintln!("committed offsets (src-0, no-WAIT source): old primary {before:?}, promoted replica {after:?}");
    // The old primary rejoins as a replica of the new one: WAIT 1 can succeed again.
    cluster.node_mut(victim).restart();
    cluster.wait_healthy(Duration::from_secs(60));

    for g in &mut generators {
        assert!(
            g.wait_exit(LONG).success(),
            "generator failed: {}",
            g.stderr()
        );
    }
    wait_all_committed(&cluster, &sources);
    for w in &mut watchers {
        assert!(w.is_running(), "watcher exited: {}", w.stderr());
    }
    assert_streams_exactly_once(&cluster, &sources, N);
    wait_outputs_complete(&[out], &sources, N);
    // Without WAIT: exactly what the old primary acknowledged after the cut is missing.
    wait_until(LONG, "no-WAIT source committed", || {
        cluster.committed(&nowait.name) == nowait.size()
    });
    let nowait_counts = seq_counts(
        cluster
            .stream_lines(&stream_key(&nowait.name))
            .iter()
            .map(|e| e.line.as_slice()),
    );
    let (missing, dups) = loss_and_dups(&nowait_counts, N);
    eprintln!(
        "no-WAIT source: {} seqs lost in the failover",
        missing.len()
    );
    assert!(dups.is_empty(), "no-WAIT source duplicated {dups:?}");
    assert!(
        !missing.is_empty(),
        "the failover was expected to lose the no-WAIT source's unreplicated lines"
    );
    // While the replica was cut off, WAIT fell short and batches were held back.
    let m = watchers[0].metrics();
    eprintln!(
        "src-0 watcher: replica_ack_failures={:?} publish_errors={:?} duplicates_skipped={:?}",
        m.get("redtail_watcher_replica_ack_failures_total", &[]),
        m.get("redtail_watcher_publish_errors_total", &[]),
        m.get("redtail_watcher_duplicates_skipped_total", &[]),
    );
    assert!(
        m.value("redtail_watcher_replica_ack_failures_total") > 0.0,
        "WAIT never fell short while the replica was stalled"
    );
    drop(sub);
    eprintln!(
        "primary_failover_with_replica_acks: {:?}",
        started.elapsed()
    );
}

/// `redis-cli --cluster reshard` moves every slot of the shard holding src-0's stream to
/// another primary (keys migrate, clients get ASK/MOVED/TRYAGAIN) during live generation:
/// no loss, no duplicate.
#[test]
fn resharding_during_live_generation() {
    let started = Instant::now();
    let cluster = RedisCluster::start();
    let scene = Scene::new();
    let sources: Vec<Source> = (0..4).map(|i| Source::new(&scene, i)).collect();
    let _watchers: Vec<Redtail> = sources.iter().map(|s| s.watcher(&cluster, &[])).collect();
    let (sub, out) = subscriber(&scene, &cluster, "c1");
    const N: u64 = 8000;
    let mut generators: Vec<Redtail> = sources.iter().map(|s| s.generator(1000, N)).collect();
    wait_until(LONG, "src-0 under way", || {
        cluster.committed("src-0") > 1000 * 180
    });
    let from = cluster.primary_of_key(&stream_key("src-0"));
    let to = *cluster
        .primary_ports()
        .iter()
        .find(|p| **p != from)
        .expect("another primary");
    let slots: u32 = cluster
        .slot_ranges()
        .iter()
        .filter(|r| r.2 == from)
        .map(|r| u32::from(r.1 - r.0) + 1)
        .sum();
    let took = cluster.reshard(from, to, slots);
    eprintln!("resharded {slots} slots in {took:?}");
    assert_eq!(cluster.primary_of_key(&stream_key("src-0")), to);
    for g in &mut generators {
        assert!(
            g.wait_exit(LONG).success(),
            "generator failed: {}",
            g.stderr()
        );
    }
    wait_all_committed(&cluster, &sources);
    assert_streams_exactly_once(&cluster, &sources, N);
    wait_outputs_complete(&[out], &sources, N);
    drop(sub);
    eprintln!("resharding_during_live_generation: {:?}", started.elapsed());
}
