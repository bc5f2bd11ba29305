//! Publishing with replica acknowledgement (`REDTAIL_REPLICA_ACKS`): the script and `WAIT`
//! in one pipeline on one connection.

use std::time::Duration;

use redis::Value;

use super::{load_script, parse_outcome, PublishBatch, PublishOutcome, Publisher};
use crate::{BusError, RedisConn};

impl Publisher {
    /// One attempt with replica acknowledgement: the script call and `WAIT <replicas>
    /// <timeout>` go out as one pipeline, so both run on the same connection to the same
    /// node, one after the other. Returns the script's outcome and how many replicas hold
    /// everything that connection wrote, this batch included.
    ///
    /// Why one pipeline: `WAIT` counts the replicas of the node it runs on that acknowledged
    /// the last write *of its own connection*. Sent as a command of its own it is routed on
    /// its own: in a cluster, with the slot's primary just killed, redis-rs sends it to any
    /// connected node, and another shard's primary answers at once with its own replica
    /// count — a batch held only by the dead primary was then taken as replicated and lost.
    /// In one pipeline a redirect or reconnect resends both commands together, and a script
    /// reply that is not an error proves it ran on the node that answered the `WAIT`. (A
    /// resend the script skips entirely still writes, see publish.lua, so that the `WAIT`
    /// covers lines an earlier connection wrote, on every Redis version.)
    ///
    /// What it proves: the batch reached that many replicas' memory (not their disk) before
    /// the reply. Redis replication stays asynchronous: a failover may still promote a
    /// replica that did not get it when several replicas exist, and a primary that restarts
    /// empty loses it. `timeout` must stay below the connection's response timeout.
    pub async fn publish_replicated(
        &mut self,
        batch: &PublishBatch<'_>,
        replicas: u32,
        timeout: Duration,
    ) -> Result<(PublishOutcome, u64), BusError> {
        match self.try_publish_replicated(batch, replicas, timeout).await {
            Ok(done) => Ok(done),
            Err(e) => Err(self.conn.on_error(e)),
        }
    }

    async fn try_publish_replicated(
        &mut self,
        batch: &PublishBatch<'_>,
        replicas: u32,
        timeout: Duration,
    ) -> Result<(PublishOutcome, u64), BusError> {
        let mut conn = self.conn.get().await?;
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(timeout.as_millis().max(1) as u64);
        let mut script = self.command("EVALSHA", batch);
        self.fill(&mut script, batch, &self.sha, None);
        let mut replies = script_then_wait(&mut conn, &script, &wait).await?;
        if matches!(&replies.0, Err(e) if e.code() == Some("NOSCRIPT")) {
            if self.cluster {
                // As in `try_publish`: EVAL caches the script on this slot's primary only.
                let mut eval = redis::cmd("EVAL");
                self.fill(&mut eval, batch, self.script, None);
                replies = script_then_wait(&mut conn, &eval, &wait).await?;
            } else {
                load_script(&mut conn, self.script).await?;
                replies = script_then_wait(&mut conn, &script, &wait).await?;
            }
        }
        let (script_reply, wait_reply) = replies;
        let outcome = parse_outcome(script_reply?)?;
        let acked = redis::from_redis_value::<u64>(wait_reply?).map_err(redis::RedisError::from)?;
        Ok((outcome, acked))
    }
}

/// `script` then `wait` in one pipeline on one connection; each reply or its error (a
/// failed script still lets the `WAIT` run, whose count then means nothing).
async fn script_then_wait(
    conn: &mut RedisConn,
    script: &redis::Cmd,
    wait: &redis::Cmd,
) -> Result<(redis::RedisResult<Value>, redis::RedisResult<Value>), BusError> {
    let mut pipe = redis::pipe();
    pipe.add_command(script.clone())
        .add_command(wait.clone())
        .ignore_errors();
    let mut replies: Vec<Value> = pipe.query_async(conn).await?;
    if replies.len() != 2 {
        return Err(BusError::Protocol(format!(
            "script and WAIT pipeline replied {} values",
            replies.len()
        )));
    }
    let wait_reply = replies.pop().map(Value::extract_error);
    let script_reply = replies.pop().map(Value::extract_error);
    match (script_reply, wait_reply) {
        (Some(script), Some(wait)) => Ok((script, wait)),
        _ => Err(BusError::Protocol("script and WAIT pipeline reply".into())),
    }
}
