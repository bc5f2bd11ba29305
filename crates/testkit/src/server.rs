//! A private `redis-server` child on a free loopback port, killed on drop.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::stream::{read_stream, StreamEntry};

/// What to do when `redis-server` is missing: said in every such error.
pub const INSTALL_HINT: &str = "install it (Debian/Ubuntu: apt-get install -y redis-server \
     redis-tools) or run scripts/test.sh or scripts/bench.sh, which do";

/// How long a start (or a restart) may take before it is an error.
const START_LIMIT: Duration = Duration::from_secs(10);
/// Fresh ports tried when the chosen one was taken between its choice and the server's bind.
const PORT_ATTEMPTS: u32 = 5;

/// Why a server could not be started; the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("redis-server not found on PATH: {INSTALL_HINT}")]
    NotInstalled,
    #[error("creating a directory for redis-server: {0}")]
    Dir(std::io::Error),
    #[error("starting redis-server: {0}")]
    Spawn(std::io::Error),
    #[error("redis-server on port {port} exited at start; redis.log ends with:\n{log}")]
    Exited { port: u16, log: String },
    #[error("redis-server on port {port} did not answer PING within {START_LIMIT:?}; redis.log ends with:\n{log}")]
    NoAnswer { port: u16, log: String },
}

/// How the server runs. Persistence is off unless [`ServerOptions::durable`].
#[derive(Clone, Debug, Default)]
pub struct ServerOptions {
    durable: bool,
    debug_command: bool,
    extra: Vec<String>,
    dir: Option<PathBuf>,
}

impl ServerOptions {
    pub fn new() -> ServerOptions {
        ServerOptions::default()
    }

    /// AOF with `appendfsync always`: a SIGKILL and restart lose nothing acknowledged.
    pub fn durable(mut self) -> ServerOptions {
        self.durable = true;
        self
    }

    /// `DEBUG` allowed (`DEBUG SLEEP` makes Redis busy or slow on demand).
    pub fn debug_command(mut self) -> ServerOptions {
        self.debug_command = true;
        self
    }

    /// More `redis-server` arguments (TLS ports and files, cluster mode...), after the
    /// harness's own: for a setting given twice, Redis keeps the later one.
    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> ServerOptions {
        self.extra.extend(args.into_iter().map(Into::into));
        self
    }

    /// Keep the server's files (and `redis.log`) in `dir`, which outlives the server;
    /// by default they go to a temporary directory removed on drop.
    pub fn dir(mut self, dir: &Path) -> ServerOptions {
        self.dir = Some(dir.to_path_buf());
        self
    }

    fn persistence_args(&self) -> Vec<String> {
        let mut args = vec!["--save".to_string(), String::new()];
        if self.durable {
            args.extend(["--appendonly", "yes", "--appendfsync", "always"].map(String::from));
        } else {
            args.extend(["--appendonly", "no"].map(String::from));
        }
        if self.debug_command {
            args.extend(["--enable-debug-command", "yes"].map(String::from));
        }
        args
    }
}

/// Where the server's files live.
enum Dir {
    Temp(tempfile::TempDir),
    Given(PathBuf),
}

/// A `redis-server` on 127.0.0.1:`port`, SIGKILLed on drop (nothing is left running behind
/// a failed test or benchmark step).
pub struct RedisServer {
    pub port: u16,
    dir: Dir,
    args: Vec<String>,
    binary: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a server and waits until it answers PING. A port taken before the server
    /// could bind it is replaced by a fresh one, a few times.
    pub fn try_start(options: ServerOptions) -> Result<RedisServer, StartError> {
        let binary = crate::which("redis-server").ok_or(StartError::NotInstalled)?;
        let dir = match &options.dir {
            Some(d) => Dir::Given(d.clone()),
            None => Dir::Temp(
                tempfile::Builder::new()
                    .prefix("redtail-redis-")
                    .tempdir()
                    .map_err(StartError::Dir)?,
            ),
        };
        let mut args = options.persistence_args();
        args.extend(options.extra.iter().cloned());
        let mut server = RedisServer {
            port: 0,
            dir,
            args,
            binary,
            child: None,
        };
        let mut attempt = 1;
        loop {
            server.port = crate::try_free_port().map_err(StartError::Spawn)?;
            match server.launch() {
                Err(StartError::Exited { .. }) if attempt < PORT_ATTEMPTS => attempt += 1,
                Err(e) => return Err(e),
                Ok(()) => return Ok(server),
            }
        }
    }

    /// Persistence off. Panics (for tests) with what to do when it cannot start.
    pub fn start() -> RedisServer {
        Self::start_options(ServerOptions::new())
    }

    /// AOF with `appendfsync always`: survives a restart losing nothing acknowledged.
    pub fn start_durable() -> RedisServer {
        Self::start_options(ServerOptions::new().durable())
    }

    /// Persistence off, `DEBUG` allowed.
    pub fn start_debuggable() -> RedisServer {
        Self::start_options(ServerOptions::new().debug_command())
    }

    /// Persistence off, plus `args`.
    pub fn start_with(args: &[&str]) -> RedisServer {
        Self::start_options(ServerOptions::new().args(args.iter().copied()))
    }

    pub fn start_options(options: ServerOptions) -> RedisServer {
        Self::try_start(options).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Spawns the server on `self.port`; Ok once it answers PING.
    fn launch(&mut self) -> Result<(), StartError> {
        // Both streams: a bad option is reported on stderr, before any log line.
        let log = std::fs::File::create(self.log_path()).map_err(StartError::Dir)?;
        let log_err = log.try_clone().map_err(StartError::Dir)?;
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .map_err(StartError::Spawn)?;
        self.child = Some(child);
        let deadline = Instant::now() + START_LIMIT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(_)) = child.try_wait() {
                    self.child = None;
                    return Err(StartError::Exited {
                        port: self.port,
                        log: self.log_tail(),
                    });
                }
            }
            if answers_ping(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(StartError::NoAnswer {
                    port: self.port,
                    log: self.log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL and reap: nothing after the last fsync survives (with `appendfsync always`,
    /// that is every acknowledged write).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts again on the same port and directory (an AOF, if on, is reloaded). The old
    /// socket may take a moment to be free: retried until the start limit.
    pub fn try_restart(&mut self) -> Result<(), StartError> {
        self.kill();
        let deadline = Instant::now() + START_LIMIT;
        loop {
            match self.launch() {
                Err(StartError::Exited { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                result => return result,
            }
        }
    }

    /// [`RedisServer::try_restart`], panicking (for tests).
    pub fn restart(&mut self) {
        self.try_restart().unwrap_or_else(|e| panic!("{e}"));
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The server's process id while it runs (for `/proc` figures and signals).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn dir(&self) -> &Path {
        match &self.dir {
            Dir::Temp(d) => d.path(),
            Dir::Given(d) => d,
        }
    }

    /// The server's own log (its stdout and stderr).
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("redis.log")
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(10)..].join("\n")
    }

    /// A fresh synchronous connection (2 s connect timeout).
    pub fn connection(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(self.url())?.get_connection_with_timeout(Duration::from_secs(2))
    }

    /// [`RedisServer::connection`], panicking (for tests).
    pub fn conn(&self) -> redis::Connection {
        self.connection().expect("connect to the test redis-server")
    }

    /// A fresh async connection, panicking (for tests).
    pub async fn async_conn(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to the test redis-server")
    }

    /// Every entry of the stream `key`, in order.
    pub fn stream_lines(&self, key: &str) -> Vec<StreamEntry> {
        read_stream(&mut self.conn(), key)
    }

    /// `XLEN key` (0 when it cannot be read).
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

/// Whether a server listens on `port` and answers: `+PONG`, or `-NOAUTH` when a password is
/// required (it is up, just not ours to use without it).
fn answers_ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && (&buf == b"+PONG\r\n" || buf.starts_with(b"-NOAUTH"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(server: &RedisServer, key: &str) {
        let _: () = redis::cmd("SET")
            .arg(key)
            .arg("v")
            .query(&mut server.conn())
            .expect("SET");
    }

    fn exists(server: &RedisServer, key: &str) -> bool {
        redis::cmd("EXISTS")
            .arg(key)
            .query(&mut server.conn())
            .expect("EXISTS")
    }

    #[test]
    fn durable_server_keeps_acknowledged_writes_across_a_kill() {
        let mut server = RedisServer::start_durable();
        set(&server, "k");
        let port = server.port;
        server.kill();
        assert!(!server.is_running());
        server.restart();
        assert_eq!(server.port, port, "same port after a restart");
        assert!(exists(&server, "k"), "AOF reloaded");
    }

    #[test]
    fn default_server_starts_empty_again() {
        let mut server = RedisServer::start();
        set(&server, "k");
        server.restart();
        assert!(!exists(&server, "k"), "persistence is off");
        let reply: String = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .query::<Vec<String>>(&mut server.conn())
            .expect("CONFIG GET")
            .remove(1);
        assert_eq!(reply, "no");
    }

    #[test]
    fn given_directory_holds_the_log_and_outlives_the_server() {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = RedisServer::try_start(ServerOptions::new().dir(dir.path())).expect("start");
        assert_eq!(server.log_path(), dir.path().join("redis.log"));
        drop(server);
        let log = std::fs::read_to_string(dir.path().join("redis.log")).expect("log kept");
        assert!(log.contains("Ready to accept connections"), "{log}");
    }

    #[test]
    fn a_server_that_cannot_start_says_why() {
        // An unknown option makes redis-server exit at once, on every port tried.
        let err = RedisServer::try_start(ServerOptions::new().args(["--no-such-option", "1"]))
            .err()
            .expect("start fails");
        assert!(matches!(err, StartError::Exited { .. }), "{err}");
        assert!(err.to_string().contains("no-such-option"), "{err}");
        assert!(StartError::NotInstalled
            .to_string()
            .contains("apt-get install -y redis-server"));
    }

    #[test]
    fn a_password_protected_server_counts_as_up() {
        let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
        let url = format!("redis://:s3cret@127.0.0.1:{}", server.port);
        let mut conn = redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .expect("connect with the password");
        let pong: String = redis::cmd("PING").query(&mut conn).expect("PING");
        assert_eq!(pong, "PONG");
    }
}
