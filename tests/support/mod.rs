//! Test harness: a real `redis-server` on a free loopback port, the real
//! `redtail` binary as child processes, and helpers to check what arrived.
#![allow(dead_code)] // each test binary uses a different part of the harness

pub mod check;
pub mod cluster;
pub mod faults;
pub mod process;

use std::time::{Duration, Instant};

pub use check::*;
#[allow(unused_imports)] // only the fault, chaos and security tests use these
pub use faults::*;
pub use process::*;
// The one redis-server harness, shared with crates/subscriber/tests and the benchmark.
pub use redtail_testkit::{free_port, read_stream, which, RedisServer, StreamEntry};

/// Poll `cond` every 50 ms until it holds or `timeout` passes; panics with
/// `what` on timeout so a failing test says what it was waiting for.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Write `n` generator-format lines (seq from `start`) to `path` in one go.
pub fn prewrite_lines(path: &std::path::Path, start: u64, n: u64) {
    use std::io::Write;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open log");
    let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
    for seq in start..start + n {
        writeln!(
            w,
            r#"{{"timestamp":"2026-11-25T12:00:00.000000Z","level":"INFO","message":"GET /api/items/{seq} 200 3ms","seq":{seq},"service":"app","host":"test"}}"#
        )
        .expect("write");
    }
    w.flush().expect("flush");
}

/// Where one test keeps its files. Kept (and its path printed) when the
/// test fails, so the processes' logs and files can be inspected.
pub struct Scene {
    pub dir: tempfile::TempDir,
    pub source: String,
}

impl Drop for Scene {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let dir = std::mem::replace(&mut self.dir, tempfile::TempDir::new().expect("tempdir"));
            eprintln!("test files kept in {}", dir.keep().display());
        }
    }
}

impl Scene {
    pub fn new() -> Scene {
        Scene {
            dir: tempfile::Builder::new()
                .prefix("redtail-test-")
                .tempdir()
                .expect("tempdir"),
            source: "test-src".to_string(),
        }
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.dir.path().join(name)
    }

    pub fn log(&self) -> std::path::PathBuf {
        self.path("app.log")
    }

    pub fn checkpoint(&self) -> std::path::PathBuf {
        self.path("state/checkpoint.json")
    }

    pub fn output(&self) -> std::path::PathBuf {
        self.path("out.log")
    }

    /// Environment of a watcher on this scene's app.log.
    pub fn watcher_env(&self, redis: &RedisServer, mode: &str) -> Vec<(&'static str, String)> {
        vec![
            ("REDTAIL_REDIS_URL", redis.url()),
            ("REDTAIL_MODE", mode.to_string()),
            ("REDTAIL_LOG_PATH", self.log().display().to_string()),
            (
                "REDTAIL_CHECKPOINT_PATH",
                self.checkpoint().display().to_string(),
            ),
            ("REDTAIL_SOURCE", self.source.clone()),
            ("REDTAIL_POLL_INTERVAL_MS", "100".to_string()),
        ]
    }

    /// Environment of a subscriber writing raw lines to this scene's out.log.
    pub fn subscriber_env(&self, redis: &RedisServer, mode: &str) -> Vec<(&'static str, String)> {
        vec![
            ("REDTAIL_REDIS_URL", redis.url()),
            ("REDTAIL_MODE", mode.to_string()),
            ("REDTAIL_OUTPUT_FORMAT", "raw".to_string()),
            ("REDTAIL_OUTPUT_PATH", self.output().display().to_string()),
            ("REDTAIL_CONSUMER", "c1".to_string()),
        ]
    }

    /// Environment of a generator appending to this scene's app.log.
    pub fn generator_env(&self, rate: u64, count: u64) -> Vec<(&'static str, String)> {
        vec![
            ("REDTAIL_LOG_PATH", self.log().display().to_string()),
            ("REDTAIL_RATE", rate.to_string()),
            ("REDTAIL_COUNT", count.to_string()),
            ("REDTAIL_SEED", "7".to_string()),
        ]
    }

    pub fn start(&self, command: &str, env: &[(&'static str, String)]) -> Redtail {
        Redtail::start(command, self.dir.path(), env)
    }

    /// The subscriber's raw output, line by line.
    pub fn output_bytes(&self) -> Vec<u8> {
        std::fs::read(self.output()).unwrap_or_default()
    }

    /// Total size of app.log and its rotated siblings.
    pub fn log_bytes(&self) -> u64 {
        std::fs::metadata(self.log()).map(|m| m.len()).unwrap_or(0)
    }
}

/// The committed offsets Redis holds, summed over this source's files.
pub fn redis_committed(redis: &RedisServer, source: &str) -> u64 {
    let map: std::collections::HashMap<String, u64> = redis::cmd("HGETALL")
        .arg("redtail:offsets")
        .query(&mut redis.conn())
        .unwrap_or_default();
    map.iter()
        .filter(|(k, _)| k.starts_with(&format!("{source}:")))
        .map(|(_, v)| *v)
        .sum()
}
