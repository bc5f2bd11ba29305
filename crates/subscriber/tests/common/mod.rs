//! Test harness: a real `redis-server` on a free loopback port, and a subscriber run in-process.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use prometheus::{IntGauge, Registry};
use redtail_bus::RedisTarget;
use redtail_subscriber::{Config, Metrics, OutputFormat, SubscriberError};
use redtail_telemetry::readiness::{Liveness, Readiness};
use redtail_telemetry::shutdown::{Shutdown, ShutdownTrigger};
use tokio::task::JoinHandle;

// The one redis-server harness, shared with the top-level tests and the benchmark.
pub use redtail_testkit::RedisServer;

/// Longest any single test may take.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// A subscriber running in a task, with everything a test looks at.
pub struct Running {
    pub handle: JoinHandle<Result<(), SubscriberError>>,
    pub trigger: ShutdownTrigger,
    pub readiness: Readiness,
    pub metrics: Metrics,
    pub redis_up: IntGauge,
    pub output: PathBuf,
    pub registry: Registry,
}

impl Running {
    /// The output file's lines (complete ones only).
    pub fn lines(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.output).unwrap_or_default();
        text.lines().map(str::to_string).collect()
    }

    pub async fn stop(self) -> Result<(), SubscriberError> {
        self.trigger.trigger();
        tokio::time::timeout(Duration::from_secs(15), self.handle)
            .await
            .expect("subscriber stops within 15 s")
            .expect("task not panicked")
    }
}

/// A stream-mode config with short timings, writing to `output`.
pub fn config(url: &str, consumer: &str, output: PathBuf) -> Config {
    let mut target = RedisTarget::new(url);
    target.connect_timeout = Duration::from_millis(500);
    target.response_timeout = Duration::from_secs(3);
    let mut c = Config::new(target, consumer);
    c.output_path = Some(output);
    c.output_format = OutputFormat::Udm;
    c.block = Duration::from_millis(200);
    c.batch_size = 64;
    c
}

pub fn start(config: Config) -> Running {
    let registry = Registry::new();
    let metrics = Metrics::register(&registry).expect("metrics");
    let redis_up = IntGauge::new("redtail_watcher_redis_up", "test").expect("gauge");
    let readiness = Readiness::default();
    let (trigger, shutdown) = Shutdown::new();
    let output = config.output_path.clone().expect("tests write to a file");
    let handle = tokio::spawn(redtail_subscriber::run(
        config,
        metrics.clone(),
        redis_up.clone(),
        readiness.clone(),
        Liveness::new(Duration::from_secs(60)),
        shutdown,
    ));
    Running {
        handle,
        trigger,
        readiness,
        metrics,
        redis_up,
        output,
        registry,
    }
}

/// Polls `check` every 20 ms until it holds; panics with `what` after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `XADD <stream> * line <line> src <src> path /p off <i> fid f1 ct <now µs>` for each line.
pub async fn xadd_lines(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    lines: &[Vec<u8>],
) {
    let mut pipe = redis::pipe();
    for (i, line) in lines.iter().enumerate() {
        pipe.cmd("XADD")
            .arg(stream)
            .arg("*")
            .arg("line")
            .arg(line.as_slice())
            .arg("src")
            .arg("pod-test")
            .arg("path")
            .arg("/var/log/app/app.log")
            .arg("off")
            .arg(i * 100)
            .arg("fid")
            .arg("1:2")
            .arg("ct")
            .arg(chrono::Utc::now().timestamp_micros())
            .ignore();
    }
    pipe.query_async::<()>(conn).await.expect("XADD");
}

/// Generator-style lines `seq` from..to.
pub fn generator_lines(from: u64, to: u64) -> Vec<Vec<u8>> {
    (from..to)
        .map(|seq| {
            format!(
                r#"{{"timestamp":"{}","level":"INFO","message":"line {seq}","seq":{seq},"service":"app","host":"h"}}"#,
                chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            )
            .into_bytes()
        })
        .collect()
}

/// `XGROUP CREATE <stream> <group> 0 MKSTREAM`: a group that will deliver the whole stream.
pub async fn create_group(conn: &mut redis::aio::MultiplexedConnection, stream: &str, group: &str) {
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await
        .expect("XGROUP CREATE");
}

/// `XREADGROUP GROUP <group> <consumer> STREAMS <stream> >`: what a consumer that dies before
/// its XACK leaves pending.
pub async fn read_as(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    group: &str,
    consumer: &str,
) -> redis::streams::StreamReadReply {
    redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(group)
        .arg(consumer)
        .arg("STREAMS")
        .arg(stream)
        .arg(">")
        .query_async(conn)
        .await
        .expect("XREADGROUP")
}

/// `XPENDING <stream> <group>` count.
pub async fn pending(
    conn: &mut redis::aio::MultiplexedConnection,
    stream: &str,
    group: &str,
) -> u64 {
    let reply: redis::Value = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query_async(conn)
        .await
        .expect("XPENDING");
    match reply {
        redis::Value::Array(parts) => match parts.first() {
            Some(redis::Value::Int(n)) => *n as u64,
            _ => 0,
        },
        _ => 0,
    }
}

/// The `seq` of every UDM event in `lines`, sorted.
pub fn seqs(lines: &[String]) -> Vec<u64> {
    let mut seqs: Vec<u64> = lines
        .iter()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("each output line is JSON");
            v["additional"]["seq"].as_u64().expect("seq")
        })
        .collect();
    seqs.sort_unstable();
    seqs
}
