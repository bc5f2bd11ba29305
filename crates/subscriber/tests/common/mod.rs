//! Test harness: a real `redis-server` on a free loopback port, and a subscriber run in-process.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use prometheus::{IntGauge, Registry};
use redtail_bus::RedisTarget;
use redtail_subscriber::{Config, Metrics, OutputFormat, SubscriberError};
use redtail_telemetry::readiness::{Liveness, Readiness};
use redtail_telemetry::shutdown::{Shutdown, ShutdownTrigger};
use tempfile::TempDir;
use tokio::task::JoinHandle;

/// Longest any single test may take.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// A `redis-server` child, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        // A port picked free can be taken again before redis binds it: try a few.
        for _ in 0..5 {
            let mut server = RedisServer {
                child: None,
                port: free_port(),
                dir: tempfile::tempdir().expect("tempdir"),
            };
            if server.spawn() {
                return server;
            }
        }
        panic!("could not start redis-server");
    }

    /// Starts the server on `self.port`; `true` once it answers PING.
    fn spawn(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (/usr/bin/redis-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return false;
                }
            }
            if ping(self.port) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop();
        false
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (SIGKILL: nothing is saved, as in a crash).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.stop();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.spawn() {
            assert!(Instant::now() < deadline, "redis-server did not come back");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub async fn conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("connect")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

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
