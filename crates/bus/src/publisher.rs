//! The watcher's side of Redis: idempotent batch publishing and offset lookups.
//!
//! The script and its argument layout are the same in both deployments; only the key names
//! differ (see [`crate::keys`]): standalone uses [`OFFSETS_KEY`] and the configured stream,
//! a cluster uses one stream and one offsets hash per source, in one slot. The offset
//! lookups and bookkeeping outside the script are in `offsets.rs`; publishing with replica
//! acknowledgement (`WAIT`) in `replicated.rs`.

use redis::Value;

use crate::keys::{cluster_offsets_key, cluster_stream_key};
use crate::{BusError, Connection, RedisConn};

/// The hash holding the committed offset of every (source, file identity) (standalone).
pub const OFFSETS_KEY: &str = "redtail:offsets";

/// Stream mode's script (`XADD` per line, one `XTRIM` per batch).
const STREAM_SCRIPT: &str = include_str!("publish.lua");
/// Pub/sub mode's script: the same contract with one argument per line instead of four
/// (per argument Redis parses it and copies it into Lua: that was a third of its time per
/// line), and the offset stored before the `PUBLISH`es (see the script).
const PUBSUB_SCRIPT: &str = include_str!("publish_pubsub.lua");

/// Where lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `XADD <key> * line … src … path … off … fid … [trunc 1] [lines n] ct …` (the trim is
    /// one `XTRIM MAXLEN ~ maxlen` per batch).
    /// In cluster mode `key` is the prefix of the per-source streams (`<key>:{<source>}`).
    Stream { key: String, maxlen: u64 },
    /// `PUBLISH <channel> <line>`: the classic design, at-most-once to subscribers.
    PubSub { channel: String },
}

/// One line to publish — or one multi-line event (`lines > 1`: its lines joined by `\n`);
/// `end` is the offset just after it in its file.
#[derive(Debug, Clone, Copy)]
pub struct OutLine<'a> {
    pub offset: u64,
    pub end: u64,
    pub truncated: bool,
    /// How many file lines this entry holds: 1 for a plain line; more than 1 adds
    /// `lines <n>` to the entry (0 is taken as 1).
    pub lines: u32,
    pub data: &'a [u8],
}

impl OutLine<'_> {
    /// The script's per-line flags argument: `0`, `1` (cut), or `<cut>,<lines>`.
    fn write_flags(&self, buf: &mut String) {
        use std::fmt::Write as _;
        buf.clear();
        let cut = if self.truncated { '1' } else { '0' };
        if self.lines > 1 {
            // Writing to a String cannot fail.
            let _ = write!(buf, "{cut},{}", self.lines);
        } else {
            buf.push(cut);
        }
    }
}

/// Lines of one file, in file order (each line's `end` beyond the previous one's: the
/// script skips a prefix of already committed lines by that order).
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    /// Lines appended / published now.
    pub added: u64,
    /// Lines Redis already had (idempotent skip).
    pub skipped: u64,
    /// The committed offset Redis holds for this file after the call.
    pub committed: u64,
    /// Why the per-batch `XTRIM` was refused (e.g. an ACL without it), if it was.
    /// The batch itself is published; the stream just is not trimmed.
    pub trim_error: Option<String>,
    /// A batch started with `after` (see [`Publisher::start`]) whose predecessor had not
    /// landed: nothing was written.
    pub refused: bool,
}

/// A script call sent to Redis whose reply is still to come (see [`Publisher::start`]).
pub struct InFlight {
    reply: tokio::task::JoinHandle<Result<Value, redis::RedisError>>,
}

/// Publishes batches through one server-side script call each.
pub struct Publisher {
    conn: Connection,
    mode: Mode,
    /// The mode's script and its SHA1 (for `EVALSHA`).
    script: &'static str,
    sha: String,
    /// Per-source keys (the connection is a cluster connection).
    cluster: bool,
}

impl Publisher {
    pub fn new(conn: Connection, mode: Mode) -> Self {
        let script = match mode {
            Mode::Stream { .. } => STREAM_SCRIPT,
            Mode::PubSub { .. } => PUBSUB_SCRIPT,
        };
        let sha = redis::Script::new(script).get_hash().to_string();
        let cluster = conn.is_cluster();
        Self {
            conn,
            mode,
            script,
            sha,
            cluster,
        }
    }

    /// The offsets hash holding `source`'s files.
    pub fn offsets_key(&self, source: &str) -> String {
        if self.cluster {
            cluster_offsets_key(source)
        } else {
            OFFSETS_KEY.to_string()
        }
    }

    /// The stream `source`'s lines go to (stream mode), `None` in pub/sub mode.
    pub fn stream_key(&self, source: &str) -> Option<String> {
        match &self.mode {
            Mode::Stream { key, .. } if self.cluster => Some(cluster_stream_key(key, source)),
            Mode::Stream { key, .. } => Some(key.clone()),
            Mode::PubSub { .. } => None,
        }
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The connection is a Redis Cluster connection.
    pub fn is_cluster(&self) -> bool {
        self.cluster
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

    /// Sends one script call for `batch` and returns without waiting for the reply, so the
    /// next batch can be prepared and sent while Redis runs this one (two in flight).
    /// `after`: the end of a predecessor still in flight on this connection — the script
    /// then refuses this batch (writes nothing) unless the committed offset reached it, so a
    /// predecessor that failed can never be overtaken. Only the happy path: on any error or
    /// refusal the caller sends the batches again one at a time with [`Publisher::publish`]
    /// (which also loads the script after a `NOSCRIPT`). Not for cluster connections.
    pub async fn start(
        &mut self,
        batch: &PublishBatch<'_>,
        after: Option<u64>,
    ) -> Result<InFlight, BusError> {
        let mut conn = match self.conn.get().await {
            Ok(conn) => conn,
            Err(e) => return Err(self.conn.on_error(e)),
        };
        let mut cmd = self.command("EVALSHA", batch);
        self.fill(&mut cmd, batch, &self.sha, after);
        let reply = tokio::spawn(async move { cmd.query_async::<Value>(&mut conn).await });
        // Let the task hand its request to the connection before anything is sent after it
        // (on the watcher's one-thread runtime this runs it up to its wait for the reply).
        tokio::task::yield_now().await;
        Ok(InFlight { reply })
    }

    /// The reply of a call made with [`Publisher::start`].
    pub async fn outcome(&mut self, call: InFlight) -> Result<PublishOutcome, BusError> {
        let result = match call.reply.await {
            Ok(Ok(reply)) => parse_outcome(reply),
            Ok(Err(e)) => Err(BusError::from(e)),
            Err(join) => Err(BusError::Protocol(format!(
                "script call task failed: {join}"
            ))),
        };
        result.map_err(|e| self.conn.on_error(e))
    }

    async fn try_publish(&mut self, batch: &PublishBatch<'_>) -> Result<PublishOutcome, BusError> {
        let mut conn = self.conn.get().await?;
        let mut cmd = self.command("EVALSHA", batch);
        self.fill(&mut cmd, batch, &self.sha, None);
        let reply: Result<Value, redis::RedisError> = cmd.query_async(&mut conn).await;
        let reply = match reply {
            Err(e) if e.code() == Some("NOSCRIPT") && self.cluster => {
                // A cluster node that never saw the script (a new shard, a promoted replica
                // after a restart): EVAL goes to the same slot's primary and caches it there.
                // SCRIPT LOAD would go to every primary and fail while any one is down.
                let mut eval = self.command("EVAL", batch);
                self.fill(&mut eval, batch, self.script, None);
                eval.query_async(&mut conn).await?
            }
            Err(e) if e.code() == Some("NOSCRIPT") => {
                // First use, or Redis restarted / flushed its script cache.
                load_script(&mut conn, self.script).await?;
                cmd.query_async(&mut conn).await?
            }
            other => other?,
        };
        parse_outcome(reply)
    }

    /// `name` (`EVALSHA`/`EVAL`) with room for `batch`'s arguments: one batch is ~160 KiB,
    /// and growing the buffer by doubling would copy it several times over.
    fn command(&self, name: &str, batch: &PublishBatch<'_>) -> redis::Cmd {
        let lines = batch.lines.len();
        let data: usize = batch.lines.iter().map(|l| l.data.len()).sum();
        // Per line: its bytes, and three numbers plus flags (stream) or one number plus a
        // separator (pub/sub), a number taking up to 20 digits.
        let (args_per_line, extra_per_line) = match self.mode {
            Mode::Stream { .. } => (4, 64),
            Mode::PubSub { .. } => (1, 21),
        };
        // The fixed arguments: the script (its source for `EVAL`), keys, names, numbers.
        let script = if name == "EVAL" {
            self.script.len()
        } else {
            40
        };
        let fixed = 256 + script + 2 * batch.source.len() + batch.path.len() + batch.fid.len();
        let mut cmd = redis::Cmd::with_capacity(
            16 + lines * args_per_line,
            fixed + data + lines * extra_per_line,
        );
        cmd.arg(name);
        cmd
    }

    /// The script's arguments after `EVALSHA <sha>` / `EVAL <script>` (`script` is the sha or
    /// the source): the layout its mode's script documents.
    fn fill(
        &self,
        cmd: &mut redis::Cmd,
        batch: &PublishBatch<'_>,
        script: &str,
        after: Option<u64>,
    ) {
        cmd.arg(script);
        // Declare every key the script touches (cluster routing, ACL key checks).
        let offsets_key = self.offsets_key(batch.source);
        let field = Self::offsets_field(batch.source, batch.fid);
        match &self.mode {
            Mode::Stream { maxlen, .. } => {
                let stream = self.stream_key(batch.source).unwrap_or_default();
                cmd.arg(2).arg(offsets_key).arg(stream);
                cmd.arg(field)
                    .arg("s")
                    .arg(*maxlen)
                    .arg(batch.source)
                    .arg(batch.path)
                    .arg(batch.fid)
                    .arg(batch.collected_us)
                    .arg("");
                match after {
                    Some(offset) => cmd.arg(offset),
                    None => cmd.arg(""),
                };
                let mut flags = String::with_capacity(12);
                for line in &batch.lines {
                    line.write_flags(&mut flags);
                    cmd.arg(line.offset)
                        .arg(line.end)
                        .arg(flags.as_str())
                        .arg(line.data);
                }
            }
            Mode::PubSub { channel } => {
                cmd.arg(1).arg(offsets_key).arg(field).arg(channel.as_str());
                match after {
                    Some(offset) => cmd.arg(offset),
                    None => cmd.arg(""),
                };
                let first = batch.lines.first().map_or(0, |l| l.offset);
                let last = batch.lines.last().map_or(0, |l| l.end);
                cmd.arg(first)
                    .arg(last)
                    .arg(ends_list(&batch.lines).as_bytes());
                for line in &batch.lines {
                    cmd.arg(line.data);
                }
            }
        }
    }
}

mod offsets;
mod replicated;

/// Every line's end offset, separated by spaces (the pub/sub script's skip list).
fn ends_list(lines: &[OutLine<'_>]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(lines.len() * 11);
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        // Writing to a String cannot fail.
        let _ = write!(out, "{}", line.end);
    }
    out
}

async fn load_script(conn: &mut RedisConn, script: &str) -> Result<(), BusError> {
    let _: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg(script)
        .query_async(conn)
        .await?;
    Ok(())
}

fn parse_outcome(reply: Value) -> Result<PublishOutcome, BusError> {
    let items = match reply {
        Value::Array(items) if (3..=5).contains(&items.len()) => items,
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
    let trim_error = match items.get(3) {
        Some(Value::BulkString(b)) if !b.is_empty() => {
            Some(String::from_utf8_lossy(b).into_owned())
        }
        Some(Value::SimpleString(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    Ok(PublishOutcome {
        added: int(&items[0])?,
        skipped: int(&items[1])?,
        committed: int(&items[2])?,
        trim_error,
        refused: matches!(items.get(4), Some(Value::Int(1))),
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
                committed: 12345678901234567,
                trim_error: None,
                refused: false,
            }
        );
        let with_trim_error = Value::Array(vec![
            Value::Int(1),
            Value::Int(0),
            Value::BulkString(b"10".to_vec()),
            Value::BulkString(b"NOPERM no xtrim".to_vec()),
        ]);
        assert_eq!(
            parse_outcome(with_trim_error)
                .unwrap()
                .trim_error
                .as_deref(),
            Some("NOPERM no xtrim")
        );
        let no_trim_error = Value::Array(vec![
            Value::Int(1),
            Value::Int(0),
            Value::BulkString(b"10".to_vec()),
            Value::BulkString(Vec::new()),
        ]);
        assert_eq!(parse_outcome(no_trim_error).unwrap().trim_error, None);
        let refused = Value::Array(vec![
            Value::Int(0),
            Value::Int(0),
            Value::BulkString(b"10".to_vec()),
            Value::BulkString(Vec::new()),
            Value::Int(1),
        ]);
        assert!(parse_outcome(refused).unwrap().refused);
        assert!(parse_outcome(Value::Nil).is_err());
    }

    #[test]
    fn line_flags() {
        let flags = |truncated, lines| {
            let mut buf = String::from("stale");
            OutLine {
                offset: 0,
                end: 1,
                truncated,
                lines,
                data: b"",
            }
            .write_flags(&mut buf);
            buf
        };
        assert_eq!(flags(false, 1), "0");
        assert_eq!(flags(true, 1), "1");
        assert_eq!(flags(false, 0), "0");
        assert_eq!(flags(false, 12), "0,12");
        assert_eq!(flags(true, 500), "1,500");
    }
}
