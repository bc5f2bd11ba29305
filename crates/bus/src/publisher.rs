//! The watcher's side of Redis: idempotent batch publishing and offset lookups.

use redis::aio::MultiplexedConnection;
use redis::Value;

use crate::{BusError, Connection};

/// The hash holding the committed offset of every (source, file identity).
pub const OFFSETS_KEY: &str = "redtail:offsets";

const SCRIPT: &str = include_str!("publish.lua");

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `XADD <key> [MAXLEN ~ maxlen] * line … src … path … off … fid … [trunc 1] ct …`.
    Stream { key: String, maxlen: u64 },
    /// `PUBLISH <channel> <line>`: the classic design, at-most-once to subscribers.
    PubSub { channel: String },
}

/// One line to publish; `end` is the offset just after it in its file.
#[derive(Debug, Clone, Copy)]
pub struct OutLine<'a> {
    pub offset: u64,
    pub end: u64,
    pub truncated: bool,
    pub data: &'a [u8],
}

/// Lines of one file, in file order.
#[derive(Debug)]
pub struct PublishBatch<'a> {
    pub source: &'a str,
    /// The file identity as text (the tail crate's `FileId`).
    pub fid: &'a str,
    pub path: &'a str,
    /// When the watcher read the batch, microseconds since the epoch.
    pub collected_us: i64,
    pub lines: Vec<OutLine<'a>>,
}

/// What Redis did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Lines appended / published now.
    pub added: u64,
    /// Lines Redis already had (idempotent skip).
    pub skipped: u64,
    /// The committed offset Redis holds for this file after the call.
    pub committed: u64,
}

/// Publishes batches through one server-side script call each.
pub struct Publisher {
    conn: Connection,
    mode: Mode,
    sha: String,
}

impl Publisher {
    pub fn new(conn: Connection, mode: Mode) -> Self {
        let sha = redis::Script::new(SCRIPT).get_hash().to_string();
        Self { conn, mode, sha }
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    pub fn connection(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The hash field of a file: `<source>:<fid>`.
    pub fn offsets_field(source: &str, fid: &str) -> String {
        format!("{source}:{fid}")
    }

    /// One attempt. On any error the caller retries the SAME batch later: the
    /// script makes the retry safe whether or not the failed call ran.
    pub async fn publish(&mut self, batch: &PublishBatch<'_>) -> Result<PublishOutcome, BusError> {
        match self.try_publish(batch).await {
            Ok(outcome) => Ok(outcome),
            Err(e) => Err(self.conn.on_error(e)),
        }
    }

    async fn try_publish(&mut self, batch: &PublishBatch<'_>) -> Result<PublishOutcome, BusError> {
        let mut conn = self.conn.get().await?;
        let mut cmd = redis::cmd("EVALSHA");
        self.fill(&mut cmd, batch);
        let reply: Result<Value, redis::RedisError> = cmd.query_async(&mut conn).await;
        let reply = match reply {
            Err(e) if e.code() == Some("NOSCRIPT") => {
                // First use, or Redis restarted / flushed its script cache.
                load_script(&mut conn).await?;
                cmd.query_async(&mut conn).await?
            }
            other => other?,
        };
        parse_outcome(reply)
    }

    fn fill(&self, cmd: &mut redis::Cmd, batch: &PublishBatch<'_>) {
        cmd.arg(&self.sha);
        // Declare every key the script touches (cluster routing, ACL key checks).
        let (mode_flag, maxlen, channel) = match &self.mode {
            Mode::Stream { key, maxlen } => {
                cmd.arg(2).arg(OFFSETS_KEY).arg(key.as_str());
                ("s", *maxlen, "")
            }
            Mode::PubSub { channel } => {
                cmd.arg(1).arg(OFFSETS_KEY);
                ("p", 0, channel.as_str())
            }
        };
        cmd.arg(Self::offsets_field(batch.source, batch.fid))
            .arg(mode_flag)
            .arg(maxlen)
            .arg(batch.source)
            .arg(batch.path)
            .arg(batch.fid)
            .arg(batch.collected_us)
            .arg(channel);
        for line in &batch.lines {
            cmd.arg(line.offset)
                .arg(line.end)
                .arg(if line.truncated { "1" } else { "0" })
                .arg(line.data);
        }
    }

    /// The committed offsets Redis holds for these files (HMGET), `None` where unknown.
    pub async fn committed_offsets(
        &mut self,
        source: &str,
        fids: &[String],
    ) -> Result<Vec<Option<u64>>, BusError> {
        if fids.is_empty() {
            return Ok(Vec::new());
        }
        let result: Result<Vec<Option<u64>>, BusError> = async {
            let mut conn = self.conn.get().await?;
            let mut cmd = redis::cmd("HMGET");
            cmd.arg(OFFSETS_KEY);
            for fid in fids {
                cmd.arg(Self::offsets_field(source, fid));
            }
            let values: Vec<Option<String>> = cmd.query_async(&mut conn).await?;
            values
                .into_iter()
                .map(|v| match v {
                    None => Ok(None),
                    Some(s) => s.parse::<u64>().map(Some).map_err(|_| {
                        BusError::Protocol(format!("offset {s:?} in {OFFSETS_KEY} is not a number"))
                    }),
                })
                .collect()
        }
        .await;
        result.map_err(|e| self.conn.on_error(e))
    }

    /// Remove a file's committed offset (after its checkpoint entry was dropped).
    pub async fn forget(&mut self, source: &str, fid: &str) -> Result<(), BusError> {
        let result: Result<(), BusError> = async {
            let mut conn = self.conn.get().await?;
            let _: i64 = redis::cmd("HDEL")
                .arg(OFFSETS_KEY)
                .arg(Self::offsets_field(source, fid))
                .query_async(&mut conn)
                .await?;
            Ok(())
        }
        .await;
        result.map_err(|e| self.conn.on_error(e))
    }
}

async fn load_script(conn: &mut MultiplexedConnection) -> Result<(), BusError> {
    let _: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(SCRIPT)
        .query_async(conn)
        .await?;
    Ok(())
}

fn parse_outcome(reply: Value) -> Result<PublishOutcome, BusError> {
    let items = match reply {
        Value::Array(items) if items.len() == 3 => items,
        other => {
            return Err(BusError::Protocol(format!(
                "publish script replied {other:?}"
            )))
        }
    };
    let int = |v: &Value| -> Result<u64, BusError> {
        match v {
            Value::Int(i) if *i >= 0 => Ok(*i as u64),
            Value::BulkString(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| BusError::Protocol("non-numeric committed offset".into())),
            Value::SimpleString(s) => s
                .parse()
                .map_err(|_| BusError::Protocol("non-numeric committed offset".into())),
            other => Err(BusError::Protocol(format!(
                "unexpected {other:?} in script reply"
            ))),
        }
    };
    Ok(PublishOutcome {
        added: int(&items[0])?,
        skipped: int(&items[1])?,
        committed: int(&items[2])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_script_reply() {
        let v = Value::Array(vec![
            Value::Int(3),
            Value::Int(1),
            Value::BulkString(b"12345678901234567".to_vec()),
        ]);
        assert_eq!(
            parse_outcome(v).unwrap(),
            PublishOutcome {
                added: 3,
                skipped: 1,
                committed: 12345678901234567
            }
        );
        assert!(parse_outcome(Value::Nil).is_err());
    }
}
