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
    /// The live subscription; `None` while disconnected.
    sub: Option<(PubSubSink, PubSubStream)>,
}

impl PubSubListener {
    pub const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);

    pub fn new(target: RedisTarget, channel: impl Into<String>) -> Result<Self, BusError> {
        Ok(Self {
            client: target.client()?,
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
        let Some((sink, stream)) = self.sub.as_mut() else {
            return self.connect().await;
        };
        let first = tokio::time::timeout(self.health_interval, stream.next()).await;
        match first {
            Ok(Some(msg)) => {
                let mut out = vec![msg.get_payload_bytes().to_vec()];
                while out.len() < max.max(1) {
                    match stream.next().now_or_never() {
                        Some(Some(msg)) => out.push(msg.get_payload_bytes().to_vec()),
                        // Nothing buffered right now, or the connection just ended: the
                        // next call notices the end.
                        _ => break,
                    }
                }
                Ok(PubSubEvent::Messages(out))
            }
            Ok(None) => Err(self.fail(closed("pub/sub connection closed"))),
            Err(_elapsed) => {
                let ping = tokio::time::timeout(self.target.response_timeout, sink.ping::<Value>());
                match ping.await {
                    Ok(Ok(_)) => Ok(PubSubEvent::Idle),
                    Ok(Err(e)) => Err(self.fail(e.into())),
                    Err(_) => Err(self.fail(timed_out("pub/sub PING timed out"))),
                }
            }
        }
    }

    async fn connect(&mut self) -> Result<PubSubEvent, BusError> {
        if let Some(at) = self.retry_at {
            tokio::time::sleep_until(at.into()).await;
        }
        let attempt = async {
            let pubsub =
                tokio::time::timeout(self.target.connect_timeout, self.client.get_async_pubsub())
                    .await
                    .map_err(|_| timed_out("connecting for pub/sub timed out"))??;
            let (mut sink, stream) = pubsub.split();
            tokio::time::timeout(self.target.response_timeout, sink.subscribe(&self.channel))
                .await
                .map_err(|_| timed_out("SUBSCRIBE timed out"))??;
            Ok::<_, BusError>((sink, stream))
        };
        match attempt.await {
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
