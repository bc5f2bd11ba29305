//! A throw-away redis-server per test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A redis-server in its own temp dir on a free port; killed on drop.
pub struct RedisServer {
    pub port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// No persistence.
    pub fn start() -> RedisServer {
        Self::start_with(&["--save", "", "--appendonly", "no"])
    }

    /// With AOF `appendfsync always`: survives a restart losing nothing acknowledged.
    pub fn start_durable() -> RedisServer {
        Self::start_with(&[
            "--save",
            "",
            "--appendonly",
            "yes",
            "--appendfsync",
            "always",
        ])
    }

    /// No persistence, `DEBUG` allowed (`DEBUG SLEEP` makes Redis busy or slow on demand).
    pub fn start_debuggable() -> RedisServer {
        Self::start_with(&[
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
        ])
    }

    pub fn start_with(args: &[&str]) -> RedisServer {
        let dir = tempfile::Builder::new()
            .prefix("redtail-redis-")
            .tempdir()
            .expect("tempdir");
        let mut server = RedisServer {
            port: super::free_port(),
            dir,
            extra: args.iter().map(|s| s.to_string()).collect(),
            child: None,
        };
        server.launch();
        server
    }

    fn launch(&mut self) {
        let bin = which("redis-server").unwrap_or_else(|| {
            panic!("redis-server not found: install it (apt-get install -y redis-server) or run scripts/test.sh, which does")
        });
        let child = Command::new(bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::from(
                std::fs::File::create(self.dir.path().join("redis.log")).expect("log file"),
            ))
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut c) = self.try_connection() {
                if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn try_connection(&self) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(self.url())?;
        client.get_connection_with_timeout(Duration::from_secs(2))
    }

    /// A fresh synchronous connection.
    pub fn conn(&self) -> redis::Connection {
        self.try_connection().expect("connect to test redis")
    }

    /// Stop the server (SIGKILL: nothing after the last fsync survives; with
    /// `appendfsync always` that is every acknowledged write).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start again on the same port and directory (AOF, if on, is reloaded).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Lines in the stream, in stream order (XRANGE in pages).
    pub fn stream_lines(&self, key: &str) -> Vec<StreamEntry> {
        read_stream(&mut self.conn(), key)
    }

    pub fn xlen(&self, key: &str) -> u64 {
        redis::cmd("XLEN")
            .arg(key)
            .query(&mut self.conn())
            .unwrap_or(0)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every entry of a stream, in order (XRANGE in pages), on any connection
/// (a single node or a cluster).
pub fn read_stream(conn: &mut impl redis::ConnectionLike, key: &str) -> Vec<StreamEntry> {
    let mut out = Vec::new();
    let mut start = "-".to_string();
    loop {
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(key)
            .arg(&start)
            .arg("+")
            .arg("COUNT")
            .arg(10_000)
            .query(conn)
            .expect("XRANGE");
        let n = reply.ids.len();
        for id in reply.ids {
            let get = |f: &str| -> Vec<u8> {
                match id.map.get(f) {
                    Some(redis::Value::BulkString(b)) => b.clone(),
                    _ => Vec::new(),
                }
            };
            out.push(StreamEntry {
                id: id.id.clone(),
                line: get("line"),
                src: String::from_utf8_lossy(&get("src")).into_owned(),
                fid: String::from_utf8_lossy(&get("fid")).into_owned(),
                off: String::from_utf8_lossy(&get("off"))
                    .parse()
                    .unwrap_or(u64::MAX),
                trunc: !get("trunc").is_empty(),
            });
            start = format!("({}", id.id);
        }
        if n < 10_000 {
            return out;
        }
    }
}

#[derive(Debug, Clone)]
pub struct StreamEntry {
    pub id: String,
    pub line: Vec<u8>,
    pub src: String,
    pub fid: String,
    pub off: u64,
    pub trunc: bool,
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
