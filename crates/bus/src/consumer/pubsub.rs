//! A `SUBSCRIBE`r that reconnects by itself.
//!
//! **At-most-once.** Redis pub/sub keeps nothing: a message published while this listener is
//! disconnected (Redis restart, network cut, `CLIENT KILL`, or Redis dropping a slow
//! subscriber at `client-output-buffer-limit pubsub`) is never seen, and the publisher is not
//! told. Use stream mode when lines must not be lost.

use std::time::{Duration, Instant};

use futures_util::{FutureExt, StreamExt};
use redis::aio::{PubSubSink, PubSubStream};
use redis::{Client, RedisError, Value};

use super::read_conn::ReadConn;
use super::resp::{decode_push, Push};
use crate::{Backoff, BusError, RedisTarget};

/// What one [`PubSubListener::recv`] call saw.
#[derive(Debug, PartialEq, Eq)]
pub enum PubSubEvent {
    /// A (re)connection and `SUBSCRIBE` succeeded; messages follow.
    Subscribed,
    /// Payloads in arrival order, byte for byte (at least one).
    Messages(Vec<Vec<u8>>),
    /// Nothing arrived for a health interval and a `PING` confirmed the connection is alive.
    /// Lets the caller's loop turn (liveness) without a message.
    Idle,
}

/// A dedicated pub/sub connection to one channel.
pub struct PubSubListener {
    client: Client,
    target: RedisTarget,
    channel: String,
    /// How long `recv` waits for a message before checking the connection with a PING: a
    /// half-open TCP connection (peer gone without a FIN) would otherwise look like silence.
    health_interval: Duration,
    backoff: Backoff,
    /// Earliest moment of the next connection attempt after a failure. A deadline rather
    /// than a sleep so that a cancelled `recv` does not restart the wait.
    retry_at: Option<Instant>,
    /// Subscribe over a [`ReadConn`] (see [`Subscription::Direct`]).
    direct: bool,
    /// The live subscription; `None` while disconnected.
    sub: Option<Subscription>,
}

enum Subscription {
    /// redis-rs' pub/sub connection: `rediss://` and clusters.
    Client(PubSubSink, PubSubStream),
    /// Plain `redis://` to one server: a [`ReadConn`] of its own, messages cut straight from
    /// its receive buffer. Through redis-rs each message was parsed into a `Value`, wrapped,
    /// and passed between tasks: the subscriber spent 2 CPU-µs per message, more than Redis
    /// and the watcher together, and was what bounded the pub/sub drain on 2 cores.
    Direct(ReadConn),
}

impl PubSubListener {
    pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);

    pub fn new(target: RedisTarget, channel: impl Into<String>) -> Result<Self, BusError> {
        Ok(Self {
            client: target.client()?,
            direct: ReadConn::supports(&target),
            target,
            channel: channel.into(),
            health_interval: Self::DEFAULT_HEALTH_INTERVAL,
            backoff: Backoff::default(),
            retry_at: None,
            sub: None,
        })
    }

    /// Overrides [`Self::DEFAULT_HEALTH_INTERVAL`].
    pub fn with_health_interval(mut self, interval: Duration) -> Self {
        self.health_interval = interval.max(Duration::from_millis(10));
        self
    }

    pub fn channel(&self) -> &str {
        &self.channel
    }

    pub fn is_subscribed(&self) -> bool {
        self.sub.is_some()
    }

    /// Waits for the next messages (up to `max` already received ones at once, so a burst
    /// is written and flushed together).
    ///
    /// While disconnected, each call makes one connection attempt, after the backoff delay
    /// since the previous failure, and returns [`PubSubEvent::Subscribed`] or the error. A
    /// call never blocks much longer than the health interval, the backoff cap or the
    /// connect timeout.
    pub async fn recv(&mut self, max: usize) -> Result<PubSubEvent, BusError> {
        let (health, response) = (self.health_interval, self.target.response_timeout);
        let got = match self.sub.as_mut() {
            None => return self.connect().await,
            Some(Subscription::Client(sink, stream)) => {
                recv_client(sink, stream, max, health, response).await
            }
            Some(Subscription::Direct(conn)) => recv_direct(conn, max, health, response).await,
        };
        got.map_err(|e| self.fail(e))
    }

    async fn connect(&mut self) -> Result<PubSubEvent, BusError> {
        if let Some(at) = self.retry_at {
            tokio::time::sleep_until(at.into()).await;
        }
        let attempt = if self.direct {
            subscribe_direct(&self.target, &self.channel)
                .await
                .map(Subscription::Direct)
        } else {
            subscribe_client(&self.client, &self.target, &self.channel)
                .await
                .map(|(sink, stream)| Subscription::Client(sink, stream))
        };
        match attempt {
            Ok(sub) => {
                self.sub = Some(sub);
                self.retry_at = None;
                self.backoff.reset();
                tracing::info!(channel = %self.channel, "Subscribed.");
                Ok(PubSubEvent::Subscribed)
            }
            Err(err) => Err(self.fail(err)),
        }
    }

    /// Drops the subscription and schedules the next attempt.
    fn fail(&mut self, err: BusError) -> BusError {
        self.sub = None;
        self.retry_at = Some(Instant::now() + self.backoff.next_delay());
        err
    }
}

async fn subscribe_client(
    client: &Client,
    target: &RedisTarget,
    channel: &str,
) -> Result<(PubSubSink, PubSubStream), BusError> {
    let pubsub = tokio::time::timeout(target.connect_timeout, client.get_async_pubsub())
        .await
        .map_err(|_| timed_out("connecting for pub/sub timed out"))??;
    let (mut sink, stream) = pubsub.split();
    tokio::time::timeout(target.response_timeout, sink.subscribe(channel))
        .await
        .map_err(|_| timed_out("SUBSCRIBE timed out"))??;
    Ok((sink, stream))
}

async fn subscribe_direct(target: &RedisTarget, channel: &str) -> Result<ReadConn, BusError> {
    let mut conn = ReadConn::connect(target).await?;
    let mut subscribe = redis::cmd("SUBSCRIBE");
    subscribe.arg(channel);
    conn.send(&subscribe.get_packed_command()).await?;
    // The confirmation only: messages right behind it stay buffered for `recv`.
    let mut confirmed = false;
    let n = conn
        .frames(1, target.response_timeout, |frame| {
            confirmed = matches!(decode_push(frame)?, Push::Other);
            Ok(())
        })
        .await?;
    if n == 0 {
        return Err(timed_out("SUBSCRIBE timed out"));
    }
    if !confirmed {
        return Err(BusError::Protocol("SUBSCRIBE: unexpected reply".into()));
    }
    Ok(conn)
}

async fn recv_client(
    sink: &mut PubSubSink,
    stream: &mut PubSubStream,
    max: usize,
    health: Duration,
    response_timeout: Duration,
) -> Result<PubSubEvent, BusError> {
    match tokio::time::timeout(health, stream.next()).await {
        Ok(Some(msg)) => {
            let mut out = vec![msg.get_payload_bytes().to_vec()];
            while out.len() < max.max(1) {
                match stream.next().now_or_never() {
                    Some(Some(msg)) => out.push(msg.get_payload_bytes().to_vec()),
                    // Nothing buffered right now, or the connection just ended: the next
                    // call notices the end.
                    _ => break,
                }
            }
            Ok(PubSubEvent::Messages(out))
        }
        Ok(None) => Err(closed("pub/sub connection closed")),
        Err(_elapsed) => match tokio::time::timeout(response_timeout, sink.ping::<Value>()).await {
            Ok(Ok(_)) => Ok(PubSubEvent::Idle),
            Ok(Err(e)) => Err(e.into()),
            Err(_) => Err(timed_out("pub/sub PING timed out")),
        },
    }
}

/// [`recv_client`] over the direct connection: same events, same health check.
async fn recv_direct(
    conn: &mut ReadConn,
    max: usize,
    health: Duration,
    response_timeout: Duration,
) -> Result<PubSubEvent, BusError> {
    let mut out = Vec::new();
    if take_messages(conn, max, health, &mut out).await? == 0 {
        // Silence: a half-open connection looks the same, so ask.
        conn.send(&redis::cmd("PING").get_packed_command()).await?;
        if take_messages(conn, max, response_timeout, &mut out).await? == 0 {
            return Err(timed_out("pub/sub PING timed out"));
        }
    }
    Ok(if out.is_empty() {
        PubSubEvent::Idle
    } else {
        PubSubEvent::Messages(out)
    })
}

/// Every message of the frames `conn` has (waiting up to `wait` for the first) into `out`;
/// how many frames, pongs and confirmations included.
async fn take_messages(
    conn: &mut ReadConn,
    max: usize,
    wait: Duration,
    out: &mut Vec<Vec<u8>>,
) -> Result<usize, BusError> {
    conn.frames(max, wait, |frame| {
        if let Push::Message(payload) = decode_push(frame)? {
            out.push(payload.to_vec());
        }
        Ok(())
    })
    .await
}

fn closed(msg: &'static str) -> BusError {
    BusError::Redis(RedisError::from(std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        msg,
    )))
}

fn timed_out(msg: &'static str) -> BusError {
    BusError::Redis(RedisError::from(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        msg,
    )))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use redtail_testkit::RedisServer;

    use super::*;

    async fn recv_until(listener: &mut PubSubListener, want: usize) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        while got.len() < want {
            match listener.recv(512).await.expect("recv") {
                PubSubEvent::Messages(m) => got.extend(m),
                PubSubEvent::Subscribed | PubSubEvent::Idle => {}
            }
        }
        got
    }

    /// The direct subscription: every payload byte for byte and in order (binary ones with
    /// CR LF, empty ones, a 1 MiB one), across many buffer reads; a quiet connection answers
    /// the health PING; a killed one is reported and subscribed again.
    #[tokio::test]
    async fn direct_subscription_delivers_in_order_and_checks_its_health() {
        let redis = RedisServer::start();
        let mut target = RedisTarget::new(redis.url());
        target.response_timeout = Duration::from_secs(2);
        let mut listener = PubSubListener::new(target, "ch")
            .expect("listener")
            .with_health_interval(Duration::from_millis(50));
        assert!(listener.direct);
        assert_eq!(
            listener.recv(512).await.expect("subscribe"),
            PubSubEvent::Subscribed
        );
        assert!(matches!(listener.sub, Some(Subscription::Direct(_))));
        let mut sent: Vec<Vec<u8>> = (0..20_000u32)
            .map(|i| format!("{{\"seq\":{i}}}").into_bytes())
            .collect();
        sent[7] = b"bin\r\n\x00\xff\r\n".to_vec();
        sent[8] = Vec::new();
        sent[9] = vec![b'x'; 1 << 20];
        let mut admin = redis.conn();
        let mut pipe = redis::pipe();
        for payload in &sent {
            pipe.cmd("PUBLISH")
                .arg("ch")
                .arg(payload.as_slice())
                .ignore();
        }
        pipe.query::<()>(&mut admin).expect("publish");
        let got = recv_until(&mut listener, sent.len()).await;
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "payloads differ or are out of order");
        // Quiet: the PING's pong makes it Idle, not an error.
        assert_eq!(listener.recv(512).await.expect("idle"), PubSubEvent::Idle);
        // Killed: an error, then a new subscription that receives again.
        redis::cmd("CLIENT")
            .arg("KILL")
            .arg("TYPE")
            .arg("pubsub")
            .query::<()>(&mut admin)
            .expect("kill");
        assert!(listener.recv(512).await.is_err());
        assert!(!listener.is_subscribed());
        assert_eq!(
            listener.recv(512).await.expect("again"),
            PubSubEvent::Subscribed
        );
        redis::cmd("PUBLISH")
            .arg("ch")
            .arg("after")
            .query::<()>(&mut admin)
            .expect("publish");
        assert_eq!(recv_until(&mut listener, 1).await, vec![b"after".to_vec()]);
    }

    /// A server that stops answering (paused) is a timeout error, not a hang.
    #[tokio::test]
    async fn a_silent_server_is_a_timeout() {
        let redis = RedisServer::start();
        let mut target = RedisTarget::new(redis.url());
        target.response_timeout = Duration::from_millis(200);
        let mut listener = PubSubListener::new(target, "ch")
            .expect("listener")
            .with_health_interval(Duration::from_millis(50));
        assert_eq!(
            listener.recv(512).await.expect("subscribe"),
            PubSubEvent::Subscribed
        );
        let mut admin = redis.conn();
        redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(3000)
            .arg("ALL")
            .query::<()>(&mut admin)
            .expect("pause");
        let started = std::time::Instant::now();
        assert!(listener.recv(512).await.is_err());
        assert!(started.elapsed() < Duration::from_secs(2));
        redis::cmd("CLIENT")
            .arg("UNPAUSE")
            .query::<()>(&mut admin)
            .expect("unpause");
    }
}
