//! A plain connection of its own for the consumer's `XREADGROUP`, replies decoded by
//! [`super::resp`] from one receive buffer reused across reads.
//!
//! redis-rs hands out only parsed `Value` trees, and building then freeing that tree was the
//! largest cost of draining a backlog. So the one hot command goes over this socket, and
//! everything else (group creation, `XAUTOCLAIM`, `XACK`, gauges) keeps the redis-rs
//! connection. Only what the subscriber's URL can ask for over plain TCP is done here: `AUTH`
//! (password, or ACL user and password) and `SELECT`. A `rediss://` target or a cluster keeps
//! the redis-rs path for reads too (TLS set-up and slot routing stay in one place); see
//! [`ReadConn::supports`].
//!
//! Like [`crate::Connection`] this is either healthy or dropped: any I/O error, timeout or
//! malformed reply drops it, and the caller's retry loop (with its backoff) dials again.

use std::time::Duration;

use redis::{ConnectionAddr, IntoConnectionInfo, RedisError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::reply::Decoded;
use super::resp::{decode_read_frame, frame_len, server_error};
use crate::{BusError, RedisTarget};

/// Free space asked of the buffer before each socket read: a 512-entry reply of typical log
/// lines is about 100 KiB, so it usually arrives in one or two reads.
const READ_CHUNK: usize = 128 * 1024;

/// A receive buffer above this size is shrunk back after the reply: one huge reply (long
/// lines, a big `COUNT`) must not pin its memory for the life of the process.
const KEEP_BUFFER: usize = 4 * 1024 * 1024;

/// Also the subscriber's pub/sub connection ([`super::pubsub`]), for the same reason.
pub(crate) struct ReadConn {
    socket: TcpStream,
    /// Receive buffer, reused for every reply.
    buf: Vec<u8>,
    response_timeout: Duration,
}

impl ReadConn {
    /// Whether reads of `target` can use this connection (standalone, plain `redis://`).
    pub fn supports(target: &RedisTarget) -> bool {
        if target.cluster || !target.url.starts_with("redis://") {
            return false;
        }
        matches!(
            target
                .url
                .as_str()
                .into_connection_info()
                .map(|i| i.addr().clone()),
            Ok(ConnectionAddr::Tcp(..))
        )
    }

    /// Dials `target`, authenticates and selects the database, all within the connect timeout.
    pub async fn connect(target: &RedisTarget) -> Result<Self, BusError> {
        let info = target
            .url
            .as_str()
            .into_connection_info()
            .map_err(|_| BusError::Config("malformed URL".to_string()))?;
        let ConnectionAddr::Tcp(host, port) = info.addr().clone() else {
            return Err(BusError::Config("not a plain TCP address".to_string()));
        };
        let settings = info.redis_settings();
        let mut login: Vec<redis::Cmd> = Vec::new();
        if let Some(password) = settings.password() {
            let mut auth = redis::cmd("AUTH");
            if let Some(user) = settings.username() {
                auth.arg(user);
            }
            auth.arg(password);
            login.push(auth);
        }
        if settings.db() != 0 {
            let mut select = redis::cmd("SELECT");
            select.arg(settings.db());
            login.push(select);
        }
        let dial = async {
            let socket = TcpStream::connect((host.as_str(), port))
                .await
                .map_err(io_error)?;
            // Replies are read whole, but the command must not wait for Nagle.
            socket.set_nodelay(true).map_err(io_error)?;
            let mut conn = ReadConn {
                socket,
                buf: Vec::with_capacity(READ_CHUNK),
                response_timeout: target.response_timeout,
            };
            for cmd in &login {
                let frame = conn.request(&cmd.get_packed_command()).await?;
                if conn.buf.first() == Some(&b'-') {
                    return Err(server_error(&conn.buf[..frame]));
                }
                conn.consume(frame);
            }
            Ok(conn)
        };
        match tokio::time::timeout(target.connect_timeout, dial).await {
            Ok(result) => result,
            Err(_) => Err(timeout_error()),
        }
    }

    /// Sends one packed `XREADGROUP` and decodes its reply.
    pub async fn read_group(&mut self, packed: &[u8]) -> Result<Decoded, BusError> {
        let response_timeout = self.response_timeout;
        let frame = match tokio::time::timeout(response_timeout, self.request(packed)).await {
            Ok(frame) => frame?,
            Err(_) => return Err(timeout_error()),
        };
        let decoded = decode_read_frame(&self.buf[..frame]);
        self.consume(frame);
        decoded
    }

    /// Writes `packed`, then reads until one whole reply frame is buffered; its length.
    async fn request(&mut self, packed: &[u8]) -> Result<usize, BusError> {
        self.socket.write_all(packed).await.map_err(io_error)?;
        loop {
            if let Some(len) = frame_len(&self.buf)? {
                return Ok(len);
            }
            self.fill().await?;
        }
    }

    /// Sends `packed` without reading a reply (on a subscribed connection replies arrive
    /// among the messages).
    pub async fn send(&mut self, packed: &[u8]) -> Result<(), BusError> {
        self.socket.write_all(packed).await.map_err(io_error)
    }

    /// Waits up to `wait` for at least one whole frame, then hands every whole frame
    /// buffered (at most `max`) to `each`, in order; how many. 0 = nothing within `wait`.
    /// For a subscribed connection, where frames arrive unasked and back to back.
    pub async fn frames(
        &mut self,
        max: usize,
        wait: Duration,
        mut each: impl FnMut(&[u8]) -> Result<(), BusError>,
    ) -> Result<usize, BusError> {
        let filled = async {
            while frame_len(&self.buf)?.is_none() {
                self.fill().await?;
            }
            Ok::<_, BusError>(())
        };
        match tokio::time::timeout(wait, filled).await {
            Ok(filled) => filled?,
            Err(_) => return Ok(0),
        }
        // One cursor over the buffer and one drain at the end: a drain per frame would
        // move the rest of the buffer once per message.
        let mut pos = 0;
        let mut count = 0;
        while count < max.max(1) {
            let Some(len) = frame_len(&self.buf[pos..])? else {
                break;
            };
            each(&self.buf[pos..pos + len])?;
            pos += len;
            count += 1;
        }
        self.consume(pos);
        Ok(count)
    }

    /// One socket read into the buffer; the end of the connection is an error.
    async fn fill(&mut self) -> Result<(), BusError> {
        self.buf.reserve(READ_CHUNK);
        let n = self
            .socket
            .read_buf(&mut self.buf)
            .await
            .map_err(io_error)?;
        if n == 0 {
            return Err(io_error(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "Redis closed the read connection",
            )));
        }
        Ok(())
    }

    /// Drops the first `len` bytes (one reply); nothing follows a reply on this connection,
    /// since it never has two commands in flight.
    fn consume(&mut self, len: usize) {
        self.buf.drain(..len.min(self.buf.len()));
        if self.buf.capacity() > KEEP_BUFFER {
            self.buf.shrink_to(READ_CHUNK);
        }
    }
}

fn io_error(e: std::io::Error) -> BusError {
    BusError::Redis(RedisError::from(e))
}

fn timeout_error() -> BusError {
    io_error(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "no reply from Redis in time",
    ))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use redtail_testkit::RedisServer;

    use super::*;
    use crate::consumer::{StreamConsumer, StreamConsumerConfig};

    fn cfg() -> StreamConsumerConfig {
        StreamConsumerConfig {
            stream: "s".into(),
            group: "g".into(),
            consumer: "c".into(),
            count: 10,
            block: Duration::from_millis(10),
            claim_idle: Duration::from_secs(30),
            claim_interval: Duration::from_secs(30),
        }
    }

    #[test]
    fn only_plain_standalone_targets_read_directly() {
        assert!(ReadConn::supports(&RedisTarget::new("redis://u:p@h:1/2")));
        assert!(!ReadConn::supports(&RedisTarget::new("rediss://h:1")));
        let mut cluster = RedisTarget::new("redis://h:1,redis://h:2");
        cluster.cluster = true;
        assert!(!ReadConn::supports(&cluster));
    }

    /// ACL user, password and a database other than 0: the direct read sees what was
    /// written there, and a wrong password is an `auth` error, as on the redis-rs path.
    #[tokio::test]
    async fn authenticates_and_selects_the_database() {
        let redis = RedisServer::start();
        let mut admin = redis::Client::open(redis.url())
            .expect("client")
            .get_connection()
            .expect("connect");
        redis::cmd("ACL")
            .arg(&["SETUSER", "reader", "on", ">pw-1", "~*", "+@all"][..])
            .exec(&mut admin)
            .expect("acl");
        redis::cmd("SELECT")
            .arg(3)
            .exec(&mut admin)
            .expect("select");
        redis::cmd("XADD")
            .arg(&["s", "*", "line", "in db 3"][..])
            .exec(&mut admin)
            .expect("xadd");

        let url = format!("redis://reader:pw-1@127.0.0.1:{}/3", redis.port);
        let target = RedisTarget::new(url);
        assert!(ReadConn::supports(&target));
        let mut consumer = StreamConsumer::new(target, cfg()).expect("consumer");
        let mut lines = Vec::new();
        for _ in 0..3 {
            let batch = consumer.next_batch().await.expect("read");
            lines.extend(batch.entries.into_iter().filter_map(|e| e.line));
        }
        assert_eq!(lines, vec![b"in db 3".to_vec()]);

        let wrong = RedisTarget::new(format!("redis://reader:nope@127.0.0.1:{}/3", redis.port));
        let err = ReadConn::connect(&wrong).await.err().expect("refused");
        assert_eq!(err.reason(), "auth");
    }
}
