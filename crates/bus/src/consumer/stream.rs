//! Reading a stream through a consumer group: own pending entries first, then new ones,
//! with entries of dead consumers claimed now and then.
//!
//! Delivery is at-least-once: an entry leaves the group's pending list only through
//! [`StreamConsumer::ack`], which the caller sends after the entry was written out. Whatever
//! was delivered but not acknowledged (crash, lost reply, killed pod) is read again: by this
//! consumer when it restarts or reconnects (its own pending list), or by another one through
//! `XAUTOCLAIM` once it has been idle for `claim_idle`.

use std::time::{Duration, Instant};

use redis::Value;
use tokio::task::JoinHandle;

use super::ack::AckInFlight;
pub use super::batch::{BatchOrigin, StreamBatch};
use super::read_conn::ReadConn;
use super::reply::{decode_autoclaim, decode_read, Decoded};
use crate::{BusError, Connection, RedisTarget};

/// What a [`StreamConsumer`] reads and how.
#[derive(Debug, Clone)]
pub struct StreamConsumerConfig {
    /// Stream key (`redtail:logs`).
    pub stream: String,
    /// Consumer group; created from the start of the stream if missing.
    pub group: String,
    /// This consumer's name within the group (stable across restarts, e.g. the pod name, so
    /// a restarted consumer finds its own pending entries).
    pub consumer: String,
    /// Most entries per read (`COUNT`).
    pub count: usize,
    /// Longest wait for new entries (`BLOCK`); must stay below the connection's response
    /// timeout, or every idle read would look like a dead server. Zero: do not block (a
    /// cluster reader sweeping many streams; a blocked read would hold up the node's shared
    /// connection for every other stream on it).
    pub block: Duration,
    /// Entries idle this long on another consumer are taken over.
    pub claim_idle: Duration,
    /// How often to look for such entries.
    pub claim_interval: Duration,
}

/// Which read comes next.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Phase {
    /// Re-reading our own pending list from just after this id (`0` = from the start).
    OwnPending { after: String },
    /// Reading new entries (`>`).
    Live,
}

/// A consumer-group reader on its own multiplexed connection.
///
/// The caller owns the retry loop: every method returns the first error, having dropped the
/// connection if the error broke it; calling again reconnects.
pub struct StreamConsumer {
    conn: Connection,
    cfg: StreamConsumerConfig,
    phase: Phase,
    /// Whether `XGROUP CREATE` was confirmed on the current connection. Reset on connection
    /// loss: a restarted Redis without persistence has lost the group.
    group_ready: bool,
    /// `XAUTOCLAIM` cursor; `0-0` starts a new scan of the pending list.
    claim_cursor: String,
    /// When the next claim scan is due.
    next_claim: Instant,
    /// Whether a full batch of new entries sends the next `>` read at once (see
    /// [`StreamConsumer::read_ahead`]).
    read_ahead: bool,
    /// That read, in flight on its own task (which also decodes the reply) while the caller
    /// writes the batch before it. The task owns the read connection meanwhile and hands it
    /// back with the reply.
    ahead: Option<JoinHandle<AheadRead>>,
    /// Whether `XREADGROUP` goes over [`ReadConn`] (standalone `redis://`): decoded from the
    /// RESP bytes instead of a redis-rs `Value` tree.
    direct_reads: bool,
    /// That connection while no read is in flight on it; `None` until the first read, and
    /// again after an error broke it.
    read_conn: Option<ReadConn>,
}

/// What a read-ahead task hands back: the read connection (if it used one) and the reply.
type AheadRead = (Option<ReadConn>, Result<Decoded, BusError>);

impl StreamConsumer {
    pub fn new(target: RedisTarget, cfg: StreamConsumerConfig) -> Result<Self, BusError> {
        Self::with_connection(Connection::new(target)?, cfg)
    }

    /// A reader on an existing connection: in a cluster, every per-stream reader shares the
    /// one cluster connection.
    pub fn with_connection(conn: Connection, cfg: StreamConsumerConfig) -> Result<Self, BusError> {
        let target = conn.target();
        if cfg.block >= target.response_timeout {
            return Err(BusError::Config(format!(
                "the read block time ({} ms) must be shorter than the response timeout ({} ms)",
                cfg.block.as_millis(),
                target.response_timeout.as_millis()
            )));
        }
        if cfg.count == 0 {
            return Err(BusError::Config("the read count must be at least 1".into()));
        }
        let direct_reads = ReadConn::supports(target);
        Ok(Self {
            conn,
            direct_reads,
            read_conn: None,
            phase: Phase::OwnPending {
                after: "0".to_string(),
            },
            group_ready: false,
            claim_cursor: "0-0".to_string(),
            // The first scan waits one interval: at start-up our own pending entries go first,
            // and a consumer that just died elsewhere is not idle long enough yet anyway.
            next_claim: Instant::now() + cfg.claim_interval,
            cfg,
            read_ahead: false,
            ahead: None,
        })
    }

    /// Read ahead: once a read of new entries came back full (a backlog), the next one
    /// (non-blocking) is sent right away, before this batch is returned, so Redis, the reply
    /// parser and the decoding of batch N+1 run on other threads while the caller writes and
    /// acknowledges batch N. Delivery does not change: entries read ahead sit in this
    /// consumer's pending list like any others until acknowledged, and are re-read from it
    /// if the read is lost (connection error) or never processed (crash). On shutdown,
    /// [`StreamConsumer::finish_read_ahead`] hands the batch in flight to the caller.
    ///
    /// Off by default: a cluster reader sweeps many streams on a shared connection, and the
    /// SecOps sink waits for its own batches to fill.
    pub fn read_ahead(mut self, on: bool) -> Self {
        self.read_ahead = on;
        self
    }

    pub fn config(&self) -> &StreamConsumerConfig {
        &self.cfg
    }

    pub fn target(&self) -> &RedisTarget {
        self.conn.target()
    }

    /// The next entries to process. May be empty (nothing arrived within `block`).
    ///
    /// Order: our own pending entries until that list is exhausted, then, whenever a claim
    /// scan is due, entries idle on other consumers, otherwise new entries.
    pub async fn next_batch(&mut self) -> Result<StreamBatch, BusError> {
        match self.next_batch_once().await {
            Err(err) if is_nogroup(&err) => {
                // The stream or the group was deleted under us (FLUSHALL, DEL, a restarted
                // Redis without persistence): create both again and carry on.
                tracing::warn!(
                    stream = %self.cfg.stream,
                    group = %self.cfg.group,
                    "Consumer group vanished; creating it again."
                );
                self.group_ready = false;
                self.claim_cursor = "0-0".to_string();
                self.next_batch_once().await
            }
            other => other,
        }
    }

    async fn next_batch_once(&mut self) -> Result<StreamBatch, BusError> {
        if let Some(ahead) = self.ahead.as_mut() {
            // Awaited through `&mut`: if the caller drops this future (shutdown), the read
            // stays in `ahead` for `finish_read_ahead`.
            let joined = ahead.await;
            self.ahead = None;
            let decoded = self.joined_read(joined).map_err(|e| self.on_error(e))?;
            self.send_read_ahead(&decoded);
            return Ok(self.batch(BatchOrigin::New, decoded, false));
        }
        if !self.group_ready {
            self.ensure_group().await?;
        }
        if let Phase::OwnPending { after } = &self.phase {
            let after = after.clone();
            let decoded = self.read_group(&after, None).await?;
            let last = decoded
                .entries
                .iter()
                .map(|e| e.id.as_str())
                .chain(decoded.vanished.iter().map(String::as_str))
                .max_by(|a, b| cmp_ids(a, b))
                .map(str::to_string);
            match last {
                Some(last) => {
                    self.phase = Phase::OwnPending { after: last };
                    return Ok(self.batch(BatchOrigin::OwnPending, decoded, true));
                }
                None => self.phase = Phase::Live,
            }
        }
        if Instant::now() >= self.next_claim {
            let decoded = self.autoclaim().await?;
            if !decoded.entries.is_empty() || !decoded.vanished.is_empty() {
                return Ok(self.batch(BatchOrigin::Claimed, decoded, true));
            }
        }
        let block = Some(self.cfg.block).filter(|b| !b.is_zero());
        let decoded = self.read_group(">", block).await?;
        self.send_read_ahead(&decoded);
        Ok(self.batch(BatchOrigin::New, decoded, false))
    }

    /// Sends the next non-blocking `>` read on a task of its own when read-ahead is on, the
    /// read before it (`last`) came back full, and no claim scan is due (that goes first).
    /// A read that finds nothing just returns empty; the caller's next call then blocks.
    ///
    /// Not async: between taking a batch out of `ahead` and returning it there is no await
    /// point, so a caller that drops `next_batch` (shutdown) cannot lose a batch read ahead.
    fn send_read_ahead(&mut self, last: &Decoded) {
        if !self.read_ahead
            || self.ahead.is_some()
            || last.entries.len() + last.vanished.len() < self.cfg.count
            || Instant::now() >= self.next_claim
        {
            return;
        }
        let cmd = self.read_command(">", None);
        if self.direct_reads {
            // Connected: the read before this one just succeeded on it.
            let Some(mut read_conn) = self.read_conn.take() else {
                return;
            };
            self.ahead = Some(tokio::spawn(async move {
                let decoded = read_conn.read_group(&cmd.get_packed_command()).await;
                (Some(read_conn), decoded)
            }));
            return;
        }
        // Connected: the read before this one just succeeded.
        let Some(mut conn) = self.conn.connected() else {
            return;
        };
        self.ahead = Some(tokio::spawn(async move {
            let decoded = match cmd.query_async::<Value>(&mut conn).await {
                Ok(value) => decode_read(value),
                Err(e) => Err(e.into()),
            };
            (None, decoded)
        }));
    }

    /// Whether a read ahead is in flight: the next [`StreamConsumer::next_batch`] then
    /// returns without a new round trip (and never blocks).
    pub fn has_read_ahead(&self) -> bool {
        self.ahead.is_some()
    }

    /// The batch read ahead and still in flight, if any: awaited, so a caller shutting down
    /// can write and acknowledge it instead of leaving it pending until the next start.
    pub async fn finish_read_ahead(&mut self) -> Option<Result<StreamBatch, BusError>> {
        let ahead = self.ahead.take()?;
        let joined = ahead.await;
        let decoded = self.joined_read(joined).map_err(|e| self.on_error(e));
        Some(decoded.map(|d| self.batch(BatchOrigin::New, d, false)))
    }

    fn batch(&self, origin: BatchOrigin, decoded: Decoded, redelivered: bool) -> StreamBatch {
        batch(&self.cfg.stream, origin, decoded, redelivered)
    }

    /// Acknowledges `ids` with one `XACK`; returns how many Redis still had pending.
    pub async fn ack(&mut self, ids: &[String]) -> Result<u64, BusError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&self.cfg.stream).arg(&self.cfg.group).arg(ids);
        let mut conn = self.conn.get().await?;
        match cmd.query_async::<u64>(&mut conn).await {
            Ok(n) => Ok(n),
            // The group is gone (deleted, or Redis restarted empty), and its pending list
            // with it: nothing is left to acknowledge.
            Err(e) if e.code() == Some("NOGROUP") => Ok(0),
            Err(e) => Err(self.on_error(e.into())),
        }
    }

    /// Sends the `XACK` of `ids` without waiting for it; `Err(ids)` when there is no
    /// connection to send it on (then [`StreamConsumer::ack`] dials and waits).
    pub fn send_ack(&mut self, ids: Vec<String>) -> Result<AckInFlight, Vec<String>> {
        match self.conn.connected() {
            Some(conn) => Ok(AckInFlight::send(
                conn,
                &self.cfg.stream,
                &self.cfg.group,
                ids,
            )),
            None => Err(ids),
        }
    }

    /// The outcome of [`StreamConsumer::send_ack`]: how many were still pending and when
    /// Redis answered, or the error (the connection dropped if it broke it) with the ids to
    /// acknowledge again.
    pub async fn settle_ack(
        &mut self,
        ack: AckInFlight,
    ) -> Result<(u64, Instant), (Vec<String>, BusError)> {
        ack.outcome()
            .await
            .map_err(|(ids, err)| (ids, self.on_error(err)))
    }

    /// `XGROUP CREATE <stream> <group> 0 MKSTREAM`; an existing group (BUSYGROUP) is fine.
    async fn ensure_group(&mut self) -> Result<(), BusError> {
        let mut cmd = redis::cmd("XGROUP");
        cmd.arg("CREATE")
            .arg(&self.cfg.stream)
            .arg(&self.cfg.group)
            .arg("0")
            .arg("MKSTREAM");
        let mut conn = self.conn.get().await?;
        match cmd.query_async::<Value>(&mut conn).await {
            Ok(_) => {
                tracing::info!(
                    stream = %self.cfg.stream,
                    group = %self.cfg.group,
                    "Created the consumer group."
                );
            }
            Err(e) if e.code() == Some("BUSYGROUP") => {}
            Err(e) => return Err(self.on_error(e.into())),
        }
        self.group_ready = true;
        Ok(())
    }

    /// `XREADGROUP GROUP g c COUNT n [BLOCK ms] STREAMS key <from>`.
    async fn read_group(
        &mut self,
        from: &str,
        block: Option<Duration>,
    ) -> Result<Decoded, BusError> {
        let cmd = self.read_command(from, block);
        if self.direct_reads {
            let mut read_conn = match self.read_conn.take() {
                Some(c) => c,
                None => ReadConn::connect(self.conn.target())
                    .await
                    .map_err(|e| self.on_error(e))?,
            };
            let decoded = read_conn.read_group(&cmd.get_packed_command()).await;
            return match decoded {
                Err(e) if e.breaks_connection() => Err(self.on_error(e)),
                other => {
                    // A server error (NOGROUP) leaves the connection usable.
                    self.read_conn = Some(read_conn);
                    other.map_err(|e| self.on_error(e))
                }
            };
        }
        let mut conn = self.conn.get().await?;
        match cmd.query_async::<Value>(&mut conn).await {
            Ok(value) => decode_read(value).map_err(|e| self.on_error(e)),
            Err(e) => Err(self.on_error(e.into())),
        }
    }

    fn read_command(&self, from: &str, block: Option<Duration>) -> redis::Cmd {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&self.cfg.group)
            .arg(&self.cfg.consumer)
            .arg("COUNT")
            .arg(self.cfg.count);
        if let Some(block) = block {
            // BLOCK 0 would mean "forever": keep at least 1 ms.
            cmd.arg("BLOCK").arg(block.as_millis().max(1) as u64);
        }
        cmd.arg("STREAMS").arg(&self.cfg.stream).arg(from);
        cmd
    }

    /// One `XAUTOCLAIM` step; schedules the next scan when the cursor wrapped around.
    async fn autoclaim(&mut self) -> Result<Decoded, BusError> {
        let mut cmd = redis::cmd("XAUTOCLAIM");
        cmd.arg(&self.cfg.stream)
            .arg(&self.cfg.group)
            .arg(&self.cfg.consumer)
            .arg(self.cfg.claim_idle.as_millis() as u64)
            .arg(&self.claim_cursor)
            .arg("COUNT")
            .arg(self.cfg.count);
        let mut conn = self.conn.get().await?;
        let (cursor, decoded) = match cmd.query_async::<Value>(&mut conn).await {
            Ok(value) => decode_autoclaim(value).map_err(|e| self.on_error(e))?,
            Err(e) => return Err(self.on_error(e.into())),
        };
        if cursor == "0-0" {
            // Scanned the whole pending list: rest until the next interval.
            self.next_claim = Instant::now() + self.cfg.claim_interval;
        }
        // Otherwise more of the list remains: the next call continues right away.
        self.claim_cursor = cursor;
        if !decoded.entries.is_empty() {
            tracing::info!(
                claimed = decoded.entries.len(),
                "Claimed entries left pending by an idle consumer."
            );
        }
        Ok(decoded)
    }

    /// Drops a broken connection and forgets what it established: the group must be
    /// confirmed again, and our own pending list re-read, because a reply lost with the
    /// connection may have delivered entries to us that we never saw.
    fn on_error(&mut self, err: BusError) -> BusError {
        if err.breaks_connection() {
            // A read ahead on the broken connection is lost too; whatever it delivered is
            // in our pending list, which is re-read next.
            if let Some(ahead) = self.ahead.take() {
                ahead.abort();
            }
            self.read_conn = None;
            self.group_ready = false;
            self.phase = Phase::OwnPending {
                after: "0".to_string(),
            };
        }
        self.conn.on_error(err)
    }
}

impl StreamConsumer {
    /// The outcome of a read-ahead task, taking back the read connection it used; a panic
    /// or abort in it counts as a lost reply (and a lost connection).
    fn joined_read(
        &mut self,
        joined: Result<AheadRead, tokio::task::JoinError>,
    ) -> Result<Decoded, BusError> {
        match joined {
            Ok((read_conn, decoded)) => {
                if read_conn.is_some() {
                    self.read_conn = read_conn;
                }
                decoded
            }
            Err(e) => Err(BusError::Protocol(format!(
                "the read-ahead task ended without a reply ({})",
                if e.is_panic() { "panic" } else { "cancelled" }
            ))),
        }
    }
}

fn batch(stream: &str, origin: BatchOrigin, decoded: Decoded, redelivered: bool) -> StreamBatch {
    let mut entries = decoded.entries;
    if redelivered {
        for e in &mut entries {
            e.redelivered = true;
        }
    }
    StreamBatch {
        stream: stream.to_string(),
        origin,
        entries,
        vanished: decoded.vanished,
    }
}

/// Whether Redis said the group (or the stream) does not exist.
pub(crate) fn is_nogroup(err: &BusError) -> bool {
    matches!(err, BusError::Redis(e) if e.code() == Some("NOGROUP"))
}

/// Orders stream ids `<ms>-<seq>` numerically (plain string order puts `10-0` before `9-0`).
fn cmp_ids(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(id: &str) -> (u64, u64) {
        let mut it = id.splitn(2, '-');
        let ms = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        let seq = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
        (ms, seq)
    }
    parts(a).cmp(&parts(b))
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
