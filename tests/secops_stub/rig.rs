//! The test rig of the SecOps tests: a Redis, the stub, a test key, and the subscriber
//! started against them; plus the checks every scenario makes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{key_file, test_key, Stub};
use crate::support::*;

pub const STREAM: &str = "redtail:logs";
pub const GROUP: &str = "redtail";
pub const INSTANCE: &str = "projects/p/locations/us/instances/i";
pub const CLOUD: &str = "https://www.googleapis.com/auth/cloud-platform";
pub const LONG: Duration = Duration::from_secs(60);

pub struct Rig {
    pub dir: tempfile::TempDir,
    pub redis: RedisServer,
    pub stub: Stub,
    pub pem: String,
    pub key: PathBuf,
}

pub fn rig(scope: &str) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let (pem, public) = test_key(dir.path());
    let stub = Stub::start(public, &["JSON", "NGINX"], scope);
    let key = key_file(dir.path(), &pem, &stub.token_uri());
    let redis = RedisServer::start();
    stub.probe_pending(&redis.url(), STREAM, GROUP);
    Rig {
        dir,
        redis,
        stub,
        pem,
        key,
    }
}

impl Rig {
    pub fn env(&self, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
        let mut env: Vec<(&'static str, String)> = vec![
            ("REDTAIL_REDIS_URL", self.redis.url()),
            ("REDTAIL_SINK", "secops".into()),
            ("REDTAIL_SECOPS_ENDPOINT", self.stub.url()),
            ("REDTAIL_SECOPS_INSTANCE", INSTANCE.into()),
            ("REDTAIL_SECOPS_LOG_TYPE", "JSON".into()),
            ("REDTAIL_SECOPS_NAMESPACE", "test-ns".into()),
            ("REDTAIL_SECOPS_CREDENTIALS", self.key.display().to_string()),
            ("REDTAIL_SECOPS_BATCH_MS", "200".into()),
            ("REDTAIL_SECOPS_RETRY_BASE_MS", "20".into()),
            ("REDTAIL_SECOPS_TIMEOUT_MS", "3000".into()),
            ("REDTAIL_SECOPS_NOT_READY_RETRY_MS", "200".into()),
            ("REDTAIL_CONSUMER", "c1".into()),
            ("RUST_LOG", "info".into()),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push((k, v.to_string()));
        }
        env
    }

    pub fn subscribe(&self, extra: &[(&'static str, &str)]) -> Redtail {
        Redtail::start("subscribe", self.dir.path(), &self.env(extra))
    }

    /// Appends lines `from..from+n` (generator-shaped, with `seq`); returns `(id, line)`.
    pub fn add(
        &self,
        from: u64,
        n: u64,
        shape: impl Fn(u64) -> Option<String>,
    ) -> Vec<(String, Vec<u8>)> {
        let mut conn = self.redis.conn();
        (from..from + n)
            .map(|seq| {
                let now = Utc::now();
                let line = shape(seq).unwrap_or_else(|| {
                    format!(
                        r#"{{"timestamp":"{}","level":"INFO","message":"message {seq}","seq":{seq},"service":"app","host":"h"}}"#,
                        (now - chrono::Duration::milliseconds(5)).format("%Y-%m-%dT%H:%M:%S%.6fZ")
                    )
                });
                let id: String = redis::cmd("XADD")
                    .arg(STREAM)
                    .arg("*")
                    .arg("line")
                    .arg(line.as_bytes())
                    .arg("src")
                    .arg("pod-a")
                    .arg("path")
                    .arg("/var/log/app/app.log")
                    .arg("off")
                    .arg(seq * 100)
                    .arg("fid")
                    .arg("f1")
                    .arg("ct")
                    .arg(now.timestamp_micros())
                    .query(&mut conn)
                    .unwrap();
                (id, line.into_bytes())
            })
            .collect()
    }

    pub fn pending(&self) -> u64 {
        let reply: redis::Value = redis::cmd("XPENDING")
            .arg(STREAM)
            .arg(GROUP)
            .query(&mut self.redis.conn())
            .unwrap_or(redis::Value::Nil);
        match reply {
            redis::Value::Array(items) => match items.first() {
                Some(redis::Value::Int(n)) => *n as u64,
                _ => 0,
            },
            _ => 0,
        }
    }

    pub fn dead_letters(&self) -> Vec<HashMap<String, Vec<u8>>> {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(format!("{STREAM}:deadletter"))
            .arg("-")
            .arg("+")
            .query(&mut self.redis.conn())
            .unwrap();
        reply
            .ids
            .into_iter()
            .map(|e| {
                e.map
                    .into_iter()
                    .map(|(k, v)| match v {
                        redis::Value::BulkString(b) => (k, b),
                        other => (k, format!("{other:?}").into_bytes()),
                    })
                    .collect()
            })
            .collect()
    }

    pub fn wait_delivered(&self, n: usize) {
        wait_until(
            LONG,
            &format!("{n} lines delivered and acknowledged"),
            || self.stub.delivered_lines().len() >= n && self.pending() == 0,
        );
    }
}

/// Each line was accepted exactly once after de-duplication by body hash.
pub fn assert_each_once(stub: &Stub, lines: &[(String, Vec<u8>)], except: &[&[u8]]) {
    let delivered = stub.delivered_lines();
    let mut counts: HashMap<&[u8], usize> = HashMap::new();
    for l in &delivered {
        *counts.entry(l.as_slice()).or_default() += 1;
    }
    for (id, line) in lines {
        let want = usize::from(!except.contains(&line.as_slice()));
        assert_eq!(
            counts.get(line.as_slice()).copied().unwrap_or(0),
            want,
            "entry {id} delivered a wrong number of times"
        );
    }
    assert_eq!(
        delivered.len(),
        lines.len() - except.len(),
        "nothing extra delivered"
    );
}

/// Every request's entries were still pending in Redis when it arrived: nothing is
/// acknowledged before a 2xx.
pub fn assert_nothing_acked_early(stub: &Stub, lines: &[(String, Vec<u8>)]) {
    let id_of: HashMap<&[u8], &str> = lines
        .iter()
        .map(|(id, l)| (l.as_slice(), id.as_str()))
        .collect();
    for (i, seen) in stub.seen().iter().enumerate() {
        let pending = seen.pending.as_ref().expect("probe");
        for line in seen.lines() {
            let id = id_of.get(line.as_slice()).expect("a known line");
            assert!(
                pending.contains(*id),
                "request {i}: {id} was acknowledged before SecOps accepted it"
            );
        }
    }
}

pub fn assert_no_secrets(rig: &Rig, sub: &Redtail, metrics: &str) {
    let stderr = sub.stderr();
    let key_body: Vec<&str> = rig
        .pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    for token in rig.stub.issued_tokens() {
        assert!(!stderr.contains(&token), "token in the logs");
        assert!(!metrics.contains(&token), "token in the metrics");
        assert!(!stderr.contains(token.trim_start_matches("ya29.")));
    }
    for chunk in key_body {
        assert!(!stderr.contains(chunk), "key material in the logs");
        assert!(!metrics.contains(chunk), "key material in the metrics");
    }
}

pub fn parse_time(v: &serde_json::Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().expect("a time string"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}
