//! The sink's state in Redis: the in-flight batch record, acknowledgements, dead letters.
//!
//! A sealed batch is recorded *before* its first send, as the ordered ids of its parts, in
//! the hash `<stream>:secops:inflight` under the consumer's name. Whoever resends it — this
//! consumer after a retry or a restart, or another one that claimed the entries of a dead
//! consumer — rebuilds the same parts from those ids and so sends the same bytes. Every
//! change is a compare-and-set against the value last written, so a consumer that lost its
//! batch to a claim notices and lets go instead of overwriting the new owner's record.

use std::collections::{HashMap, HashSet};

use redis::{Script, Value};
use redtail_bus::consumer::{decode_range, StreamEntry};
use redtail_bus::{BusError, Connection, RedisTarget};
use serde::{Deserialize, Serialize};

use crate::SecopsError;

/// Dead-letter stream trim: bounded memory even if nobody reads it (alerted on instead).
const DEADLETTER_MAXLEN: u64 = 100_000;

/// `KEYS[1]` hash, `ARGV[1]` field, `ARGV[2]` expected value (`""`: absent), `ARGV[3]` new
/// value (`""`: delete). 1 when applied.
const CAS: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur == false then cur = '' end
if cur ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
";

/// Moves a record from field `ARGV[1]` (if it still holds `ARGV[2]`) to an empty `ARGV[3]`.
const ADOPT: &str = r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if redis.call('HEXISTS', KEYS[1], ARGV[3]) == 1 then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[3], ARGV[2])
return 1
";

/// A sealed batch: its parts (ordered id lists, sent front first) and when it was sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub v: u32,
    /// Milliseconds since the epoch; the maximum age counts from here, across restarts.
    pub sealed_ms: i64,
    pub parts: Vec<Vec<String>>,
}

impl Record {
    pub fn new(sealed_ms: i64, ids: Vec<String>) -> Self {
        Record {
            v: 1,
            sealed_ms,
            parts: vec![ids],
        }
    }

    pub fn ids(&self) -> impl Iterator<Item = &String> {
        self.parts.iter().flatten()
    }

    fn encode(&self) -> String {
        // A struct of strings and integers always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Where the sink keeps its state, and what it needs to acknowledge.
pub struct Store {
    conn: Connection,
    pub stream: String,
    group: String,
    consumer: String,
    hash: String,
    deadletter: String,
    /// The value of our field as we last wrote it (`""`: none).
    written: String,
}

impl Store {
    pub fn new(
        target: RedisTarget,
        stream: &str,
        group: &str,
        consumer: &str,
    ) -> Result<Self, SecopsError> {
        Ok(Store {
            conn: Connection::new(target)?,
            stream: stream.to_string(),
            group: group.to_string(),
            consumer: consumer.to_string(),
            hash: format!("{stream}:secops:inflight"),
            deadletter: format!("{stream}:deadletter"),
            written: String::new(),
        })
    }

    pub fn deadletter_key(&self) -> &str {
        &self.deadletter
    }

    async fn run<T: redis::FromRedisValue>(&mut self, cmd: &redis::Cmd) -> Result<T, SecopsError> {
        let mut conn = self.conn.get().await?;
        match cmd.query_async::<T>(&mut conn).await {
            Ok(v) => Ok(v),
            Err(e) => Err(SecopsError::Redis(self.conn.on_error(BusError::from(e)))),
        }
    }

    async fn script(&mut self, script: &Script, args: [&str; 3]) -> Result<bool, SecopsError> {
        let mut conn = self.conn.get().await?;
        let mut inv = script.key(&self.hash);
        for a in args {
            inv.arg(a);
        }
        match inv.invoke_async::<i64>(&mut conn).await {
            Ok(n) => Ok(n == 1),
            Err(e) => Err(SecopsError::Redis(self.conn.on_error(BusError::from(e)))),
        }
    }

    /// Every recorded batch: `(owner, raw value, record)`. Unreadable values are skipped.
    pub async fn load_all(&mut self) -> Result<Vec<(String, String, Record)>, SecopsError> {
        let mut cmd = redis::cmd("HGETALL");
        cmd.arg(&self.hash);
        let map: HashMap<String, String> = self.run(&cmd).await?;
        let mut out: Vec<(String, String, Record)> = map
            .into_iter()
            .filter_map(|(owner, raw)| {
                let record = serde_json::from_str::<Record>(&raw).ok()?;
                Some((owner, raw, record))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Our own recorded batch, if any (a restart finds what it was sending).
    pub async fn load_own(&mut self) -> Result<Option<Record>, SecopsError> {
        let mut cmd = redis::cmd("HGET");
        cmd.arg(&self.hash).arg(&self.consumer);
        let raw: Option<String> = self.run(&cmd).await?;
        let Some(raw) = raw else { return Ok(None) };
        match serde_json::from_str::<Record>(&raw) {
            Ok(record) => {
                self.written = raw;
                Ok(Some(record))
            }
            Err(_) => {
                tracing::warn!(key = %self.hash, "Unreadable in-flight record dropped; its entries are re-read from the pending list.");
                self.written = raw;
                self.clear().await?;
                Ok(None)
            }
        }
    }

    /// Takes over another consumer's record; false if it changed meanwhile.
    pub async fn adopt(&mut self, owner: &str, raw: &str) -> Result<bool, SecopsError> {
        let consumer = self.consumer.clone();
        let ok = self
            .script(&Script::new(ADOPT), [owner, raw, &consumer])
            .await?;
        if ok {
            self.written = raw.to_string();
        }
        Ok(ok)
    }

    /// Writes our record; false means someone took it over (we must let the batch go).
    pub async fn write(&mut self, record: &Record) -> Result<bool, SecopsError> {
        let new = record.encode();
        self.swap(new).await
    }

    /// Deletes our record; false as for [`Store::write`].
    pub async fn clear(&mut self) -> Result<bool, SecopsError> {
        self.swap(String::new()).await
    }

    async fn swap(&mut self, new: String) -> Result<bool, SecopsError> {
        let consumer = self.consumer.clone();
        let expected = self.written.clone();
        let ok = self
            .script(&Script::new(CAS), [&consumer, &expected, &new])
            .await?;
        if ok {
            self.written = new;
        } else {
            self.written.clear();
        }
        Ok(ok)
    }

    /// The entries of `ids`, in order; ids whose entry is gone (trimmed) are left out.
    pub async fn fetch(&mut self, ids: &[String]) -> Result<Vec<StreamEntry>, SecopsError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(256) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("XRANGE").arg(&self.stream).arg(id).arg(id);
            }
            let mut conn = self.conn.get().await?;
            let replies: Vec<Value> = match pipe.query_async(&mut conn).await {
                Ok(v) => v,
                Err(e) => return Err(SecopsError::Redis(self.conn.on_error(BusError::from(e)))),
            };
            for reply in replies {
                out.extend(decode_range(reply)?);
            }
        }
        Ok(out)
    }

    /// `XACK`; after a 2xx (or a dead letter) only.
    pub async fn ack(&mut self, ids: &[String]) -> Result<u64, SecopsError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&self.stream).arg(&self.group).arg(ids);
        match self.run(&cmd).await {
            // The group is gone (deleted, or Redis restarted empty) and its pending list with
            // it: nothing is left to acknowledge, and retrying would never end.
            Err(SecopsError::Redis(BusError::Redis(e))) if e.code() == Some("NOGROUP") => Ok(0),
            other => other,
        }
    }

    /// Resets the idle time of those of `ids` still pending on us (XCLAIM to ourselves,
    /// JUSTID: no delivery count change), so a batch that is merely slow is not claimed by
    /// another consumer. Returns the ids that are no longer ours: another consumer claimed
    /// them while we were stalled (frozen, partitioned) and they must not be sent by us too.
    pub async fn keep_alive(&mut self, ids: &[String]) -> Result<HashSet<String>, SecopsError> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        // Only the range the ids span: our pending list may be longer than what we hold
        // (entries of an earlier run not re-read yet).
        let key = |id: &String| -> (u64, u64) {
            let (ms, seq) = id.split_once('-').unwrap_or((id.as_str(), "0"));
            (ms.parse().unwrap_or(0), seq.parse().unwrap_or(0))
        };
        let first = ids
            .iter()
            .min_by_key(|id| key(id))
            .map_or("-", |s| s.as_str());
        let last = ids
            .iter()
            .max_by_key(|id| key(id))
            .map_or("+", |s| s.as_str());
        let mut cmd = redis::cmd("XPENDING");
        cmd.arg(&self.stream)
            .arg(&self.group)
            .arg(first)
            .arg(last)
            .arg(ids.len() * 4 + 10_000)
            .arg(&self.consumer);
        let mine: Vec<(String, String, u64, u64)> = self.run(&cmd).await?;
        let mine: HashSet<String> = mine.into_iter().map(|(id, ..)| id).collect();
        let (ours, lost): (Vec<String>, Vec<String>) =
            ids.iter().cloned().partition(|id| mine.contains(id));
        self.claim(&ours).await?;
        Ok(lost.into_iter().collect())
    }

    /// Takes `ids` over (adopting a dead consumer's recorded batch), whoever holds them.
    pub async fn claim(&mut self, ids: &[String]) -> Result<(), SecopsError> {
        for chunk in ids.chunks(1000) {
            let mut cmd = redis::cmd("XCLAIM");
            cmd.arg(&self.stream)
                .arg(&self.group)
                .arg(&self.consumer)
                .arg(0)
                .arg(chunk)
                .arg("JUSTID");
            let _: Value = self.run(&cmd).await?;
        }
        Ok(())
    }

    /// `XADD <stream>:deadletter`: the entry's fields plus `id` and `reason`.
    pub async fn dead_letter(
        &mut self,
        entry: &StreamEntry,
        reason: &str,
    ) -> Result<(), SecopsError> {
        let mut cmd = redis::cmd("XADD");
        cmd.arg(&self.deadletter)
            .arg("MAXLEN")
            .arg("~")
            .arg(DEADLETTER_MAXLEN)
            .arg("*")
            .arg("id")
            .arg(&entry.id)
            .arg("reason")
            .arg(reason);
        if let Some(line) = &entry.line {
            cmd.arg("line").arg(line.as_slice());
        }
        for (name, value) in [
            ("src", &entry.src),
            ("path", &entry.path),
            ("fid", &entry.fid),
        ] {
            if let Some(v) = value {
                cmd.arg(name).arg(v);
            }
        }
        if let Some(off) = entry.off {
            cmd.arg("off").arg(off);
        }
        if let Some(ct) = entry.collected_us {
            cmd.arg("ct").arg(ct);
        }
        let _: Value = self.run(&cmd).await?;
        Ok(())
    }
}
