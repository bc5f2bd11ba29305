//! Group statistics for gauges (pending entries, lag), on a connection of their own.
//!
//! A separate connection because the consumer's connection spends most of its time parked in
//! a blocking `XREADGROUP`: a statistics query queued behind it would wait up to the block
//! time, and the sampling period would drift with traffic.

use redis::Value;

use super::reply::{int, pairs, text};
use crate::{BusError, Connection, RedisTarget};

/// What `XINFO GROUPS` says about one consumer group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupInfo {
    /// Entries delivered to the group's consumers and not yet acknowledged.
    pub pending: u64,
    /// Entries in the stream not yet delivered to the group (Redis ≥ 7). `None` when Redis
    /// cannot tell (older server, or entries deleted in the middle of the stream).
    pub lag: Option<u64>,
    /// Consumers known to the group (dead ones included until deleted).
    pub consumers: u64,
    /// Id of the last entry delivered to the group.
    pub last_delivered_id: Option<String>,
}

impl GroupInfo {
    /// Nothing waiting and nothing in flight: the group has processed everything.
    pub fn caught_up(&self) -> bool {
        self.pending == 0 && self.lag == Some(0)
    }
}

/// Reads statistics of one stream's consumer group.
pub struct GroupMonitor {
    conn: Connection,
    stream: String,
    group: String,
}

impl GroupMonitor {
    pub fn new(
        target: RedisTarget,
        stream: impl Into<String>,
        group: impl Into<String>,
    ) -> Result<Self, BusError> {
        Ok(Self {
            conn: Connection::new(target)?,
            stream: stream.into(),
            group: group.into(),
        })
    }

    /// `XINFO GROUPS <stream>`, reduced to our group. A missing stream or group reads as
    /// empty (nothing pending): the consumer creates them on its next read.
    pub async fn info(&mut self) -> Result<GroupInfo, BusError> {
        let stream = self.stream.clone();
        self.info_of(&stream).await
    }

    /// [`Self::info`] for another stream of the same group (cluster mode: one stream per
    /// source, all read by the one group).
    pub async fn info_of(&mut self, stream: &str) -> Result<GroupInfo, BusError> {
        let mut cmd = redis::cmd("XINFO");
        cmd.arg("GROUPS").arg(stream);
        let mut conn = self.conn.get().await?;
        let value = match cmd.query_async::<Value>(&mut conn).await {
            Ok(value) => value,
            Err(e) if e.detail().is_some_and(|d| d.contains("no such key")) => {
                return Ok(GroupInfo::default())
            }
            Err(e) => return Err(self.conn.on_error(e.into())),
        };
        let groups = match value {
            Value::Array(groups) | Value::Set(groups) => groups,
            _ => return Err(BusError::Protocol("XINFO GROUPS: not a list".to_string())),
        };
        for group in groups {
            let Some(fields) = pairs(group) else {
                continue;
            };
            if !fields
                .iter()
                .any(|(k, v)| k == "name" && text(v).as_deref() == Some(self.group.as_str()))
            {
                continue;
            }
            let mut info = GroupInfo::default();
            for (k, v) in &fields {
                match k.as_str() {
                    "pending" => info.pending = int(v).map_or(0, |n| n.max(0) as u64),
                    "lag" => info.lag = int(v).map(|n| n.max(0) as u64),
                    "consumers" => info.consumers = int(v).map_or(0, |n| n.max(0) as u64),
                    "last-delivered-id" => info.last_delivered_id = text(v),
                    _ => {}
                }
            }
            return Ok(info);
        }
        Ok(GroupInfo::default())
    }

    /// `XPENDING <stream> <group>` summary: entries delivered and not acknowledged.
    pub async fn pending_count(&mut self) -> Result<u64, BusError> {
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(&self.stream).arg(&self.group);
        let mut conn = self.conn.get().await?;
        match cmd.query_async::<Value>(&mut conn).await {
            Ok(Value::Array(parts)) => {
                Ok(parts.first().and_then(int).map_or(0, |n| n.max(0) as u64))
            }
            Ok(_) => Err(BusError::Protocol("XPENDING: not a list".to_string())),
            Err(e) if e.code() == Some("NOGROUP") => Ok(0),
            Err(e) => Err(self.conn.on_error(e.into())),
        }
    }
}
