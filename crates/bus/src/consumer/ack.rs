//! `XACK` sent without waiting for its answer: the caller writes the next batch meanwhile and
//! collects the outcome afterwards.
//!
//! At-least-once is unchanged: an acknowledgement is still sent only once the batch was
//! written and flushed, and entries whose `XACK` failed are handed back so the caller retries
//! them (before reading anything else, as after an awaited `XACK`). What goes is only the
//! wait: a round trip per batch, during which the subscriber did nothing.

use std::time::Instant;

use tokio::task::JoinHandle;

use crate::{BusError, RedisConn};

/// One `XACK` in flight on a task of its own.
pub struct AckInFlight {
    /// The stream the ids belong to.
    pub stream: String,
    ids: Vec<String>,
    /// The reply (how many were still pending) and when it came.
    task: JoinHandle<(Result<u64, BusError>, Instant)>,
}

impl AckInFlight {
    /// Sends `XACK <stream> <group> <ids…>` on `conn` from a task of its own.
    pub(crate) fn send(mut conn: RedisConn, stream: &str, group: &str, ids: Vec<String>) -> Self {
        let mut cmd = redis::cmd("XACK");
        cmd.arg(stream).arg(group).arg(&ids);
        let task = tokio::spawn(async move {
            let result = match cmd.query_async::<u64>(&mut conn).await {
                Ok(n) => Ok(n),
                // The group is gone (deleted, or Redis restarted empty), and its pending
                // list with it: nothing is left to acknowledge.
                Err(e) if e.code() == Some("NOGROUP") => Ok(0),
                Err(e) => Err(e.into()),
            };
            (result, Instant::now())
        });
        AckInFlight {
            stream: stream.to_string(),
            ids,
            task,
        }
    }

    /// Waits for the answer (prefer [`crate::consumer::StreamConsumer::settle_ack`], which
    /// also drops a connection the error broke): how many entries were still pending and when Redis answered,
    /// or the error and the ids to acknowledge again.
    pub async fn outcome(self) -> Result<(u64, Instant), (Vec<String>, BusError)> {
        match self.task.await {
            Ok((Ok(n), at)) => Ok((n, at)),
            Ok((Err(err), _)) => Err((self.ids, err)),
            Err(e) => Err((
                self.ids,
                BusError::Protocol(format!(
                    "the XACK task ended without a reply ({})",
                    if e.is_panic() { "panic" } else { "cancelled" }
                )),
            )),
        }
    }
}
